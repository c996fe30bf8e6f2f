//! File-system detection and the capture rule on volumes made by the
//! Linux tools (mkfs.ext4, mkswap, mkfs.exfat, mkfs.fat) or crafted
//! (XFS, Btrfs superblocks), and the USB flag of image files.

mod common;
use common::*;

use tasq_disk::{list_volumes, write_partition_table, Disk, FsType, Layout};

/// A GPT disk with `n` 64 MiB partitions that have no file system.
fn blank_disk(dir: &std::path::Path, n: usize) -> (std::path::PathBuf, Disk) {
    let mut toml = String::from("style = \"gpt\"\n");
    for _ in 0..n {
        toml.push_str("[[partition]]\ntype = \"Primary\"\nsize = 64\nunit = \"MB\"\n");
    }
    let layout = Layout::from_toml(&toml, "blank").unwrap();
    let p = dir.join("det.img");
    let d = Disk::create(&p, (64 * n as u64 + 2) * MIB).unwrap();
    write_partition_table(&d, &layout).unwrap();
    (p, d)
}

/// Makes a 64 MiB file system with `prog args FILE` and copies it into
/// partition `index` (1-based, 64 MiB each from 1 MiB).
fn make_into(img: &std::path::Path, dir: &std::path::Path, index: u64, prog: &str, args: &[&str]) {
    let f = dir.join(format!("fs{index}.img"));
    std::fs::File::create(&f)
        .unwrap()
        .set_len(64 * MIB)
        .unwrap();
    let mut a: Vec<&str> = args.to_vec();
    a.push(f.to_str().unwrap());
    let (ok, out) = run(prog, &a);
    assert!(ok, "{prog}: {out}");
    implant(img, MIB + (index - 1) * 64 * MIB, &f);
    std::fs::remove_file(&f).unwrap();
}

#[test]
fn linux_and_other_file_systems_are_detected_with_labels_and_not_captured() {
    let dir = tempfile::tempdir().unwrap();
    let (img, disk) = blank_disk(dir.path(), 7);
    make_into(
        &img,
        dir.path(),
        1,
        "mkfs.ext4",
        &["-q", "-F", "-L", "rootfs"],
    );
    make_into(&img, dir.path(), 2, "mkswap", &["-L", "swappy"]);
    make_into(
        &img,
        dir.path(),
        3,
        "mkfs.fat",
        &["-F", "16", "-n", "SIXTEEN"],
    );
    make_into(&img, dir.path(), 4, "mkfs.ext2", &["-q", "-F", "-L", "old"]);
    let exfat = have("mkfs.exfat");
    if exfat {
        make_into(&img, dir.path(), 5, "mkfs.exfat", &["-L", "Stick"]);
    }
    // XFS: "XFSB" and the label at 108; Btrfs: magic at 64 KiB + 0x40,
    // label at 64 KiB + 0x12B. Crafted, as the tools are not installed.
    let xfs_at = MIB + 5 * 64 * MIB;
    disk.write_all_at(b"XFSB", xfs_at).unwrap();
    disk.write_all_at(b"xfsvol\0", xfs_at + 108).unwrap();
    let btrfs_at = MIB + 6 * 64 * MIB;
    disk.write_all_at(b"_BHRfS_M", btrfs_at + 0x10040).unwrap();
    disk.write_all_at(b"pool\0", btrfs_at + 0x1012B).unwrap();

    let r = list_volumes(&disk).unwrap();
    let got: Vec<(FsType, Option<String>, bool)> = r
        .volumes
        .iter()
        .map(|v| (v.fs, v.label.clone(), v.capturable))
        .collect();
    let mut want = vec![
        (FsType::Ext4, Some("rootfs".to_string()), false),
        (FsType::Swap, Some("swappy".to_string()), false),
        (FsType::Fat16, Some("SIXTEEN".to_string()), false),
        (FsType::Ext2, Some("old".to_string()), false),
        (FsType::ExFat, Some("Stick".to_string()), false),
        (FsType::Xfs, Some("xfsvol".to_string()), false),
        (FsType::Btrfs, Some("pool".to_string()), false),
    ];
    if !exfat {
        want[4] = (FsType::Unknown, None, false);
    }
    assert_eq!(got, want);
    let reason = r.volumes[0].reason.clone().unwrap();
    assert!(reason.contains("ext4"), "{reason}");
    assert!(r.volumes[2].reason.as_deref().unwrap().contains("FAT16"));
}

