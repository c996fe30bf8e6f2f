//! The block device libntfs-3g mounts: a window `[offset, offset + len)` of
//! a file or block device, served by Rust callbacks through
//! `struct ntfs_device_operations`. This is what lets tasq work on a
//! partition inside a disk image without root, loop devices or mounting.
//!
//! Every access outside the window fails (EIO), so a volume whose boot
//! sector claims more space than its partition cannot read or write its
//! neighbour. The callbacks never panic: all arithmetic is checked and
//! buffers come from the library with their length.

use std::ffi::{c_int, c_ulong, c_void, CString};

use ntfs3g_sys::libc;
use std::fs::File;
use std::os::unix::fs::FileExt;

use ntfs3g_sys as sys;

/// State behind `ntfs_device::d_private`.
pub(crate) struct DeviceState {
    file: File,
    offset: u64,
    len: u64,
    /// Position for the `read`/`write`/`seek` calls (relative to offset).
    pos: u64,
    writable: bool,
    dirty: bool,
    /// First out-of-window or I/O failure, for the error message.
    pub(crate) fault: Option<String>,
}

impl DeviceState {
    pub(crate) fn new(file: File, offset: u64, len: u64, writable: bool) -> DeviceState {
        DeviceState {
            file,
            offset,
            len,
            pos: 0,
            writable,
            dirty: false,
            fault: None,
        }
    }

    fn note(&mut self, msg: String) {
        if self.fault.is_none() {
            self.fault = Some(msg);
        }
    }

    /// The absolute file offset of `[pos, pos + count)` inside the window.
    fn window(&mut self, pos: i64, count: i64, what: &str) -> Result<(u64, usize), c_int> {
        let (Ok(pos), Ok(count)) = (u64::try_from(pos), u64::try_from(count)) else {
            return Err(libc::EINVAL);
        };
        match pos.checked_add(count) {
            Some(end) if end <= self.len => {}
            _ => {
                self.note(format!(
                    "{what} of {count} bytes at {pos} runs past the end of the volume ({} bytes)",
                    self.len
                ));
                return Err(libc::EIO);
            }
        }
        let abs = self.offset.checked_add(pos).ok_or(libc::EINVAL)?;
        let n = usize::try_from(count).map_err(|_| libc::EINVAL)?;
        Ok((abs, n))
    }

    /// Reads `buf.len()` bytes at `pos` (relative to the window).
    pub(crate) fn read_at(&mut self, buf: &mut [u8], pos: i64) -> Result<usize, c_int> {
        let (abs, n) = self.window(pos, buf.len() as i64, "read")?;
        match self.file.read_exact_at(&mut buf[..n], abs) {
            Ok(()) => Ok(n),
            Err(e) => {
                self.note(format!("read of {n} bytes at {pos}: {e}"));
                Err(e.raw_os_error().unwrap_or(libc::EIO))
            }
        }
    }

    /// Writes `buf` at `pos` (relative to the window).
    pub(crate) fn write_at(&mut self, buf: &[u8], pos: i64) -> Result<usize, c_int> {
        if !self.writable {
            return Err(libc::EROFS);
        }
        let (abs, n) = self.window(pos, buf.len() as i64, "write")?;
        match self.file.write_all_at(buf, abs) {
            Ok(()) => {
                self.dirty = true;
                Ok(n)
            }
            Err(e) => {
                self.note(format!("write of {n} bytes at {pos}: {e}"));
                Err(e.raw_os_error().unwrap_or(libc::EIO))
            }
        }
    }

    fn seek(&mut self, offset: i64, whence: c_int) -> Result<u64, c_int> {
        let base: i128 = match whence {
            libc::SEEK_SET => 0,
            libc::SEEK_CUR => self.pos as i128,
            libc::SEEK_END => self.len as i128,
            _ => return Err(libc::EINVAL),
        };
        let new = base + offset as i128;
        if new < 0 || new > self.len as i128 {
            return Err(libc::EINVAL);
        }
        self.pos = new as u64;
        Ok(self.pos)
    }

    fn sync(&mut self) -> Result<(), c_int> {
        if self.dirty {
            self.file
                .sync_data()
                .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
            self.dirty = false;
        }
        Ok(())
    }
}

