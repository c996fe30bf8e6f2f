//! Apply of an image onto a FAT volume.
//!
//! Directories, files and their data go through `fatfs` (cluster
//! allocation, long-name and 8.3 entries). fatfs 0.3 cannot set attributes
//! or a directory's times, so `set_metadata` only records them; `finish`
//! unmounts fatfs and patches every entry in place with the raw writer of
//! `tasq_disk::fat`. fatfs files borrow their file system, so a stream
//! cannot stay open between calls: writes are gathered (8 MiB at most)
//! and appended by reopening the file.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io::{Seek, SeekFrom, Write};
use std::rc::Rc;

use tasq_disk::fat::{filetime_to_fat, FatTimes, RawEntry, RawFat};
use tasq_disk::Disk;
use tasq_wim::apply::{ApplyEntry, ApplyTarget, WimPath};
use tasq_wim::image::{Stream, StreamKind};
use tasq_wim::{Result, WimError};

use super::{Shared, FAT_ATTRIBUTES};

/// FAT files hold at most 4 GiB − 1 bytes.
const MAX_FAT_FILE: u64 = u32::MAX as u64;
const FLUSH_AT: usize = 8 << 20;

/// The stream between `begin_stream` and `end_stream`.
enum Current {
    /// Written to these names (a hard-linked file's names all get copies).
    Write {
        paths: Vec<WimPath>,
        written: u64,
        buf: Vec<u8>,
    },
    /// Dropped (a named stream, or a name that was not created).
    Skip,
}

/// A FAT volume as an apply target.
pub struct FatTarget {
    fs: Option<fatfs::FileSystem<Shared>>,
    io: Shared,
    desc: String,
    current: Option<Current>,
    /// First name → the other names of a hard-linked file.
    links: HashMap<WimPath, Vec<WimPath>>,
    /// Names not created (reparse points).
    skipped: HashSet<WimPath>,
    metadata: Vec<(WimPath, u8, FatTimes)>,
    /// Files created so far, lower-cased: FAT names ignore case, so a
    /// second name equal but for case would overwrite the first.
    created: HashSet<String>,
    warnings: Vec<String>,
    dropped: Dropped,
}

#[derive(Default)]
struct Dropped {
    hard_links: u64,
    named_streams: u64,
    reparse_points: u64,
    security: u64,
    attributes: u64,
}

impl std::fmt::Debug for FatTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FatTarget")
            .field("desc", &self.desc)
            .finish()
    }
}

fn fat_path(p: &WimPath) -> String {
    p.as_slash_str().to_string()
}

impl FatTarget {
    /// The FAT volume of `len` bytes at `offset` of `disk` (opened
    /// writable); `desc` names it in messages.
    pub fn new(disk: &Disk, offset: u64, len: u64, desc: impl Into<String>) -> Result<FatTarget> {
        let desc = desc.into();
        let aerr = |r: String| WimError::Apply {
            path: desc.clone(),
            reason: r,
        };
        let mut slice = disk.slice(offset, len).map_err(|e| aerr(e.to_string()))?;
        RawFat::open(&mut slice).map_err(|e| aerr(format!("not a FAT volume: {e}")))?;
        // fatfs asserts that its stream starts at offset 0.
        slice
            .seek(SeekFrom::Start(0))
            .map_err(|e| aerr(e.to_string()))?;
        let io = Shared(Rc::new(RefCell::new(slice)));
        let fs = fatfs::FileSystem::new(io.clone(), fatfs::FsOptions::new())
            .map_err(|e| aerr(format!("cannot mount: {e}")))?;
        Ok(FatTarget {
            fs: Some(fs),
            io,
            desc,
            current: None,
            links: HashMap::new(),
            skipped: HashSet::new(),
            metadata: Vec::new(),
            created: HashSet::new(),
            warnings: Vec::new(),
            dropped: Dropped::default(),
        })
    }

