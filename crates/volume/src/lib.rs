//! File system backends for WIM imaging: each backend implements
//! [`tasq_wim::capture::CaptureSource`] (walk a tree into an image) and
//! [`tasq_wim::apply::ApplyTarget`] (materialise an image), so the WIM code
//! never asks which file system it is talking to.
//!
//! - [`hostdir`]: an ordinary directory tree on Linux, treated the way
//!   `wimlib-imagex` treats one (no `--unix-data`), so that images made by
//!   either tool apply with the other.
//!
//! - [`ntfs`] (feature `ntfs`, on by default): an unmounted NTFS volume in
//!   an image file or device, at a byte offset, through libntfs-3g. A
//!   build with this feature links a GPL library (see the module's notes).
//! - [`fs`]: file-level access ([`fs::VolumeFs`]) for steps that write
//!   single files onto a volume (unattend, drivers, boot files), with
//!   backends for NTFS ([`NtfsFs`]), FAT ([`FatFs`]) and host directories
//!   ([`HostDirFs`]); [`open_volume`] picks one by file system.
//! - [`fat`]: a FAT12/16/32 volume at an offset inside a disk image or
//!   device (long names, attributes, times), through `fatfs`.

pub mod fat;
pub mod fs;
pub mod hostdir;
#[cfg(feature = "ntfs")]
pub mod ntfs;

pub use fat::{FatFs, FatSource, FatTarget};
pub use fs::{open_volume, VolPath, VolumeFs};
pub use hostdir::{HostDirFs, HostDirSource, HostDirTarget};
#[cfg(feature = "ntfs")]
pub use ntfs::{NtfsFs, NtfsSource, NtfsTarget, NtfsVolume};