fn set_errno(e: c_int) {
    // SAFETY: errno is thread-local; writing it is always sound.
    unsafe { *libc::__errno_location() = e };
}

/// The state of a device given to the callbacks.
///
/// # Safety
/// `dev` must be a device made by [`Device::new`], still alive; the
/// library calls the operations of one volume from one thread at a time
/// (the volume is behind a mutex), so the `&mut` is unique.
unsafe fn state<'a>(dev: *mut sys::ntfs_device) -> Option<&'a mut DeviceState> {
    // SAFETY: per the function's contract d_private is our DeviceState.
    unsafe { (sys::tasq_ntfs_device_private(dev) as *mut DeviceState).as_mut() }
}

unsafe extern "C" fn op_open(dev: *mut sys::ntfs_device, flags: c_int) -> c_int {
    // SAFETY: called by libntfs-3g on a device we allocated.
    let Some(st) = (unsafe { state(dev) }) else {
        set_errno(libc::EINVAL);
        return -1;
    };
    if unsafe { sys::tasq_ntfs_device_is_open(dev) } != 0 {
        set_errno(libc::EBUSY);
        return -1;
    }
    let rw = flags & libc::O_ACCMODE == libc::O_RDWR;
    if rw && !st.writable {
        set_errno(libc::EROFS);
        return -1;
    }
    st.pos = 0;
    // SAFETY: dev is valid (see above).
    unsafe { sys::tasq_ntfs_device_set_open(dev, c_int::from(!rw)) };
    0
}

