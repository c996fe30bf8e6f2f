//! Apply of an image onto an NTFS volume (normally one just made by
//! `mkntfs`), following the order of the [`ApplyTarget`] seam:
//!
//! - directories and files are created with `ntfs_create` (POSIX
//!   namespace, as wimlib does) and get their attributes at once, so that
//!   a compressed directory compresses what is created in it;
//! - further names with `ntfs_link`;
//! - data streams with `ntfs_attr_add` (named) and `ntfs_attr_pwrite`;
//!   space is preallocated for plain attributes, and the zero blocks of a
//!   sparse file are left as holes;
//! - reparse points with `ntfs_set_ntfs_reparse_data`;
//! - per entry, last: the short name (`ntfs_set_ntfs_dos_name`), object id,
//!   attributes, security descriptor (`ntfs_set_ntfs_acl`) and the three
//!   times (`ntfs_inode_set_times`). Children come before parents, so the
//!   directory changes a short name makes are overwritten by the parent's
//!   own times afterwards.
//!
//! [`apply_image_to_ntfs`] checks that the volume has room for the image
//! before anything is written.

use std::collections::{HashMap, HashSet};
use std::io;

use ntfs3g_sys as sys;
use tasq_wim::apply::{ApplyEntry, ApplyOptions, ApplyProgress, ApplyTarget, WimPath};
use tasq_wim::image::{ImageTree, Stream, FILE_ATTRIBUTE_SPARSE_FILE};
use tasq_wim::reader::Wim;
use tasq_wim::reparse::REPARSE_POINT_MAX_SIZE;
use tasq_wim::{Result, WimError};

use super::capture::find_object_id;
use super::{last_error, on_volume, Attr, Ino, Mounted, NtfsVolume};

/// Longest file name NTFS stores, in UTF-16 units.
const MAX_NAME_UNITS: usize = 255;
/// Granule of hole detection in sparse files.
const SPARSE_BLOCK: usize = 4096;

/// A stream being written.
struct OpenStream {
    // Field order: the attribute is closed before its inode.
    attr: Attr,
    ino: Ino,
    path: String,
    written: u64,
    size: u64,
    sparse: bool,
}

/// A non-directory whose creation waits for all its names.
/// No MFT record (yet) for an entry id.
const NO_RECORD: u64 = u64::MAX;

/// The name of the last component as UTF-16, checked for NTFS's limit.
fn name_units(path: &WimPath) -> Result<Vec<u16>> {
    let name = path.file_name().ok_or_else(|| apply_err(path, "no name"))?;
    let units: Vec<u16> = name.encode_utf16().collect();
    if units.len() > MAX_NAME_UNITS {
        return Err(apply_err(path, "name longer than 255 UTF-16 units"));
    }
    Ok(units)
}

/// An NTFS volume, mounted writable, as an apply target. Owns the volume
/// so that [`finish`](ApplyTarget::finish) can unmount it and report
/// whether everything reached the disk.
pub struct NtfsTarget {
    vol: Option<NtfsVolume>,
    /// MFT record of each created entry, by entry id (`NO_RECORD`: none).
    records: Vec<u64>,
    /// Directories by path → MFT record, for finding an entry's parent.
    /// (Only directories: a map of every file's path cost megabytes.)
    dirs: HashMap<WimPath, u64>,
    current: Option<OpenStream>,
    /// Records of files whose image inode is sparse: their zero blocks
    /// are left as holes.
    sparse: HashSet<u64>,
    warnings: Vec<String>,
}

fn apply_err(path: &impl std::fmt::Display, reason: impl Into<String>) -> WimError {
    WimError::Apply {
        path: path.to_string(),
        reason: reason.into(),
    }
}

