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
use crate::lz::copy_match_unchecked;
use crate::{CompressionFormat, DecompressError};

fn corrupt(reason: &'static str) -> DecompressError {
    DecompressError::Corrupt {
        format: CompressionFormat::Lzx,
        reason,
    }
}

/// Bytes of zeros after the stream in [`LzxDecompressor::stream`], so that
/// an 8-byte load at any position up to the stream's end stays inside.
const STREAM_PAD: usize = 8;

/// Copies `input` into `out` as one big-endian bit stream: LZX reads 16-bit
/// little-endian words, most significant bit first, so swapping the bytes
/// of each word turns the stream into plain bytes read from the top bit
/// down. An odd last byte belongs to no word and is dropped (a reader of
/// words never sees it either); `STREAM_PAD` zero bytes follow.
fn swap_words<'a>(input: &[u8], out: &'a mut Vec<u8>) -> &'a [u8] {
    let n = input.len() & !1;
    // The buffer only grows: zeroing all of it for every chunk showed up
    // as 1.5 M instructions a round on the small-chunk bench.
    if out.len() < n + STREAM_PAD {
        out.resize(n + STREAM_PAD, 0);
    }
    let out = &mut out[..n + STREAM_PAD];
    out[n..].fill(0);
    // Eight bytes at a time (the byte-pair loop was not vectorized and
    // cost 3.4 M of 116.8 M instructions a round, 4 MB corpus).
    const LO: u64 = 0x00FF_00FF_00FF_00FF;
    let mut o8 = out[..n].chunks_exact_mut(8);
    let mut i8 = input[..n].chunks_exact(8);
    for (o, i) in (&mut o8).zip(&mut i8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(i);
        let x = u64::from_le_bytes(w);
        o.copy_from_slice(&(((x >> 8) & LO) | ((x & LO) << 8)).to_le_bytes());
    }
    for (o, i) in o8
        .into_remainder()
        .chunks_exact_mut(2)
        .zip(i8.remainder().chunks_exact(2))
    {
        o[0] = i[1];
        o[1] = i[0];
    }
    out
}

/// Reads the stream prepared by [`swap_words`], most significant bit first.
#[derive(Clone)]
struct BitReader<'a> {
    /// Start of the stream.
    base: *const u8,
    /// Next byte to load into `buf`: `base + pos`, where `pos` may run past
    /// the end of the stream (then it is never read through). A pointer
    /// rather than an index, as is `limit`: the decoding loop has fewer
    /// values to keep in registers (measured below, in `refill`).
    next: *const u8,
    /// `base + end`, the stream's end: 8 bytes are readable up to here.
    limit: *const u8,
    /// Bits not yet consumed, left-aligned; below them, the bits that
    /// follow in the stream (or zeros).
    buf: u64,
    /// Valid bits at the top of `buf`.
    bits: u32,
    _data: std::marker::PhantomData<&'a [u8]>,
}

impl<'a> BitReader<'a> {
    /// A reader of `data` (stream and padding, as [`swap_words`] makes it)
    /// starting at byte `pos`.
    fn new(data: &'a [u8], pos: usize) -> Self {
        // Not input-dependent: every stream comes from `swap_words`.
        assert!(data.len() >= STREAM_PAD, "LZX stream without its padding");
        let end = data.len() - STREAM_PAD;
        let base = data.as_ptr();
        Self {
            base,
            next: base.wrapping_add(pos.min(end)),
            limit: base.wrapping_add(end),
            buf: 0,
            bits: 0,
            _data: std::marker::PhantomData,
        }
    }

    /// Length of the stream proper.
    fn end(&self) -> usize {
        self.limit as usize - self.base as usize
    }