unsafe extern "C" fn op_close(dev: *mut sys::ntfs_device) -> c_int {
    // SAFETY: as in op_open.
    let Some(st) = (unsafe { state(dev) }) else {
        set_errno(libc::EINVAL);
        return -1;
    };
    let r = st.sync();
    // SAFETY: dev is valid.
    unsafe { sys::tasq_ntfs_device_clear_open(dev) };
    match r {
        Ok(()) => 0,
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}

unsafe extern "C" fn op_seek(dev: *mut sys::ntfs_device, offset: i64, whence: c_int) -> i64 {
    // SAFETY: as in op_open.
    let Some(st) = (unsafe { state(dev) }) else {
        set_errno(libc::EINVAL);
        return -1;
    };
    match st.seek(offset, whence) {
        Ok(p) => p as i64,
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}

/// Turns the library's (pointer, count) into a slice, refusing negative
/// counts and null pointers.
///
/// # Safety
/// `buf` must point to `count` bytes the caller may access for `'a`.
unsafe fn buf_mut<'a>(buf: *mut c_void, count: i64) -> Option<&'a mut [u8]> {
    let n = usize::try_from(count).ok()?;
    if n == 0 {
        return Some(&mut []);
    }
    if buf.is_null() {
        return None;
    }
    // SAFETY: per the contract, buf holds n writable bytes.
    Some(unsafe { std::slice::from_raw_parts_mut(buf as *mut u8, n) })
}

/// # Safety
/// As [`buf_mut`], for reading.
unsafe fn buf_ref<'a>(buf: *const c_void, count: i64) -> Option<&'a [u8]> {
    let n = usize::try_from(count).ok()?;
    if n == 0 {
        return Some(&[]);
    }
    if buf.is_null() {
        return None;
    }
    // SAFETY: per the contract, buf holds n readable bytes.
    Some(unsafe { std::slice::from_raw_parts(buf as *const u8, n) })
}

unsafe extern "C" fn op_pread(
    dev: *mut sys::ntfs_device,
    buf: *mut c_void,
    count: i64,
    offset: i64,
) -> i64 {
    // SAFETY: the library passes a device of ours and a buffer of count bytes.
    let (Some(st), Some(b)) = (unsafe { state(dev) }, unsafe { buf_mut(buf, count) }) else {
        set_errno(libc::EINVAL);
        return -1;
    };
    match st.read_at(b, offset) {
        Ok(n) => n as i64,
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}

unsafe extern "C" fn op_pwrite(
    dev: *mut sys::ntfs_device,
    buf: *const c_void,
    count: i64,
    offset: i64,
) -> i64 {
    // SAFETY: as in op_pread.
    let (Some(st), Some(b)) = (unsafe { state(dev) }, unsafe { buf_ref(buf, count) }) else {
        set_errno(libc::EINVAL);
        return -1;
    };
    match st.write_at(b, offset) {
        Ok(n) => n as i64,
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}

unsafe extern "C" fn op_read(dev: *mut sys::ntfs_device, buf: *mut c_void, count: i64) -> i64 {
    // SAFETY: as in op_pread.
    let (Some(st), Some(b)) = (unsafe { state(dev) }, unsafe { buf_mut(buf, count) }) else {
        set_errno(libc::EINVAL);
        return -1;
    };
    let pos = st.pos as i64;
    match st.read_at(b, pos) {
        Ok(n) => {
            st.pos += n as u64;
            n as i64
        }
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}

unsafe extern "C" fn op_write(dev: *mut sys::ntfs_device, buf: *const c_void, count: i64) -> i64 {
    // SAFETY: as in op_pread.
    let (Some(st), Some(b)) = (unsafe { state(dev) }, unsafe { buf_ref(buf, count) }) else {
        set_errno(libc::EINVAL);
        return -1;
    };
    let pos = st.pos as i64;
    match st.write_at(b, pos) {
        Ok(n) => {
            st.pos += n as u64;
            n as i64
        }
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}

unsafe extern "C" fn op_sync(dev: *mut sys::ntfs_device) -> c_int {
    // SAFETY: as in op_open.
    let Some(st) = (unsafe { state(dev) }) else {
        set_errno(libc::EINVAL);
        return -1;
    };
    match st.sync() {
        Ok(()) => 0,
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}

unsafe extern "C" fn op_stat(dev: *mut sys::ntfs_device, buf: *mut libc::stat) -> c_int {
    // SAFETY: as in op_open; buf, when not null, is a struct stat.
    let (Some(st), Some(out)) = (unsafe { state(dev) }, unsafe { buf.as_mut() }) else {
        set_errno(libc::EINVAL);
        return -1;
    };
    // SAFETY: struct stat is plain data; all-zero is a valid value.
    *out = unsafe { std::mem::zeroed() };
    // The window looks like a regular file of the partition's size, so
    // the library never issues block-device ioctls.
    out.st_mode = libc::S_IFREG | 0o600;
    out.st_size = st.len as i64;
    out.st_blksize = 4096;
    out.st_blocks = st.len.div_ceil(512) as i64;
    0
}

unsafe extern "C" fn op_ioctl(
    _dev: *mut sys::ntfs_device,
    _req: c_ulong,
    _arg: *mut c_void,
) -> c_int {
    set_errno(libc::EOPNOTSUPP);
    -1
}

/// The operations table; one per device so that its address stays valid
/// as long as the device, whatever the library does with it.
fn operations() -> sys::ntfs_device_operations {
    sys::ntfs_device_operations {
        open: Some(op_open),
        close: Some(op_close),
        seek: Some(op_seek),
        read: Some(op_read),
        write: Some(op_write),
        pread: Some(op_pread),
        pwrite: Some(op_pwrite),
        sync: Some(op_sync),
        stat: Some(op_stat),
        ioctl: Some(op_ioctl),
    }
}

/// A device handle plus the Rust memory its callbacks use. The memory is
/// boxed so its address is stable while libntfs-3g holds it.
pub(crate) struct Device {
    pub(crate) dev: *mut sys::ntfs_device,
    pub(crate) state: Box<DeviceState>,
    _ops: Box<sys::ntfs_device_operations>,
}

impl Device {
    /// Allocates the libntfs-3g device; `None` when the library is out of
    /// memory.
    pub(crate) fn new(name: &str, state: DeviceState) -> Option<Device> {
        let mut state = Box::new(state);
        let mut ops = Box::new(operations());
        // The library copies the name; interior NULs cannot reach it.
        let cname = CString::new(name.replace('\0', "?")).ok()?;
        // SAFETY: cname is NUL-terminated; ops and state are boxed and
        // owned by the returned Device, which frees `dev` (or hands it to
        // ntfs_umount) before dropping them.
        let dev = unsafe {
            sys::ntfs_device_alloc(
                cname.as_ptr(),
                0,
                &mut *ops,
                &mut *state as *mut DeviceState as *mut c_void,
            )
        };
        if dev.is_null() {
            return None;
        }
        Some(Device {
            dev,
            state,
            _ops: ops,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(len: u64, writable: bool) -> (tempfile::NamedTempFile, DeviceState) {
        let f = tempfile::NamedTempFile::new().unwrap();
        let bytes: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        std::fs::write(f.path(), &bytes).unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(f.path())
            .unwrap();
        (f, DeviceState::new(file, 100, len, writable))
    }

    #[test]
    fn reads_and_writes_stay_inside_the_window() {
        let (f, mut st) = window(100, true);
        let mut b = [0u8; 10];
        assert_eq!(st.read_at(&mut b, 0), Ok(10));
        assert_eq!(b[0], 100);
        assert_eq!(st.read_at(&mut b, 90), Ok(10));
        assert_eq!(b[9], 199);
        // Crossing or past the end, or before the start: refused.
        assert_eq!(st.read_at(&mut b, 91), Err(libc::EIO));
        assert_eq!(st.read_at(&mut b, 1000), Err(libc::EIO));
        assert_eq!(st.read_at(&mut b, -1), Err(libc::EINVAL));
        assert_eq!(st.read_at(&mut b, i64::MAX), Err(libc::EIO));
        assert!(st.fault.as_deref().unwrap().contains("past the end"));
        assert_eq!(st.write_at(&[7; 10], 95), Err(libc::EIO));
        assert_eq!(st.write_at(&[7; 10], 90), Ok(10));
        let on_disk = std::fs::read(f.path()).unwrap();
        assert_eq!(&on_disk[190..200], &[7; 10]);
        // Bytes outside the window are untouched.
        assert_eq!(on_disk[200], 200);
        assert_eq!(on_disk[99], 99);
    }

    #[test]
    fn read_only_window_refuses_writes() {
        let (_f, mut st) = window(100, false);
        assert_eq!(st.write_at(&[1], 0), Err(libc::EROFS));
    }

    #[test]
    fn seek_is_bounded() {
        let (_f, mut st) = window(100, false);
        assert_eq!(st.seek(0, libc::SEEK_END), Ok(100));
        assert_eq!(st.seek(-10, libc::SEEK_CUR), Ok(90));
        assert_eq!(st.seek(1, libc::SEEK_END), Err(libc::EINVAL));
        assert_eq!(st.seek(-1, libc::SEEK_SET), Err(libc::EINVAL));
        assert_eq!(st.seek(0, 99), Err(libc::EINVAL));
    }

    #[test]
    fn callbacks_through_the_library_table() {
        let (_f, st) = window(100, false);
        let d = Device::new("window", st).unwrap();
        let ops = operations();
        let mut b = [0u8; 4];
        // SAFETY: d.dev is a live device whose private data is d.state.
        unsafe {
            assert_eq!(ops.open.unwrap()(d.dev, libc::O_RDWR), -1);
            assert_eq!(ops.open.unwrap()(d.dev, libc::O_RDONLY), 0);
            assert_eq!(ops.open.unwrap()(d.dev, libc::O_RDONLY), -1);
            assert_eq!(ops.pread.unwrap()(d.dev, b.as_mut_ptr().cast(), 4, 96), 4);
            assert_eq!(b, [196, 197, 198, 199]);
            assert_eq!(ops.pread.unwrap()(d.dev, b.as_mut_ptr().cast(), 4, 97), -1);
            assert_eq!(ops.seek.unwrap()(d.dev, 2, libc::SEEK_SET), 2);
            assert_eq!(ops.read.unwrap()(d.dev, b.as_mut_ptr().cast(), 2), 2);
            assert_eq!(&b[..2], &[102, 103]);
            let mut s: libc::stat = std::mem::zeroed();
            assert_eq!(ops.stat.unwrap()(d.dev, &mut s), 0);
            assert_eq!(s.st_size, 100);
            assert_eq!(ops.close.unwrap()(d.dev), 0);
            assert_eq!(sys::ntfs_device_free(d.dev), 0);
        }
    }
}
