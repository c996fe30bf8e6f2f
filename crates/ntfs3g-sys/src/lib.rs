//! Raw FFI to libntfs-3g (Debian's `ntfs-3g-dev`, 2022.10.3), for tasq's
//! NTFS volume backend.
//!
//! The function declarations below are written by hand from the installed
//! headers (`/usr/include/ntfs-3g/*.h`; bindgen is not used because the
//! build machines have no libclang). Only the calls tasq needs are
//! declared. Every struct is opaque on the Rust side: the fields we read
//! (and the `NDev*` flag macros) go through `src/shim.c`, which is compiled
//! against the same headers, so no C layout is duplicated here except the
//! function-pointer table `ntfs_device_operations`, whose layout is plain
//! (ten pointers, in header order).
//!
//! Licence: GPL-2.0-or-later, as libntfs-3g. Linking this crate makes the
//! resulting binary subject to the GPL.

#![allow(non_camel_case_types, non_upper_case_globals)]

/// Re-exported so that users see the same C types as these declarations.
pub use libc;

use libc::{c_char, c_int, c_long, c_uint, c_ulong, c_void, mode_t, size_t};

pub type ntfschar = u16;
pub type MFT_REF = u64;
pub type s64 = i64;
pub type ATTR_TYPES = u32;
pub type BOOL = c_int;

/// Declares an opaque C struct that Rust only handles through pointers.
macro_rules! opaque {
    ($($name:ident),*) => {$(
        #[repr(C)]
        pub struct $name {
            _private: [u8; 0],
            // Not Send, not Sync, not Unpin: the library owns it.
            _marker: core::marker::PhantomData<(*mut u8, core::marker::PhantomPinned)>,
        }
    )*};
}

opaque!(
    ntfs_device,
    ntfs_volume,
    ntfs_inode,
    ntfs_attr,
    ntfs_attr_search_ctx
);

/// `struct ntfs_device_operations` (device.h): the I/O callbacks a device
/// provides. Order and types as in the header.
#[repr(C)]
pub struct ntfs_device_operations {
    pub open: Option<unsafe extern "C" fn(dev: *mut ntfs_device, flags: c_int) -> c_int>,
    pub close: Option<unsafe extern "C" fn(dev: *mut ntfs_device) -> c_int>,
    pub seek:
        Option<unsafe extern "C" fn(dev: *mut ntfs_device, offset: s64, whence: c_int) -> s64>,
    pub read:
        Option<unsafe extern "C" fn(dev: *mut ntfs_device, buf: *mut c_void, count: s64) -> s64>,
    pub write:
        Option<unsafe extern "C" fn(dev: *mut ntfs_device, buf: *const c_void, count: s64) -> s64>,
    pub pread: Option<
        unsafe extern "C" fn(
            dev: *mut ntfs_device,
            buf: *mut c_void,
            count: s64,
            offset: s64,
        ) -> s64,
    >,
    pub pwrite: Option<
        unsafe extern "C" fn(
            dev: *mut ntfs_device,
            buf: *const c_void,
            count: s64,
            offset: s64,
        ) -> s64,
    >,
    pub sync: Option<unsafe extern "C" fn(dev: *mut ntfs_device) -> c_int>,
    pub stat: Option<unsafe extern "C" fn(dev: *mut ntfs_device, buf: *mut libc::stat) -> c_int>,
    pub ioctl: Option<
        unsafe extern "C" fn(dev: *mut ntfs_device, request: c_ulong, argp: *mut c_void) -> c_int,
    >,
}

/// `ntfs_filldir_t` (dir.h): called by `ntfs_readdir` once per index entry.
pub type ntfs_filldir_t = Option<
    unsafe extern "C" fn(
        dirent: *mut c_void,
        name: *const ntfschar,
        name_len: c_int,
        name_type: c_int,
        pos: s64,
        mref: MFT_REF,
        dt_type: c_uint,
    ) -> c_int,
>;

// Mount flags (volume.h).
pub const NTFS_MNT_NONE: c_ulong = 0;
pub const NTFS_MNT_RDONLY: c_ulong = 0x0000_0001;
pub const NTFS_MNT_EXCLUSIVE: c_ulong = 0x0800_0000;
pub const NTFS_MNT_IGNORE_HIBERFILE: c_ulong = 0x2000_0000;

