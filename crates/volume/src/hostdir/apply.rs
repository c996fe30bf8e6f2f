//! Apply of an image onto a host directory.
//!
//! Safety first: every system call is made relative to a directory file
//! descriptor reached from the root by opening one validated [`WimPath`]
//! component at a time with `O_NOFOLLOW | O_DIRECTORY`, so a symlink that
//! sits in the target (planted there, or left by an earlier apply) is never
//! followed: it is removed and replaced when it is in the way of a
//! directory or file, and an attempt to go *through* one fails. Symlinks
//! are only ever created by [`ApplyTarget::set_reparse_point`].
//!
//! The mapping is wimlib's UNIX one: symlink and junction reparse points
//! become symlinks (created when their reparse data arrives, with their
//! other hard-link names), sparse files are written with holes, named
//! streams and other reparse points cannot exist here and are dropped with
//! a warning, and attributes, security descriptors and short names are
//! ignored (counted once in the warnings by [`ApplyTarget::finish`]).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;
use tasq_wim::apply::{ApplyEntry, ApplyTarget, WimPath};
use tasq_wim::image::{
    Stream, StreamKind, FILE_ATTRIBUTE_ARCHIVE, FILE_ATTRIBUTE_DIRECTORY, FILE_ATTRIBUTE_NORMAL,
    FILE_ATTRIBUTE_NOT_CONTENT_INDEXED, FILE_ATTRIBUTE_REPARSE_POINT, FILE_ATTRIBUTE_SPARSE_FILE,
};
use tasq_wim::reparse;
use tasq_wim::{Result, WimError};

use super::writebehind::{self, NewFile, Submitter, WriteBehind};
use super::{filetime_to_unix, is_link_inode};

/// The stream being written between `begin_stream` and `end_stream`.
struct OpenStream(Box<dyn Write>);

impl std::fmt::Debug for OpenStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpenStream")
    }
}

/// Streams of one blob open at once at most (each large one holds a file
/// descriptor), and the bytes that small ones, each holding its own copy
/// until it is queued for the write-behind thread, may hold together.
const MAX_OPEN_STREAMS: usize = 32;
const OPEN_SMALL_BYTES: u64 = 1 << 20;

/// How many parent directories stay open (well under the usual limit of
/// 1024 open files).
const DIR_CACHE_SIZE: usize = 256;

/// Holes are made in blocks of this size (the usual file system block).
const SPARSE_BLOCK: usize = 4096;

/// Attributes that a Linux directory tree expresses by itself (or that
/// carry no meaning): the others are reported as not applied.
const EXPRESSED_ATTRIBUTES: u32 = FILE_ATTRIBUTE_DIRECTORY
    | FILE_ATTRIBUTE_NORMAL
    | FILE_ATTRIBUTE_ARCHIVE
    | FILE_ATTRIBUTE_SPARSE_FILE
    | FILE_ATTRIBUTE_REPARSE_POINT
    | FILE_ATTRIBUTE_NOT_CONTENT_INDEXED;

/// A host directory as an apply target.
#[derive(Debug)]
pub struct HostDirTarget {
    root: PathBuf,
    root_fd: Arc<OwnedFd>,
    /// The directories of the last resolved path, outermost first: applies
    /// walk the tree in order, so most lookups reuse a prefix of it.
    chain: Vec<(String, Arc<OwnedFd>)>,
    /// Recently used parent directories by path, so that the data and
    /// metadata passes (which visit files in another order than the
    /// creation pass) do not walk from the root for every file.
    /// Keyed by the directory's path, components joined by `/`.
    dir_cache: tasq_wim::hash::FastMap<String, Arc<OwnedFd>>,
    /// By entry id: files with data whose creation waits for
    /// `begin_stream`, which then creates and opens them in one call; then,
    /// for the files handed to the write-behind thread, that their times
    /// are set there. (One byte per entry: keyed by path, this was a copy
    /// of every file's path, 4.6 MiB of the peak on /usr/share.)
    pending: Vec<Pending>,
    /// Link inodes waiting for their reparse data: each group holds all
    /// the names of one inode, and whether the link exists yet.
    link_groups: Vec<(Vec<WimPath>, bool)>,
    link_of: HashMap<WimPath, usize>,
    warnings: Vec<String>,
    /// Errors met where they could not be returned (a writer's drop).
    late_errors: Arc<std::sync::Mutex<Vec<String>>>,
    /// The streams opened by `begin_stream` (several when they hold the
    /// same blob).
    current: Vec<OpenStream>,
    ignored: Ignored,
    /// Small new files are created and written by this thread (started
    /// with the first; `None` after it could not be started).
    behind: Option<WriteBehind>,
    behind_failed: bool,
}

