//! LZX (WIM variant) decompression of one chunk.
//!
//! The chunk is a sequence of blocks (verbatim, aligned or uncompressed)
//! whose sizes add up to the chunk size. Codeword lengths are delta-coded
//! against the previous block of the same chunk and start at zero for every
//! chunk; the repeat-offset queue starts at {1, 1, 1}. Matches never reach
//! before the chunk start nor past the end of their block. After decoding,
//! the E8 call translation is undone.
//!
//! Hostile input: every read is bounds-checked, the bit reader feeds zero
//! bits past the end of the input but we report corruption as soon as a
//! block has *consumed* any of them, and every loop advances the output or a
//! bounded length array, so decoding always terminates.

use super::e8;
use super::huffdec::{DecodeTable, NO_SYMBOL};
use super::tables::*;
use crate::lz::copy_match;
use crate::{CompressionFormat, DecompressError};

fn corrupt(reason: &'static str) -> DecompressError {
    DecompressError::Corrupt {
        format: CompressionFormat::Lzx,
        reason,
    }
}

/// Reads 16-bit little-endian words, most significant bit first.
#[derive(Clone)]
struct BitReader<'a> {
    data: &'a [u8],
    /// Next byte to load into `buf`.
    pos: usize,
    /// Bits not yet consumed, left-aligned.
    buf: u64,
    bits: u32,
    /// Zero bits appended past the end of `data` so far.
    virt: u32,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        Self {
            data,
            pos,
            buf: 0,
            bits: 0,
            virt: 0,
        }
    }

    /// Makes sure at least 49 bits are buffered.
    #[inline(always)]
    fn refill(&mut self) {
        if self.bits > 48 {
            return;
        }
        if let Some(b) = self.data.get(self.pos..self.pos + 8) {
            // Fast path, branch-free: the next four 16-bit words in stream
            // order (first word on top), shifted below the buffered bits.
            // Only whole words are counted; the low bits of a partly taken
            // word are the very bits the next refill ORs in at the same
            // place, so leaving them in the buffer changes nothing.
            let mut w = [0u8; 8];
            w.copy_from_slice(b);
            let x = u64::from_le_bytes(w).rotate_left(32);
            let x = ((x & 0x0000_FFFF_0000_FFFF) << 16) | ((x >> 16) & 0x0000_FFFF_0000_FFFF);
            self.buf |= x >> self.bits;
            let k = (64 - self.bits) >> 4;
            self.pos += 2 * k as usize;
            self.bits += 16 * k;
            return;
        }
        while self.bits <= 48 {
            let w = match self.data.get(self.pos..self.pos + 2) {
                Some(b) => {
                    self.pos += 2;
                    u16::from_le_bytes([b[0], b[1]])
                }
                None => {
                    self.virt += 16;
                    0
                }
            };
            self.buf |= u64::from(w) << (48 - self.bits);
            self.bits += 16;
        }
    }

    #[inline(always)]
    fn peek16(&self) -> u32 {
        (self.buf >> 48) as u32
    }

    /// Consumes `n <= 32` bits (buffered beforehand by `refill`).
    #[inline(always)]
    fn consume(&mut self, n: u32) {
        debug_assert!(n <= self.bits);
        self.buf <<= n;
        self.bits -= n;
    }

    /// Reads `n <= 32` bits, refilling first.
    #[inline(always)]
    fn read(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        self.refill();
        let v = (self.buf >> (64 - n)) as u32;
        self.consume(n);
        v
    }

    /// True when bits past the end of the input have been consumed.
    fn overrun(&self) -> bool {
        self.bits < self.virt
    }

    /// Bits consumed since byte `start` of the input.
    fn consumed_bits(&self) -> usize {
        self.pos * 8 + self.virt as usize - self.bits as usize
    }

    /// Decodes a symbol; an empty code yields [`NO_SYMBOL`], which every
    /// caller rejects as out of its alphabet.
    #[inline(always)]
    fn decode<const RB: u32>(&mut self, t: &DecodeTable<RB>) -> u32 {
        let (sym, n) = t.decode(self.peek16());
        self.consume(n);
        sym
    }
}

