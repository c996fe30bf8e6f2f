//! Capture of a whole NTFS volume into an [`ImageTree`], as wimlib's NTFS-3G
//! mode does it.
//!
//! The walk reads each directory's index with `ntfs_readdir`, collecting
//! the entries first (no re-entry into the library from its callback).
//! Index entries in the DOS namespace only give short names to the
//! Win32-namespace entry of the same MFT record in that directory; several
//! Win32/POSIX entries for one record are hard links sharing an inode.
//! Metadata files (`$MFT` ... `$Extend`) are hidden by the library
//! (`ntfs_set_shown_files`). Per file: attributes, the three times at
//! 100 ns, the security descriptor (`ntfs_get_ntfs_acl`, which resolves
//! `$Secure`), the object id, reparse data (tag and reserved field in the
//! inode, data without its 8-byte header) and every `$DATA` attribute
//! (named ones are alternate data streams). Data is read later through
//! [`CaptureSource::open_stream`]; `ntfs_attr_pread` expands sparse and
//! compressed attributes, so they are captured as plain data.

use std::collections::HashMap;
use std::ffi::{c_int, c_uint, c_void};
use std::io::{self, Read};
use std::sync::Arc;

use ntfs3g_sys as sys;
use tasq_wim::capture::{CaptureFilter, CaptureSource, ScanProgress};
use tasq_wim::image::{
    ImageTree, Inode, Stream, StreamKind, StreamSource, FILE_ATTRIBUTE_ENCRYPTED,
    FILE_ATTRIBUTE_REPARSE_POINT, WIM_RP_FLAG_NOT_FIXED,
};
use tasq_wim::reparse::REPARSE_POINT_MAX_SIZE;
use tasq_wim::security::SecurityDescriptorSet;
use tasq_wim::{Result, Sha1Hash, WimError};

use super::{last_error, on_volume, Attr, Ino, Mounted, NtfsVolume};

/// Tag of an object-id item in the inode's tagged items (wimlib's
/// TAG_OBJECT_ID).
pub const TAG_OBJECT_ID: u32 = 1;
/// Largest security descriptor NTFS stores (the length field is 16 bits
/// in the self-relative header's ACLs; $Secure entries stay well below).
const MAX_SD_SIZE: usize = 1 << 16;

/// Where a captured stream's bytes are.
#[derive(Debug, Clone)]
struct StreamLoc {
    mft: u64,
    name: Vec<u16>,
    size: u64,
    path: String,
}

/// An NTFS volume as a capture source. Borrows the volume, which may be
/// mounted read-only.
pub struct NtfsSource<'v> {
    vol: &'v NtfsVolume,
    streams: Vec<StreamLoc>,
    warnings: Vec<String>,
}

/// One index entry of a directory.
pub(crate) struct DirEntry {
    pub(crate) name: Vec<u16>,
    pub(crate) name_type: c_int,
    pub(crate) mft: u64,
}

unsafe extern "C" fn filldir(
    dirent: *mut c_void,
    name: *const sys::ntfschar,
    name_len: c_int,
    name_type: c_int,
    _pos: i64,
    mref: sys::MFT_REF,
    _dt_type: c_uint,
) -> c_int {
    // SAFETY: dirent is the Vec passed to ntfs_readdir by read_dir.
    let Some(out) = (unsafe { (dirent as *mut Vec<DirEntry>).as_mut() }) else {
        return -1;
    };
    let Ok(n) = usize::try_from(name_len) else {
        return -1;
    };
    let name = if n == 0 || name.is_null() {
        Vec::new()
    } else {
        // SAFETY: the library passes a name of name_len UTF-16 units
        // (from an index entry it has bounds-checked).
        unsafe { std::slice::from_raw_parts(name, n) }.to_vec()
    };
    out.push(DirEntry {
        name,
        name_type,
        mft: mref & sys::MFT_REF_MASK,
    });
    0
}

pub(crate) fn read_dir(m: &Mounted, dir: &Ino) -> std::result::Result<Vec<DirEntry>, String> {
    let mut entries: Vec<DirEntry> = Vec::new();
    let mut pos: i64 = 0;
    // SAFETY: dir is open on m's volume (locked by the caller); filldir
    // only appends to `entries`, which outlives the call.
    let r = unsafe {
        sys::ntfs_readdir(
            dir.0,
            &mut pos,
            &mut entries as *mut Vec<DirEntry> as *mut c_void,
            Some(filldir),
        )
    };
    if r != 0 {
        return Err(last_error("cannot read the directory", m.fault()));
    }
    Ok(entries)
}

