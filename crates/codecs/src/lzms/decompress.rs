//! LZMS chunk decoder.
//!
//! Items (literal, LZ match, delta match; matches with an explicit or a
//! repeated source) are told apart by range-coded decisions from the front
//! of the chunk; their payloads come from the Huffman bitstream read from
//! the back. Every length and offset is checked against the output before a
//! copy, so hostile input fails with `Corrupt` instead of reading or writing
//! outside the output slice. Work memory is fixed (decode tables, the x86
//! filter's 64 Ki table); nothing is sized from the input.

use super::coder::{Models, Prev, RangeDecoder, RepQueue};
use super::huffman::{Adaptive, DecodeTable};
use super::tables::*;
use super::x86::X86Filter;
use crate::lz::copy_match;
use crate::{CompressionFormat, DecompressError};

fn corrupt(reason: &'static str) -> DecompressError {
    DecompressError::Corrupt {
        format: CompressionFormat::Lzms,
        reason,
    }
}

/// Backward reader of the Huffman/verbatim bitstream: 16-bit little-endian
/// units from the end of the chunk towards the start, high bit first, zero
/// bits once the input is used up. Refills take up to four units from one
/// 8-byte load.
pub(super) struct BitReader<'a> {
    data: &'a [u8],
    /// Index just past the next unit to read (moves towards 0).
    pos: usize,
    /// Bits MSB-aligned; `avail` of them are valid.
    buf: u64,
    avail: u32,
}

impl<'a> BitReader<'a> {
    /// `data.len()` must be even (the caller checks).
    pub(super) fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            pos: data.len(),
            buf: 0,
            avail: 0,
        }
    }

    /// Makes at least 49 bits available.
    #[inline(always)]
    fn refill(&mut self) {
        // The 8 bytes before `pos` hold the next four units; as one
        // little-endian word the next unit is its top 16 bits.
        if let Some(w) = self.data[..self.pos].last_chunk::<8>() {
            let units = (64 - self.avail) / 16;
            let n = units * 16;
            // 16 <= n <= 64 - avail, so both shifts stay below 64.
            let fresh = u64::from_le_bytes(*w) >> (64 - n);
            self.buf |= fresh << (64 - self.avail - n);
            self.avail += n;
            self.pos -= (n / 8) as usize;
            return;
        }
        while self.avail <= 48 {
            let unit = match self.pos.checked_sub(2) {
                Some(p) => {
                    self.pos = p;
                    u16::from_le_bytes([self.data[p], self.data[p + 1]])
                }
                None => 0,
            };
            self.buf |= u64::from(unit) << (48 - self.avail);
            self.avail += 16;
        }
    }

    /// Makes at least `n` (<= 32) bits available.
    #[inline(always)]
    pub(super) fn ensure(&mut self, n: u32) {
        if self.avail < n {
            self.refill();
        }
    }

    /// The next `n` bits (1..=32) without consuming them; `ensure` first.
    #[inline(always)]
    pub(super) fn peek(&self, n: u32) -> u32 {
        (self.buf >> (64 - n)) as u32
    }

    #[inline(always)]
    pub(super) fn consume(&mut self, n: u32) {
        self.buf <<= n;
        self.avail -= n;
    }

    /// Reads `n` (0..=32) verbatim bits.
    #[inline(always)]
    pub(super) fn read(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        self.ensure(n);
        let v = self.peek(n);
        self.consume(n);
        v
    }
}

/// An adaptive code with its decode table.
struct Code {
    freqs: Adaptive,
    table: DecodeTable,
}

impl Code {
    fn new(rebuild: u32, table_bits: u32) -> Self {
        Code {
            freqs: Adaptive::new(rebuild),
            table: DecodeTable::new(table_bits),
        }
    }

    fn reset(&mut self, num_syms: usize) {
        self.freqs.reset(num_syms);
        self.table.build(&self.freqs.lens);
    }

    /// Inlined into the item loop so the bit reader stays in registers;
    /// the rebuild every few hundred symbols is out of line.
    #[inline(always)]
    fn decode(&mut self, r: &mut BitReader) -> Result<usize, DecompressError> {
        r.ensure(MAX_CODEWORD_LEN as u32);
        let (sym, len) = self
            .table
            .lookup(r.peek(MAX_CODEWORD_LEN as u32))
            .ok_or_else(|| corrupt("invalid Huffman codeword"))?;
        r.consume(len);
        if self.freqs.count(sym) {
            self.rebuild_table();
        }
        Ok(sym)
    }

    #[cold]
    #[inline(never)]
    fn rebuild_table(&mut self) {
        self.table.build(&self.freqs.lens);
    }

    /// A slot symbol plus its verbatim extra bits.
    #[inline(always)]
    fn decode_value(
        &mut self,
        r: &mut BitReader,
        base: &[u32],
        extra: &[u8],
    ) -> Result<u32, DecompressError> {
        let slot = self.decode(r)?;
        let bits = r.read(u32::from(extra[slot]));
        Ok(base[slot] + bits)
    }
}

/// Reusable LZMS decompressor.
pub struct LzmsDecompressor {
    max_chunk_size: usize,
    literal: Code,
    lz_offset: Code,
    length: Code,
    delta_offset: Code,
    power: Code,
    x86: X86Filter,
}

