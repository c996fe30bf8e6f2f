//! Capture of a host directory tree into an [`ImageTree`].
//!
//! The walk uses `lstat` and never follows a symlink below the root (the
//! root itself is followed, as wimlib does, so a link naming a directory
//! can be given as the source). Data is not read during the scan: each
//! non-empty file becomes an `External(id)` stream, read later through
//! [`CaptureSource::open_stream`] with a check that the file still has the
//! size seen at scan time.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{Mode, OFlags};
use tasq_wim::capture::{CaptureFilter, CaptureSource, ScanProgress};
use tasq_wim::image::{
    utf16, ImageTree, Inode, Stream, StreamKind, StreamSource, FILE_ATTRIBUTE_DIRECTORY,
    FILE_ATTRIBUTE_NORMAL, FILE_ATTRIBUTE_REPARSE_POINT, FILE_ATTRIBUTE_SPARSE_FILE,
    IO_REPARSE_TAG_SYMLINK, WIM_RP_FLAG_NOT_FIXED,
};
use tasq_wim::reparse;
use tasq_wim::{Result, Sha1Hash, WimError};

use super::unix_to_filetime;

/// A host directory as a capture source.
#[derive(Debug)]
pub struct HostDirSource {
    root: PathBuf,
    /// Stream id → (file on disk, size recorded at scan time).
    files: Vec<(PathBuf, u64)>,
    warnings: Vec<String>,
    /// Reparse-point fixups: (device, inode) of the capture root, when
    /// absolute links into the tree are to be stored relative to it.
    rpfix_root: Option<(u64, u64)>,
}

