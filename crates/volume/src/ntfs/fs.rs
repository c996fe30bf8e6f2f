//! [`VolumeFs`] on an unmounted NTFS volume through libntfs-3g: what the
//! task sequence steps use to put `unattend.xml`, drivers or boot files on
//! a target volume inside a disk image, and to read files back.
//!
//! Semantics, chosen to match what Windows does:
//!
//! - names are looked up exactly first, then ignoring case by the
//!   volume's own `$UpCase` table (`ntfs_inode_lookup_by_name`, with the
//!   case-insensitive pass done by the shim);
//! - a reparse point (junction, symbolic link, ...) met while resolving a
//!   path is an error, never followed; as the last component it is listed
//!   as [`EntryKind::Other`] and can be removed (the link, not its target);
//! - the NTFS metadata files (`$MFT` ... `$Extend`, records below 16) are
//!   neither listed nor reachable by name;
//! - new files and directories get the security descriptor inherited from
//!   their parent's inheritable ACEs, as Windows builds it
//!   (`ntfs_inherited_id`; owner and group are BUILTIN\Administrators),
//!   or, when the parent has none, libntfs-3g's default descriptor
//!   (Everyone: full control); all three times are "now"; files have
//!   FILE_ATTRIBUTE_ARCHIVE, directories FILE_ATTRIBUTE_DIRECTORY only;
//!   names are created in the POSIX namespace without a short name, as
//!   libntfs-3g does (Windows reads them; no 8.3 alias is generated);
//! - a file is replaced by writing the new content under a temporary name
//!   in the same directory, then unlinking the old file and linking the
//!   new one under the real name (`ntfs_link` + `ntfs_delete`): a write
//!   that fails (volume full, reader error) leaves the old file as it was.
//!   The replacement has a new security descriptor (inherited) and keeps
//!   the old name's case.
//!
//! libntfs-3g writes records through as it goes, but only a clean unmount
//! leaves the volume marked consistent, so [`flush`](VolumeFs::flush)
//! unmounts and mounts again; [`NtfsFs::close`] unmounts and reports
//! errors; dropping the handle unmounts too, silently.

use std::ffi::c_int;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ntfs3g_sys as sys;
use tasq_wim::image::{FILE_ATTRIBUTE_DIRECTORY, FILE_ATTRIBUTE_REPARSE_POINT};

use super::apply::{pwrite_all, set_attributes};
use super::capture::{is_dot, read_dir};
use super::{discard_log, last_error, Attr, Ino, Mounted, NtfsVolume};
use crate::fs::{EntryKind, FsEntry, FsError, FsResult, VolPath, VolumeFs};

/// Longest NTFS name, in UTF-16 units.
const MAX_NAME_UNITS: usize = 255;
/// Deepest directory tree `remove` descends (a loop on a damaged volume
/// must end in an error, not a stack overflow).
const MAX_DEPTH: usize = 512;
/// Bytes read from the caller per write.
const CHUNK: usize = 1 << 20;

/// Makes temporary names unique within the process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// An NTFS volume as a [`VolumeFs`].
pub struct NtfsFs {
    /// `None` only if a remount in `flush` failed.
    vol: Option<NtfsVolume>,
    image: PathBuf,
    offset: u64,
    size: u64,
    writable: bool,
    desc: String,
}

/// A resolved entry: its MFT record and Windows attributes.
#[derive(Debug, Clone, Copy)]
struct Node {
    mft: u64,
    attrs: u32,
}

impl Node {
    fn is_reparse(&self) -> bool {
        self.attrs & FILE_ATTRIBUTE_REPARSE_POINT != 0
    }
    fn is_dir(&self) -> bool {
        self.attrs & FILE_ATTRIBUTE_DIRECTORY != 0
    }
    fn kind(&self) -> EntryKind {
        if self.is_reparse() {
            EntryKind::Other
        } else if self.is_dir() {
            EntryKind::Dir
        } else {
            EntryKind::File
        }
    }
}

