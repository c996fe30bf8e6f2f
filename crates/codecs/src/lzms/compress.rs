//! LZMS chunk encoder.
//!
//! The chunk is x86-translated, then parsed with hash chains over 3-byte
//! hashes and lazy matching: at each position the candidates are the three
//! repeat offsets and the longest chain matches; each is scored by the bits
//! it saves against coding its bytes as literals, priced with the adaptive
//! Huffman codes as they stand. A match is deferred by one byte when the
//! next position offers a better score. From level 35 on, delta matches
//! are searched too (one hashed candidate per stride 1..=32 plus the
//! repeat pairs). Items are written to the two streams as they are chosen and the
//! chunk is assembled at the end: range-coder units, then the bitstream's
//! units in reverse order.

use super::coder::{BitWriter, Model, Models, Prev, RangeEncoder, RepQueue};
use super::huffman::Adaptive;
use super::tables::*;
use super::x86::X86Filter;
use crate::lzx::huffenc::canonical_codes;
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
        canonical_codes(&self.a.lens, &mut self.codes);
    }

    #[inline]
    fn put(&mut self, w: &mut BitWriter, sym: usize) {
        w.write(u32::from(self.codes[sym]), u32::from(self.a.lens[sym]));
        if self.a.count(sym) {
            canonical_codes(&self.a.lens, &mut self.codes);
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

/// Cost of a range-coded bit: -log2(probability) in 1/16 bits, indexed by
/// the probability of that bit in 64ths.
fn bit_costs() -> [u32; 65] {
    let mut t = [0u32; 65];
    for (p, c) in t.iter_mut().enumerate().skip(1) {
        *c = (-(p as f64 / 64.0).log2() * f64::from(BIT))
            .round()
            .max(1.0) as u32;
    }
    t[0] = t[1];
    t
}

/// A scored parsing choice at one position.
#[derive(Clone, Copy)]
struct Choice {
    len: usize,
    /// LZ offset, or the raw (span-divided) offset of a delta match.
    offset: u32,
    /// `None` for an LZ match, else the delta power (span = 2^power).
    power: Option<u32>,
    /// Bits saved over literals (1/16 bit); <= 0 means "use a literal".
    gain: i64,
}

const NO_CHOICE: Choice = Choice {
    len: 0,
    offset: 0,
    power: None,
    gain: 0,
};

/// Delta matches: spans 1..=32 are searched (wimlib's choice too; the
/// format allows up to 128), hashed on the differences of 3 bytes.
const DELTA_POWERS: u32 = 6;
const DELTA_HASH_BITS: u32 = 17;
const DELTA_MIN_LEN: usize = 4;

/// The two repeat queues and the previous item's kind.
struct Reps {
    lz: RepQueue<u32>,
    delta: RepQueue<u64>,
    prev: Prev,
}

/// Length of the delta match at `i` against `c` with stride `span`: how far
/// the byte differences at `span` agree (caller: `c >= span`, `c < i`).
#[inline]
fn delta_len(d: &[u8], i: usize, c: usize, span: usize, max: usize) -> usize {
    let mut l = 0;
    while l < max
        && d[i + l].wrapping_sub(d[i + l - span]) == d[c + l].wrapping_sub(d[c + l - span])
    {
        l += 1;
    }
    l
}

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
    delta_offset: EncCode,
    power: EncCode,
    lit_prefix: Vec<u32>,
    costs: [u32; 65],
    /// Delta match finder: last position per hash, with its power.
    delta_on: bool,
    delta_pos: Vec<u32>,
    delta_pow: Vec<u8>,
    delta_buf: Vec<(usize, u32, u32)>,
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
            delta_offset: EncCode::new(DELTA_OFFSET_REBUILD),
            power: EncCode::new(POWER_REBUILD),
            lit_prefix: Vec::new(),
            costs: bit_costs(),
            delta_on: level >= 35,
            delta_pos: Vec::new(),
            delta_pow: Vec::new(),
            delta_buf: Vec::new(),
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
        self.delta_offset.reset(slots);
        self.power.reset(NUM_POWER_SYMS);
        if self.delta_on {
            self.delta_pos.clear();
            self.delta_pos.resize(1 << DELTA_HASH_BITS, NONE);
            self.delta_pow.clear();
            self.delta_pow.resize(1 << DELTA_HASH_BITS, 0);
        }
        let mut m = Models::new();
        let mut reps = Reps {
            lz: RepQueue::new([1u32, 2, 3, 4]),
            delta: RepQueue::new([1u64, 2, 3, 4]),
            prev: Prev::Literal,
        };

        let mut i = 0usize;
        let mut cur = self.choose(i, &reps, reps.prev, &m);
        while i < n {
            // Give up as soon as the output cannot be smaller.
            if i % 4096 == 0 && self.rc.out.len() + self.bw.len_bytes() + 16 >= n {
                return None;
            }
            if cur.gain <= 0 {
                self.put_literal(&mut m, &mut reps, i);
                i += 1;
                cur = self.choose(i, &reps, Prev::Literal, &m);
                continue;
            }
            // Lazy matching: the next position's best, assuming a literal
            // here, may beat this one.
            let mut inserted = i + 1;
            if self.lazy && cur.len < self.nice && i + 1 < n {
                let next = self.choose(i + 1, &reps, Prev::Literal, &m);
                if next.gain > cur.gain + i64::from(BIT) {
                    self.put_literal(&mut m, &mut reps, i);
                    i += 1;
                    cur = next;
                    continue;
                }
                inserted = i + 2;
            }
            self.put_match(&mut m, &mut reps, cur);
            self.insert_range(inserted, i + cur.len);
            i += cur.len;
            cur = self.choose(i, &reps, reps.prev, &m);
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
            if self.delta_on {
                for power in 0..DELTA_POWERS {
                    if let Some(h) = self.delta_hash(j, power) {
                        self.delta_pos[h] = j as u32;
                        self.delta_pow[h] = power as u8;
                    }
                }
            }
        }
    }

    /// Hash of the 3 byte differences at stride 2^power starting at `i`,
    /// mixed with the stride and `i`'s phase within it (so one table serves
    /// every stride). `None` where the differences are not all available.
    #[inline]
    fn delta_hash(&self, i: usize, power: u32) -> Option<usize> {
        let span = 1usize << power;
        let d = &self.buf;
        if i < span || i + 3 > d.len() {
            return None;
        }
        let diff = |k: usize| u32::from(d[i + k].wrapping_sub(d[i + k - span]));
        let v = ((span as u32 + (i as u32 & (span as u32 - 1))) << 24)
            | diff(2) << 16
            | diff(1) << 8
            | diff(0);
        Some((v.wrapping_mul(0x9E37_79B1) >> (32 - DELTA_HASH_BITS)) as usize)
    }

    /// Delta candidates at `i` (inserting `i` into the delta table): the
    /// repeat pairs and one hashed candidate per stride, as (len, raw
    /// offset, power).
    fn delta_candidates(
        &mut self,
        i: usize,
        reps: &Reps,
        prev: Prev,
        out: &mut Vec<(usize, u32, u32)>,
    ) {
        let n = self.buf.len();
        let max = (n - i).min(MAX_MATCH_LEN as usize);
        for k in 0..NUM_REPS {
            let pair = reps.delta.get(k, prev == Prev::Delta);
            let power = (pair >> 32) as u32;
            let raw = pair as u32;
            let (span, off) = (1usize << power, (raw as usize) << power);
            if off + span <= i {
                let l = delta_len(&self.buf, i, i - off, span, max);
                if l >= DELTA_MIN_LEN {
                    out.push((l, raw, power));
                }
            }
        }
        for power in 0..DELTA_POWERS {
            let Some(h) = self.delta_hash(i, power) else {
                continue;
            };
            let (c, p) = (self.delta_pos[h], u32::from(self.delta_pow[h]));
            self.delta_pos[h] = i as u32;
            self.delta_pow[h] = power as u8;
            let span = 1usize << power;
            if c == NONE || p != power {
                continue;
            }
            let c = c as usize;
            let off = i - c;
            if c < span || off % span != 0 {
                continue;
            }
            let l = delta_len(&self.buf, i, c, span, max);
            if l >= DELTA_MIN_LEN {
                out.push((l, (off >> power) as u32, power));
            }
        }
    }

    /// The best item at `i` (inserting `i` into the chains), given the
    /// repeat queue and whether the previous item was an LZ match.
    fn choose(&mut self, i: usize, reps: &Reps, prev: Prev, m: &Models) -> Choice {
        let pending = prev == Prev::Lz;
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
            let off = reps.lz.get(k, pending) as usize;
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
        let mut deltas = std::mem::take(&mut self.delta_buf);
        deltas.clear();
        if self.delta_on {
            self.delta_candidates(i, reps, prev, &mut deltas);
            for &(l, ..) in &deltas {
                longest = longest.max(l);
            }
        }
        if nc == 0 && deltas.is_empty() {
            self.delta_buf = deltas;
            return NO_CHOICE;
        }
        // Literal costs of the bytes ahead (exact up to a cap, then an
        // average per byte).
        const CAP: usize = 16;
        let upto = longest.min(CAP);
        let c = &self.costs;
        let bit = |p0: u32, b: bool| {
            if b {
                c[(64 - p0) as usize]
            } else {
                c[p0 as usize]
            }
        };
        let lit_bit = bit(m.main.prob0(), false);
        let match_bits = bit(m.main.prob0(), true);
        let lz_head = match_bits + bit(m.is_delta.prob0(), false);
        let delta_head = match_bits + bit(m.is_delta.prob0(), true);
        let rep_idx = |k: usize, models: &[Model<64>; 2]| {
            bit(models[0].prob0(), k > 0)
                + if k > 0 {
                    bit(models[1].prob0(), k > 1)
                } else {
                    0
                }
        };
        self.lit_prefix.clear();
        self.lit_prefix.push(0);
        let mut s = 0u32;
        for &b in &self.buf[i..i + upto] {
            s += self.literal.cost(usize::from(b)) + lit_bit;
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
        // A source in its queue is coded as a repeat, else explicitly.
        let source_cost =
            |is_rep: &Model<64>, idx: &[Model<64>; 2], r: Option<usize>, explicit: u32| match r {
                Some(r) => bit(is_rep.prob0(), true) + rep_idx(r, idx),
                None => bit(is_rep.prob0(), false) + explicit,
            };
        let lz_pending = prev == Prev::Lz;
        let delta_pending = prev == Prev::Delta;
        let all = cands[..nc]
            .iter()
            .map(|&(l, o)| (l, o, None))
            .chain(deltas.iter().map(|&(l, raw, p)| (l, raw, Some(p))));
        for (len, off, power) in all {
            let len_cost = self
                .length
                .value_cost(len as u32, &LENGTH_BASE, &LENGTH_EXTRA);
            let item_cost = match power {
                None => {
                    let r = (0..NUM_REPS).find(|&r| reps.lz.get(r, lz_pending) == off);
                    let explicit = self.lz_offset.value_cost(off, &OFFSET_BASE, &OFFSET_EXTRA);
                    lz_head + source_cost(&m.lz_is_rep, &m.lz_rep, r, explicit)
                }
                Some(p) => {
                    let pair = (u64::from(p) << 32) | u64::from(off);
                    let r = (0..NUM_REPS).find(|&r| reps.delta.get(r, delta_pending) == pair);
                    let explicit = self.power.cost(p as usize)
                        + self
                            .delta_offset
                            .value_cost(off, &OFFSET_BASE, &OFFSET_EXTRA);
                    delta_head + source_cost(&m.delta_is_rep, &m.delta_rep, r, explicit)
                }
            };
            let gain = lit_cost(len, &self.lit_prefix) - i64::from(item_cost + len_cost);
            if gain > best.gain {
                best = Choice {
                    len,
                    offset: off,
                    power,
                    gain,
                };
            }
        }
        self.delta_buf = deltas;
        best
    }

    fn put_literal(&mut self, m: &mut Models, reps: &mut Reps, i: usize) {
        self.rc.bit(&mut m.main, 0);
        self.literal.put(&mut self.bw, usize::from(self.buf[i]));
        reps.prev = Prev::Literal;
    }

    fn put_match(&mut self, m: &mut Models, reps: &mut Reps, c: Choice) {
        self.rc.bit(&mut m.main, 1);
        match c.power {
            None => {
                self.rc.bit(&mut m.is_delta, 0);
                let pending = reps.prev == Prev::Lz;
                let rc = &mut self.rc;
                if !put_repeat(
                    rc,
                    &mut m.lz_is_rep,
                    &mut m.lz_rep,
                    &mut reps.lz,
                    pending,
                    c.offset,
                ) {
                    self.lz_offset
                        .put_value(&mut self.bw, c.offset, &OFFSET_BASE, &OFFSET_EXTRA);
                }
                reps.prev = Prev::Lz;
            }
            Some(power) => {
                self.rc.bit(&mut m.is_delta, 1);
                let pending = reps.prev == Prev::Delta;
                let pair = (u64::from(power) << 32) | u64::from(c.offset);
                let rc = &mut self.rc;
                if !put_repeat(
                    rc,
                    &mut m.delta_is_rep,
                    &mut m.delta_rep,
                    &mut reps.delta,
                    pending,
                    pair,
                ) {
                    self.power.put(&mut self.bw, power as usize);
                    self.delta_offset.put_value(
                        &mut self.bw,
                        c.offset,
                        &OFFSET_BASE,
                        &OFFSET_EXTRA,
                    );
                }
                reps.prev = Prev::Delta;
            }
        }
        self.length
            .put_value(&mut self.bw, c.len as u32, &LENGTH_BASE, &LENGTH_EXTRA);
    }
}

/// Codes whether `source` is in the repeat queue and, if so, its index, and
/// updates the queue. Returns false when the source must be coded
/// explicitly (the caller writes it; the queue already has it in front).
fn put_repeat<T: Copy + PartialEq, const N: usize>(
    rc: &mut RangeEncoder,
    is_rep: &mut Model<N>,
    index_models: &mut [Model<N>; 2],
    queue: &mut RepQueue<T>,
    pending: bool,
    source: T,
) -> bool {
    match (0..NUM_REPS).find(|&k| queue.get(k, pending) == source) {
        Some(k) => {
            rc.bit(is_rep, 1);
            // Index 0, 1 or 2 as up to two binary decisions.
            for model in index_models.iter_mut().take(k) {
                rc.bit(model, 1);
            }
            if k < 2 {
                rc.bit(&mut index_models[k], 0);
            }
            queue.take(k, pending);
            true
        }
        None => {
            rc.bit(is_rep, 0);
            queue.push(source);
            false
        }
    }
}