pub(crate) fn is_dot(name: &[u16]) -> bool {
    name == [b'.' as u16] || name == [b'.' as u16, b'.' as u16]
}

fn cap_err(path: &str, reason: impl Into<String>) -> WimError {
    WimError::Capture {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// The tagged item holding an object id: tag, length, data, zero padding
/// to 8 bytes.
pub fn object_id_item(id: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + id.len().next_multiple_of(8));
    v.extend_from_slice(&TAG_OBJECT_ID.to_le_bytes());
    v.extend_from_slice(&(id.len() as u32).to_le_bytes());
    v.extend_from_slice(id);
    v.resize(8 + id.len().next_multiple_of(8), 0);
    v
}

/// Finds the object id among an inode's tagged items.
pub fn find_object_id(extra: &[u8]) -> Option<&[u8]> {
    let mut p = extra;
    while p.len() >= 8 {
        let tag = u32::from_le_bytes([p[0], p[1], p[2], p[3]]);
        let len = u32::from_le_bytes([p[4], p[5], p[6], p[7]]) as usize;
        let data = p.get(8..8usize.checked_add(len)?)?;
        if tag == TAG_OBJECT_ID {
            return Some(data);
        }
        let full = 8usize.checked_add(len.checked_next_multiple_of(8)?)?;
        p = p.get(full..)?;
    }
    None
}

impl<'v> NtfsSource<'v> {
    pub fn new(vol: &'v NtfsVolume) -> Self {
        NtfsSource {
            vol,
            streams: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Files skipped and other oddities of the last scan (also in the
    /// tree's `warnings`).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Reads one file's metadata and stream list. `None`: skipped (encrypted).
    fn read_inode(
        &mut self,
        m: &Mounted,
        ino: &Ino,
        path: &str,
        sds: &mut SecurityDescriptorSet,
    ) -> Result<Option<Inode>> {
        let mft = ino.mft_no();
        let mut attr = [0u8; 4];
        // SAFETY: ino is open; the buffer holds the 4 bytes asked for.
        let r = unsafe { sys::ntfs_get_ntfs_attrib(ino.0, attr.as_mut_ptr().cast(), 4) };
        if r != 4 {
            return Err(cap_err(
                path,
                last_error("cannot read the attributes", m.fault()),
            ));
        }
        let attributes = u32::from_le_bytes(attr);
        if attributes & FILE_ATTRIBUTE_ENCRYPTED != 0 {
            let w = format!(
                "{path}: skipped: encrypted files cannot be captured from an unmounted volume"
            );
            self.warnings.push(w);
            return Ok(None);
        }
        let mut times = [0u8; 24];
        // SAFETY: ino is open; the buffer holds the 24 bytes asked for.
        let r = unsafe { sys::ntfs_inode_get_times(ino.0, times.as_mut_ptr().cast(), 24) };
        if r != 24 {
            return Err(cap_err(
                path,
                last_error("cannot read the times", m.fault()),
            ));
        }
        let t = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&times[i * 8..i * 8 + 8]);
            u64::from_le_bytes(b)
        };
        let mut inode = Inode {
            attributes,
            creation_time: t(0),
            last_write_time: t(1),
            last_access_time: t(2),
            ..Inode::default()
        };

        if attributes & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
            let (tag, reserved, data) = read_reparse(m, ino, path)?;
            inode.reparse_tag = tag;
            inode.rp_reserved = reserved;
            // Absolute link targets are kept as they are (the volume's
            // drive letter is unknown), so they are marked not fixed, as
            // wimlib does since 1.14.5.
            inode.rp_flags = WIM_RP_FLAG_NOT_FIXED;
            inode.streams.push(Stream {
                kind: StreamKind::ReparsePoint,
                name: Vec::new(),
                hash: Sha1Hash::ZERO,
                size: data.len() as u64,
                source: StreamSource::Inline(Arc::new(data)),
            });
        }

        let mut oid = [0u8; 64];
        // SAFETY: ino is open; the buffer holds 64 bytes.
        let r = unsafe { sys::ntfs_get_ntfs_object_id(ino.0, oid.as_mut_ptr().cast(), 64) };
        if r > 0 {
            let n = (r as usize).min(oid.len());
            inode.extra = object_id_item(&oid[..n]);
        } else {
            super::discard_log();
        }

        for name in data_attribute_names(m, ino, path)? {
            let a = Attr::open(ino, sys::AT_DATA, &name)
                .ok_or_else(|| cap_err(path, last_error("cannot open a data stream", m.fault())))?;
            let size = a.data_size();
            drop(a);
            let source = if size > 0 {
                self.streams.push(StreamLoc {
                    mft,
                    name: name.clone(),
                    size,
                    path: path.to_string(),
                });
                StreamSource::External(self.streams.len() as u64 - 1)
            } else {
                StreamSource::None
            };
            // An empty unnamed stream is no stream (as a host file of
            // size 0); an empty named stream still exists.
            if size == 0 && name.is_empty() {
                continue;
            }
            inode.streams.push(Stream {
                kind: StreamKind::Data,
                name,
                hash: Sha1Hash::ZERO,
                size,
                source,
            });
        }

        let sd = read_security_descriptor(m, ino, path)?;
        if let Some(sd) = sd {
            inode.security_id = Some(sds.add(&sd));
        }
        Ok(Some(inode))
    }
}

/// The names of an inode's `$DATA` attributes, each once (a fragmented
/// attribute can show one record per extent).
fn data_attribute_names(m: &Mounted, ino: &Ino, path: &str) -> Result<Vec<Vec<u16>>> {
    // SAFETY: ino is open; ctx is released below on every path.
    let ctx = unsafe { sys::ntfs_attr_get_search_ctx(ino.0, std::ptr::null_mut()) };
    if ctx.is_null() {
        return Err(cap_err(
            path,
            last_error("cannot list the streams", m.fault()),
        ));
    }
    let mut names: Vec<Vec<u16>> = Vec::new();
    let result = loop {
        // SAFETY: ctx is a live search context of ino.
        let r = unsafe {
            sys::ntfs_attr_lookup(
                sys::AT_DATA,
                std::ptr::null(),
                0,
                sys::CASE_SENSITIVE,
                0,
                std::ptr::null(),
                0,
                ctx,
            )
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(sys::libc::ENOENT) {
                super::discard_log();
                break Ok(());
            }
            break Err(cap_err(
                path,
                last_error("cannot list the streams", m.fault()),
            ));
        }
        let (mut np, mut nl, mut vl) = (std::ptr::null(), 0u32, 0i64);
        // SAFETY: the lookup succeeded, so ctx points at an attribute
        // record whose name lies inside the (checked) MFT record.
        unsafe { sys::tasq_ntfs_ctx_attr(ctx, &mut np, &mut nl, &mut vl) };
        let name = if nl == 0 || np.is_null() {
            Vec::new()
        } else {
            // SAFETY: as above; nl ≤ 255 units.
            unsafe { std::slice::from_raw_parts(np, nl as usize) }.to_vec()
        };
        if !names.contains(&name) {
            names.push(name);
        }
    };
    // SAFETY: ctx came from ntfs_attr_get_search_ctx and is released once.
    unsafe { sys::ntfs_attr_put_search_ctx(ctx) };
    result.map(|()| names)
}

/// Tag, reserved field and data (after the 8-byte header) of the reparse
/// point attribute, read through a bounded attribute read.
fn read_reparse(m: &Mounted, ino: &Ino, path: &str) -> Result<(u32, u16, Vec<u8>)> {
    let a = Attr::open(ino, sys::AT_REPARSE_POINT, &[])
        .ok_or_else(|| cap_err(path, last_error("cannot open the reparse point", m.fault())))?;
    let size = a.data_size();
    if size < 8 || size > REPARSE_POINT_MAX_SIZE as u64 {
        return Err(cap_err(
            path,
            format!(
                "reparse point attribute of {size} bytes (must be 8 to {REPARSE_POINT_MAX_SIZE})"
            ),
        ));
    }
    let mut buf = vec![0u8; size as usize];
    // SAFETY: a is open; buf holds `size` bytes.
    let r = unsafe { sys::ntfs_attr_pread(a.0, 0, size as i64, buf.as_mut_ptr().cast()) };
    if r != size as i64 {
        return Err(cap_err(
            path,
            last_error("cannot read the reparse point", m.fault()),
        ));
    }
    let tag = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let reserved = u16::from_le_bytes([buf[6], buf[7]]);
    Ok((tag, reserved, buf.split_off(8)))
}

fn read_security_descriptor(m: &Mounted, ino: &Ino, path: &str) -> Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: ino is open on m.vol; buf holds buf.len() bytes.
        let r = unsafe { sys::tasq_ntfs_get_acl(m.vol, ino.0, buf.as_mut_ptr().cast(), buf.len()) };
        if r < 0 {
            return Err(cap_err(
                path,
                last_error("cannot read the security descriptor", m.fault()),
            ));
        }
        let n = r as usize;
        if n == 0 {
            return Ok(None);
        }
        if n <= buf.len() {
            buf.truncate(n);
            return Ok(Some(buf));
        }
        if n > MAX_SD_SIZE {
            return Err(cap_err(path, format!("security descriptor of {n} bytes")));
        }
        buf = vec![0u8; n];
    }
}

