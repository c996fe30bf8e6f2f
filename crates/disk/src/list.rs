//! Discovery: a disk's volumes with offset, size, partition type, file
//! system, label, USB flag and whether the capture step takes them.

use crate::detect::{detect, FsType};
use crate::disk::Disk;
use crate::error::Result;
use crate::table::{read_table, PartitionStyle, PartitionTable};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VolumeInfo {
    /// Partition number (0: a file system on the whole disk).
    pub index: u32,
    pub offset: u64,
    pub size: u64,
    pub partition_type: String,
    pub fs: FsType,
    pub label: Option<String>,
    pub usb: bool,
    pub capturable: bool,
    /// Why not, when not capturable.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DiskReport {
    pub disk: String,
    pub size: u64,
    pub style: PartitionStyle,
    pub usb: bool,
    pub usb_source: String,
    pub volumes: Vec<VolumeInfo>,
}

/// The capture rule: NTFS or FAT32 on a disk that is not USB. Err gives
/// the reason a volume is skipped.
pub fn capturable(fs: FsType, usb: bool) -> std::result::Result<(), String> {
    if usb {
        return Err("on a USB/removable disk".into());
    }
    match fs {
        FsType::Ntfs | FsType::Fat32 => Ok(()),
        FsType::Unknown => Err("no recognised file system".into()),
        other => Err(format!(
            "file system {other} is not captured (only NTFS and FAT32)"
        )),
    }
}

/// Lists the volumes of `disk`.
pub fn list_volumes(disk: &Disk) -> Result<DiskReport> {
    let table: PartitionTable = read_table(disk)?;
    let r = disk.removability();
    let usb = r.usb || r.removable;
    let mut volumes = Vec::new();
    for e in &table.entries {
        let (fs, label) = if e.ptype.holds_no_file_system() {
            (FsType::Unknown, None)
        } else {
            let d = detect(disk, e.offset(), e.size())?;
            (d.fs, d.label)
        };
        let verdict = if e.ptype.holds_no_file_system() {
            Err("Microsoft reserved partition (no file system)".to_string())
        } else {
            capturable(fs, usb)
        };
        volumes.push(VolumeInfo {
            index: e.index,
            offset: e.offset(),
            size: e.size(),
            partition_type: e.ptype.describe(),
            fs,
            label,
            usb,
            capturable: verdict.is_ok(),
            reason: verdict.err(),
        });
    }
    Ok(DiskReport {
        disk: disk.name(),
        size: disk.size(),
        style: table.style,
        usb,
        usb_source: r.source.clone(),
        volumes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_rule() {
        assert!(capturable(FsType::Ntfs, false).is_ok());
        assert!(capturable(FsType::Fat32, false).is_ok());
        assert!(capturable(FsType::Fat16, false)
            .unwrap_err()
            .contains("FAT16"));
        assert!(capturable(FsType::Ext4, false)
            .unwrap_err()
            .contains("ext4"));
        assert!(capturable(FsType::Ntfs, true).unwrap_err().contains("USB"));
        assert!(capturable(FsType::Unknown, false).is_err());
    }
}
