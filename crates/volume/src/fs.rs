//! File-level access to a volume, for the task sequence steps that put
//! files onto a target volume or read them from it without imaging it:
//! `unattend.xml`, staged drivers, the client package, `SetupComplete.cmd`,
//! boot files and the BCD store, the `_SMSTaskSequence` folder.
//!
//! [`VolumeFs`] is the one interface; backends implement it for an
//! unmounted NTFS volume (libntfs-3g), a FAT volume (`fatfs`) and a host
//! directory (the installed OS when the engine runs inside it, and tests).
//! [`open_volume`] picks the backend from the detected file system.
//!
//! Committing: a volume returned by [`open_volume`] is consistent on disk
//! after [`VolumeFs::flush`] returns `Ok` (NTFS: unmounted and mounted
//! again; FAT: fatfs unmounted, attributes and dot entries patched,
//! mounted again). Dropping it writes everything back the same way but
//! cannot report a failure: steps call `flush()`, then drop.
//!
//! Paths are [`VolPath`]s: Windows-style relative paths, checked once when
//! parsed (no `..`, no `.`, no empty or NUL-bearing components, no drive
//! letter), so no backend can be asked to leave its volume.

use std::io::Read;
use std::path::Path;

/// A failure of a file operation on a volume, naming the volume and path.
#[derive(Debug, thiserror::Error)]
#[error("{volume}: {op} {path}: {reason}")]
pub struct FsError {
    pub volume: String,
    pub op: &'static str,
    pub path: String,
    pub reason: String,
}

impl FsError {
    pub fn new(
        volume: impl Into<String>,
        op: &'static str,
        path: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        FsError {
            volume: volume.into(),
            op,
            path: path.to_string(),
            reason: reason.into(),
        }
    }
}

pub type FsResult<T> = std::result::Result<T, FsError>;

/// A checked path inside a volume, as components. Displayed with `\`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct VolPath {
    parts: Vec<String>,
}

/// Characters Windows forbids in file names (besides the separators).
const FORBIDDEN: &[char] = &['<', '>', ':', '"', '|', '?', '*', '\0'];

impl VolPath {
    /// The volume's root directory.
    pub fn root() -> VolPath {
        VolPath::default()
    }

    /// Parses `Windows\Panther\Unattend`, `/Windows/Panther` or `\`; a
    /// leading separator is allowed, `..`, `.`, empty components, drive
    /// letters and characters Windows forbids are not.
    pub fn parse(s: &str) -> Result<VolPath, String> {
        let mut parts = Vec::new();
        for c in s.split(['\\', '/']) {
            if c.is_empty() {
                continue;
            }
            if c == "." || c == ".." {
                return Err(format!("{s:?}: the component {c:?} is not allowed"));
            }
            if let Some(bad) = c
                .chars()
                .find(|ch| FORBIDDEN.contains(ch) || ch.is_control())
            {
                return Err(format!(
                    "{s:?}: the character {bad:?} is not allowed in {c:?}"
                ));
            }
            if c.len() > 255 {
                return Err(format!("{s:?}: a component is longer than 255 bytes"));
            }
            parts.push(c.to_string());
        }
        Ok(VolPath { parts })
    }

    pub fn components(&self) -> &[String] {
        &self.parts
    }
    pub fn is_root(&self) -> bool {
        self.parts.is_empty()
    }
    /// The last component (`None` for the root).
    pub fn file_name(&self) -> Option<&str> {
        self.parts.last().map(String::as_str)
    }
    pub fn parent(&self) -> Option<VolPath> {
        if self.parts.is_empty() {
            return None;
        }
        Some(VolPath {
            parts: self.parts[..self.parts.len() - 1].to_vec(),
        })
    }
    /// Appends one component, checked like [`parse`](Self::parse) does.
    pub fn join(&self, name: &str) -> Result<VolPath, String> {
        let tail = VolPath::parse(name)?;
        let mut parts = self.parts.clone();
        parts.extend(tail.parts);
        Ok(VolPath { parts })
    }
    /// Whether `self` is `other` or lies under it, comparing names without
    /// case as Windows does.
    pub fn starts_with_ci(&self, other: &VolPath) -> bool {
        other.parts.len() <= self.parts.len()
            && other
                .parts
                .iter()
                .zip(&self.parts)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    }
}

