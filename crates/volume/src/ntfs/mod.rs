//! The NTFS backend: capture from, and apply to, an unmounted NTFS volume
//! inside an image file or on a device, at a byte offset (a partition of a
//! disk image), through libntfs-3g, without root and without mounting —
//! the same approach as wimlib's NTFS-3G mode.
//!
//! - [`device`]: the window of the file that libntfs-3g sees as its device.
//! - [`NtfsVolume`]: a mounted volume (read-only or read-write).
//! - [`capture`]: [`NtfsSource`], a [`CaptureSource`](tasq_wim::capture::CaptureSource)
//!   with full fidelity: all names (Win32, DOS, POSIX) and hard links,
//!   security descriptors, attributes, 100 ns times, named data streams,
//!   reparse points, object ids; sparse and compressed data read as plain
//!   data; encrypted files skipped with a warning.
//! - [`fs`]: [`NtfsFs`], file-level access ([`VolumeFs`](crate::fs::VolumeFs))
//!   for the task sequence steps that put single files on a volume.
//! - [`apply`]: [`NtfsTarget`], an [`ApplyTarget`](tasq_wim::apply::ApplyTarget)
//!   for a freshly formatted volume, and [`apply_image_to_ntfs`], which
//!   refuses a volume too small for the image before writing anything.
//!
//! Licence: this module is MIT OR Apache-2.0 like the rest of the crate,
//! but it links libntfs-3g (through the `ntfs3g-sys` crate, GPL-2.0-or-later),
//! so any binary built with the `ntfs` feature is covered by the GPL.
//! Build without the feature for a binary free of it.

pub mod apply;
pub mod capture;
mod device;
pub mod fs;

use std::ffi::c_char;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, Once};

use ntfs3g_sys as sys;
use tasq_wim::{Result, WimError};

pub use apply::{apply_image_to_ntfs, NtfsTarget};
pub use capture::NtfsSource;
use device::{Device, DeviceState};
pub use fs::NtfsFs;

/// A mounted volume. libntfs-3g is not thread-safe per volume, so the
/// handle sits behind a mutex; every call into the library holds it.
pub struct NtfsVolume {
    inner: Mutex<Mounted>,
    desc: String,
    writable: bool,
    size: u64,
}

/// The library's volume and the device memory it uses.
pub(crate) struct Mounted {
    pub(crate) vol: *mut sys::ntfs_volume,
    device: Device,
}

// SAFETY: the raw pointers are only used while the owning NtfsVolume's
// mutex is held, so at most one thread calls into the library for this
// volume at a time; libntfs-3g keeps no thread-affine state per volume.
unsafe impl Send for Mounted {}

impl Mounted {
    /// Unmounts; the device is freed by the library. Idempotent.
    fn unmount(&mut self) -> std::result::Result<(), String> {
        if self.vol.is_null() {
            return Ok(());
        }
        let vol = std::mem::replace(&mut self.vol, std::ptr::null_mut());
        // SAFETY: vol is a live volume from ntfs_device_mount; after
        // ntfs_umount neither it nor the device is used again (vol is
        // nulled above, and the device pointer is only used by the library).
        unsafe {
            let mut failed = None;
            if sys::tasq_ntfs_volume_has_secure(vol) != 0 && sys::ntfs_close_secure(vol) != 0 {
                failed = Some(last_error("closing $Secure", None));
            }
            if sys::ntfs_umount(vol, 0) != 0 && failed.is_none() {
                failed = Some(last_error("unmounting", self.device.state.fault.as_deref()));
            }
            match failed {
                Some(e) => Err(e),
                None => Ok(()),
            }
        }
    }

    pub(crate) fn fault(&self) -> Option<&str> {
        self.device.state.fault.as_deref()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = self.unmount();
    }
}

/// What libntfs-3g said about the last failure: errno, its log lines and
/// any out-of-window access the device saw. Call right after the failing
/// call, before anything can clobber errno.
pub(crate) fn last_error(what: &str, fault: Option<&str>) -> String {
    let err = io::Error::last_os_error();
    let mut buf = [0 as c_char; 1024];
    // SAFETY: buf is writable for its length; the shim NUL-terminates.
    let log = unsafe {
        sys::tasq_ntfs_log_take(buf.as_mut_ptr(), buf.len());
        std::ffi::CStr::from_ptr(buf.as_ptr())
            .to_string_lossy()
            .trim_end_matches([';', ' '])
            .to_string()
    };
    let mut msg = format!("{what}: {err}");
    if !log.is_empty() {
        msg.push_str(&format!(" (libntfs-3g: {log})"));
    }
    if let Some(f) = fault {
        msg.push_str(&format!(" ({f})"));
    }
    msg
}

