//! LZMS chunk encoder.
//!
//! The chunk is x86-translated, then parsed near-optimally: a minimum-cost
//! path search over the graph whose nodes are byte positions and whose edges
//! are literals and matches (LZ and delta, explicit or repeat offsets),
//! priced with the adaptive Huffman code lengths and the range coder's
//! probabilities as they stand when a stretch of the path starts. Each node
//! carries the adaptive state its cheapest path leads to (repeat queues,
//! the delayed queue insertion, and the context bits that select the
//! probabilities), so repeat matches and decision costs are priced along
//! the path. The search commits its path when no edge reaches past the
//! current position, after 2048 bytes, or at a match of `nice` bytes, and
//! the chosen items go through the real encoder, which updates the
//! probabilities and rebuilds the Huffman codes before the next stretch.
//!
//! LZ matches come from binary trees over the whole chunk (see [`super::bt`]);
//! delta matches (level 35+) from one hashed candidate per stride 1..=32;
//! from level 45 on, "match, literal, repeat-0 match" sequences are priced
//! as one step, and from level 60 "literal, repeat-0" and "repeat, literal,
//! repeat-0" too (an idea from LZMA encoders, also used by wimlib).
//!
//! The chunk is assembled at the end: range-coder units, then the
//! bitstream's units in reverse order.

use super::bt::{BinaryTrees, Match};
use super::coder::{BitWriter, Model, Models, Prev, RangeEncoder, RepQueue};
use super::huffman::Adaptive;
use super::tables::*;
use super::x86::X86Filter;
use crate::lzx::huffenc::canonical_codes;
use crate::lzx::matchfind::match_len;

/// Costs are in 1/64 bits.
const BIT: u32 = 64;
const INF: u32 = u32::MAX;
const NONE: u32 = u32::MAX;
/// Positions a stretch of the path may span before it is committed.
const NUM_NODES: usize = 2048;
// A match never needs a length cap: no chunk is longer than the longest
// codable length.
const _: () = assert!(MAX_BUFFER_SIZE as u64 <= MAX_MATCH_LEN as u64);

/// Longest `nice` length (and so the largest length priced from a table).
const MAX_NICE: usize = 255;

/// An adaptive code with its current codewords.
struct EncCode {
    a: Adaptive,
    codes: Vec<u16>,
    /// Set when the lengths change (for cached cost tables).
    rebuilt: bool,
}

impl EncCode {
    fn new(rebuild: u32) -> Self {
        EncCode {
            a: Adaptive::new(rebuild),
            codes: Vec::new(),
            rebuilt: true,
        }
    }

    fn reset(&mut self, num_syms: usize) {
        self.a.reset(num_syms);
        self.codes.resize(num_syms, 0);
        canonical_codes(&self.a.lens, &mut self.codes);
        self.rebuilt = true;
    }

