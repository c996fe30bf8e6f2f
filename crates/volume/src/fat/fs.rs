//! [`VolumeFs`] on a FAT12/16/32 volume inside a disk image or device,
//! through `fatfs`: what the steps use for the EFI system partition
//! (boot files, BCD) and FAT-formatted data volumes.
//!
//! - Names are long names; lookup ignores case as fatfs does (Unicode
//!   upper-casing of the long name, or the 8.3 name); fatfs generates the
//!   8.3 names.
//! - A file is replaced by writing a temporary file in the same directory,
//!   removing the old one and renaming the new one into place, so a write
//!   that fails (volume full) leaves the old file as it was.
//! - Times are "now" in UTC (FAT keeps no zone; the FAT backend reads and
//!   writes times as UTC throughout). New files get the ARCHIVE attribute
//!   as Windows gives them.
//! - fatfs 0.3 cannot set attributes and writes the `.`/`..` entries of a
//!   new directory the way fsck.fat "repairs"; both are fixed with the raw
//!   writer of `tasq_disk::fat` on [`flush`](VolumeFs::flush), which
//!   unmounts fatfs, patches and mounts again, and on [`FatFs::close`] or
//!   drop (which cannot report a failure; steps call `flush()` first).

use std::cell::RefCell;
use std::io::{Read, Seek, SeekFrom, Write};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use tasq_disk::fat::{filetime_to_fat, FatTimes, RawFat, ATTR_ARCHIVE, ATTR_DIRECTORY};
use tasq_disk::Disk;

use super::Shared;
use crate::fs::{EntryKind, FsEntry, FsError, FsResult, VolPath, VolumeFs};

type Fs = fatfs::FileSystem<Shared>;
type Dir<'a> = fatfs::Dir<'a, Shared>;
type Entry<'a> = fatfs::DirEntry<'a, Shared>;

/// Deepest directory tree `remove` descends.
const MAX_DEPTH: usize = 512;

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// fatfs's clock: the current time in UTC.
#[derive(Debug)]
struct UtcNow;

static UTC_NOW: UtcNow = UtcNow;

fn now_fat() -> (u16, u16, u8) {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let ft = (unix.as_secs() + 11_644_473_600) * 10_000_000 + unix.subsec_nanos() as u64 / 100;
    filetime_to_fat(ft)
}

impl fatfs::TimeProvider for UtcNow {
    fn get_current_date(&self) -> fatfs::Date {
        self.get_current_date_time().date
    }
    fn get_current_date_time(&self) -> fatfs::DateTime {
        let (date, time, tenths) = now_fat();
        fatfs::DateTime {
            date: fatfs::Date {
                year: 1980 + (date >> 9),
                month: (date >> 5) & 0xF,
                day: date & 0x1F,
            },
            time: fatfs::Time {
                hour: time >> 11,
                min: (time >> 5) & 0x3F,
                sec: (time & 0x1F) * 2 + tenths as u16 / 100,
                millis: (tenths as u16 % 100) * 10,
            },
        }
    }
}

/// A FAT volume as a [`VolumeFs`].
pub struct FatFs {
    /// `None` only if mounting again after a flush failed.
    fs: Option<Fs>,
    io: Shared,
    desc: String,
    writable: bool,
    /// Entries created since the last flush (as stored), and whether each
    /// is a directory: they get their raw fixes at flush.
    created: Vec<(Vec<String>, bool)>,
}

fn mount(io: &Shared) -> std::io::Result<Fs> {
    let mut io = io.clone();
    // fatfs asserts that its stream starts at offset 0.
    io.seek(SeekFrom::Start(0))?;
    fatfs::FileSystem::new(io, fatfs::FsOptions::new().time_provider(&UTC_NOW))
}

/// The entry named `name` in `dir`, ignoring case like fatfs's own lookup.
fn find<'a>(dir: &Dir<'a>, name: &str) -> std::io::Result<Option<Entry<'a>>> {
    let want: String = name.chars().flat_map(char::to_uppercase).collect();
    let upper = |s: String| -> String { s.chars().flat_map(char::to_uppercase).collect() };
    for e in dir.iter() {
        let e = e?;
        if upper(e.file_name()) == want || upper(e.short_file_name()) == want {
            return Ok(Some(e));
        }
    }
    Ok(None)
}

fn is_dot(name: &str) -> bool {
    name == "." || name == ".."
}

fn entry_of(e: &Entry) -> FsEntry {
    let dir = e.is_dir();
    FsEntry {
        name: e.file_name(),
        kind: if dir { EntryKind::Dir } else { EntryKind::File },
        size: if dir { 0 } else { e.len() },
    }
}

