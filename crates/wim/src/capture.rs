//! The capture seam: a [`CaptureSource`] walks some file system (a host
//! directory, an NTFS or FAT volume) and describes it as an [`ImageTree`];
//! the writer then pulls each stream's bytes through [`CaptureSource::open_stream`].
//! The WIM code never asks which file system it is talking to.

use std::io::Read;

use crate::error::Result;
use crate::image::ImageTree;

/// Progress of a scan, for progress displays.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScanProgress {
    pub dirs: u64,
    pub files: u64,
    pub bytes: u64,
}

/// Decides which paths are left out of a capture (exclusion lists).
pub trait CaptureFilter {
    /// `path` is the path inside the image, `\`-separated with a leading
    /// `\` (e.g. `\Windows\CSC`). Returns true to leave it out (with its
    /// contents, for a directory).
    fn is_excluded(&self, path: &str) -> bool;
}

/// Excludes nothing.
pub struct NoFilter;

impl CaptureFilter for NoFilter {
    fn is_excluded(&self, _path: &str) -> bool {
        false
    }
}

/// A file system tree that can be captured into a WIM image.
pub trait CaptureSource {
    /// What is being captured, for messages ("directory /src").
    fn describe(&self) -> String;

    /// Builds the image tree: names, short names, attributes, times,
    /// security descriptors (in `ImageTree::security`), reparse data,
    /// hard links (several dentries sharing an inode) and streams. Each
    /// stream carries its `size` and a [`StreamSource`](crate::image::StreamSource)
    /// (`External(id)` for data read later, `Inline` for small data such
    /// as reparse buffers); hashes are left zero for the writer to fill.
    fn scan(
        &mut self,
        filter: &dyn CaptureFilter,
        progress: &mut dyn FnMut(ScanProgress),
    ) -> Result<ImageTree>;

    /// Opens the content of the stream whose source is `External(id)`.
    /// The reader must yield exactly the size recorded at scan time, or
    /// fail (a file that changed during capture is an error, not silent
    /// corruption).
    fn open_stream(&self, id: u64) -> Result<Box<dyn Read + Send + '_>>;
}

impl CaptureFilter for crate::capture_config::CaptureConfig {
    fn is_excluded(&self, path: &str) -> bool {
        self.is_excluded_entry(path)
    }
}
