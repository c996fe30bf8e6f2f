//! The WIM container: read, write, capture and apply Windows Imaging files,
//! interchangeable with DISM and wimlib.
//!
//! Layout of the crate, one concern per file: [`header`], [`reshdr`],
//! [`blob_table`], [`security`], [`metadata`] (dentry tree), [`image`] (the
//! in-memory model), [`xml`] (image information), [`integrity`],
//! [`resource`] (chunked resources), [`reader`] and [`writer`], rebuilding
//! ([`optimize`]), and the two
//! seams to file systems: [`capture::CaptureSource`] and
//! [`apply::ApplyTarget`].

pub mod apply;
pub mod blob_table;
pub mod capture;
pub mod capture_config;
pub mod error;
pub mod extract;
pub mod hash;
mod hashstage;
pub mod header;
pub mod image;
pub mod integrity;
pub mod memfs;
pub mod metadata;
pub mod optimize;
pub mod pool;
pub mod reader;
pub mod reparse;
pub mod reshdr;
pub mod resource;
pub mod security;
pub mod split;
pub mod verify;
pub mod writer;
pub mod xml;

pub use error::{Result, WimError};
pub use hash::Sha1Hash;
pub use tasq_codecs::CompressionFormat;
