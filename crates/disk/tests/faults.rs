//! Bad input: damaged tables, partitions beyond the disk end, truncated
//! images and random bytes give errors naming the disk and partition,
//! never a panic.

mod common;

use std::os::unix::fs::FileExt;

use proptest::prelude::*;
use tasq_disk::{list_volumes, read_table, write_partition_table, Disk, DiskError, Layout};

fn mbr_entry(sector: &mut [u8], i: usize, boot: u8, sys: u8, start: u32, count: u32) {
    let o = 446 + 16 * i;
    sector[o] = boot;
    sector[o + 4] = sys;
    sector[o + 8..o + 12].copy_from_slice(&start.to_le_bytes());
    sector[o + 12..o + 16].copy_from_slice(&count.to_le_bytes());
}

fn image_with_sector0(dir: &std::path::Path, size: u64, s0: &[u8; 512]) -> std::path::PathBuf {
    let p = dir.join("d.img");
    let _ = std::fs::remove_file(&p);
    let d = Disk::create(&p, size).unwrap();
    d.write_all_at(s0, 0).unwrap();
    p
}

#[test]
fn partition_beyond_the_disk_end_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut s0 = [0u8; 512];
    s0[510] = 0x55;
    s0[511] = 0xAA;
    mbr_entry(&mut s0, 0, 0x80, 0x07, 2048, 2048);
    mbr_entry(&mut s0, 1, 0, 0x07, 4096, 100_000); // disk has 8192 sectors
    let p = image_with_sector0(dir.path(), 4 << 20, &s0);
    let d = Disk::open(&p, false).unwrap();
    let e = read_table(&d).unwrap_err();
    match &e {
        DiskError::BadPartition { index, .. } => assert_eq!(*index, 2),
        other => panic!("{other:?}"),
    }
    let s = e.to_string();
    assert!(s.contains("d.img") && s.contains("partition 2"), "{s}");
    assert!(list_volumes(&d).is_err());
}

#[test]
fn damaged_mbr_and_overlaps_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut s0 = [0u8; 512];
    s0[510] = 0x55;
    s0[511] = 0xAA;
    mbr_entry(&mut s0, 0, 0x33, 0x07, 2048, 2048); // invalid boot flag
    let p = image_with_sector0(dir.path(), 4 << 20, &s0);
    let e = read_table(&Disk::open(&p, false).unwrap()).unwrap_err();
    assert!(matches!(e, DiskError::BadTable { .. }), "{e:?}");
    assert!(e.to_string().contains("d.img"), "{e}");

    let mut s0 = [0u8; 512];
    s0[510] = 0x55;
    s0[511] = 0xAA;
    mbr_entry(&mut s0, 0, 0, 0x07, 2048, 4096);
    mbr_entry(&mut s0, 1, 0, 0x07, 4000, 1000);
    let p = image_with_sector0(dir.path(), 4 << 20, &s0);
    let e = read_table(&Disk::open(&p, false).unwrap()).unwrap_err();
    assert!(
        e.to_string().contains("partition 2: overlaps partition 1"),
        "{e}"
    );

    // An extended chain that points at itself.
    let mut s0 = [0u8; 512];
    s0[510] = 0x55;
    s0[511] = 0xAA;
    mbr_entry(&mut s0, 0, 0, 0x05, 2048, 4096);
    let p = image_with_sector0(dir.path(), 4 << 20, &s0);
    let mut ebr = [0u8; 512];
    ebr[510] = 0x55;
    ebr[511] = 0xAA;
    mbr_entry(&mut ebr, 0, 0, 0x07, 63, 100);
    mbr_entry(&mut ebr, 1, 0, 0x05, 0, 4096);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .write_all_at(&ebr, 2048 * 512)
        .unwrap();
    let e = read_table(&Disk::open(&p, false).unwrap()).unwrap_err();
    assert!(e.to_string().contains("loops"), "{e}");
}

#[test]
fn corrupt_gpt_falls_back_to_the_backup_then_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g.img");
    let d = Disk::create(&p, 1 << 30).unwrap();
    write_partition_table(&d, &Layout::uefi()).unwrap();
    let good = read_table(&d).unwrap();
    assert_eq!(good.entries.len(), 4);
    // Damage the primary header: the backup still gives the same table.
    d.write_all_at(b"XX", 512 + 100).unwrap();
    d.write_all_at(&[0xFF; 4], 512 + 16).unwrap();
    assert_eq!(read_table(&d).unwrap().entries, good.entries);
    // Damage the backup too.
    let last = d.size() - 512;
    d.write_all_at(&[0xFF; 4], last + 16).unwrap();
    let e = read_table(&d).unwrap_err();
    let s = e.to_string();
    assert!(
        s.contains("g.img") && s.contains("damaged partition table") && s.contains("CRC"),
        "{s}"
    );
}