    /// Makes sure at least 56 bits are buffered. Branch-free apart from
    /// the end-of-stream test: the next 8 bytes are ORed in below the
    /// buffered bits; only whole bytes are counted, and the partly taken
    /// byte's low bits are the very bits the next refill ORs in at the
    /// same place, so leaving them in the buffer changes nothing. Past the
    /// end of the stream the bytes are zeros and `next` keeps counting, so
    /// that [`Self::overrun`] can tell.
    #[inline(always)]
    fn refill(&mut self) {
        let w = if self.next <= self.limit {
            // SAFETY: `base..limit + STREAM_PAD` is `data` (see `new`) and
            // `base <= next <= limit`, so the 8 bytes at `next` lie inside.
            // Measured (instructions a round of the chunk_decompress bench,
            // 4 MB corpus): a checked slice reloaded the slice's length and
            // tested for overflow on every refill (128.7 M against 121.5 M
            // unchecked); pointers instead of indices, 106.4 M -> 105.0 M.
            let w = unsafe { self.next.cast::<u64>().read_unaligned() };
            u64::from_be(w)
        } else {
            0
        };
        self.buf |= w >> self.bits;
        self.next = self.next.wrapping_add(((63 - self.bits) >> 3) as usize);
        self.bits |= 56;
    }

    /// Consumes `n <= 32` bits (buffered beforehand by `refill`).
    #[inline(always)]
    fn consume(&mut self, n: u32) {
        debug_assert!(n <= self.bits);
        self.buf <<= n;
        self.bits -= n;
    }

    /// Takes `n <= 32` bits, which `refill` has buffered beforehand; `n`
    /// may be 0 (the double shift needs no test for it).
    #[inline(always)]
    fn take(&mut self, n: u32) -> u32 {
        debug_assert!(n <= 32 && n <= self.bits);
        let v = ((self.buf >> 1) >> (63 - n)) as u32;
        self.consume(n);
        v
    }

    /// Reads `n <= 32` bits, refilling first when fewer are buffered.
    #[inline(always)]
    fn read(&mut self, n: u32) -> u32 {
        if self.bits < n {
            self.refill();
        }
        self.take(n)
    }

    /// True when bits past the end of the input have been consumed.
    fn overrun(&self) -> bool {
        self.consumed_bits() > self.end() * 8
    }

    /// Bits consumed since the start of the stream.
    fn consumed_bits(&self) -> usize {
        (self.next as usize).wrapping_sub(self.base as usize) * 8 - self.bits as usize
    }

    /// Decodes a symbol; an empty code yields [`NO_SYMBOL`], which every
    /// caller rejects as out of its alphabet.
    #[inline(always)]
    fn decode<const RB: u32>(&mut self, t: &DecodeTable<RB>) -> u32 {
        let (sym, n) = t.decode(self.buf);
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
    /// The input of the chunk being decoded, as [`swap_words`] prepares it.
    stream: Vec<u8>,
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
            stream: Vec::new(),
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
        let mut stream = std::mem::take(&mut self.stream);
        let res = self.decode_chunk(input, &mut stream, out);
        self.stream = stream;
        res
    }