/// A reusable LZX chunk decompressor.
pub struct LzxDecompressor {
    /// Largest chunk accepted; 0 when the chunk size given at creation is
    /// beyond what LZX can describe (then every chunk is refused).
    max_chunk_size: usize,
    num_main_syms: usize,
    main_lens: [u8; MAX_MAIN_SYMS],
    len_lens: [u8; LEN_SYMS],
    pre_lens: [u8; PRE_SYMS],
    aligned_lens: [u8; ALIGNED_SYMS],
    main: DecodeTable<11>,
    len: DecodeTable<8>,
    pre: DecodeTable<6>,
    aligned: DecodeTable<7>,
    /// Type and size of each block of the last chunk (for tests that look
    /// at how a compressor cut its chunks).
    #[cfg(test)]
    pub(crate) blocks: Vec<(u32, usize)>,
}

impl LzxDecompressor {
    /// A decompressor for chunks of up to `max_chunk_size` bytes; the window
    /// (and with it the main alphabet) is the chunk size rounded up to a power
    /// of two, at least 32 KiB, as in WIM files. Up to 2 MiB is supported.
    pub fn new(max_chunk_size: usize) -> Self {
        let (max, order) = match window_order(max_chunk_size) {
            Some(o) => (max_chunk_size, o),
            None => (0, MIN_WINDOW_ORDER),
        };
        Self {
            max_chunk_size: max,
            num_main_syms: NUM_CHARS + num_offset_slots(order) * NUM_LEN_HEADERS,
            main_lens: [0; MAX_MAIN_SYMS],
            len_lens: [0; LEN_SYMS],
            pre_lens: [0; PRE_SYMS],
            aligned_lens: [0; ALIGNED_SYMS],
            main: DecodeTable::new(),
            len: DecodeTable::new(),
            pre: DecodeTable::new(),
            aligned: DecodeTable::new(),
            #[cfg(test)]
            blocks: Vec::new(),
        }
    }

    fn window_order(&self) -> u32 {
        window_order(self.max_chunk_size).unwrap_or(MIN_WINDOW_ORDER)
    }