const ROOT: Node = Node {
    mft: sys::FILE_root,
    attrs: FILE_ATTRIBUTE_DIRECTORY,
};

fn units(name: &str) -> Result<Vec<u16>, String> {
    let u: Vec<u16> = name.encode_utf16().collect();
    if u.is_empty() || u.len() > MAX_NAME_UNITS {
        return Err(format!("{name:?}: a name must be 1 to 255 UTF-16 units"));
    }
    Ok(u)
}

fn attributes(m: &Mounted, ino: &Ino) -> Result<u32, String> {
    let mut a = [0u8; 4];
    // SAFETY: ino is open on the locked volume; the buffer holds 4 bytes.
    let r = unsafe { sys::ntfs_get_ntfs_attrib(ino.0, a.as_mut_ptr().cast(), 4) };
    if r != 4 {
        return Err(last_error("cannot read the attributes", m.fault()));
    }
    Ok(u32::from_le_bytes(a))
}

fn open(m: &Mounted, mft: u64) -> Result<Ino, String> {
    Ino::open(m, mft).ok_or_else(|| last_error(&format!("cannot open record {mft}"), m.fault()))
}

/// The record named `name` in `dir`: exact match first, then ignoring
/// case. `None` when there is none.
fn lookup(m: &Mounted, dir: &Ino, name: &[u16]) -> Result<Option<u64>, String> {
    let len = name.len() as c_int;
    // SAFETY: dir is an open directory inode on the locked volume; the
    // name is readable for `len` units during the call.
    let mut r = unsafe { sys::ntfs_inode_lookup_by_name(dir.0, name.as_ptr(), len) };
    if r == u64::MAX && io::Error::last_os_error().raw_os_error() == Some(sys::libc::ENOENT) {
        discard_log();
        // SAFETY: as above.
        r = unsafe { sys::tasq_ntfs_lookup_nocase(dir.0, name.as_ptr(), len) };
    }
    if r == u64::MAX {
        if io::Error::last_os_error().raw_os_error() == Some(sys::libc::ENOENT) {
            discard_log();
            return Ok(None);
        }
        return Err(last_error("cannot look the name up", m.fault()));
    }
    Ok(Some(r & sys::MFT_REF_MASK))
}

/// Removes the name `name` of record `mft` from directory `dir`.
///
/// Every helper opens the inodes it needs and closes them before
/// returning: libntfs-3g gives each `ntfs_inode_open` its own copy of the
/// record, so two open handles of one directory would overwrite each
/// other's index changes.
fn unlink(m: &Mounted, dir: u64, mft: u64, name: &[u16]) -> Result<(), String> {
    let dir = open(m, dir)?;
    let ino = open(m, mft)?;
    // SAFETY: both inodes are open on the locked volume; ntfs_delete
    // closes `ino` whatever it returns (hence into_raw) and leaves `dir`
    // open; the name is readable during the call and fits in u8 (units()).
    let r = unsafe {
        sys::ntfs_delete(
            m.vol,
            std::ptr::null(),
            ino.into_raw(),
            dir.0,
            name.as_ptr(),
            name.len() as u8,
        )
    };
    if r != 0 {
        return Err(last_error("cannot delete", m.fault()));
    }
    if !dir.close() {
        return Err(last_error("cannot write the directory", m.fault()));
    }
    Ok(())
}

/// Adds `name` in directory `dir` as a further name of record `mft`.
fn link(m: &Mounted, dir: u64, mft: u64, name: &[u16]) -> Result<(), String> {
    let dir = open(m, dir)?;
    let ino = open(m, mft)?;
    // SAFETY: both inodes are open on the locked volume; the name is
    // readable during the call and fits in u8 (units()).
    if unsafe { sys::ntfs_link(ino.0, dir.0, name.as_ptr(), name.len() as u8) } != 0 {
        return Err(last_error("cannot link", m.fault()));
    }
    if !ino.close() || !dir.close() {
        return Err(last_error("cannot write the link", m.fault()));
    }
    Ok(())
}

