//! The reference computer: the machine a sequence runs on, described in TOML.
//!
//! The same description is the inventory that WMI conditions query, so the
//! classes built here (`Win32_ComputerSystem`, `Win32_BIOS`, …) carry the
//! properties admins write conditions against (Manufacturer, Model,
//! SerialNumber, UUID, MACAddress, memory, disks).

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tasq_tasksequence::wql::{Instance, Inventory, Value};

#[derive(Debug, thiserror::Error)]
pub enum ComputerError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("disk {index} ({path}): {message}")]
    Disk {
        index: usize,
        path: PathBuf,
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    X86,
    #[default]
    X64,
    Arm64,
}

impl Architecture {
    /// `Win32_Processor.Architecture` code.
    fn wmi_code(self) -> i64 {
        match self {
            Architecture::X86 => 0,
            Architecture::X64 => 9,
            Architecture::Arm64 => 12,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Firmware {
    Bios,
    #[default]
    Uefi,
}

/// One disk, disk 0 first: an image file (created at `size` when missing) or a block device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    pub path: PathBuf,
    /// Bytes; needed to create a missing image file. Accepts `size = "64G"` too.
    #[serde(default, deserialize_with = "de_size")]
    pub size: Option<u64>,
    #[serde(default)]
    pub usb: bool,
}

fn de_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum S {
        N(u64),
        T(String),
    }
    match Option::<S>::deserialize(d)? {
        None => Ok(None),
        Some(S::N(n)) => Ok(Some(n)),
        Some(S::T(t)) => parse_size(&t).map(Some).map_err(serde::de::Error::custom),
    }
}

/// `64G`, `512M`, `1T`, `4096` → bytes (binary units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(format!("unknown size unit in {s:?}")),
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("bad size {s:?}"))
}

/// The reference computer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Computer {
    pub name: String,
    #[serde(default)]
    pub architecture: Architecture,
    #[serde(default)]
    pub firmware: Firmware,
    #[serde(default)]
    pub make: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub serial: String,
    #[serde(default)]
    pub uuid: String,
    #[serde(default)]
    pub mac_addresses: Vec<String>,
    #[serde(default)]
    pub pnp_ids: Vec<String>,
    /// Memory in MiB.
    #[serde(default)]
    pub memory_mb: u64,
    /// `Win32_SystemEnclosure.ChassisTypes` (3 desktop, 10 notebook, …).
    #[serde(default)]
    pub chassis_types: Vec<i64>,
    #[serde(default)]
    pub disks: Vec<Disk>,
}

impl Computer {
    pub fn from_toml(text: &str, origin: &Path) -> Result<Computer, ComputerError> {
        let c: Computer = toml::from_str(text).map_err(|e| ComputerError::Parse {
            path: origin.to_path_buf(),
            message: e.to_string(),
        })?;
        if c.name.trim().is_empty() {
            return Err(ComputerError::Parse {
                path: origin.to_path_buf(),
                message: "name must not be empty".into(),
            });
        }
        Ok(c)
    }

