//! Solid resources (version 0xE00 WIMs) and split WIMs (.swm), against
//! wimlib-imagex both ways: what wimlib writes solid or split we read,
//! verify and apply to the same bytes; what we write wimlib verifies,
//! applies and joins; and broken sets or solid headers are refused with
//! typed errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tasq_wim::capture::NoFilter;
use tasq_wim::header::{HDR_FLAG_SPANNED, WIM_VERSION_SOLID};
use tasq_wim::memfs::MemFs;
use tasq_wim::reader::Wim;
use tasq_wim::split::{join, part_name, split};
use tasq_wim::writer::{ImageOptions, SolidOptions, WimWriter, WriteOptions};
use tasq_wim::{CompressionFormat, WimError};

mod common;
use common::{bytes, our_files, wimlib};

/// A tree with files across many chunk boundaries: empty, tiny, one of
/// several chunks, duplicates, and dozens of small files (which a solid
/// resource packs several to a chunk).
fn make_tree(root: &Path, seed: u32) {
    std::fs::create_dir_all(root.join("a/b")).unwrap();
    std::fs::create_dir_all(root.join("c")).unwrap();
    std::fs::write(root.join("empty"), b"").unwrap();
    std::fs::write(root.join("tiny.txt"), b"x").unwrap();
    std::fs::write(root.join("a/big.bin"), bytes(seed, 300_001, false)).unwrap();
    std::fs::write(root.join("a/b/text.txt"), bytes(seed + 1, 200_000, true)).unwrap();
    std::fs::write(root.join("c/dup.txt"), bytes(seed + 1, 200_000, true)).unwrap();
    for i in 0..40u32 {
        let len = (i as usize * 3_331) % 20_000 + 1;
        std::fs::write(
            root.join(format!(
                "c/f{i:02}.{}",
                ["txt", "dll", "bin"][i as usize % 3]
            )),
            bytes(seed * 100 + i, len, i % 2 == 0),
        )
        .unwrap();
    }
}

/// path (with `\`) -> contents, of every regular file under `root`.
fn host_files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .replace('/', "\\");
            if e.file_type().unwrap().is_dir() {
                walk(base, &p, out);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut m = BTreeMap::new();
    walk(root, root, &mut m);
    m
}

fn capture_ours(path: &Path, src: &Path, opts: WriteOptions, append: bool) {
    let mut w = if append {
        WimWriter::append(path, opts).unwrap()
    } else {
        WimWriter::create(path, opts).unwrap()
    };
    let mut source = tasq_volume_free_source(src);
    w.add_image(
        &mut source,
        &NoFilter,
        &ImageOptions {
            name: Some(format!("img{}", w.image_count() + 1)),
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap();
    w.finish().unwrap();
}

/// A capture source for a host directory, built from MemFs so this crate's
/// tests need no file-system crate: every regular file and directory.
fn tasq_volume_free_source(src: &Path) -> MemFs {
    let mut fs = MemFs::new();
    fn walk(base: &Path, dir: &Path, fs: &mut MemFs) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = p
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .replace('/', "\\");
            if e.file_type().unwrap().is_dir() {
                fs.add_dir(&rel);
                walk(base, &p, fs);
            } else {
                fs.add_file(&rel, &std::fs::read(&p).unwrap());
            }
        }
    }
    walk(src, src, &mut fs);
    fs
}

fn solid(compression: CompressionFormat, chunk_size: u32) -> WriteOptions {
    WriteOptions {
        compression: CompressionFormat::Lzx,
        threads: 2,
        solid: Some(SolidOptions {
            compression,
            chunk_size,
        }),
        ..Default::default()
    }
}