struct PendingDir {
    dentry: usize,
    mft: u64,
    path: String,
}

impl CaptureSource for NtfsSource<'_> {
    fn describe(&self) -> String {
        self.vol.describe().to_string()
    }

    fn scan(
        &mut self,
        filter: &dyn CaptureFilter,
        progress: &mut dyn FnMut(ScanProgress),
    ) -> Result<ImageTree> {
        let desc = self.vol.describe().to_string();
        self.scan_tree(filter, progress)
            .map_err(|e| on_volume(e, &desc))
    }

    fn open_stream(&self, id: u64) -> Result<Box<dyn Read + Send + '_>> {
        self.open(id).map_err(|e| on_volume(e, self.vol.describe()))
    }
}

impl NtfsSource<'_> {
    fn scan_tree(
        &mut self,
        filter: &dyn CaptureFilter,
        progress: &mut dyn FnMut(ScanProgress),
    ) -> Result<ImageTree> {
        self.streams.clear();
        self.warnings.clear();
        let vol = self.vol;
        let m = vol.lock();
        let mut tree = ImageTree::new();
        let mut sds = SecurityDescriptorSet::new();
        let mut prog = ScanProgress::default();
        // MFT record number → inode index, for hard links.
        let mut by_mft: HashMap<u64, usize> = HashMap::new();

        let root = Ino::open(&m, sys::FILE_root).ok_or_else(|| {
            cap_err(
                "\\",
                last_error("cannot open the root directory", m.fault()),
            )
        })?;
        let root_inode = self
            .read_inode(&m, &root, "\\", &mut sds)?
            .ok_or_else(|| cap_err("\\", "the root directory is encrypted"))?;
        drop(root);
        if !root_inode.is_plain_directory() {
            return Err(cap_err("\\", "the root is not a plain directory"));
        }
        tree.inodes[0] = root_inode;
        by_mft.insert(sys::FILE_root, 0);
        prog.dirs += 1;

        let mut stack = vec![PendingDir {
            dentry: ImageTree::ROOT,
            mft: sys::FILE_root,
            path: String::new(),
        }];
        while let Some(dir) = stack.pop() {
            let shown = if dir.path.is_empty() { "\\" } else { &dir.path };
            let dino = Ino::open(&m, dir.mft).ok_or_else(|| {
                cap_err(shown, last_error("cannot open the directory", m.fault()))
            })?;
            let entries = read_dir(&m, &dino).map_err(|r| cap_err(shown, r))?;
            drop(dino);
            // Short names: DOS-namespace entries, by record.
            let mut dos: HashMap<u64, Vec<u16>> = HashMap::new();
            for e in &entries {
                if e.name_type & sys::FILE_NAME_DOS != 0 {
                    dos.insert(e.mft, e.name.clone());
                }
            }
            for e in entries {
                if e.name_type == sys::FILE_NAME_DOS || e.name.is_empty() || is_dot(&e.name) {
                    continue;
                }
                let name_str = String::from_utf16_lossy(&e.name);
                let path = format!("{}\\{}", dir.path, name_str);
                if filter.is_excluded(&path) {
                    continue;
                }
                let short = if e.name_type & sys::FILE_NAME_WIN32 != 0 {
                    match dos.get(&e.mft) {
                        Some(s) => s.clone(),
                        None => {
                            self.warnings
                                .push(format!("{path}: Win32 name without a DOS name"));
                            Vec::new()
                        }
                    }
                } else {
                    Vec::new()
                };
                if let Some(&i) = by_mft.get(&e.mft) {
                    // Another name of a record already seen: a hard link.
                    tree.add_dentry(dir.dentry, e.name, short, i);
                    prog.files += 1;
                    progress(prog);
                    continue;
                }
                let ino = Ino::open(&m, e.mft)
                    .ok_or_else(|| cap_err(&path, last_error("cannot open the file", m.fault())))?;
                let Some(inode) = self.read_inode(&m, &ino, &path, &mut sds)? else {
                    continue;
                };
                drop(ino);
                let plain_dir = inode.is_plain_directory();
                prog.bytes += inode.data_size();
                let i = tree.add_inode(inode);
                by_mft.insert(e.mft, i);
                let d = tree.add_dentry(dir.dentry, e.name, short, i);
                if plain_dir {
                    prog.dirs += 1;
                    stack.push(PendingDir {
                        dentry: d,
                        mft: e.mft,
                        path,
                    });
                } else {
                    prog.files += 1;
                }
                progress(prog);
            }
        }
        drop(m);
        tree.security = sds.descriptors;
        tree.warnings.extend(self.warnings.iter().cloned());
        Ok(tree)
    }

    fn open(&self, id: u64) -> Result<Box<dyn Read + Send + '_>> {
        let loc = usize::try_from(id)
            .ok()
            .and_then(|i| self.streams.get(i))
            .ok_or_else(|| cap_err(&format!("stream {id}"), "unknown stream"))?;
        let m = self.vol.lock();
        let ino = Ino::open(&m, loc.mft)
            .ok_or_else(|| cap_err(&loc.path, last_error("cannot open the file", m.fault())))?;
        let attr = Attr::open(&ino, sys::AT_DATA, &loc.name).ok_or_else(|| {
            cap_err(
                &loc.path,
                last_error("cannot open the data stream", m.fault()),
            )
        })?;
        if attr.data_size() != loc.size {
            return Err(cap_err(
                &loc.path,
                format!(
                    "stream changed size during capture ({} bytes, then {})",
                    loc.size,
                    attr.data_size()
                ),
            ));
        }
        drop(m);
        Ok(Box::new(StreamReader {
            vol: self.vol,
            handles: Some(Handles { attr, ino }),
            pos: 0,
            size: loc.size,
            path: loc.path.clone(),
        }))
    }
}

