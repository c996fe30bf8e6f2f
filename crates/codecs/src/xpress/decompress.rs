//! XPRESS chunk decompressor.
//!
//! Table-driven: the root table is indexed by the next [`TABLE_BITS`] bits
//! and codewords longer than that go through one small subtable. The bit
//! reader follows the [MS-XCA] reference decoder exactly (two coding units
//! preloaded, a new unit fetched as soon as fewer than 16 bits remain), which
//! is what decides where the interleaved length bytes are.
//!
//! Everything is bounds-checked. Running out of input is not trusted to be
//! harmless: a coding unit fetched past the end reads as zeros, but if any
//! of those phantom bits is actually consumed, or a length byte lies past
//! the end, the chunk is rejected.

use super::huffman::{build_decode_table, SUBTABLE_FLAG, TABLE_BITS, TABLE_SIZE};
use super::{HEADER_SIZE, MAX_CHUNK_SIZE, MIN_MATCH_LEN, NUM_CHARS, NUM_SYMBOLS};
use crate::lz::copy_match;
use crate::{CompressionFormat, DecompressError, Decompressor};

/// XPRESS chunk decompressor. Keeps its decode table between calls.
pub struct XpressDecompressor {
    max_chunk_size: usize,
    table: Box<[u32; TABLE_SIZE]>,
}

impl XpressDecompressor {
    /// A decompressor for chunks of up to `max_chunk_size` bytes (the
    /// format's limit, 65536, applies whatever is asked).
    pub fn new(max_chunk_size: usize) -> Self {
        Self {
            max_chunk_size: max_chunk_size.min(MAX_CHUNK_SIZE),
            table: Box::new([0u32; TABLE_SIZE]),
        }
    }
}

fn corrupt(reason: &'static str) -> DecompressError {
    DecompressError::Corrupt {
        format: CompressionFormat::Xpress,
        reason,
    }
}

impl Decompressor for XpressDecompressor {
    fn decompress(&mut self, input: &[u8], output: &mut [u8]) -> Result<(), DecompressError> {
        if output.len() > self.max_chunk_size {
            return Err(DecompressError::ChunkTooLarge {
                format: CompressionFormat::Xpress,
                size: output.len(),
                max: self.max_chunk_size,
            });
        }
        if input.len() < HEADER_SIZE {
            return Err(corrupt("chunk shorter than the Huffman code header"));
        }
        let mut lens = [0u8; NUM_SYMBOLS];
        for (i, &b) in input[..HEADER_SIZE].iter().enumerate() {
            lens[2 * i] = b & 0xF;
            lens[2 * i + 1] = b >> 4;
        }
        build_decode_table(&lens, &mut self.table[..]).map_err(corrupt)?;
        decode(&input[HEADER_SIZE..], &self.table, output)
    }
}

