//! Errors of the disk crate. Every variant names the disk (its path) and,
//! where one is concerned, the partition, so that a caller can print one
//! clear line such as `disk.img: partition 3: ends at sector 9000 beyond
//! the disk end (8192 sectors)`.

use std::io;

/// Result alias of this crate.
pub type Result<T, E = DiskError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// An I/O error while doing `context` on `disk`.
    #[error("{disk}: {context}: {source}")]
    Io {
        disk: String,
        context: String,
        #[source]
        source: io::Error,
    },
    /// The partition table cannot be read (bad signature, CRC, overlap...).
    #[error("{disk}: damaged partition table: {reason}")]
    BadTable { disk: String, reason: String },
    /// One partition entry is wrong (beyond the disk end, ...).
    #[error("{disk}: partition {index}: {reason}")]
    BadPartition {
        disk: String,
        index: u32,
        reason: String,
    },
    /// A layout cannot be placed on this disk or is malformed.
    #[error("{disk}: layout: {reason}")]
    Layout { disk: String, reason: String },
    /// A layout file or text cannot be parsed.
    #[error("layout {source_name}: {reason}")]
    LayoutParse { source_name: String, reason: String },
    /// Formatting a partition failed.
    #[error("{disk}: partition {index}: format as {fs}: {reason}")]
    Format {
        disk: String,
        index: u32,
        fs: String,
        reason: String,
    },
    /// A file system cannot be read.
    #[error("{disk}: partition {index}: {reason}")]
    FileSystem {
        disk: String,
        index: u32,
        reason: String,
    },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl DiskError {
    pub fn io(disk: impl Into<String>, context: impl Into<String>, source: io::Error) -> Self {
        DiskError::Io {
            disk: disk.into(),
            context: context.into(),
            source,
        }
    }
}