/// What Linux cannot hold, counted for one summary line each.
#[derive(Debug, Default)]
struct Ignored {
    attributes: u64,
    security: u64,
    short_names: u64,
}

fn errno_io(e: Errno) -> io::Error {
    io::Error::from(e)
}

impl HostDirTarget {
    /// Opens a data stream for writing (the trait's `begin_stream` uses it;
    /// tests use it directly).
    pub fn open_stream(&mut self, entry: &ApplyEntry, stream: &Stream) -> Result<Box<dyn Write>> {
        let path = entry.path;
        match stream.kind {
            StreamKind::Data if stream.name.is_empty() => {}
            StreamKind::Data => {
                // wimlib drops named streams on UNIX the same way.
                self.warnings.push(format!(
                    "{}: named data stream {:?} not applied: Linux files have no alternate data streams",
                    self.host_path(path),
                    stream.name_string()
                ));
                return Ok(Box::new(io::sink()));
            }
            StreamKind::EfsRaw => {
                self.warnings.push(format!(
                    "{}: encrypted (EFS) data not applied: it can only be restored on Windows",
                    self.host_path(path)
                ));
                return Ok(Box::new(io::sink()));
            }
            // Reparse data arrives through set_reparse_point.
            StreamKind::ReparsePoint => return Ok(Box::new(io::sink())),
        }
        if is_link_inode(entry.inode) {
            self.warnings.push(format!(
                "{}: data of a symbolic link not applied",
                self.host_path(path)
            ));
            return Ok(Box::new(io::sink()));
        }
        let Some((dir, name)) = self.parent(path)? else {
            return Ok(Box::new(io::sink()));
        };
        // A file whose creation was deferred is created and opened in one
        // call; O_EXCL guarantees it is a new regular file of ours.
        let sparse = entry.inode.attributes & FILE_ATTRIBUTE_SPARSE_FILE != 0;
        if self.pending(entry.id) == Pending::Create {
            if stream.size <= writebehind::MAX_FILE && !sparse {
                if let Some(submitter) = self.submitter() {
                    // Its times are set by the thread, on the open file.
                    self.set_pending(entry.id, Pending::TimesSetBehind);
                    return Ok(Box::new(Deferred {
                        file: Some(NewFile {
                            dir,
                            name,
                            path: path.clone(),
                            id: entry.id,
                            host_path: self.host_path(path),
                            data: Vec::with_capacity(stream.size as usize),
                            times: timestamps(entry.inode),
                        }),
                        submitter,
                        late_errors: Arc::clone(&self.late_errors),
                    }));
                }
            }
            self.set_pending(entry.id, Pending::None);
            let flags =
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            match rustix::fs::openat(&*dir, name.as_str(), flags, Mode::from_raw_mode(0o644)) {
                Ok(fd) => {
                    return Ok(Box::new(FileWriter {
                        file: File::from(fd),
                        host_path: self.host_path(path),
                        size: stream.size,
                        written: 0,
                        sparse,
                        block: Vec::new(),
                        finished: false,
                        late_errors: Arc::clone(&self.late_errors),
                    }));
                }
                Err(Errno::EXIST) => self.clear_way(&dir, &name, path, false)?,
                Err(e) => return Err(self.err(path, "cannot create the file", errno_io(e))),
            }
        }
        Ok(Box::new(self.open_truncating(
            &dir,
            &name,
            path,
            stream.size,
            sparse,
        )?))
    }

