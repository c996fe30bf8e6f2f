//! Compatibility of the NTFS backend with wimlib-imagex's NTFS-3G mode,
//! the peer: on the same volume both capture the same image, and an image
//! applied by tasq is captured by wimlib as the image it came from.
//!
//! The fixture image (see `ntfs_common`) has ADS (one empty, one on a
//! directory), symlinks and a junction, a file with three hard links, short
//! names, five different security descriptors (one with a SACL), an object
//! id, a sparse file, a compressed directory, odd attributes and distinct
//! 100 ns times.
#![cfg(feature = "ntfs")]

mod ntfs_common;

use ntfs_common::*;
use tasq_volume::ntfs::{apply_image_to_ntfs, NtfsSource, NtfsVolume};
use tasq_wim::apply::ApplyOptions;
use tasq_wim::capture_config::CaptureConfig;
use tasq_wim::image::WIM_RP_FLAG_NOT_FIXED;
use tasq_wim::reader::Wim;
use tasq_wim::writer::{ImageOptions, WimWriter, WriteOptions};
use tasq_wim::CompressionFormat;

use std::collections::BTreeMap;
use std::path::Path;

/// tasq's capture of a volume, with wimlib's default exclusions.
fn tasq_capture(vol: &NtfsVolume, wim: &Path) -> Vec<String> {
    let mut src = NtfsSource::new(vol);
    let mut w = WimWriter::create(
        wim,
        WriteOptions {
            compression: CompressionFormat::Lzx,
            ..WriteOptions::default()
        },
    )
    .unwrap();
    w.add_image(
        &mut src,
        &CaptureConfig::windows_default(),
        &ImageOptions {
            name: Some("tasq".into()),
            ..ImageOptions::default()
        },
        &mut |_| {},
    )
    .unwrap();
    w.finish().unwrap();
    src.warnings().to_vec()
}

fn wimlib_capture(img: &Path, wim: &Path) {
    wimlib(&[
        "capture",
        img.to_str().unwrap(),
        wim.to_str().unwrap(),
        "wimlib",
        "--compress=none",
    ]);
}

/// wimlib 1.13 (the installed peer) clears WIM_RP_FLAG_NOT_FIXED on
/// reparse points captured in NTFS-3G mode; wimlib 1.14.5 and later keep
/// it set, as tasq does (absolute targets are not rewritten). Everything
/// else must match bit for bit.
fn normalize_rp_flags(mut d: BTreeMap<String, Described>) -> BTreeMap<String, Described> {
    for v in d.values_mut() {
        v.reparse.2 &= !WIM_RP_FLAG_NOT_FIXED;
    }
    d
}

#[test]
fn capture_matches_wimlib_capture_of_the_same_volume() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = dir.path().join("fixture.wim");
    build_fixture(&fixture);
    let img = dir.path().join("vol.img");
    mkntfs(&img, 64);
    wimlib(&[
        "apply",
        fixture.to_str().unwrap(),
        "1",
        img.to_str().unwrap(),
    ]);

    let ours = dir.path().join("tasq.wim");
    let vol = NtfsVolume::open_whole(&img, false).unwrap();
    let warnings = tasq_capture(&vol, &ours);
    assert!(warnings.is_empty(), "{warnings:?}");
    drop(vol);
    let theirs = dir.path().join("wimlib.wim");
    wimlib_capture(&img, &theirs);

    let a = describe(&ours);
    let b = describe(&theirs);
    assert_has_fixture_features(&a);
    assert!(!a.contains_key(SYSVOL), "the default exclusions apply");
    // tasq keeps the not-fixed flag on every reparse point.
    assert!(a
        .values()
        .filter(|v| v.reparse.0 != 0)
        .all(|v| v.reparse.2 == WIM_RP_FLAG_NOT_FIXED));
    assert_same(
        &normalize_rp_flags(a),
        &normalize_rp_flags(b),
        "tasq vs wimlib capture",
    );
}

#[test]
fn apply_then_wimlib_capture_gives_the_source_image() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = dir.path().join("fixture.wim");
    build_fixture(&fixture);
    let img = dir.path().join("vol.img");
    mkntfs(&img, 64);
    let vol = NtfsVolume::open_whole(&img, true).unwrap();
    let wim = Wim::open(&fixture).unwrap();
    let warnings =
        apply_image_to_ntfs(&wim, 1, vol, &ApplyOptions::default(), &mut |_| {}).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    run("ntfsfix", &["--no-action", img.to_str().unwrap()]);

    let captured = dir.path().join("wimlib.wim");
    wimlib_capture(&img, &captured);
    let source = without(describe(&fixture), SYSVOL);
    let got = describe(&captured);
    assert_has_fixture_features(&got);

    // The same path through wimlib alone, as a check of the fixture: if
    // wimlib's own round trip changed something, the comparison below
    // would be meaningless for that field.
    let img2 = dir.path().join("vol2.img");
    mkntfs(&img2, 64);
    wimlib(&[
        "apply",
        fixture.to_str().unwrap(),
        "1",
        img2.to_str().unwrap(),
    ]);
    let captured2 = dir.path().join("wimlib2.wim");
    wimlib_capture(&img2, &captured2);
    let peer = describe(&captured2);
    assert_same(
        &normalize_rp_flags(source.clone()),
        &normalize_rp_flags(peer),
        "wimlib round trip",
    );

    assert_same(
        &normalize_rp_flags(source),
        &normalize_rp_flags(got),
        "tasq apply, wimlib capture",
    );
}