    /// What could not be applied (summarised by `finish`).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Cluster size and free bytes of the mounted volume.
    pub fn space(&self) -> Result<(u64, u64)> {
        let fs = self.fs.as_ref().ok_or_else(|| WimError::Apply {
            path: self.desc.clone(),
            reason: "the volume is already closed".into(),
        })?;
        let st = fs.stats().map_err(|e| WimError::Apply {
            path: self.desc.clone(),
            reason: format!("cannot count free space: {e}"),
        })?;
        let c = u64::from(st.cluster_size());
        Ok((c, u64::from(st.free_clusters()).saturating_mul(c)))
    }

    fn err(&self, path: &WimPath, e: impl std::fmt::Display) -> WimError {
        WimError::Apply {
            path: format!("{}{path}", self.desc),
            reason: e.to_string(),
        }
    }

    fn fs(&self) -> Result<&fatfs::FileSystem<Shared>> {
        self.fs.as_ref().ok_or_else(|| WimError::Apply {
            path: self.desc.clone(),
            reason: "the volume is already finished".into(),
        })
    }

    /// Creates an empty file; a name that differs from an earlier one
    /// only by case is skipped with a warning instead.
    fn create_empty_file(&mut self, path: &WimPath) -> Result<()> {
        if !self.created.insert(fat_path(path).to_lowercase()) {
            self.warnings.push(format!(
                "{}{path}: skipped: another file has the same name when case is ignored",
                self.desc
            ));
            self.skipped.insert(path.clone());
            return Ok(());
        }
        let fs = self.fs()?;
        let mut f = fs
            .root_dir()
            .create_file(&fat_path(path))
            .map_err(|e| self.err(path, e))?;
        f.truncate().map_err(|e| self.err(path, e))
    }

    fn flush_current(&mut self) -> Result<()> {
        let Some(Current::Write {
            paths,
            written,
            buf,
        }) = self.current.as_mut()
        else {
            return Ok(());
        };
        if buf.is_empty() {
            return Ok(());
        }
        let fs = self.fs.as_ref().ok_or_else(|| WimError::Apply {
            path: self.desc.clone(),
            reason: "the volume is already finished".into(),
        })?;
        for p in paths.iter() {
            let e = |e: std::io::Error| WimError::Apply {
                path: format!("{}{p}", self.desc),
                reason: e.to_string(),
            };
            let mut f = fs.root_dir().open_file(&fat_path(p)).map_err(e)?;
            f.seek(SeekFrom::Start(*written)).map_err(e)?;
            f.write_all(buf).map_err(e)?;
            f.flush().map_err(e)?;
        }
        *written += buf.len() as u64;
        buf.clear();
        Ok(())
    }
}

fn times_of(entry: &ApplyEntry) -> FatTimes {
    let (cd, ct, cten) = filetime_to_fat(entry.inode.creation_time);
    let (wd, wt, _) = filetime_to_fat(entry.inode.last_write_time);
    let (ad, _, _) = filetime_to_fat(entry.inode.last_access_time);
    FatTimes {
        create_tenths: cten,
        create_time: ct,
        create_date: cd,
        access_date: ad,
        write_time: wt,
        write_date: wd,
    }
}

impl ApplyTarget for FatTarget {
    fn describe(&self) -> String {
        format!("FAT volume {}", self.desc)
    }

    fn create_directory(&mut self, entry: &ApplyEntry) -> Result<()> {
        if entry.path.is_root() {
            return Ok(());
        }
        if entry.inode.is_reparse_point() {
            self.dropped.reparse_points += 1;
            self.skipped.insert(entry.path.clone());
            return Ok(());
        }
        let fs = self.fs()?;
        fs.root_dir()
            .create_dir(&fat_path(entry.path))
            .map(drop)
            .map_err(|e| self.err(entry.path, e))
    }

    fn create_file(&mut self, entry: &ApplyEntry) -> Result<()> {
        if entry.inode.is_reparse_point() {
            self.dropped.reparse_points += 1;
            self.skipped.insert(entry.path.clone());
            return Ok(());
        }
        self.create_empty_file(entry.path)
    }

