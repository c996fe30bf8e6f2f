//! XPRESS chunk compressor.
//!
//! Parsing strategies, chosen by level on wimlib's scale:
//! - below 30: greedy (take the longest match at each position);
//! - 30 to 59 (default 50): lazy (before taking a match, look for a better
//!   one at the next position, where "better" weighs the length gained
//!   against the offset bits: see [`lazy_prefers_next`]);
//! - 60 and up: near-optimal (minimum-cost path over all matches found,
//!   iterated with the Huffman code of the previous pass as cost model).
//!
//! The chosen items are Huffman-coded with one code built from their
//! frequencies. The exact compressed size is known before anything is
//! written, so an incompressible chunk costs no output work.

use super::huffman::make_code;
use super::matchfinder::{Finder, HcMatchFinder};
use super::near_optimal::NearOptimal;
use super::{
    END_OF_DATA, HEADER_SIZE, MAX_CHUNK_SIZE, MAX_CODEWORD_LEN, MAX_OFFSET, MIN_MATCH_LEN,
    NUM_CHARS, NUM_SYMBOLS,
};
use crate::Compressor;

/// Smallest output possible: header plus two coding units.
const MIN_OUTPUT: usize = HEADER_SIZE + 4;

/// Whether the lazy parser should emit a literal and take the match at the
/// next position (`next_len`, `next_off`) rather than the current one: the
/// next match must be longer, and by more than the extra offset bits it
/// costs, at four bits per byte of length, plus one bit for the literal.
#[inline(always)]
fn lazy_prefers_next(cur_len: usize, cur_off: usize, next_len: usize, next_off: usize) -> bool {
    next_len > cur_len
        && 4 * next_len + offset_log2(cur_off) as usize
            > 4 * cur_len + offset_log2(next_off) as usize + 1
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Strategy {
    Greedy,
    Lazy,
    NearOptimal { passes: u32 },
}

/// XPRESS chunk compressor. Create one per thread and reuse it: its match
/// finder tables and item buffer are kept between calls.
pub struct XpressCompressor {
    strategy: Strategy,
    max_search_depth: u32,
    nice_match_len: usize,
    mf: HcMatchFinder,
    near: NearOptimal,
    items: Items,
    lens: [u8; NUM_SYMBOLS],
    codewords: [u16; NUM_SYMBOLS],
    /// The coding units of a chunk before interleaving.
    units: Vec<u8>,
    /// Per long match: the number of units its raw bytes come after.
    long_at: Vec<u32>,
}

impl XpressCompressor {
    /// A compressor for chunks of up to `max_chunk_size` bytes (at most
    /// 65536; larger chunks are never compressed) at `level` (wimlib's
    /// scale: 0 means the default, 50).
    pub fn new(max_chunk_size: usize, level: u32) -> Self {
        let level = if level == 0 { 50 } else { level };
        let (strategy, depth, nice) = if level < 30 {
            (Strategy::Greedy, level * 30 / 16, level * 60 / 16)
        } else if level < 60 {
            (Strategy::Lazy, (level * 30 / 32).max(2), level * 60 / 32)
        } else {
            let passes = 1 + level / 50;
            (
                Strategy::NearOptimal { passes },
                level / 2,
                level * 56 / 100,
            )
        };
        let max_chunk_size = max_chunk_size.min(MAX_CHUNK_SIZE);
        Self {
            strategy,
            max_search_depth: depth.max(1),
            nice_match_len: (nice as usize).max(MIN_MATCH_LEN),
            mf: HcMatchFinder::new(max_chunk_size),
            near: NearOptimal::default(),
            items: Items::with_capacity(max_chunk_size),
            lens: [0; NUM_SYMBOLS],
            codewords: [0; NUM_SYMBOLS],
            units: Vec::new(),
            long_at: Vec::new(),
        }
    }

    /// Exact size of the chunk the current items and code produce.
    fn coded_size(&self) -> usize {
        let mut bits: u64 = 0;
        for sym in 0..NUM_SYMBOLS {
            let f = self.items.freqs[sym] as u64;
            let mut per = self.lens[sym] as u64;
            if sym >= NUM_CHARS {
                per += ((sym >> 4) & 0xF) as u64;
            }
            bits += f * per;
        }
        // Coding units: the writer holds two reserved and reserves one more
        // each time more than 16 bits are pending, so ceil(bits / 16) + 1
        // units in all (the last one all zeros), bits >= 1 here.
        HEADER_SIZE + 2 * (bits.div_ceil(16) as usize + 1) + self.items.extra_bytes
    }

    /// Writes the chunk (exactly `out.len()` bytes, from [`Self::coded_size`]).
    ///
    /// The coding units go first into `self.units` as a plain bitstream;
    /// then they are copied to `out` with the raw bytes of long matches
    /// interleaved. Where a raw byte goes follows from the number of bits
    /// written before it: the decoder always has two units buffered, so
    /// the byte comes after unit `c + 1` when `c` units were full (more
    /// than 16 bits written per unit) at that moment.
    fn write(&mut self, out: &mut [u8]) -> usize {
        for (i, pair) in self.lens.chunks_exact(2).enumerate() {
            out[i] = pair[0] | (pair[1] << 4);
        }
        // Per symbol: codeword << 8 | offset bit count << 4 | length (the
        // offset bit count is 0 for literals).
        let mut enc = [0u32; NUM_SYMBOLS];
        for (sym, e) in enc.iter_mut().enumerate() {
            let offset_bits = if sym >= NUM_CHARS {
                (sym >> 4) & 0xF
            } else {
                0
            };
            *e = (self.codewords[sym] as u32) << 8
                | (offset_bits as u32) << 4
                | self.lens[sym] as u32;
        }
        let body = out.len() - HEADER_SIZE;
        if self.units.len() < body + UNIT_SLACK {
            self.units.resize(body + UNIT_SLACK, 0);
        }
        self.long_at.clear();
        let mut w = UnitWriter::new(&mut self.units);
        for &item in &self.items.list {
            let e = enc[(item & 0x1FF) as usize];
            let (cw, len, nob) = (e >> 8, e & 0xF, (e >> 4) & 0xF);
            let offset_bits = (item >> 9) & 0x7FFF;
            if item & LONG == 0 {
                // A literal, or a match without raw bytes between its
                // symbol and its offset bits: one write does both.
                w.put(cw << nob | offset_bits, len + nob);
            } else {
                w.put(cw, len);
                self.long_at.push(w.full_units() + 2);
                w.put(offset_bits, nob);
            }
        }
        let e = enc[END_OF_DATA];
        w.put(e >> 8, e & 0xF);
        let units = w.finish();
        // Interleave.
        let mut o = HEADER_SIZE;
        let mut u = 0;
        for (&at, &adj) in self.long_at.iter().zip(&self.items.long_lens) {
            let at = at as usize;
            out[o..o + 2 * (at - u)].copy_from_slice(&self.units[2 * u..2 * at]);
            o += 2 * (at - u);
            u = at;
            if adj - 0xF < 0xFF {
                out[o] = (adj - 0xF) as u8;
                o += 1;
            } else {
                out[o] = 0xFF;
                out[o + 1..o + 3].copy_from_slice(&adj.to_le_bytes());
                o += 3;
            }
        }
        out[o..o + 2 * (units - u)].copy_from_slice(&self.units[2 * u..2 * units]);
        o + 2 * (units - u)
    }
}

/// Item flag: a match with extra length bytes (its adjusted length is the
/// next entry of `Items::long_lens`).
const LONG: u32 = 1 << 31;

/// The parse of one chunk, ready to be Huffman-coded.
pub(super) struct Items {
    /// One entry per literal or match: symbol (bits 0..9), offset bits
    /// below the highest set one (bits 9..24, 0 for literals), [`LONG`].
    list: Vec<u32>,
    /// `len - 3` of each [`LONG`] match, in order.
    long_lens: Vec<u16>,
    freqs: [u32; NUM_SYMBOLS],
    /// Interleaved bytes the parse needs (extra match length bytes).
    extra_bytes: usize,
}

impl Items {
    fn with_capacity(n: usize) -> Self {
        Self {
            list: Vec::with_capacity(n + 1),
            long_lens: Vec::new(),
            freqs: [0; NUM_SYMBOLS],
            extra_bytes: 0,
        }
    }

    fn clear(&mut self) {
        self.list.clear();
        self.long_lens.clear();
        self.freqs = [0; NUM_SYMBOLS];
        self.extra_bytes = 0;
    }

    #[inline(always)]
    pub(super) fn literal(&mut self, b: u8) {
        self.freqs[b as usize] += 1;
        self.list.push(b as u32);
    }

    #[inline(always)]
    pub(super) fn do_match(&mut self, len: usize, offset: usize) {
        debug_assert!(len >= MIN_MATCH_LEN && (1..=MAX_OFFSET).contains(&offset));
        let adj = len - MIN_MATCH_LEN;
        let log2 = offset_log2(offset);
        let sym = NUM_CHARS + ((log2 as usize) << 4 | adj.min(0xF));
        self.freqs[sym] += 1;
        let mut item = sym as u32 | ((offset as u32) ^ (1 << log2)) << 9;
        if adj >= 0xF {
            self.extra_bytes += if adj - 0xF >= 0xFF { 3 } else { 1 };
            self.long_lens.push(adj as u16);
            item |= LONG;
        }
        self.list.push(item);
    }
}

/// One chunk's parse. A local value, so that after inlining its fields
/// live in registers.
struct Parser<'a> {
    mf: Finder<'a>,
    items: Items,
    max_search_depth: u32,
    nice_match_len: usize,
}