/// Adds which volume (image and offset) an error of a file inside it
/// happened on.
pub(crate) fn on_volume(e: WimError, desc: &str) -> WimError {
    match e {
        WimError::Capture { path, reason } => WimError::Capture {
            path: format!("{path} on the {desc}"),
            reason,
        },
        WimError::Apply { path, reason } => WimError::Apply {
            path: format!("{path} on the {desc}"),
            reason,
        },
        other => other,
    }
}

/// Clears log lines left by calls whose failure was expected.
pub(crate) fn discard_log() {
    let mut buf = [0 as c_char; 16];
    // SAFETY: buf is writable for its length.
    unsafe {
        sys::tasq_ntfs_log_take(buf.as_mut_ptr(), buf.len());
    }
}

fn log_init() {
    static INIT: Once = Once::new();
    // SAFETY: installs a handler that only formats into thread-local
    // memory; done once, before any mount.
    INIT.call_once(|| unsafe { sys::tasq_ntfs_log_init() });
}

/// Geometry and space of a mounted volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeInfo {
    pub cluster_size: u32,
    pub total_bytes: u64,
    pub free_bytes: u64,
    pub major_version: u8,
    pub minor_version: u8,
}

fn mount_error(desc: &str, reason: impl Into<String>) -> WimError {
    WimError::io(
        format!("cannot open {desc}"),
        io::Error::new(io::ErrorKind::InvalidData, reason.into()),
    )
}

impl NtfsVolume {
    /// Mounts the NTFS volume occupying `size` bytes at byte `offset` of
    /// the file or block device `path`. Nothing outside that window is
    /// ever read or written. With `writable` false the volume is mounted
    /// read-only and the file opened read-only.
    pub fn open(path: impl AsRef<Path>, offset: u64, size: u64, writable: bool) -> Result<Self> {
        let path = path.as_ref();
        let desc = format!(
            "NTFS volume in {} at offset {offset} ({size} bytes)",
            path.display()
        );
        let mut file = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
            .map_err(|e| WimError::io(format!("cannot open {desc}"), e))?;
        // seek(End) gives the size of block devices too (metadata says 0).
        let file_len = file
            .seek(SeekFrom::End(0))
            .map_err(|e| WimError::io(format!("cannot open {desc}"), e))?;
        if size < 512 {
            return Err(mount_error(&desc, "the volume is smaller than one sector"));
        }
        match offset.checked_add(size) {
            Some(end) if end <= file_len => {}
            _ => {
                return Err(mount_error(
                    &desc,
                    format!("the volume runs past the end of the file ({file_len} bytes)"),
                ))
            }
        }
        check_boot_sector(&file, offset, size).map_err(|r| mount_error(&desc, r))?;
        log_init();
        let device = Device::new(
            &path.display().to_string(),
            DeviceState::new(file, offset, size, writable),
        )
        .ok_or_else(|| mount_error(&desc, "out of memory"))?;
        let flags = if writable {
            sys::NTFS_MNT_NONE
        } else {
            sys::NTFS_MNT_RDONLY
        };
        discard_log();
        // SAFETY: device.dev is a freshly allocated device whose callbacks
        // and private data live in `device`, which outlives the volume
        // (Mounted drops the volume first).
        let vol = unsafe { sys::ntfs_device_mount(device.dev, flags) };
        if vol.is_null() {
            let reason = last_error(
                "libntfs-3g refused the volume",
                device.state.fault.as_deref(),
            );
            // SAFETY: the failed mount closed the device; it is ours to free.
            unsafe { sys::ntfs_device_free(device.dev) };
            return Err(mount_error(&desc, reason));
        }
        let mut mounted = Mounted { vol, device };
        // SAFETY: vol is live; these only set flags and caches.
        unsafe {
            sys::ntfs_create_lru_caches(vol);
            // Hide the metadata files ($MFT, ..., $Extend), show hidden files.
            sys::ntfs_set_shown_files(vol, 0, 1, 0);
        }
        let info = volume_info(&mounted);
        if info.total_bytes > size {
            let _ = mounted.unmount();
            return Err(mount_error(
                &desc,
                format!(
                    "the boot sector claims {} bytes, more than the partition holds",
                    info.total_bytes
                ),
            ));
        }
        // Security descriptors of NTFS 3.x live in $Secure, which the
        // library only reads and writes once it is opened.
        // SAFETY: vol is live.
        if unsafe { sys::ntfs_open_secure(vol) } != 0 {
            if info.major_version >= 3 {
                let reason = last_error("cannot open $Secure", mounted.fault());
                let _ = mounted.unmount();
                return Err(mount_error(&desc, reason));
            }
            discard_log();
        }
        Ok(NtfsVolume {
            inner: Mutex::new(mounted),
            desc,
            writable,
            size,
        })
    }

