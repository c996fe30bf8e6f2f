//! Errors of the WIM crate. Every variant says *what* was being read or
//! written (which resource, which image, which path) so that the CLI can
//! print one clear line.

use std::io;
use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = WimError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum WimError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("{path}: not a WIM file: {reason}")]
    NotAWim { path: PathBuf, reason: String },
    #[error("invalid WIM header: {0}")]
    InvalidHeader(String),
    #[error("invalid {what}: {reason}")]
    InvalidResource { what: String, reason: String },
    #[error("invalid blob table: {0}")]
    InvalidBlobTable(String),
    #[error("image {image}: invalid metadata: {reason}")]
    InvalidMetadata { image: u32, reason: String },
    #[error("invalid XML data: {0}")]
    InvalidXml(String),
    #[error("{what}: SHA-1 mismatch (data is corrupt): expected {expected}, got {actual}")]
    HashMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what}: {source}")]
    Decompress {
        what: String,
        #[source]
        source: tasq_codecs::DecompressError,
    },
    #[error("integrity check failed: {0}")]
    Integrity(String),
    #[error("no image {0} in this WIM")]
    ImageNotFound(String),
    #[error("blob {hash} (needed by {needed_by}) is not in this WIM")]
    MissingBlob { hash: String, needed_by: String },
    #[error("unsafe name in image {image}: {path:?}: {reason}")]
    UnsafeName {
        image: u32,
        path: String,
        reason: String,
    },
    #[error("capture of {path}: {reason}")]
    Capture { path: String, reason: String },
    #[error("apply of {path}: {reason}")]
    Apply { path: String, reason: String },
    #[error("{path}: {reason}")]
    SplitSet { path: PathBuf, reason: String },
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("operation cancelled")]
    Cancelled,
}

impl WimError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        WimError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn resource(what: impl Into<String>, reason: impl Into<String>) -> Self {
        WimError::InvalidResource {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

/// Adds context to `io::Result`s.
pub(crate) trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| WimError::io(context(), e))
    }
}
