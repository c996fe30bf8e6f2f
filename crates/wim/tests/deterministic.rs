//! Reproducible output: the same tree written with the same options gives
//! the same WIM byte for byte, whatever the number of compressor threads,
//! except for the header GUID and the images' XML creation and last
//! modification times; with `set_deterministic` those are fixed too, so
//! two captures made at different times are identical files.

use std::path::Path;

use tasq_wim::capture::NoFilter;
use tasq_wim::header::{Header, HEADER_SIZE};
use tasq_wim::image::{FILE_ATTRIBUTE_ARCHIVE, FILE_ATTRIBUTE_DIRECTORY};
use tasq_wim::memfs::{MemFs, MemNode};
use tasq_wim::reader::Wim;
use tasq_wim::writer::{ImageOptions, SolidOptions, WimWriter, WriteOptions};
use tasq_wim::xml::WimInfo;
use tasq_wim::CompressionFormat;

mod common;
use common::bytes;

/// About 1.4 MB over 60 files: multi-chunk text and noise, duplicates,
/// hard links, several security descriptors, distinct times.
fn tree() -> MemFs {
    let mut fs = MemFs::new();
    fs.nodes.get_mut("").unwrap().times = (1000, 1000, 1000);
    for d in ["docs", "docs\\deep", "bin", "empty"] {
        fs.add_dir(d);
    }
    fs.add_file("docs\\big.txt", &bytes(1, 400_000, true));
    fs.add_file("bin\\noise.bin", &bytes(2, 300_000, false));
    fs.add_file("docs\\copy.txt", &bytes(1, 400_000, true));
    fs.add_file("empty.txt", b"");
    for i in 0..50u32 {
        let dir = if i % 2 == 0 { "docs\\deep" } else { "bin" };
        let ext = ["txt", "dll", "ini"][i as usize % 3];
        fs.add_file(
            &format!("{dir}\\f{i:02}.{ext}"),
            &bytes(10 + i, 500 + 211 * i as usize, i % 5 != 0),
        );
    }
    let sds: Vec<Vec<u8>> = (0..4u8)
        .map(|k| vec![1, 0, 4, 0x80 | k, 0, 0, 0, 0])
        .collect();
    for (i, (path, node)) in fs.nodes.iter_mut().enumerate() {
        let t = 130_000_000_000_000_000 + 10_000_000 * i as u64;
        node.times = (t, t + 7, t + 3);
        if path.contains("deep") || path.starts_with("bin") {
            node.security_descriptor = Some(sds[i % sds.len()].clone());
        }
    }
    let shared = MemNode {
        attributes: FILE_ATTRIBUTE_ARCHIVE,
        data: Some(bytes(99, 70_000, true)),
        link_id: 7,
        times: (5, 6, 7),
        ..Default::default()
    };
    fs.nodes.insert("link_a".into(), shared.clone());
    fs.nodes.insert("docs\\link_b".into(), shared);
    assert_eq!(
        fs.nodes["empty"].attributes & FILE_ATTRIBUTE_DIRECTORY,
        FILE_ATTRIBUTE_DIRECTORY
    );
    fs
}

fn write(path: &Path, opts: &WriteOptions, deterministic: bool) {
    let mut w = WimWriter::create(path, opts.clone()).unwrap();
    w.set_deterministic(deterministic);
    for name in ["one", "two"] {
        let mut src = tree();
        w.add_image(
            &mut src,
            &NoFilter,
            &ImageOptions {
                name: Some(name.into()),
                ..Default::default()
            },
            &mut |_| {},
        )
        .unwrap();
    }
    w.finish().unwrap();
}

/// The file with its header GUID zeroed and every image's XML creation
/// and last modification time set to 0 (the header and XML parsed and
/// written back, not patched at guessed offsets).
fn masked(path: &Path) -> Vec<u8> {
    let mut b = std::fs::read(path).unwrap();
    let mut h = Header::parse(&b[..HEADER_SIZE]).unwrap();
    assert_eq!(
        h.to_bytes()[..],
        b[..HEADER_SIZE],
        "header does not round-trip"
    );
    h.guid = [0; 16];
    b[..HEADER_SIZE].copy_from_slice(&h.to_bytes());
    let (off, len) = (
        h.xml_data.offset_in_wim as usize,
        h.xml_data.size_in_wim as usize,
    );
    let mut info = WimInfo::parse(&b[off..off + len]).unwrap();
    assert_eq!(
        info.to_bytes(),
        b[off..off + len],
        "XML does not round-trip"
    );
    for im in &mut info.images {
        assert_ne!(im.creation_time, 0);
        im.creation_time = 0;
        im.last_modification_time = 0;
    }
    let xml = info.to_bytes();
    assert_eq!(xml.len(), len, "times are written at a fixed width");
    b[off..off + len].copy_from_slice(&xml);
    b
}