/// The record named `name` in directory record `dir` (see `lookup`).
fn lookup_in(m: &Mounted, dir: u64, name: &[u16]) -> Result<Option<u64>, String> {
    let dir = open(m, dir)?;
    lookup(m, &dir, name)
}

/// The name under which `dir` holds record `mft`, as stored, for a name
/// the caller gave in any case: ntfs_delete only matches POSIX-namespace
/// names (those libntfs-3g creates) exactly.
fn stored_name(m: &Mounted, dir: u64, mft: u64, given: &[u16]) -> Result<Vec<u16>, String> {
    let fold = |n: &[u16]| String::from_utf16_lossy(n).to_uppercase();
    let want = fold(given);
    let mut fallback = None;
    let entries = read_dir(m, &open(m, dir)?)?;
    for e in entries {
        if e.mft != mft || e.name_type == sys::FILE_NAME_DOS {
            continue;
        }
        if e.name == given {
            return Ok(e.name);
        }
        if fallback.is_none() && fold(&e.name) == want {
            fallback = Some(e.name);
        }
    }
    Ok(fallback.unwrap_or_else(|| given.to_vec()))
}

/// Creates `name` in directory `parent` with the inherited descriptor.
fn create(m: &Mounted, parent: u64, name: &[u16], dir: bool) -> Result<u64, String> {
    let dir_ino = open(m, parent)?;
    // SAFETY: m.vol and dir_ino are live while the lock is held.
    let securid = unsafe { sys::tasq_ntfs_inherited_id(m.vol, dir_ino.0, dir as c_int) };
    discard_log();
    let mode = if dir {
        sys::libc::S_IFDIR
    } else {
        sys::libc::S_IFREG
    };
    // SAFETY: dir_ino is open; the name lives for the call and its length
    // fits in u8 (units()).
    let ni = unsafe { sys::ntfs_create(dir_ino.0, securid, name.as_ptr(), name.len() as u8, mode) };
    if ni.is_null() {
        return Err(last_error("cannot create", m.fault()));
    }
    let ino = Ino(ni);
    let mft = ino.mft_no();
    // libntfs-3g marks directories ARCHIVE too; Windows does not.
    let r = if dir {
        set_attributes(&ino, FILE_ATTRIBUTE_DIRECTORY)
    } else {
        Ok(())
    };
    // SAFETY: both inodes are open; close_in_dir closes `ino` only.
    let closed = unsafe { sys::ntfs_inode_close_in_dir(ino.into_raw(), dir_ino.0) } == 0;
    r?;
    if !closed || !dir_ino.close() {
        return Err(last_error("cannot write the new entry", m.fault()));
    }
    Ok(mft)
}

/// Reads everything from `data` into the unnamed data stream of `mft`.
fn fill(m: &Mounted, mft: u64, data: &mut dyn Read) -> Result<u64, String> {
    let ino = open(m, mft)?;
    let attr = Attr::open(&ino, sys::AT_DATA, &[])
        .ok_or_else(|| last_error("cannot open the data stream", m.fault()))?;
    let mut buf = vec![0u8; CHUNK];
    let mut pos = 0u64;
    loop {
        let n = match data.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("reading the data to write: {e}")),
        };
        pwrite_all(m, &attr, pos, buf.get(..n).unwrap_or_default())?;
        pos += n as u64;
    }
    // SAFETY: attr is open on the locked volume; pclose flushes the last
    // compression block of a compressed attribute (a no-op otherwise).
    if attr.is_compressed() && unsafe { sys::ntfs_attr_pclose(attr.0) } != 0 {
        return Err(last_error("cannot finish the data stream", m.fault()));
    }
    drop(attr);
    if !ino.close() {
        return Err(last_error("cannot write the file record", m.fault()));
    }
    Ok(pos)
}