#[test]
fn truncated_image_names_the_partition_past_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.img");
    {
        let d = Disk::create(&p, 2 << 30).unwrap();
        write_partition_table(&d, &Layout::uefi()).unwrap();
    }
    // Cut the image in the middle of the Windows partition (3).
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let d = Disk::open(&p, false).unwrap();
    let e = read_table(&d).unwrap_err();
    let s = e.to_string();
    assert!(
        s.contains("t.img") && s.contains("partition 3") && s.contains("truncated"),
        "{s}"
    );
}

#[test]
fn a_disk_too_small_for_a_layout_is_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.img");
    let d = Disk::create(&p, 300 << 20).unwrap();
    let e = write_partition_table(&d, &Layout::uefi()).unwrap_err();
    assert!(
        e.to_string().contains("s.img") && e.to_string().contains("partition 1"),
        "{e}"
    );
    let mut s0 = [0u8; 512];
    d.read_exact_at(&mut s0, 0).unwrap();
    assert!(s0.iter().all(|&b| b == 0), "nothing written");
    let ro = Disk::open(&p, false).unwrap();
    assert!(write_partition_table(&ro, &Layout::bios()).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Random first sectors (with the MBR signature, sometimes a
    /// protective entry) and random GPT headers never panic.
    #[test]
    fn random_tables_never_panic(s0 in proptest::collection::vec(any::<u8>(), 512),
                                 s1 in proptest::collection::vec(any::<u8>(), 512),
                                 gpt in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let mut a = [0u8; 512];
        a.copy_from_slice(&s0);
        a[510] = 0x55;
        a[511] = 0xAA;
        if gpt {
            a[446 + 4] = 0xEE;
        }
        let p = image_with_sector0(dir.path(), 1 << 20, &a);
        let d = Disk::open(&p, true).unwrap();
        let mut b = s1.clone();
        if gpt {
            b[0..8].copy_from_slice(b"EFI PART");
        }
        d.write_all_at(&b, 512).unwrap();
        if let Ok(r) = list_volumes(&d) {
            for v in r.volumes {
                prop_assert!(v.offset + v.size <= d.size());
            }
        }
    }
}

#[test]
fn a_fat32_partition_too_small_for_fat32_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("tiny.img");
    let d = Disk::create(&p, 64 << 20).unwrap();
    let layout = Layout::from_toml(
        "style = \"mbr\"\n[[partition]]\ntype = \"Primary\"\nfile_system = \"FAT32\"\nsize = 8\nunit = \"MB\"\nvolume_name = \"x\"\n",
        "tiny",
    )
    .unwrap();
    let e = tasq_disk::partition_and_format(&d, &layout).unwrap_err();
    let s = e.to_string();
    assert!(
        s.contains("tiny.img: partition 1: format as FAT32") && s.contains("too small"),
        "{s}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// GPT headers with a valid CRC but random geometry: bounded reads,
    /// errors or a table inside the disk, never a panic.
    #[test]
    fn gpt_headers_with_valid_crc_never_panic(entry_lba in 0u64..4096, count in any::<u32>(),
                                              esize_log in 0u32..14, entries in proptest::collection::vec(any::<u8>(), 4096)) {
        let dir = tempfile::tempdir().unwrap();
        let mut s0 = [0u8; 512];
        s0[510] = 0x55;
        s0[511] = 0xAA;
        mbr_entry(&mut s0, 0, 0, 0xEE, 1, 2047);
        let p = image_with_sector0(dir.path(), 1 << 20, &s0);
        let d = Disk::open(&p, true).unwrap();
        let mut h = [0u8; 512];
        h[0..8].copy_from_slice(b"EFI PART");
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[72..80].copy_from_slice(&entry_lba.to_le_bytes());
        h[80..84].copy_from_slice(&count.to_le_bytes());
        h[84..88].copy_from_slice(&(1u32 << esize_log).to_le_bytes());
        // Entries at LBA 2 with their own CRC, when they are there.
        d.write_all_at(&entries, 1024).unwrap();
        let len = (count as u64).saturating_mul(1 << esize_log).min(4096) as usize;
        h[88..92].copy_from_slice(&crc32fast::hash(&entries[..len]).to_le_bytes());
        let crc = crc32fast::hash(&h[..92]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        d.write_all_at(&h, 512).unwrap();
        if let Ok(t) = read_table(&d) {
            for e in t.entries {
                prop_assert!(e.start_lba + e.sectors <= d.sectors());
            }
        }
    }
}
