//! `optimize`: a WIM rebuilt in place of itself keeps every image, its XML
//! and boot index, loses holes and unreferenced data, copies stored
//! resources byte for byte unless asked to recompress (solid resources
//! when more than two thirds in use, wimlib's rule), and leaves the old
//! file untouched when it fails.

use std::collections::BTreeMap;
use std::path::Path;

use tasq_wim::capture::NoFilter;
use tasq_wim::memfs::MemFs;
use tasq_wim::optimize::{optimize, OptimizeOptions};
use tasq_wim::reader::Wim;
use tasq_wim::writer::{ImageOptions, WimWriter, WriteOptions};
use tasq_wim::{CompressionFormat, Sha1Hash};

mod common;
use common::{bytes, our_files, wimlib};

/// A tree of `n` files of distinct data (seeded), text and noise.
fn tree(seed: u32, n: u32, len: usize) -> MemFs {
    let mut fs = MemFs::new();
    fs.add_dir("d");
    for i in 0..n {
        fs.add_file(
            &format!("d\\f{i}.bin"),
            &bytes(seed * 1000 + i, len + i as usize * 100, i % 2 == 0),
        );
    }
    fs
}

fn add(path: &Path, opts: WriteOptions, fs: &mut MemFs, name: &str, boot: bool, append: bool) {
    let mut w = if append {
        WimWriter::append(path, opts).unwrap()
    } else {
        WimWriter::create(path, opts).unwrap()
    };
    w.add_image(
        fs,
        &NoFilter,
        &ImageOptions {
            name: Some(name.into()),
            boot,
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap();
    w.finish().unwrap();
}

/// Every regular file of every image, applied by us.
fn files(wim: &Wim) -> Vec<BTreeMap<String, Vec<u8>>> {
    (1..=wim.image_count()).map(|n| our_files(wim, n)).collect()
}

/// Stored bytes of every ordinary (non-solid) blob, by hash.
fn stored(wim: &Wim) -> BTreeMap<Sha1Hash, Vec<u8>> {
    wim.blobs
        .iter()
        .filter(|b| b.solid.is_none())
        .map(|b| {
            let mut v = vec![0u8; b.reshdr.size_in_wim as usize];
            wim.read_raw(b.part_number, b.reshdr.offset_in_wim, &mut v, "blob")
                .unwrap();
            (b.hash, v)
        })
        .collect()
}

/// Stored bytes of solid resource `i`.
fn solid_bytes(wim: &Wim, i: usize) -> Vec<u8> {
    let r = &wim.solid[i];
    let mut v = vec![0u8; r.size_in_wim as usize];
    wim.read_raw(r.part, r.offset_in_wim, &mut v, "solid")
        .unwrap();
    v
}

#[test]
fn rebuild_keeps_images_and_copies_stored_resources() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("x.wim");
    let opts = WriteOptions {
        integrity: true,
        threads: 2,
        ..Default::default()
    };
    // Two appends: the old blob tables and XML data stay behind as holes.
    add(
        &path,
        opts.clone(),
        &mut tree(1, 6, 40_000),
        "one",
        false,
        false,
    );
    add(
        &path,
        opts.clone(),
        &mut tree(2, 6, 40_000),
        "two",
        true,
        true,
    );
    add(
        &path,
        opts.clone(),
        &mut tree(3, 6, 40_000),
        "three",
        false,
        true,
    );
    let before = Wim::open(&path).unwrap();
    let (info, want, raw) = (before.info.clone(), files(&before), stored(&before));
    assert_eq!(before.header.boot_index, 2);
    drop(before);

    let r = optimize(&path, &OptimizeOptions::default()).unwrap();
    assert!(r.new_size < r.old_size, "{r:?}");
    let after = Wim::open(&path).unwrap();
    assert_eq!(r.new_size, after.file_size());
    assert_eq!(after.image_count(), 3);
    assert_eq!(after.header.boot_index, 2);
    assert!(!after.header.integrity.is_empty(), "integrity table kept");
    assert_eq!(after.compression(), CompressionFormat::Lzx);
    let mut kept = info.clone();
    kept.total_bytes = after.info.total_bytes;
    assert_eq!(after.info, kept, "XML kept (times included)");
    assert_eq!(files(&after), want);
    assert_eq!(stored(&after), raw, "resources copied byte for byte");
    tasq_wim::verify::verify(&after, 2, &mut |_, _| {}).unwrap();
    drop(after);

    // Recompressed: another format, the same files; integrity dropped.
    optimize(
        &path,
        &OptimizeOptions {
            compression: Some((CompressionFormat::Xpress, 50)),
            integrity: Some(false),
            ..Default::default()
        },
    )
    .unwrap();
    let x = Wim::open(&path).unwrap();
    assert_eq!(x.compression(), CompressionFormat::Xpress);
    assert!(x.header.integrity.is_empty());
    assert_eq!(files(&x), want);
    assert_eq!(x.info.images[1].name.as_deref(), Some("two"));
    let xs = stored(&x);
    assert_eq!(xs.len(), raw.len());
    // (Noise is stored uncompressed either way.)
    let compressed = |h: &Sha1Hash| {
        let b = x.blob(h).unwrap();
        b.reshdr.size_in_wim < b.reshdr.uncompressed_size
    };
    assert!(xs.keys().filter(|h| compressed(h)).count() >= 6);
    for (h, v) in xs.iter().filter(|(h, _)| compressed(h)) {
        assert_ne!(raw[h], *v, "recompressed");
    }
    drop(x);

    // --recompress with the same format, through a symbolic link: the
    // file is replaced (keeping its permissions), the link stays.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = tmp.path().join("link.wim");
    std::os::unix::fs::symlink("x.wim", &link).unwrap();
    let r = optimize(
        &link,
        &OptimizeOptions {
            recompress: true,
            ..Default::default()
        },
    )
    .unwrap();
    let y = Wim::open(&path).unwrap();
    assert_eq!(y.compression(), CompressionFormat::Xpress);
    assert_eq!(files(&y), want);
    assert_eq!(r.new_size, y.file_size());
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640);
}

