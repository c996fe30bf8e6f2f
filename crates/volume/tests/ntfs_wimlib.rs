//! Compatibility of the NTFS backend with wimlib-imagex's NTFS-3G mode,
//! the peer: on the same volume both capture the same image, and an image
//! applied by tasq is captured by wimlib as the image it came from.
//!
//! The fixture image (see `ntfs_common`) has ADS (one empty, one on a
//! directory), symlinks and a junction, a file with three hard links, short
//! names, five different security descriptors (one with a SACL), an object
//! id, a sparse file, a compressed directory, odd attributes and distinct
//! 100 ns times.

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
