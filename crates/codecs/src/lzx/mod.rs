//! LZX, the default compression format of WIM files (WIM variant).
//!
//! LZX is LZ77 (matches of 2..=257 bytes, three repeat offsets) followed by
//! Huffman coding with a main alphabet of literals and match headers, a
//! length alphabet and, in "aligned" blocks, an alphabet for the low three
//! bits of long offsets. WIM files use it per chunk (32 KiB by default): the
//! window is the chunk, nothing carries over between chunks, and the x86
//! E8 call translation is always applied with the fixed size 12000000.
//!
//! - [`decompress`]: table-driven decoder, hardened against hostile input.
//! - [`compress`]: block writer (Huffman code construction, verbatim and
//!   aligned blocks) and the parsers: lazy hash-chain parsing for quick
//!   levels, near-optimal (minimum-cost path) parsing with a binary-tree
//!   match finder for the default and higher levels.

mod compress;
mod decompress;
mod e8;
mod huffdec;
pub(crate) mod huffenc;
pub(crate) mod matchfind;
mod optimal;
mod tables;

pub use compress::LzxCompressor;
pub use decompress::LzxDecompressor;

use crate::{Compressor, DecompressError, Decompressor};

impl Decompressor for LzxDecompressor {
    fn decompress(&mut self, input: &[u8], output: &mut [u8]) -> Result<(), DecompressError> {
        self.decompress_chunk(input, output)
    }
}

impl Compressor for LzxCompressor {
    fn compress(&mut self, input: &[u8], output: &mut [u8]) -> Option<usize> {
        self.compress_chunk(input, output)
    }
}