fn capture_err(path: &Path, reason: impl Into<String>) -> WimError {
    WimError::Capture {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// One directory still to be read: its dentry, its host path and its
/// path in the image (empty for the root).
struct PendingDir {
    dentry: usize,
    host: PathBuf,
    wim: String,
}

impl HostDirSource {
    /// A source for the tree at `root`, which must be a directory (or a
    /// symlink to one).
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        check_root(&root)?;
        Ok(HostDirSource {
            root,
            files: Vec::new(),
            warnings: Vec::new(),
            rpfix_root: None,
        })
    }

    /// Reparse-point fixups at capture (wimlib's `--rpfix`, its default for
    /// a new WIM): an absolute symlink whose target lies inside the tree
    /// being captured is stored relative to the tree's root (`/usr/lib/x`
    /// captured from `/usr` becomes `/lib/x`) and marked fixed, so that an
    /// apply with fixups points it into the applied tree. Whether a target
    /// lies inside is decided as wimlib does: by the device and inode of
    /// each leading part of the target (so `//usr/./lib` or a path through
    /// another link to the root count too), not by comparing strings.
    pub fn with_rpfix(mut self, on: bool) -> Result<Self> {
        self.rpfix_root = if on {
            let m = fs::metadata(&self.root)
                .map_err(|e| capture_err(&self.root, format!("cannot examine the root: {e}")))?;
            Some((m.dev(), m.ino()))
        } else {
            None
        };
        Ok(self)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Non-fatal oddities of the last scan (skipped special files, ...).
    /// The same lines are in the scanned tree's `warnings`.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn file_inode(&mut self, meta: &Metadata, path: &Path) -> Inode {
        let size = meta.len();
        // Fewer allocated 512-byte blocks than the size needs: the file has
        // holes. wimlib sets the sparse attribute on the same test.
        let sparse = u128::from(meta.blocks()) * 512 < u128::from(size);
        let mut inode = inode_with_times(meta);
        inode.attributes = if sparse {
            FILE_ATTRIBUTE_SPARSE_FILE
        } else {
            FILE_ATTRIBUTE_NORMAL
        };
        if size > 0 {
            let id = self.files.len() as u64;
            self.files.push((path.to_path_buf(), size));
            inode.streams = vec![Stream {
                kind: StreamKind::Data,
                name: Vec::new(),
                hash: Sha1Hash::ZERO,
                size,
                source: StreamSource::External(id),
            }];
        }
        inode
    }
}

fn check_root(root: &Path) -> Result<()> {
    let meta = fs::metadata(root)
        .map_err(|e| capture_err(root, format!("cannot read the capture root: {e}")))?;
    if !meta.is_dir() {
        return Err(capture_err(root, "the capture root is not a directory"));
    }
    Ok(())
}

fn inode_with_times(meta: &Metadata) -> Inode {
    // UNIX has no creation time that stat reports; wimlib stores mtime.
    let mtime = unix_to_filetime(meta.mtime(), meta.mtime_nsec());
    Inode {
        creation_time: mtime,
        last_write_time: mtime,
        last_access_time: unix_to_filetime(meta.atime(), meta.atime_nsec()),
        ..Inode::default()
    }
}

/// `target` (absolute) relative to the directory with id `root` when one of
/// its leading parts is that directory: the rest of the target, with its
/// leading slashes (empty when it names the root itself). `None` when the
/// link points elsewhere or a leading part cannot be examined.
fn relative_to_root(target: &str, root: (u64, u64)) -> Option<&str> {
    let b = target.as_bytes();
    let mut i = 0;
    loop {
        while b.get(i) == Some(&b'/') {
            i += 1;
        }
        if i == b.len() {
            return None;
        }
        while i < b.len() && b[i] != b'/' {
            i += 1;
        }
        // Followed like wimlib's stat(): a link to the root counts.
        let m = fs::metadata(&target[..i]).ok()?;
        if (m.dev(), m.ino()) == root {
            return Some(&target[i..]);
        }
    }
}

fn symlink_inode(meta: &Metadata, path: &Path, rpfix_root: Option<(u64, u64)>) -> Result<Inode> {
    let target = fs::read_link(path)
        .map_err(|e| capture_err(path, format!("cannot read the symbolic link: {e}")))?;
    let target = target
        .to_str()
        .ok_or_else(|| capture_err(path, "the symbolic link target is not valid UTF-8"))?;
    let fixed = match rpfix_root {
        Some(root) if target.starts_with('/') => relative_to_root(target, root),
        _ => None,
    };
    let data = reparse::symlink_reparse_from_unix(fixed.unwrap_or(target))
        .map_err(|e| capture_err(path, e.to_string()))?;
    let mut inode = inode_with_times(meta);
    inode.attributes = FILE_ATTRIBUTE_REPARSE_POINT;
    // Windows keeps a link to a directory on a directory file; wimlib
    // decides by following the link now. A dangling link is a file link.
    if fs::metadata(path).map(|m| m.is_dir()).unwrap_or(false) {
        inode.attributes |= FILE_ATTRIBUTE_DIRECTORY;
    }
    inode.reparse_tag = IO_REPARSE_TAG_SYMLINK;
    inode.rp_flags = if fixed.is_some() {
        0
    } else {
        WIM_RP_FLAG_NOT_FIXED
    };
    inode.streams = vec![Stream {
        kind: StreamKind::ReparsePoint,
        name: Vec::new(),
        hash: Sha1Hash::ZERO,
        size: data.len() as u64,
        source: StreamSource::Inline(Arc::new(data)),
    }];
    Ok(inode)
}

fn special_kind(meta: &Metadata) -> &'static str {
    let ft = meta.file_type();
    if ft.is_fifo() {
        "FIFO"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_char_device() {
        "character device"
    } else {
        "special file"
    }
}

impl CaptureSource for HostDirSource {
    fn describe(&self) -> String {
        format!("directory {}", self.root.display())
    }

    fn scan(
        &mut self,
        filter: &dyn CaptureFilter,
        progress: &mut dyn FnMut(ScanProgress),
    ) -> Result<ImageTree> {
        self.files.clear();
        self.warnings.clear();
        check_root(&self.root)?;
        let root_meta = fs::metadata(&self.root)
            .map_err(|e| capture_err(&self.root, format!("cannot read the capture root: {e}")))?;

        let mut tree = ImageTree::new();
        {
            let root = tree.root_inode_mut();
            *root = inode_with_times(&root_meta);
            root.attributes = FILE_ATTRIBUTE_DIRECTORY;
        }
        let mut stats = ScanProgress {
            dirs: 1,
            ..ScanProgress::default()
        };
        progress(stats);

        // Names of one file with several links share an inode.
        let mut linked: HashMap<(u64, u64), usize> = HashMap::new();
        // A bind mount can show a directory inside itself; capturing a
        // directory once keeps the walk finite.
        let mut seen_dirs: HashSet<(u64, u64)> = HashSet::new();
        seen_dirs.insert((root_meta.dev(), root_meta.ino()));

        let mut pending = vec![PendingDir {
            dentry: ImageTree::ROOT,
            host: self.root.clone(),
            wim: String::new(),
        }];
        while let Some(dir) = pending.pop() {
            let mut entries = Vec::new();
            let rd = fs::read_dir(&dir.host)
                .map_err(|e| capture_err(&dir.host, format!("cannot read the directory: {e}")))?;
            for e in rd {
                let e = e.map_err(|e| {
                    capture_err(&dir.host, format!("cannot read the directory: {e}"))
                })?;
                entries.push(e.file_name());
            }
            // A stable order makes scans reproducible; the metadata writer
            // sorts names in collation order anyway.
            entries.sort();

            for name in entries {
                let path = dir.host.join(&name);
                let name = name
                    .to_str()
                    .ok_or_else(|| capture_err(&path, "the file name is not valid UTF-8"))?;
                let wim_path = format!("{}\\{}", dir.wim, name);
                if filter.is_excluded(&wim_path) {
                    continue;
                }
                let meta = fs::symlink_metadata(&path)
                    .map_err(|e| capture_err(&path, format!("cannot read metadata: {e}")))?;
                let ft = meta.file_type();
                if name.contains('\\') {
                    self.warnings.push(format!(
                        "{}: the name contains a backslash, which Windows reads as a path separator",
                        path.display()
                    ));
                }
                if ft.is_dir() {
                    if !seen_dirs.insert((meta.dev(), meta.ino())) {
                        self.warnings.push(format!(
                            "{}: skipped: this directory was already captured under another path (bind mount?)",
                            path.display()
                        ));
                        continue;
                    }
                    let mut inode = inode_with_times(&meta);
                    inode.attributes = FILE_ATTRIBUTE_DIRECTORY;
                    let ino = tree.add_inode(inode);
                    let d = tree.add_dentry(dir.dentry, utf16(name), Vec::new(), ino);
                    stats.dirs += 1;
                    pending.push(PendingDir {
                        dentry: d,
                        host: path,
                        wim: wim_path,
                    });
                } else if ft.is_file() || ft.is_symlink() {
                    let key = (meta.dev(), meta.ino());
                    let existing = if meta.nlink() > 1 {
                        linked.get(&key).copied()
                    } else {
                        None
                    };
                    let ino = match existing {
                        Some(ino) => ino,
                        None => {
                            let inode = if ft.is_file() {
                                self.file_inode(&meta, &path)
                            } else {
                                symlink_inode(&meta, &path, self.rpfix_root)?
                            };
                            stats.bytes += inode.data_size();
                            let ino = tree.add_inode(inode);
                            if meta.nlink() > 1 {
                                linked.insert(key, ino);
                            }
                            ino
                        }
                    };
                    tree.add_dentry(dir.dentry, utf16(name), Vec::new(), ino);
                    stats.files += 1;
                } else {
                    // wimlib leaves these out unless --unix-data is given.
                    self.warnings.push(format!(
                        "{}: skipped: a {} cannot be stored in a WIM image",
                        path.display(),
                        special_kind(&meta)
                    ));
                    continue;
                }
                progress(stats);
            }
        }
        tree.warnings = self.warnings.clone();
        Ok(tree)
    }

    fn open_stream(&self, id: u64) -> Result<Box<dyn Read + Send + '_>> {
        let (path, size) = usize::try_from(id)
            .ok()
            .and_then(|i| self.files.get(i))
            .ok_or_else(|| {
                WimError::InvalidArgument(format!("no stream {id} in {}", self.describe()))
            })?;
        // O_NOFOLLOW: a file replaced by a link since the scan is refused
        // rather than read through the link.
        let fd = rustix::fs::open(
            path.as_path(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
        )
        .map_err(|e| capture_err(path, format!("cannot open: {}", io::Error::from(e))))?;
        let file = File::from(fd);
        let meta = file
            .metadata()
            .map_err(|e| capture_err(path, format!("cannot read metadata: {e}")))?;
        if !meta.is_file() {
            return Err(capture_err(path, "no longer a regular file"));
        }
        Ok(Box::new(SizedReader {
            file,
            path: path.clone(),
            expected: *size,
            done: 0,
        }))
    }
}

/// Reads a file and fails if it holds more or fewer bytes than recorded
/// at scan time: the writer has already committed to the size.
struct SizedReader {
    file: File,
    path: PathBuf,
    expected: u64,
    done: u64,
}

impl SizedReader {
    fn changed(&self, what: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: the file changed during capture: {what} (it had {} bytes when the tree was scanned)",
                self.path.display(),
                self.expected
            ),
        )
    }

    fn read_error(&self, e: io::Error) -> io::Error {
        if e.kind() == io::ErrorKind::Interrupted {
            return e;
        }
        io::Error::new(
            e.kind(),
            format!("{}: read error: {e}", self.path.display()),
        )
    }
}