impl Parser<'_> {
    #[inline(always)]
    fn literal(&mut self, b: u8) {
        self.items.literal(b);
    }

    #[inline(always)]
    fn do_match(&mut self, len: usize, offset: usize) {
        self.items.do_match(len, offset);
    }

    #[inline(always)]
    fn parse_greedy(&mut self, input: &[u8]) {
        let n = input.len();
        let too_far = len3_too_far(n);
        let mut i = 0;
        while i + 4 <= n {
            let max_len = n - i;
            let nice = self.nice_match_len.min(max_len);
            let (len, off) =
                self.mf
                    .longest_match(input, i, 2, max_len, nice, self.max_search_depth);
            if len >= MIN_MATCH_LEN && !(len == MIN_MATCH_LEN && off >= too_far) {
                self.do_match(len, off);
                self.mf.skip(input, i + 1, len - 1);
                i += len;
            } else {
                self.literal(input[i]);
                i += 1;
            }
        }
        for &b in &input[i..] {
            self.literal(b);
        }
    }

    #[inline(always)]
    fn parse_lazy(&mut self, input: &[u8]) {
        let n = input.len();
        let too_far = len3_too_far(n);
        let depth = self.max_search_depth;
        // As wimlib: half the depth. (A third was 2-4 % faster and on the
        // bench corpus at level 50 still smaller than wimlib, but only just:
        // one less, and some chunks with a 16-entry period got 5 % larger.)
        let lazy_depth = depth / 2;
        let mut i = 0;
        'outer: while i + 4 <= n {
            let max_len = n - i;
            let (mut cur_len, mut cur_off) = self.mf.longest_match(
                input,
                i,
                2,
                max_len,
                self.nice_match_len.min(max_len),
                depth,
            );
            i += 1;
            if cur_len < MIN_MATCH_LEN || (cur_len == MIN_MATCH_LEN && cur_off >= too_far) {
                self.literal(input[i - 1]);
                continue;
            }
            // `i` is one past the start of the current match.
            loop {
                if cur_len >= self.nice_match_len || i + 4 > n {
                    self.do_match(cur_len, cur_off);
                    self.mf.skip(input, i, cur_len - 1);
                    i += cur_len - 1;
                    continue 'outer;
                }
                let max_len = n - i;
                let (next_len, next_off) = self.mf.longest_match(
                    input,
                    i,
                    cur_len,
                    max_len,
                    self.nice_match_len.min(max_len),
                    lazy_depth,
                );
                i += 1;
                if lazy_prefers_next(cur_len, cur_off, next_len, next_off) {
                    self.literal(input[i - 2]);
                    cur_len = next_len;
                    cur_off = next_off;
                } else {
                    self.do_match(cur_len, cur_off);
                    self.mf.skip(input, i, cur_len - 2);
                    i += cur_len - 2;
                    continue 'outer;
                }
            }
        }
        for &b in &input[i.min(n)..] {
            self.literal(b);
        }
    }
}