/// The open inode and attribute of a stream being read. Field order
/// matters: the attribute is closed before its inode.
struct Handles {
    attr: Attr,
    ino: Ino,
}

// SAFETY: the handles are only touched while the volume's mutex is held
// (StreamReader::read and Drop lock it first).
unsafe impl Send for Handles {}

/// Reads one `$DATA` attribute, holding the volume lock per call only.
struct StreamReader<'v> {
    vol: &'v NtfsVolume,
    handles: Option<Handles>,
    pos: u64,
    size: u64,
    path: String,
}

impl Read for StreamReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let remaining = self.size - self.pos;
        let want = (buf.len() as u64).min(remaining) as usize;
        if want == 0 {
            return Ok(0);
        }
        let Some(h) = &self.handles else {
            return Err(io::Error::other("stream already closed"));
        };
        let m = self.vol.lock();
        // SAFETY: the attribute is open and the volume locked; buf holds
        // at least `want` bytes.
        let r = unsafe {
            sys::ntfs_attr_pread(
                h.attr.0,
                self.pos as i64,
                want as i64,
                buf.as_mut_ptr().cast(),
            )
        };
        if r <= 0 {
            return Err(io::Error::other(format!(
                "{} on the {}: {}",
                self.path,
                self.vol.describe(),
                last_error(&format!("read at {} failed", self.pos), m.fault())
            )));
        }
        let n = (r as usize).min(want);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Drop for StreamReader<'_> {
    fn drop(&mut self) {
        if let Some(h) = self.handles.take() {
            let _m = self.vol.lock();
            drop(h.attr);
            drop(h.ino);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_id_items_round_trip() {
        let id: Vec<u8> = (0..16).collect();
        let item = object_id_item(&id);
        assert_eq!(item.len(), 24);
        assert_eq!(find_object_id(&item), Some(&id[..]));
        // After another item, and with a truncated or absurd length.
        let mut two = vec![2, 0, 0, 0, 3, 0, 0, 0, 9, 9, 9, 0, 0, 0, 0, 0];
        two.extend_from_slice(&item);
        assert_eq!(find_object_id(&two), Some(&id[..]));
        assert_eq!(find_object_id(&item[..20]), None);
        assert_eq!(find_object_id(&[1, 0, 0, 0, 255, 255, 255, 255]), None);
        assert_eq!(find_object_id(&[]), None);
    }

    /// Arbitrary tagged-item bytes never panic, and whatever is found lies
    /// inside the input.
    #[test]
    fn object_id_search_survives_any_input() {
        let mut x = 0x9E37_79B9u32;
        for len in 0..400usize {
            let bytes: Vec<u8> = (0..len)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    // Small length fields now and then, so items chain.
                    if i % 8 == 4 && x % 3 == 0 {
                        (x % 40) as u8
                    } else if i % 8 > 4 && x % 3 == 0 {
                        0
                    } else {
                        x as u8
                    }
                })
                .collect();
            if let Some(id) = find_object_id(&bytes) {
                let start = id.as_ptr() as usize - bytes.as_ptr() as usize;
                assert!(start + id.len() <= bytes.len());
            }
        }
    }
}
