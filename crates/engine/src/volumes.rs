//! The volumes of the reference computer as the sequence sees them: drive
//! letters (`C:`, `S:`) assigned by Format and Partition Disk, or found on
//! the computer's disks, each pointing at a partition of a disk (or, in the
//! full OS, at a host directory). The map is part of the journaled run
//! state, so a letter means the same volume after a restart.
//!
//! Steps open a letter with [`open_drive`] and get a
//! [`VolumeFs`](tasq_volume::VolumeFs) for file-level work.

use crate::computer::Computer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use tasq_disk::FsType;
use tasq_volume::fs::{FsError, VolPath, VolumeFs};

/// Where a volume lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum VolumeRef {
    /// Partition `partition` (1-based, as `tasq disk list` shows) of disk
    /// `disk` (0-based index into the computer's disks).
    Partition {
        disk: usize,
        partition: u32,
        offset: u64,
        len: u64,
        /// File system name as `FsType` displays it (`NTFS`, `FAT32`, …).
        fs: String,
        #[serde(default)]
        label: Option<String>,
    },
    /// A directory of the host (the installed OS's own volume when the
    /// engine runs inside it).
    HostDir { path: PathBuf },
}

/// A drive letter → volume map, kept in the run state.
pub type Drives = BTreeMap<char, VolumeRef>;

/// Parses `C`, `C:` or `c:\` → `'C'`.
pub fn drive_letter(s: &str) -> Option<char> {
    let t = s.trim();
    let mut ch = t.chars();
    let l = ch.next()?.to_ascii_uppercase();
    let rest: String = ch.collect();
    (l.is_ascii_uppercase() && matches!(rest.as_str(), "" | ":" | ":\\" | ":/")).then_some(l)
}

/// Splits `C:\Windows\Panther` into the letter and the path inside the volume.
pub fn split_drive_path(s: &str) -> Option<(char, &str)> {
    let b = s.as_bytes();
    if b.len() >= 2 && b[1] == b':' && b[0].is_ascii_alphabetic() {
        Some(((b[0] as char).to_ascii_uppercase(), &s[2..]))
    } else {
        None
    }
}

fn fs_type(name: &str) -> Option<FsType> {
    Some(match name.to_ascii_uppercase().as_str() {
        "NTFS" => FsType::Ntfs,
        "FAT32" => FsType::Fat32,
        "FAT16" => FsType::Fat16,
        "FAT12" => FsType::Fat12,
        _ => return None,
    })
}

impl VolumeRef {
    /// "partition 3 of disk 0 (NTFS)" / "directory /x", for messages.
    pub fn describe(&self) -> String {
        match self {
            VolumeRef::Partition {
                disk,
                partition,
                fs,
                ..
            } => format!("partition {partition} of disk {disk} ({fs})"),
            VolumeRef::HostDir { path } => format!("directory {}", path.display()),
        }
    }

    /// Opens the volume for file access.
    pub fn open(&self, computer: &Computer, writable: bool) -> Result<Box<dyn VolumeFs>, FsError> {
        match self {
            VolumeRef::HostDir { path } => Ok(Box::new(tasq_volume::HostDirFs::new(path)?)),
            VolumeRef::Partition {
                disk,
                offset,
                len,
                fs,
                ..
            } => {
                let d = computer.disks.get(*disk).ok_or_else(|| {
                    FsError::new(
                        self.describe(),
                        "opening",
                        "\\",
                        format!("the computer has no disk {disk}"),
                    )
                })?;
                let t = fs_type(fs).ok_or_else(|| {
                    FsError::new(
                        self.describe(),
                        "opening",
                        "\\",
                        format!("file system {fs} has no file access here"),
                    )
                })?;
                tasq_volume::fs::open_volume(&d.path, *offset, *len, t, writable)
            }
        }
    }
}

/// Opens the volume of `drive` (`C:` or `C:\path`) and returns it with the
/// path inside it.
pub fn open_drive(
    drives: &Drives,
    computer: &Computer,
    spec: &str,
    writable: bool,
) -> Result<(Box<dyn VolumeFs>, VolPath), String> {
    let (letter, rest) = split_drive_path(spec)
        .or_else(|| drive_letter(spec).map(|l| (l, "")))
        .ok_or_else(|| format!("{spec:?} is not a drive letter or a path with one"))?;
    let vol = drives
        .get(&letter)
        .ok_or_else(|| format!("no volume has the drive letter {letter}:"))?;
    let path = VolPath::parse(rest).map_err(|e| format!("{spec}: {e}"))?;
    let fs = vol.open(computer, writable).map_err(|e| e.to_string())?;
    Ok((fs, path))
}