impl LzmsDecompressor {
    /// A decompressor for chunks of up to `max_chunk_size` bytes (LZMS
    /// itself allows up to 1 GiB).
    pub fn new(max_chunk_size: usize) -> Self {
        LzmsDecompressor {
            max_chunk_size,
            literal: Code::new(LITERAL_REBUILD, 10),
            lz_offset: Code::new(LZ_OFFSET_REBUILD, 11),
            length: Code::new(LENGTH_REBUILD, 9),
            delta_offset: Code::new(DELTA_OFFSET_REBUILD, 11),
            power: Code::new(POWER_REBUILD, 7),
            x86: X86Filter::new(),
        }
    }

    pub fn decompress_chunk(
        &mut self,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<(), DecompressError> {
        let size = output.len();
        if size > self.max_chunk_size.min(MAX_BUFFER_SIZE) {
            return Err(DecompressError::ChunkTooLarge {
                format: CompressionFormat::Lzms,
                size,
                max: self.max_chunk_size.min(MAX_BUFFER_SIZE),
            });
        }
        if size == 0 {
            return Ok(());
        }
        // The stream is made of 16-bit units and the range decoder needs two
        // of them to start.
        if input.len() < 4 || input.len() % 2 != 0 {
            return Err(corrupt("input is not an even number of bytes >= 4"));
        }
        let mut rd = RangeDecoder::new(input);
        let mut bits = BitReader::new(input);
        let mut m = Models::new();
        let slots = num_offset_slots(size);
        self.literal.reset(NUM_LITERAL_SYMS);
        self.lz_offset.reset(slots);
        self.length.reset(NUM_LENGTH_SLOTS);
        self.delta_offset.reset(slots);
        self.power.reset(NUM_POWER_SYMS);
        let mut lz = RepQueue::new([1u32, 2, 3, 4]);
        let mut delta = RepQueue::new([1u64, 2, 3, 4]);
        let mut prev = Prev::Literal;

        let mut pos = 0usize;
        while pos < size {
            if rd.bit(&mut m.main) == 0 {
                output[pos] = self.literal.decode(&mut bits)? as u8;
                pos += 1;
                prev = Prev::Literal;
            } else if rd.bit(&mut m.is_delta) == 0 {
                let pending = prev == Prev::Lz;
                let offset = if rd.bit(&mut m.lz_is_rep) == 0 {
                    let o = self
                        .lz_offset
                        .decode_value(&mut bits, &OFFSET_BASE, &OFFSET_EXTRA)?;
                    lz.push(o);
                    o
                } else {
                    let idx = rep_index(&mut rd, &mut m.lz_rep);
                    lz.take(idx, pending)
                };
                prev = Prev::Lz;
                let len = self
                    .length
                    .decode_value(&mut bits, &LENGTH_BASE, &LENGTH_EXTRA)?
                    as usize;
                let offset = offset as usize;
                if offset > pos || len > size - pos {
                    return Err(corrupt("LZ match outside the chunk"));
                }
                copy_match(output, pos, offset, len);
                pos += len;
            } else {
                let pending = prev == Prev::Delta;
                let pair = if rd.bit(&mut m.delta_is_rep) == 0 {
                    let power = self.power.decode(&mut bits)? as u64;
                    let raw =
                        self.delta_offset
                            .decode_value(&mut bits, &OFFSET_BASE, &OFFSET_EXTRA)?;
                    let p = (power << 32) | u64::from(raw);
                    delta.push(p);
                    p
                } else {
                    let idx = rep_index(&mut rd, &mut m.delta_rep);
                    delta.take(idx, pending)
                };
                prev = Prev::Delta;
                let len = self
                    .length
                    .decode_value(&mut bits, &LENGTH_BASE, &LENGTH_EXTRA)?
                    as usize;
                // The queue's initial pairs have power 0; decoded powers are
                // below 8, so the shift is small; the raw offset is < 2^31.
                let power = (pair >> 32) as u32;
                if power >= 32 {
                    return Err(corrupt("delta power out of range"));
                }
                let span = 1u64 << power;
                let offset = (pair & 0xFFFF_FFFF) << power;
                if offset + span > pos as u64 || len > size - pos {
                    return Err(corrupt("delta match outside the chunk"));
                }
                let (offset, span) = (offset as usize, span as usize);
                for k in pos..pos + len {
                    output[k] = output[k - offset]
                        .wrapping_add(output[k - span])
                        .wrapping_sub(output[k - offset - span]);
                }
                pos += len;
            }
        }
        self.x86.run(output, true);
        Ok(())
    }
}

/// Repeat index 0, 1 or 2, coded as up to two binary decisions.
#[inline]
fn rep_index<const N: usize>(
    rd: &mut RangeDecoder,
    models: &mut [super::coder::Model<N>; 2],
) -> usize {
    if rd.bit(&mut models[0]) == 0 {
        0
    } else if rd.bit(&mut models[1]) == 0 {
        1
    } else {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_inputs_are_refused_without_panics() {
        let mut d = LzmsDecompressor::new(1 << 16);
        let mut out = vec![0u8; 1000];
        assert!(d.decompress_chunk(&[], &mut out).is_err());
        assert!(d.decompress_chunk(&[1, 2, 3], &mut out).is_err());
        assert!(d.decompress_chunk(&[1, 2, 3, 4, 5], &mut out).is_err());
        let mut big = vec![0u8; (1 << 16) + 1];
        assert!(matches!(
            d.decompress_chunk(&[0; 8], &mut big),
            Err(DecompressError::ChunkTooLarge { .. })
        ));
        // Random streams: errors are fine, panics are not.
        let mut x = 99u64;
        for n in 0..2000usize {
            let len = 4 + 2 * (n % 60);
            let input: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    (x >> 56) as u8
                })
                .collect();
            let _ = d.decompress_chunk(&input, &mut out[..1 + n % 999]);
        }
    }
}
