//! Volume addresses as the CLI takes them: `disk.img:3` or `/dev/sdb:1`
//! names partition 3 of a disk (0: a file system on the whole disk).
//! [`locate`] finds the partition and its file system, with errors that
//! name the disk and partition.

use std::path::PathBuf;

use crate::disk::Disk;
use crate::error::{DiskError, Result};
use crate::list::{list_volumes, VolumeInfo};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeAddress {
    pub disk: PathBuf,
    pub index: u32,
}

impl VolumeAddress {
    /// Splits `PATH:N` at the last colon when N is a decimal number and
    /// PATH is not empty; anything else is not a volume address (a plain
    /// directory such as `C:` stays a path).
    pub fn parse(s: &str) -> Option<VolumeAddress> {
        let (path, n) = s.rsplit_once(':')?;
        if path.is_empty() || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(VolumeAddress {
            disk: PathBuf::from(path),
            index: n.parse().ok()?,
        })
    }
}

impl std::fmt::Display for VolumeAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.disk.display(), self.index)
    }
}

/// The volume `index` of `disk`, with its detected file system.
pub fn locate(disk: &Disk, index: u32) -> Result<VolumeInfo> {
    let report = list_volumes(disk)?;
    let known: Vec<String> = report.volumes.iter().map(|v| v.index.to_string()).collect();
    report
        .volumes
        .into_iter()
        .find(|v| v.index == index)
        .ok_or_else(|| DiskError::BadPartition {
            disk: disk.name(),
            index,
            reason: if known.is_empty() {
                "no such partition (the disk has none)".into()
            } else {
                format!("no such partition (the disk has {})", known.join(", "))
            },
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse() {
        assert_eq!(
            VolumeAddress::parse("disk.img:3"),
            Some(VolumeAddress {
                disk: "disk.img".into(),
                index: 3
            })
        );
        assert_eq!(
            VolumeAddress::parse("/a:b/disk.img:12").unwrap().disk,
            PathBuf::from("/a:b/disk.img")
        );
        for not in [
            "disk.img",
            "C:",
            ":3",
            "disk.img:",
            "disk.img:x",
            "d:99999999999",
        ] {
            assert_eq!(VolumeAddress::parse(not), None, "{not}");
        }
        assert_eq!(
            VolumeAddress::parse("d.img:0").unwrap().to_string(),
            "d.img:0"
        );
    }

    #[test]
    fn locate_names_missing_partitions() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.img");
        let d = Disk::create(&p, 1 << 30).unwrap();
        crate::partition_and_format(&d, &crate::Layout::uefi()).unwrap();
        let v = locate(&d, 3).unwrap();
        assert_eq!(v.fs, crate::FsType::Ntfs);
        let e = locate(&d, 7).unwrap_err().to_string();
        assert!(
            e.contains("l.img: partition 7: no such partition (the disk has 1, 2, 3, 4)"),
            "{e}"
        );
    }
}
