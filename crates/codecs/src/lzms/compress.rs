//! LZMS chunk encoder.
//!
//! The chunk is x86-translated, then parsed with hash chains over 3-byte
//! hashes and lazy matching: at each position the candidates are the three
//! repeat offsets and the longest chain matches; each is scored by the bits
//! it saves against coding its bytes as literals, priced with the adaptive
//! Huffman codes as they stand. A match is deferred by one byte when the
//! next position offers a better score. Delta matches are decoded but not
//! produced. Items are written to the two streams as they are chosen and the
//! chunk is assembled at the end: range-coder units, then the bitstream's
//! units in reverse order.

use super::coder::{BitWriter, Models, Prev, RangeEncoder, RepQueue};
use super::huffman::{build_codes, Adaptive};
use super::tables::*;
use super::x86::X86Filter;
use crate::lzx::matchfind::match_len;

/// Costs are in 1/16 bits.
const BIT: u32 = 16;
const NONE: u32 = u32::MAX;

/// An adaptive code with its current codewords.
struct EncCode {
    a: Adaptive,
    codes: Vec<u16>,
}

impl EncCode {
    fn new(rebuild: u32) -> Self {
        EncCode {
            a: Adaptive::new(rebuild),
            codes: Vec::new(),
        }
    }

    fn reset(&mut self, num_syms: usize) {
        self.a.reset(num_syms);
        self.codes.resize(num_syms, 0);
        build_codes(&self.a.lens, &mut self.codes);
    }

    #[inline]
    fn put(&mut self, w: &mut BitWriter, sym: usize) {
        w.write(u32::from(self.codes[sym]), u32::from(self.a.lens[sym]));
        if self.a.count(sym) {
            build_codes(&self.a.lens, &mut self.codes);
        }
    }

    #[inline]
    fn cost(&self, sym: usize) -> u32 {
        u32::from(self.a.lens[sym]) * BIT
    }

    /// Slot symbol plus verbatim bits.
    #[inline]
    fn put_value(&mut self, w: &mut BitWriter, v: u32, base: &[u32], extra: &[u8]) {
        let slot = slot_of(v, base);
        self.put(w, slot);
        w.write(v - base[slot], u32::from(extra[slot]));
    }

    #[inline]
    fn value_cost(&self, v: u32, base: &[u32], extra: &[u8]) -> u32 {
        let slot = slot_of(v, base);
        self.cost(slot) + u32::from(extra[slot]) * BIT
    }
}

/// A scored parsing choice at one position.
#[derive(Clone, Copy)]
struct Choice {
    len: usize,
    offset: u32,
    /// Bits saved over literals (1/16 bit); <= 0 means "use a literal".
    gain: i64,
}

const NO_CHOICE: Choice = Choice {
    len: 0,
    offset: 0,
    gain: 0,
};

/// Reusable LZMS compressor.
pub struct LzmsCompressor {
    max_chunk_size: usize,
    depth: u32,
    nice: usize,
    lazy: bool,
    buf: Vec<u8>,
    head: Vec<u32>,
    prev: Vec<u32>,
    hash_bits: u32,
    x86: X86Filter,
    rc: RangeEncoder,
    bw: BitWriter,
    literal: EncCode,
    lz_offset: EncCode,
    length: EncCode,
    lit_prefix: Vec<u32>,
}

impl LzmsCompressor {
    /// `level` follows wimlib's scale: 20 quick, 50 default, 100 slow.
    pub fn new(max_chunk_size: usize, level: u32) -> Self {
        let level = level.clamp(1, 200);
        LzmsCompressor {
            max_chunk_size: max_chunk_size.min(MAX_BUFFER_SIZE),
            depth: (level * level / 50).clamp(4, 1024),
            nice: (level as usize * 64 / 50).clamp(16, 1024),
            lazy: level >= 30,
            buf: Vec::new(),
            head: Vec::new(),
            prev: Vec::new(),
            hash_bits: 0,
            x86: X86Filter::new(),
            rc: RangeEncoder::new(),
            bw: BitWriter::new(),
            literal: EncCode::new(LITERAL_REBUILD),
            lz_offset: EncCode::new(LZ_OFFSET_REBUILD),
            length: EncCode::new(LENGTH_REBUILD),
            lit_prefix: Vec::new(),
        }
    }