/// What `ntfsinfo` (ntfs-3g's own tool) reports about a file's unnamed
/// $DATA attribute on an image file.
fn data_attribute_info(img: &Path, file: &str) -> String {
    let out = run("ntfsinfo", &["-F", file, img.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let start = text
        .find("Dumping attribute $DATA")
        .expect("no $DATA attribute");
    text[start..].to_string()
}

#[test]
fn apply_leaves_holes_in_sparse_files_and_compresses_in_compressed_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = dir.path().join("fixture.wim");
    build_fixture(&fixture);
    let img = dir.path().join("vol.img");
    mkntfs(&img, 64);
    let vol = NtfsVolume::open_whole(&img, true).unwrap();
    let wim = Wim::open(&fixture).unwrap();
    apply_image_to_ntfs(&wim, 1, vol, &ApplyOptions::default(), &mut |_| {}).unwrap();
    // ATTR_IS_SPARSE; 15 000 bytes of data in a 1 MiB file take 5 clusters.
    let sparse = data_attribute_info(&img, "/sparse.bin");
    assert_eq!(
        field(&sparse, "Attribute flags:") & 0x8000,
        0x8000,
        "{sparse}"
    );
    assert_eq!(field(&sparse, "Data size:"), 1 << 20, "{sparse}");
    assert!(field(&sparse, "Compressed size:") <= 6 * 4096, "{sparse}");
    // ATTR_IS_COMPRESSED, and the repetitive text takes far less room.
    let packed = data_attribute_info(&img, "/Packed/text.txt");
    assert_eq!(
        field(&packed, "Attribute flags:") & 0x00FF,
        0x0001,
        "{packed}"
    );
    assert!(field(&packed, "Compressed size:") < 100_000, "{packed}");
    // A plain file is neither.
    let plain = data_attribute_info(&img, "/Other/copy of big.dat");
    assert_eq!(field(&plain, "Attribute flags:"), 0, "{plain}");
}

/// The number after `label` in ntfsinfo's output (decimal, or 0x hex).
fn field(text: &str, label: &str) -> u64 {
    let rest = &text[text.find(label).unwrap_or_else(|| panic!("no {label}")) + label.len()..];
    let tok = rest.split_whitespace().next().unwrap();
    match tok.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).unwrap(),
        None => tok.parse().unwrap(),
    }
}

/// Marks a file encrypted by setting FILE_ATTRIBUTE_ENCRYPTED in its
/// $STANDARD_INFORMATION (libntfs-3g cannot make encrypted files). The
/// byte patched is in the record's first sector, away from the update
/// sequence words, so the record stays valid.
fn mark_encrypted(img: &Path, file: &str) {
    use std::os::unix::fs::FileExt;
    let out = run("ntfsinfo", &["-F", file, img.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let rec: u64 = text
        .split("Dumping Inode ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("inode number");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(img)
        .unwrap();
    let mut bs = [0u8; 512];
    f.read_exact_at(&mut bs, 0).unwrap();
    let le = |b: &[u8]| b.iter().rev().fold(0u64, |a, &x| (a << 8) | x as u64);
    let cluster = le(&bs[0x0B..0x0D]) * bs[0x0D] as u64;
    assert_eq!(bs[0x40], 0xF6, "1 KiB MFT records");
    let at = le(&bs[0x30..0x38]) * cluster + rec * 1024;
    let mut r = [0u8; 1024];
    f.read_exact_at(&mut r, at).unwrap();
    assert_eq!(&r[0..4], b"FILE");
    let a = le(&r[0x14..0x16]) as usize; // first attribute
    assert_eq!(le(&r[a..a + 4]), 0x10, "$STANDARD_INFORMATION comes first");
    let v = a + le(&r[a + 0x14..a + 0x16]) as usize;
    let flags_at = v + 0x20;
    assert!(flags_at + 4 < 510);
    let flags = le(&r[flags_at..flags_at + 4]) as u32 | 0x4000;
    f.write_all_at(&flags.to_le_bytes(), at + flags_at as u64)
        .unwrap();
}

#[test]
fn encrypted_files_are_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = dir.path().join("fixture.wim");
    build_fixture(&fixture);
    let img = dir.path().join("vol.img");
    mkntfs(&img, 64);
    wimlib(&[
        "apply",
        fixture.to_str().unwrap(),
        "1",
        img.to_str().unwrap(),
    ]);
    mark_encrypted(&img, "/Other/small.txt");

    let vol = NtfsVolume::open_whole(&img, false).unwrap();
    let ours = dir.path().join("tasq.wim");
    let warnings = tasq_capture(&vol, &ours);
    drop(vol);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("\\Other\\small.txt") && warnings[0].contains("encrypted"));
    let a = describe(&ours);
    assert!(!a.contains_key("\\Other\\small.txt"));
    assert!(a.contains_key("\\Other\\second name.dat"));

    // wimlib leaves it out too (it reports it as unsupported, not as a
    // warning, so its stderr is not checked here).
    let theirs = dir.path().join("wimlib.wim");
    run(
        "wimlib-imagex",
        &[
            "capture",
            img.to_str().unwrap(),
            theirs.to_str().unwrap(),
            "w",
            "--compress=none",
        ],
    );
    assert_same(
        &normalize_rp_flags(a),
        &normalize_rp_flags(describe(&theirs)),
        "with an encrypted file",
    );
}