    /// Opens `dir/name` (`path`) for writing, truncated, created if missing;
    /// it must be a regular file.
    fn open_truncating(
        &self,
        dir: &OwnedFd,
        name: &str,
        path: &WimPath,
        size: u64,
        sparse: bool,
    ) -> Result<FileWriter> {
        // O_NONBLOCK: opening a FIFO found in the way fails instead of
        // waiting for a reader; it has no effect on regular files.
        let fd = rustix::fs::openat(
            dir,
            name,
            OFlags::WRONLY
                | OFlags::CREATE
                | OFlags::TRUNC
                | OFlags::NOFOLLOW
                | OFlags::NONBLOCK
                | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map_err(|e| self.err(path, "cannot open the file for writing", errno_io(e)))?;
        let file = File::from(fd);
        match file.metadata() {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(self.err(path, "cannot write", "not a regular file")),
            Err(e) => return Err(self.err(path, "cannot examine the file", e)),
        }
        Ok(FileWriter {
            file,
            host_path: self.host_path(path),
            size,
            written: 0,
            sparse,
            block: Vec::new(),
            finished: false,
            late_errors: Arc::clone(&self.late_errors),
        })
    }

    /// The write-behind thread's sending side, started on first use.
    fn submitter(&mut self) -> Option<Submitter> {
        if self.behind.is_none() && !self.behind_failed {
            match WriteBehind::start() {
                Ok(wb) => self.behind = Some(wb),
                Err(_) => self.behind_failed = true,
            }
        }
        self.behind.as_ref().and_then(WriteBehind::submitter)
    }

    /// Waits for the write-behind thread to finish every file handed to
    /// it, writes those whose name was taken in the target (clearing the
    /// way as for any file) and reports the first error met.
    fn settle(&mut self) -> Result<()> {
        let Some(wb) = &self.behind else {
            return Ok(());
        };
        let (taken, errors) = wb.settle();
        if let Some((path, reason)) = errors.into_iter().next() {
            return Err(WimError::Apply {
                path: if path.is_empty() {
                    self.root.display().to_string()
                } else {
                    path
                },
                reason,
            });
        }
        for f in taken {
            // Its times are set by set_metadata, after this write.
            self.set_pending(f.id, Pending::None);
            self.clear_way(&f.dir, &f.name, &f.path, false)?;
            let mut w =
                self.open_truncating(&f.dir, &f.name, &f.path, f.data.len() as u64, false)?;
            w.write_all(&f.data)
                .and_then(|()| w.flush())
                .map_err(|e| self.err(&f.path, "cannot write", e))?;
        }
        Ok(())
    }

    /// A target writing into `root`, created (with its parents) if missing.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let err = |what: &str, e: io::Error| WimError::Apply {
            path: root.display().to_string(),
            reason: format!("{what}: {e}"),
        };
        fs::create_dir_all(&root).map_err(|e| err("cannot create the target directory", e))?;
        let fd = rustix::fs::open(
            root.as_path(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| err("cannot open the target directory", errno_io(e)))?;
        Ok(HostDirTarget {
            root,
            root_fd: Arc::new(fd),
            chain: Vec::new(),
            dir_cache: Default::default(),
            pending: Vec::new(),
            link_groups: Vec::new(),
            link_of: HashMap::new(),
            warnings: Vec::new(),
            late_errors: Arc::default(),
            current: Vec::new(),
            ignored: Ignored::default(),
            behind: None,
            behind_failed: false,
        })
    }

    fn pending(&self, id: usize) -> Pending {
        self.pending.get(id).copied().unwrap_or(Pending::None)
    }

    fn set_pending(&mut self, id: usize, p: Pending) {
        if id >= self.pending.len() {
            if p == Pending::None {
                return;
            }
            self.pending.resize(id + 1, Pending::None);
        }
        self.pending[id] = p;
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// What could not be applied as it is in the image (named streams,
    /// unsupported reparse points; the counts of ignored attributes,
    /// security descriptors and short names once `finish` has run).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn host_path(&self, path: &WimPath) -> String {
        self.root
            .join(path.to_relative_path())
            .display()
            .to_string()
    }

    fn err(&self, path: &WimPath, what: &str, e: impl std::fmt::Display) -> WimError {
        WimError::Apply {
            path: self.host_path(path),
            reason: format!("{what}: {e}"),
        }
    }