    #[inline]
    fn put(&mut self, w: &mut BitWriter, sym: usize) {
        w.write(u32::from(self.codes[sym]), u32::from(self.a.lens[sym]));
        if self.a.count(sym) {
            canonical_codes(&self.a.lens, &mut self.codes);
            self.rebuilt = true;
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

    /// `value_cost` for offsets (direct slot lookup).
    #[inline]
    fn offset_cost(&self, v: u32) -> u32 {
        let slot = offset_slot(v);
        self.cost(slot) + u32::from(OFFSET_EXTRA[slot]) * BIT
    }
}

/// Cost of a range-coded bit: -log2(probability) in 1/64 bits, indexed by
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

/// Where an item's bytes come from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Src {
    Lit,
    /// LZ match at this offset.
    Lz(u32),
    /// Delta match: (power, raw offset); stride 2^power, offset raw << power.
    Delta(u32, u32),
}

#[derive(Clone, Copy, Debug)]
struct Item {
    len: u32,
    src: Src,
}

const LIT: Item = Item {
    len: 1,
    src: Src::Lit,
};

const _: () = assert!(NUM_LZ_STATES == NUM_LZ_REP_STATES);
const _: () = assert!(NUM_DELTA_STATES == NUM_DELTA_REP_STATES);

/// Delta matches: strides 1..=32 are searched (wimlib's choice too; the
/// format allows up to 128), hashed on the differences of 3 bytes.
const DELTA_POWERS: u32 = 6;
const DELTA_HASH_BITS: u32 = 17;
const DELTA_MIN_LEN: usize = 3;

type MainM = Model<NUM_MAIN_STATES>;
type MatchM = Model<NUM_MATCH_STATES>;

/// The part of the adaptive state that follows the parse path: repeat
/// queues, the previous item's kind and the context of every decision
/// class (the probabilities themselves stay with the encoder).
#[derive(Clone, Copy)]
struct State {
    lz: RepQueue<u32>,
    delta: RepQueue<u64>,
    prev: Prev,
    main: u8,
    is_delta: u8,
    lz_is_rep: u8,
    lz_rep: [u8; 2],
    delta_is_rep: u8,
    delta_rep: [u8; 2],
}

#[inline]
fn delta_pair(power: u32, raw: u32) -> u64 {
    (u64::from(power) << 32) | u64::from(raw)
}

/// The queue index holding `v`, if any.
#[inline]
fn rep_index<T: Copy + PartialEq>(q: &RepQueue<T>, pending: bool, v: T) -> Option<usize> {
    (0..NUM_REPS).find(|&k| q.get(k, pending) == v)
}

/// Contexts after coding repeat index `k` as up to two binary decisions.
#[inline]
fn rep_states<const N: usize>(s: &mut [u8; 2], k: usize) {
    for st in s.iter_mut().take(k) {
        *st = Model::<N>::next_state(*st, 1);
    }
    if k < 2 {
        s[k] = Model::<N>::next_state(s[k], 0);
    }
}

impl State {
    /// The state after `item`, following the encoder's rules exactly (a
    /// source found in its queue is coded as a repeat).
    #[inline]
    fn apply(&mut self, item: Item) {
        match item.src {
            Src::Lit => {
                self.main = MainM::next_state(self.main, 0);
                self.prev = Prev::Literal;
            }
            Src::Lz(off) => {
                self.main = MainM::next_state(self.main, 1);
                self.is_delta = MatchM::next_state(self.is_delta, 0);
                let pending = self.prev == Prev::Lz;
                source_states::<NUM_LZ_STATES, _>(
                    &mut self.lz_is_rep,
                    &mut self.lz_rep,
                    &mut self.lz,
                    pending,
                    off,
                );
                self.prev = Prev::Lz;
            }
            Src::Delta(power, raw) => {
                self.main = MainM::next_state(self.main, 1);
                self.is_delta = MatchM::next_state(self.is_delta, 1);
                let pending = self.prev == Prev::Delta;
                source_states::<NUM_DELTA_STATES, _>(
                    &mut self.delta_is_rep,
                    &mut self.delta_rep,
                    &mut self.delta,
                    pending,
                    delta_pair(power, raw),
                );
                self.prev = Prev::Delta;
            }
        }
    }
}

/// Contexts and queue after coding `source` (a repeat if it is queued,
/// else explicit), as the encoder codes it; the index models have as many
/// contexts as the is-repeat model (true of both LZ and delta).
#[inline]
fn source_states<const N: usize, T: Copy + PartialEq>(
    is_rep: &mut u8,
    idx: &mut [u8; 2],
    q: &mut RepQueue<T>,
    pending: bool,
    source: T,
) {
    match rep_index(q, pending, source) {
        Some(k) => {
            *is_rep = Model::<N>::next_state(*is_rep, 1);
            rep_states::<N>(idx, k);
            q.take(k, pending);
        }
        None => {
            *is_rep = Model::<N>::next_state(*is_rep, 0);
            q.push(source);
        }
    }
}

/// The real encoder: both output streams, the adaptive codes and models,
/// the repeat queues, and the costs derived from them.
struct Encoder {
    rc: RangeEncoder,
    bw: BitWriter,
    literal: EncCode,
    lz_offset: EncCode,
    length: EncCode,
    delta_offset: EncCode,
    power: EncCode,
    m: Models,
    lz: RepQueue<u32>,
    delta: RepQueue<u64>,
    prev: Prev,
    bits: [u32; 65],
    /// Cost of each length up to `MAX_NICE` with the current length code.
    len_costs: [u32; MAX_NICE + 1],
}

impl Encoder {
    fn new() -> Self {
        Encoder {
            rc: RangeEncoder::new(),
            bw: BitWriter::new(),
            literal: EncCode::new(LITERAL_REBUILD),
            lz_offset: EncCode::new(LZ_OFFSET_REBUILD),
            length: EncCode::new(LENGTH_REBUILD),
            delta_offset: EncCode::new(DELTA_OFFSET_REBUILD),
            power: EncCode::new(POWER_REBUILD),
            m: Models::new(),
            lz: RepQueue::new([1, 2, 3, 4]),
            delta: RepQueue::new([1, 2, 3, 4]),
            prev: Prev::Literal,
            bits: bit_costs(),
            len_costs: [0; MAX_NICE + 1],
        }
    }