#[test]
fn we_read_and_apply_wimlib_solid_wims() {
    let dir = tempfile::tempdir().unwrap();
    let (src, src2) = (dir.path().join("src"), dir.path().join("src2"));
    make_tree(&src, 1);
    make_tree(&src2, 2);
    for (ctype, chunk) in [
        ("LZX", "32768"),
        ("LZX", "131072"),
        ("XPRESS", "4096"),
        ("XPRESS", "65536"),
        // What Microsoft's ESD files and wimlib's plain --solid hold.
        ("LZMS", "67108864"),
        ("LZMS", "1048576"),
    ] {
        let path = dir.path().join(format!("wimlib-{ctype}-{chunk}.wim"));
        let p = path.to_str().unwrap();
        // wimlib compresses metadata with LZMS after --solid unless told
        // otherwise: the same codec as the data here.
        let solid_args: Vec<String> = vec![
            "--solid".into(),
            format!("--compress={ctype}"),
            format!("--solid-compress={ctype}"),
            format!("--solid-chunk-size={chunk}"),
        ];
        let mut args = vec!["capture", src.to_str().unwrap(), p, "one"];
        args.extend(solid_args.iter().map(String::as_str));
        wimlib(&args);
        // A second solid resource: blob offsets in the table then count
        // from the start of the first resource.
        let mut args = vec!["append", src2.to_str().unwrap(), p, "two"];
        args.extend(solid_args.iter().map(String::as_str));
        wimlib(&args);
        let wim = Wim::open(&path).unwrap();
        assert_eq!(wim.header.version, WIM_VERSION_SOLID);
        assert_eq!(wim.solid.len(), 2, "{ctype} {chunk}");
        let want = match ctype {
            "LZX" => CompressionFormat::Lzx,
            "LZMS" => CompressionFormat::Lzms,
            _ => CompressionFormat::Xpress,
        };
        assert!(wim
            .solid
            .iter()
            .all(|r| r.format == want && r.chunk_size.to_string() == chunk));
        assert!(wim.blobs.iter().all(|b| b.solid.is_some()));
        tasq_wim::verify::verify(&wim, 2, &mut |_, _| {}).unwrap();
        assert_eq!(
            our_files(&wim, 1),
            host_files(&src),
            "{ctype} {chunk} image 1"
        );
        assert_eq!(
            our_files(&wim, 2),
            host_files(&src2),
            "{ctype} {chunk} image 2"
        );
        // One blob alone (read_blob): decompresses just its chunks.
        let tree = wim.read_image(2).unwrap();
        let d = (0..tree.dentries.len())
            .find(|&d| tree.path_of(d).ends_with("text.txt"))
            .unwrap();
        let h = tree.inodes[tree.dentries[d].inode].streams[0].hash;
        let v = wim
            .read_blob_to_vec(wim.blob(&h).unwrap(), 1 << 20)
            .unwrap();
        assert_eq!(v, bytes(3, 200_000, true));
    }
}

#[test]
fn wimlib_verifies_and_applies_our_solid_wims() {
    let dir = tempfile::tempdir().unwrap();
    let (src, src2) = (dir.path().join("src"), dir.path().join("src2"));
    make_tree(&src, 5);
    make_tree(&src2, 6);
    for (c, cs) in [
        (CompressionFormat::Lzx, 32768),
        (CompressionFormat::Lzx, 1 << 20),
        (CompressionFormat::Xpress, 16384),
        (CompressionFormat::Lzms, 1 << 20),
        (CompressionFormat::Lzms, 64 << 20),
    ] {
        let path = dir.path().join(format!("ours-{c}-{cs}.wim"));
        capture_ours(&path, &src, solid(c, cs), false);
        // Appended in place: a second solid resource after the first.
        capture_ours(&path, &src2, solid(c, cs), true);
        let p = path.to_str().unwrap();
        let v = wimlib(&["verify", p]);
        assert!(v.contains("successfully verified"), "{v}");
        let info = wimlib(&["info", p]);
        assert!(info.contains("Version:        3584"), "{info}");
        for (n, s) in [(1, &src), (2, &src2)] {
            let out = dir.path().join(format!("applied-{c}-{cs}-{n}"));
            wimlib(&["apply", p, &n.to_string(), out.to_str().unwrap()]);
            assert_eq!(host_files(&out), host_files(s), "{c} {cs} image {n}");
        }
        let wim = Wim::open(&path).unwrap();
        assert_eq!(wim.solid.len(), 2);
        assert!(wim
            .solid
            .iter()
            .all(|r| r.format == c && r.chunk_size == cs));
        assert_eq!(our_files(&wim, 2), host_files(&src2));
        // Small files were packed several to a chunk.
        assert!(wim.solid[0].chunks.len() < wim.blobs.len());
    }
}