#[test]
fn deterministic_rebuilds_of_two_captures_are_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a.wim"), tmp.path().join("b.wim"));
    for p in [&a, &b] {
        add(
            p,
            WriteOptions::default(),
            &mut tree(4, 5, 30_000),
            "one",
            true,
            false,
        );
        add(
            p,
            WriteOptions::default(),
            &mut tree(5, 5, 30_000),
            "two",
            false,
            true,
        );
    }
    assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let o = OptimizeOptions {
        deterministic: true,
        ..Default::default()
    };
    optimize(&a, &o).unwrap();
    optimize(&b, &OptimizeOptions { threads: 1, ..o }).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

#[test]
fn failed_rebuild_leaves_the_wim_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("x.wim");
    add(
        &path,
        WriteOptions::default(),
        &mut tree(6, 4, 100_000),
        "one",
        false,
        false,
    );
    // Corrupt the middle of the first blob's stored data.
    let wim = Wim::open(&path).unwrap();
    let b = wim
        .blobs
        .iter()
        .max_by_key(|b| b.reshdr.size_in_wim)
        .unwrap();
    let at = (b.reshdr.offset_in_wim + b.reshdr.size_in_wim / 2) as usize;
    drop(wim);
    let mut data = std::fs::read(&path).unwrap();
    data[at] ^= 0x5A;
    data[at + 1] ^= 0xA5;
    std::fs::write(&path, &data).unwrap();
    let err = optimize(
        &path,
        &OptimizeOptions {
            recompress: true,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(std::fs::read(&path).unwrap(), data, "{err}");
    let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
}

/// Three images in one solid resource (written by wimlib): dropping a
/// small image keeps more than 2/3 of it, so it is copied as it is;
/// dropping a large one does not, so the rest is compressed again.
#[test]
fn solid_resource_copied_when_mostly_used() {
    let tmp = tempfile::tempdir().unwrap();
    let t = |p: &Path| p.to_str().unwrap().to_string();
    let mut dirs = Vec::new();
    for (i, len) in [(1u32, 200_000usize), (2, 20_000), (3, 200_000)] {
        let d = tmp.path().join(format!("src{i}"));
        std::fs::create_dir_all(&d).unwrap();
        for k in 0..3u32 {
            std::fs::write(d.join(format!("f{k}")), bytes(i * 10 + k, len, k != 1)).unwrap();
        }
        dirs.push(d);
    }
    let wl = tmp.path().join("solid.wim");
    wimlib(&[
        "capture",
        &t(&dirs[0]),
        &t(&wl),
        "one",
        "--solid",
        "--solid-chunk-size=65536",
    ]);
    for (d, name) in [(&dirs[1], "two"), (&dirs[2], "three")] {
        wimlib(&[
            "append",
            &t(d),
            &t(&wl),
            name,
            "--solid",
            "--solid-chunk-size=65536",
        ]);
    }
    wimlib(&["optimize", &t(&wl), "--solid", "--solid-chunk-size=65536"]);
    assert_eq!(Wim::open(&wl).unwrap().solid.len(), 1);
    let w2 = tmp.path().join("solid2.wim");
    std::fs::copy(&wl, &w2).unwrap();

    wimlib(&["delete", "--soft", &t(&wl), "two"]);
    let before = solid_bytes(&Wim::open(&wl).unwrap(), 0);
    let r = optimize(&wl, &OptimizeOptions::default()).unwrap();
    assert!(r.new_size < r.old_size, "{r:?}");
    let after = Wim::open(&wl).unwrap();
    assert_eq!(after.solid.len(), 1);
    assert_eq!(solid_bytes(&after, 0), before, "copied as it was");
    let v = wimlib(&["verify", &t(&wl)]);
    assert!(v.contains("successfully verified"), "{v}");
    assert_eq!(files(&after), [host(&dirs[0]), host(&dirs[2])]);
    drop(after);

    wimlib(&["delete", "--soft", &t(&w2), "one"]);
    let before = solid_bytes(&Wim::open(&w2).unwrap(), 0);
    optimize(&w2, &OptimizeOptions::default()).unwrap();
    let after = Wim::open(&w2).unwrap();
    assert_eq!(after.solid.len(), 1, "still solid");
    let now = solid_bytes(&after, 0).len();
    assert!(now < before.len() * 2 / 3, "{now} of {}", before.len());
    let v = wimlib(&["verify", &t(&w2)]);
    assert!(v.contains("successfully verified"), "{v}");
    assert_eq!(files(&after), [host(&dirs[1]), host(&dirs[2])]);
}

/// The files of a flat host directory, keyed as applied images are.
fn host(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}