    /// Decodes one chunk into `out` (exact size).
    pub fn decompress_chunk(
        &mut self,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<(), DecompressError> {
        if out.len() > self.max_chunk_size {
            return Err(DecompressError::ChunkTooLarge {
                format: CompressionFormat::Lzx,
                size: out.len(),
                max: if self.max_chunk_size == 0 {
                    1 << MAX_WINDOW_ORDER
                } else {
                    self.max_chunk_size
                },
            });
        }
        let big_window = self.window_order() >= 16;
        self.main_lens = [0; MAX_MAIN_SYMS];
        self.len_lens = [0; LEN_SYMS];
        let mut reps = [1u32; NUM_REPS];
        let mut may_have_e8 = false;
        let mut r = BitReader::new(input, 0);
        let mut pos = 0usize;
        #[cfg(test)]
        self.blocks.clear();
        while pos < out.len() {
            r.refill();
            let btype = r.read(3);
            let size = if r.read(1) == 1 {
                DEFAULT_BLOCK_SIZE
            } else {
                let mut s = r.read(16) as usize;
                if big_window {
                    s = (s << 8) | r.read(8) as usize;
                }
                s
            };
            if size == 0 || size > out.len() - pos {
                return Err(corrupt("block size out of range"));
            }
            #[cfg(test)]
            self.blocks.push((btype, size));
            match btype {
                BLOCK_VERBATIM | BLOCK_ALIGNED => {
                    let aligned = btype == BLOCK_ALIGNED;
                    if aligned {
                        for i in 0..ALIGNED_SYMS {
                            self.aligned_lens[i] = r.read(3) as u8;
                        }
                        self.aligned
                            .build(&self.aligned_lens)
                            .map_err(|_| corrupt("bad aligned offset code"))?;
                    }
                    let n = self.num_main_syms;
                    read_lens(
                        &mut r,
                        &mut self.pre,
                        &mut self.pre_lens,
                        &mut self.main_lens[..NUM_CHARS],
                    )?;
                    read_lens(
                        &mut r,
                        &mut self.pre,
                        &mut self.pre_lens,
                        &mut self.main_lens[NUM_CHARS..n],
                    )?;
                    read_lens(
                        &mut r,
                        &mut self.pre,
                        &mut self.pre_lens,
                        &mut self.len_lens,
                    )?;
                    self.main
                        .build(&self.main_lens[..n])
                        .map_err(|_| corrupt("bad main code"))?;
                    if self.main.is_empty() {
                        // Then every main symbol decoded is known valid.
                        return Err(corrupt("empty main code"));
                    }
                    self.len
                        .build(&self.len_lens)
                        .map_err(|_| corrupt("bad length code"))?;
                    if r.overrun() {
                        return Err(corrupt("truncated block header"));
                    }
                    let end = pos + size;
                    self.decode_block(&mut r, out, pos, end, aligned, &mut reps)?;
                    // Output bytes all come from literals, so without a
                    // codeword for 0xE8 this block added no E8 byte.
                    may_have_e8 |= self.main_lens[0xE8] != 0;
                    if r.overrun() {
                        return Err(corrupt("truncated block"));
                    }
                    pos = end;
                }
                BLOCK_UNCOMPRESSED => {
                    may_have_e8 = true;
                    // Skip to the next 16-bit boundary; when already on one,
                    // a whole 16-bit word of padding follows.
                    let consumed = r.consumed_bits();
                    let start = (consumed / 16 + 1) * 2;
                    let hdr = input
                        .get(start..start + 12)
                        .ok_or(corrupt("truncated uncompressed block"))?;
                    for (i, rep) in reps.iter_mut().enumerate() {
                        let v = u32::from_le_bytes([
                            hdr[4 * i],
                            hdr[4 * i + 1],
                            hdr[4 * i + 2],
                            hdr[4 * i + 3],
                        ]);
                        if v == 0 {
                            return Err(corrupt("zero repeat offset"));
                        }
                        *rep = v;
                    }
                    let data = input
                        .get(start + 12..start + 12 + size)
                        .ok_or(corrupt("truncated uncompressed block"))?;
                    out[pos..pos + size].copy_from_slice(data);
                    pos += size;
                    // An odd-sized block is padded to 16 bits (a missing
                    // pad byte at the very end is tolerated, as wimlib does).
                    let next = start + 12 + size + (size & 1);
                    r = BitReader::new(input, next.min(input.len()));
                }
                _ => return Err(corrupt("invalid block type")),
            }
        }
        if may_have_e8 {
            e8::postprocess(out);
        }
        Ok(())
    }

    /// Decodes the items of one compressed block into `out[pos..end]`.
    ///
    /// The bit reader and the repeat offsets are copied into locals for the
    /// loop and written back at the end: as fields behind references they
    /// were reloaded from memory after every output store.
    #[inline(never)]
    fn decode_block(
        &self,
        reader: &mut BitReader,
        out: &mut [u8],
        mut pos: usize,
        end: usize,
        aligned: bool,
        reps: &mut [u32; NUM_REPS],
    ) -> Result<(), DecompressError> {
        if end > out.len() {
            return Err(corrupt("block past chunk end"));
        }
        let min_aligned_slot = if aligned {
            MIN_ALIGNED_SLOT
        } else {
            usize::MAX
        };
        let (main, lens, al) = (&self.main, &self.len, &self.aligned);
        let mut r = reader.clone();
        let [mut r0, mut r1, mut r2] = *reps;
        while pos < end {
            r.refill();
            // After a refill at least 49 bits are buffered: enough for three
            // main symbols, so runs of literals need one refill per three.
            let mut sym = r.decode(main) as usize;
            if sym < NUM_CHARS {
                out[pos] = sym as u8;
                pos += 1;
                if pos == end {
                    break;
                }
                sym = r.decode(main) as usize;
                if sym < NUM_CHARS {
                    out[pos] = sym as u8;
                    pos += 1;
                    if pos == end {
                        break;
                    }
                    sym = r.decode(main) as usize;
                    if sym < NUM_CHARS {
                        out[pos] = sym as u8;
                        pos += 1;
                        continue;
                    }
                }
                // A match header after literals: top the buffer up again.
                r.refill();
            }
            let hdr = sym - NUM_CHARS;
            let slot = hdr / NUM_LEN_HEADERS;
            let mut len = hdr % NUM_LEN_HEADERS;
            if len == NUM_PRIMARY_LENS {
                let ls = r.decode(lens);
                if ls == NO_SYMBOL {
                    return Err(corrupt("length symbol from an empty code"));
                }
                len += ls as usize;
            }
            len += MIN_MATCH;
            let offset = match slot {
                0 => r0,
                1 => {
                    let o = r1;
                    r1 = r0;
                    o
                }
                2 => {
                    let o = r2;
                    r2 = r0;
                    o
                }
                _ => {
                    // The main alphabet size bounds `slot` below
                    // num_offset_slots.
                    let extra = u32::from(EXTRA_BITS[slot]);
                    r.refill();
                    let bits = if slot >= min_aligned_slot {
                        let hi = r.read(extra - 3);
                        let a = r.decode(al);
                        if a == NO_SYMBOL {
                            return Err(corrupt("aligned symbol from an empty code"));
                        }
                        (hi << 3) | a
                    } else {
                        r.read(extra)
                    };
                    r2 = r1;
                    r1 = r0;
                    SLOT_BASE[slot] + bits - 2
                }
            };
            r0 = offset;
            let offset = offset as usize;
            if offset > pos || offset == 0 {
                return Err(corrupt("match offset before chunk start"));
            }
            if len > end - pos {
                return Err(corrupt("match past block end"));
            }
            copy_match(out, pos, offset, len);
            pos += len;
        }
        *reader = r;
        *reps = [r0, r1, r2];
        Ok(())
    }
}

/// Reads a pretree, then delta-decodes `lens` (previous values in place).
fn read_lens(
    r: &mut BitReader,
    pre: &mut DecodeTable<6>,
    pre_lens: &mut [u8; PRE_SYMS],
    lens: &mut [u8],
) -> Result<(), DecompressError> {
    for l in pre_lens.iter_mut() {
        *l = r.read(4) as u8;
    }
    pre.build(pre_lens).map_err(|_| corrupt("bad pretree"))?;
    let delta = |old: u8, sym: u32| -> u8 { ((u32::from(old) + 17 - sym) % 17) as u8 };
    let mut i = 0;
    while i < lens.len() {
        r.refill();
        let sym = r.decode(pre);
        match sym {
            0..=16 => {
                lens[i] = delta(lens[i], sym);
                i += 1;
            }
            17 | 18 => {
                let run = if sym == 17 {
                    4 + r.read(4)
                } else {
                    20 + r.read(5)
                } as usize;
                // A run may overshoot the array in a corrupt stream; wimlib
                // tolerates that silently, so we clamp rather than fail.
                let stop = (i + run).min(lens.len());
                lens[i..stop].fill(0);
                i = stop;
            }
            19 => {
                let run = 4 + r.read(1) as usize;
                let s = r.decode(pre);
                if s > 16 {
                    return Err(corrupt("bad pretree run symbol"));
                }
                let v = delta(lens[i], s);
                let stop = (i + run).min(lens.len());
                lens[i..stop].fill(v);
                i = stop;
            }
            _ => return Err(corrupt("pretree symbol from an empty code")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(input: &[u8], n: usize) -> Result<Vec<u8>, DecompressError> {
        let mut d = LzxDecompressor::new(32768);
        let mut out = vec![0u8; n];
        d.decompress_chunk(input, &mut out).map(|_| out)
    }

    #[test]
    fn uncompressed_block_is_read_verbatim() {
        // Header bits: type 3 (011), flag 0, size 5 (16 bits) = 20 bits,
        // then padding to 32 bits, 12 bytes of reps, 5 bytes, pad byte.
        let bits: u32 = (0b011 << 17) | 5;
        let w = bits << 12; // 20 bits left-aligned in 32
        let mut v = Vec::new();
        v.extend_from_slice(&((w >> 16) as u16).to_le_bytes());
        v.extend_from_slice(&((w & 0xFFFF) as u16).to_le_bytes());
        for _ in 0..3 {
            v.extend_from_slice(&1u32.to_le_bytes());
        }
        v.extend_from_slice(b"hello\0");
        assert_eq!(dec(&v, 5).unwrap(), b"hello");
        // Zero repeat offsets are invalid.
        let mut bad = v.clone();
        bad[4] = 0;
        assert!(dec(&bad, 5).is_err());
        // Truncated.
        assert!(dec(&v[..10], 5).is_err());
    }

    #[test]
    fn empty_input_is_corrupt_and_oversized_chunk_refused() {
        assert!(dec(&[], 1).is_err());
        assert!(matches!(
            dec(&[], 40000),
            Err(DecompressError::ChunkTooLarge { .. })
        ));
        assert_eq!(dec(&[], 0).unwrap(), b"");
    }
}