    /// Mounts a whole file (an NTFS image made by `mkntfs`) or device.
    pub fn open_whole(path: impl AsRef<Path>, writable: bool) -> Result<Self> {
        let path = path.as_ref();
        let len = File::open(path)
            .and_then(|mut f| f.seek(SeekFrom::End(0)))
            .map_err(|e| WimError::io(format!("cannot open {}", path.display()), e))?;
        Self::open(path, 0, len, writable)
    }

    /// "NTFS volume in IMG at offset N (S bytes)", for messages.
    pub fn describe(&self) -> &str {
        &self.desc
    }

    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// The partition size given to [`open`](Self::open).
    pub fn partition_size(&self) -> u64 {
        self.size
    }

    /// Cluster size, size and free space (free space counted now).
    pub fn info(&self) -> Result<VolumeInfo> {
        let m = self.lock();
        // SAFETY: the volume is live while the lock is held.
        if unsafe { sys::ntfs_volume_get_free_space(m.vol) } != 0 {
            return Err(WimError::io(
                format!("{}: cannot count free space", self.desc),
                io::Error::other(last_error("ntfs_volume_get_free_space", m.fault())),
            ));
        }
        Ok(volume_info(&m))
    }

    /// Unmounts, reporting any failure to write back (a dropped volume is
    /// unmounted too, silently).
    pub fn close(self) -> Result<()> {
        let desc = self.desc.clone();
        let mut m = self.inner.into_inner().unwrap_or_else(|p| p.into_inner());
        m.unmount()
            .map_err(|e| WimError::io(format!("{desc}: unmount failed"), io::Error::other(e)))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Mounted> {
        // A panic while holding the lock leaves the library state as it
        // was after the last completed call; keep going.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl std::fmt::Debug for NtfsVolume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NtfsVolume")
            .field("desc", &self.desc)
            .field("writable", &self.writable)
            .finish()
    }
}

fn volume_info(m: &Mounted) -> VolumeInfo {
    let (mut cs, mut nr, mut free, mut major, mut minor) = (0u32, 0i64, 0i64, 0u8, 0u8);
    // SAFETY: m.vol is live; the shim only reads fields.
    unsafe {
        sys::tasq_ntfs_volume_info(m.vol, &mut cs, &mut nr, &mut free, &mut major, &mut minor)
    };
    VolumeInfo {
        cluster_size: cs,
        total_bytes: (nr.max(0) as u64).saturating_mul(cs as u64),
        free_bytes: (free.max(0) as u64).saturating_mul(cs as u64),
        major_version: major,
        minor_version: minor,
    }
}

/// A first look at the boot sector, so that "this is not NTFS at all"
/// gets a plain message instead of the library's EINVAL.
fn check_boot_sector(file: &File, offset: u64, size: u64) -> std::result::Result<(), String> {
    let mut bs = [0u8; 512];
    file.read_exact_at(&mut bs, offset)
        .map_err(|e| format!("cannot read the boot sector: {e}"))?;
    if &bs[3..11] != b"NTFS    " {
        return Err("no NTFS boot sector (the \"NTFS\" signature is missing)".into());
    }
    if bs[510..512] != [0x55, 0xAA] {
        return Err("the NTFS boot sector has no 55 AA end marker".into());
    }
    // The library checks this too, by reading the last sector; saying it
    // plainly helps when a partition table lies about a partition's size.
    let bytes_per_sector = u16::from_le_bytes([bs[0x0B], bs[0x0C]]) as u64;
    let mut total = [0u8; 8];
    total.copy_from_slice(&bs[0x28..0x30]);
    let claimed = u64::from_le_bytes(total).saturating_mul(bytes_per_sector);
    if claimed > size {
        return Err(format!(
            "the boot sector claims {claimed} bytes, more than the partition's {size}"
        ));
    }
    Ok(())
}

/// Owns an open inode and closes it when dropped.
pub(crate) struct Ino(pub(crate) *mut sys::ntfs_inode);

impl Ino {
    /// Opens MFT record `mref` of a locked volume.
    pub(crate) fn open(m: &Mounted, mref: u64) -> Option<Ino> {
        // SAFETY: m.vol is live while the caller holds the lock.
        let ni = unsafe { sys::ntfs_inode_open(m.vol, mref) };
        (!ni.is_null()).then_some(Ino(ni))
    }