impl std::fmt::Display for VolPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\\{}", self.parts.join("\\"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    /// A symlink, junction or other reparse point, or a special file:
    /// never followed.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsEntry {
    pub name: String,
    pub kind: EntryKind,
    pub size: u64,
}

/// File operations on one volume. Every path is relative to the volume's
/// root; a symlink or reparse point met on the way is an error, never
/// followed.
pub trait VolumeFs {
    /// "NTFS volume in disk0.img at offset …", for messages.
    fn describe(&self) -> String;
    /// The entry at `path`, or `None` when nothing is there.
    fn metadata(&mut self, path: &VolPath) -> FsResult<Option<FsEntry>>;
    /// The entries of a directory, sorted by name.
    fn read_dir(&mut self, path: &VolPath) -> FsResult<Vec<FsEntry>>;
    /// Creates a directory and any missing parents.
    fn create_dir_all(&mut self, path: &VolPath) -> FsResult<()>;
    /// Creates or replaces the file at `path` with everything `data`
    /// yields (parents are created). Returns the bytes written.
    fn write_file(&mut self, path: &VolPath, data: &mut dyn Read) -> FsResult<u64>;
    /// The whole file; files larger than `limit` are refused.
    fn read_file(&mut self, path: &VolPath, limit: u64) -> FsResult<Vec<u8>>;
    /// Removes a file, or a directory with everything under it. Removing
    /// nothing is not an error.
    fn remove(&mut self, path: &VolPath) -> FsResult<()>;
    /// Free bytes on the volume.
    fn free_space(&mut self) -> FsResult<u64>;
    /// Writes everything back (an NTFS or FAT volume is consistent on disk
    /// after this returns). The handle may be used again.
    fn flush(&mut self) -> FsResult<()>;
}

/// Opens the volume of `len` bytes at byte `offset` of `disk` (a disk
/// image, volume image or block device) whose file system is `fs` (as
/// `tasq_disk::detect` found it). NTFS needs the `ntfs` feature; FAT12,
/// FAT16 and FAT32 are always available; anything else is an error that
/// names the file system. See the module notes on committing.
pub fn open_volume(
    disk: &Path,
    offset: u64,
    len: u64,
    fs: tasq_disk::FsType,
    writable: bool,
) -> FsResult<Box<dyn VolumeFs>> {
    use tasq_disk::FsType;
    let desc = || format!("{fs:?} volume in {} at offset {offset}", disk.display());
    match fs {
        #[cfg(feature = "ntfs")]
        FsType::Ntfs => Ok(Box::new(crate::ntfs::NtfsFs::open(
            disk, offset, len, writable,
        )?)),
        FsType::Fat12 | FsType::Fat16 | FsType::Fat32 => {
            let d = tasq_disk::Disk::open(disk, writable)
                .map_err(|e| FsError::new(desc(), "opening", VolPath::root(), e.to_string()))?;
            Ok(Box::new(crate::fat::FatFs::new(&d, offset, len, writable)?))
        }
        other => Err(FsError::new(
            desc(),
            "opening",
            VolPath::root(),
            format!("no file access for {other:?} volumes (only NTFS and FAT)"),
        )),
    }
}

/// What a tree copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyStats {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
    /// Things not copied (links, special files), with the reason.
    pub skipped: Vec<String>,
}

/// Copies the host directory `src` into `dest` on the volume (merged with
/// what is there; files replaced). Symlinks and special files are skipped
/// and reported, never followed.
pub fn copy_host_tree(fs: &mut dyn VolumeFs, src: &Path, dest: &VolPath) -> FsResult<CopyStats> {
    copy_host_tree_except(fs, src, dest, &[])
}

/// As [`copy_host_tree`], leaving out the host paths in `skip` (files or
/// whole directories).
pub fn copy_host_tree_except(
    fs: &mut dyn VolumeFs,
    src: &Path,
    dest: &VolPath,
    skip: &[std::path::PathBuf],
) -> FsResult<CopyStats> {
    let mut stats = CopyStats::default();
    fs.create_dir_all(dest)?;
    copy_host_dir(fs, src, dest, skip, &mut stats)?;
    Ok(stats)
}