fn read_all(m: &Mounted, mft: u64, limit: u64) -> Result<Vec<u8>, String> {
    let ino = open(m, mft)?;
    let attr = Attr::open(&ino, sys::AT_DATA, &[])
        .ok_or_else(|| last_error("cannot open the data stream", m.fault()))?;
    let size = attr.data_size();
    if size > limit {
        return Err(format!("{size} bytes, more than the {limit} allowed"));
    }
    let len = usize::try_from(size).map_err(|_| "the file is too large".to_string())?;
    let mut out = vec![0u8; len];
    let mut pos = 0usize;
    while pos < len {
        let rest = out.get_mut(pos..).unwrap_or_default();
        // SAFETY: attr is open on the locked volume; `rest` is writable
        // for its length.
        let r = unsafe {
            sys::ntfs_attr_pread(
                attr.0,
                pos as i64,
                rest.len() as i64,
                rest.as_mut_ptr().cast(),
            )
        };
        if r <= 0 {
            return Err(last_error(&format!("read at {pos} failed"), m.fault()));
        }
        pos += (r as usize).min(rest.len());
    }
    Ok(out)
}

/// Removes everything inside directory `mft` (not the directory itself).
fn empty_dir(m: &Mounted, mft: u64, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("directories nested deeper than {MAX_DEPTH}"));
    }
    let entries = read_dir(m, &open(m, mft)?)?;
    for e in entries {
        // The DOS name of a file goes with its Win32 name.
        if is_dot(&e.name) || e.name_type == sys::FILE_NAME_DOS || e.mft < sys::FILE_first_user {
            continue;
        }
        let child = {
            let ino = open(m, e.mft)?;
            Node {
                mft: e.mft,
                attrs: attributes(m, &ino)?,
            }
        };
        if child.is_dir() && !child.is_reparse() {
            empty_dir(m, child.mft, depth + 1)?;
        }
        unlink(m, mft, child.mft, &e.name)
            .map_err(|r| format!("{}: {r}", String::from_utf16_lossy(&e.name)))?;
    }
    Ok(())
}

impl NtfsFs {
    /// Mounts the NTFS volume of `size` bytes at `offset` of `image` (a
    /// disk image, a volume image or a block device).
    pub fn open(image: &Path, offset: u64, size: u64, writable: bool) -> FsResult<NtfsFs> {
        let vol = NtfsVolume::open(image, offset, size, writable).map_err(|e| {
            FsError::new(
                format!("NTFS volume in {} at offset {offset}", image.display()),
                "opening",
                VolPath::root(),
                e.to_string(),
            )
        })?;
        Ok(NtfsFs {
            desc: vol.describe().to_string(),
            vol: Some(vol),
            image: image.to_path_buf(),
            offset,
            size,
            writable,
        })
    }

    /// Unmounts, reporting whether everything reached the disk.
    pub fn close(mut self) -> FsResult<()> {
        match self.vol.take() {
            Some(v) => v
                .close()
                .map_err(|e| FsError::new(&self.desc, "closing", VolPath::root(), e.to_string())),
            None => Ok(()),
        }
    }

    fn err(&self, op: &'static str, path: &VolPath, reason: impl Into<String>) -> FsError {
        FsError::new(&self.desc, op, path, reason)
    }

    fn vol(&self, op: &'static str, path: &VolPath) -> FsResult<&NtfsVolume> {
        self.vol
            .as_ref()
            .ok_or_else(|| self.err(op, path, "the volume could not be mounted again"))
    }

    fn check_writable(&self, op: &'static str, path: &VolPath) -> FsResult<()> {
        if !self.writable {
            return Err(self.err(op, path, "the volume is open read-only"));
        }
        Ok(())
    }