    /// Opens the directory holding `path`'s last component without
    /// following any symlink. `Ok(None)`: the path lies under a link inode
    /// (a symlink cannot hold entries), which has been warned about.
    fn parent(&mut self, path: &WimPath) -> Result<Option<(Arc<OwnedFd>, String)>> {
        if path.is_root() {
            return Err(self.err(path, "internal error", "the root has no parent"));
        }
        let (dirs_joined, name) = path
            .as_slash_str()
            .rsplit_once('/')
            .unwrap_or(("", path.as_slash_str()));
        if !dirs_joined.is_empty() {
            if let Some(fd) = self.dir_cache.get(dirs_joined) {
                return Ok(Some((Arc::clone(fd), name.to_string())));
            }
        }
        let dirs = || dirs_joined.split('/').filter(|c| !c.is_empty());
        let common = self
            .chain
            .iter()
            .zip(dirs())
            .take_while(|((have, _), want)| have == want)
            .count();
        self.chain.truncate(common);
        for (i, comp) in dirs().enumerate().skip(common) {
            let base = match self.chain.last() {
                Some((_, fd)) => Arc::clone(fd),
                None => Arc::clone(&self.root_fd),
            };
            match rustix::fs::openat(
                &*base,
                comp,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => self.chain.push((comp.to_string(), Arc::new(fd))),
                Err(e) => {
                    if let Some(link) = self.link_ancestor(dirs(), i) {
                        self.warnings.push(format!(
                            "{}: skipped: it lies under {}, which is applied as a symbolic link",
                            self.host_path(path),
                            self.host_path(&link)
                        ));
                        return Ok(None);
                    }
                    let what = match e {
                        Errno::LOOP | Errno::NOTDIR => "a parent is not a directory (symbolic links in the target are not followed)",
                        _ => "cannot open the parent directory",
                    };
                    return Err(self.err(path, what, errno_io(e)));
                }
            }
        }
        let fd = match self.chain.last() {
            Some((_, fd)) => Arc::clone(fd),
            None => Arc::clone(&self.root_fd),
        };
        if !dirs_joined.is_empty() {
            if self.dir_cache.len() >= DIR_CACHE_SIZE {
                self.dir_cache.clear();
            }
            self.dir_cache
                .insert(dirs_joined.to_string(), Arc::clone(&fd));
        }
        Ok(Some((fd, name.to_string())))
    }

