//! XPRESS, the "LZ77+Huffman" variant of Microsoft's [MS-XCA] (§2.1/§2.2),
//! as used per chunk inside WIM files.
//!
//! # Chunk layout
//!
//! ```text
//! bytes 0..256   512 codeword lengths, 4 bits each: byte i holds symbol 2i in
//!                its low nibble and symbol 2i+1 in its high nibble
//! bytes 256..    the coded data: 16-bit little-endian "coding units" holding
//!                the Huffman bits MSB first, with raw bytes (extra match
//!                length bytes) interleaved between the units
//! ```
//!
//! One canonical Huffman code (max codeword length 15, no pretree) covers
//! 512 symbols: 0..=255 are literal bytes, 256..=511 are match headers
//! `256 + (offset_high_bit << 4 | min(len - 3, 15))`. A match header is
//! followed, in this order, by
//! 1. the extra length bytes when the length nibble is 15: one byte `b`
//!    (length = 18 + b), or when `b == 255` a little-endian u16 `v` (length
//!    = v + 3);
//! 2. `offset_high_bit` bits holding the offset below its highest set bit.
//!
//! Where the interleaved bytes go is fixed by the way the decoder fetches
//! coding units (the [MS-XCA] reference decoder): it starts with two units
//! (32 bits) buffered and fetches the next unit whenever fewer than 16 bits
//! remain, checking after each Huffman symbol and after each offset field.
//! A raw byte is read from wherever the input pointer stands at that moment.
//! The encoder mirrors this by reserving the slots for coding units ahead of
//! the bytes it writes (see [`compress`]).
//!
//! Matches have length 3..=65538 and offset 1..=65535; WIM chunks are at
//! most 64 KiB, so a match never reaches outside its chunk. Chunks are
//! independent. WIMGAPI's decoder expects an end-of-data symbol (256, which
//! would otherwise mean "match, offset 1, length 3") after the data: the
//! compressor emits it and the decompressor, which stops as soon as the
//! output is full, never looks at it.

mod compress;
mod decompress;
mod huffman;
mod matchfinder;
mod near_optimal;

pub use compress::XpressCompressor;
pub use decompress::XpressDecompressor;

/// Number of Huffman symbols: 256 literals and 256 match headers.
pub(crate) const NUM_SYMBOLS: usize = 512;
/// Number of literal symbols.
pub(crate) const NUM_CHARS: usize = 256;
/// Longest codeword allowed by the format.
pub(crate) const MAX_CODEWORD_LEN: usize = 15;
/// The symbol WIMGAPI expects after the last item.
pub(crate) const END_OF_DATA: usize = 256;
/// Shortest match.
pub(crate) const MIN_MATCH_LEN: usize = 3;
/// Largest match offset.
pub(crate) const MAX_OFFSET: usize = 65535;
/// Size of the codeword-length header.
pub(crate) const HEADER_SIZE: usize = NUM_SYMBOLS / 2;
/// Largest chunk this implementation handles (one [MS-XCA] block; every
/// offset inside it is encodable).
pub const MAX_CHUNK_SIZE: usize = 65536;