    /// Resolves the components of `path` one by one, returning the nodes
    /// found, which stop at the first missing component. Every node that
    /// is walked through must be a directory that is not a reparse point.
    fn walk(&self, m: &Mounted, op: &'static str, path: &VolPath) -> FsResult<Vec<Node>> {
        let mut chain = Vec::new();
        let mut cur = ROOT;
        let mut cur_name = "\\";
        for c in path.components() {
            if cur.is_reparse() {
                return Err(self.err(
                    op,
                    path,
                    format!("{cur_name:?} is a reparse point (junction or link), not followed"),
                ));
            }
            if !cur.is_dir() {
                return Err(self.err(op, path, format!("{cur_name:?} is not a directory")));
            }
            let name = units(c).map_err(|r| self.err(op, path, r))?;
            let dir = open(m, cur.mft).map_err(|r| self.err(op, path, r))?;
            let Some(mft) = lookup(m, &dir, &name).map_err(|r| self.err(op, path, r))? else {
                return Ok(chain);
            };
            if mft < sys::FILE_first_user {
                return Err(self.err(op, path, format!("{c:?} is an NTFS metadata file")));
            }
            let ino = open(m, mft).map_err(|r| self.err(op, path, r))?;
            cur = Node {
                mft,
                attrs: attributes(m, &ino).map_err(|r| self.err(op, path, r))?,
            };
            chain.push(cur);
            cur_name = c;
        }
        Ok(chain)
    }

    /// The node at `path`, `None` if missing.
    fn resolve(&self, m: &Mounted, op: &'static str, path: &VolPath) -> FsResult<Option<Node>> {
        if path.is_root() {
            return Ok(Some(ROOT));
        }
        let chain = self.walk(m, op, path)?;
        Ok(if chain.len() == path.components().len() {
            chain.last().copied()
        } else {
            None
        })
    }

    /// Creates the directories of `path` that are missing; returns the
    /// record of the last one.
    fn mkdirs(&self, m: &Mounted, op: &'static str, path: &VolPath) -> FsResult<u64> {
        let chain = self.walk(m, op, path)?;
        let mut cur = chain.last().copied().unwrap_or(ROOT);
        if cur.is_reparse() || !cur.is_dir() {
            let name = path
                .components()
                .get(chain.len().saturating_sub(1))
                .map(String::as_str)
                .unwrap_or("\\");
            let what = if cur.is_reparse() {
                "is a reparse point (junction or link), not followed"
            } else {
                "is a file, not a directory"
            };
            return Err(self.err(op, path, format!("{name:?} {what}")));
        }
        for c in path.components().iter().skip(chain.len()) {
            let name = units(c).map_err(|r| self.err(op, path, r))?;
            let mft = create(m, cur.mft, &name, true)
                .map_err(|r| self.err(op, path, format!("{c:?}: {r}")))?;
            cur = Node {
                mft,
                attrs: FILE_ATTRIBUTE_DIRECTORY,
            };
        }
        Ok(cur.mft)
    }

    /// write_file with the lock held.
    fn write_locked(&self, m: &Mounted, path: &VolPath, data: &mut dyn Read) -> FsResult<u64> {
        const OP: &str = "writing";
        let (Some(parent), Some(leaf)) = (path.parent(), path.file_name()) else {
            return Err(self.err(OP, path, "the root is not a file"));
        };
        let name = units(leaf).map_err(|r| self.err(OP, path, r))?;
        let dir_mft = self.mkdirs(m, OP, &parent)?;
        let e = |r: String| self.err(OP, path, r);
        let old = match lookup_in(m, dir_mft, &name).map_err(e)? {
            None => None,
            Some(mft) if mft < sys::FILE_first_user => {
                return Err(e(format!("{leaf:?} is an NTFS metadata file")))
            }
            Some(mft) => {
                let ino = open(m, mft).map_err(e)?;
                let node = Node {
                    mft,
                    attrs: attributes(m, &ino).map_err(e)?,
                };
                match node.kind() {
                    EntryKind::File => Some(mft),
                    EntryKind::Dir => return Err(e("a directory is in the way".into())),
                    EntryKind::Other => {
                        return Err(e("a reparse point (junction or link) is in the way".into()))
                    }
                }
            }
        };
        // The new content goes under a temporary name first.
        let tmp = loop {
            let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
            let t: Vec<u16> = format!("~tasq{}-{n}.tmp", std::process::id())
                .encode_utf16()
                .collect();
            if lookup_in(m, dir_mft, &t).map_err(e)?.is_none() {
                break t;
            }
        };
        let tmp_mft = create(m, dir_mft, &tmp, false).map_err(e)?;
        let written = match fill(m, tmp_mft, data) {
            Ok(n) => n,
            Err(r) => {
                let cleanup = unlink(m, dir_mft, tmp_mft, &tmp)
                    .err()
                    .map(|c| format!(" (and the temporary file could not be removed: {c})"))
                    .unwrap_or_default();
                return Err(e(format!("{r}{cleanup}")));
            }
        };
        // The replacement keeps the old file's name as stored (its case),
        // as Windows does when a file is overwritten.
        let name = match old {
            Some(old) => {
                let stored = stored_name(m, dir_mft, old, &name).map_err(e)?;
                unlink(m, dir_mft, old, &stored)
                    .map_err(|r| e(format!("removing the old file: {r}")))?;
                stored
            }
            None => name,
        };
        link(m, dir_mft, tmp_mft, &name).map_err(e)?;
        unlink(m, dir_mft, tmp_mft, &tmp)
            .map_err(|r| e(format!("removing the temporary name: {r}")))?;
        Ok(written)
    }
}