impl Read for SizedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let left = self.expected - self.done;
        if left == 0 {
            // One more read tells a file that grew from one that ended.
            let mut probe = [0u8; 1];
            return match self.file.read(&mut probe) {
                Ok(0) => Ok(0),
                Ok(_) => Err(self.changed("it has grown")),
                Err(e) => Err(self.read_error(e)),
            };
        }
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let got = self
            .file
            .read(&mut buf[..n])
            .map_err(|e| self.read_error(e))?;
        if got == 0 {
            let what = format!("it ended after {} bytes", self.done);
            return Err(self.changed(&what));
        }
        self.done += got as u64;
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use tasq_wim::capture::NoFilter;

    #[test]
    fn reader_detects_shrinking_and_growing_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(&p, b"hello world").unwrap();
        let mut src = HostDirSource::new(dir.path()).unwrap();
        let tree = src.scan(&NoFilter, &mut |_| {}).unwrap();
        let f = tree.find("f").unwrap();
        let StreamSource::External(id) = tree.inode_of(f).streams[0].source else {
            panic!("expected an external stream");
        };

        let mut out = Vec::new();
        src.open_stream(id).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hello world");

        fs::write(&p, b"hello").unwrap();
        let err = src
            .open_stream(id)
            .unwrap()
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("ended after 5 bytes"), "{err}");
        assert!(err.to_string().contains(&p.display().to_string()), "{err}");

        fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b" world!!")
            .unwrap();
        let err = src
            .open_stream(id)
            .unwrap()
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("grown"), "{err}");
        assert!(err.to_string().contains(&p.display().to_string()), "{err}");

        assert!(src.open_stream(id + 1).is_err());
    }

    #[test]
    fn replaced_by_symlink_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(&p, b"data").unwrap();
        fs::write(dir.path().join("other"), b"DATA").unwrap();
        let mut src = HostDirSource::new(dir.path()).unwrap();
        let tree = src.scan(&NoFilter, &mut |_| {}).unwrap();
        let StreamSource::External(id) = tree.inode_of(tree.find("f").unwrap()).streams[0].source
        else {
            panic!("expected an external stream");
        };
        fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink("other", &p).unwrap();
        let err = src
            .open_stream(id)
            .err()
            .expect("a link must not be read through");
        assert!(err.to_string().contains("cannot open"), "{err}");
    }

    #[test]
    fn root_must_be_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("file");
        fs::write(&f, b"x").unwrap();
        let err = HostDirSource::new(&f).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
        assert!(HostDirSource::new(dir.path().join("missing")).is_err());
    }
}