    pub fn compress_chunk(&mut self, input: &[u8], output: &mut [u8]) -> Option<usize> {
        let n = input.len();
        if n < 4 || n > self.max_chunk_size || output.len() < n {
            return None;
        }
        self.buf.clear();
        self.buf.extend_from_slice(input);
        self.x86.run(&mut self.buf, false);
        // Hash table sized to the chunk: 2^12 .. 2^22 heads.
        self.hash_bits = (usize::BITS - n.leading_zeros()).clamp(12, 22);
        self.head.clear();
        self.head.resize(1 << self.hash_bits, NONE);
        self.prev.clear();
        self.prev.resize(n, NONE);
        self.rc.reset();
        self.bw.reset();
        let slots = num_offset_slots(n);
        self.literal.reset(NUM_LITERAL_SYMS);
        self.lz_offset.reset(slots);
        self.length.reset(NUM_LENGTH_SLOTS);
        let mut m = Models::new();
        let mut reps = RepQueue::new([1u32, 2, 3, 4]);
        let mut prev = Prev::Literal;

        let mut i = 0usize;
        let mut cur = self.choose(i, &reps, prev == Prev::Lz);
        while i < n {
            // Give up as soon as the output cannot be smaller.
            if i % 4096 == 0 && self.rc.out.len() + self.bw.len_bytes() + 16 >= n {
                return None;
            }
            if cur.gain <= 0 {
                self.put_literal(&mut m, i);
                prev = Prev::Literal;
                i += 1;
                cur = self.choose(i, &reps, false);
                continue;
            }
            if self.lazy && cur.len < self.nice && i + 1 < n {
                let next = self.choose(i + 1, &reps, false);
                if next.gain > cur.gain + i64::from(BIT) {
                    self.put_literal(&mut m, i);
                    prev = Prev::Literal;
                    i += 1;
                    cur = next;
                    continue;
                }
                self.put_match(&mut m, &mut reps, prev, cur);
                prev = Prev::Lz;
                self.insert_range(i + 2, i + cur.len);
            } else {
                self.put_match(&mut m, &mut reps, prev, cur);
                prev = Prev::Lz;
                self.insert_range(i + 1, i + cur.len);
            }
            i += cur.len;
            cur = self.choose(i, &reps, true);
        }
        self.rc.finish();
        self.bw.finish();
        let fwd = self.rc.out.len();
        let total = fwd + self.bw.len_bytes();
        if total >= n {
            return None;
        }
        output[..fwd].copy_from_slice(&self.rc.out);
        for (dst, u) in output[fwd..total]
            .chunks_exact_mut(2)
            .zip(self.bw.units.iter().rev())
        {
            dst.copy_from_slice(&u.to_le_bytes());
        }
        Some(total)
    }

    #[inline]
    fn hash(&self, i: usize) -> usize {
        let d = &self.buf;
        let v = u32::from(d[i]) | u32::from(d[i + 1]) << 8 | u32::from(d[i + 2]) << 16;
        (v.wrapping_mul(0x9E37_79B1) >> (32 - self.hash_bits)) as usize
    }

    fn insert_range(&mut self, from: usize, to: usize) {
        let end = to.min(self.buf.len().saturating_sub(2));
        for j in from..end {
            let h = self.hash(j);
            self.prev[j] = self.head[h];
            self.head[h] = j as u32;
        }
    }