impl NtfsTarget {
    /// A target on `vol`, which must be writable.
    pub fn new(vol: NtfsVolume) -> Result<Self> {
        if !vol.is_writable() {
            return Err(WimError::InvalidArgument(format!(
                "{} is mounted read-only",
                vol.describe()
            )));
        }
        Ok(NtfsTarget {
            vol: Some(vol),
            records: Vec::new(),
            dirs: HashMap::new(),
            current: None,
            sparse: HashSet::new(),
            warnings: Vec::new(),
        })
    }

    /// Non-fatal problems (duplicate object ids, ...).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The volume, until `finish` unmounts it.
    pub fn volume(&self) -> Option<&NtfsVolume> {
        self.vol.as_ref()
    }

    fn vol(&self) -> Result<&NtfsVolume> {
        self.vol
            .as_ref()
            .ok_or_else(|| WimError::InvalidArgument("the NTFS target is already finished".into()))
    }

    /// The MFT record created for `entry`.
    fn mft_of(&self, entry: &ApplyEntry) -> Result<u64> {
        self.records
            .get(entry.id)
            .copied()
            .filter(|&r| r != NO_RECORD)
            .ok_or_else(|| apply_err(entry.path, "not created yet"))
    }

    fn set_record(&mut self, id: usize, mft: u64) {
        if id >= self.records.len() {
            self.records.resize(id + 1, NO_RECORD);
        }
        self.records[id] = mft;
    }

    fn parent_of(&self, p: &WimPath) -> Result<u64> {
        let parent = p
            .parent()
            .ok_or_else(|| apply_err(p, "the root has no parent"))?;
        self.dirs
            .get(&parent)
            .copied()
            .ok_or_else(|| apply_err(p, "its directory was not created"))
    }

    /// Creates `path` in its parent directory with `ntfs_create` and gives
    /// it its attributes at once.
    fn create(&mut self, path: &WimPath, attributes: u32, mode: sys::libc::mode_t) -> Result<u64> {
        let name16 = name_units(path)?;
        let parent = self.parent_of(path)?;
        let vol = self.vol()?;
        let m = vol.lock();
        let dir = Ino::open(&m, parent)
            .ok_or_else(|| apply_err(path, last_error("cannot open the parent", m.fault())))?;
        // SAFETY: dir is open on the locked volume; the name lives for
        // the call and its length fits in u8 (checked by name_units).
        let ni = unsafe { sys::ntfs_create(dir.0, 0, name16.as_ptr(), name16.len() as u8, mode) };
        if ni.is_null() {
            return Err(apply_err(path, last_error("cannot create", m.fault())));
        }
        let ino = Ino(ni);
        let mft = ino.mft_no();
        let r = set_attributes(&ino, attributes);
        // SAFETY: both inodes are open; close_in_dir closes `ino` only.
        let closed = unsafe { sys::ntfs_inode_close_in_dir(ino.into_raw(), dir.0) } == 0;
        r.map_err(|e| apply_err(path, e))?;
        if !closed {
            return Err(apply_err(
                path,
                last_error("cannot write the new file", m.fault()),
            ));
        }
        if !dir.close() {
            return Err(apply_err(
                path,
                last_error("cannot write the parent", m.fault()),
            ));
        }
        drop(m);
        if attributes & FILE_ATTRIBUTE_SPARSE_FILE != 0 {
            self.sparse.insert(mft);
        }
        Ok(mft)
    }

    /// Gives the file at `path` (which must have no other name yet: the
    /// library refuses short names on files with several links) its short
    /// name. The call rewrites the long name in the Win32 namespace.
    fn set_short_name(&mut self, mft: u64, path: &WimPath, short: &[u16]) -> Result<()> {
        let short = String::from_utf16(short)
            .map_err(|_| apply_err(path, "short name is not valid UTF-16"))?;
        let parent = self.parent_of(path)?;
        let vol = self.vol()?;
        let m = vol.lock();
        let ino = Ino::open(&m, mft)
            .ok_or_else(|| apply_err(path, last_error("cannot open", m.fault())))?;
        let dir = Ino::open(&m, parent)
            .ok_or_else(|| apply_err(path, last_error("cannot open the parent", m.fault())))?;
        // SAFETY: both are open; the call closes both, whatever it returns.
        let r = unsafe {
            sys::ntfs_set_ntfs_dos_name(
                ino.into_raw(),
                dir.into_raw(),
                short.as_ptr().cast(),
                short.len(),
                0,
            )
        };
        if r != 0 {
            return Err(apply_err(
                path,
                last_error(&format!("cannot set short name {short:?}"), m.fault()),
            ));
        }
        Ok(())
    }

