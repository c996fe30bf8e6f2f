//! Rebuilding a WIM in place of itself, as `wimlib-imagex optimize` does:
//! every image, its XML description and the boot index are kept; blobs no
//! image refers to and the holes left by deletions or appends are not.
//! The new WIM is written into a temporary file beside the old one and
//! renamed over it only when complete, so on any failure the old file is
//! left as it was.
//!
//! Without a change of compression, stored resources are copied as they
//! are (no recompression): ordinary resources of the WIM's own compression
//! and chunk size, and solid resources of a solid WIM that are more than
//! two thirds in use. `recompress`, a `compression` or explicit `solid`
//! options recompress everything, as wimlib does.

use std::path::Path;

use crate::error::{IoContext, Result, WimError};
use crate::reader::Wim;
use crate::writer::{ImageOptions, SolidOptions, WimWriter, WriteOptions};
use crate::CompressionFormat;

/// How to rebuild.
#[derive(Debug, Clone, Default)]
pub struct OptimizeOptions {
    /// New compression of ordinary resources and its level (wimlib's
    /// scale); `None` keeps the WIM's. Implies `recompress`, and without
    /// `solid` the result is not solid.
    pub compression: Option<(CompressionFormat, u32)>,
    /// Chunk size of ordinary resources; `None` keeps the WIM's (or the
    /// format's default when the compression changes).
    pub chunk_size: Option<u32>,
    /// Write file data into solid resources of these options (implies
    /// `recompress`). Without it, a WIM with solid resources stays solid
    /// in its first solid resource's format, unless `compression` is given.
    pub solid: Option<SolidOptions>,
    /// Compress every blob again instead of copying stored resources.
    pub recompress: bool,
    /// Integrity table: `None` keeps one if the WIM has one.
    pub integrity: Option<bool>,
    /// Compressor threads; 0 = one per core.
    pub threads: usize,
    /// See [`WimWriter::set_deterministic`].
    pub deterministic: bool,
}

/// What a rebuild did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptimizeReport {
    pub old_size: u64,
    pub new_size: u64,
}

/// wimlib's default chunk size of ordinary resources per format.
pub fn default_chunk_size(format: CompressionFormat) -> u32 {
    match format {
        CompressionFormat::Lzms => 131_072,
        _ => 32768,
    }
}

/// Rebuilds the WIM at `path` (see the module documentation).
pub fn optimize(path: &Path, o: &OptimizeOptions) -> Result<OptimizeReport> {
    // Through a symbolic link: the file it names is replaced, not the link.
    let path = &path
        .canonicalize()
        .ctx(|| format!("opening {}", path.display()))?;
    let wim = Wim::open(path)?;
    let permissions = wim
        .file()
        .metadata()
        .ctx(|| format!("reading {}", path.display()))?
        .permissions();
    if wim.header.total_parts > 1 {
        return Err(WimError::Unsupported(format!(
            "{}: cannot optimize one part of a split WIM (join the parts first)",
            path.display()
        )));
    }
    if wim.header.pipable {
        return Err(WimError::Unsupported(format!(
            "{}: cannot optimize a pipable WIM in place (tasq reads pipable WIMs; \
             `tasq wim export` its images into a normal WIM)",
            path.display()
        )));
    }
    let old_size = wim.file_size();
    let (compression, level) = o.compression.unwrap_or((wim.compression(), 50));
    let chunk_size = match o.chunk_size {
        Some(c) => c,
        None if compression == wim.compression() && wim.header.chunk_size != 0 => {
            wim.header.chunk_size
        }
        None => default_chunk_size(compression),
    };
    let solid = match (o.solid, o.compression) {
        (Some(s), _) => Some(s),
        (None, Some(_)) => None,
        (None, None) => wim.solid.first().map(|r| SolidOptions {
            compression: r.format,
            chunk_size: r.chunk_size,
        }),
    };
    let opts = WriteOptions {
        compression,
        chunk_size,
        level,
        threads: o.threads,
        integrity: o.integrity.unwrap_or(!wim.header.integrity.is_empty()),
        solid,
    };
    let mut w = WimWriter::create(path, opts)?;
    w.set_recompress(o.recompress || o.compression.is_some() || o.solid.is_some());
    w.set_deterministic(o.deterministic);
    let images: Vec<(u32, ImageOptions)> = (1..=wim.image_count())
        .map(|n| (n, ImageOptions::default()))
        .collect();
    w.add_images_from(&wim, &images)?;
    w.keep_descriptive_data_of(&wim);
    w.set_boot_index(wim.header.boot_index)?;
    w.finish()?;
    std::fs::set_permissions(path, permissions)
        .ctx(|| format!("setting the permissions of {}", path.display()))?;
    let new_size = std::fs::metadata(path)
        .ctx(|| format!("reading the size of {}", path.display()))?
        .len();
    Ok(OptimizeReport { old_size, new_size })
}
