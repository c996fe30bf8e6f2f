//! Bad volumes and bad requests: each gives an error naming the image and
//! the offset (never a panic or an abort), and a volume too small for an
//! image is refused before anything is written.
#![cfg(feature = "ntfs")]

mod ntfs_common;

use std::fs;
use std::path::Path;

use ntfs_common::*;
use tasq_volume::ntfs::{apply_image_to_ntfs, NtfsSource, NtfsVolume};
use tasq_wim::apply::ApplyOptions;
use tasq_wim::capture::{CaptureSource, NoFilter};
use tasq_wim::image::FILE_ATTRIBUTE_ARCHIVE;
use tasq_wim::reader::Wim;

const OFFSET: u64 = 3 << 20;

/// A disk image with a fresh `mib` MiB NTFS volume at OFFSET, with the
/// fixture applied when `populated`.
fn disk(dir: &Path, mib: u64, populated: bool) -> std::path::PathBuf {
    let part = dir.join("part.img");
    mkntfs(&part, mib);
    if populated {
        let fixture = dir.join("fixture.wim");
        build_fixture(&fixture);
        wimlib(&[
            "apply",
            fixture.to_str().unwrap(),
            "1",
            part.to_str().unwrap(),
        ]);
    }
    let mut bytes = vec![0u8; OFFSET as usize];
    bytes.extend_from_slice(&fs::read(&part).unwrap());
    bytes.extend_from_slice(&[0u8; 65536]);
    let path = dir.join("disk.img");
    fs::write(&path, bytes).unwrap();
    path
}

fn le(b: &[u8]) -> u64 {
    b.iter().rev().fold(0, |a, &x| (a << 8) | x as u64)
}

/// (cluster size, $MFT offset, $MFTMirr offset) from the boot sector at OFFSET.
fn geometry(path: &Path) -> (u64, u64, u64) {
    let b = fs::read(path).unwrap();
    let bs = &b[OFFSET as usize..OFFSET as usize + 512];
    let cluster = le(&bs[0x0B..0x0D]) * bs[0x0D] as u64;
    (
        cluster,
        le(&bs[0x30..0x38]) * cluster,
        le(&bs[0x38..0x40]) * cluster,
    )
}

fn zero(path: &Path, at: u64, len: usize) {
    use std::os::unix::fs::FileExt;
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&vec![0u8; len], at).unwrap();
}

fn open_err(path: &Path, size: u64, writable: bool) -> String {
    let e = NtfsVolume::open(path, OFFSET, size, writable).unwrap_err();
    let s = e.to_string();
    eprintln!("{s}");
    assert!(s.contains(path.to_str().unwrap()), "names the image: {s}");
    assert!(
        s.contains(&format!("offset {OFFSET}")),
        "names the offset: {s}"
    );
    s
}

#[test]
fn zeroed_boot_sector() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(dir.path(), 16, false);
    zero(&d, OFFSET, 512);
    let s = open_err(&d, 16 << 20, false);
    assert!(s.contains("signature"), "{s}");
}

#[test]
fn garbage_in_the_boot_sector_geometry() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(dir.path(), 16, false);
    // Keep the signature, break bytes per sector and sectors per cluster.
    use std::os::unix::fs::FileExt;
    let f = fs::OpenOptions::new().write(true).open(&d).unwrap();
    f.write_all_at(&[0x03, 0x00, 0xFF], OFFSET + 0x0B).unwrap();
    let s = open_err(&d, 16 << 20, false);
    assert!(s.contains("refused"), "{s}");
}

#[test]
fn zeroed_mft_and_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(dir.path(), 16, true);
    let (_, mft, mirr) = geometry(&d);
    zero(&d, OFFSET + mft, 4096);
    zero(&d, OFFSET + mirr, 4096);
    let s = open_err(&d, 16 << 20, false);
    assert!(
        s.contains("libntfs-3g"),
        "carries the library's reason: {s}"
    );
}

#[test]
fn zeroed_user_file_records_fail_the_capture_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(dir.path(), 16, true);
    let (_, mft, _) = geometry(&d);
    // libntfs-3g allocates user records from 64 on (1 KiB each); the
    // fixture's files are in 64..100.
    zero(&d, OFFSET + mft + 64 * 1024, 36 * 1024);
    let vol = NtfsVolume::open(&d, OFFSET, 16 << 20, false).unwrap();
    let mut src = NtfsSource::new(&vol);
    let e = src.scan(&NoFilter, &mut |_| {}).unwrap_err().to_string();
    eprintln!("{e}");
    assert!(e.contains("capture of \\"), "names the path: {e}");
    assert!(
        e.contains(&format!("{} at offset {OFFSET}", d.display())),
        "names the volume: {e}"
    );
}

#[test]
fn partition_shorter_than_the_volume() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(dir.path(), 16, false);
    let s = open_err(&d, 8 << 20, false);
    assert!(s.contains("claims"), "{s}");
    // And a window past the end of the file.
    let len = fs::metadata(&d).unwrap().len();
    let s = open_err(&d, len, false);
    assert!(s.contains("past the end"), "{s}");
}

