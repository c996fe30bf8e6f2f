//! Making an applied Windows bootable, as `bcdboot C:\Windows /s S: /f
//! UEFI|BIOS` does (Apply Operating System Image calls it after the
//! image is down):
//!
//! - UEFI: `Windows\Boot\EFI\*` → `EFI\Microsoft\Boot\` on the EFI system
//!   partition, `bootmgfw.efi` also as the removable-media fallback
//!   `EFI\Boot\boot<arch>.efi`; the store goes to `EFI\Microsoft\Boot\BCD`.
//! - BIOS: `Windows\Boot\PCAT\bootmgr` → `\bootmgr` and the rest of
//!   `PCAT` → `\Boot\` on the system (active) partition; the store goes to
//!   `\Boot\BCD`. The MBR gets syslinux's generic boot code when
//!   `/usr/lib/syslinux/mbr/mbr.bin` is there (it starts the active
//!   partition's boot sector, as Windows' MBR code does). The partition
//!   boot sector is NOT made to load bootmgr: that code ships with Windows
//!   (`bootsect.exe`) and is not ours to write; the step says so.
//!
//! The BCD store is the image's `Windows\System32\config\BCD-Template`
//! (a registry hive) with, through hivex, the Windows Boot Manager object
//! `{9dea862c-5cdd-4e70-acc1-f32b344d4795}` (type 0x10100002: device,
//! path on UEFI, description, locale, default, displayorder, timeout) and
//! one Windows Boot Loader object with a new GUID (type 0x10200003:
//! device and osdevice = the Windows partition, path
//! `\Windows\system32\winload.efi|exe`, systemroot `\Windows`,
//! description, locale). Elements live at
//! `Objects\{guid}\Elements\<type in 8 hex digits>` in the value
//! `Element`: strings REG_SZ, objects REG_SZ, object lists REG_MULTI_SZ,
//! integers 8 bytes and devices as REG_BINARY.
//!
//! Device elements (0x11000001 application device, 0x21000001 OS
//! device) identify a partition, 88 bytes (facts from the published BCD
//! dumps at mistyprojects.co.uk "Devices Partition - Data"):
//! - 0x00: 16 zero bytes (no additional-options object);
//! - 0x10: u32 device type, 6 = partition;
//! - 0x14: u32 flags, 0;
//! - 0x18: u32 length of the device data from 0x10 on, 0x48;
//! - 0x1C: u32 0;
//! - 0x20: MBR: the partition's byte offset (u64); GPT: the partition's
//!   unique GUID (16 bytes, on-disk byte order);
//! - 0x34: u32 partition style, 0 = GPT, 1 = MBR;
//! - 0x38: MBR: the disk signature (u32, MBR offset 0x1B8); GPT: the disk
//!   GUID (16 bytes, on-disk byte order);
//! - up to 0x58: zero.
//!
//! The MBR layout is checked against a published dump of a real store;
//! the GPT one follows the same page's description and is not checked
//! against a store written by Windows here.

use crate::computer::{Architecture, Firmware};
use std::path::{Path, PathBuf};
use tasq_hivex::{Hive, Value};
use tasq_volume::fs::{VolPath, VolumeFs};

/// `{bootmgr}`.
pub const BOOTMGR_GUID: &str = "{9dea862c-5cdd-4e70-acc1-f32b344d4795}";
pub const TYPE_BOOTMGR: u32 = 0x1010_0002;
pub const TYPE_OSLOADER: u32 = 0x1020_0003;
pub const EL_DEVICE: u32 = 0x1100_0001;
pub const EL_PATH: u32 = 0x1200_0002;
pub const EL_DESCRIPTION: u32 = 0x1200_0004;
pub const EL_LOCALE: u32 = 0x1200_0005;
pub const EL_OSDEVICE: u32 = 0x2100_0001;
pub const EL_SYSTEMROOT: u32 = 0x2200_0002;
pub const EL_DEFAULT: u32 = 0x2300_0003;
pub const EL_DISPLAYORDER: u32 = 0x2400_0001;
pub const EL_TIMEOUT: u32 = 0x2500_0004;

/// Where the generic MBR boot code is looked for (Debian syslinux-common).
pub const SYSLINUX_MBR: &str = "/usr/lib/syslinux/mbr/mbr.bin";

/// How a partition is named in a device element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceId {
    Gpt {
        disk_guid: [u8; 16],
        partition_guid: [u8; 16],
    },
    Mbr {
        signature: u32,
        offset: u64,
    },
}

