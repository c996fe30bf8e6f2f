//! The default layouts written to image files and read back by the
//! independent tools: `sfdisk --dump` (util-linux) for MBR, `sgdisk`
//! (gdisk) for GPT; the file systems checked by `fsck.fat`, `mdir`,
//! `ntfsinfo` and `ntfsfix`; and our own listing of the result.

mod common;
use common::*;

use tasq_disk::{list_volumes, partition_and_format, Disk, FsKind, FsType, Layout};

/// (start, size, type, bootable) of each `sfdisk --dump` partition line.
fn sfdisk_parts(img: &std::path::Path) -> Vec<(u64, u64, String, bool)> {
    let (ok, out) = run("sfdisk", &["--dump", img.to_str().unwrap()]);
    assert!(ok, "{out}");
    out.lines()
        .filter(|l| l.contains(": start="))
        .map(|l| {
            let field = |k: &str| -> String {
                let i = l.find(k).unwrap() + k.len();
                l[i..].split(',').next().unwrap().trim().to_string()
            };
            (
                field("start=").parse().unwrap(),
                field("size=").parse().unwrap(),
                field("type="),
                l.contains("bootable"),
            )
        })
        .collect()
}

#[test]
fn bios_layout_on_8_gib_read_back_by_sfdisk() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("bios.img");
    let disk = Disk::create(&img, 8 << 30).unwrap();
    let vols = partition_and_format(&disk, &Layout::bios()).unwrap();

    // Independent arithmetic in MiB: 1 MiB gap, 350 MiB System Reserved,
    // then 99 % of the remaining MiB (rounded down), then the rest.
    let total_mib = 8 * 1024u64;
    let rest = total_mib - 1 - 350;
    let windows = rest * 99 / 100;
    let recovery = rest - windows;
    let s = |mib: u64| mib * 2048;
    let parts = sfdisk_parts(&img);
    assert_eq!(
        parts,
        vec![
            (s(1), s(350), "7".to_string(), true),
            (s(351), s(windows), "7".to_string(), false),
            (s(351 + windows), s(recovery), "27".to_string(), false),
        ]
    );
    assert_eq!(vols[1].letter_variable.as_deref(), Some("OSDisk"));
    assert_eq!(vols[1].file_system, Some(FsKind::Ntfs));

    // Each NTFS volume passes ntfs-3g's checks and carries its label.
    let labels = ["System Reserved", "Windows", "Recovery"];
    for (v, label) in vols.iter().zip(labels) {
        let part = dir.path().join(format!("p{}.img", v.index));
        extract(&img, v.offset, v.size, &part);
        let (ok, out) = run("ntfsinfo", &["-m", part.to_str().unwrap()]);
        assert!(ok, "{out}");
        assert!(out.contains(&format!("Volume Name: {label}")), "{out}");
        let (ok, out) = run("ntfsfix", &["-n", part.to_str().unwrap()]);
        assert!(ok && out.contains("processed successfully"), "{out}");
        std::fs::remove_file(&part).unwrap();
    }

    let report = list_volumes(&disk).unwrap();
    let seen: Vec<(u32, u64, FsType, Option<String>, bool)> = report
        .volumes
        .iter()
        .map(|v| (v.index, v.offset, v.fs, v.label.clone(), v.capturable))
        .collect();
    assert_eq!(
        seen,
        vec![
            (1, MIB, FsType::Ntfs, Some("System Reserved".into()), true),
            (2, 351 * MIB, FsType::Ntfs, Some("Windows".into()), true),
            (
                3,
                (351 + windows) * MIB,
                FsType::Ntfs,
                Some("Recovery".into()),
                true
            ),
        ]
    );
    // The image stays sparse: formatting wrote metadata only.
    use std::os::unix::fs::MetadataExt;
    let allocated = std::fs::metadata(&img).unwrap().blocks() * 512;
    assert!(allocated < 256 * MIB, "{allocated} bytes allocated");
}