// Attribute types (layout.h).
pub const AT_STANDARD_INFORMATION: ATTR_TYPES = 0x10;
pub const AT_FILE_NAME: ATTR_TYPES = 0x30;
pub const AT_OBJECT_ID: ATTR_TYPES = 0x40;
pub const AT_DATA: ATTR_TYPES = 0x80;
pub const AT_REPARSE_POINT: ATTR_TYPES = 0xc0;

// FILE_NAME namespaces (layout.h).
pub const FILE_NAME_POSIX: c_int = 0x00;
pub const FILE_NAME_WIN32: c_int = 0x01;
pub const FILE_NAME_DOS: c_int = 0x02;
pub const FILE_NAME_WIN32_AND_DOS: c_int = 0x03;

/// MFT record number of the root directory (layout.h).
pub const FILE_root: u64 = 5;
/// First MFT record that is not a system file.
pub const FILE_first_user: u64 = 16;
/// The low 48 bits of an MFT reference are the record number.
pub const MFT_REF_MASK: u64 = 0x0000_FFFF_FFFF_FFFF;

// IGNORE_CASE_BOOL (types.h).
pub const CASE_SENSITIVE: c_int = 0;

// Log levels (logging.h).
pub const NTFS_LOG_LEVEL_ERROR: u32 = 1 << 7;