/// Whether WinPE leaves a partition of this type without a letter at boot
/// (EFI system, Microsoft reserved, recovery: GPT types, or the MBR types
/// 0xEF and 0x27).
fn letterless(t: &tasq_disk::PartitionType) -> bool {
    use tasq_disk::layout::{GUID_EFI_SYSTEM, GUID_MSR, GUID_WINDOWS_RECOVERY};
    match t {
        tasq_disk::PartitionType::Gpt { type_guid, .. } => {
            [GUID_EFI_SYSTEM, GUID_MSR, GUID_WINDOWS_RECOVERY].contains(&type_guid.as_str())
        }
        tasq_disk::PartitionType::Mbr { sys, .. } => matches!(sys, 0xEF | 0x27),
        tasq_disk::PartitionType::Whole => false,
    }
}

/// The drive letters a boot environment gives the computer's volumes when
/// a run starts without any (no Format and Partition Disk before): every
/// NTFS or FAT volume of every disk, disk 0 first and partitions in table
/// order, gets the next letter from C: (X: is skipped: it is WinPE's own).
/// EFI system, MSR and recovery partitions get none, as WinPE leaves them
/// unlettered. A disk that cannot be read is passed over with a note in
/// the returned list of problems.
pub fn discover(computer: &Computer) -> (Drives, Vec<String>) {
    let mut drives = Drives::new();
    let mut problems = Vec::new();
    let mut letters = ('C'..='Z').filter(|l| *l != 'X');
    for (i, d) in computer.disks.iter().enumerate() {
        let disk = match tasq_disk::Disk::open(&d.path, false) {
            Ok(x) => x,
            Err(e) => {
                problems.push(format!("disk {i}: {e}"));
                continue;
            }
        };
        let table = match tasq_disk::read_table(&disk) {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!("disk {i}: {e}"));
                continue;
            }
        };
        for e in &table.entries {
            if letterless(&e.ptype) {
                continue;
            }
            let found = match tasq_disk::detect(&disk, e.offset(), e.size()) {
                Ok(f) => f,
                Err(err) => {
                    problems.push(format!("disk {i} partition {}: {err}", e.index));
                    continue;
                }
            };
            if !matches!(
                found.fs,
                FsType::Ntfs | FsType::Fat32 | FsType::Fat16 | FsType::Fat12
            ) {
                continue;
            }
            let Some(l) = letters.next() else {
                return (drives, problems);
            };
            drives.insert(
                l,
                VolumeRef::Partition {
                    disk: i,
                    partition: e.index,
                    offset: e.offset(),
                    len: e.size(),
                    fs: found.fs.to_string(),
                    label: found.label.clone(),
                },
            );
        }
    }
    (drives, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_and_paths() {
        assert_eq!(drive_letter("c:"), Some('C'));
        assert_eq!(drive_letter("D"), Some('D'));
        assert_eq!(drive_letter("C:\\"), Some('C'));
        assert_eq!(drive_letter("C:\\x"), None);
        assert_eq!(drive_letter("1:"), None);
        assert_eq!(split_drive_path("c:\\Windows"), Some(('C', "\\Windows")));
        assert_eq!(split_drive_path("\\\\srv\\share"), None);
    }

    #[test]
    fn host_dir_drives_open_and_refuse_unknown_letters() {
        let d = tempfile::tempdir().unwrap();
        let mut drives = Drives::new();
        drives.insert(
            'C',
            VolumeRef::HostDir {
                path: d.path().to_path_buf(),
            },
        );
        let c = Computer::from_toml("name=\"R\"", std::path::Path::new("x")).unwrap();
        let (mut fs, p) = open_drive(&drives, &c, "C:\\Windows\\x.txt", true).unwrap();
        fs.write_file(&p, &mut &b"1"[..]).unwrap();
        assert!(d.path().join("Windows/x.txt").is_file());
        assert!(open_drive(&drives, &c, "E:\\x", true)
            .err()
            .unwrap()
            .contains("E:"));
        assert!(open_drive(&drives, &c, "C:\\..\\x", true).is_err());
        let json = serde_json::to_string(&drives).unwrap();
        let back: Drives = serde_json::from_str(&json).unwrap();
        assert_eq!(back, drives);
    }
}