#[test]
fn export_between_solid_and_ordinary() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_tree(&src, 9);
    let wl = dir.path().join("wimlib-solid.wim");
    wimlib(&[
        "capture",
        src.to_str().unwrap(),
        wl.to_str().unwrap(),
        "--solid",
        "--compress=LZX",
        "--solid-compress=LZX",
    ]);
    // Solid (wimlib) -> ordinary XPRESS (ours) -> solid LZX (ours).
    let plain = dir.path().join("plain.wim");
    let wim = Wim::open(&wl).unwrap();
    let mut w = WimWriter::create(
        &plain,
        WriteOptions {
            compression: CompressionFormat::Xpress,
            ..Default::default()
        },
    )
    .unwrap();
    w.add_image_from(&wim, 1, &ImageOptions::default()).unwrap();
    w.finish().unwrap();
    let plain_wim = Wim::open(&plain).unwrap();
    assert!(!plain_wim.has_solid());
    assert_ne!(plain_wim.header.version, WIM_VERSION_SOLID);
    let back = dir.path().join("back.wim");
    let mut w = WimWriter::create(&back, solid(CompressionFormat::Lzx, 65536)).unwrap();
    w.add_image_from(&plain_wim, 1, &ImageOptions::default())
        .unwrap();
    w.finish().unwrap();
    for p in [&plain, &back] {
        let v = wimlib(&["verify", p.to_str().unwrap()]);
        assert!(v.contains("successfully verified"), "{v}");
        let out = dir
            .path()
            .join(format!("out-{}", p.file_name().unwrap().to_string_lossy()));
        wimlib(&["apply", p.to_str().unwrap(), "1", out.to_str().unwrap()]);
        assert_eq!(host_files(&out), host_files(&src));
    }
    assert_eq!(Wim::open(&back).unwrap().solid.len(), 1);
}

fn parts_of(first: &Path, n: u16) -> Vec<PathBuf> {
    (1..=n).map(|k| part_name(first, k)).collect()
}

#[test]
fn our_split_is_joined_and_applied_by_wimlib() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_tree(&src, 11);
    let wl = dir.path().join("orig.wim");
    capture_ours(
        &wl,
        &src,
        WriteOptions {
            compression: CompressionFormat::Lzx,
            ..Default::default()
        },
        false,
    );
    let wim = Wim::open(&wl).unwrap();
    let first = dir.path().join("set.swm");
    let parts = split(&wim, &first, 150_000, false).unwrap();
    assert!(parts.len() >= 3, "{parts:?}");
    assert_eq!(parts, parts_of(&first, parts.len() as u16));
    assert_eq!(parts[1].file_name().unwrap(), "set2.swm");
    // Every part is a WIM header with the set's GUID and its number.
    for (i, p) in parts.iter().enumerate() {
        let b = std::fs::read(p).unwrap();
        let h = tasq_wim::header::Header::parse(&b[..208]).unwrap();
        assert_eq!(h.part_number as usize, i + 1);
        assert_eq!(h.total_parts as usize, parts.len());
        assert!(h.flags & HDR_FLAG_SPANNED != 0);
        assert_eq!(
            h.guid,
            Wim::open_with_refs(&parts[0], &parts).unwrap().header.guid
        );
    }
    let glob = format!("{}/set*.swm", dir.path().display());
    let v = wimlib(&["verify", first.to_str().unwrap(), "--ref", &glob]);
    assert!(v.contains("successfully verified"), "{v}");
    let out = dir.path().join("applied");
    wimlib(&[
        "apply",
        first.to_str().unwrap(),
        "1",
        out.to_str().unwrap(),
        "--ref",
        &glob,
    ]);
    assert_eq!(host_files(&out), host_files(&src));
    let joined = dir.path().join("joined.wim");
    let mut args = vec!["join", joined.to_str().unwrap()];
    args.extend(parts.iter().map(|p| p.to_str().unwrap()));
    wimlib(&args);
    let j = Wim::open(&joined).unwrap();
    assert_eq!(our_files(&j, 1), host_files(&src));
}

