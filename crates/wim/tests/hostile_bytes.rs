//! Damaged WIM files, byte by byte: truncations and single-bit flips of
//! small WIMs in each compression format (a sample by default, every
//! position with `TASQ_HOSTILE_EXHAUSTIVE=1`). Reading must
//! never panic or hang; a truncated WIM must never pass `verify`; and when
//! a flipped WIM does pass `verify` (the flip hit something that carries
//! no file content: the XML, a reference count, the GUID), applying it
//! must give exactly the original tree: a corruption can be refused, but
//! never silently applied.

use std::path::Path;
use std::time::{Duration, Instant};

use tasq_wim::apply::{apply_image, ApplyOptions};
use tasq_wim::capture::NoFilter;
use tasq_wim::image::*;
use tasq_wim::memfs::{MemFs, MemNode};
use tasq_wim::reader::Wim;
use tasq_wim::verify::verify;
use tasq_wim::writer::{ImageOptions, SolidOptions, WimWriter, WriteOptions};
use tasq_wim::CompressionFormat;

/// A small tree with a bit of everything: a 2-chunk file, a duplicate, an
/// empty file, a hard link, a named stream, a symlink, a short name.
fn small_fs(seed: u8) -> MemFs {
    let mut fs = MemFs::new();
    fs.add_dir("d");
    fs.add_dir("d\\e");
    let big: Vec<u8> = (0..40_000u32)
        .map(|i| (((i / 7) * 13 + seed as u32) % 61) as u8 + b' ')
        .collect();
    fs.add_file("d\\big.txt", &big);
    fs.add_file("d\\e\\copy.txt", &big);
    fs.add_file("empty", b"");
    fs.add_file("small", &[seed; 100]);
    let link = MemNode {
        attributes: FILE_ATTRIBUTE_ARCHIVE,
        data: Some(b"linked".to_vec()),
        link_id: 3,
        ..Default::default()
    };
    fs.nodes.insert("l1".into(), link.clone());
    fs.nodes.insert("d\\l2".into(), link);
    let mut ads = MemNode {
        attributes: FILE_ATTRIBUTE_ARCHIVE,
        data: Some(b"main".to_vec()),
        short_name: "ADS~1".into(),
        ..Default::default()
    };
    ads.ads
        .insert("Zone.Identifier".into(), b"[ZoneTransfer]".to_vec());
    ads.times = (
        131_000_000_000_000_000,
        131_000_000_000_000_001,
        131_000_000_000_000_002,
    );
    fs.nodes.insert("ads file".into(), ads);
    let rp = tasq_wim::reparse::symlink_reparse_from_unix("d/big.txt").unwrap();
    fs.nodes.insert(
        "sym".into(),
        MemNode {
            reparse: Some((IO_REPARSE_TAG_SYMLINK, rp)),
            ..Default::default()
        },
    );
    fs
}

/// Writes a two-image WIM of `small_fs` trees (file data in solid
/// resources of the same format, 4 KiB chunks for XPRESS, if `solid`).
fn write_wim(path: &Path, compression: CompressionFormat, integrity: bool, solid: bool) {
    let opts = WriteOptions {
        compression,
        integrity,
        threads: 1,
        solid: solid.then(|| SolidOptions {
            compression,
            chunk_size: if compression == CompressionFormat::Xpress {
                4096
            } else {
                32768
            },
        }),
        ..WriteOptions::default()
    };
    let mut w = WimWriter::create(path, opts).unwrap();
    for (i, seed) in [1u8, 2].into_iter().enumerate() {
        let mut fs = small_fs(seed);
        let name = format!("image{}", i + 1);
        w.add_image(
            &mut fs,
            &NoFilter,
            &ImageOptions {
                name: Some(name),
                ..Default::default()
            },
            &mut |_| {},
        )
        .unwrap();
    }
    w.finish().unwrap();
}