#[inline(always)]
fn offset_log2(offset: usize) -> u32 {
    usize::BITS - 1 - offset.leading_zeros()
}

/// Length 3 matches this far away or farther are not worth it (wimlib's
/// heuristic).
fn len3_too_far(n: usize) -> usize {
    if n <= 8192 {
        2048
    } else {
        4096
    }
}

impl Compressor for XpressCompressor {
    fn compress(&mut self, input: &[u8], output: &mut [u8]) -> Option<usize> {
        let n = input.len();
        // The smallest possible chunk is MIN_OUTPUT bytes.
        if n <= MIN_OUTPUT || n > MAX_CHUNK_SIZE || output.len() < n {
            return None;
        }
        let mut items = std::mem::replace(&mut self.items, Items::with_capacity(0));
        items.clear();
        let mut p = Parser {
            mf: self.mf.begin(n),
            items,
            max_search_depth: self.max_search_depth,
            nice_match_len: self.nice_match_len,
        };
        match self.strategy {
            Strategy::Greedy => p.parse_greedy(input),
            Strategy::Lazy => p.parse_lazy(input),
            Strategy::NearOptimal { passes } => self.near.parse(
                &mut p.mf,
                input,
                p.max_search_depth,
                p.nice_match_len,
                passes,
                &mut p.items,
            ),
        }
        self.items = p.items;
        self.items.freqs[END_OF_DATA] += 1;
        make_code(&self.items.freqs, &mut self.lens, &mut self.codewords);
        debug_assert!(self.lens.iter().all(|&l| l as usize <= MAX_CODEWORD_LEN));
        let size = self.coded_size();
        if size >= n {
            return None;
        }
        let written = self.write(&mut output[..size]);
        debug_assert_eq!(written, size);
        Some(written)
    }
}

