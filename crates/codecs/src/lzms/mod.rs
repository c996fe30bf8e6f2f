//! LZMS, the codec of Microsoft ESD files and solid WIM resources.
//!
//! LZMS is LZ77 with large windows (a chunk may be up to 1 GiB; solid
//! resources use 64 MiB chunks) whose item types are range coded with
//! adaptive bit probabilities, and whose literals, lengths and offsets are
//! coded with adaptive Huffman codes that both ends rebuild from symbol
//! counts (no code tables are transmitted). Besides plain LZ matches there
//! are "delta" matches (byte differences repeated at a stride) and three
//! repeat-source queues with delayed updates. Every chunk goes through an
//! x86 address translation first. Format facts come from wimlib's reverse
//! engineering of Microsoft's implementation.
//!
//! - [`decompress`]: the full decoder (all item types), hardened.
//! - [`compress`]: near-optimal parser over binary-tree LZ matches and
//!   hashed delta matches, explicit and repeat offsets.

mod bt;
mod coder;
mod compress;
mod decompress;
mod huffman;
mod tables;
mod x86;

pub use compress::LzmsCompressor;
pub use decompress::LzmsDecompressor;

/// An empty buffer with room for `n` bytes, backed by transparent huge
/// pages on Linux when large: for whole solid chunks handed to
/// [`Compressor::compress_in_place`], whose match finder reads them at
/// random (as its own copy in [`LzmsCompressor::compress_chunk`] is).
pub fn chunk_buffer(n: usize) -> Vec<u8> {
    let mut v = Vec::new();
    bt::huge_pages(&mut v, n);
    v
}

use crate::{Compressor, DecompressError, Decompressor};

impl Decompressor for LzmsDecompressor {
    fn decompress(&mut self, input: &[u8], output: &mut [u8]) -> Result<(), DecompressError> {
        self.decompress_chunk(input, output)
    }
}

impl Compressor for LzmsCompressor {
    fn compress(&mut self, input: &[u8], output: &mut [u8]) -> Option<usize> {
        self.compress_chunk(input, output)
    }

    fn compress_in_place(&mut self, input: &mut [u8], output: &mut [u8]) -> Option<usize> {
        self.compress_chunk_in_place(input, output)
    }
}