    fn create_hard_link(&mut self, existing: &ApplyEntry, entry: &ApplyEntry) -> Result<()> {
        let existing = existing.path;
        if self.skipped.contains(existing) {
            self.skipped.insert(entry.path.clone());
            return Ok(());
        }
        self.dropped.hard_links += 1;
        self.create_empty_file(entry.path)?;
        if self.skipped.contains(entry.path) {
            return Ok(());
        }
        self.links
            .entry(existing.clone())
            .or_default()
            .push(entry.path.clone());
        Ok(())
    }

    fn begin_stream(&mut self, entry: &ApplyEntry, stream: &Stream) -> Result<()> {
        let path = entry.path;
        if self.current.is_some() {
            return Err(self.err(path, "a stream is already open"));
        }
        if stream.kind != StreamKind::Data || !stream.name.is_empty() {
            self.dropped.named_streams += 1;
            self.current = Some(Current::Skip);
            return Ok(());
        }
        if self.skipped.contains(path) {
            self.current = Some(Current::Skip);
            return Ok(());
        }
        if stream.size > MAX_FAT_FILE {
            return Err(self.err(
                path,
                format!("{} bytes is more than a FAT file can hold", stream.size),
            ));
        }
        let mut paths = vec![path.clone()];
        paths.extend(self.links.get(path).cloned().unwrap_or_default());
        self.current = Some(Current::Write {
            paths,
            written: 0,
            buf: Vec::new(),
        });
        Ok(())
    }

    fn write_stream(&mut self, data: &[u8]) -> Result<()> {
        match self.current.as_mut() {
            Some(Current::Write { buf, .. }) => {
                buf.extend_from_slice(data);
                if buf.len() >= FLUSH_AT {
                    self.flush_current()?;
                }
                Ok(())
            }
            Some(Current::Skip) => Ok(()),
            None => Err(WimError::Apply {
                path: self.desc.clone(),
                reason: "write without an open stream".into(),
            }),
        }
    }

    fn end_stream(&mut self) -> Result<()> {
        self.flush_current()?;
        self.current = None;
        Ok(())
    }

    fn set_reparse_point(&mut self, _entry: &ApplyEntry, _data: &[u8]) -> Result<()> {
        // Counted when the name was skipped in create_file/create_directory.
        Ok(())
    }

    fn set_metadata(&mut self, entry: &ApplyEntry) -> Result<()> {
        if entry.security_descriptor.is_some() {
            self.dropped.security += 1;
        }
        if entry.path.is_root() || self.skipped.contains(entry.path) {
            return Ok(());
        }
        let extra = entry.inode.attributes
            & !(FAT_ATTRIBUTES
                | tasq_wim::image::FILE_ATTRIBUTE_NORMAL
                | tasq_wim::image::FILE_ATTRIBUTE_NOT_CONTENT_INDEXED);
        if extra != 0 {
            self.dropped.attributes += 1;
        }
        self.metadata.push((
            entry.path.clone(),
            (entry.inode.attributes & FAT_ATTRIBUTES) as u8,
            times_of(entry),
        ));
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        let desc = self.desc.clone();
        let aerr = |r: String| WimError::Apply {
            path: desc.clone(),
            reason: r,
        };
        if let Some(fs) = self.fs.take() {
            // Counting the free clusters keeps FSInfo right for fsck and
            // Windows; unmount writes it and clears the dirty flag.
            fs.stats().map_err(|e| aerr(e.to_string()))?;
            fs.unmount().map_err(|e| aerr(e.to_string()))?;
        }
        let mut slice = self.io.0.borrow_mut();
        slice.flush().map_err(|e| aerr(e.to_string()))?;
        let mut raw = RawFat::open(&mut *slice).map_err(&aerr)?;
        // Directory listings by first cluster (0: root), read once each.
        let mut dirs: HashMap<u32, HashMap<String, RawEntry>> = HashMap::new();
        for (path, attrs, times) in &self.metadata {
            let comps = path.components();
            let mut cluster = 0u32;
            let mut found: Option<RawEntry> = None;
            let mut parent = 0u32;
            for c in comps {
                parent = cluster;
                if let std::collections::hash_map::Entry::Vacant(v) = dirs.entry(cluster) {
                    let list = raw
                        .read_dir(cluster)
                        .map_err(|e| aerr(format!("{path}: {e}")))?;
                    v.insert(
                        list.into_iter()
                            .map(|e| (e.name.to_lowercase(), e))
                            .collect(),
                    );
                }
                let e = dirs
                    .get(&cluster)
                    .and_then(|m| m.get(&c.to_lowercase()))
                    .cloned()
                    .ok_or_else(|| aerr(format!("{path}: not found after writing")))?;
                cluster = e.first_cluster;
                found = Some(e);
            }
            if let Some(e) = found {
                raw.patch_entry(e.entry_offset, *attrs, times)
                    .map_err(|e| aerr(format!("{path}: {e}")))?;
                if e.attributes & tasq_disk::fat::ATTR_DIRECTORY != 0 {
                    let parent = if parent == 0 {
                        raw.geo.root_cluster
                    } else {
                        parent
                    };
                    raw.fix_dot_entries(e.first_cluster, parent)
                        .map_err(|e| aerr(format!("{path}: {e}")))?;
                }
            }
        }
        slice.flush().map_err(|e| aerr(e.to_string()))?;
        drop(slice);
        let d = &self.dropped;
        for (n, what) in [
            (d.hard_links, "hard links written as separate copies"),
            (d.named_streams, "named data streams dropped"),
            (d.reparse_points, "reparse points (links) dropped"),
            (d.security, "security descriptors dropped"),
            (d.attributes, "entries lost attributes FAT cannot keep"),
        ] {
            if n > 0 {
                self.warnings.push(format!("{}: {n} {what}", self.desc));
            }
        }
        Ok(())
    }
}