fn copy_host_dir(
    fs: &mut dyn VolumeFs,
    src: &Path,
    dest: &VolPath,
    skip: &[std::path::PathBuf],
    stats: &mut CopyStats,
) -> FsResult<()> {
    let host_err =
        |p: &Path, e: std::io::Error| FsError::new("host", "reading", p.display(), e.to_string());
    let mut entries: Vec<_> = std::fs::read_dir(src)
        .map_err(|e| host_err(src, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| host_err(src, e))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        if skip.contains(&path) {
            continue;
        }
        let Some(name) = e.file_name().to_str().map(str::to_string) else {
            stats
                .skipped
                .push(format!("{}: the name is not UTF-8", path.display()));
            continue;
        };
        let to = dest
            .join(&name)
            .map_err(|r| FsError::new(fs.describe(), "copying to", format!("{dest}\\{name}"), r))?;
        let meta = std::fs::symlink_metadata(&path).map_err(|e| host_err(&path, e))?;
        if meta.is_dir() {
            fs.create_dir_all(&to)?;
            stats.dirs += 1;
            copy_host_dir(fs, &path, &to, skip, stats)?;
        } else if meta.is_file() {
            let mut f = std::fs::File::open(&path).map_err(|e| host_err(&path, e))?;
            stats.bytes += fs.write_file(&to, &mut f)?;
            stats.files += 1;
        } else {
            stats.skipped.push(format!(
                "{}: not a regular file or directory",
                path.display()
            ));
        }
    }
    Ok(())
}

/// Copies the tree at `src` on one volume to `dest` on another (files up
/// to `limit` bytes each). Links and special entries are skipped and reported.
pub fn copy_tree_between(
    from: &mut dyn VolumeFs,
    src: &VolPath,
    to: &mut dyn VolumeFs,
    dest: &VolPath,
    limit: u64,
) -> FsResult<CopyStats> {
    let mut stats = CopyStats::default();
    to.create_dir_all(dest)?;
    copy_between(from, src, to, dest, limit, &mut stats)?;
    Ok(stats)
}

fn copy_between(
    from: &mut dyn VolumeFs,
    src: &VolPath,
    to: &mut dyn VolumeFs,
    dest: &VolPath,
    limit: u64,
    stats: &mut CopyStats,
) -> FsResult<()> {
    for e in from.read_dir(src)? {
        let bad = |r: String| FsError::new(from.describe(), "copying", format!("{src}"), r);
        let s = src.join(&e.name).map_err(bad)?;
        let d = dest.join(&e.name).map_err(bad)?;
        match e.kind {
            EntryKind::Dir => {
                to.create_dir_all(&d)?;
                stats.dirs += 1;
                copy_between(from, &s, to, &d, limit, stats)?;
            }
            EntryKind::File => {
                let data = from.read_file(&s, limit)?;
                stats.bytes += to.write_file(&d, &mut data.as_slice())?;
                stats.files += 1;
            }
            EntryKind::Other => stats
                .skipped
                .push(format!("{s}: a link or special file, not copied")),
        }
    }
    Ok(())
}

/// Empties a volume except the top-level entries named in `keep` (compared
/// without case), the way Apply Operating System Image wipes its
/// destination but keeps `_SMSTaskSequence`. Returns the names removed.
pub fn wipe_except(fs: &mut dyn VolumeFs, keep: &[&str]) -> FsResult<Vec<String>> {
    let mut removed = Vec::new();
    for e in fs.read_dir(&VolPath::root())? {
        if keep.iter().any(|k| k.eq_ignore_ascii_case(&e.name)) {
            continue;
        }
        let p = VolPath::root()
            .join(&e.name)
            .map_err(|r| FsError::new(fs.describe(), "wiping", &e.name, r))?;
        fs.remove(&p)?;
        removed.push(e.name);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_and_refuse_escapes() {
        let p = VolPath::parse("\\Windows\\Panther/Unattend").unwrap();
        assert_eq!(p.components(), ["Windows", "Panther", "Unattend"]);
        assert_eq!(p.to_string(), "\\Windows\\Panther\\Unattend");
        assert!(VolPath::parse("\\").unwrap().is_root());
        for bad in [
            "..",
            "a\\..\\b",
            "a\\.\\b",
            "C:\\Windows",
            "a\0b",
            "a*b",
            "a|b",
        ] {
            assert!(VolPath::parse(bad).is_err(), "{bad:?} accepted");
        }
        let q = p.join("unattend.xml").unwrap();
        assert_eq!(q.file_name(), Some("unattend.xml"));
        assert_eq!(q.parent().unwrap(), p);
        assert!(q.starts_with_ci(&VolPath::parse("windows\\PANTHER").unwrap()));
        assert!(!p.starts_with_ci(&q));
        assert!(p.join("..").is_err());
    }
}
