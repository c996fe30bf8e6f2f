//! Lzx codec (placeholder: being written).

use crate::{CompressionFormat, Compressor, DecompressError, Decompressor};

/// Lzx chunk compressor.
pub struct LzxCompressor {
    _max_chunk_size: usize,
    _level: u32,
}

impl LzxCompressor {
    pub fn new(max_chunk_size: usize, level: u32) -> Self {
        Self { _max_chunk_size: max_chunk_size, _level: level }
    }
}

impl Compressor for LzxCompressor {
    fn compress(&mut self, _input: &[u8], _output: &mut [u8]) -> Option<usize> {
        None
    }
}

/// Lzx chunk decompressor.
pub struct LzxDecompressor {
    max_chunk_size: usize,
}

impl LzxDecompressor {
    pub fn new(max_chunk_size: usize) -> Self {
        Self { max_chunk_size }
    }
}

impl Decompressor for LzxDecompressor {
    fn decompress(&mut self, _input: &[u8], output: &mut [u8]) -> Result<(), DecompressError> {
        if output.len() > self.max_chunk_size {
            return Err(DecompressError::ChunkTooLarge { format: CompressionFormat::Lzx, size: output.len(), max: self.max_chunk_size });
        }
        Err(DecompressError::Corrupt { format: CompressionFormat::Lzx, reason: "not implemented yet" })
    }
}