    /// Adds `path` as a name of record `mft`.
    fn link(&mut self, mft: u64, path: &WimPath) -> Result<()> {
        let name16 = name_units(path)?;
        let parent = self.parent_of(path)?;
        let vol = self.vol()?;
        let m = vol.lock();
        let ino = Ino::open(&m, mft)
            .ok_or_else(|| apply_err(path, last_error("cannot open", m.fault())))?;
        let dir = Ino::open(&m, parent)
            .ok_or_else(|| apply_err(path, last_error("cannot open the parent", m.fault())))?;
        // SAFETY: both inodes are open; the name lives for the call.
        if unsafe { sys::ntfs_link(ino.0, dir.0, name16.as_ptr(), name16.len() as u8) } != 0 {
            return Err(apply_err(path, last_error("cannot link", m.fault())));
        }
        if !dir.close() || !ino.close() {
            return Err(apply_err(
                path,
                last_error("cannot write the link", m.fault()),
            ));
        }
        Ok(())
    }

    fn close_current(&mut self) -> Result<()> {
        let Some(s) = self.current.take() else {
            return Ok(());
        };
        let vol = self.vol()?;
        let m = vol.lock();
        let OpenStream {
            attr,
            ino,
            path,
            written,
            size,
            sparse,
        } = s;
        if written != size {
            return Err(apply_err(
                &path,
                format!("stream got {written} bytes, expected {size}"),
            ));
        }
        // SAFETY: attr is open on the locked volume.
        if sparse && unsafe { sys::ntfs_attr_truncate(attr.0, size as i64) } != 0 {
            return Err(apply_err(
                &path,
                last_error("cannot extend the sparse stream", m.fault()),
            ));
        }
        // SAFETY: as above; pclose flushes compressed blocks.
        if unsafe { sys::ntfs_attr_pclose(attr.0) } != 0 {
            return Err(apply_err(
                &path,
                last_error("cannot finish the stream", m.fault()),
            ));
        }
        drop(attr);
        if !ino.close() {
            return Err(apply_err(
                &path,
                last_error("cannot write the file", m.fault()),
            ));
        }
        Ok(())
    }
}

pub(crate) fn set_attributes(ino: &Ino, attributes: u32) -> std::result::Result<(), String> {
    let a = attributes.to_le_bytes();
    // SAFETY: ino is open; the value is the 4 bytes given.
    if unsafe { sys::ntfs_set_ntfs_attrib(ino.0, a.as_ptr().cast(), 4, 0) } != 0 {
        return Err(last_error("cannot set the attributes", None));
    }
    Ok(())
}

/// Writes all of `data` at `pos`.
pub(crate) fn pwrite_all(
    m: &Mounted,
    attr: &Attr,
    mut pos: u64,
    mut data: &[u8],
) -> std::result::Result<(), String> {
    while !data.is_empty() {
        // SAFETY: attr is open on the locked volume; data is readable.
        let r = unsafe {
            sys::ntfs_attr_pwrite(attr.0, pos as i64, data.len() as i64, data.as_ptr().cast())
        };
        if r <= 0 {
            return Err(last_error(&format!("write at {pos} failed"), m.fault()));
        }
        let n = (r as usize).min(data.len());
        pos += n as u64;
        data = &data[n..];
    }
    Ok(())
}

impl ApplyTarget for NtfsTarget {
    fn describe(&self) -> String {
        self.vol
            .as_ref()
            .map(|v| v.describe().to_string())
            .unwrap_or_else(|| "NTFS volume (finished)".into())
    }