/// Removes everything inside `dir`.
fn empty_dir(dir: &Dir, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("directories nested deeper than {MAX_DEPTH}"));
    }
    let entries: Vec<Entry> = dir
        .iter()
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    for e in entries {
        let name = e.file_name();
        if is_dot(&name) {
            continue;
        }
        if e.is_dir() {
            empty_dir(&e.to_dir(), depth + 1)?;
        }
        dir.remove(&name).map_err(|err| format!("{name}: {err}"))?;
    }
    Ok(())
}

impl FatFs {
    /// Mounts the FAT volume of `len` bytes at `offset` of `disk`.
    pub fn new(disk: &Disk, offset: u64, len: u64, writable: bool) -> FsResult<FatFs> {
        let desc = format!("FAT volume in {} at offset {offset}", disk.path().display());
        let err = |r: String| FsError::new(desc.clone(), "opening", VolPath::root(), r);
        let mut slice = disk.slice(offset, len).map_err(|e| err(e.to_string()))?;
        RawFat::open(&mut slice).map_err(|e| err(format!("not a FAT volume: {e}")))?;
        let io = Shared(Rc::new(RefCell::new(slice)));
        let fs = mount(&io).map_err(|e| err(format!("cannot mount: {e}")))?;
        Ok(FatFs {
            fs: Some(fs),
            io,
            desc,
            writable,
            created: Vec::new(),
        })
    }

    /// Writes back (see the module notes) and lets go of the volume,
    /// reporting any failure.
    pub fn close(mut self) -> FsResult<()> {
        self.write_back()
    }

    fn err(&self, op: &'static str, path: &VolPath, reason: impl Into<String>) -> FsError {
        FsError::new(&self.desc, op, path, reason)
    }

    fn fs(&self, op: &'static str, path: &VolPath) -> FsResult<&Fs> {
        self.fs
            .as_ref()
            .ok_or_else(|| self.err(op, path, "the volume could not be mounted again"))
    }

    fn check_writable(&self, op: &'static str, path: &VolPath) -> FsResult<()> {
        if !self.writable {
            return Err(self.err(op, path, "the volume is open read-only"));
        }
        Ok(())
    }

    /// The directory at `path`, created with its parents if `create`
    /// (the names created are added to `made`); `None` if missing.
    fn dir_at<'a>(
        &self,
        fs: &'a Fs,
        op: &'static str,
        path: &VolPath,
        made: Option<&mut Vec<(Vec<String>, bool)>>,
    ) -> FsResult<Option<Dir<'a>>> {
        let mut made = made;
        let mut dir = fs.root_dir();
        let mut stored: Vec<String> = Vec::new();
        for c in path.components() {
            let ioe = |e: std::io::Error| self.err(op, path, format!("{c:?}: {e}"));
            match find(&dir, c).map_err(ioe)? {
                Some(e) if e.is_dir() => {
                    stored.push(e.file_name());
                    dir = e.to_dir();
                }
                Some(_) => return Err(self.err(op, path, format!("{c:?} is not a directory"))),
                None => match made.as_deref_mut() {
                    None => return Ok(None),
                    Some(list) => {
                        dir = dir.create_dir(c).map_err(ioe)?;
                        stored.push(c.clone());
                        list.push((stored.clone(), true));
                    }
                },
            }
        }
        Ok(Some(dir))
    }

    /// The entry at `path` (not the root); `None` if missing.
    fn entry_at<'a>(
        &self,
        fs: &'a Fs,
        op: &'static str,
        path: &VolPath,
    ) -> FsResult<Option<(Dir<'a>, Entry<'a>)>> {
        let (Some(parent), Some(leaf)) = (path.parent(), path.file_name()) else {
            return Ok(None);
        };
        let Some(dir) = self.dir_at(fs, op, &parent, None)? else {
            return Ok(None);
        };
        let e = find(&dir, leaf).map_err(|e| self.err(op, path, e.to_string()))?;
        Ok(e.map(|e| (dir, e)))
    }

    /// Writes back and mounts again.
    fn commit(&mut self) -> FsResult<()> {
        self.write_back()?;
        let root = VolPath::root();
        let fs = mount(&self.io).map_err(|e| self.err("mounting again", &root, e.to_string()))?;
        self.fs = Some(fs);
        Ok(())
    }

    /// Unmounts fatfs (writing FSInfo and clearing the dirty flag) and
    /// gives the entries created since the last time their ARCHIVE bit and
    /// proper dot entries. Leaves the volume unmounted.
    fn write_back(&mut self) -> FsResult<()> {
        let err = |r: String| FsError::new(self.desc.clone(), "flushing", VolPath::root(), r);
        if let Some(fs) = self.fs.take() {
            // Counting free clusters keeps FSInfo right for fsck and Windows.
            fs.stats().map_err(|e| err(e.to_string()))?;
            fs.unmount().map_err(|e| err(e.to_string()))?;
        }
        {
            let mut slice = self.io.0.borrow_mut();
            slice.flush().map_err(|e| err(e.to_string()))?;
            let mut raw = RawFat::open(&mut *slice).map_err(&err)?;
            for (path, is_dir) in std::mem::take(&mut self.created) {
                // Removed again since: nothing to fix.
                let Ok(e) = raw.lookup(&path) else { continue };
                if is_dir {
                    let parent = match path.split_last() {
                        Some((_, p)) if !p.is_empty() => {
                            raw.lookup(p).map(|p| p.first_cluster).map_err(&err)?
                        }
                        _ => raw.geo.root_cluster,
                    };
                    raw.fix_dot_entries(e.first_cluster, parent)
                        .map_err(|r| err(format!("{}: {r}", path.join("\\"))))?;
                } else if e.attributes & ATTR_DIRECTORY == 0 {
                    let times = FatTimes {
                        create_tenths: e.create_tenths,
                        create_time: e.create_time,
                        create_date: e.create_date,
                        access_date: e.access_date,
                        write_time: e.write_time,
                        write_date: e.write_date,
                    };
                    raw.patch_entry(e.entry_offset, e.attributes | ATTR_ARCHIVE, &times)
                        .map_err(|r| err(format!("{}: {r}", path.join("\\"))))?;
                }
            }
            slice.flush().map_err(|e| err(e.to_string()))?;
        }
        Ok(())
    }
}