/// The 88-byte device element data for a partition.
pub fn device_element(d: &DeviceId) -> Vec<u8> {
    let mut b = vec![0u8; 0x58];
    b[0x10..0x14].copy_from_slice(&6u32.to_le_bytes());
    b[0x18..0x1C].copy_from_slice(&0x48u32.to_le_bytes());
    match d {
        DeviceId::Gpt {
            disk_guid,
            partition_guid,
        } => {
            b[0x20..0x30].copy_from_slice(partition_guid);
            b[0x34..0x38].copy_from_slice(&0u32.to_le_bytes());
            b[0x38..0x48].copy_from_slice(disk_guid);
        }
        DeviceId::Mbr { signature, offset } => {
            b[0x20..0x28].copy_from_slice(&offset.to_le_bytes());
            b[0x34..0x38].copy_from_slice(&1u32.to_le_bytes());
            b[0x38..0x3C].copy_from_slice(&signature.to_le_bytes());
        }
    }
    b
}

/// Reads how partition `index` (1-based) of the disk image or device at
/// `path` is identified: the GPT disk and partition GUIDs, or the MBR
/// signature and the partition's byte offset. Every field read is bounded.
pub fn device_id(path: &Path, index: u32) -> Result<DeviceId, String> {
    let disk = tasq_disk::Disk::open(path, false).map_err(|e| e.to_string())?;
    let table = tasq_disk::read_table(&disk).map_err(|e| e.to_string())?;
    let entry = table
        .entries
        .iter()
        .find(|e| e.index == index)
        .ok_or_else(|| format!("{}: no partition {index}", path.display()))?;
    match table.style {
        tasq_disk::PartitionStyle::Gpt => {
            let mut hdr = [0u8; 512];
            disk.read_exact_at(&mut hdr, 512)
                .map_err(|e| e.to_string())?;
            let mut disk_guid = [0u8; 16];
            disk_guid.copy_from_slice(&hdr[56..72]);
            let lba = u64::from_le_bytes(hdr[72..80].try_into().unwrap_or([0; 8]));
            let size = u32::from_le_bytes(hdr[84..88].try_into().unwrap_or([0; 4]));
            if !(128..=4096).contains(&size) || lba == 0 {
                return Err(format!("{}: implausible GPT header", path.display()));
            }
            let at = lba
                .checked_mul(512)
                .and_then(|o| o.checked_add(u64::from(index - 1) * u64::from(size)))
                .ok_or_else(|| format!("{}: GPT entry out of range", path.display()))?;
            let mut ent = [0u8; 128];
            disk.read_exact_at(&mut ent, at)
                .map_err(|e| e.to_string())?;
            let mut partition_guid = [0u8; 16];
            partition_guid.copy_from_slice(&ent[16..32]);
            Ok(DeviceId::Gpt {
                disk_guid,
                partition_guid,
            })
        }
        tasq_disk::PartitionStyle::Mbr => {
            let mut s0 = [0u8; 512];
            disk.read_exact_at(&mut s0, 0).map_err(|e| e.to_string())?;
            Ok(DeviceId::Mbr {
                signature: u32::from_le_bytes([s0[440], s0[441], s0[442], s0[443]]),
                offset: entry.offset(),
            })
        }
        _ => Err(format!(
            "{}: the disk has no partition table to boot from",
            path.display()
        )),
    }
}