#[test]
fn we_read_and_join_wimlib_splits() {
    let dir = tempfile::tempdir().unwrap();
    let (src, src2) = (dir.path().join("src"), dir.path().join("src2"));
    make_tree(&src, 21);
    make_tree(&src2, 22);
    let wl = dir.path().join("orig.wim");
    let p = wl.to_str().unwrap();
    wimlib(&["capture", src.to_str().unwrap(), p, "one"]);
    wimlib(&["append", src2.to_str().unwrap(), p, "two", "--boot"]);
    let first = dir.path().join("w.swm");
    // Part size in MiB.
    wimlib(&["split", p, first.to_str().unwrap(), "0.2"]);
    let n = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.starts_with('w') && name.ends_with(".swm")
        })
        .count() as u16;
    assert!(n >= 3, "{n} parts");
    let parts = parts_of(&first, n);
    // Refs in any order, part 1 among them.
    let mut refs = parts.clone();
    refs.reverse();
    let wim = Wim::open_with_refs(&first, &refs).unwrap();
    assert_eq!(wim.image_count(), 2);
    tasq_wim::verify::verify(&wim, 2, &mut |_, _| {}).unwrap();
    assert_eq!(our_files(&wim, 1), host_files(&src));
    assert_eq!(our_files(&wim, 2), host_files(&src2));
    let joined = dir.path().join("joined.wim");
    join(&wim, &joined, 2, true).unwrap();
    let v = wimlib(&["verify", joined.to_str().unwrap()]);
    assert!(v.contains("successfully verified"), "{v}");
    let info = wimlib(&["info", joined.to_str().unwrap()]);
    assert!(info.contains("Image Count:    2"), "{info}");
    let out = dir.path().join("applied");
    wimlib(&[
        "apply",
        joined.to_str().unwrap(),
        "2",
        out.to_str().unwrap(),
    ]);
    assert_eq!(host_files(&out), host_files(&src2));
}

#[test]
fn broken_split_sets_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_tree(&src, 31);
    let wl = dir.path().join("orig.wim");
    capture_ours(&wl, &src, WriteOptions::default(), false);
    let wim = Wim::open(&wl).unwrap();
    let a = split(&wim, &dir.path().join("a.swm"), 150_000, false).unwrap();
    let b = split(&wim, &dir.path().join("b.swm"), 150_000, false).unwrap();
    assert!(a.len() >= 3);
    let msg = |r: Result<Wim, WimError>| match r {
        Err(e @ WimError::SplitSet { .. }) => e.to_string(),
        Err(e) => panic!("wrong error kind: {e}"),
        Ok(_) => panic!("opened a broken set"),
    };
    // Missing part.
    let m = msg(Wim::open_with_refs(&a[0], &a[..a.len() - 1]));
    assert!(
        m.contains("missing") && m.contains(&a.len().to_string()),
        "{m}"
    );
    // Part 1 alone.
    let m = msg(Wim::open(&a[0]));
    assert!(m.contains("missing"), "{m}");
    // A part of another split (other GUID) is named.
    let mut refs = a.clone();
    refs[1] = b[1].clone();
    let m = msg(Wim::open_with_refs(&a[0], &refs));
    assert!(m.contains("b2.swm") && m.contains("GUID"), "{m}");
    // A part claiming another part count.
    let other = split(&wim, &dir.path().join("c.swm"), 1_000_000_000, false).unwrap();
    assert_eq!(other.len(), 1);
    let m = msg(Wim::open_with_refs(&a[0], &[other[0].clone()]));
    assert!(m.contains("c.swm"), "{m}");
    // Opening part 2 as the first part.
    let m = msg(Wim::open_with_refs(&a[1], &a));
    assert!(m.contains("part 1"), "{m}");
    // Splitting a solid WIM is refused, as wimlib does.
    let s = dir.path().join("solid.wim");
    capture_ours(&s, &src, solid(CompressionFormat::Lzx, 32768), false);
    let err = split(
        &Wim::open(&s).unwrap(),
        &dir.path().join("s.swm"),
        100_000,
        false,
    )
    .unwrap_err();
    assert!(matches!(err, WimError::Unsupported(_)), "{err}");
}

