//! Compression codecs used inside WIM files.
//!
//! Every codec works on one *chunk* at a time: a chunk is compressed
//! independently of every other chunk (WIM resources are cut into 32 KiB
//! chunks by default), so the functions here are pure transformations of
//! byte slices with no I/O. That makes them easy to fuzz, to benchmark and to
//! run on several threads at once.
//!
//! Conventions shared by all codecs:
//! - A compressor returns `None` when the chunk does not shrink; the WIM
//!   writer then stores the chunk raw (the format marks a raw chunk by its
//!   compressed size being equal to its uncompressed size).
//! - A decompressor is told the exact uncompressed size (the output slice's
//!   length) and fails with [`DecompressError`] if the input does not decode
//!   to exactly that many bytes. It never panics and never reads or writes
//!   out of bounds, whatever the input.

mod lz;
pub mod lzms;
pub mod lzx;
pub mod xpress;

use std::fmt;

/// Why a chunk could not be decompressed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecompressError {
    /// The compressed bytes are not a valid stream of this format.
    #[error("corrupt {format} data: {reason}")]
    Corrupt {
        format: CompressionFormat,
        reason: &'static str,
    },
    /// The chunk is larger than this decompressor was created for.
    #[error("{format} chunk of {size} bytes exceeds the maximum chunk size {max}")]
    ChunkTooLarge {
        format: CompressionFormat,
        size: usize,
        max: usize,
    },
}

/// The compression formats of the WIM container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompressionFormat {
    None,
    Xpress,
    Lzx,
    Lzms,
}

impl fmt::Display for CompressionFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CompressionFormat::None => "uncompressed",
            CompressionFormat::Xpress => "XPRESS",
            CompressionFormat::Lzx => "LZX",
            CompressionFormat::Lzms => "LZMS",
        })
    }
}

/// A reusable chunk compressor (it keeps its work buffers between calls).
pub trait Compressor: Send {
    /// Compresses `input` (at most the maximum chunk size given at creation)
    /// into `output`. Returns the compressed size when it is strictly smaller
    /// than `input.len()`, or `None` when the chunk does not shrink (then the
    /// content of `output` is unspecified). `output` must be at least
    /// `input.len()` bytes long.
    fn compress(&mut self, input: &[u8], output: &mut [u8]) -> Option<usize>;

    /// Like [`compress`](Self::compress), but may use `input` as scratch
    /// space instead of copying it (LZMS filters its 64 MiB solid chunks in
    /// place): when this returns `None`, `input` holds its original bytes
    /// again; after `Some`, its content is unspecified.
    fn compress_in_place(&mut self, input: &mut [u8], output: &mut [u8]) -> Option<usize> {
        self.compress(input, output)
    }
}

/// A reusable chunk decompressor.
pub trait Decompressor: Send {
    /// Decompresses `input` into exactly `output.len()` bytes.
    fn decompress(&mut self, input: &[u8], output: &mut [u8]) -> Result<(), DecompressError>;
}

/// A compressor for `format` able to take chunks of up to `max_chunk_size`
/// bytes. `level` follows wimlib's scale (20 quick, 50 default, 100 slow).
/// Returns `None` for formats this crate does not implement (yet).
pub fn new_compressor(
    format: CompressionFormat,
    max_chunk_size: usize,
    level: u32,
) -> Option<Box<dyn Compressor>> {
    match format {
        CompressionFormat::Xpress => Some(Box::new(xpress::XpressCompressor::new(
            max_chunk_size,
            level,
        ))),
        CompressionFormat::Lzx => Some(Box::new(lzx::LzxCompressor::new(max_chunk_size, level))),
        CompressionFormat::Lzms => Some(Box::new(lzms::LzmsCompressor::new(max_chunk_size, level))),
        CompressionFormat::None => None,
    }
}

/// A decompressor for `format` able to take chunks of up to `max_chunk_size`
/// bytes. Returns `None` for formats this crate does not implement (yet).
pub fn new_decompressor(
    format: CompressionFormat,
    max_chunk_size: usize,
) -> Option<Box<dyn Decompressor>> {
    match format {
        CompressionFormat::Xpress => {
            Some(Box::new(xpress::XpressDecompressor::new(max_chunk_size)))
        }
        CompressionFormat::Lzx => Some(Box::new(lzx::LzxDecompressor::new(max_chunk_size))),
        CompressionFormat::Lzms => Some(Box::new(lzms::LzmsDecompressor::new(max_chunk_size))),
        CompressionFormat::None => None,
    }
}