    pub(crate) fn mft_no(&self) -> u64 {
        // SAFETY: self.0 is an open inode.
        unsafe { sys::tasq_ntfs_inode_mft_no(self.0) }
    }

    /// Gives up ownership (for calls that close the inode themselves).
    pub(crate) fn into_raw(self) -> *mut sys::ntfs_inode {
        let p = self.0;
        std::mem::forget(self);
        p
    }

    /// Closes, reporting whether writing the record back worked.
    pub(crate) fn close(self) -> bool {
        let p = self.into_raw();
        // SAFETY: p is an open inode, closed exactly once here.
        unsafe { sys::ntfs_inode_close(p) == 0 }
    }
}

impl Drop for Ino {
    fn drop(&mut self) {
        // SAFETY: self.0 is an open inode, closed exactly once here.
        unsafe { sys::ntfs_inode_close(self.0) };
    }
}

/// Owns an open attribute and closes it when dropped.
pub(crate) struct Attr(pub(crate) *mut sys::ntfs_attr);

impl Attr {
    /// Opens an attribute; an empty name means the unnamed one.
    pub(crate) fn open(ino: &Ino, ty: sys::ATTR_TYPES, name: &[u16]) -> Option<Attr> {
        // SAFETY: ino is open; the library neither keeps nor frees a name
        // that is AT_UNNAMED or that it copies (ntfs_attr_open duplicates
        // names other than AT_UNNAMED before storing them).
        let na = unsafe {
            if name.is_empty() {
                sys::ntfs_attr_open(ino.0, ty, std::ptr::addr_of_mut!(sys::AT_UNNAMED).cast(), 0)
            } else {
                let mut n = name.to_vec();
                sys::ntfs_attr_open(ino.0, ty, n.as_mut_ptr(), n.len() as u32)
            }
        };
        (!na.is_null()).then_some(Attr(na))
    }

    pub(crate) fn data_size(&self) -> u64 {
        // SAFETY: self.0 is an open attribute.
        unsafe { sys::tasq_ntfs_attr_data_size(self.0) }.max(0) as u64
    }

    pub(crate) fn is_compressed(&self) -> bool {
        // SAFETY: self.0 is an open attribute.
        unsafe { sys::tasq_ntfs_attr_is_compressed(self.0) != 0 }
    }
}

impl Drop for Attr {
    fn drop(&mut self) {
        // SAFETY: self.0 is an open attribute, closed exactly once here.
        unsafe { sys::ntfs_attr_close(self.0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    // The capture reader hands `&NtfsVolume` to whichever thread reads.
    #[test]
    fn volume_is_send_and_sync() {
        assert_send_sync::<NtfsVolume>();
    }

    #[test]
    fn not_ntfs_is_a_clear_error() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), vec![0u8; 1 << 20]).unwrap();
        let e = NtfsVolume::open(f.path(), 4096, 65536, false).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("at offset 4096"), "{s}");
        assert!(s.contains("signature"), "{s}");
        let e = NtfsVolume::open(f.path(), 1 << 20, 65536, false).unwrap_err();
        assert!(e.to_string().contains("past the end"), "{e}");
    }
}