    fn create_directory(&mut self, entry: &ApplyEntry) -> Result<()> {
        if entry.path.is_root() {
            self.dirs.insert(WimPath::root(), sys::FILE_root);
            self.set_record(entry.id, sys::FILE_root);
            let vol = self.vol()?;
            let m = vol.lock();
            let ino = Ino::open(&m, sys::FILE_root).ok_or_else(|| {
                apply_err(entry.path, last_error("cannot open the root", m.fault()))
            })?;
            set_attributes(&ino, entry.inode.attributes).map_err(|e| apply_err(entry.path, e))?;
            if !ino.close() {
                return Err(apply_err(
                    entry.path,
                    last_error("cannot write the root", m.fault()),
                ));
            }
            return Ok(());
        }
        let mft = self.create(entry.path, entry.inode.attributes, sys::libc::S_IFDIR)?;
        self.dirs.insert(entry.path.clone(), mft);
        self.set_record(entry.id, mft);
        if !entry.short_name.is_empty() {
            self.set_short_name(mft, entry.path, entry.short_name)?;
        }
        Ok(())
    }

    fn create_file(&mut self, entry: &ApplyEntry) -> Result<()> {
        if self.records.get(entry.id).is_some_and(|&r| r != NO_RECORD) {
            return Err(apply_err(entry.path, "created twice"));
        }
        // The applier gives the name with a short name here, when one has
        // (a short name can only be set while a file has a single name);
        // the other names come to create_hard_link.
        let mft = self.create(entry.path, entry.inode.attributes, sys::libc::S_IFREG)?;
        self.set_record(entry.id, mft);
        if !entry.short_name.is_empty() {
            self.set_short_name(mft, entry.path, entry.short_name)?;
        }
        Ok(())
    }

    fn create_hard_link(&mut self, existing: &ApplyEntry, entry: &ApplyEntry) -> Result<()> {
        let mft = self.mft_of(existing)?;
        if !entry.short_name.is_empty() {
            return Err(apply_err(
                entry.path,
                "cannot give a short name to a second link",
            ));
        }
        self.link(mft, entry.path)?;
        self.set_record(entry.id, mft);
        Ok(())
    }

    fn begin_stream(&mut self, entry: &ApplyEntry, stream: &Stream) -> Result<()> {
        let path = entry.path;
        if self.current.is_some() {
            return Err(apply_err(path, "two streams open at once"));
        }
        let mft = self.mft_of(entry)?;
        let vol = self.vol()?;
        let m = vol.lock();
        let ino = Ino::open(&m, mft)
            .ok_or_else(|| apply_err(path, last_error("cannot open", m.fault())))?;
        let mut name = stream.name.clone();
        if !name.is_empty() {
            if name.len() > MAX_NAME_UNITS {
                return Err(apply_err(path, "stream name longer than 255 UTF-16 units"));
            }
            // SAFETY: ino is open; the library copies the name.
            let r = unsafe {
                sys::ntfs_attr_add(
                    ino.0,
                    sys::AT_DATA,
                    name.as_mut_ptr(),
                    name.len() as u8,
                    std::ptr::null(),
                    0,
                )
            };
            if r != 0 {
                return Err(apply_err(
                    path,
                    last_error(
                        &format!("cannot add stream {:?}", stream.name_string()),
                        m.fault(),
                    ),
                ));
            }
        }
        let attr = Attr::open(&ino, sys::AT_DATA, &name)
            .ok_or_else(|| apply_err(path, last_error("cannot open the data stream", m.fault())))?;
        let sparse_wanted = self.sparse.contains(&mft);
        let mut sparse = false;
        if !attr.is_compressed() {
            if sparse_wanted {
                sparse = true;
            } else if stream.size > 0 {
                // Preallocate in one run; failure is not fatal (writes
                // will allocate), but a full volume will fail there.
                // SAFETY: attr is open on the locked volume.
                unsafe { sys::ntfs_attr_truncate_solid(attr.0, stream.size as i64) };
                super::discard_log();
            }
        }
        drop(m);
        self.current = Some(OpenStream {
            attr,
            ino,
            path: path.to_string(),
            written: 0,
            size: stream.size,
            sparse,
        });
        Ok(())
    }