    fn reset(&mut self, n: usize) {
        self.rc.reset();
        self.bw.reset();
        let slots = num_offset_slots(n);
        self.literal.reset(NUM_LITERAL_SYMS);
        self.lz_offset.reset(slots);
        self.length.reset(NUM_LENGTH_SLOTS);
        self.delta_offset.reset(slots);
        self.power.reset(NUM_POWER_SYMS);
        self.m = Models::new();
        self.lz = RepQueue::new([1, 2, 3, 4]);
        self.delta = RepQueue::new([1, 2, 3, 4]);
        self.prev = Prev::Literal;
        self.refresh_len_costs();
    }

    fn out_len(&self) -> usize {
        self.rc.out.len() + self.bw.len_bytes()
    }

    fn refresh_len_costs(&mut self) {
        for (l, c) in self.len_costs.iter_mut().enumerate().skip(1) {
            *c = self
                .length
                .value_cost(l as u32, &LENGTH_BASE, &LENGTH_EXTRA);
        }
        self.length.rebuilt = false;
    }

    fn state(&self) -> State {
        let m = &self.m;
        State {
            lz: self.lz,
            delta: self.delta,
            prev: self.prev,
            main: m.main.state(),
            is_delta: m.is_delta.state(),
            lz_is_rep: m.lz_is_rep.state(),
            lz_rep: [m.lz_rep[0].state(), m.lz_rep[1].state()],
            delta_is_rep: m.delta_is_rep.state(),
            delta_rep: [m.delta_rep[0].state(), m.delta_rep[1].state()],
        }
    }

    /// Cost of coding `bit` with model `m` in context `s`.
    #[inline(always)]
    fn bit<const N: usize>(&self, m: &Model<N>, s: u8, bit: u32) -> u32 {
        let p0 = m.prob0_at(s);
        self.bits[(if bit == 0 { p0 } else { 64 - p0 }) as usize]
    }

    #[inline(always)]
    fn len_cost(&self, len: usize) -> u32 {
        match self.len_costs.get(len) {
            Some(&c) => c,
            None => self
                .length
                .value_cost(len as u32, &LENGTH_BASE, &LENGTH_EXTRA),
        }
    }

    #[inline(always)]
    fn lit_cost(&self, st: &State, b: u8) -> u32 {
        self.bit(&self.m.main, st.main, 0) + self.literal.cost(usize::from(b))
    }

    /// Repeat index `k` as up to two binary decisions.
    #[inline(always)]
    fn rep_idx_cost<const N: usize>(&self, m: &[Model<N>; 2], s: &[u8; 2], k: usize) -> u32 {
        let mut c = 0;
        for r in 0..k.min(2) {
            c += self.bit(&m[r], s[r], 1);
        }
        if k < 2 {
            c += self.bit(&m[k], s[k], 0);
        }
        c
    }

    /// Cost of an LZ match's type decisions and repeat index `k` (no length).
    #[inline(always)]
    fn lz_rep_cost(&self, st: &State, k: usize) -> u32 {
        let m = &self.m;
        self.bit(&m.main, st.main, 1)
            + self.bit(&m.is_delta, st.is_delta, 0)
            + self.bit(&m.lz_is_rep, st.lz_is_rep, 1)
            + self.rep_idx_cost(&m.lz_rep, &st.lz_rep, k)
    }

    /// Cost of an explicit LZ match's type decisions (no offset, no length).
    #[inline(always)]
    fn lz_explicit_head(&self, st: &State) -> u32 {
        let m = &self.m;
        self.bit(&m.main, st.main, 1)
            + self.bit(&m.is_delta, st.is_delta, 0)
            + self.bit(&m.lz_is_rep, st.lz_is_rep, 0)
    }

    #[inline(always)]
    fn lz_offset_cost(&self, off: u32) -> u32 {
        self.lz_offset.offset_cost(off)
    }

    #[inline(always)]
    fn delta_rep_cost(&self, st: &State, k: usize) -> u32 {
        let m = &self.m;
        self.bit(&m.main, st.main, 1)
            + self.bit(&m.is_delta, st.is_delta, 1)
            + self.bit(&m.delta_is_rep, st.delta_is_rep, 1)
            + self.rep_idx_cost(&m.delta_rep, &st.delta_rep, k)
    }