/// Bytes `UnitWriter` may store beyond the units it writes.
const UNIT_SLACK: usize = 8;

/// Writes bits MSB first into 16-bit little-endian units, contiguously
/// (the raw bytes are interleaved afterwards, see
/// [`XpressCompressor::write`]). The buffer must hold the units plus
/// [`UNIT_SLACK`] bytes.
struct UnitWriter<'a> {
    out: &'a mut [u8],
    /// Pending bits: the low `bitcount` bits of `bitbuf` (< 32 between calls).
    bitbuf: u64,
    bitcount: u32,
    /// Bytes of whole units stored so far.
    pos: usize,
}

impl<'a> UnitWriter<'a> {
    fn new(out: &'a mut [u8]) -> Self {
        Self {
            out,
            bitbuf: 0,
            bitcount: 0,
            pos: 0,
        }
    }

    /// Appends the low `n` (<= 31) bits of `bits` (no higher bits set).
    /// Branch-free: the next two units are stored whether or not 32 bits
    /// are pending (whether they are is unpredictable), and overwritten
    /// later if not.
    #[inline(always)]
    fn put(&mut self, bits: u32, n: u32) {
        self.bitbuf = (self.bitbuf << n) | bits as u64;
        self.bitcount += n;
        let full = self.bitcount >= 32;
        let shift = self.bitcount.saturating_sub(32);
        let v = (self.bitbuf >> shift) as u32;
        // The first unit (high half) goes first in memory.
        let two_units = v.rotate_left(16);
        self.out[self.pos..self.pos + 4].copy_from_slice(&two_units.to_le_bytes());
        self.pos += 4 * full as usize;
        self.bitcount -= 32 * full as u32;
    }