    /// Reads the file; relative disk paths are taken relative to the file.
    pub fn load(path: &Path) -> Result<Computer, ComputerError> {
        let text = std::fs::read_to_string(path).map_err(|e| ComputerError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        let mut c = Computer::from_toml(&text, path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        for d in &mut c.disks {
            if d.path.is_relative() {
                d.path = base.join(&d.path);
            }
        }
        Ok(c)
    }

    /// Creates missing disk image files at their size (sparse). Block devices and
    /// existing files are left alone.
    pub fn prepare_disks(&self) -> Result<(), ComputerError> {
        for (index, d) in self.disks.iter().enumerate() {
            if d.path.exists() {
                continue;
            }
            let Some(size) = d.size else {
                return Err(ComputerError::Disk {
                    index,
                    path: d.path.clone(),
                    message: "missing and no size given to create it".into(),
                });
            };
            let f = std::fs::File::create(&d.path).and_then(|f| f.set_len(size).map(|_| f));
            f.map_err(|e| ComputerError::Disk {
                index,
                path: d.path.clone(),
                message: e.to_string(),
            })?;
        }
        Ok(())
    }

    fn disk_size(d: &Disk) -> u64 {
        d.size
            .or_else(|| std::fs::metadata(&d.path).ok().map(|m| m.len()))
            .unwrap_or(0)
    }

    /// The WMI inventory conditions query.
    pub fn inventory(&self) -> Inventory {
        let mut inv = Inventory::new();
        let mem = (self.memory_mb as i64).saturating_mul(1 << 20);
        inv.add(
            "Win32_ComputerSystem",
            Instance::new()
                .with("Name", self.name.as_str())
                .with("Manufacturer", self.make.as_str())
                .with("Model", self.model.as_str())
                .with("TotalPhysicalMemory", mem)
                .with(
                    "SystemType",
                    match self.architecture {
                        Architecture::X86 => "X86-based PC",
                        Architecture::X64 => "x64-based PC",
                        Architecture::Arm64 => "ARM64-based PC",
                    },
                ),
        );
        inv.add(
            "Win32_BIOS",
            Instance::new()
                .with("SerialNumber", self.serial.as_str())
                .with("Manufacturer", self.make.as_str()),
        );
        inv.add(
            "Win32_ComputerSystemProduct",
            Instance::new()
                .with("UUID", self.uuid.as_str())
                .with("IdentifyingNumber", self.serial.as_str())
                .with("Name", self.model.as_str())
                .with("Vendor", self.make.as_str()),
        );
        inv.add(
            "Win32_BaseBoard",
            Instance::new()
                .with("Manufacturer", self.make.as_str())
                .with("Product", self.model.as_str())
                .with("SerialNumber", self.serial.as_str()),
        );
        inv.add(
            "Win32_Processor",
            Instance::new()
                .with("Architecture", self.architecture.wmi_code())
                .with(
                    "AddressWidth",
                    if self.architecture == Architecture::X86 {
                        32i64
                    } else {
                        64
                    },
                ),
        );
        let mut enc = Instance::new()
            .with("Manufacturer", self.make.as_str())
            .with("SerialNumber", self.serial.as_str());
        enc.set(
            "ChassisTypes",
            Value::Array(self.chassis_types.iter().map(|&c| Value::Int(c)).collect()),
        );
        inv.add("Win32_SystemEnclosure", enc);
        for (i, d) in self.disks.iter().enumerate() {
            inv.add(
                "Win32_DiskDrive",
                Instance::new()
                    .with("Index", i as i64)
                    .with("DeviceID", format!("\\\\.\\PHYSICALDRIVE{i}").as_str())
                    .with("Size", Self::disk_size(d) as i64)
                    .with("InterfaceType", if d.usb { "USB" } else { "SCSI" })
                    .with(
                        "MediaType",
                        if d.usb {
                            "Removable Media"
                        } else {
                            "Fixed hard disk media"
                        },
                    ),
            );
        }
        for (i, mac) in self.mac_addresses.iter().enumerate() {
            let mut a = Instance::new()
                .with("MACAddress", mac.as_str())
                .with("DeviceID", i.to_string().as_str())
                .with("NetEnabled", true);
            if let Some(p) = self.pnp_ids.get(i) {
                a.set("PNPDeviceID", Value::Str(p.clone()));
            }
            inv.add("Win32_NetworkAdapter", a);
        }
        // Devices without a network adapter still show up as PnP entities.
        for p in &self.pnp_ids {
            inv.add(
                "Win32_PnPEntity",
                Instance::new()
                    .with("PNPDeviceID", p.as_str())
                    .with("DeviceID", p.as_str()),
            );
        }
        inv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_disks_is_valid_and_sizes_parse() {
        let c = Computer::from_toml("name = \"REF01\"", Path::new("x.toml")).unwrap();
        assert!(c.disks.is_empty());
        assert_eq!(c.architecture, Architecture::X64);
        let c = Computer::from_toml(
            "name = \"A\"\n[[disks]]\npath = \"d0.img\"\nsize = \"2G\"\nusb = true\n[[disks]]\npath=\"/dev/sdb\"\nsize = 4096\n",
            Path::new("x.toml"),
        )
        .unwrap();
        assert_eq!(c.disks[0].size, Some(2 << 30));
        assert!(c.disks[0].usb);
        assert_eq!(c.disks[1].size, Some(4096));
        assert!(Computer::from_toml("name = \"\"", Path::new("x")).is_err());
        assert!(Computer::from_toml("name = \"a\"\nbogus = 1", Path::new("x")).is_err());
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("99999999999999T").is_err());
    }

    #[test]
    fn missing_disk_images_are_created_at_size() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(
            &p,
            "name = \"A\"\n[[disks]]\npath = \"disk0.img\"\nsize = \"1M\"\n",
        )
        .unwrap();
        let c = Computer::load(&p).unwrap();
        c.prepare_disks().unwrap();
        assert_eq!(
            std::fs::metadata(dir.path().join("disk0.img"))
                .unwrap()
                .len(),
            1 << 20
        );
    }
}