#[test]
fn volume_too_small_is_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(dir.path(), 8, false);
    let wim_path = dir.path().join("big.wim");
    let root_sd = sd(
        &administrators(),
        &system(),
        Some(&acl(&[ace(0, 3, 0x1F01FF, &everyone())])),
        None,
        0,
    );
    let mut b = Builder::new(&root_sd);
    b.file(
        "\\a.bin",
        "",
        FILE_ATTRIBUTE_ARCHIVE,
        &root_sd,
        &pseudo_random(6 << 20, 7),
    );
    b.file(
        "\\b.bin",
        "",
        FILE_ATTRIBUTE_ARCHIVE,
        &root_sd,
        &pseudo_random(3 << 20, 8),
    );
    b.write(&wim_path);
    let wim = Wim::open(&wim_path).unwrap();

    // Baseline: what a writable mount and unmount alone do to the bytes.
    let baseline = dir.path().join("baseline.img");
    fs::copy(&d, &baseline).unwrap();
    NtfsVolume::open(&baseline, OFFSET, 8 << 20, true)
        .unwrap()
        .close()
        .unwrap();

    let vol = NtfsVolume::open(&d, OFFSET, 8 << 20, true).unwrap();
    let e = apply_image_to_ntfs(&wim, 1, vol, &ApplyOptions::default(), &mut |_| {})
        .unwrap_err()
        .to_string();
    eprintln!("{e}");
    assert!(e.contains("not enough space"), "{e}");
    assert!(e.contains("at offset"), "{e}");
    assert!(
        fs::read(&d).unwrap() == fs::read(&baseline).unwrap(),
        "the refused apply wrote something"
    );

    // The same image fits a larger volume.
    let d2 = dir.path().join("d2");
    fs::create_dir(&d2).unwrap();
    let big = disk(&d2, 24, false);
    let vol = NtfsVolume::open(&big, OFFSET, 24 << 20, true).unwrap();
    apply_image_to_ntfs(&wim, 1, vol, &ApplyOptions::default(), &mut |_| {}).unwrap();
}

/// Random damage to the MFT records of a populated volume: every outcome
/// is an error or a tree, never a panic, a hang or a crash inside the
/// library (this would abort the test process).
#[test]
fn random_mft_damage_never_crashes() {
    use std::io::Read;
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let d = disk(dir.path(), 16, true);
    let (_, mft, _) = geometry(&d);
    let pristine = fs::read(&d).unwrap();
    let (mut opened, mut scanned, mut read_all) = (0, 0, 0);
    for seed in 0..60u32 {
        fs::write(&d, &pristine).unwrap();
        let f = fs::OpenOptions::new().write(true).open(&d).unwrap();
        let noise = pseudo_random(64, seed + 100);
        for k in 0..16 {
            // Records 0..100, any byte; seeds 0..30 spare the system records.
            let lo = if seed < 30 { 64 * 1024 } else { 0 };
            let span = 100 * 1024 - lo;
            let r = u32::from_le_bytes([
                noise[k * 4],
                noise[k * 4 + 1],
                noise[k * 4 + 2],
                noise[k * 4 + 3],
            ]) as u64;
            f.write_all_at(&[noise[k] ^ 0x5A], OFFSET + mft + lo + r % span)
                .unwrap();
        }
        drop(f);
        let Ok(vol) = NtfsVolume::open(&d, OFFSET, 16 << 20, false) else {
            continue;
        };
        opened += 1;
        let mut src = NtfsSource::new(&vol);
        let Ok(tree) = src.scan(&NoFilter, &mut |_| {}) else {
            continue;
        };
        scanned += 1;
        let mut ok = true;
        for inode in &tree.inodes {
            for s in &inode.streams {
                if let tasq_wim::image::StreamSource::External(id) = s.source {
                    match src.open_stream(id) {
                        Ok(mut r) => {
                            let mut v = Vec::new();
                            ok &= r.read_to_end(&mut v).is_ok_and(|n| n as u64 == s.size);
                        }
                        Err(_) => ok = false,
                    }
                }
            }
        }
        read_all += ok as u32;
    }
    eprintln!(
        "of 60 damaged volumes: {opened} mounted, {scanned} scanned, {read_all} read in full"
    );
    // The damage is real: not every volume survives it.
    assert!(read_all < 60);
}

/// A boot sector whose $MFT lies beyond the volume: refused with the
/// library's reason, and a writable open writes nothing. (Reads past the
/// window itself are refused by the device; that is tested in
/// `ntfs::device`, since the library's own checks stop this case first.)
#[test]
fn mft_beyond_the_volume_is_refused() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let d = disk(dir.path(), 16, false);
    let (cluster, _, _) = geometry(&d);
    let beyond = (16u64 << 20) / cluster + 16; // a cluster past the end
    let f = fs::OpenOptions::new().write(true).open(&d).unwrap();
    f.write_all_at(&beyond.to_le_bytes(), OFFSET + 0x30)
        .unwrap();
    f.write_all_at(&(beyond + 8).to_le_bytes(), OFFSET + 0x38)
        .unwrap();
    drop(f);
    let before = fs::read(&d).unwrap();
    let s = open_err(&d, 16 << 20, true);
    assert!(s.contains("greater than the number of clusters"), "{s}");
    // Nothing was written outside (or inside) the partition.
    assert!(fs::read(&d).unwrap() == before);
}