#[test]
fn the_usb_flag_makes_every_volume_uncapturable() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("usb.img");
    let mut d = Disk::create(&p, 1 << 30).unwrap();
    tasq_disk::partition_and_format(&d, &Layout::uefi()).unwrap();
    let r = list_volumes(&d).unwrap();
    assert!(!r.usb);
    assert_eq!(r.volumes.iter().filter(|v| v.capturable).count(), 3);
    d.set_usb_flag(true);
    let r = list_volumes(&d).unwrap();
    assert!(r.usb);
    assert_eq!(r.usb_source, "profile flag");
    for v in r.volumes.iter().filter(|v| v.fs != FsType::Unknown) {
        assert!(!v.capturable);
        assert!(v.reason.as_deref().unwrap().contains("USB"), "{v:?}");
    }
}

#[test]
fn a_file_system_on_the_whole_disk_is_volume_0() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("super.img");
    std::fs::File::create(&p)
        .unwrap()
        .set_len(64 * MIB)
        .unwrap();
    let (ok, out) = run(
        "mkfs.fat",
        &["-F", "32", "-n", "FLOPPY", p.to_str().unwrap()],
    );
    assert!(ok, "{out}");
    let d = Disk::open(&p, false).unwrap();
    let r = list_volumes(&d).unwrap();
    assert_eq!(r.volumes.len(), 1);
    assert_eq!(r.volumes[0].index, 0);
    assert_eq!(r.volumes[0].fs, FsType::Fat32);
    assert_eq!(r.volumes[0].label.as_deref(), Some("FLOPPY"));
}

mod random {
    use super::*;
    use proptest::prelude::*;

    /// Writes `bytes` as a whole-disk image and runs detection on it.
    fn detect_bytes(bytes: &[u8]) -> tasq_disk::Detected {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.img");
        std::fs::write(&p, bytes).unwrap();
        let d = Disk::open(&p, false).unwrap();
        tasq_disk::detect(&d, 0, d.size()).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// An NTFS boot sector pointing at a random MFT record 3: the
        /// label parser (fixups, attribute walk) never panics or loops.
        #[test]
        fn random_ntfs_volume_record(rec in proptest::collection::vec(any::<u8>(), 1024),
                                     usa in 0u16..1100, count in 0u16..8, first_attr in 0u16..1100) {
            let mut v = vec![0u8; 16 * 512 + 4 * 1024];
            v[3..11].copy_from_slice(b"NTFS    ");
            v[11..13].copy_from_slice(&512u16.to_le_bytes());
            v[13] = 1;
            v[0x30..0x38].copy_from_slice(&16u64.to_le_bytes());
            v[0x40] = (-10i8) as u8;
            let at = 16 * 512 + 3 * 1024;
            v[at..at + 1024].copy_from_slice(&rec);
            v[at..at + 4].copy_from_slice(b"FILE");
            v[at + 4..at + 6].copy_from_slice(&usa.to_le_bytes());
            v[at + 6..at + 8].copy_from_slice(&count.to_le_bytes());
            v[at + 0x14..at + 0x16].copy_from_slice(&first_attr.to_le_bytes());
            prop_assert_eq!(detect_bytes(&v).fs, FsType::Ntfs);
        }

        /// Random boot sectors with each signature: never a panic.
        #[test]
        fn random_boot_sectors(b in proptest::collection::vec(any::<u8>(), 70_000), kind in 0u8..6) {
            let mut v = b;
            match kind {
                5 => v[3..11].copy_from_slice(b"NTFS    "),
                0 => v[3..11].copy_from_slice(b"EXFAT   "),
                1 => { v[510] = 0x55; v[511] = 0xAA; v[11] = 0; v[12] = 2; }
                2 => { v[1080..1082].copy_from_slice(&0xEF53u16.to_le_bytes()); }
                3 => v[4086..4096].copy_from_slice(b"SWAPSPACE2"),
                _ => v[0x10040..0x10048].copy_from_slice(b"_BHRfS_M"),
            }
            let _ = detect_bytes(&v);
        }
    }
}
