//! Partition layouts in the terms of ConfigMgr's Format and Partition Disk
//! step: a partition style and a list of partitions, each with a type,
//! a file system, a size in MB, GB or percent of the *remaining* space,
//! quick format, bootable, a volume name and a volume-letter variable.
//!
//! [`Layout::bios`] and [`Layout::uefi`] are the wizard's defaults;
//! [`Layout::from_toml`] reads a custom list; [`plan`] turns a layout into
//! sector ranges on a disk of a given size (1 MiB alignment, MB = MiB).

use serde::{Deserialize, Serialize};

use crate::disk::SECTOR_SIZE;
use crate::error::{DiskError, Result};

pub const GUID_EFI_SYSTEM: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
pub const GUID_MSR: &str = "E3C9E316-0B5C-4DB8-817D-F92DF00215AE";
pub const GUID_BASIC_DATA: &str = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7";
pub const GUID_WINDOWS_RECOVERY: &str = "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC";
/// GPT attribute bit 0: the platform requires the partition.
pub const GPT_ATTR_PLATFORM_REQUIRED: u64 = 0x1;
/// GPT attribute bit 63 (basic data): no drive letter by default.
pub const GPT_ATTR_NO_DRIVE_LETTER: u64 = 0x8000_0000_0000_0000;

pub const MBR_TYPE_NTFS: u8 = 0x07;
pub const MBR_TYPE_FAT32_LBA: u8 = 0x0C;
pub const MBR_TYPE_RECOVERY: u8 = 0x27;
pub const MBR_TYPE_EFI: u8 = 0xEF;

/// Every partition starts on a 1 MiB boundary, as Windows places them.
pub const ALIGN_SECTORS: u64 = (1 << 20) / SECTOR_SIZE;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    Mbr,
    Gpt,
}

/// The step's partition types (Extended and Logical are not supported).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartKind {
    Primary,
    Efi,
    Msr,
    Recovery,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FsKind {
    #[serde(rename = "NTFS")]
    Ntfs,
    #[serde(rename = "FAT32")]
    Fat32,
}

impl FsKind {
    /// A file system name as the Format and Partition Disk step and layout
    /// files write it, any case: `NTFS`, `FAT32`, or empty/`NONE` for no
    /// file system (`Ok(None)`); anything else is `Err(())`.
    #[allow(clippy::result_unit_err)]
    pub fn parse_name(s: &str) -> std::result::Result<Option<FsKind>, ()> {
        match s.to_ascii_uppercase().as_str() {
            "" | "NONE" => Ok(None),
            "NTFS" => Ok(Some(FsKind::Ntfs)),
            "FAT32" => Ok(Some(FsKind::Fat32)),
            _ => Err(()),
        }
    }
}

impl std::fmt::Display for FsKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FsKind::Ntfs => "NTFS",
            FsKind::Fat32 => "FAT32",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "unit", content = "value", rename_all = "lowercase")]
pub enum SizeSpec {
    /// Mebibytes (the step's "MB").
    Mb(u64),
    /// Gibibytes (the step's "GB").
    Gb(u64),
    /// Percent (1–100) of the space remaining after the previous partitions.
    Percent(u8),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionSpec {
    pub kind: PartKind,
    pub file_system: Option<FsKind>,
    pub size: SizeSpec,
    pub quick_format: bool,
    /// MBR: the active flag.
    pub bootable: bool,
    /// Volume label, and the GPT partition name.
    pub volume_name: String,
    /// Task-sequence variable that receives the volume's drive letter.
    pub letter_variable: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub style: Style,
    pub partitions: Vec<PartitionSpec>,
}

fn spec(
    kind: PartKind,
    fs: Option<FsKind>,
    size: SizeSpec,
    bootable: bool,
    name: &str,
    letter: Option<&str>,
) -> PartitionSpec {
    PartitionSpec {
        kind,
        file_system: fs,
        size,
        quick_format: true,
        bootable,
        volume_name: name.into(),
        letter_variable: letter.map(str::to_string),
    }
}

impl Layout {
    /// "Partition Disk 0 - BIOS": System Reserved 350 MB NTFS active;
    /// Windows NTFS 99 % of the rest (`OSDisk`); Recovery NTFS the rest.
    pub fn bios() -> Layout {
        Layout {
            style: Style::Mbr,
            partitions: vec![
                spec(
                    PartKind::Primary,
                    Some(FsKind::Ntfs),
                    SizeSpec::Mb(350),
                    true,
                    "System Reserved",
                    None,
                ),
                spec(
                    PartKind::Primary,
                    Some(FsKind::Ntfs),
                    SizeSpec::Percent(99),
                    false,
                    "Windows",
                    Some("OSDisk"),
                ),
                spec(
                    PartKind::Recovery,
                    Some(FsKind::Ntfs),
                    SizeSpec::Percent(100),
                    false,
                    "Recovery",
                    None,
                ),
            ],
        }
    }

