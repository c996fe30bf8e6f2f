//! The FAT backend: capture from, and apply to, a FAT12/16/32 volume that
//! lies at an offset inside a disk image or block device, without
//! mounting it.
//!
//! - [`capture`]: [`FatSource`] walks the volume with the raw reader of
//!   `tasq_disk::fat` (long names, 8.3 names, attributes, the three
//!   times) and reads file data by cluster runs straight from the disk.
//! - [`apply`]: [`FatTarget`] creates directories and files through the
//!   `fatfs` crate (which allocates clusters and writes long-name entries)
//!   and then sets each entry's attributes and times with the raw writer,
//!   which fatfs 0.3 has no call for.
//!
//! FAT has no security descriptors, named streams, reparse points or hard
//! links. On apply these are dropped with a warning (a hard link becomes
//! a copy of the data). FAT times are local times without a zone; both
//! directions read and write them as UTC, as a boot environment running
//! in UTC does. Creation times keep 10 ms, write times 2 s, access times
//! the day.

pub mod apply;
pub mod capture;

pub use apply::FatTarget;
pub use capture::FatSource;

use tasq_wim::image::{
    FILE_ATTRIBUTE_ARCHIVE, FILE_ATTRIBUTE_DIRECTORY, FILE_ATTRIBUTE_HIDDEN, FILE_ATTRIBUTE_NORMAL,
    FILE_ATTRIBUTE_READONLY, FILE_ATTRIBUTE_SYSTEM,
};

/// The Windows attributes that FAT keeps (the same bit values).
pub const FAT_ATTRIBUTES: u32 = FILE_ATTRIBUTE_READONLY
    | FILE_ATTRIBUTE_HIDDEN
    | FILE_ATTRIBUTE_SYSTEM
    | FILE_ATTRIBUTE_DIRECTORY
    | FILE_ATTRIBUTE_ARCHIVE;

/// FAT attribute byte → Windows attributes (a file with none is NORMAL).
pub fn attributes_from_fat(a: u8) -> u32 {
    let w = a as u32 & FAT_ATTRIBUTES;
    if w == 0 {
        FILE_ATTRIBUTE_NORMAL
    } else {
        w
    }
}