    /// Units that were full (had more than 16 bits written) so far.
    #[inline(always)]
    fn full_units(&self) -> u32 {
        let total = self.pos as u32 * 8 + self.bitcount;
        total.saturating_sub(1) / 16
    }

    /// Stores the last (partial) unit and the zero unit that ends the
    /// data; returns the number of units.
    fn finish(mut self) -> usize {
        let pad = (16 - self.bitcount % 16) % 16;
        self.put(0, pad);
        self.put(0, 16);
        // 0 or 16 bits are left pending: store them.
        while self.bitcount >= 16 {
            self.bitcount -= 16;
            let unit = (self.bitbuf >> self.bitcount) as u16;
            self.out[self.pos..self.pos + 2].copy_from_slice(&unit.to_le_bytes());
            self.pos += 2;
        }
        self.pos / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xpress::XpressDecompressor;
    use crate::Decompressor;

    fn round_trip(data: &[u8], level: u32) -> Option<usize> {
        let mut c = XpressCompressor::new(65536, level);
        let mut out = vec![0u8; data.len()];
        let n = c.compress(data, &mut out)?;
        assert!(n < data.len());
        let mut d = XpressDecompressor::new(65536);
        let mut back = vec![0u8; data.len()];
        d.decompress(&out[..n], &mut back).unwrap();
        assert!(back == data, "round trip mismatch at level {level}");
        Some(n)
    }

    #[test]
    fn round_trips_simple_inputs() {
        let text: Vec<u8> = b"the quick brown fox jumps over the lazy dog; "
            .iter()
            .cycle()
            .take(5000)
            .copied()
            .collect();
        let zeros = vec![0u8; 65536];
        let ramp: Vec<u8> = (0..40000u32).map(|i| (i * 7 / 13) as u8).collect();
        for level in [1, 10, 29, 30, 50, 80, 100] {
            assert!(round_trip(&text, level).is_some());
            assert!(round_trip(&zeros, level).is_some());
            assert!(round_trip(&ramp, level).is_some());
        }
    }

    #[test]
    fn lazy_choice_weighs_offset_bits() {
        // Longer at the same or a nearer offset: take it.
        assert!(lazy_prefers_next(5, 100, 6, 100));
        assert!(lazy_prefers_next(5, 1000, 6, 8));
        // Not longer: never.
        assert!(!lazy_prefers_next(5, 1000, 5, 1));
        // One byte longer but 4+ more offset bits: keep the current match.
        assert!(!lazy_prefers_next(5, 8, 6, 128));
        // Two bytes longer pays for 6 more offset bits.
        assert!(lazy_prefers_next(5, 8, 7, 512));
    }

    /// The output depends only on the input and level, not on what the
    /// compressor (whose tables are reused) saw before.
    #[test]
    fn output_is_deterministic() {
        let text: Vec<u8> = (0..30000u32)
            .map(|i| b"abcdefgh ijkl"[(i * i % 13) as usize] ^ (i / 4000) as u8)
            .collect();
        let other: Vec<u8> = (0..20000u32).map(|i| (i * 31 / 7) as u8).collect();
        for level in [10, 50, 100] {
            let fresh = |data: &[u8]| {
                let mut out = vec![0u8; data.len()];
                let n = XpressCompressor::new(32768, level).compress(data, &mut out);
                out.truncate(n.unwrap());
                out
            };
            let mut c = XpressCompressor::new(32768, level);
            let mut out = vec![0u8; 32768];
            for data in [&text, &other, &text] {
                let n = c.compress(data, &mut out).unwrap();
                assert_eq!(out[..n], fresh(data)[..], "level {level}");
            }
        }
    }

    #[test]
    fn tiny_and_incompressible_inputs_are_refused() {
        let mut c = XpressCompressor::new(32768, 50);
        let mut out = vec![0u8; 300];
        assert_eq!(c.compress(&[], &mut out), None);
        assert_eq!(c.compress(&[0; 100], &mut out[..100]), None);
        let mut x = 0x1234_5678u32;
        let noise: Vec<u8> = (0..300)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        assert_eq!(c.compress(&noise, &mut out), None);
    }
}