    #[inline(always)]
    fn delta_explicit_cost(&self, st: &State, power: u32, raw: u32) -> u32 {
        let m = &self.m;
        self.bit(&m.main, st.main, 1)
            + self.bit(&m.is_delta, st.is_delta, 1)
            + self.bit(&m.delta_is_rep, st.delta_is_rep, 0)
            + self.power.cost(power as usize)
            + self.delta_offset.offset_cost(raw)
    }

    /// Codes one item (`byte` is the literal for `Src::Lit`).
    fn put(&mut self, item: Item, byte: u8) {
        let m = &mut self.m;
        match item.src {
            Src::Lit => {
                self.rc.bit(&mut m.main, 0);
                self.literal.put(&mut self.bw, usize::from(byte));
                self.prev = Prev::Literal;
                return;
            }
            Src::Lz(off) => {
                self.rc.bit(&mut m.main, 1);
                self.rc.bit(&mut m.is_delta, 0);
                let pending = self.prev == Prev::Lz;
                if !put_repeat(
                    &mut self.rc,
                    &mut m.lz_is_rep,
                    &mut m.lz_rep,
                    &mut self.lz,
                    pending,
                    off,
                ) {
                    self.lz_offset
                        .put_value(&mut self.bw, off, &OFFSET_BASE, &OFFSET_EXTRA);
                }
                self.prev = Prev::Lz;
            }
            Src::Delta(power, raw) => {
                self.rc.bit(&mut m.main, 1);
                self.rc.bit(&mut m.is_delta, 1);
                let pending = self.prev == Prev::Delta;
                if !put_repeat(
                    &mut self.rc,
                    &mut m.delta_is_rep,
                    &mut m.delta_rep,
                    &mut self.delta,
                    pending,
                    delta_pair(power, raw),
                ) {
                    self.power.put(&mut self.bw, power as usize);
                    self.delta_offset
                        .put_value(&mut self.bw, raw, &OFFSET_BASE, &OFFSET_EXTRA);
                }
                self.prev = Prev::Delta;
            }
        }
        self.length
            .put_value(&mut self.bw, item.len, &LENGTH_BASE, &LENGTH_EXTRA);
    }
}

/// One position of the path search.
#[derive(Clone, Copy)]
struct Node {
    /// Cheapest known cost to reach this position from the stretch start.
    cost: u32,
    /// The last item on that path, and up to two items before it (in
    /// reverse order) when one step covered several items.
    item: Item,
    extra: [Item; 2],
    n_extra: u8,
    /// The state at the end of that path (filled once the path is final).
    state: State,
}

/// Length of the delta match at `i` against `c` with stride `span`, from
/// `from` on: how far the byte differences at `span` agree (caller:
/// `c >= span`, `c < i`).
#[inline]
fn delta_len(d: &[u8], i: usize, c: usize, span: usize, from: usize, max: usize) -> usize {
    let mut l = from;
    while l < max
        && d[i + l].wrapping_sub(d[i + l - span]) == d[c + l].wrapping_sub(d[c + l - span])
    {
        l += 1;
    }
    l
}

/// Chunks from this size on (solid chunks) give the match finder's memory
/// back when done: 8 bytes per input byte that would otherwise stay
/// resident until the thread's next chunk, while another thread may still
/// be compressing its own; allocating it afresh costs what refilling it
/// did (the kernel zeroes the pages instead of the fill).
const RELEASE_ABOVE: usize = 4 << 20;

/// Reusable LZMS compressor.
pub struct LzmsCompressor {
    max_chunk_size: usize,
    /// Positions inside a committed long match that still go into the
    /// binary trees: this many at each end (the rest are redundant with
    /// the match's source, and inserting them cost a quarter of the time
    /// on repetitive data).
    skip_keep: usize,
    depth: u32,
    nice: usize,
    delta_on: bool,
    /// "match + literal + repeat 0" (level 45+) and the two other
    /// three-step sequences (level 60+).
    try_match_lit_rep0: bool,
    try_lit_rep0: bool,
    buf: Vec<u8>,
    x86: X86Filter,
    enc: Encoder,
    bt: BinaryTrees,
    matches: Vec<Match>,
    nodes: Vec<Node>,
    path: Vec<Item>,
    /// The furthest node reached in the current stretch.
    end: usize,
    /// Delta match finder: last position (low 28 bits) and power (high 4)
    /// per hash of 3 byte differences.
    delta_tab: Vec<u32>,
    /// Hashes of position `delta_next_pos` (computed one step ahead so their
    /// table entries can be prefetched).
    delta_next: [Option<usize>; DELTA_POWERS as usize],
    delta_next_pos: usize,
}

impl LzmsCompressor {
    /// `level` follows wimlib's scale: 20 quick, 50 default, 100 slow.
    pub fn new(max_chunk_size: usize, level: u32) -> Self {
        let level = level.clamp(1, 200);
        let big = max_chunk_size > 1 << 20;
        let state = Encoder::new().state();
        let node = Node {
            cost: INF,
            item: LIT,
            extra: [LIT; 2],
            n_extra: 0,
            state,
        };
        LzmsCompressor {
            max_chunk_size: max_chunk_size.min(MAX_BUFFER_SIZE),
            // Big (solid) chunks search deeper and commit long matches
            // later: on one 16 MiB chunk of /usr/share/doc, size 1.0007 ->
            // 0.9999 of wimlib's; /usr/lib 1.0027 -> 0.9969.
            depth: (level * if big { 40 } else { 24 } / 50).clamp(4, 200),
            nice: (level as usize * if big { 128 } else { 63 } / 50).clamp(8, MAX_NICE),
            skip_keep: if level >= 100 { usize::MAX } else { 4 },
            delta_on: level >= 35,
            try_match_lit_rep0: level >= 45,
            try_lit_rep0: level >= 60,
            buf: Vec::new(),
            x86: X86Filter::new(),
            enc: Encoder::new(),
            bt: BinaryTrees::new(),
            matches: Vec::new(),
            nodes: vec![node; NUM_NODES + 2 * MAX_NICE + 2],
            path: Vec::new(),
            end: 0,
            delta_tab: Vec::new(),
            delta_next: [None; DELTA_POWERS as usize],
            delta_next_pos: usize::MAX,
        }
    }

