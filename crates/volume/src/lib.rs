//! File system backends for WIM imaging: each backend implements
//! [`tasq_wim::capture::CaptureSource`] (walk a tree into an image) and
//! [`tasq_wim::apply::ApplyTarget`] (materialise an image), so the WIM code
//! never asks which file system it is talking to.
//!
//! - [`hostdir`]: an ordinary directory tree on Linux, treated the way
//!   `wimlib-imagex` treats one (no `--unix-data`), so that images made by
//!   either tool apply with the other.
//!
//! - [`fat`]: a FAT12/16/32 volume at an offset inside a disk image or
//!   device (long names, attributes, times), through `fatfs`.
//!
//! The NTFS backend (through libntfs-3g) sits beside them.

pub mod fat;
pub mod hostdir;

pub use fat::{FatSource, FatTarget};
pub use hostdir::{HostDirSource, HostDirTarget};