    fn decode_chunk(
        &mut self,
        input: &[u8],
        stream: &mut Vec<u8>,
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
        let stream = swap_words(input, stream);
        let mut r = BitReader::new(stream, 0);
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
                    r = BitReader::new(stream, next);
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
        let mut rep = *reps;
        while pos < end {
            r.refill();
            // After a refill at least 56 bits are buffered: enough for three
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
            let offset = if slot < NUM_REPS {
                // A repeat offset swaps with the most recent one (for slot
                // 0 a no-op): loads and stores, no branch on which.
                let o = rep[slot];
                rep[slot] = rep[0];
                o
            } else {
                // The main alphabet size bounds `slot` below
                // num_offset_slots. After the refill, the extra bits
                // (at most 17) and an aligned symbol (at most 7) are
                // buffered.
                let extra = u32::from(EXTRA_BITS[slot]);
                r.refill();
                let bits = if slot >= min_aligned_slot {
                    let hi = r.take(extra - 3);
                    let a = r.decode(al);
                    if a == NO_SYMBOL {
                        return Err(corrupt("aligned symbol from an empty code"));
                    }
                    (hi << 3) | a
                } else {
                    r.take(extra)
                };
                rep[2] = rep[1];
                rep[1] = rep[0];
                SLOT_BASE[slot] + bits - 2
            };
            rep[0] = offset;
            let offset = offset as usize;
            // One comparison for both `offset == 0` and `offset > pos`.
            if offset.wrapping_sub(1) >= pos {
                return Err(corrupt("match offset before chunk start"));
            }
            if len > end - pos {
                return Err(corrupt("match past block end"));
            }
            // SAFETY: 1 <= offset <= pos and pos + len <= end <= out.len()
            // (checked above and at the top of this function). Measured:
            // copy_match's own assertion repeated these tests on every match
            // (1.6 M of 116.8 M instructions a round, 4 MB corpus).
            unsafe { copy_match_unchecked(out, pos, offset, len) };
            pos += len;
        }
        *reader = r;
        *reps = rep;
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
    r.refill();
    for l in pre_lens.iter_mut() {
        *l = r.read(4) as u8;
    }
    pre.build(pre_lens).map_err(|_| corrupt("bad pretree"))?;
    // (old - sym) mod 17 for old, sym in 0..=16, without a division.
    let delta = |old: u8, sym: u32| -> u8 {
        let d = i32::from(old) - sym as i32;
        (if d < 0 { d + 17 } else { d }) as u8
    };
    let mut i = 0;
    while i < lens.len() {
        // The longest item is symbol 19: a pretree codeword (at most 16
        // bits), 1 bit, another codeword: 33 bits. Refilling only below
        // that (56 bits after a refill) saves most refills.
        if r.bits < 33 {
            r.refill();
        }
        let sym = r.decode(pre);
        match sym {
            0..=16 => {
                lens[i] = delta(lens[i], sym);
                i += 1;
            }
            17 | 18 => {
                let run = if sym == 17 {
                    4 + r.take(4)
                } else {
                    20 + r.take(5)
                } as usize;
                // A run may overshoot the array in a corrupt stream; wimlib
                // tolerates that silently, so we clamp rather than fail.
                let stop = (i + run).min(lens.len());
                lens[i..stop].fill(0);
                i = stop;
            }
            19 => {
                let run = 4 + r.take(1) as usize;
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

    /// The bits of `input` as LZX defines them: 16-bit little-endian words,
    /// most significant bit first; an odd last byte is not part of any word.
    fn reference_bits(input: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for w in input.chunks_exact(2) {
            let w = u16::from_le_bytes([w[0], w[1]]);
            for k in (0..16).rev() {
                v.push((w >> k) as u8 & 1);
            }
        }
        v
    }

    proptest::proptest! {
        /// Any sequence of reads, takes and table-width peeks from any start
        /// gives the stream's bits, then zeros past its end, and `overrun`
        /// and `consumed_bits` tell exactly how far it went.
        #[test]
        fn bit_reader_reads_the_word_stream(
            input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
            start_word in 0usize..50,
            reads in proptest::collection::vec((0u32..=32, proptest::prelude::any::<bool>()), 0..60),
        ) {
            let bits = reference_bits(&input);
            let mut buf = vec![0xAA; 100];
            let stream = swap_words(&input, &mut buf);
            proptest::prop_assert_eq!(stream.len(), (input.len() & !1) + STREAM_PAD);
            let start = (2 * start_word).min(input.len() & !1);
            let mut r = BitReader::new(stream, 2 * start_word);
            let mut at = start * 8;
            for (n, refill_first) in reads {
                let v = if refill_first {
                    r.refill();
                    proptest::prop_assert!(r.bits >= 56);
                    r.take(n)
                } else {
                    r.read(n)
                };
                let mut want = 0u32;
                for i in at..at + n as usize {
                    want = (want << 1) | u32::from(bits.get(i).copied().unwrap_or(0));
                }
                proptest::prop_assert_eq!(v, want, "{} bits at bit {}", n, at);
                at += n as usize;
                proptest::prop_assert_eq!(r.consumed_bits(), at);
                proptest::prop_assert_eq!(r.overrun(), at > bits.len());
            }
        }
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