/// A new object GUID in BCD's spelling (`{…}`, lower case), version 4.
pub fn new_guid() -> String {
    let mut b = [0u8; 16];
    if getrandom::getrandom(&mut b).is_err() {
        // Time-derived fallback: uniqueness within one store is all that matters.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b = t.to_le_bytes();
    }
    b[6] = (b[6] & 0x0F) | 0x40;
    b[8] = (b[8] & 0x3F) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{{{}-{}-{}-{}-{}}}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// What a store holds for one boot entry.
#[derive(Debug, Clone)]
pub struct BcdRequest {
    pub firmware: Firmware,
    pub system: DeviceId,
    pub os: DeviceId,
    pub description: String,
    pub locale: String,
}

fn element(h: &mut Hive, obj: tasq_hivex::Node, ty: u32, v: Value) -> tasq_hivex::Result<()> {
    let els = h.ensure_child(obj, "Elements")?;
    let e = h.ensure_child(els, &format!("{ty:08X}"))?;
    h.set_values(
        e,
        &[Value {
            name: "Element".into(),
            ..v
        }],
    )
}

fn object(h: &mut Hive, guid: &str, ty: u32) -> tasq_hivex::Result<tasq_hivex::Node> {
    let root = h.root();
    let objs = h.ensure_child(root, "Objects")?;
    if let Some(old) = h.child(objs, guid)? {
        h.delete(old)?;
    }
    let o = h.ensure_child(objs, guid)?;
    let d = h.ensure_child(o, "Description")?;
    h.set_values(d, &[Value::dword("Type", ty)])?;
    Ok(o)
}

/// Writes a BCD store at `dest` from `template`; returns the loader's GUID.
pub fn build_bcd(template: &Path, dest: &Path, req: &BcdRequest) -> Result<String, String> {
    std::fs::copy(template, dest).map_err(|e| format!("{}: {e}", template.display()))?;
    let loader = new_guid();
    let r = (|| -> tasq_hivex::Result<()> {
        let mut h = Hive::open(dest, true)?;
        let uefi = req.firmware == Firmware::Uefi;
        let bm = object(&mut h, BOOTMGR_GUID, TYPE_BOOTMGR)?;
        element(
            &mut h,
            bm,
            EL_DEVICE,
            Value::binary("", device_element(&req.system)),
        )?;
        if uefi {
            element(
                &mut h,
                bm,
                EL_PATH,
                Value::string("", "\\EFI\\Microsoft\\Boot\\bootmgfw.efi"),
            )?;
        }
        element(
            &mut h,
            bm,
            EL_DESCRIPTION,
            Value::string("", "Windows Boot Manager"),
        )?;
        element(&mut h, bm, EL_LOCALE, Value::string("", &req.locale))?;
        element(&mut h, bm, EL_DEFAULT, Value::string("", &loader))?;
        element(&mut h, bm, EL_DISPLAYORDER, Value::multi("", &[&loader]))?;
        element(
            &mut h,
            bm,
            EL_TIMEOUT,
            Value::binary("", 30u64.to_le_bytes().to_vec()),
        )?;

        let ld = object(&mut h, &loader, TYPE_OSLOADER)?;
        let osdev = device_element(&req.os);
        element(&mut h, ld, EL_DEVICE, Value::binary("", osdev.clone()))?;
        element(
            &mut h,
            ld,
            EL_PATH,
            Value::string(
                "",
                if uefi {
                    "\\Windows\\system32\\winload.efi"
                } else {
                    "\\Windows\\system32\\winload.exe"
                },
            ),
        )?;
        element(
            &mut h,
            ld,
            EL_DESCRIPTION,
            Value::string("", &req.description),
        )?;
        element(&mut h, ld, EL_LOCALE, Value::string("", &req.locale))?;
        element(&mut h, ld, EL_OSDEVICE, Value::binary("", osdev))?;
        element(&mut h, ld, EL_SYSTEMROOT, Value::string("", "\\Windows"))?;
        h.commit(dest)
    })();
    r.map_err(|e| format!("building the BCD store: {e}"))?;
    Ok(loader)
}

/// The removable-media boot file name for an architecture.
pub fn fallback_name(arch: Architecture) -> &'static str {
    match arch {
        Architecture::X64 => "bootx64.efi",
        Architecture::X86 => "bootia32.efi",
        Architecture::Arm64 => "bootaa64.efi",
    }
}

/// What [`make_bootable`] did.
#[derive(Debug, Clone, Default)]
pub struct BootReport {
    pub files: u64,
    pub store: String,
    pub loader: String,
    pub warnings: Vec<String>,
}

fn vp(s: &str) -> Result<VolPath, String> {
    VolPath::parse(s)
}