/// Decodes the coded data `data` (the chunk after its header) into `out`.
fn decode(data: &[u8], table: &[u32; TABLE_SIZE], out: &mut [u8]) -> Result<(), DecompressError> {
    const TB: u32 = TABLE_BITS;
    let avail = data.len();
    // Next input byte (coding unit or raw byte).
    let mut pos = 0usize;
    // Buffered bits, left-justified; `bitcount` of them are valid.
    let mut bitbuf: u32 = 0;
    let mut bitcount: u32 = 0;
    // How many of the last buffered bits are zeros standing in for units
    // that lie past the end of the input.
    let mut phantom: u32 = 0;

    // Fetches a coding unit when fewer than 16 bits are buffered.
    macro_rules! refill {
        () => {
            if bitcount < 16 {
                if let Some(unit) = data.get(pos..pos + 2) {
                    bitbuf |= (u16::from_le_bytes([unit[0], unit[1]]) as u32) << (16 - bitcount);
                    pos += 2;
                } else {
                    if phantom > bitcount {
                        return Err(corrupt("truncated chunk"));
                    }
                    phantom += 16;
                    // No raw byte may follow a unit that is not there.
                    pos = avail;
                }
                bitcount += 16;
            }
        };
    }
    // Removes `n` (<= 16) bits known to be buffered.
    macro_rules! consume {
        ($n:expr) => {{
            let n: u32 = $n;
            bitbuf <<= n;
            bitcount -= n;
        }};
    }
    // The next `n` (<= 16) buffered bits, `n` may be 0.
    macro_rules! peek {
        ($n:expr) => {
            ((bitbuf >> 1) >> (31 - $n))
        };
    }

    refill!();
    refill!();

    let out_len = out.len();
    let mut op = 0usize;
    while op < out_len {
        // At least 16 bits are buffered here: enough for any codeword.
        let mut e = table[(bitbuf >> (32 - TB)) as usize];
        if e & SUBTABLE_FLAG != 0 {
            consume!(TB);
            let sub_bits = e & 0xFF;
            let start = ((e >> 8) & 0xFFFF) as usize;
            e = table[start + peek!(sub_bits) as usize];
        }
        consume!(e & 0xFF);
        refill!();
        let sym = (e >> 8) as usize;
        if sym < NUM_CHARS {
            out[op] = sym as u8;
            op += 1;
            continue;
        }

        // Match header.
        let log2_offset = ((sym >> 4) & 0xF) as u32;
        let mut len = sym & 0xF;
        if len == 0xF {
            let b = *data
                .get(pos)
                .ok_or_else(|| corrupt("truncated chunk (match length)"))?
                as usize;
            pos += 1;
            if b == 0xFF {
                let v = data
                    .get(pos..pos + 2)
                    .ok_or_else(|| corrupt("truncated chunk (match length)"))?;
                pos += 2;
                let v = u16::from_le_bytes([v[0], v[1]]) as usize;
                // [MS-XCA]: a value below 15 is invalid (0 would announce a
                // 32-bit length, longer than any WIM chunk).
                if v < 0xF {
                    return Err(corrupt("invalid match length"));
                }
                len = v;
            } else {
                len = 0xF + b;
            }
        }
        len += MIN_MATCH_LEN;
        let offset = ((1u32 << log2_offset) | peek!(log2_offset)) as usize;
        consume!(log2_offset);
        refill!();

        if offset > op {
            return Err(corrupt("match offset before the start of the chunk"));
        }
        if len > out_len - op {
            return Err(corrupt("match runs past the end of the chunk"));
        }
        copy_match(out, op, offset, len);
        op += len;
    }
    if phantom > bitcount {
        return Err(corrupt("truncated chunk"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_all(len: u8) -> Vec<u8> {
        vec![len | (len << 4); HEADER_SIZE]
    }

    #[test]
    fn rejects_short_and_bad_headers() {
        let mut d = XpressDecompressor::new(32768);
        let mut out = [0u8; 10];
        assert!(d.decompress(&[], &mut out).is_err());
        assert!(d.decompress(&[0; 255], &mut out).is_err());
        assert!(d.decompress(&[0; 300], &mut out).is_err()); // empty code
        assert!(d.decompress(&header_all(1), &mut out).is_err()); // over-subscribed
    }

    #[test]
    fn all_nine_bit_code() {
        // Every symbol 9 bits: code = symbol. Encode literals 'a','b' then
        // match (offset 2, len 3+2): sym = 256 | (1 << 4) | 2.
        let mut v = header_all(9);
        let syms: [(u32, u32); 4] = [(b'a' as u32, 9), (b'b' as u32, 9), (256 | 0x12, 9), (0, 1)];
        let mut bits: u64 = 0;
        let mut n = 0;
        for (s, l) in syms {
            bits = (bits << l) | s as u64;
            n += l;
        }
        bits <<= 32 - n;
        v.extend_from_slice(&((bits >> 16) as u16).to_le_bytes());
        v.extend_from_slice(&(bits as u16).to_le_bytes());
        v.extend_from_slice(&[0, 0]);
        let mut d = XpressDecompressor::new(32768);
        let mut out = [0u8; 7];
        d.decompress(&v, &mut out).unwrap();
        assert_eq!(&out, b"abababa");
        // Asking for more output than coded runs into phantom bits.
        let mut out = [0u8; 9];
        assert!(d.decompress(&v[..v.len() - 2], &mut out).is_err());
    }

    #[test]
    fn too_large() {
        let mut d = XpressDecompressor::new(4096);
        let mut out = vec![0u8; 4097];
        assert!(matches!(
            d.decompress(&header_all(9), &mut out),
            Err(DecompressError::ChunkTooLarge { .. })
        ));
    }
}