    fn write_stream(&mut self, data: &[u8]) -> Result<()> {
        let vol = self
            .vol
            .as_ref()
            .ok_or_else(|| apply_err(&"?", "target finished"))?;
        let s = self
            .current
            .as_mut()
            .ok_or_else(|| apply_err(&"?", "write without an open stream"))?;
        if s.written + data.len() as u64 > s.size {
            return Err(apply_err(&s.path, "more data than the stream's size"));
        }
        let m = vol.lock();
        if s.sparse {
            // Write only the blocks that are not all zero; the final
            // truncate gives the file its size with holes in between.
            let mut off = 0usize;
            while off < data.len() {
                let abs = s.written + off as u64;
                let to_boundary = SPARSE_BLOCK - (abs % SPARSE_BLOCK as u64) as usize;
                let end = (off + to_boundary).min(data.len());
                let piece = &data[off..end];
                if piece.iter().any(|&b| b != 0) {
                    pwrite_all(&m, &s.attr, abs, piece).map_err(|e| apply_err(&s.path, e))?;
                }
                off = end;
            }
        } else {
            pwrite_all(&m, &s.attr, s.written, data).map_err(|e| apply_err(&s.path, e))?;
        }
        s.written += data.len() as u64;
        Ok(())
    }

    fn end_stream(&mut self) -> Result<()> {
        if self.current.is_none() {
            return Err(apply_err(&"?", "end without an open stream"));
        }
        self.close_current()
    }

    fn set_reparse_point(&mut self, entry: &ApplyEntry, data: &[u8]) -> Result<()> {
        if data.len() + 8 > REPARSE_POINT_MAX_SIZE {
            return Err(apply_err(
                entry.path,
                format!("reparse data of {} bytes", data.len()),
            ));
        }
        let mut buf = Vec::with_capacity(8 + data.len());
        buf.extend_from_slice(&entry.inode.reparse_tag.to_le_bytes());
        buf.extend_from_slice(&(data.len() as u16).to_le_bytes());
        buf.extend_from_slice(&entry.inode.rp_reserved.to_le_bytes());
        buf.extend_from_slice(data);
        let mft = self.mft_of(entry)?;
        let vol = self.vol()?;
        let m = vol.lock();
        let ino = Ino::open(&m, mft)
            .ok_or_else(|| apply_err(entry.path, last_error("cannot open", m.fault())))?;
        // SAFETY: ino is open; buf holds buf.len() bytes.
        if unsafe { sys::ntfs_set_ntfs_reparse_data(ino.0, buf.as_ptr().cast(), buf.len(), 0) } != 0
        {
            return Err(apply_err(
                entry.path,
                last_error(
                    &format!("cannot set reparse tag {:#x}", entry.inode.reparse_tag),
                    m.fault(),
                ),
            ));
        }
        if !ino.close() {
            return Err(apply_err(
                entry.path,
                last_error("cannot write the reparse point", m.fault()),
            ));
        }
        Ok(())
    }