    /// "Partition Disk 0 - UEFI": EFI 500 MB FAT32; MSR 128 MB; Windows
    /// NTFS 99 % of the rest (`OSDisk`); Recovery NTFS the rest.
    pub fn uefi() -> Layout {
        Layout {
            style: Style::Gpt,
            partitions: vec![
                spec(
                    PartKind::Efi,
                    Some(FsKind::Fat32),
                    SizeSpec::Mb(500),
                    false,
                    "EFI",
                    None,
                ),
                spec(PartKind::Msr, None, SizeSpec::Mb(128), false, "MSR", None),
                spec(
                    PartKind::Primary,
                    Some(FsKind::Ntfs),
                    SizeSpec::Percent(99),
                    false,
                    "Windows",
                    Some("OSDisk"),
                ),
                spec(
                    PartKind::Recovery,
                    Some(FsKind::Ntfs),
                    SizeSpec::Percent(100),
                    false,
                    "Recovery",
                    None,
                ),
            ],
        }
    }

    /// Reads a layout from TOML:
    ///
    /// ```toml
    /// style = "gpt"            # or "mbr"
    /// [[partition]]
    /// type = "EFI"             # Primary, EFI, MSR, Recovery
    /// file_system = "FAT32"    # NTFS, FAT32, or omitted for none
    /// size = 500               # omitted: 100 percent
    /// unit = "MB"              # MB, GB, percent
    /// quick_format = true      # default true
    /// bootable = false         # default false
    /// volume_name = "EFI"
    /// letter_variable = "OSDisk"
    /// ```
    ///
    /// Enumerated values are compared without regard to case, as the
    /// step's XML spells them in upper case (`PERCENT`, `RECOVERY`).
    pub fn from_toml(text: &str, source_name: &str) -> Result<Layout> {
        let perr = |reason: String| DiskError::LayoutParse {
            source_name: source_name.into(),
            reason,
        };
        let raw: RawLayout = toml::from_str(text).map_err(|e| perr(e.to_string()))?;
        let style = match raw.style.to_ascii_lowercase().as_str() {
            "mbr" | "bios" => Style::Mbr,
            "gpt" | "uefi" => Style::Gpt,
            s => return Err(perr(format!("style {s:?}: expected mbr or gpt"))),
        };
        let mut partitions = Vec::new();
        for (i, p) in raw.partition.into_iter().enumerate() {
            let n = i + 1;
            let kind = match p.r#type.to_ascii_lowercase().as_str() {
                "primary" => PartKind::Primary,
                "efi" => PartKind::Efi,
                "msr" => PartKind::Msr,
                "recovery" => PartKind::Recovery,
                t => {
                    return Err(perr(format!(
                        "partition {n}: type {t:?}: expected Primary, EFI, MSR or Recovery"
                    )))
                }
            };
            let fs_name = p.file_system.as_deref().unwrap_or("");
            let file_system = FsKind::parse_name(fs_name).map_err(|()| {
                perr(format!(
                    "partition {n}: file system {:?}: expected NTFS or FAT32",
                    fs_name.to_ascii_uppercase()
                ))
            })?;
            let unit = p.unit.as_deref().unwrap_or("percent").to_ascii_lowercase();
            let size = match (p.size, unit.as_str()) {
                (None, "percent") => SizeSpec::Percent(100),
                (None, u) => {
                    return Err(perr(format!(
                        "partition {n}: unit {u:?} given without a size"
                    )))
                }
                (Some(v), "mb") => SizeSpec::Mb(v),
                (Some(v), "gb") => SizeSpec::Gb(v),
                (Some(v), "percent") if (1..=100).contains(&v) => SizeSpec::Percent(v as u8),
                (Some(v), "percent") => {
                    return Err(perr(format!(
                        "partition {n}: {v} percent is not within 1..=100"
                    )))
                }
                (_, u) => {
                    return Err(perr(format!(
                        "partition {n}: unit {u:?}: expected MB, GB or percent"
                    )))
                }
            };
            if matches!(size, SizeSpec::Mb(0) | SizeSpec::Gb(0)) {
                return Err(perr(format!("partition {n}: size 0")));
            }
            partitions.push(PartitionSpec {
                kind,
                file_system,
                size,
                quick_format: p.quick_format.unwrap_or(true),
                bootable: p.bootable.unwrap_or(false),
                volume_name: p.volume_name.unwrap_or_default(),
                letter_variable: p.letter_variable.filter(|s| !s.is_empty()),
            });
        }
        if partitions.is_empty() {
            return Err(perr("no [[partition]] in the layout".into()));
        }
        Ok(Layout { style, partitions })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayout {
    style: String,
    #[serde(default)]
    partition: Vec<RawPartition>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPartition {
    r#type: String,
    file_system: Option<String>,
    size: Option<u64>,
    unit: Option<String>,
    quick_format: Option<bool>,
    bootable: Option<bool>,
    volume_name: Option<String>,
    letter_variable: Option<String>,
}

/// One partition of a layout placed on a disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedPartition {
    /// 1-based partition number in the table.
    pub index: u32,
    pub start_lba: u64,
    pub sectors: u64,
    pub spec: PartitionSpec,
}

impl PlannedPartition {
    pub fn mbr_type(&self) -> u8 {
        match (self.spec.kind, self.spec.file_system) {
            (PartKind::Recovery, _) => MBR_TYPE_RECOVERY,
            (PartKind::Efi, _) => MBR_TYPE_EFI,
            (_, Some(FsKind::Fat32)) => MBR_TYPE_FAT32_LBA,
            _ => MBR_TYPE_NTFS,
        }
    }