    pub fn compress_chunk(&mut self, input: &[u8], output: &mut [u8]) -> Option<usize> {
        let n = input.len();
        if n < 4 || n > self.max_chunk_size || output.len() < n {
            return None;
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        if buf.capacity() < n {
            buf = Vec::new();
            super::bt::huge_pages(&mut buf, n);
        }
        buf.extend_from_slice(input);
        let res = self.filter_and_encode(&mut buf, output);
        self.buf = buf;
        res
    }

    /// [`compress_chunk`](Self::compress_chunk) without the copy of the
    /// input (a whole solid chunk, up to 64 MiB per thread): the x86 filter
    /// runs on `input` itself. When the chunk does not shrink, the filter is
    /// undone, so `input` holds its original bytes again (to be stored
    /// raw); after `Some`, `input` is left filtered.
    pub fn compress_chunk_in_place(
        &mut self,
        input: &mut [u8],
        output: &mut [u8],
    ) -> Option<usize> {
        let n = input.len();
        if n < 4 || n > self.max_chunk_size || output.len() < n {
            return None;
        }
        let res = self.filter_and_encode(input, output);
        if res.is_none() {
            self.x86.run(input, true);
        }
        res
    }

    /// Filters `d` in place and encodes it into `output`.
    fn filter_and_encode(&mut self, d: &mut [u8], output: &mut [u8]) -> Option<usize> {
        let n = d.len();
        self.x86.run(d, false);
        self.bt.reset(n);
        self.enc.reset(n);
        if self.delta_on {
            self.delta_tab.clear();
            self.delta_tab.resize(1 << DELTA_HASH_BITS, NONE);
            self.delta_next_pos = usize::MAX;
        }
        let fits = self.parse(d);
        if n >= RELEASE_ABOVE {
            self.bt.release();
        }
        if !fits {
            return None;
        }
        let enc = &mut self.enc;
        enc.rc.finish();
        enc.bw.finish();
        let fwd = enc.rc.out.len();
        let total = fwd + enc.bw.len_bytes();
        if total >= n {
            return None;
        }
        output[..fwd].copy_from_slice(&enc.rc.out);
        for (dst, u) in output[fwd..total]
            .chunks_exact_mut(2)
            .zip(enc.bw.units.iter().rev())
        {
            dst.copy_from_slice(&u.to_le_bytes());
        }
        Some(total)
    }

    /// Hash of the 3 byte differences at stride 2^power starting at `i`,
    /// mixed with the stride and `i`'s phase within it (so one table serves
    /// every stride); `None` where the differences are not all available.
    #[inline]
    fn delta_hash(d: &[u8], i: usize, power: u32) -> Option<usize> {
        let span = 1usize << power;
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

    /// Enters `i` in the delta table and reports the previous entry of each
    /// stride that matches as (len, power, raw offset), lengths capped at
    /// `cap` (0: only insert).
    #[inline]
    fn delta_insert(
        &mut self,
        d: &[u8],
        i: usize,
        cap: usize,
        mut found: impl FnMut(usize, u32, u32),
    ) {
        let max = (d.len() - i).min(cap);
        let hashes = if self.delta_next_pos == i {
            self.delta_next
        } else {
            std::array::from_fn(|p| Self::delta_hash(d, i, p as u32))
        };
        self.delta_next = std::array::from_fn(|p| Self::delta_hash(d, i + 1, p as u32));
        self.delta_next_pos = i + 1;
        for h in self.delta_next.iter().flatten() {
            super::bt::prefetch(&self.delta_tab[*h]);
        }
        for power in 0..DELTA_POWERS {
            let Some(h) = hashes[power as usize] else {
                continue;
            };
            let e = self.delta_tab[h];
            self.delta_tab[h] = (power << 28) | i as u32;
            if cap == 0 || e == NONE || e >> 28 != power {
                continue;
            }
            let c = (e & 0x0FFF_FFFF) as usize;
            let span = 1usize << power;
            if c >= i || c < span || (i - c) % span != 0 {
                continue;
            }
            let l = delta_len(d, i, c, span, 0, max);
            if l >= DELTA_MIN_LEN {
                found(l, power, ((i - c) >> power) as u32);
            }
        }
    }

    /// Inserts positions `from..to` into the match finders without
    /// searching (the bytes are covered by a committed match).
    fn skip(&mut self, d: &[u8], from: usize, to: usize, delta_from: usize) {
        let keep = self.skip_keep;
        for i in from..to {
            if i - from >= keep && to - i > keep {
                continue;
            }
            self.bt.prefetch(d, i);
            self.bt.skip(d, i, self.depth, self.nice);
        }
        if self.delta_on && d.len() < 1 << 28 {
            for i in delta_from..to {
                self.delta_insert(d, i, 0, |_, _, _| {});
            }
        }
    }

    /// Encodes the path that ends at node `j`.
    fn commit(&mut self, d: &[u8], start: usize, j: usize) {
        self.path.clear();
        let mut k = j;
        while k > 0 {
            let nd = &self.nodes[k];
            self.path.push(nd.item);
            let mut back = nd.item.len as usize;
            for e in &nd.extra[..usize::from(nd.n_extra)] {
                self.path.push(*e);
                back += e.len as usize;
            }
            k -= back;
        }
        let mut p = start;
        for idx in (0..self.path.len()).rev() {
            let item = self.path[idx];
            self.enc.put(item, d[p]);
            p += item.len as usize;
        }
        if self.enc.length.rebuilt {
            self.enc.refresh_len_costs();
        }
    }

    /// Commits the path to node `j`, then codes `item` (a long match at
    /// `start + j`) and skips its bytes (`bt_done`, `delta_done`: whether
    /// the match finders already hold its first position). Returns the next
    /// position.
    fn commit_long(
        &mut self,
        d: &[u8],
        start: usize,
        j: usize,
        item: Item,
        (bt_done, delta_done): (bool, bool),
    ) -> usize {
        self.commit(d, start, j);
        let i = start + j;
        self.enc.put(item, 0);
        if self.enc.length.rebuilt {
            self.enc.refresh_len_costs();
        }
        let end = i + item.len as usize;
        self.skip(
            d,
            i + usize::from(bt_done),
            end,
            i + usize::from(delta_done),
        );
        end
    }

    /// The near-optimal parse of the whole chunk; false when the output
    /// would not be smaller than the input.
    fn parse(&mut self, d: &[u8]) -> bool {
        let n = d.len();
        let nice = self.nice;
        let delta_on = self.delta_on && n < 1 << 28;
        let mut pos = 0usize;
        'stretch: while pos < n {
            if self.enc.out_len() + 16 >= n {
                return false;
            }
            self.nodes[0].cost = 0;
            self.nodes[0].state = self.enc.state();
            self.end = 0;
            let mut j = 0usize;
            loop {
                let i = pos + j;
                let st = self.nodes[j].state;
                let cur = self.nodes[j].cost;
                let max_len = n - i;
                self.bt.prefetch(d, i);

                // Repeat-offset LZ matches.
                if max_len >= 2 {
                    let pending = st.prev == Prev::Lz;
                    for k in 0..NUM_REPS {
                        let off = st.lz.get(k, pending) as usize;
                        if off > i || d[i] != d[i - off] || d[i + 1] != d[i + 1 - off] {
                            continue;
                        }
                        let len = 2 + match_len(d, i - off + 2, i + 2, max_len - 2);
                        let item = Item {
                            len: len as u32,
                            src: Src::Lz(off as u32),
                        };
                        if len >= nice {
                            pos = self.commit_long(d, pos, j, item, (false, false));
                            continue 'stretch;
                        }
                        let base = cur + self.enc.lz_rep_cost(&st, k);
                        self.relax_range(j, 2, len, base, Src::Lz(off as u32));
                        if self.try_lit_rep0 {
                            self.try_then_lit_rep0(d, j, i, &st, base, item);
                        }
                    }
                }

                // Repeat-offset delta matches.
                if delta_on && max_len >= 2 {
                    let pending = st.prev == Prev::Delta;
                    for k in 0..NUM_REPS {
                        let pair = st.delta.get(k, pending);
                        let (power, raw) = ((pair >> 32) as u32, pair as u32);
                        let span = 1usize << power;
                        let off = (raw as usize) << power;
                        if off + span > i {
                            continue;
                        }
                        let len = delta_len(d, i, i - off, span, 0, max_len);
                        if len < 2 {
                            continue;
                        }
                        let src = Src::Delta(power, raw);
                        if len >= nice {
                            let item = Item {
                                len: len as u32,
                                src,
                            };
                            pos = self.commit_long(d, pos, j, item, (false, false));
                            continue 'stretch;
                        }
                        let base = cur + self.enc.delta_rep_cost(&st, k);
                        self.relax_range(j, 2, len, base, src);
                    }
                }

                // Explicit-offset LZ matches.
                let mut matches = std::mem::take(&mut self.matches);
                matches.clear();
                self.bt.find(d, i, self.depth, nice, &mut matches);
                if let Some(&last) = matches.last() {
                    if last.len as usize >= nice {
                        let off = last.off as usize;
                        let len = nice + match_len(d, i - off + nice, i + nice, max_len - nice);
                        let item = Item {
                            len: len as u32,
                            src: Src::Lz(last.off),
                        };
                        self.matches = matches;
                        pos = self.commit_long(d, pos, j, item, (true, false));
                        continue 'stretch;
                    }
                    let head = cur + self.enc.lz_explicit_head(&st);
                    let mut from = 2;
                    for m in &matches {
                        let base = head + self.enc.lz_offset_cost(m.off);
                        let len = m.len as usize;
                        self.relax_range(j, from, len, base, Src::Lz(m.off));
                        from = len + 1;
                        if self.try_match_lit_rep0 {
                            let item = Item {
                                len: m.len,
                                src: Src::Lz(m.off),
                            };
                            self.try_then_lit_rep0(d, j, i, &st, base, item);
                        }
                    }
                }
                self.matches = matches;

                // Explicit-offset delta matches (this enters `i` in the
                // delta table).
                if delta_on {
                    let mut long = None;
                    let mut found = [(0usize, 0u32, 0u32); DELTA_POWERS as usize];
                    let mut nf = 0;
                    self.delta_insert(d, i, nice, |l, p, r| {
                        found[nf] = (l, p, r);
                        nf += 1;
                    });
                    for &(len, power, raw) in &found[..nf] {
                        let src = Src::Delta(power, raw);
                        if len >= nice {
                            let c = i - ((raw as usize) << power);
                            let len = delta_len(d, i, c, 1 << power, len, max_len);
                            long = Some(Item {
                                len: len as u32,
                                src,
                            });
                            break;
                        }
                        let base = cur + self.enc.delta_explicit_cost(&st, power, raw);
                        self.relax_range(j, DELTA_MIN_LEN, len, base, src);
                    }
                    if let Some(item) = long {
                        pos = self.commit_long(d, pos, j, item, (true, true));
                        continue 'stretch;
                    }
                }

                // Literal.
                let lit = cur + self.enc.lit_cost(&st, d[i]);
                self.extend_end(j + 1);
                if lit < self.nodes[j + 1].cost {
                    let nd = &mut self.nodes[j + 1];
                    nd.cost = lit;
                    nd.item = LIT;
                    nd.n_extra = 0;
                } else if self.try_lit_rep0 && max_len >= 3 {
                    // Literal then repeat 0 (the literal makes a pending
                    // LZ offset visible).
                    let mut s1 = st;
                    s1.apply(LIT);
                    let off = s1.lz.get(0, false) as usize;
                    if off <= i + 1 && d[i + 1] == d[i + 1 - off] && d[i + 2] == d[i + 2 - off] {
                        let rl = 2 + match_len(d, i + 3 - off, i + 3, (max_len - 1).min(nice) - 2);
                        let cost = lit + self.enc.lz_rep_cost(&s1, 0) + self.enc.len_cost(rl);
                        let rep = Item {
                            len: rl as u32,
                            src: Src::Lz(off as u32),
                        };
                        self.relax_multi(j, cost, rep, &[LIT]);
                    }
                }

                // Advance: the cheapest path to j + 1 is now final.
                j += 1;
                let nd = self.nodes[j];
                let mut back = nd.item.len as usize;
                for e in &nd.extra[..usize::from(nd.n_extra)] {
                    back += e.len as usize;
                }
                let mut s = self.nodes[j - back].state;
                for e in nd.extra[..usize::from(nd.n_extra)].iter().rev() {
                    s.apply(*e);
                }
                s.apply(nd.item);
                self.nodes[j].state = s;
                if j == self.end || j == NUM_NODES {
                    self.commit(d, pos, j);
                    pos += j;
                    continue 'stretch;
                }
            }
        }
        true
    }

    /// Makes nodes up to `to` part of the search (unreached so far).
    #[inline(always)]
    fn extend_end(&mut self, to: usize) {
        while self.end < to {
            self.end += 1;
            self.nodes[self.end].cost = INF;
        }
    }

    /// Offers `src` for every length `from..=to` from node `j` at cost
    /// `base` plus the length.
    #[inline(always)]
    fn relax_range(&mut self, j: usize, from: usize, to: usize, base: u32, src: Src) {
        self.extend_end(j + to);
        for l in from..=to {
            let cost = base + self.enc.len_cost(l);
            let nd = &mut self.nodes[j + l];
            if cost < nd.cost {
                nd.cost = cost;
                nd.item = Item { len: l as u32, src };
                nd.n_extra = 0;
            }
        }
    }

    /// Offers the step `before` (in coding order) then `item`, at `cost`.
    #[inline(always)]
    fn relax_multi(&mut self, j: usize, cost: u32, item: Item, before: &[Item]) {
        let total = item.len as usize + before.iter().map(|e| e.len as usize).sum::<usize>();
        self.extend_end(j + total);
        let nd = &mut self.nodes[j + total];
        if cost < nd.cost {
            nd.cost = cost;
            nd.item = item;
            for (slot, e) in nd.extra.iter_mut().zip(before.iter().rev()) {
                *slot = *e;
            }
            nd.n_extra = before.len() as u8;
        }
    }

    /// Prices `first` (an LZ match from node `j` whose cost without length
    /// is `base`), a literal, then a repeat-0 match at the same offset.
    #[inline]
    fn try_then_lit_rep0(
        &mut self,
        d: &[u8],
        j: usize,
        i: usize,
        st: &State,
        base: u32,
        first: Item,
    ) {
        let Src::Lz(off) = first.src else {
            return;
        };
        let (len, off) = (first.len as usize, off as usize);
        let p = i + len + 1;
        let n = d.len();
        if p + 2 > n || d[p] != d[p - off] || d[p + 1] != d[p + 1 - off] {
            return;
        }
        let rl = 2 + match_len(d, p + 2 - off, p + 2, (n - p).min(self.nice) - 2);
        let mut s1 = *st;
        s1.apply(first);
        let mut cost = base + self.enc.len_cost(len) + self.enc.lit_cost(&s1, d[p - 1]);
        s1.apply(LIT);
        if s1.lz.get(0, false) as usize != off {
            return;
        }
        cost += self.enc.lz_rep_cost(&s1, 0) + self.enc.len_cost(rl);
        let rep = Item {
            len: rl as u32,
            src: Src::Lz(off as u32),
        };
        self.relax_multi(j, cost, rep, &[first, LIT]);
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
    match rep_index(queue, pending, source) {
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