/// Copies the boot files from `staged` (a host folder holding the image's
/// `Boot` folder — `Windows\Boot` — and `BCD-Template`) onto the system
/// volume `sys` and writes the store there.
pub fn make_bootable(
    sys: &mut dyn VolumeFs,
    staged: &Path,
    arch: Architecture,
    req: &BcdRequest,
) -> Result<BootReport, String> {
    let fe = |e: tasq_volume::fs::FsError| e.to_string();
    let boot = staged.join("Boot");
    let template = staged.join("BCD-Template");
    if !template.is_file() {
        return Err(
            "the image has no Windows\\System32\\config\\BCD-Template to build the boot store from"
                .into(),
        );
    }
    let mut report = BootReport::default();
    let store_path = match req.firmware {
        Firmware::Uefi => {
            let efi = boot.join("EFI");
            if !efi.join("bootmgfw.efi").is_file() {
                return Err("the image has no Windows\\Boot\\EFI\\bootmgfw.efi".into());
            }
            let dest = vp("EFI\\Microsoft\\Boot")?;
            report.files += tasq_volume::fs::copy_host_tree(sys, &efi, &dest)
                .map_err(fe)?
                .files;
            if boot.join("Fonts").is_dir() {
                report.files += tasq_volume::fs::copy_host_tree(
                    sys,
                    &boot.join("Fonts"),
                    &vp("EFI\\Microsoft\\Boot\\Fonts")?,
                )
                .map_err(fe)?
                .files;
            }
            let fallback = vp(&format!("EFI\\Boot\\{}", fallback_name(arch)))?;
            let mut f = std::fs::File::open(efi.join("bootmgfw.efi")).map_err(|e| e.to_string())?;
            sys.write_file(&fallback, &mut f).map_err(fe)?;
            report.files += 1;
            "EFI\\Microsoft\\Boot\\BCD"
        }
        Firmware::Bios => {
            let pcat = boot.join("PCAT");
            let bootmgr = pcat.join("bootmgr");
            if !bootmgr.is_file() {
                return Err("the image has no Windows\\Boot\\PCAT\\bootmgr".into());
            }
            let mut f = std::fs::File::open(&bootmgr).map_err(|e| e.to_string())?;
            sys.write_file(&vp("bootmgr")?, &mut f).map_err(fe)?;
            report.files += 1;
            let dest = vp("Boot")?;
            sys.create_dir_all(&dest).map_err(fe)?;
            for e in std::fs::read_dir(&pcat).map_err(|e| e.to_string())? {
                let e = e.map_err(|e| e.to_string())?;
                let name = e.file_name().to_string_lossy().to_string();
                if name == "bootmgr" {
                    continue;
                }
                let to = dest.join(&name)?;
                let t = e.file_type().map_err(|e| e.to_string())?;
                if t.is_dir() {
                    report.files += tasq_volume::fs::copy_host_tree(sys, &e.path(), &to)
                        .map_err(fe)?
                        .files;
                } else if t.is_file() {
                    let mut f = std::fs::File::open(e.path()).map_err(|e| e.to_string())?;
                    sys.write_file(&to, &mut f).map_err(fe)?;
                    report.files += 1;
                }
            }
            if boot.join("Fonts").is_dir() {
                report.files +=
                    tasq_volume::fs::copy_host_tree(sys, &boot.join("Fonts"), &vp("Boot\\Fonts")?)
                        .map_err(fe)?
                        .files;
            }
            "Boot\\BCD"
        }
    };
    let tmp = tempdir_in(staged)?;
    let bcd = tmp.join("BCD");
    report.loader = build_bcd(&template, &bcd, req)?;
    let mut f = std::fs::File::open(&bcd).map_err(|e| e.to_string())?;
    sys.write_file(&vp(store_path)?, &mut f).map_err(fe)?;
    sys.flush().map_err(fe)?;
    report.store = format!("\\{store_path}");
    Ok(report)
}

fn tempdir_in(dir: &Path) -> Result<PathBuf, String> {
    let p = dir.join(format!("bcd-{}", std::process::id()));
    std::fs::create_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(p)
}

/// Writes syslinux's generic MBR boot code (the first 440 bytes of
/// sector 0; the disk signature and the table stay) when it is installed.
/// Returns a warning when it is not, or when the code does not fit.
pub fn write_mbr_code(disk_path: &Path, code_path: &Path) -> Result<Option<String>, String> {
    let code = match std::fs::read(code_path) {
        Ok(c) => c,
        Err(_) => {
            return Ok(Some(format!(
                "{} is not installed (Debian syslinux-common): the MBR keeps no boot code and the disk will not start on BIOS",
                code_path.display()
            )))
        }
    };
    if code.is_empty() || code.len() > 440 {
        return Ok(Some(format!(
            "{}: {} bytes is not MBR boot code (at most 440): not written",
            code_path.display(),
            code.len()
        )));
    }
    let disk = tasq_disk::Disk::open(disk_path, true).map_err(|e| e.to_string())?;
    disk.write_all_at(&code, 0).map_err(|e| e.to_string())?;
    disk.sync().map_err(|e| e.to_string())?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbr_device_elements_match_the_published_dump() {
        // The dump: offset 0x15f00000, signature b3eba8f1.
        let b = device_element(&DeviceId::Mbr {
            signature: 0xb3eb_a8f1,
            offset: 0x15f0_0000,
        });
        let expect: Vec<u8> = [
            "00,00,00,00,00,00,00,00,00,00,00,00,00,00,00,00,06,00,00,00",
            "00,00,00,00,48,00,00,00,00,00,00,00,00,00,f0,15,00,00,00,00",
            "00,00,00,00,00,00,00,00,00,00,00,00,01,00,00,00,f1,a8,eb,b3",
            "00,00,00,00,00,00,00,00,00,00,00,00,00,00,00,00,00,00,00,00",
            "00,00,00,00,00,00,00,00",
        ]
        .join(",")
        .split(',')
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
        assert_eq!(b, expect);
    }

    #[test]
    fn gpt_device_elements_carry_both_guids() {
        let b = device_element(&DeviceId::Gpt {
            disk_guid: [0xd; 16],
            partition_guid: [0xa; 16],
        });
        assert_eq!(b.len(), 0x58);
        assert_eq!(&b[0x20..0x30], &[0xa; 16]);
        assert_eq!(&b[0x34..0x38], &[0, 0, 0, 0]);
        assert_eq!(&b[0x38..0x48], &[0xd; 16]);
        assert!(b[0x48..].iter().all(|x| *x == 0));
    }

    #[test]
    fn guids_are_v4_and_distinct() {
        let a = new_guid();
        let b = new_guid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 38);
        assert_eq!(&a[15..16], "4");
    }
}