    /// The first of the directories `dirs` (outermost first) up to the
    /// one at index `upto` that is a link inode of this image.
    fn link_ancestor<'a>(
        &self,
        dirs: impl Iterator<Item = &'a str> + Clone,
        upto: usize,
    ) -> Option<WimPath> {
        (0..=upto).find_map(|n| {
            let p = WimPath::from_components(dirs.clone().take(n + 1)).ok()?;
            self.link_of.contains_key(&p).then_some(p)
        })
    }

    /// Removes what is at `dir/name` so that something new can be made
    /// there. A non-directory (file, symlink, FIFO...) is unlinked, never
    /// followed; a directory is removed only if `rmdir_empty` and empty.
    fn clear_way(
        &mut self,
        dir: &OwnedFd,
        name: &str,
        path: &WimPath,
        rmdir_empty: bool,
    ) -> Result<()> {
        let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(self.err(path, "cannot examine the existing entry", errno_io(e))),
        };
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            if !rmdir_empty {
                return Err(self.err(path, "cannot create", "a directory is in the way"));
            }
            // The removed directory may be one of the cached parents.
            self.chain.clear();
            self.dir_cache.clear();
            rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)
                .map_err(|e| self.err(path, "cannot remove the directory in the way", errno_io(e)))
        } else {
            rustix::fs::unlinkat(dir, name, AtFlags::empty())
                .map_err(|e| self.err(path, "cannot remove the existing entry", errno_io(e)))
        }
    }

    /// Records `path` as a name of the link inode that `existing` names
    /// (or of a new one), to be made by `set_reparse_point`.
    fn defer_link(&mut self, existing: Option<&WimPath>, path: &WimPath) {
        if self.link_of.contains_key(path) {
            return;
        }
        let group = match existing.and_then(|e| self.link_of.get(e).copied()) {
            Some(g) => g,
            None => {
                self.link_groups.push((Vec::new(), false));
                self.link_groups.len() - 1
            }
        };
        if let Some(g) = self.link_groups.get_mut(group) {
            g.0.push(path.clone());
        }
        self.link_of.insert(path.clone(), group);
    }

    fn count_ignored(&mut self, entry: &ApplyEntry) {
        if entry.inode.attributes & !EXPRESSED_ATTRIBUTES != 0 {
            self.ignored.attributes += 1;
        }
        if entry.security_descriptor.is_some() {
            self.ignored.security += 1;
        }
        if !entry.short_name.is_empty() {
            self.ignored.short_names += 1;
        }
    }

    fn create_regular(&mut self, entry: &ApplyEntry) -> Result<()> {
        let path = entry.path;
        let Some((dir, name)) = self.parent(path)? else {
            return Ok(());
        };
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        // O_EXCL refuses anything already there, a symlink included; only
        // then is the existing entry examined and cleared.
        match rustix::fs::openat(&*dir, name.as_str(), flags, Mode::from_raw_mode(0o644)) {
            Ok(_) => return Ok(()),
            Err(Errno::EXIST) => {}
            Err(e) => return Err(self.err(path, "cannot create the file", errno_io(e))),
        }
        self.clear_way(&dir, &name, path, false)?;
        rustix::fs::openat(&*dir, name.as_str(), flags, Mode::from_raw_mode(0o644))
            .map_err(|e| self.err(path, "cannot create the file", errno_io(e)))?;
        Ok(())
    }

    fn make_link(&mut self, entry: &ApplyEntry, target: &str) -> Result<()> {
        let first = entry.path;
        let names: Vec<WimPath> = match self
            .link_of
            .get(first)
            .and_then(|&g| self.link_groups.get(g))
        {
            Some((names, _)) => names.iter().filter(|n| *n != first).cloned().collect(),
            None => Vec::new(),
        };
        let Some((dir, name)) = self.parent(first)? else {
            return Ok(());
        };
        self.clear_way(&dir, &name, first, true)?;
        rustix::fs::symlinkat(target, &*dir, name.as_str())
            .map_err(|e| self.err(first, "cannot create the symbolic link", errno_io(e)))?;
        for other in &names {
            let Some((odir, oname)) = self.parent(other)? else {
                continue;
            };
            self.clear_way(&odir, &oname, other, true)?;
            // No AT_SYMLINK_FOLLOW: the new name is a link to the symlink
            // itself, as the image says.
            rustix::fs::linkat(
                &*dir,
                name.as_str(),
                &*odir,
                oname.as_str(),
                AtFlags::empty(),
            )
            .map_err(|e| self.err(other, "cannot create the hard link", errno_io(e)))?;
        }
        if let Some(&g) = self.link_of.get(first) {
            if let Some(group) = self.link_groups.get_mut(g) {
                group.1 = true;
            }
        }
        Ok(())
    }
}

/// What waits to be done for an entry (by id, in `pending`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    None,
    /// A file with data not created yet: `begin_stream` creates it.
    Create,
    /// Handed to the write-behind thread, which sets its times.
    TimesSetBehind,
}

/// An inode's access and modification times as Linux takes them.
fn timestamps(inode: &tasq_wim::image::Inode) -> Timestamps {
    Timestamps {
        last_access: timespec(inode.last_access_time),
        last_modification: timespec(inode.last_write_time),
    }
}

fn timespec(ft: u64) -> Timespec {
    let (tv_sec, tv_nsec) = filetime_to_unix(ft);
    Timespec {
        tv_sec,
        tv_nsec: tv_nsec.into(),
    }
}

impl ApplyTarget for HostDirTarget {
    fn describe(&self) -> String {
        format!("directory {}", self.root.display())
    }

    fn backslash_is_ordinary(&self) -> bool {
        true
    }

    fn link_root(&self) -> Option<String> {
        // As wimlib: the real path of the target directory (symlinks in
        // the path to it resolved); a path that is not UTF-8 gets no fixups.
        fs::canonicalize(&self.root)
            .ok()
            .and_then(|p| p.to_str().map(str::to_string))
    }