/// Malformed solid resource headers and solid blob entries: typed errors
/// at open, never a panic or an allocation from the claimed sizes.
#[test]
fn malformed_solid_headers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_tree(&src, 41);
    let path = dir.path().join("s.wim");
    capture_ours(&path, &src, solid(CompressionFormat::Lzx, 32768), false);
    let good = std::fs::read(&path).unwrap();
    let wim = Wim::open(&path).unwrap();
    let res = wim.solid[0].offset_in_wim as usize;
    let bt = wim.header.blob_table.offset_in_wim as usize;
    let nblobs = wim.header.blob_table.size_in_wim as usize / 50;
    drop(wim);
    let bad = dir.path().join("bad.wim");
    let open_with = |patch: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        patch(&mut b);
        std::fs::write(&bad, &b).unwrap();
        Wim::open(&bad).err().map(|e| e.to_string())
    };
    type Patch<'a> = Box<dyn Fn(&mut Vec<u8>) + 'a>;
    let cases: [(&str, Patch); 6] = [
        ("unknown compression format", Box::new(|b| b[res + 12] = 9)),
        (
            "invalid chunk size",
            Box::new(|b| b[res + 8..res + 12].copy_from_slice(&1000u32.to_le_bytes())),
        ),
        (
            "more than its",
            Box::new(|b| b[res..res + 8].copy_from_slice(&(1u64 << 60).to_le_bytes())),
        ),
        (
            "invalid stored size",
            Box::new(|b| b[res + 16..res + 20].copy_from_slice(&0u32.to_le_bytes())),
        ),
        (
            "outside its solid resources",
            Box::new(|b| {
                // The first solid blob entry: offset past the resource.
                for i in 0..nblobs {
                    let e = bt + i * 50;
                    let usize = u64::from_le_bytes(b[e + 16..e + 24].try_into().unwrap());
                    if b[e + 7] & 0x10 != 0 && usize != 1 << 32 {
                        b[e + 8..e + 16].copy_from_slice(&(1u64 << 40).to_le_bytes());
                        return;
                    }
                }
                panic!("no solid blob entry");
            }),
        ),
        (
            "overlap",
            Box::new(|b| {
                // Two solid blobs at the same offset.
                let mut first = None;
                for i in 0..nblobs {
                    let e = bt + i * 50;
                    let usize = u64::from_le_bytes(b[e + 16..e + 24].try_into().unwrap());
                    if b[e + 7] & 0x10 != 0 && usize != 1 << 32 {
                        match first {
                            None => first = Some(e),
                            Some(f) => {
                                let off: [u8; 8] = b[f + 8..f + 16].try_into().unwrap();
                                b[e + 8..e + 16].copy_from_slice(&off);
                                return;
                            }
                        }
                    }
                }
                panic!("fewer than two solid blob entries");
            }),
        ),
    ];
    for (want, patch) in cases {
        let e = open_with(&*patch).unwrap_or_else(|| panic!("{want}: opened"));
        assert!(e.contains(want), "{want}: {e}");
    }
}