fn assert_same(a: &[u8], b: &[u8], ctx: &str) {
    if let Some(i) = a.iter().zip(b).position(|(x, y)| x != y) {
        panic!("{ctx}: first difference at byte {i} of {}", a.len());
    }
    assert_eq!(a.len(), b.len(), "{ctx}: lengths differ");
}

fn configs() -> Vec<(&'static str, WriteOptions)> {
    let base = WriteOptions::default();
    let with = |compression, chunk_size| WriteOptions {
        compression,
        chunk_size,
        ..base.clone()
    };
    let solid = |compression, chunk_size| WriteOptions {
        solid: Some(SolidOptions {
            compression,
            chunk_size,
        }),
        ..base.clone()
    };
    vec![
        ("none", with(CompressionFormat::None, 32768)),
        ("xpress", with(CompressionFormat::Xpress, 32768)),
        ("lzx", with(CompressionFormat::Lzx, 32768)),
        (
            "lzx 64K + integrity",
            WriteOptions {
                integrity: true,
                ..with(CompressionFormat::Lzx, 65536)
            },
        ),
        ("lzms", with(CompressionFormat::Lzms, 131072)),
        ("solid lzms", solid(CompressionFormat::Lzms, 64 << 20)),
        ("solid lzms 64K", solid(CompressionFormat::Lzms, 65536)),
        ("solid lzx", solid(CompressionFormat::Lzx, 32768)),
        ("solid xpress", solid(CompressionFormat::Xpress, 16384)),
    ]
}

#[test]
fn same_bytes_whatever_the_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, opts) in configs() {
        let mut first: Option<Vec<u8>> = None;
        for threads in [1, 2, 4, 3] {
            let path = tmp
                .path()
                .join(format!("{}-{threads}.wim", name.replace(' ', "_")));
            write(
                &path,
                &WriteOptions {
                    threads,
                    ..opts.clone()
                },
                false,
            );
            Wim::open(&path).unwrap();
            let m = masked(&path);
            match &first {
                None => first = Some(m),
                Some(f) => assert_same(f, &m, &format!("{name}: 1 thread vs {threads}")),
            }
        }
    }
}

#[test]
fn deterministic_mode_fixes_guid_and_times() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = WriteOptions {
        threads: 2,
        ..WriteOptions::default()
    };
    let (a, b) = (tmp.path().join("a.wim"), tmp.path().join("b.wim"));
    write(&a, &opts, true);
    // Later, with another thread count: still the same file.
    std::thread::sleep(std::time::Duration::from_millis(20));
    write(
        &b,
        &WriteOptions {
            threads: 1,
            ..opts.clone()
        },
        true,
    );
    let (ba, bb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_same(&ba, &bb, "two deterministic captures");
    let wim = Wim::open(&a).unwrap();
    assert_ne!(wim.header.guid, [0; 16]);
    // The newest creation or last-write time of the tree (last access
    // times, larger here, do not count).
    let newest = tree()
        .nodes
        .values()
        .map(|n| n.times.0.max(n.times.2))
        .max()
        .unwrap();
    for im in &wim.info.images {
        assert_eq!(im.creation_time, newest);
        assert_eq!(im.last_modification_time, newest);
    }
    // Other content, other GUID; without the mode, random GUIDs.
    let c = tmp.path().join("c.wim");
    write(
        &c,
        &WriteOptions {
            compression: CompressionFormat::Xpress,
            ..opts.clone()
        },
        true,
    );
    assert_ne!(Wim::open(&c).unwrap().header.guid, wim.header.guid);
    let (d, e) = (tmp.path().join("d.wim"), tmp.path().join("e.wim"));
    write(&d, &opts, false);
    write(&e, &opts, false);
    assert_ne!(
        Wim::open(&d).unwrap().header.guid,
        Wim::open(&e).unwrap().header.guid
    );
}
