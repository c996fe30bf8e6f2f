//! The partition case: a volume at a non-zero byte offset inside a larger
//! file (as in a disk image), applied and captured in place. The bytes
//! around the partition must not change, and the partition, cut out into
//! its own file, must hold what wimlib expects.
#![cfg(feature = "ntfs")]

mod ntfs_common;

use std::fs;
use std::path::Path;

use ntfs_common::*;
use tasq_volume::ntfs::{apply_image_to_ntfs, NtfsSource, NtfsVolume};
use tasq_wim::apply::ApplyOptions;
use tasq_wim::capture_config::CaptureConfig;
use tasq_wim::image::WIM_RP_FLAG_NOT_FIXED;
use tasq_wim::reader::Wim;
use tasq_wim::writer::{ImageOptions, WimWriter, WriteOptions};

const HEAD: usize = 1 << 20;
const TAIL: usize = (1 << 20) + 4096;

fn strip_rp_flags(
    mut d: std::collections::BTreeMap<String, Described>,
) -> std::collections::BTreeMap<String, Described> {
    for v in d.values_mut() {
        v.reparse.2 &= !WIM_RP_FLAG_NOT_FIXED;
    }
    d
}

/// A disk image: HEAD bytes of 0x5A, a fresh NTFS volume, TAIL bytes of 0xA5.
fn disk_with_partition(dir: &Path, mib: u64) -> (std::path::PathBuf, u64) {
    let part = dir.join("part-fresh.img");
    mkntfs(&part, mib);
    let mut disk = vec![0x5Au8; HEAD];
    disk.extend_from_slice(&fs::read(&part).unwrap());
    disk.extend(std::iter::repeat_n(0xA5u8, TAIL));
    let path = dir.join("disk.img");
    fs::write(&path, &disk).unwrap();
    (path, mib << 20)
}

fn check_surroundings(disk: &Path, size: u64) {
    let bytes = fs::read(disk).unwrap();
    assert_eq!(bytes.len(), HEAD + size as usize + TAIL);
    assert!(
        bytes[..HEAD].iter().all(|&b| b == 0x5A),
        "bytes before the partition changed"
    );
    assert!(
        bytes[HEAD + size as usize..].iter().all(|&b| b == 0xA5),
        "bytes after the partition changed"
    );
}

fn cut_out(disk: &Path, size: u64, to: &Path) {
    let bytes = fs::read(disk).unwrap();
    fs::write(to, &bytes[HEAD..HEAD + size as usize]).unwrap();
}

#[test]
fn apply_and_capture_at_an_offset() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = dir.path().join("fixture.wim");
    build_fixture(&fixture);
    let (disk, size) = disk_with_partition(dir.path(), 48);

    // Apply in place.
    let vol = NtfsVolume::open(&disk, HEAD as u64, size, true).unwrap();
    assert!(vol.describe().contains("at offset 1048576"));
    let wim = Wim::open(&fixture).unwrap();
    apply_image_to_ntfs(&wim, 1, vol, &ApplyOptions::default(), &mut |_| {}).unwrap();
    check_surroundings(&disk, size);

    // wimlib sees the image in the partition.
    let part = dir.path().join("part.img");
    cut_out(&disk, size, &part);
    let by_wimlib = dir.path().join("wimlib.wim");
    wimlib(&[
        "capture",
        part.to_str().unwrap(),
        by_wimlib.to_str().unwrap(),
        "w",
        "--compress=none",
    ]);
    let source = without(describe(&fixture), SYSVOL);
    let theirs = describe(&by_wimlib);
    assert_has_fixture_features(&theirs);
    assert_same(
        &strip_rp_flags(source),
        &strip_rp_flags(theirs.clone()),
        "applied at an offset",
    );

    // Capture in place (read-only) gives what wimlib captured.
    let vol = NtfsVolume::open(&disk, HEAD as u64, size, false).unwrap();
    let ours = dir.path().join("tasq.wim");
    let mut w = WimWriter::create(&ours, WriteOptions::default()).unwrap();
    w.add_image(
        &mut NtfsSource::new(&vol),
        &CaptureConfig::windows_default(),
        &ImageOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    w.finish().unwrap();
    vol.close().unwrap();
    check_surroundings(&disk, size);
    assert_same(
        &strip_rp_flags(describe(&ours)),
        &strip_rp_flags(theirs),
        "captured at an offset",
    );
}

#[test]
fn read_only_mount_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (disk, size) = disk_with_partition(dir.path(), 16);
    let before = fs::read(&disk).unwrap();
    let vol = NtfsVolume::open(&disk, HEAD as u64, size, false).unwrap();
    let info = vol.info().unwrap();
    assert!(info.total_bytes <= size && info.total_bytes > size - 4096 * 2);
    assert!(info.free_bytes > 0 && info.free_bytes < info.total_bytes);
    assert_eq!(info.major_version, 3);
    let mut src = NtfsSource::new(&vol);
    let tree =
        tasq_wim::capture::CaptureSource::scan(&mut src, &tasq_wim::capture::NoFilter, &mut |_| {})
            .unwrap();
    // A fresh volume: only the root (metadata files are hidden).
    assert_eq!(tree.dentries.len(), 1, "{:?}", tree.dentries);
    assert!(tree.inodes[0].security_id.is_some());
    drop(src);
    vol.close().unwrap();
    assert!(
        fs::read(&disk).unwrap() == before,
        "a read-only mount changed the disk"
    );
    // And a read-only volume is not an apply target.
    let vol = NtfsVolume::open(&disk, HEAD as u64, size, false).unwrap();
    assert!(tasq_volume::NtfsTarget::new(vol).is_err());
}