impl Drop for FatFs {
    /// A handle dropped without `close` is written back all the same;
    /// only the error, if any, is lost.
    fn drop(&mut self) {
        if self.fs.is_some() {
            let _ = self.write_back();
        }
    }
}

impl VolumeFs for FatFs {
    fn describe(&self) -> String {
        self.desc.clone()
    }

    fn metadata(&mut self, path: &VolPath) -> FsResult<Option<FsEntry>> {
        let fs = self.fs("reading", path)?;
        if path.is_root() {
            return Ok(Some(FsEntry {
                name: String::new(),
                kind: EntryKind::Dir,
                size: 0,
            }));
        }
        Ok(self.entry_at(fs, "reading", path)?.map(|(_, e)| FsEntry {
            name: path.file_name().unwrap_or("").to_string(),
            ..entry_of(&e)
        }))
    }

    fn read_dir(&mut self, path: &VolPath) -> FsResult<Vec<FsEntry>> {
        const OP: &str = "listing";
        let fs = self.fs(OP, path)?;
        let dir = self
            .dir_at(fs, OP, path, None)?
            .ok_or_else(|| self.err(OP, path, "no such directory"))?;
        let mut out = Vec::new();
        for e in dir.iter() {
            let e = e.map_err(|e| self.err(OP, path, e.to_string()))?;
            if !is_dot(&e.file_name()) {
                out.push(entry_of(&e));
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn create_dir_all(&mut self, path: &VolPath) -> FsResult<()> {
        self.check_writable("creating", path)?;
        let fs = self.fs("creating", path)?;
        let mut made = Vec::new();
        let r = self
            .dir_at(fs, "creating", path, Some(&mut made))
            .map(|_| ());
        self.created.extend(made);
        r
    }

    fn write_file(&mut self, path: &VolPath, data: &mut dyn Read) -> FsResult<u64> {
        const OP: &str = "writing";
        self.check_writable(OP, path)?;
        let (Some(parent), Some(leaf)) = (path.parent(), path.file_name()) else {
            return Err(self.err(OP, path, "the root is not a file"));
        };
        let fs = self.fs(OP, path)?;
        let mut made = Vec::new();
        let r = (|| {
            let dir = self
                .dir_at(fs, OP, &parent, Some(&mut made))?
                .ok_or_else(|| self.err(OP, path, "the parent could not be created"))?;
            let ioe = |e: std::io::Error| self.err(OP, path, e.to_string());
            let old = find(&dir, leaf).map_err(ioe)?;
            if old.as_ref().is_some_and(|e| e.is_dir()) {
                return Err(self.err(OP, path, "a directory is in the way"));
            }
            let tmp = loop {
                let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
                let t = format!("~tasq{}-{n}.tmp", std::process::id());
                if find(&dir, &t).map_err(ioe)?.is_none() {
                    break t;
                }
            };
            let written = (|| -> std::io::Result<u64> {
                let mut f = dir.create_file(&tmp)?;
                f.truncate()?;
                let n = std::io::copy(data, &mut f)?;
                f.flush()?;
                Ok(n)
            })();
            let written = match written {
                Ok(n) => n,
                Err(e) => {
                    let cleanup = dir
                        .remove(&tmp)
                        .err()
                        .map(|c| format!(" (and the temporary file could not be removed: {c})"))
                        .unwrap_or_default();
                    return Err(self.err(OP, path, format!("{e}{cleanup}")));
                }
            };
            // The stored name of the old file keeps its case, as Windows
            // keeps it when a file is overwritten.
            let name = match old {
                Some(e) => {
                    let stored = e.file_name();
                    dir.remove(&stored)
                        .map_err(|e| self.err(OP, path, format!("removing the old file: {e}")))?;
                    stored
                }
                None => leaf.to_string(),
            };
            dir.rename(&tmp, &dir, &name)
                .map_err(|e| self.err(OP, path, format!("renaming into place: {e}")))?;
            // The path as stored (existing names keep their case).
            let mut stored: Vec<String> = Vec::new();
            let mut cur = fs.root_dir();
            for c in parent.components() {
                let e = find(&cur, c)
                    .map_err(ioe)?
                    .ok_or_else(|| self.err(OP, path, "the parent vanished"))?;
                stored.push(e.file_name());
                cur = e.to_dir();
            }
            stored.push(name);
            Ok((written, stored))
        })();
        self.created.extend(made);
        let (written, stored) = r?;
        self.created.push((stored, false));
        Ok(written)
    }

    fn read_file(&mut self, path: &VolPath, limit: u64) -> FsResult<Vec<u8>> {
        const OP: &str = "reading";
        let fs = self.fs(OP, path)?;
        let (_, e) = self
            .entry_at(fs, OP, path)?
            .ok_or_else(|| self.err(OP, path, "no such file"))?;
        if e.is_dir() {
            return Err(self.err(OP, path, "a directory, not a file"));
        }
        if e.len() > limit {
            return Err(self.err(
                OP,
                path,
                format!("{} bytes, more than the {limit} allowed", e.len()),
            ));
        }
        let mut out = Vec::with_capacity(e.len() as usize);
        e.to_file()
            .take(limit.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|err| self.err(OP, path, err.to_string()))?;
        if out.len() as u64 > limit {
            return Err(self.err(OP, path, "the file grew past the limit"));
        }
        Ok(out)
    }

    fn remove(&mut self, path: &VolPath) -> FsResult<()> {
        const OP: &str = "removing";
        self.check_writable(OP, path)?;
        if path.is_root() {
            return Err(self.err(OP, path, "the root cannot be removed"));
        }
        let fs = self.fs(OP, path)?;
        let Some((dir, e)) = self.entry_at(fs, OP, path)? else {
            return Ok(());
        };
        if e.is_dir() {
            empty_dir(&e.to_dir(), 0).map_err(|r| self.err(OP, path, r))?;
        }
        dir.remove(&e.file_name())
            .map_err(|err| self.err(OP, path, err.to_string()))
    }

    fn free_space(&mut self) -> FsResult<u64> {
        let root = VolPath::root();
        let st = self
            .fs("measuring", &root)?
            .stats()
            .map_err(|e| self.err("measuring", &root, e.to_string()))?;
        Ok(st.free_clusters() as u64 * st.cluster_size() as u64)
    }

    fn flush(&mut self) -> FsResult<()> {
        self.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fatfs::TimeProvider;

    #[test]
    fn the_clock_gives_a_valid_utc_date() {
        let (date, time, _) = now_fat();
        let t = UTC_NOW.get_current_date_time();
        assert_eq!(t.date.year, 1980 + (date >> 9));
        assert!(t.date.year >= 2024, "{t:?}");
        assert!((1..=12).contains(&t.date.month) && (1..=31).contains(&t.date.day));
        assert!(t.time.hour < 24 && t.time.min < 60 && t.time.sec < 60);
        assert_eq!(t.time.hour, time >> 11);
        assert_eq!(UTC_NOW.get_current_date(), t.date);
    }

    #[test]
    fn a_volume_that_is_not_fat_is_refused() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), vec![0u8; 1 << 20]).unwrap();
        let d = Disk::open(f.path(), false).unwrap();
        let e = FatFs::new(&d, 0, 1 << 20, false).err().unwrap().to_string();
        assert!(e.contains("not a FAT volume"), "{e}");
        assert!(FatFs::new(&d, 1 << 19, 1 << 20, false).is_err());
    }
}