/// Applies every image; the trees, or the first error.
fn apply_all(wim: &Wim) -> tasq_wim::Result<Vec<MemFs>> {
    let mut out = Vec::new();
    for n in 1..=wim.image_count() {
        let mut fs = MemFs::new();
        apply_image(
            wim,
            n,
            &mut fs,
            &ApplyOptions {
                threads: 1,
                ..Default::default()
            },
            &mut |_| {},
        )?;
        out.push(fs);
    }
    Ok(out)
}

/// Opens, verifies and applies; `Ok(trees)` only if all of it succeeded.
/// Apply is attempted even after a failed verify (it must fail or succeed
/// without panicking either way).
fn read_everything(path: &Path) -> Result<Vec<MemFs>, String> {
    let wim = Wim::open(path).map_err(|e| e.to_string())?;
    let v = verify(&wim, 1, &mut |_, _| {});
    for n in 1..=wim.image_count() + 1 {
        let _ = wim.read_image(n);
    }
    let trees = apply_all(&wim);
    v.map_err(|e| e.to_string())?;
    trees.map_err(|e| format!("verify passed but apply failed: {e}"))
}

fn nodes(trees: &[MemFs]) -> Vec<&std::collections::BTreeMap<String, MemNode>> {
    trees.iter().map(|t| &t.nodes).collect()
}

/// Test every `n`th position, or every one with TASQ_HOSTILE_EXHAUSTIVE=1
/// (minutes instead of seconds).
fn sample_stride(n: usize) -> usize {
    if std::env::var_os("TASQ_HOSTILE_EXHAUSTIVE").is_some() {
        1
    } else {
        n
    }
}

/// (format, integrity table, solid)
const FORMATS: [(CompressionFormat, bool, bool); 6] = [
    (CompressionFormat::None, false, false),
    (CompressionFormat::Xpress, false, false),
    (CompressionFormat::Lzx, false, false),
    (CompressionFormat::Xpress, true, false),
    (CompressionFormat::Lzx, false, true),
    (CompressionFormat::Xpress, false, true),
];

#[test]
fn every_truncation_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (c, integrity, solid) in FORMATS {
        let path = dir.path().join(format!("{c}-{integrity}-{solid}.wim"));
        write_wim(&path, c, integrity, solid);
        let bytes = std::fs::read(&path).unwrap();
        assert!(read_everything(&path).is_ok());
        let cut_path = dir.path().join("cut.wim");
        let start = Instant::now();
        // The header's bytes, then a sample (every length with
        // TASQ_HOSTILE_EXHAUSTIVE=1), and the last bytes (XML, integrity).
        let stride = sample_stride(if c == CompressionFormat::None {
            151
        } else {
            17
        });
        let lens: Vec<usize> = (0..bytes.len())
            .filter(|&l| l <= 216 || l + 64 > bytes.len() || l % stride == 0)
            .collect();
        for &len in &lens {
            std::fs::write(&cut_path, &bytes[..len]).unwrap();
            if read_everything(&cut_path).is_ok() {
                panic!(
                    "{c} (integrity {integrity}): the WIM cut to {len} of {} bytes verified",
                    bytes.len()
                );
            }
        }
        eprintln!(
            "{c} integrity={integrity}: {} truncations of {} bytes refused in {:?}",
            lens.len(),
            bytes.len(),
            start.elapsed()
        );
        assert!(start.elapsed() < Duration::from_secs(60));
    }
}