extern "C" {
    /// The empty name of unnamed attributes (attrib.h). The library
    /// compares pointers against it, so unnamed attributes must be opened
    /// with this exact address.
    pub static mut AT_UNNAMED: [ntfschar; 0];

    // device.h
    pub fn ntfs_device_alloc(
        name: *const c_char,
        state: c_long,
        dops: *mut ntfs_device_operations,
        priv_data: *mut c_void,
    ) -> *mut ntfs_device;
    pub fn ntfs_device_free(dev: *mut ntfs_device) -> c_int;

    // volume.h
    pub fn ntfs_device_mount(dev: *mut ntfs_device, flags: c_ulong) -> *mut ntfs_volume;
    pub fn ntfs_umount(vol: *mut ntfs_volume, force: BOOL) -> c_int;
    pub fn ntfs_volume_get_free_space(vol: *mut ntfs_volume) -> c_int;
    pub fn ntfs_set_shown_files(
        vol: *mut ntfs_volume,
        show_sys_files: BOOL,
        show_hid_files: BOOL,
        hide_dot_files: BOOL,
    ) -> c_int;

    // cache.h
    pub fn ntfs_create_lru_caches(vol: *mut ntfs_volume);

    // security.h
    pub fn ntfs_open_secure(vol: *mut ntfs_volume) -> c_int;
    pub fn ntfs_close_secure(vol: *mut ntfs_volume) -> c_int;
    pub fn ntfs_get_ntfs_attrib(ni: *mut ntfs_inode, value: *mut c_char, size: size_t) -> c_int;
    pub fn ntfs_set_ntfs_attrib(
        ni: *mut ntfs_inode,
        value: *const c_char,
        size: size_t,
        flags: c_int,
    ) -> c_int;

    // inode.h
    pub fn ntfs_inode_open(vol: *mut ntfs_volume, mref: MFT_REF) -> *mut ntfs_inode;
    pub fn ntfs_inode_close(ni: *mut ntfs_inode) -> c_int;
    pub fn ntfs_inode_close_in_dir(ni: *mut ntfs_inode, dir_ni: *mut ntfs_inode) -> c_int;
    pub fn ntfs_inode_get_times(ni: *mut ntfs_inode, value: *mut c_char, size: size_t) -> c_int;
    pub fn ntfs_inode_set_times(
        ni: *mut ntfs_inode,
        value: *const c_char,
        size: size_t,
        flags: c_int,
    ) -> c_int;

    // dir.h
    pub fn ntfs_readdir(
        dir_ni: *mut ntfs_inode,
        pos: *mut s64,
        dirent: *mut c_void,
        filldir: ntfs_filldir_t,
    ) -> c_int;
    pub fn ntfs_create(
        dir_ni: *mut ntfs_inode,
        securid: u32,
        name: *const ntfschar,
        name_len: u8,
        type_: mode_t,
    ) -> *mut ntfs_inode;
    /// Looks `uname` up in a directory's index (exact match on a volume
    /// mounted case-sensitive, the default). Returns the MFT reference, or
    /// `u64::MAX` (-1) with errno set (`ENOENT`: no such name).
    pub fn ntfs_inode_lookup_by_name(
        dir_ni: *mut ntfs_inode,
        uname: *const ntfschar,
        uname_len: c_int,
    ) -> u64;
    /// Removes the name `name` of `ni` from `dir_ni` (its DOS twin too), and
    /// the file when that was its last name. Always closes `ni`; `dir_ni`
    /// stays open. `pathname` may be null (only used for cache upkeep).
    pub fn ntfs_delete(
        vol: *mut ntfs_volume,
        pathname: *const c_char,
        ni: *mut ntfs_inode,
        dir_ni: *mut ntfs_inode,
        name: *const ntfschar,
        name_len: u8,
    ) -> c_int;
    pub fn ntfs_link(
        ni: *mut ntfs_inode,
        dir_ni: *mut ntfs_inode,
        name: *const ntfschar,
        name_len: u8,
    ) -> c_int;
    /// Closes both inodes, whatever the outcome. `value` is UTF-8.
    pub fn ntfs_set_ntfs_dos_name(
        ni: *mut ntfs_inode,
        dir_ni: *mut ntfs_inode,
        value: *const c_char,
        size: size_t,
        flags: c_int,
    ) -> c_int;

    // reparse.h
    pub fn ntfs_get_ntfs_reparse_data(
        ni: *mut ntfs_inode,
        value: *mut c_char,
        size: size_t,
    ) -> c_int;
    pub fn ntfs_set_ntfs_reparse_data(
        ni: *mut ntfs_inode,
        value: *const c_char,
        size: size_t,
        flags: c_int,
    ) -> c_int;

    // object_id.h
    pub fn ntfs_get_ntfs_object_id(ni: *mut ntfs_inode, value: *mut c_char, size: size_t) -> c_int;
    pub fn ntfs_set_ntfs_object_id(
        ni: *mut ntfs_inode,
        value: *const c_char,
        size: size_t,
        flags: c_int,
    ) -> c_int;

    // attrib.h
    pub fn ntfs_attr_get_search_ctx(
        ni: *mut ntfs_inode,
        mrec: *mut c_void,
    ) -> *mut ntfs_attr_search_ctx;
    pub fn ntfs_attr_put_search_ctx(ctx: *mut ntfs_attr_search_ctx);
    pub fn ntfs_attr_lookup(
        type_: ATTR_TYPES,
        name: *const ntfschar,
        name_len: u32,
        ic: c_int,
        lowest_vcn: s64,
        val: *const u8,
        val_len: u32,
        ctx: *mut ntfs_attr_search_ctx,
    ) -> c_int;
    pub fn ntfs_attr_open(
        ni: *mut ntfs_inode,
        type_: ATTR_TYPES,
        name: *mut ntfschar,
        name_len: u32,
    ) -> *mut ntfs_attr;
    pub fn ntfs_attr_close(na: *mut ntfs_attr);
    pub fn ntfs_attr_pread(na: *mut ntfs_attr, pos: s64, count: s64, b: *mut c_void) -> s64;
    pub fn ntfs_attr_pwrite(na: *mut ntfs_attr, pos: s64, count: s64, b: *const c_void) -> s64;
    pub fn ntfs_attr_pclose(na: *mut ntfs_attr) -> c_int;
    pub fn ntfs_attr_truncate(na: *mut ntfs_attr, newsize: s64) -> c_int;
    pub fn ntfs_attr_truncate_solid(na: *mut ntfs_attr, newsize: s64) -> c_int;
    pub fn ntfs_attr_add(
        ni: *mut ntfs_inode,
        type_: ATTR_TYPES,
        name: *mut ntfschar,
        name_len: u8,
        val: *const u8,
        size: s64,
    ) -> c_int;

    // src/shim.c
    pub fn tasq_ntfs_device_private(dev: *mut ntfs_device) -> *mut c_void;
    pub fn tasq_ntfs_device_set_open(dev: *mut ntfs_device, readonly: c_int);
    pub fn tasq_ntfs_device_clear_open(dev: *mut ntfs_device);
    pub fn tasq_ntfs_device_is_open(dev: *mut ntfs_device) -> c_int;
    pub fn tasq_ntfs_volume_info(
        vol: *mut ntfs_volume,
        cluster_size: *mut u32,
        nr_clusters: *mut s64,
        free_clusters: *mut s64,
        major_ver: *mut u8,
        minor_ver: *mut u8,
    );
    pub fn tasq_ntfs_volume_has_secure(vol: *mut ntfs_volume) -> c_int;
    pub fn tasq_ntfs_inode_mft_no(ni: *mut ntfs_inode) -> u64;
    /// `ntfs_inode_lookup_by_name` ignoring case (the volume's $UpCase).
    pub fn tasq_ntfs_lookup_nocase(
        dir_ni: *mut ntfs_inode,
        name: *const ntfschar,
        name_len: c_int,
    ) -> u64;
    /// The security id a new file (`fordir` 0) or directory inherits from
    /// `dir_ni`, 0 if none (then `ntfs_create` gives a default descriptor).
    pub fn tasq_ntfs_inherited_id(
        vol: *mut ntfs_volume,
        dir_ni: *mut ntfs_inode,
        fordir: c_int,
    ) -> u32;
    pub fn tasq_ntfs_get_acl(
        vol: *mut ntfs_volume,
        ni: *mut ntfs_inode,
        buf: *mut c_char,
        size: size_t,
    ) -> c_int;
    pub fn tasq_ntfs_set_acl(
        vol: *mut ntfs_volume,
        ni: *mut ntfs_inode,
        buf: *const c_char,
        size: size_t,
    ) -> c_int;
    pub fn tasq_ntfs_ctx_attr(
        ctx: *mut ntfs_attr_search_ctx,
        name: *mut *const ntfschar,
        name_len: *mut u32,
        value_len: *mut s64,
    );
    pub fn tasq_ntfs_attr_is_compressed(na: *mut ntfs_attr) -> c_int;
    pub fn tasq_ntfs_attr_data_size(na: *mut ntfs_attr) -> s64;
    pub fn tasq_ntfs_log_init();
    pub fn tasq_ntfs_log_take(buf: *mut c_char, size: size_t) -> size_t;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The library links and its log hook works: a mount of a device
    /// whose open fails leaves a message and a null volume.
    #[test]
    fn links_and_reports_open_failure() {
        unsafe extern "C" fn fail_open(_dev: *mut ntfs_device, _flags: c_int) -> c_int {
            // SAFETY: errno is thread-local; setting it is always sound.
            unsafe { *libc::__errno_location() = libc::EIO };
            -1
        }
        let mut ops = ntfs_device_operations {
            open: Some(fail_open),
            close: None,
            seek: None,
            read: None,
            write: None,
            pread: None,
            pwrite: None,
            sync: None,
            stat: None,
            ioctl: None,
        };
        // SAFETY: the name is a NUL-terminated literal; ops outlives the
        // device, which is freed before returning.
        unsafe {
            tasq_ntfs_log_init();
            let dev = ntfs_device_alloc(c"test".as_ptr(), 0, &mut ops, std::ptr::null_mut());
            assert!(!dev.is_null());
            let vol = ntfs_device_mount(dev, NTFS_MNT_RDONLY);
            assert!(vol.is_null());
            assert_eq!(tasq_ntfs_device_is_open(dev), 0);
            assert_eq!(ntfs_device_free(dev), 0);
            let mut buf = [0 as c_char; 256];
            let n = tasq_ntfs_log_take(buf.as_mut_ptr(), buf.len());
            let msg = std::ffi::CStr::from_ptr(buf.as_ptr()).to_string_lossy();
            assert!(n > 0 && msg.contains("test"), "{msg}");
        }
    }
}
