//! Xpress codec (placeholder: being written).

use crate::{CompressionFormat, Compressor, DecompressError, Decompressor};

/// Xpress chunk compressor.
pub struct XpressCompressor {
    _max_chunk_size: usize,
    _level: u32,
}

impl XpressCompressor {
    pub fn new(max_chunk_size: usize, level: u32) -> Self {
        Self { _max_chunk_size: max_chunk_size, _level: level }
    }
}

impl Compressor for XpressCompressor {
    fn compress(&mut self, _input: &[u8], _output: &mut [u8]) -> Option<usize> {
        None
    }
}

/// Xpress chunk decompressor.
pub struct XpressDecompressor {
    max_chunk_size: usize,
}

impl XpressDecompressor {
    pub fn new(max_chunk_size: usize) -> Self {
        Self { max_chunk_size }
    }
}

impl Decompressor for XpressDecompressor {
    fn decompress(&mut self, _input: &[u8], output: &mut [u8]) -> Result<(), DecompressError> {
        if output.len() > self.max_chunk_size {
            return Err(DecompressError::ChunkTooLarge { format: CompressionFormat::Xpress, size: output.len(), max: self.max_chunk_size });
        }
        Err(DecompressError::Corrupt { format: CompressionFormat::Xpress, reason: "not implemented yet" })
    }
}