    /// The best item at `i` (inserting `i` into the chains), given the
    /// repeat queue and whether the previous item was an LZ match.
    fn choose(&mut self, i: usize, reps: &RepQueue<u32>, pending: bool) -> Choice {
        let n = self.buf.len();
        if i >= n {
            return NO_CHOICE;
        }
        let max_len = (n - i).min(MAX_MATCH_LEN as usize);
        let mut cands: [(usize, u32); 3 + 24] = [(0, 0); 27];
        let mut nc = 0;
        let mut longest = 0usize;
        // Repeat offsets first.
        for k in 0..NUM_REPS {
            let off = reps.get(k, pending) as usize;
            if off <= i {
                let l = match_len(&self.buf, i - off, i, max_len);
                if l >= 2 {
                    cands[nc] = (l, off as u32);
                    nc += 1;
                    longest = longest.max(l);
                }
            }
        }
        // Chain matches, nearest first, each longer than the last.
        if i + 3 <= n {
            let h = self.hash(i);
            let mut c = self.head[h];
            self.prev[i] = c;
            self.head[h] = i as u32;
            let mut best = 2usize;
            let mut left = self.depth;
            if longest >= self.nice {
                left = 0;
            }
            while c != NONE && left > 0 {
                let cp = c as usize;
                left -= 1;
                if self.buf[cp + best] == self.buf[i + best] {
                    let l = match_len(&self.buf, cp, i, max_len);
                    if l > best {
                        best = l;
                        if nc == cands.len() {
                            nc -= 1;
                        }
                        cands[nc] = (l, (i - cp) as u32);
                        nc += 1;
                        longest = longest.max(l);
                        // (Also keeps `i + best` inside the buffer.)
                        if l >= self.nice || l == max_len {
                            break;
                        }
                    }
                }
                c = self.prev[cp];
            }
        }
        if nc == 0 {
            return NO_CHOICE;
        }
        // Literal costs of the bytes ahead (exact up to a cap, then an
        // average per byte).
        const CAP: usize = 64;
        let upto = longest.min(CAP);
        self.lit_prefix.clear();
        self.lit_prefix.push(0);
        let mut s = 0u32;
        for &b in &self.buf[i..i + upto] {
            s += self.literal.cost(usize::from(b)) + BIT / 2;
            self.lit_prefix.push(s);
        }
        let lit_cost = |len: usize, p: &[u32]| -> i64 {
            if len <= CAP {
                i64::from(p[len])
            } else {
                i64::from(p[CAP]) + (len - CAP) as i64 * i64::from(p[CAP]) / CAP as i64
            }
        };
        let mut best = NO_CHOICE;
        for (k, &(len, off)) in cands[..nc].iter().enumerate() {
            let len_cost = self.length.value_cost(len as u32, &LENGTH_BASE, &LENGTH_EXTRA);
            let item_cost = if k < NUM_REPS && (0..NUM_REPS).any(|r| reps.get(r, pending) == off) {
                // Match, LZ, repeat decisions plus the repeat index.
                3 * BIT + BIT + len_cost
            } else {
                3 * BIT + self.lz_offset.value_cost(off, &OFFSET_BASE, &OFFSET_EXTRA) + len_cost
            };
            let gain = lit_cost(len, &self.lit_prefix) - i64::from(item_cost);
            if gain > best.gain {
                best = Choice {
                    len,
                    offset: off,
                    gain,
                };
            }
        }
        best
    }

    fn put_literal(&mut self, m: &mut Models, i: usize) {
        self.rc.bit(&mut m.main, 0);
        self.literal.put(&mut self.bw, usize::from(self.buf[i]));
    }

    fn put_match(&mut self, m: &mut Models, reps: &mut RepQueue<u32>, prev: Prev, c: Choice) {
        let pending = prev == Prev::Lz;
        self.rc.bit(&mut m.main, 1);
        self.rc.bit(&mut m.is_delta, 0);
        match (0..NUM_REPS).find(|&k| reps.get(k, pending) == c.offset) {
            Some(k) => {
                self.rc.bit(&mut m.lz_is_rep, 1);
                for d in 0..k.min(2) {
                    self.rc.bit(&mut m.lz_rep[d], 1);
                }
                if k < 2 {
                    self.rc.bit(&mut m.lz_rep[k], 0);
                }
                reps.take(k, pending);
            }
            None => {
                self.rc.bit(&mut m.lz_is_rep, 0);
                self.lz_offset
                    .put_value(&mut self.bw, c.offset, &OFFSET_BASE, &OFFSET_EXTRA);
                reps.push(c.offset);
            }
        }
        self.length
            .put_value(&mut self.bw, c.len as u32, &LENGTH_BASE, &LENGTH_EXTRA);
    }
}