    fn create_directory(&mut self, entry: &ApplyEntry) -> Result<()> {
        self.settle()?;
        let path = entry.path;
        if path.is_root() {
            return Ok(());
        }
        if is_link_inode(entry.inode) {
            // A link to a directory is still a symlink on Linux.
            self.defer_link(None, path);
            return Ok(());
        }
        let Some((dir, name)) = self.parent(path)? else {
            return Ok(());
        };
        match rustix::fs::statat(&*dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => return Ok(()),
            Ok(_) => self.clear_way(&dir, &name, path, false)?,
            Err(Errno::NOENT) => {}
            Err(e) => return Err(self.err(path, "cannot examine the existing entry", errno_io(e))),
        }
        rustix::fs::mkdirat(&*dir, name.as_str(), Mode::from_raw_mode(0o755))
            .map_err(|e| self.err(path, "cannot create the directory", errno_io(e)))
    }

    fn create_file(&mut self, entry: &ApplyEntry) -> Result<()> {
        self.settle()?;
        if is_link_inode(entry.inode) {
            self.defer_link(None, entry.path);
            return Ok(());
        }
        if entry.inode.unnamed_data().is_some_and(|s| s.size > 0) {
            // The parent is resolved now (cheap: cached) so that a path
            // through a planted link fails here, not later.
            if self.parent(entry.path)?.is_some() {
                self.set_pending(entry.id, Pending::Create);
            }
            return Ok(());
        }
        self.create_regular(entry)
    }

    fn create_hard_link(&mut self, first: &ApplyEntry, entry: &ApplyEntry) -> Result<()> {
        self.settle()?;
        let path = entry.path;
        let existing = first.path;
        if is_link_inode(entry.inode) {
            self.defer_link(Some(existing), path);
            return Ok(());
        }
        if self.pending(first.id) == Pending::Create {
            self.set_pending(first.id, Pending::None);
            self.create_regular(first)?;
        }
        let Some((odir, oname)) = self.parent(existing)? else {
            return Ok(());
        };
        let Some((ndir, nname)) = self.parent(path)? else {
            return Ok(());
        };
        self.clear_way(&ndir, &nname, path, false)?;
        rustix::fs::linkat(
            &*odir,
            oname.as_str(),
            &*ndir,
            nname.as_str(),
            AtFlags::empty(),
        )
        .map_err(|e| {
            self.err(
                path,
                &format!("cannot link to {}", self.host_path(existing)),
                errno_io(e),
            )
        })
    }

    fn max_open_streams(&self, size: u64) -> usize {
        if size <= writebehind::MAX_FILE {
            // Each open small file holds its own copy until it is queued.
            ((OPEN_SMALL_BYTES / size.max(1)) as usize).clamp(1, MAX_OPEN_STREAMS)
        } else {
            MAX_OPEN_STREAMS
        }
    }

    fn begin_stream(&mut self, entry: &ApplyEntry, stream: &Stream) -> Result<()> {
        if self.current.len() >= MAX_OPEN_STREAMS {
            return Err(self.err(
                entry.path,
                "cannot open a stream",
                format!("{MAX_OPEN_STREAMS} streams are open already"),
            ));
        }
        let w = self.open_stream(entry, stream)?;
        self.current.push(OpenStream(w));
        Ok(())
    }