    fn set_metadata(&mut self, entry: &ApplyEntry) -> Result<()> {
        let mft = self.mft_of(entry)?;
        let vol = self
            .vol
            .as_ref()
            .ok_or_else(|| apply_err(entry.path, "target finished"))?;
        let m = vol.lock();
        let ino = Ino::open(&m, mft)
            .ok_or_else(|| apply_err(entry.path, last_error("cannot open", m.fault())))?;
        // Object id.
        if let Some(oid) = find_object_id(&entry.inode.extra) {
            // SAFETY: ino is open; oid is readable for its length.
            if unsafe { sys::ntfs_set_ntfs_object_id(ino.0, oid.as_ptr().cast(), oid.len(), 0) }
                != 0
            {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(sys::libc::EEXIST) {
                    super::discard_log();
                    self.warnings
                        .push(format!("{}: duplicate object id", entry.path));
                } else {
                    return Err(apply_err(
                        entry.path,
                        last_error("cannot set the object id", m.fault()),
                    ));
                }
            }
        }
        // Attributes (again: reparse and sparse flags were set by the
        // library meanwhile; the library keeps those it manages).
        set_attributes(&ino, entry.inode.attributes).map_err(|e| apply_err(entry.path, e))?;
        // Security descriptor.
        if let Some(sd) = entry.security_descriptor {
            // SAFETY: ino is open on m.vol; sd is readable for its length.
            if unsafe { sys::tasq_ntfs_set_acl(m.vol, ino.0, sd.as_ptr().cast(), sd.len()) } != 0 {
                return Err(apply_err(
                    entry.path,
                    last_error(
                        "cannot set the security descriptor (libntfs-3g found it invalid?)",
                        m.fault(),
                    ),
                ));
            }
        }
        // Times, last.
        let mut t = [0u8; 24];
        t[0..8].copy_from_slice(&entry.inode.creation_time.to_le_bytes());
        t[8..16].copy_from_slice(&entry.inode.last_write_time.to_le_bytes());
        t[16..24].copy_from_slice(&entry.inode.last_access_time.to_le_bytes());
        // SAFETY: ino is open; t holds 24 bytes.
        if unsafe { sys::ntfs_inode_set_times(ino.0, t.as_ptr().cast(), 24, 0) } != 0 {
            return Err(apply_err(
                entry.path,
                last_error("cannot set the times", m.fault()),
            ));
        }
        if !ino.close() {
            return Err(apply_err(
                entry.path,
                last_error("cannot write the metadata", m.fault()),
            ));
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.close_current()?;
        match self.vol.take() {
            Some(v) => v.close(),
            None => Ok(()),
        }
    }
}

/// Bytes an image needs on an NTFS volume with `cluster`-byte clusters:
/// each inode's streams rounded up to clusters (small ones may fit in the
/// MFT record, counted anyway), plus one MFT record per inode. Hard links
/// and identical content are not shared on disk, so each inode counts.
pub fn space_needed(tree: &ImageTree, cluster: u64, mft_record: u64) -> u64 {
    let cluster = cluster.max(1);
    let links = tree.link_counts();
    let mut total = 0u64;
    for (i, inode) in tree.inodes.iter().enumerate() {
        if links.get(i).copied().unwrap_or(0) == 0 {
            continue;
        }
        total = total.saturating_add(mft_record);
        for s in &inode.streams {
            let rounded = s.size.div_ceil(cluster).saturating_mul(cluster);
            total = total.saturating_add(rounded);
        }
    }
    total
}

/// Applies image `n` of `wim` onto `vol` (mounted writable), first
/// checking that the volume's free space holds the image; a volume too
/// small is refused before anything is written. Unmounts at the end.
pub fn apply_image_to_ntfs(
    wim: &Wim,
    n: u32,
    vol: NtfsVolume,
    opts: &ApplyOptions,
    progress: &mut dyn FnMut(ApplyProgress),
) -> Result<Vec<String>> {
    let tree = wim.read_image(n)?;
    let info = vol.info()?;
    let need = space_needed(&tree, info.cluster_size as u64, 1024);
    if need > info.free_bytes {
        return Err(WimError::Apply {
            path: vol.describe().to_string(),
            reason: format!(
                "not enough space: image {n} needs about {need} bytes, the volume has {} free",
                info.free_bytes
            ),
        });
    }
    let desc = vol.describe().to_string();
    let mut target = NtfsTarget::new(vol)?;
    tasq_wim::apply::apply_tree(wim, n, &tree, &mut target, opts, progress)
        .map_err(|e| on_volume(e, &desc))?;
    Ok(target.warnings)
}