/// Bytes an image needs on a FAT volume with `cluster`-byte clusters:
/// every name's data rounded up to clusters (hard links become copies on
/// FAT), one cluster per directory, and the directory entries (one 32-byte
/// entry plus one per 13 characters of long name). Named streams, reparse
/// points and security data are dropped on FAT and count nothing.
pub fn space_needed(tree: &tasq_wim::image::ImageTree, cluster: u64) -> u64 {
    let cluster = cluster.max(1);
    let mut total = 0u64;
    let mut entries = 0u64;
    for (i, d) in tree.dentries.iter().enumerate() {
        if i == tasq_wim::image::ImageTree::ROOT {
            continue;
        }
        entries = entries.saturating_add(32 * (1 + (d.name.len() as u64).div_ceil(13)));
        let Some(inode) = tree.inodes.get(d.inode) else {
            continue;
        };
        let add = if inode.is_directory() {
            cluster
        } else {
            inode
                .unnamed_data()
                .map(|s| s.size.div_ceil(cluster).saturating_mul(cluster))
                .unwrap_or(0)
        };
        total = total.saturating_add(add);
    }
    total.saturating_add(entries.div_ceil(cluster).saturating_mul(cluster))
}

/// Applies image `n` of `wim` onto the FAT volume of `target` (made by
/// [`FatTarget::new`], nothing written yet), first checking that its free
/// space holds the image; a volume too small is refused before anything
/// is written. Returns the warnings (what FAT cannot hold).
pub fn apply_image_to_fat(
    wim: &tasq_wim::reader::Wim,
    n: u32,
    mut target: FatTarget,
    opts: &tasq_wim::apply::ApplyOptions,
    progress: &mut dyn FnMut(tasq_wim::apply::ApplyProgress),
) -> Result<Vec<String>> {
    let tree = wim.read_image(n)?;
    let desc = target.desc.clone();
    let (cluster, free) = target.space()?;
    let need = space_needed(&tree, cluster);
    if need > free {
        return Err(WimError::Apply {
            path: desc,
            reason: format!(
                "not enough space: image {n} needs about {need} bytes, the volume has {free} free"
            ),
        });
    }
    tasq_wim::apply::apply_tree(wim, n, &tree, &mut target, opts, progress)?;
    Ok(target.warnings().to_vec())
}