    fn write_stream(&mut self, data: &[u8]) -> Result<()> {
        if self.current.is_empty() {
            return Err(WimError::Apply {
                path: self.root.display().to_string(),
                reason: "write to no open stream".into(),
            });
        }
        for w in &mut self.current {
            w.0.write_all(data).map_err(|e| WimError::Apply {
                path: self.root.display().to_string(),
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }

    fn end_stream(&mut self) -> Result<()> {
        // Every stream is closed; the first error is reported.
        let mut first_err = None;
        for mut w in self.current.drain(..) {
            if let Err(e) = w.0.flush() {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(WimError::Apply {
                path: self.root.display().to_string(),
                reason: e.to_string(),
            }),
            None => Ok(()),
        }
    }

    fn set_reparse_point(&mut self, entry: &ApplyEntry, data: &[u8]) -> Result<()> {
        self.settle()?;
        if !is_link_inode(entry.inode) {
            self.warnings.push(format!(
                "{}: reparse point with tag {:#010x} not applied: Linux only has symbolic links",
                self.host_path(entry.path),
                entry.inode.reparse_tag
            ));
            return Ok(());
        }
        let link = reparse::parse_link_reparse(entry.inode.reparse_tag, data)
            .map_err(|e| self.err(entry.path, "invalid link reparse data", e))?;
        let target = reparse::unix_target_from_link(&link);
        if target.contains('\0') {
            return Err(self.err(
                entry.path,
                "cannot create the symbolic link",
                "its target contains a NUL character",
            ));
        }
        self.make_link(entry, &target)
    }

    fn set_metadata(&mut self, entry: &ApplyEntry) -> Result<()> {
        self.settle()?;
        self.count_ignored(entry);
        let path = entry.path;
        match self.pending(entry.id) {
            Pending::Create => self.create_regular(entry)?,
            Pending::TimesSetBehind => {
                self.set_pending(entry.id, Pending::None);
                return Ok(());
            }
            Pending::None => {}
        }
        self.set_pending(entry.id, Pending::None);
        let times = timestamps(entry.inode);
        if path.is_root() {
            return rustix::fs::futimens(&*self.root_fd, &times)
                .map_err(|e| self.err(path, "cannot set times", errno_io(e)));
        }
        if let Some((_, made)) = self
            .link_of
            .get(path)
            .and_then(|&g| self.link_groups.get(g))
        {
            if !made {
                self.warnings.push(format!(
                    "{}: symbolic link not created: the image holds no reparse data for it",
                    self.host_path(path)
                ));
                return Ok(());
            }
        }
        let Some((dir, name)) = self.parent(path)? else {
            return Ok(());
        };
        // AT_SYMLINK_NOFOLLOW: a symlink gets its own times, and a link
        // found in the target cannot redirect the change.
        rustix::fs::utimensat(&*dir, name.as_str(), &times, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.err(path, "cannot set times", errno_io(e)))
    }

    fn finish(&mut self) -> Result<()> {
        self.settle()?;
        let ign = std::mem::take(&mut self.ignored);
        for (n, what) in [
            (
                ign.attributes,
                "file attributes (read-only, hidden, system, ...)",
            ),
            (ign.security, "security descriptors"),
            (ign.short_names, "short (DOS) names"),
        ] {
            if n > 0 {
                self.warnings.push(format!(
                    "{what} of {n} files not applied: Linux has no place for them"
                ));
            }
        }
        if let Some(e) = self
            .late_errors
            .lock()
            .ok()
            .and_then(|v| v.first().cloned())
        {
            return Err(WimError::Apply {
                path: self.root.display().to_string(),
                reason: e.clone(),
            });
        }
        Ok(())
    }
}

/// The data of a small new file, gathered until its stream ends and then
/// handed to the write-behind thread.
struct Deferred {
    file: Option<NewFile>,
    submitter: Submitter,
    late_errors: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Deferred {
    fn send(&mut self) -> io::Result<()> {
        match self.file.take() {
            Some(f) => self.submitter.submit(f).map_err(io::Error::other),
            None => Ok(()),
        }
    }
}

impl Write for Deferred {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.file {
            Some(f) => {
                f.data.extend_from_slice(buf);
                Ok(buf.len())
            }
            None => Err(io::Error::other("data after the end of the stream")),
        }
    }

    /// The end of the stream: the file is queued.
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        let res = self.send();
        keep_late_error(&self.late_errors, res);
    }
}

/// Keeps an error met in a drop, for `finish` to report.
fn keep_late_error(late: &std::sync::Mutex<Vec<String>>, res: io::Result<()>) {
    if let Err(e) = res {
        if let Ok(mut v) = late.lock() {
            v.push(e.to_string());
        }
    }
}

/// Writes one unnamed data stream; for a sparse file, 4 KiB blocks of
/// zeros are skipped (left as holes) and the length is set at the end.
struct FileWriter {
    file: File,
    host_path: String,
    /// The stream's size: when this many bytes have come, the file is
    /// completed at once so that its errors reach the caller.
    size: u64,
    written: u64,
    sparse: bool,
    /// The partial block not yet written (sparse files only).
    block: Vec<u8>,
    finished: bool,
    late_errors: Arc<std::sync::Mutex<Vec<String>>>,
}

impl FileWriter {
    fn ctx(&self, e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("{}: write error: {e}", self.host_path))
    }

    /// Writes the staged block unless it is all zeros. `self.written`
    /// counts the bytes consumed, staged ones included.
    fn commit_block(&mut self) -> io::Result<()> {
        if self.block.iter().any(|&b| b != 0) {
            let at = self.written - self.block.len() as u64;
            self.file
                .write_all_at(&self.block, at)
                .map_err(|e| self.ctx(e))?;
        }
        self.block.clear();
        Ok(())
    }

    fn complete(&mut self) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        if self.sparse {
            self.commit_block()?;
            // Trailing holes: only the length makes them part of the file.
            self.file.set_len(self.written).map_err(|e| self.ctx(e))?;
        }
        Ok(())
    }
}

impl Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.finished = false;
        let consumed = if !self.sparse {
            let n = self.file.write(buf).map_err(|e| self.ctx(e))?;
            self.written += n as u64;
            n
        } else {
            let mut rest = buf;
            while !rest.is_empty() {
                let take = (SPARSE_BLOCK - self.block.len()).min(rest.len());
                let (head, tail) = rest.split_at(take);
                self.block.extend_from_slice(head);
                self.written += take as u64;
                rest = tail;
                if self.block.len() == SPARSE_BLOCK {
                    self.commit_block()?;
                }
            }
            buf.len()
        };
        if self.written >= self.size {
            self.complete()?;
        }
        Ok(consumed)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.complete()
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        let res = self.complete();
        keep_late_error(&self.late_errors, res);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tasq_wim::image::Inode;