#[test]
fn uefi_layout_on_2_gib_read_back_by_sgdisk() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("uefi.img");
    let disk = Disk::create(&img, 2 << 30).unwrap();
    let vols = partition_and_format(&disk, &Layout::uefi()).unwrap();
    let p = img.to_str().unwrap();

    let (ok, out) = run("sgdisk", &["-v", p]);
    assert!(ok && out.contains("No problems found"), "{out}");

    // Independent arithmetic in sectors: the backup GPT takes the last 33
    // sectors, so the last usable sector is N - 34.
    let n = (2u64 << 30) / 512;
    let last_usable = n - 34;
    let efi = (2048, 2048 + 500 * 2048 - 1);
    let msr = (efi.1 + 1, efi.1 + 128 * 2048);
    let win_start = msr.1 + 1;
    let remaining = last_usable + 1 - win_start;
    let win_len = remaining * 99 / 100 / 2048 * 2048;
    let win = (win_start, win_start + win_len - 1);
    let rec = (win.1 + 1, last_usable);

    let expect = [
        (
            1,
            efi,
            "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
            "0000000000000000",
            "EFI",
        ),
        (
            2,
            msr,
            "E3C9E316-0B5C-4DB8-817D-F92DF00215AE",
            "0000000000000000",
            "MSR",
        ),
        (
            3,
            win,
            "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
            "0000000000000000",
            "Windows",
        ),
        (
            4,
            rec,
            "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC",
            "8000000000000001",
            "Recovery",
        ),
    ];
    for (i, (first, last), guid, attrs, name) in expect {
        let (ok, out) = run("sgdisk", &["-i", &i.to_string(), p]);
        assert!(ok, "{out}");
        assert!(
            out.contains(&format!("Partition GUID code: {guid}")),
            "{i}: {out}"
        );
        assert!(
            out.contains(&format!("First sector: {first} ")),
            "{i}: {out}"
        );
        assert!(out.contains(&format!("Last sector: {last} ")), "{i}: {out}");
        assert!(
            out.contains(&format!("Attribute flags: {attrs}")),
            "{i}: {out}"
        );
        assert!(
            out.contains(&format!("Partition name: '{name}'")),
            "{i}: {out}"
        );
    }

    // The ESP: fsck.fat finds nothing to fix, mtools sees the label.
    let esp = &vols[0];
    assert_eq!(esp.offset, MIB);
    let part = dir.path().join("esp.img");
    extract(&img, esp.offset, esp.size, &part);
    let (ok, out) = run("fsck.fat", &["-n", part.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(
        !out.contains("uninitialized") && !out.contains("differ"),
        "{out}"
    );
    let (ok, out) = run("mdir", &["-i", &format!("{p}@@{}", esp.offset), "::/"]);
    assert!(ok, "{out}");
    assert!(out.contains("Volume in drive : is EFI"), "{out}");
    // The boot sector records the partition start as hidden sectors.
    let boot = std::fs::read(&part).unwrap();
    assert_eq!(&boot[0x1C..0x20], &2048u32.to_le_bytes());

    let report = list_volumes(&disk).unwrap();
    let v: Vec<_> = report
        .volumes
        .iter()
        .map(|v| (v.fs, v.label.clone(), v.capturable))
        .collect();
    assert_eq!(
        v,
        vec![
            (FsType::Fat32, Some("EFI".into()), true),
            (FsType::Unknown, None, false),
            (FsType::Ntfs, Some("Windows".into()), true),
            (FsType::Ntfs, Some("Recovery".into()), true),
        ]
    );
    assert!(report.volumes[1]
        .reason
        .as_deref()
        .unwrap()
        .contains("reserved"));
}

#[test]
fn custom_toml_layout_mbr_with_fat32() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("c.img");
    let layout = Layout::from_toml(
        r#"
style = "mbr"
[[partition]]
type = "Primary"
file_system = "FAT32"
size = 1
unit = "GB"
bootable = true
volume_name = "data"
[[partition]]
type = "Primary"
file_system = "NTFS"
size = 50
unit = "PERCENT"
volume_name = "Half"
letter_variable = "DataDisk"
quick_format = false
"#,
        "c.toml",
    )
    .unwrap();
    let disk = Disk::create(&img, 3 << 30).unwrap();
    let vols = partition_and_format(&disk, &layout).unwrap();
    let parts = sfdisk_parts(&img);
    // 3072 MiB: 1 MiB gap, 1024 MiB, then half of the 2047 MiB left.
    assert_eq!(
        parts,
        vec![
            (2048, 1024 * 2048, "c".to_string(), true),
            (1025 * 2048, 2047 / 2 * 2048, "7".to_string(), false),
        ]
    );
    assert_eq!(vols[1].letter_variable.as_deref(), Some("DataDisk"));
    let report = list_volumes(&disk).unwrap();
    assert_eq!(report.volumes[0].fs, FsType::Fat32);
    assert_eq!(report.volumes[0].label.as_deref(), Some("DATA"));
    assert_eq!(report.volumes[1].label.as_deref(), Some("Half"));
}

/// Time to partition and format (run with `--ignored --nocapture`).
#[test]
#[ignore]
fn measure_partition_and_format() {
    let dir = tempfile::tempdir().unwrap();
    for (name, size, layout) in [
        ("bios-8G", 8u64 << 30, Layout::bios()),
        ("uefi-8G", 8 << 30, Layout::uefi()),
        ("uefi-64G", 64 << 30, Layout::uefi()),
    ] {
        let img = dir.path().join(name);
        let d = Disk::create(&img, size).unwrap();
        let t = std::time::Instant::now();
        let v = partition_and_format(&d, &layout).unwrap();
        let el = t.elapsed();
        use std::os::unix::fs::MetadataExt;
        let alloc = std::fs::metadata(&img).unwrap().blocks() * 512;
        assert_eq!(list_volumes(&d).unwrap().volumes.len(), v.len());
        println!(
            "{name}: {:.2} s, {} MiB allocated",
            el.as_secs_f64(),
            alloc >> 20
        );
        std::fs::remove_file(&img).unwrap();
    }
}