    pub fn gpt_type(&self) -> &'static str {
        match self.spec.kind {
            PartKind::Primary => GUID_BASIC_DATA,
            PartKind::Efi => GUID_EFI_SYSTEM,
            PartKind::Msr => GUID_MSR,
            PartKind::Recovery => GUID_WINDOWS_RECOVERY,
        }
    }

    pub fn gpt_attributes(&self) -> u64 {
        match self.spec.kind {
            PartKind::Recovery => GPT_ATTR_PLATFORM_REQUIRED | GPT_ATTR_NO_DRIVE_LETTER,
            _ => 0,
        }
    }
}

/// The usable sectors `[first, end)` of a disk of `sectors` sectors.
pub fn usable_range(style: Style, sectors: u64) -> (u64, u64) {
    match style {
        // Everything after the MBR sector; partitions start at 1 MiB.
        Style::Mbr => (ALIGN_SECTORS, sectors),
        // The backup GPT takes the last 33 sectors (32 of entries and the
        // header), so the last usable sector is sectors - 34.
        Style::Gpt => (ALIGN_SECTORS, sectors.saturating_sub(33)),
    }
}

/// Places `layout` on a disk of `sectors` 512-byte sectors.
///
/// Each partition starts at the next 1 MiB boundary after the previous
/// one. MB and GB sizes are exact. A percentage is of the space that
/// remains from that start to the end of the usable area, rounded down to
/// whole MiB; 100 percent takes all of it to the last usable sector.
pub fn plan(layout: &Layout, sectors: u64, disk: &str) -> Result<Vec<PlannedPartition>> {
    let lerr = |reason: String| DiskError::Layout {
        disk: disk.into(),
        reason,
    };
    if layout.partitions.is_empty() {
        return Err(lerr("no partitions".into()));
    }
    if layout.style == Style::Mbr {
        if layout.partitions.len() > 4 {
            return Err(lerr(format!(
                "{} partitions, but an MBR holds 4 primary partitions",
                layout.partitions.len()
            )));
        }
        if sectors > u32::MAX as u64 {
            return Err(lerr(format!(
                "an MBR addresses at most 2 TiB; the disk has {sectors} sectors"
            )));
        }
        if let Some(p) = layout
            .partitions
            .iter()
            .position(|p| p.kind == PartKind::Msr)
        {
            return Err(lerr(format!("partition {}: an MSR needs GPT", p + 1)));
        }
    }
    if layout.style == Style::Gpt && layout.partitions.len() > 128 {
        return Err(lerr("more than 128 partitions".into()));
    }
    let (first, end) = usable_range(layout.style, sectors);
    let mut cursor = first;
    let mut out = Vec::new();
    for (i, p) in layout.partitions.iter().enumerate() {
        let index = i as u32 + 1;
        let start = cursor.div_ceil(ALIGN_SECTORS) * ALIGN_SECTORS;
        if start >= end {
            return Err(lerr(format!(
                "partition {index} ({}): no space left (it would start at sector {start}, the usable area ends at {end})",
                p.volume_name
            )));
        }
        let remaining = end - start;
        let mib = ALIGN_SECTORS;
        let want = match p.size {
            SizeSpec::Mb(n) => n.checked_mul(mib),
            SizeSpec::Gb(n) => n.checked_mul(1024 * mib),
            SizeSpec::Percent(100) => Some(remaining),
            SizeSpec::Percent(pc) => {
                Some((remaining as u128 * pc as u128 / 100) as u64 / mib * mib)
            }
        }
        .ok_or_else(|| lerr(format!("partition {index}: size overflows")))?;
        if want == 0 {
            return Err(lerr(format!(
                "partition {index} ({}): {:?} of {remaining} remaining sectors is less than 1 MiB",
                p.volume_name, p.size
            )));
        }
        if want > remaining {
            return Err(lerr(format!(
                "partition {index} ({}): needs {} MiB but only {} MiB remain",
                p.volume_name,
                want / mib,
                remaining / mib
            )));
        }
        out.push(PlannedPartition {
            index,
            start_lba: start,
            sectors: want,
            spec: p.clone(),
        });
        cursor = start + want;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bios_plan_on_8_gib() {
        let sectors = (8u64 << 30) / 512;
        let p = plan(&Layout::bios(), sectors, "d").unwrap();
        assert_eq!(p[0].start_lba, 2048);
        assert_eq!(p[0].sectors, 350 * 2048);
        let s1 = 2048 + 350 * 2048;
        assert_eq!(p[1].start_lba, s1);
        // 99 % of what remains, rounded down to MiB.
        assert_eq!(p[1].sectors, (sectors - s1) * 99 / 100 / 2048 * 2048);
        let s2 = s1 + p[1].sectors;
        assert_eq!(p[2].start_lba, s2);
        assert_eq!(p[2].sectors, sectors - s2);
        assert!(p[0].spec.bootable);
        assert_eq!(p[1].spec.letter_variable.as_deref(), Some("OSDisk"));
        assert_eq!(p[2].mbr_type(), 0x27);
    }

    #[test]
    fn too_small_disks_are_refused_with_the_partition_named() {
        let e = plan(&Layout::uefi(), (600u64 << 20) / 512, "small.img").unwrap_err();
        let s = e.to_string();
        assert!(s.contains("small.img") && s.contains("partition 2"), "{s}");
        let mut l = Layout::bios();
        l.partitions.push(l.partitions[0].clone());
        l.partitions.push(l.partitions[0].clone());
        assert!(plan(&l, 1 << 24, "d").is_err());
    }

    #[test]
    fn toml_layouts_parse_case_insensitively() {
        let l = Layout::from_toml(
            r#"
style = "GPT"
[[partition]]
type = "EFI"
file_system = "fat32"
size = 260
unit = "MB"
volume_name = "EFI"
[[partition]]
type = "PRIMARY"
file_system = "NTFS"
size = 50
unit = "PERCENT"
letter_variable = "OSDisk"
[[partition]]
type = "recovery"
file_system = "NTFS"
quick_format = false
"#,
            "t.toml",
        )
        .unwrap();
        assert_eq!(l.style, Style::Gpt);
        assert_eq!(l.partitions[0].size, SizeSpec::Mb(260));
        assert_eq!(l.partitions[1].size, SizeSpec::Percent(50));
        assert_eq!(l.partitions[2].size, SizeSpec::Percent(100));
        assert!(!l.partitions[2].quick_format);
        for bad in [
            "style = \"gpt\"\n[[partition]]\ntype = \"logical\"\n",
            "style = \"gpt\"\n[[partition]]\ntype = \"primary\"\nsize = 101\n",
            "style = \"gpt\"\n[[partition]]\ntype = \"primary\"\nfile_system = \"ext4\"\n",
            "style = \"gpt\"\n",
            "style = \"apm\"\n[[partition]]\ntype = \"primary\"\n",
            "style = \"gpt\"\n[[partition]]\ntype = \"primary\"\nsize = 1\nunit = \"TB\"\n",
        ] {
            let e = Layout::from_toml(bad, "bad.toml").unwrap_err();
            assert!(e.to_string().contains("bad.toml"), "{e}");
        }
    }
}
