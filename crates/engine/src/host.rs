//! The reference computer read from the machine tasq runs on, for real
//! hardware (`tasq run --computer host`): DMI for make, model, serial and
//! UUID, sysfs for network adapters, PCI/USB devices (as Windows PnP
//! IDs) and disks, `/proc/meminfo` for memory, `/sys/firmware/efi` for
//! the firmware type. Everything is read under a root directory so tests
//! give a fake tree. A value that cannot be read is left empty: DMI
//! serials, for one, are readable by root only.

use crate::computer::{Architecture, Computer, Disk, Firmware};
use std::path::Path;

fn read_trim(p: &Path) -> Option<String> {
    let s = std::fs::read_to_string(p).ok()?;
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// `0x8086` → `8086` (upper case, 4 digits).
fn hex4(p: &Path) -> Option<String> {
    let s = read_trim(p)?;
    let v = u32::from_str_radix(s.trim_start_matches("0x"), 16).ok()?;
    Some(format!("{:04X}", v & 0xFFFF))
}

fn sorted_entries(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Windows' PnP device ID of a PCI function:
/// `PCI\VEN_vvvv&DEV_dddd&SUBSYS_ssssvvvv&REV_rr`.
fn pci_id(dev: &Path) -> Option<String> {
    let ven = hex4(&dev.join("vendor"))?;
    let did = hex4(&dev.join("device"))?;
    let mut id = format!("PCI\\VEN_{ven}&DEV_{did}");
    if let (Some(sv), Some(sd)) = (
        hex4(&dev.join("subsystem_vendor")),
        hex4(&dev.join("subsystem_device")),
    ) {
        id.push_str(&format!("&SUBSYS_{sd}{sv}"));
    }
    if let Some(r) = read_trim(&dev.join("revision")) {
        let v = u32::from_str_radix(r.trim_start_matches("0x"), 16).ok()?;
        id.push_str(&format!("&REV_{:02X}", v & 0xFF));
    }
    Some(id)
}

/// `USB\VID_vvvv&PID_pppp` of a USB device (interfaces are skipped).
fn usb_id(dev: &Path) -> Option<String> {
    let v = hex4(&dev.join("idVendor"))?;
    let p = hex4(&dev.join("idProduct"))?;
    Some(format!("USB\\VID_{v}&PID_{p}"))
}

fn arch_of(machine: &str) -> Architecture {
    match machine {
        "x86" | "i386" | "i586" | "i686" => Architecture::X86,
        "aarch64" | "arm64" => Architecture::Arm64,
        _ => Architecture::X64,
    }
}

/// Whole disks worth listing: no loop, RAM, device-mapper, optical or
/// zram devices.
fn is_disk_name(n: &str) -> bool {
    !["loop", "ram", "zram", "dm-", "sr", "fd", "md", "nbd"]
        .iter()
        .any(|p| n.starts_with(p))
}

/// Reads the computer under `root` (`/` on a real machine).
pub fn computer_from_host_at(root: &Path) -> Computer {
    let dmi = root.join("sys/class/dmi/id");
    let name = read_trim(&root.join("proc/sys/kernel/hostname"))
        .or_else(|| read_trim(&root.join("etc/hostname")))
        .unwrap_or_else(|| "HOST".into());
    let memory_mb = std::fs::read_to_string(root.join("proc/meminfo"))
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map(|kb| kb / 1024)
        .unwrap_or(0);
    let mut mac_addresses = Vec::new();
    for n in sorted_entries(&root.join("sys/class/net")) {
        // Physical adapters have a `device` link; lo, bridges and veths don't.
        if !n.join("device").exists() {
            continue;
        }
        if let Some(a) = read_trim(&n.join("address")) {
            if a != "00:00:00:00:00:00" {
                mac_addresses.push(a.to_ascii_uppercase());
            }
        }
    }
    let mut pnp_ids: Vec<String> = sorted_entries(&root.join("sys/bus/pci/devices"))
        .iter()
        .filter_map(|d| pci_id(d))
        .collect();
    pnp_ids.extend(
        sorted_entries(&root.join("sys/bus/usb/devices"))
            .iter()
            .filter_map(|d| usb_id(d)),
    );
    let class_block = root.join("sys/class/block");
    let mut disks = Vec::new();
    for b in sorted_entries(&root.join("sys/block")) {
        let Some(n) = b.file_name().and_then(|s| s.to_str()).map(str::to_string) else {
            continue;
        };
        if !is_disk_name(&n) {
            continue;
        }
        let sectors = read_trim(&b.join("size"))
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        if sectors == 0 {
            continue;
        }
        let rem = tasq_disk::disk::sysfs_removability_in(&class_block, &n);
        disks.push(Disk {
            path: Path::new("/dev").join(&n),
            size: Some(sectors.saturating_mul(512)),
            usb: rem.usb,
        });
    }
    // Fields the host cannot tell (added to Computer later) keep their defaults.
    #[allow(clippy::needless_update)]
    Computer {
        name,
        architecture: arch_of(std::env::consts::ARCH),
        firmware: if root.join("sys/firmware/efi").exists() {
            Firmware::Uefi
        } else {
            Firmware::Bios
        },
        make: read_trim(&dmi.join("sys_vendor")).unwrap_or_default(),
        model: read_trim(&dmi.join("product_name")).unwrap_or_default(),
        serial: read_trim(&dmi.join("product_serial")).unwrap_or_default(),
        uuid: read_trim(&dmi.join("product_uuid"))
            .map(|u| u.to_ascii_uppercase())
            .unwrap_or_default(),
        mac_addresses,
        pnp_ids,
        memory_mb,
        chassis_types: read_trim(&dmi.join("chassis_type"))
            .and_then(|c| c.parse().ok())
            .into_iter()
            .collect(),
        disks,
        ..Computer::default()
    }
}

/// The machine tasq runs on.
pub fn computer_from_host() -> Computer {
    computer_from_host_at(Path::new("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn put(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    #[test]
    fn reads_a_fake_sysfs_tree() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        put(r, "proc/sys/kernel/hostname", "ref01\n");
        put(
            r,
            "proc/meminfo",
            "MemTotal:        8151552 kB\nMemFree: 1 kB\n",
        );
        put(r, "sys/class/dmi/id/sys_vendor", "Contoso Ltd.\n");
        put(r, "sys/class/dmi/id/product_name", "Virtual 9\n");
        put(
            r,
            "sys/class/dmi/id/product_uuid",
            "4c4c4544-0031-3010-8052-b4c04f4e3732\n",
        );
        put(r, "sys/class/dmi/id/chassis_type", "3\n");
        fs::create_dir_all(r.join("sys/firmware/efi")).unwrap();
        put(r, "sys/class/net/eth0/address", "00:15:5d:01:02:03\n");
        fs::create_dir_all(r.join("sys/class/net/eth0/device")).unwrap();
        put(r, "sys/class/net/lo/address", "00:00:00:00:00:00\n");
        let nic = "sys/bus/pci/devices/0000:00:03.0";
        put(r, &format!("{nic}/vendor"), "0x8086\n");
        put(r, &format!("{nic}/device"), "0x100e\n");
        put(r, &format!("{nic}/subsystem_vendor"), "0x1af4\n");
        put(r, &format!("{nic}/subsystem_device"), "0x1100\n");
        put(r, &format!("{nic}/revision"), "0x03\n");
        put(r, "sys/bus/usb/devices/1-1/idVendor", "0781\n");
        put(r, "sys/bus/usb/devices/1-1/idProduct", "5581\n");
        put(r, "sys/block/sda/size", "2097152\n");
        put(r, "sys/block/loop0/size", "100\n");
        let c = computer_from_host_at(r);
        assert_eq!(c.name, "ref01");
        assert_eq!(c.memory_mb, 7960);
        assert_eq!(
            (c.make.as_str(), c.model.as_str()),
            ("Contoso Ltd.", "Virtual 9")
        );
        assert_eq!(c.uuid, "4C4C4544-0031-3010-8052-B4C04F4E3732");
        assert_eq!(c.firmware, Firmware::Uefi);
        assert_eq!(c.chassis_types, vec![3]);
        assert_eq!(c.mac_addresses, vec!["00:15:5D:01:02:03".to_string()]);
        assert_eq!(
            c.pnp_ids,
            vec![
                "PCI\\VEN_8086&DEV_100E&SUBSYS_11001AF4&REV_03".to_string(),
                "USB\\VID_0781&PID_5581".to_string()
            ]
        );
        assert_eq!(c.disks.len(), 1);
        assert_eq!(c.disks[0].path, Path::new("/dev/sda"));
        assert_eq!(c.disks[0].size, Some(1 << 30));
        // An empty tree still gives a usable computer.
        let e = tempfile::tempdir().unwrap();
        let c = computer_from_host_at(e.path());
        assert_eq!(c.firmware, Firmware::Bios);
        assert!(c.disks.is_empty() && c.pnp_ids.is_empty());
    }
}