#[test]
fn bit_flips_are_refused_or_harmless() {
    let dir = tempfile::tempdir().unwrap();
    for (c, integrity, solid) in FORMATS {
        let path = dir.path().join(format!("{c}-{integrity}-{solid}.wim"));
        write_wim(&path, c, integrity, solid);
        let bytes = std::fs::read(&path).unwrap();
        let reference = read_everything(&path).unwrap();
        assert_eq!(reference.len(), 2);
        let wim = Wim::open(&path).unwrap();
        // Every header byte; elsewhere a sample (every byte with
        // TASQ_HOSTILE_EXHAUSTIVE=1), denser outside the file data.
        let data: Vec<(u64, u64)> = wim
            .blobs
            .iter()
            .map(|b| {
                (
                    b.reshdr.offset_in_wim,
                    b.reshdr.offset_in_wim + b.reshdr.size_in_wim,
                )
            })
            .collect();
        drop(wim);
        let data_stride = sample_stride(if c == CompressionFormat::None {
            307
        } else {
            37
        });
        let other_stride = sample_stride(9);
        let in_data = |p: u64| data.iter().any(|&(a, b)| p >= a && p < b);
        let flipped = dir.path().join("flipped.wim");
        let (mut refused, mut harmless) = (0u32, 0u32);
        let start = Instant::now();
        for pos in 0..bytes.len() {
            let stride = if in_data(pos as u64) {
                data_stride
            } else {
                other_stride
            };
            if pos >= 208 && pos % stride != 0 {
                continue;
            }
            let mut b = bytes.clone();
            b[pos] ^= 1 << (pos % 8);
            std::fs::write(&flipped, &b).unwrap();
            match read_everything(&flipped) {
                Err(_) => refused += 1,
                Ok(trees) => {
                    harmless += 1;
                    assert!(
                        nodes(&trees) == nodes(&reference),
                        "{c} (integrity {integrity}): flipping bit {} of byte {pos} verified but applied a different tree",
                        pos % 8
                    );
                    // Compressed chunks can end in padding bits no decoder
                    // reads (the tree above is then rightly unchanged);
                    // stored bytes have no such slack.
                    assert!(
                        c != CompressionFormat::None || !in_data(pos as u64),
                        "{c}: a flip inside file data at {pos} went unnoticed"
                    );
                }
            }
        }
        eprintln!(
            "{c} integrity={integrity}: {} bytes, {refused} flips refused, {harmless} harmless, {:?}",
            bytes.len(),
            start.elapsed()
        );
        if integrity {
            // The integrity table covers everything up to the blob table's end.
            assert!(refused > harmless);
        }
        assert!(start.elapsed() < Duration::from_secs(60));
    }
}

/// WIMs written by wimlib (another layout: XML before the integrity
/// table, different padding) are no easier to break us with.
#[test]
fn wimlib_wims_truncated_and_flipped() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    let text: Vec<u8> = (0..50_000u32)
        .map(|i| b"abcdefgh"[(i as usize * 7 / 3) % 8])
        .collect();
    std::fs::write(src.join("sub/a.txt"), &text).unwrap();
    std::fs::write(src.join("b"), b"bee").unwrap();
    std::os::unix::fs::symlink("sub/a.txt", src.join("link")).unwrap();
    for comp in ["xpress", "lzx"] {
        let path = dir.path().join(format!("{comp}.wim"));
        let out = std::process::Command::new("wimlib-imagex")
            .args([
                "capture",
                src.to_str().unwrap(),
                path.to_str().unwrap(),
                "x",
                &format!("--compress={comp}"),
                "--check",
            ])
            .output()
            .expect("wimlib-imagex (apt-get install wimtools)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bytes = std::fs::read(&path).unwrap();
        let reference = read_everything(&path).unwrap();
        let cut = dir.path().join("cut.wim");
        let stride = sample_stride(17);
        for len in (0..bytes.len()).filter(|l| l % stride == 0 || l + 64 > bytes.len()) {
            std::fs::write(&cut, &bytes[..len]).unwrap();
            assert!(
                read_everything(&cut).is_err(),
                "wimlib {comp} WIM cut to {len} bytes verified"
            );
        }
        for pos in (0..bytes.len()).filter(|p| *p < 208 || p % stride == 0) {
            let mut b = bytes.clone();
            b[pos] ^= 0x80 >> (pos % 8);
            std::fs::write(&cut, &b).unwrap();
            if let Ok(trees) = read_everything(&cut) {
                assert!(
                    nodes(&trees) == nodes(&reference),
                    "wimlib {comp} WIM: flip at {pos} applied a different tree"
                );
            }
        }
    }
}