impl VolumeFs for NtfsFs {
    fn describe(&self) -> String {
        self.desc.clone()
    }

    fn metadata(&mut self, path: &VolPath) -> FsResult<Option<FsEntry>> {
        let vol = self.vol("reading", path)?;
        let m = vol.lock();
        let Some(node) = self.resolve(&m, "reading", path)? else {
            return Ok(None);
        };
        let size = if node.kind() == EntryKind::File {
            let ino = open(&m, node.mft).map_err(|r| self.err("reading", path, r))?;
            Attr::open(&ino, sys::AT_DATA, &[])
                .map(|a| a.data_size())
                .unwrap_or(0)
        } else {
            0
        };
        Ok(Some(FsEntry {
            name: path.file_name().unwrap_or("").to_string(),
            kind: node.kind(),
            size,
        }))
    }

    fn read_dir(&mut self, path: &VolPath) -> FsResult<Vec<FsEntry>> {
        const OP: &str = "listing";
        let vol = self.vol(OP, path)?;
        let m = vol.lock();
        let e = |r: String| self.err(OP, path, r);
        let node = self
            .resolve(&m, OP, path)?
            .ok_or_else(|| e("no such directory".into()))?;
        match node.kind() {
            EntryKind::Dir => {}
            EntryKind::File => return Err(e("not a directory".into())),
            EntryKind::Other => {
                return Err(e("a reparse point (junction or link), not followed".into()))
            }
        }
        let dir = open(&m, node.mft).map_err(e)?;
        let mut out = Vec::new();
        for d in read_dir(&m, &dir).map_err(e)? {
            if is_dot(&d.name) || d.name_type == sys::FILE_NAME_DOS || d.mft < sys::FILE_first_user
            {
                continue;
            }
            // Names that are not valid UTF-16 cannot be named by a VolPath.
            let Ok(name) = String::from_utf16(&d.name) else {
                continue;
            };
            let ino = open(&m, d.mft).map_err(e)?;
            let child = Node {
                mft: d.mft,
                attrs: attributes(&m, &ino).map_err(e)?,
            };
            let size = if child.kind() == EntryKind::File {
                Attr::open(&ino, sys::AT_DATA, &[])
                    .map(|a| a.data_size())
                    .unwrap_or(0)
            } else {
                0
            };
            out.push(FsEntry {
                name,
                kind: child.kind(),
                size,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn create_dir_all(&mut self, path: &VolPath) -> FsResult<()> {
        self.check_writable("creating", path)?;
        let vol = self.vol("creating", path)?;
        let m = vol.lock();
        self.mkdirs(&m, "creating", path).map(|_| ())
    }

    fn write_file(&mut self, path: &VolPath, data: &mut dyn Read) -> FsResult<u64> {
        self.check_writable("writing", path)?;
        let vol = self.vol("writing", path)?;
        let m = vol.lock();
        self.write_locked(&m, path, data)
    }

    fn read_file(&mut self, path: &VolPath, limit: u64) -> FsResult<Vec<u8>> {
        const OP: &str = "reading";
        let vol = self.vol(OP, path)?;
        let m = vol.lock();
        let node = self
            .resolve(&m, OP, path)?
            .ok_or_else(|| self.err(OP, path, "no such file"))?;
        match node.kind() {
            EntryKind::File => read_all(&m, node.mft, limit).map_err(|r| self.err(OP, path, r)),
            EntryKind::Dir => Err(self.err(OP, path, "a directory, not a file")),
            EntryKind::Other => {
                Err(self.err(OP, path, "a reparse point (junction or link), not followed"))
            }
        }
    }

    fn remove(&mut self, path: &VolPath) -> FsResult<()> {
        const OP: &str = "removing";
        self.check_writable(OP, path)?;
        let Some(leaf) = path.file_name() else {
            return Err(self.err(OP, path, "the root cannot be removed"));
        };
        let vol = self.vol(OP, path)?;
        let m = vol.lock();
        let e = |r: String| self.err(OP, path, r);
        let chain = self.walk(&m, OP, path)?;
        if chain.len() < path.components().len() {
            return Ok(());
        }
        let (Some(node), parent_node) = (chain.last().copied(), chain.iter().rev().nth(1)) else {
            return Ok(());
        };
        let parent_mft = parent_node.map(|n| n.mft).unwrap_or(sys::FILE_root);
        // A reparse point is removed itself, never what it points to.
        if node.kind() == EntryKind::Dir {
            empty_dir(&m, node.mft, 0).map_err(e)?;
        }
        let name = units(leaf).map_err(e)?;
        let stored = stored_name(&m, parent_mft, node.mft, &name).map_err(e)?;
        unlink(&m, parent_mft, node.mft, &stored).map_err(e)
    }

    fn free_space(&mut self) -> FsResult<u64> {
        let root = VolPath::root();
        let vol = self.vol("measuring", &root)?;
        vol.info()
            .map(|i| i.free_bytes)
            .map_err(|e| self.err("measuring", &root, e.to_string()))
    }

    fn flush(&mut self) -> FsResult<()> {
        let root = VolPath::root();
        let closed = match self.vol.take() {
            Some(v) => v
                .close()
                .map_err(|e| self.err("flushing", &root, e.to_string())),
            None => Ok(()),
        };
        let reopened = NtfsVolume::open(&self.image, self.offset, self.size, self.writable)
            .map_err(|e| self.err("mounting again", &root, e.to_string()))?;
        self.vol = Some(reopened);
        closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_for_ntfs_limits() {
        assert_eq!(units("abc").unwrap(), [97, 98, 99]);
        // 255 units is the most; astral characters count two units.
        assert!(units(&"x".repeat(255)).is_ok());
        assert!(units(&"😀".repeat(127)).is_ok());
        assert!(units(&"😀".repeat(128)).is_err());
        assert!(units("").is_err());
    }

    #[test]
    fn node_kinds_follow_the_attributes() {
        let n = |attrs| Node { mft: 20, attrs };
        assert_eq!(n(0x20).kind(), EntryKind::File);
        assert_eq!(n(FILE_ATTRIBUTE_DIRECTORY).kind(), EntryKind::Dir);
        // A junction is a directory with a reparse point: never a Dir.
        assert_eq!(
            n(FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_REPARSE_POINT).kind(),
            EntryKind::Other
        );
        assert_eq!(n(FILE_ATTRIBUTE_REPARSE_POINT).kind(), EntryKind::Other);
    }

    #[test]
    fn opening_garbage_is_an_error_naming_the_volume() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), vec![0u8; 1 << 20]).unwrap();
        let e = NtfsFs::open(f.path(), 4096, 65536, true)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("offset 4096") && e.contains("NTFS"), "{e}");
    }
}
