//! Capture of a FAT volume into an [`ImageTree`].
//!
//! The walk uses `tasq_disk::fat::RawFat`, which bounds every chain and
//! directory by the volume's geometry; a directory met twice (a damaged
//! volume whose entry points back at an ancestor) is an error, not a loop.
//! File data is not read during the scan: each file's cluster runs are
//! computed when its stream is opened.

use std::collections::HashSet;
use std::io::Read;

use tasq_disk::fat::{fat_to_filetime, RawEntry, RawFat, ATTR_DIRECTORY};
use tasq_disk::{Disk, DiskSlice};
use tasq_wim::capture::{CaptureFilter, CaptureSource, ScanProgress};
use tasq_wim::image::{
    utf16, ImageTree, Inode, Stream, StreamKind, StreamSource, FILE_ATTRIBUTE_DIRECTORY,
};
use tasq_wim::{Result, Sha1Hash, WimError};

use super::attributes_from_fat;

/// A FAT volume as a capture source.
#[derive(Debug)]
pub struct FatSource {
    slice: DiskSlice,
    desc: String,
    /// Stream id → (first cluster, size, path for messages).
    files: Vec<(u32, u64, String)>,
    warnings: Vec<String>,
}

impl FatSource {
    /// The FAT volume of `len` bytes at `offset` of `disk`; `desc` names it
    /// in messages (e.g. `disk.img:1`).
    pub fn new(disk: &Disk, offset: u64, len: u64, desc: impl Into<String>) -> Result<FatSource> {
        let desc = desc.into();
        let mut slice = disk
            .slice(offset, len)
            .map_err(|e| cerr(&desc, e.to_string()))?;
        RawFat::open(&mut slice).map_err(|e| cerr(&desc, format!("not a FAT volume: {e}")))?;
        Ok(FatSource {
            slice,
            desc,
            files: Vec::new(),
            warnings: Vec::new(),
        })
    }

    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

fn cerr(path: &str, reason: impl Into<String>) -> WimError {
    WimError::Capture {
        path: path.to_string(),
        reason: reason.into(),
    }
}

fn inode_of(e: &RawEntry) -> Inode {
    Inode {
        attributes: attributes_from_fat(e.attributes),
        creation_time: fat_to_filetime(e.create_date, e.create_time, e.create_tenths),
        last_write_time: fat_to_filetime(e.write_date, e.write_time, 0),
        last_access_time: fat_to_filetime(e.access_date, 0, 0),
        ..Inode::default()
    }
}

impl CaptureSource for FatSource {
    fn describe(&self) -> String {
        format!("FAT volume {}", self.desc)
    }

    fn scan(
        &mut self,
        filter: &dyn CaptureFilter,
        progress: &mut dyn FnMut(ScanProgress),
    ) -> Result<ImageTree> {
        self.files.clear();
        self.warnings.clear();
        let desc = self.desc.clone();
        let mut raw = RawFat::open(&mut self.slice).map_err(|e| cerr(&desc, e))?;
        let mut tree = ImageTree::new();
        tree.root_inode_mut().attributes = FILE_ATTRIBUTE_DIRECTORY;
        let mut stats = ScanProgress {
            dirs: 1,
            ..ScanProgress::default()
        };
        progress(stats);
        let mut seen: HashSet<u32> = HashSet::new();
        // (dentry, first cluster (0 = root), path in the image)
        let mut pending = vec![(ImageTree::ROOT, 0u32, String::new())];
        while let Some((dentry, cluster, path)) = pending.pop() {
            let shown = if path.is_empty() {
                "\\".to_string()
            } else {
                path.clone()
            };
            let entries = raw.read_dir(cluster).map_err(|e| {
                cerr(
                    &format!("{desc}{shown}"),
                    format!("cannot read the directory: {e}"),
                )
            })?;
            for e in entries {
                let wpath = format!("{path}\\{}", e.name);
                if e.name.contains(['/', '\\', '\0']) || e.name.is_empty() {
                    self.warnings
                        .push(format!("{desc}{wpath}: skipped: the name is not valid"));
                    continue;
                }
                if filter.is_excluded(&wpath) {
                    continue;
                }
                let mut inode = inode_of(&e);
                let short = if e.has_long_name && e.short_name != e.name {
                    utf16(&e.short_name)
                } else {
                    Vec::new()
                };
                if e.attributes & ATTR_DIRECTORY != 0 {
                    if e.first_cluster < 2 || !seen.insert(e.first_cluster) {
                        return Err(cerr(
                            &format!("{desc}{wpath}"),
                            format!(
                                "directory starts at cluster {} which is invalid or already seen (damaged volume)",
                                e.first_cluster
                            ),
                        ));
                    }
                    let ino = tree.add_inode(inode);
                    let d = tree.add_dentry(dentry, utf16(&e.name), short, ino);
                    stats.dirs += 1;
                    pending.push((d, e.first_cluster, wpath));
                } else {
                    if e.size > 0 {
                        let id = self.files.len() as u64;
                        self.files
                            .push((e.first_cluster, e.size as u64, wpath.clone()));
                        inode.streams.push(Stream {
                            kind: StreamKind::Data,
                            name: Vec::new(),
                            hash: Sha1Hash::ZERO,
                            size: e.size as u64,
                            source: StreamSource::External(id),
                        });
                    }
                    stats.files += 1;
                    stats.bytes += e.size as u64;
                    let ino = tree.add_inode(inode);
                    tree.add_dentry(dentry, utf16(&e.name), short, ino);
                }
                progress(stats);
            }
        }
        tree.warnings.extend(self.warnings.iter().cloned());
        Ok(tree)
    }

    fn open_stream(&self, id: u64) -> Result<Box<dyn Read + Send + '_>> {
        let (first, size, path) = self
            .files
            .get(id as usize)
            .cloned()
            .ok_or_else(|| cerr(&self.desc, format!("no stream {id}")))?;
        let shown = format!("{}{path}", self.desc);
        let mut slice = self
            .slice
            .reopen()
            .map_err(|e| cerr(&shown, e.to_string()))?;
        let runs = RawFat::open(&mut slice)
            .and_then(|mut r| r.file_runs(first, size))
            .map_err(|e| cerr(&shown, e))?;
        Ok(Box::new(RunReader {
            slice,
            runs,
            run: 0,
            within: 0,
        }))
    }
}

/// Reads a file's cluster runs in order, straight from the disk.
struct RunReader {
    slice: DiskSlice,
    runs: Vec<(u64, u64)>,
    run: usize,
    within: u64,
}

impl Read for RunReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while let Some(&(off, len)) = self.runs.get(self.run) {
            if self.within >= len {
                self.run += 1;
                self.within = 0;
                continue;
            }
            let n = ((len - self.within) as usize).min(buf.len());
            self.slice
                .read_uncached_at(&mut buf[..n], off + self.within)?;
            self.within += n as u64;
            return Ok(n);
        }
        Ok(0)
    }
}