    fn data_stream(size: u64) -> Stream {
        Stream {
            kind: StreamKind::Data,
            name: Vec::new(),
            hash: tasq_wim::Sha1Hash::ZERO,
            size,
            source: tasq_wim::image::StreamSource::None,
        }
    }

    /// The entry of a test's single file (id 0).
    fn entry<'a>(path: &'a WimPath, inode: &'a Inode) -> ApplyEntry<'a> {
        ApplyEntry {
            id: 0,
            path,
            inode,
            short_name: &[],
            security_descriptor: None,
        }
    }

    #[test]
    fn sparse_writer_leaves_holes_whatever_the_chunking() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = HostDirTarget::new(dir.path()).unwrap();
        let inode = Inode {
            attributes: FILE_ATTRIBUTE_SPARSE_FILE,
            ..Inode::default()
        };
        // 1 MiB of zeros, 5 bytes of data, 1 MiB of zeros, written in
        // chunks that never line up with blocks.
        let mut content = vec![0u8; 1 << 20];
        content.extend_from_slice(b"hello");
        content.extend(std::iter::repeat_n(0u8, 1 << 20));
        let p = WimPath::from_components(["s"]).unwrap();
        t.create_file(&entry(&p, &inode)).unwrap();
        {
            let mut w = t
                .open_stream(&entry(&p, &inode), &data_stream(content.len() as u64))
                .unwrap();
            for chunk in content.chunks(3001) {
                w.write_all(chunk).unwrap();
            }
        }
        t.finish().unwrap();
        let host = dir.path().join("s");
        assert_eq!(fs::read(&host).unwrap(), content);
        let m = fs::metadata(&host).unwrap();
        use std::os::unix::fs::MetadataExt;
        // One or two 4 KiB blocks for the data, nothing for the zeros.
        assert!(m.blocks() * 512 <= 64 * 1024, "blocks: {}", m.blocks());
    }

    #[test]
    fn non_sparse_writer_writes_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = HostDirTarget::new(dir.path()).unwrap();
        let inode = Inode {
            attributes: FILE_ATTRIBUTE_NORMAL,
            ..Inode::default()
        };
        let p = WimPath::from_components(["z"]).unwrap();
        t.create_file(&entry(&p, &inode)).unwrap();
        let content = vec![0u8; 256 * 1024];
        t.open_stream(&entry(&p, &inode), &data_stream(content.len() as u64))
            .unwrap()
            .write_all(&content)
            .unwrap();
        let m = fs::metadata(dir.path().join("z")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(m.len(), content.len() as u64);
        assert!(
            m.blocks() * 512 >= content.len() as u64,
            "blocks: {}",
            m.blocks()
        );
    }
}
