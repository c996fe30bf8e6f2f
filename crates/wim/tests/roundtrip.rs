//! Capture an in-memory tree into a WIM file, read it back and apply it:
//! the result must equal the source, for every compression type.

use std::collections::BTreeMap;
use std::path::Path;

mod common;

use common::{apply_to_memory, apply_to_memory_open};
use tasq_wim::capture::NoFilter;
use tasq_wim::image::*;
use tasq_wim::memfs::{MemFs, MemNode};
use tasq_wim::reader::Wim;
use tasq_wim::writer::{ImageOptions, WimWriter, WriteOptions};
use tasq_wim::CompressionFormat;

pub fn sample_fs(seed: u8) -> MemFs {
    let mut fs = MemFs::new();
    fs.nodes.get_mut("").unwrap().security_descriptor = Some(vec![
        1, 0, 4, 0x80, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    fs.add_dir("Windows");
    fs.add_dir("Windows\\System32");
    fs.add_dir("empty dir");
    let big: Vec<u8> = (0..200_000u32)
        .map(|i| ((i * 31 + seed as u32) % 251) as u8)
        .collect();
    fs.add_file("Windows\\System32\\big.dll", &big);
    fs.add_file("Windows\\System32\\copy-of-big.dll", &big);
    fs.add_file("Windows\\notepad.exe", b"MZ hello world");
    fs.add_file("empty.txt", b"");
    fs.add_file("Windows\\win.ini", &[seed; 32768]);
    let mut ads = MemNode {
        attributes: FILE_ATTRIBUTE_ARCHIVE | FILE_ATTRIBUTE_HIDDEN,
        data: Some(b"main".to_vec()),
        ..Default::default()
    };
    ads.ads.insert(
        "Zone.Identifier".into(),
        b"[ZoneTransfer]\r\nZoneId=3".to_vec(),
    );
    ads.ads.insert("empty".into(), Vec::new());
    ads.times = (
        132_000_000_000_000_000,
        132_000_000_000_000_001,
        132_000_000_000_000_002,
    );
    ads.short_name = "ADSFIL~1.TXT".into();
    ads.security_descriptor = Some(vec![
        1, 0, 4, 0x80, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7,
    ]);
    fs.nodes.insert("ads file.txt".into(), ads);
    let link = MemNode {
        attributes: FILE_ATTRIBUTE_ARCHIVE,
        data: Some(b"linked content".to_vec()),
        link_id: 7,
        ..Default::default()
    };
    fs.nodes.insert("a-link".into(), link.clone());
    fs.nodes.insert("Windows\\b-link".into(), link);
    let rp = tasq_wim::reparse::symlink_reparse_from_unix("/Windows/notepad.exe").unwrap();
    fs.nodes.insert(
        "symlink".into(),
        MemNode {
            attributes: 0,
            reparse: Some((IO_REPARSE_TAG_SYMLINK, rp)),
            ..Default::default()
        },
    );
    fs.add_file(
        "unicode \u{00e9}\u{4e2d}\u{1f600}.txt",
        "h\u{00e9}llo".as_bytes(),
    );
    fs
}

/// What must survive a round trip, per entry: attributes, times, security
/// descriptor, short name, data, named streams, reparse data.
type Canon = (
    u32,
    (u64, u64, u64),
    Option<Vec<u8>>,
    String,
    Option<Vec<u8>>,
    BTreeMap<String, Vec<u8>>,
    Option<(u32, Vec<u8>)>,
);

/// The parts of a tree that must survive a round trip.
pub fn canonical(fs: &MemFs) -> BTreeMap<String, Canon> {
    fs.nodes
        .iter()
        .map(|(k, n)| {
            let data = if n.attributes & FILE_ATTRIBUTE_DIRECTORY != 0 {
                None
            } else {
                Some(n.data.clone().unwrap_or_default())
            };
            (
                k.clone(),
                (
                    n.attributes & !FILE_ATTRIBUTE_REPARSE_POINT,
                    n.times,
                    n.security_descriptor.clone(),
                    n.short_name.clone(),
                    data,
                    n.ads.clone(),
                    n.reparse.clone(),
                ),
            )
        })
        .collect()
}

/// Asserts equality, printing only the first differing entry (short).
pub fn assert_same(a: &MemFs, b: &MemFs, ctx: &str) {
    let (ca, cb) = (canonical(a), canonical(b));
    let keys: std::collections::BTreeSet<_> = ca.keys().chain(cb.keys()).collect();
    for k in keys {
        let (x, y) = (ca.get(k), cb.get(k));
        if x != y {
            let short = |v: Option<&_>| {
                let s = format!("{v:?}");
                s.chars().take(400).collect::<String>()
            };
            panic!(
                "{ctx}: entry {k:?} differs:\n got  {}\n want {}",
                short(x),
                short(y)
            );
        }
    }
}

/// The compression types of version 0x10D00 WIMs.
const CHUNKED: [CompressionFormat; 3] = [
    CompressionFormat::None,
    CompressionFormat::Xpress,
    CompressionFormat::Lzx,
];

/// Writes `fs` as the one image of a new WIM at `path`, then opens it.
fn write_with(fs: &mut MemFs, path: &Path, opts: WriteOptions) -> Wim {
    let mut w = WimWriter::create(path, opts).unwrap();
    w.add_image(fs, &NoFilter, &ImageOptions::default(), &mut |_| {})
        .unwrap();
    w.finish().unwrap();
    Wim::open(path).unwrap()
}

fn capture(fs: &mut MemFs, path: &Path, compression: CompressionFormat, integrity: bool) {
    let opts = WriteOptions {
        compression,
        integrity,
        threads: 2,
        ..WriteOptions::default()
    };
    let mut w = WimWriter::create(path, opts).unwrap();
    w.add_image(
        fs,
        &NoFilter,
        &ImageOptions {
            name: Some("first".into()),
            description: Some("desc".into()),
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap();
    w.finish().unwrap();
}

#[test]
fn round_trip_every_compression() {
    let dir = tempfile::tempdir().unwrap();
    for (i, c) in CHUNKED.into_iter().enumerate() {
        let mut fs = sample_fs(i as u8);
        let path = dir.path().join(format!("t{i}.wim"));
        capture(&mut fs, &path, c, i == 2);
        let wim = Wim::open(&path).unwrap();
        assert_eq!(wim.image_count(), 1);
        assert_eq!(wim.compression(), c);
        let info = &wim.info.images[0];
        assert_eq!(info.name.as_deref(), Some("first"));
        assert_eq!(info.dir_count, 4);
        // files: big, copy, notepad, empty, win.ini, ads, 2 links, symlink, unicode
        assert_eq!(info.file_count, 10);
        let out = apply_to_memory(&wim, 1);
        assert_same(&out, &fs, &format!("compression {c}"));
        assert_eq!(out.applied_links.len(), 1);
        let rep = tasq_wim::verify::verify(&wim, 2, &mut |_, _| {}).unwrap();
        assert_eq!(rep.images, 1);
        // Deduplication: big.dll and its copy are stored once.
        let big_blobs = wim
            .blobs
            .iter()
            .filter(|b| b.reshdr.uncompressed_size == 200_000)
            .count();
        assert_eq!(big_blobs, 1);
    }
}

/// Identical files that are not hard links share one blob; apply writes
/// it to every name, whether it holds the blob in memory (small) or reads
/// it again for the other names (above its 4 MiB buffer), in every
/// compression type, with other blobs before, between and after.
#[test]
fn blobs_with_several_names_reach_every_name() {
    let dir = tempfile::tempdir().unwrap();
    let large: Vec<u8> = (0..(5u32 << 20) + 12_345)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    // Above the 256 KiB a kept buffer may hold, below the 4 MiB limit.
    let small = common::bytes(9, 600_000, true);
    for (i, c) in CHUNKED.into_iter().enumerate() {
        let mut fs = MemFs::new();
        fs.add_dir("a");
        fs.add_dir("b");
        fs.add_file("a\\first.bin", &large);
        fs.add_file("a\\other.txt", b"between");
        fs.add_file("b\\second.bin", &large);
        fs.add_file("third.bin", &large);
        fs.add_file("a\\s1", &small);
        fs.add_file("b\\s2", &small);
        fs.add_file("z.txt", b"after");
        let path = dir.path().join(format!("dup{i}.wim"));
        capture(&mut fs, &path, c, false);
        let wim = Wim::open(&path).unwrap();
        let large_blobs = wim
            .blobs
            .iter()
            .filter(|b| b.reshdr.uncompressed_size == large.len() as u64)
            .count();
        assert_eq!(large_blobs, 1, "{c}: stored once");
        let out = apply_to_memory(&wim, 1);
        assert_same(&out, &fs, &format!("duplicates, compression {c}"));
        for name in ["a\\first.bin", "b\\second.bin", "third.bin"] {
            assert_eq!(
                out.nodes[name].data.as_deref(),
                Some(&large[..]),
                "{c}: {name}"
            );
        }
        for name in ["a\\s1", "b\\s2"] {
            assert_eq!(
                out.nodes[name].data.as_deref(),
                Some(&small[..]),
                "{c}: {name}"
            );
        }
    }
}

/// `len` bytes of one 64 KiB pseudo-random block repeated: large, and
/// quick for any codec to compress.
fn repeated_block(seed: u32, len: usize) -> Vec<u8> {
    let block = common::bytes(seed, 64 << 10, false);
    block.iter().copied().cycle().take(len).collect()
}

/// Bytes the file data of `wim` takes in it: solid resources, and the
/// other blobs' resources (metadata left out: an apply reads it apart).
fn stored_bytes(wim: &Wim) -> u64 {
    wim.solid.iter().map(|r| r.size_in_wim).sum::<u64>()
        + wim
            .blobs
            .iter()
            .filter(|b| b.solid.is_none() && !b.reshdr.is_metadata())
            .map(|b| b.reshdr.size_in_wim)
            .sum::<u64>()
}

/// An apply reads every chunk once: reparse data comes in the same pass
/// as file data (a second pass decompressed again every chunk holding a
/// symlink — on a solid WIM, whole 64 MiB chunks), and a blob of a few
/// MiB with several names (not hard links) is held, not read again for
/// each name (a 1 MiB limit made a solid apply of /usr/share/doc 5x
/// slower).
#[test]
fn apply_reads_each_chunk_once() {
    let dir = tempfile::tempdir().unwrap();
    let solid = |compression, chunk_size| {
        Some(tasq_wim::writer::SolidOptions {
            compression,
            chunk_size,
        })
    };
    for (i, (compression, solid)) in [
        (CompressionFormat::Xpress, None),
        (
            CompressionFormat::Lzx,
            solid(CompressionFormat::Lzms, 1 << 16),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut fs = MemFs::new();
        for k in 0..40u32 {
            let name = format!("f{k:02}");
            fs.add_file(&name, &common::bytes(k, 9_000 + k as usize * 700, true));
            if k % 20 == 0 {
                // Identical 1.5 MiB files, one blob with two names.
                let same = common::bytes(99, 3 << 19, true);
                fs.add_file(&format!("same{k:02}"), &same);
            }
            // Symlinks between the files, so their data sits in every chunk.
            let rp = tasq_wim::reparse::symlink_reparse_from_unix(&format!("/target/{k}")).unwrap();
            fs.nodes.insert(
                format!("l{k:02}"),
                MemNode {
                    attributes: FILE_ATTRIBUTE_REPARSE_POINT,
                    reparse: Some((IO_REPARSE_TAG_SYMLINK, rp)),
                    ..Default::default()
                },
            );
        }
        let path = dir.path().join(format!("once{i}.wim"));
        let opts = WriteOptions {
            compression,
            threads: 2,
            solid,
            ..WriteOptions::default()
        };
        let wim = write_with(&mut fs, &path, opts);
        let stored = stored_bytes(&wim);
        assert!(solid.is_none() || wim.solid.len() == 1 && wim.solid[0].chunks.len() > 4);
        let out = apply_to_memory(&wim, 1);
        assert_same(&out, &fs, &format!("case {i}"));
        let read = wim.chunk_bytes_read();
        assert!(read > 0);
        assert!(
            read <= stored,
            "case {i}: {read} bytes of chunks read for {stored} stored"
        );
    }
}

#[test]
fn append_shares_blobs_and_delete_rebuilds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("multi.wim");
    let mut fs1 = sample_fs(1);
    capture(&mut fs1, &path, CompressionFormat::Xpress, false);
    let size1 = std::fs::metadata(&path).unwrap().len();
    let mut fs2 = sample_fs(1);
    fs2.add_file("only-in-second", b"second");
    let mut w = WimWriter::append(&path, WriteOptions::default()).unwrap();
    w.add_image(
        &mut fs2,
        &NoFilter,
        &ImageOptions {
            name: Some("second".into()),
            boot: true,
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap();
    // Same name twice is refused.
    let dup = w.add_image(
        &mut fs2,
        &NoFilter,
        &ImageOptions {
            name: Some("first".into()),
            ..Default::default()
        },
        &mut |_| {},
    );
    assert!(dup.is_err());
    w.finish().unwrap();
    let size2 = std::fs::metadata(&path).unwrap().len();
    // Second image shares all blobs but one small file: the WIM grows little.
    assert!(size2 < size1 + 16384, "{size1} -> {size2}");
    let wim = Wim::open(&path).unwrap();
    assert_eq!(wim.image_count(), 2);
    assert_eq!(wim.header.boot_index, 2);
    assert_eq!(wim.resolve_image("second").unwrap(), 2);
    assert_same(&apply_to_memory(&wim, 1), &fs1, "image 1");
    assert_same(&apply_to_memory(&wim, 2), &fs2, "image 2");
    tasq_wim::verify::verify(&wim, 1, &mut |_, _| {}).unwrap();
}

#[test]
fn failed_capture_leaves_destination_untouched() {
    struct Failing(MemFs);
    impl tasq_wim::capture::CaptureSource for Failing {
        fn describe(&self) -> String {
            "failing".into()
        }
        fn scan(
            &mut self,
            f: &dyn tasq_wim::capture::CaptureFilter,
            p: &mut dyn FnMut(tasq_wim::capture::ScanProgress),
        ) -> tasq_wim::Result<ImageTree> {
            self.0.scan(f, p)
        }
        fn open_stream(&self, id: u64) -> tasq_wim::Result<Box<dyn std::io::Read + Send + '_>> {
            if id == 2 {
                Err(tasq_wim::WimError::Capture {
                    path: "x".into(),
                    reason: "disk on fire".into(),
                })
            } else {
                self.0.open_stream(id)
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keep.wim");
    std::fs::write(&path, b"precious old content").unwrap();
    let mut w = WimWriter::create(&path, WriteOptions::default()).unwrap();
    let mut src = Failing(sample_fs(0));
    assert!(w
        .add_image(&mut src, &NoFilter, &ImageOptions::default(), &mut |_| {})
        .is_err());
    drop(w);
    assert_eq!(std::fs::read(&path).unwrap(), b"precious old content");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "temporary file left behind");
}

/// A byte changed in any blob's stored data is reported as a SHA-1
/// mismatch naming that blob, by apply and by verify, wherever the blob
/// lies: the check runs on its own thread and must still reach the caller.
#[test]
fn corrupt_data_is_a_hash_mismatch_naming_the_blob() {
    use tasq_wim::apply::{apply_image, ApplyOptions};
    use tasq_wim::error::WimError;
    let dir = tempfile::tempdir().unwrap();
    let mut fs = MemFs::new();
    for k in 0..60u32 {
        fs.add_file(
            &format!("f{k:02}"),
            &common::bytes(k, 3_000 + k as usize * 500, false),
        );
    }
    // Bigger than one batch of the hashing thread and one read chunk.
    fs.add_file("big", &common::bytes(99, 3 << 20, false));
    let path = dir.path().join("clean.wim");
    let opts = WriteOptions {
        compression: CompressionFormat::None,
        threads: 2,
        ..WriteOptions::default()
    };
    let mut w = WimWriter::create(&path, opts).unwrap();
    w.add_image(&mut fs, &NoFilter, &ImageOptions::default(), &mut |_| {})
        .unwrap();
    w.finish().unwrap();
    let clean = std::fs::read(&path).unwrap();
    let wim = Wim::open(&path).unwrap();
    let mut blobs = wim.blobs.clone();
    blobs.sort_by_key(|b| b.read_order());
    let big = blobs
        .iter()
        .position(|b| b.reshdr.uncompressed_size == 3 << 20)
        .unwrap();
    for i in [0, blobs.len() / 2, big, blobs.len() - 1] {
        let b = &blobs[i];
        let mut bytes = clean.clone();
        let at = (b.reshdr.offset_in_wim + b.reshdr.size_in_wim / 2) as usize;
        bytes[at] ^= 0x40;
        let bad = dir.path().join(format!("bad{i}.wim"));
        std::fs::write(&bad, &bytes).unwrap();
        let wim = Wim::open(&bad).unwrap();
        let mut out = MemFs::new();
        let opts = ApplyOptions {
            threads: 2,
            ..Default::default()
        };
        let err = apply_image(&wim, 1, &mut out, &opts, &mut |_| {}).unwrap_err();
        let hash = b.hash.to_string();
        assert!(
            matches!(&err, WimError::HashMismatch { what, .. } if what.contains(&hash)),
            "blob {i}: {err}"
        );
        let err = tasq_wim::verify::verify(&wim, 2, &mut |_, _| {}).unwrap_err();
        assert!(err.to_string().contains(&hash), "blob {i}: {err}");
    }
}

/// Large blobs with several names (above the apply's 4 MiB buffer) are
/// read again for their other names in one pass over all of them: a solid
/// chunk holding two of them is decoded once more, not once per blob.
#[test]
fn large_blobs_with_several_names_share_one_more_pass() {
    let dir = tempfile::tempdir().unwrap();
    let mut fs = MemFs::new();
    for (k, seed) in [(0, 11u32), (1, 12)] {
        // A 64 KiB block repeated: large, and quick for LZMS to compress.
        let data = repeated_block(seed, (4 << 20) + 100_000);
        fs.add_file(&format!("a{k}"), &data);
        fs.add_file(&format!("b{k}"), &data);
    }
    fs.add_file("small", b"between");
    let path = dir.path().join("solid-dups.wim");
    let opts = WriteOptions {
        compression: CompressionFormat::Lzx,
        threads: 2,
        solid: Some(tasq_wim::writer::SolidOptions {
            compression: CompressionFormat::Lzms,
            chunk_size: 16 << 20,
        }),
        ..WriteOptions::default()
    };
    let wim = write_with(&mut fs, &path, opts);
    assert_eq!(wim.solid.len(), 1);
    assert_eq!(wim.solid[0].chunks.len(), 1, "both blobs in one chunk");
    let stored = wim.solid[0].size_in_wim;
    let out = apply_to_memory(&wim, 1);
    assert_same(&out, &fs, "solid, large blobs with two names");
    let read = wim.chunk_bytes_read();
    // The main pass and one more: reading each blob again on its own
    // decoded the chunk once per blob (three times).
    assert!(
        read <= 2 * stored,
        "{read} bytes of chunks read for {stored} stored"
    );
    // A target that takes both names at once needs no second pass.
    let mut out = apply_to_memory_open(&wim, 1, 2);
    assert_same(&out, &fs, "solid, both names open together");
    let read2 = wim.chunk_bytes_read() - read;
    assert!(read2 <= stored, "{read2} bytes read for {stored} stored");
    out.max_open = 1;
    assert_eq!(out, apply_to_memory(&wim, 1));
}

/// A target that takes several streams at once gets a blob's names in
/// groups of its limit: one read for as many names as it holds, one more
/// pass per further group (a large blob), and a small blob with more names
/// than that is held and written to each.
#[test]
fn names_of_a_blob_are_opened_in_groups_of_the_target_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut fs = MemFs::new();
    let large = repeated_block(21, (4 << 20) + 4096);
    for k in 0..5 {
        fs.add_file(&format!("large{k}"), &large);
    }
    let small = common::bytes(22, 20_000, true);
    for k in 0..7 {
        fs.add_file(&format!("small{k}"), &small);
    }
    fs.add_file("alone", b"one name");
    let path = dir.path().join("groups.wim");
    let opts = WriteOptions {
        compression: CompressionFormat::Xpress,
        threads: 2,
        ..WriteOptions::default()
    };
    let wim = write_with(&mut fs, &path, opts);
    let stored_of = |data: &[u8]| {
        let h = tasq_wim::Sha1Hash::of(data);
        wim.blob(&h).expect("blob").reshdr.size_in_wim
    };
    let (large_stored, small_stored) = (stored_of(&large), stored_of(&small));
    let mut reads = Vec::new();
    for limit in [1, 2, 3, 5, 32] {
        let before = wim.chunk_bytes_read();
        let out = apply_to_memory_open(&wim, 1, limit);
        assert_same(&out, &fs, &format!("limit {limit}"));
        reads.push(wim.chunk_bytes_read() - before);
    }
    // With 5 or more open at once, every blob is read once; each group
    // of names beyond the first reads the large blob again (its chunks:
    // its stored size less its chunk table); the small one (7 names) is
    // never read again.
    let once = reads[3];
    assert_eq!(reads[4], once);
    let again = reads[0] - once;
    assert_eq!(again % 4, 0);
    let per_pass = again / 4;
    assert!(
        per_pass <= large_stored && per_pass + 1024 > large_stored,
        "{per_pass} read again for a blob of {large_stored} (small {small_stored})"
    );
    assert_eq!(reads[1], once + 2 * per_pass, "limit 2: three groups");
    assert_eq!(reads[2], once + per_pass, "limit 3: two groups");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 12,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Files sharing content, applied into a target taking `max_open`
    /// streams at once, from a plain or a solid WIM: every file gets its
    /// bytes (MemFs refuses a stream opened twice, more open than allowed,
    /// or a begin after a write), and the chunks read stay within one pass
    /// plus one per further group of names of a blob too large to buffer.
    #[test]
    fn shared_content_applies_whatever_the_open_limit(
        contents in proptest::collection::vec((0usize..3, 1usize..7), 1..5),
        max_open in 1usize..5,
        solid in proptest::bool::ANY,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut fs = MemFs::new();
        let mut large_names = Vec::new();
        for (k, &(kind, names)) in contents.iter().enumerate() {
            let seed = 100 + k as u32;
            let data = match kind {
                0 => common::bytes(seed, 50 + 97 * k, true),
                1 => common::bytes(seed, 70_000 + k, false),
                // Above the 4 MiB the applier buffers: a repeated block,
                // quick to compress.
                _ => repeated_block(seed, (4 << 20) + 1000 + k),
            };
            if kind == 2 {
                large_names.push(names);
            }
            for n in 0..names {
                fs.add_file(&format!("c{k}-n{n}"), &data);
            }
        }
        let path = dir.path().join("shared.wim");
        let opts = WriteOptions {
            compression: CompressionFormat::Xpress,
            threads: 2,
            solid: solid.then_some(tasq_wim::writer::SolidOptions {
                compression: CompressionFormat::Lzms,
                chunk_size: 1 << 20,
            }),
            ..WriteOptions::default()
        };
        let wim = write_with(&mut fs, &path, opts);
        let stored = stored_bytes(&wim);
        let out = apply_to_memory_open(&wim, 1, max_open);
        assert_same(&out, &fs, &format!("max_open {max_open}, solid {solid}"));
        let passes = 1 + large_names
            .iter()
            .map(|&n| n.div_ceil(max_open) - 1)
            .max()
            .unwrap_or(0) as u64;
        let read = wim.chunk_bytes_read();
        proptest::prop_assert!(
            read <= passes * stored,
            "{} bytes read for {} stored in {} passes", read, stored, passes
        );
    }
}

/// More resources than the writer keeps finished headers for before it
/// moves them to their blobs (1024): every blob still gets its own, as
/// reading back, the blob table's check and wimlib's verify show.
#[test]
fn thousands_of_resources_each_keep_their_header() {
    let dir = tempfile::tempdir().unwrap();
    let mut fs = MemFs::new();
    for k in 0..2600u32 {
        fs.add_file(
            &format!("f{k:04}"),
            &common::bytes(k, 200 + (k as usize % 700), k % 2 == 0),
        );
    }
    let path = dir.path().join("many.wim");
    let opts = WriteOptions {
        compression: CompressionFormat::Xpress,
        threads: 2,
        ..WriteOptions::default()
    };
    let wim = write_with(&mut fs, &path, opts);
    assert!(wim.blobs.len() >= 2600, "{} blobs", wim.blobs.len());
    let out = apply_to_memory(&wim, 1);
    assert_same(&out, &fs, "2600 resources");
    common::wimlib(&["verify", path.to_str().unwrap()]);
}
