//! The adaptive Huffman codes of LZMS.
//!
//! No code is ever transmitted: both ends start from all-ones frequencies,
//! count the symbols they code and rebuild the code every `rebuild` symbols
//! (then halve the counts). So encoder and decoder must derive *identical*
//! codeword lengths from the same counts, which pins down the construction:
//! the two-queue Huffman algorithm over symbols sorted by (frequency, symbol)
//! with ties between a leaf and an internal node going to the leaf, lengths
//! handed out longest-first in that sorted order, and the simple length
//! limiting (a node deeper than 15 borrows the deepest shorter free length)
//! Microsoft's format assumes. Codewords are then canonical.

use super::tables::MAX_CODEWORD_LEN;

const MAX_SYMS: usize = super::tables::NUM_OFFSET_SLOTS;
/// Symbols fit in the low bits of a sort key, frequencies above them.
const SYM_BITS: u32 = 10;

/// Work arrays of [`build_lengths`], kept between rebuilds.
#[derive(Default)]
pub struct Scratch {
    keys: Vec<u32>,
    /// Counting-sort buffers of [`sort_keys`].
    sorted: Vec<u32>,
    buckets: Vec<u32>,
    node_freq: Vec<u32>,
    parent: Vec<usize>,
    depth: Vec<u32>,
}

/// Codeword lengths from `freqs` (every frequency at least 1 in LZMS, but
/// zero is handled: such symbols get length 0). `lens.len() == freqs.len()`.
pub fn build_lengths(freqs: &[u32], lens: &mut [u8], work: &mut Scratch) {
    lengths(freqs, lens, work, true);
}

/// [`build_lengths`]; `fast == false` runs the construction as first
/// written (comparison sort, length counts node by node), which the tests
/// hold the fast one to, since encoder and decoder (and wimlib) must derive
/// identical codes.
#[inline(always)]
fn lengths(freqs: &[u32], lens: &mut [u8], work: &mut Scratch, fast: bool) {
    lens.fill(0);
    let scratch = &mut work.keys;
    scratch.clear();
    scratch.resize(freqs.len(), 0);
    // Branch-free compaction: the key of a zero frequency is overwritten by
    // the next one (n <= s, so the slot always exists).
    let mut kept = 0;
    for (s, &f) in freqs.iter().enumerate() {
        if let Some(k) = scratch.get_mut(kept) {
            *k = (f << SYM_BITS) | s as u32;
        }
        kept += usize::from(f != 0);
    }
    scratch.truncate(kept);
    if fast {
        sort_keys(scratch, &mut work.sorted, &mut work.buckets);
    } else {
        scratch.sort_unstable();
    }
    let n = scratch.len();
    let sym_of = |k: u32| (k & ((1 << SYM_BITS) - 1)) as usize;
    match n {
        0 => return,
        1 => {
            // A lone symbol still needs a complete code of two codewords:
            // it is paired with symbol 0 (or 1 if it is symbol 0).
            let s = sym_of(scratch[0]);
            let other = if s == 0 { 1 } else { 0 };
            lens[s] = 1;
            if let Some(l) = lens.get_mut(other) {
                *l = 1;
            }
            return;
        }
        _ => {}
    }

    // Internal nodes in creation order: frequency, and parent index once
    // they are consumed. A parent is always created after its children.
    let leaf_freq = |i: usize| scratch[i] >> SYM_BITS;
    let node_freq = &mut work.node_freq;
    node_freq.clear();
    node_freq.resize(n - 1, 0);
    let parent = &mut work.parent;
    parent.clear();
    parent.resize(n - 1, 0);
    let (mut leaf, mut next, mut made) = (0usize, 0usize, 0usize);
    while made < n - 1 {
        let leaves_left = n - leaf;
        let nodes_left = made - next;
        let f;
        if leaves_left >= 2 && (nodes_left == 0 || leaf_freq(leaf + 1) <= node_freq[next]) {
            f = leaf_freq(leaf) + leaf_freq(leaf + 1);
            leaf += 2;
        } else if nodes_left >= 2 && (leaves_left == 0 || node_freq[next + 1] < leaf_freq(leaf)) {
            f = node_freq[next] + node_freq[next + 1];
            parent[next] = made;
            parent[next + 1] = made;
            next += 2;
        } else {
            f = leaf_freq(leaf) + node_freq[next];
            parent[next] = made;
            leaf += 1;
            next += 1;
        }
        node_freq[made] = f;
        made += 1;
    }

    // Count codewords per length. Each non-root internal node turns one
    // codeword of its depth into two one level deeper.
    let mut count = [0u32; MAX_CODEWORD_LEN + 2];
    let root = n - 2;
    match internal_depths(parent, root).filter(|_| fast) {
        Some(lowest) => {
            // No limiting needed: with I(d) internal nodes at depth d (the
            // root alone at depth 0), 2 * I(l - 1) - I(l) leaves are at l.
            let internal = |d: usize| lowest[d] - lowest[d + 1];
            for (l, c) in count
                .iter_mut()
                .enumerate()
                .take(MAX_CODEWORD_LEN + 1)
                .skip(1)
            {
                *c = (2 * internal(l - 1) - internal(l)) as u32;
            }
        }
        None => {
            // Deep trees: depths past the limit reuse the deepest shorter
            // length that still has a codeword to split, node by node.
            let depth = &mut work.depth;
            depth.clear();
            depth.resize(n - 1, 0);
            count[1] = 2;
            for node in (0..root).rev() {
                let d = depth[parent[node]] + 1;
                depth[node] = d;
                let mut len = d as usize;
                if len >= MAX_CODEWORD_LEN {
                    len = MAX_CODEWORD_LEN - 1;
                    while len > 0 && count[len] == 0 {
                        len -= 1;
                    }
                }
                count[len] -= 1;
                count[len + 1] += 2;
            }
        }
    }

    // Longest codewords to the rarest symbols.
    let mut i = 0;
    for len in (1..=MAX_CODEWORD_LEN).rev() {
        for _ in 0..count[len] {
            lens[sym_of(scratch[i])] = len as u8;
            i += 1;
        }
    }
}

/// Where the internal nodes of each depth start, when the tree is shallow
/// enough for 15-bit codewords: entry `d + 1` is the lowest index of a node
/// at depth `d` (entry 0 is `root + 1`, entries past the deepest level are
/// 0), so depth `d` holds `entry[d] - entry[d + 1]` nodes. `None` when a
/// node is deeper than 14 (its children would need 16+ bits), or when the
/// depths are not monotonic.
///
/// Two-queue Huffman creates nodes in order of weight, and a node's depth
/// never exceeds that of one created before it, so walking from the root
/// down, each depth is one contiguous run of indices and a node is one
/// deeper than the previous one exactly when its parent lies in the
/// previous node's run. This needs no per-node depth array, whose
/// store-then-load chain was the slow part of the rebuild.
fn internal_depths(parent: &[usize], root: usize) -> Option<[usize; MAX_CODEWORD_LEN + 2]> {
    // `start[d + 1]`: lowest index at depth d; start[0] stands for depth
    // -1 and is above every index.
    let mut start = [0usize; MAX_CODEWORD_LEN + 2];
    start[0] = root + 1;
    start[1] = root;
    let mut cur = 0usize;
    for node in (0..root).rev() {
        let p = *parent.get(node)?;
        if p < start[cur] {
            // Parent at depth cur: this node opens depth cur + 1, and
            // depth cur ran from node + 1 up.
            start[cur + 1] = node + 1;
            cur += 1;
            if cur >= MAX_CODEWORD_LEN {
                return None;
            }
        } else if cur >= 1 && p >= start[cur - 1] {
            // Parent shallower than cur - 1: not monotonic.
            return None;
        }
    }
    start[cur + 1] = 0;
    for s in start.iter_mut().skip(cur + 2) {
        *s = 0;
    }
    Some(start)
}

/// Sorts `(frequency << SYM_BITS) | symbol` keys, given in increasing
/// symbol order, into increasing order, as `sort_unstable` would (the keys
/// are distinct) but in linear time for the usual LZMS counts: a stable
/// counting sort on the frequency with one bucket per key; frequencies too
/// large for the buckets share the last one, which is then sorted fully.
///
/// The two halves of the keys are counted and placed with separate bucket
/// counters, interleaved: many keys share a frequency, and one counter per
/// bucket made each placement wait for the previous one's store. Within a
/// bucket the first half's keys go first, which keeps the sort stable.
fn sort_keys(keys: &mut Vec<u32>, sorted: &mut Vec<u32>, buckets: &mut Vec<u32>) {
    let n = keys.len();
    if n < 2 {
        return;
    }
    let last = n - 1;
    let bucket = |k: u32| ((k >> SYM_BITS) as usize).min(last);
    buckets.clear();
    buckets.resize(2 * n, 0);
    let (ca, cb) = buckets.split_at_mut(n);
    // `kb` is `ka` plus (for odd n) one more key at its end.
    let (ka, kb) = keys.split_at(n / 2);
    let odd = kb.last().filter(|_| n % 2 == 1);
    for (&x, &y) in ka.iter().zip(kb) {
        ca[bucket(x)] += 1;
        cb[bucket(y)] += 1;
    }
    if let Some(&y) = odd {
        cb[bucket(y)] += 1;
    }
    let mut start = 0;
    for (a, b) in ca.iter_mut().zip(cb.iter_mut()) {
        let (x, y) = (*a, *b);
        *a = start;
        *b = start + x;
        start += x + y;
    }
    let big = ca[last] as usize;
    sorted.clear();
    sorted.resize(n, 0);
    for (&x, &y) in ka.iter().zip(kb) {
        let i = &mut ca[bucket(x)];
        sorted[*i as usize] = x;
        *i += 1;
        let j = &mut cb[bucket(y)];
        sorted[*j as usize] = y;
        *j += 1;
    }
    if let Some(&y) = odd {
        sorted[cb[bucket(y)] as usize] = y;
    }
    sorted[big..].sort_unstable();
    std::mem::swap(keys, sorted);
}

/// Frequencies and rebuild countdown of one adaptive code.
pub struct Adaptive {
    pub num_syms: usize,
    rebuild: u32,
    until: u32,
    pub freqs: Vec<u32>,
    pub lens: Vec<u8>,
    scratch: Scratch,
}

impl Adaptive {
    pub fn new(rebuild: u32) -> Self {
        Adaptive {
            num_syms: 0,
            rebuild,
            until: rebuild,
            freqs: Vec::with_capacity(MAX_SYMS),
            lens: Vec::with_capacity(MAX_SYMS),
            scratch: Scratch::default(),
        }
    }

    /// Starts a chunk with `num_syms` symbols of frequency 1; the lengths
    /// are built.
    pub fn reset(&mut self, num_syms: usize) {
        self.num_syms = num_syms;
        self.freqs.clear();
        self.freqs.resize(num_syms, 1);
        self.lens.clear();
        self.lens.resize(num_syms, 0);
        self.until = self.rebuild;
        build_lengths(&self.freqs, &mut self.lens, &mut self.scratch);
    }

    /// Counts `sym`; returns true when the lengths were just rebuilt.
    #[inline]
    pub fn count(&mut self, sym: usize) -> bool {
        if let Some(f) = self.freqs.get_mut(sym) {
            *f += 1;
        }
        self.until -= 1;
        if self.until != 0 {
            return false;
        }
        build_lengths(&self.freqs, &mut self.lens, &mut self.scratch);
        for f in &mut self.freqs {
            *f = (*f >> 1) + 1;
        }
        self.until = self.rebuild;
        true
    }
}

/// Table-driven decoding: a primary table indexed by the next `bits` bits
/// resolves codes of at most `bits` bits; longer (rare) codes are found by
/// canonical arithmetic, length by length.
pub struct DecodeTable {
    bits: u32,
    /// `sym << 4 | len`, or 0 for "longer code".
    primary: Vec<u16>,
    /// Symbols sorted by (length, symbol) and, per length, the first
    /// codeword, how many there are and where they start in `sorted`.
    sorted: Vec<u16>,
    first: [u32; MAX_CODEWORD_LEN + 1],
    count: [u32; MAX_CODEWORD_LEN + 1],
    start: [u32; MAX_CODEWORD_LEN + 1],
}

impl DecodeTable {
    pub fn new(bits: u32) -> Self {
        DecodeTable {
            bits,
            primary: vec![0; 1 << bits],
            sorted: Vec::with_capacity(MAX_SYMS),
            first: [0; MAX_CODEWORD_LEN + 1],
            count: [0; MAX_CODEWORD_LEN + 1],
            start: [0; MAX_CODEWORD_LEN + 1],
        }
    }

    pub fn build(&mut self, lens: &[u8]) {
        // Four interleaved tallies, so runs of equal lengths do not wait on
        // one counter.
        let mut tally = [[0u32; MAX_CODEWORD_LEN + 1]; 4];
        let mut quads = lens.chunks_exact(4);
        for q in &mut quads {
            for (t, &l) in tally.iter_mut().zip(q) {
                t[usize::from(l) & MAX_CODEWORD_LEN] += 1;
            }
        }
        for &l in quads.remainder() {
            tally[0][usize::from(l) & MAX_CODEWORD_LEN] += 1;
        }
        for len in 0..=MAX_CODEWORD_LEN {
            self.count[len] = tally.iter().map(|t| t[len]).sum();
        }
        self.count[0] = 0;
        let mut code = 0u32;
        let mut pos = 0u32;
        for len in 1..=MAX_CODEWORD_LEN {
            self.first[len] = code;
            self.start[len] = pos;
            code = (code + self.count[len]) << 1;
            pos += self.count[len];
        }
        self.sorted.clear();
        self.sorted.resize(pos as usize, 0);
        let mut fill = self.start;
        for (s, &l) in lens.iter().enumerate() {
            if l != 0 {
                self.sorted[fill[l as usize] as usize] = s as u16;
                fill[l as usize] += 1;
            }
        }
        // Canonical codewords of up to `bits` bits cover a prefix of the
        // table, in order: the codewords of one length are one contiguous
        // run of entries, each symbol repeated 2^(bits - len) times, and
        // each length's run starts where the previous one ended. The rest
        // (longer codes, or unused space of an incomplete code) is marked 0.
        let mut filled = 0;
        for len in 1..=(self.bits as usize).min(MAX_CODEWORD_LEN) {
            let shift = self.bits - len as u32;
            let n = self.count[len] as usize;
            let lo = (self.first[len] as usize) << shift;
            let start = self.start[len] as usize;
            let (Some(run), Some(syms)) = (
                self.primary.get_mut(lo..lo + (n << shift)),
                self.sorted.get(start..start + n),
            ) else {
                // Over-subscribed lengths (never built by `build_lengths`):
                // the codewords that do not fit stay undecodable.
                break;
            };
            let len = len as u16;
            match shift {
                0 => fill_runs::<1>(run, syms, len),
                1 => fill_runs::<2>(run, syms, len),
                2 => fill_runs::<4>(run, syms, len),
                3 => fill_runs::<8>(run, syms, len),
                4 => fill_runs::<16>(run, syms, len),
                _ => {
                    for (r, &s) in run.chunks_exact_mut(1 << shift).zip(syms) {
                        r.fill((s << 4) | len);
                    }
                }
            }
            filled = lo + (n << shift);
        }
        if let Some(rest) = self.primary.get_mut(filled..) {
            rest.fill(0);
        }
    }

    /// The symbol and codeword length the next 15 bits of the stream
    /// (`next`, first bit highest) start with, or `None` when they match no
    /// codeword (possible only with the incomplete one-symbol code).
    #[inline(always)]
    pub fn lookup(&self, next: u32) -> Option<(usize, u32)> {
        let max = MAX_CODEWORD_LEN as u32;
        let e = self.primary[(next >> (max - self.bits)) as usize];
        if e != 0 {
            return Some((usize::from(e >> 4), u32::from(e & 15)));
        }
        self.lookup_long(next)
    }

    /// Codewords longer than the primary table: canonical arithmetic.
    #[cold]
    fn lookup_long(&self, next: u32) -> Option<(usize, u32)> {
        let max = MAX_CODEWORD_LEN as u32;
        for len in self.bits + 1..=max {
            let k = (next >> (max - len)).wrapping_sub(self.first[len as usize]);
            if k < self.count[len as usize] {
                let s = self.sorted.get((self.start[len as usize] + k) as usize)?;
                return Some((usize::from(*s), len));
            }
        }
        None
    }
}

/// Writes `(sym << 4) | len` for each symbol of `syms` into `R` consecutive
/// entries of `run` (`R` a compile-time constant, so each run is a few
/// plain stores instead of a call to a fill loop).
#[inline(always)]
fn fill_runs<const R: usize>(run: &mut [u16], syms: &[u16], len: u16) {
    for (r, &s) in run.chunks_exact_mut(R).zip(syms) {
        if let Ok(r) = <&mut [u16; R]>::try_from(r) {
            *r = [(s << 4) | len; R];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the lengths fill the code space exactly (Kraft sum 1).
    fn complete(lens: &[u8]) -> bool {
        let space: u32 = lens
            .iter()
            .filter(|&&l| l > 0)
            .map(|&l| 1u32 << (15 - l))
            .sum();
        space == 1 << 15
    }

    #[test]
    fn equal_frequencies_give_a_balanced_complete_code() {
        let mut lens = vec![0u8; 256];
        build_lengths(&[1; 256], &mut lens, &mut Scratch::default());
        assert!(lens.iter().all(|&l| l == 8));
        let mut lens = vec![0u8; 54];
        build_lengths(&[1; 54], &mut lens, &mut Scratch::default());
        assert!(complete(&lens));
        // 54 = 64 - 10: ten 5-bit codes (the highest symbols, since equal
        // frequencies sort by symbol and the first ones get the long codes).
        assert_eq!(lens.iter().filter(|&&l| l == 5).count(), 10);
        assert!(lens[44..].iter().all(|&l| l == 5));
    }

    #[test]
    fn skewed_frequencies_are_limited_to_15_bits_and_complete() {
        // Fibonacci-like frequencies would need very deep codes.
        let mut freqs = vec![1u32; 40];
        let (mut a, mut b) = (1u32, 1u32);
        for f in freqs.iter_mut() {
            *f = a;
            (a, b) = (b, (a + b).min(1 << 20));
        }
        let mut lens = vec![0u8; 40];
        build_lengths(&freqs, &mut lens, &mut Scratch::default());
        assert!(lens.iter().all(|&l| (1..=15).contains(&l)));
        assert!(complete(&lens));
    }

    #[test]
    fn fast_build_matches_the_reference_construction() {
        let mut x = 0x00C0_FFEE_u32;
        let mut work = Scratch::default();
        for round in 0..2000u32 {
            let n = [2, 3, 8, 54, 256, 799][(round % 6) as usize];
            let mut freqs: Vec<u32> = (0..n)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    match round % 5 {
                        // LZMS-like: counts after halving, plus fresh counts.
                        0 | 1 => 1 + (x >> 8) % (1 + round % 2100),
                        // Zeros mixed in.
                        2 => (x >> 8) % 3,
                        // Ties everywhere.
                        3 => 1 + (x >> 30),
                        // Heavy skew: deep trees that need limiting.
                        _ => 1 << ((x >> 8) % 21),
                    }
                })
                .collect();
            if round % 50 == 0 {
                // Fibonacci-like: the deepest possible trees.
                let (mut a, mut b) = (1u32, 1u32);
                for f in freqs.iter_mut() {
                    *f = a;
                    (a, b) = (b, (a + b).min(1 << 21));
                }
            }
            let mut want = vec![0u8; freqs.len()];
            lengths(&freqs, &mut want, &mut Scratch::default(), false);
            let mut got = vec![0u8; freqs.len()];
            build_lengths(&freqs, &mut got, &mut work);
            assert_eq!(got, want, "round {round} freqs {freqs:?}");
        }
    }

    #[test]
    fn counting_sort_orders_keys_like_a_comparison_sort() {
        let mut x = 0x1234_5678u32;
        let (mut sorted, mut buckets) = (Vec::new(), Vec::new());
        for round in 0..300usize {
            let n = 1 + round % 799;
            // Small counts (most land in their own bucket), zeros (no key),
            // and some counts far above n (the shared last bucket).
            let mut keys: Vec<u32> = (0..n as u32)
                .filter_map(|s| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    let f = match (x >> 16) % 8 {
                        0 => 0,
                        1 => (x >> 8) % 70_000,
                        _ => (x >> 8) % (2 + round as u32 % 40),
                    };
                    (f != 0).then_some((f << SYM_BITS) | s)
                })
                .collect();
            let mut want = keys.clone();
            want.sort_unstable();
            sort_keys(&mut keys, &mut sorted, &mut buckets);
            assert_eq!(keys, want, "round {round}");
        }
    }

    #[test]
    fn decode_table_matches_the_canonical_code_for_every_bit_pattern() {
        // Every 15-bit pattern decodes to the symbol whose canonical
        // codeword prefixes it, for each table size LZMS uses and codes
        // from flat to deep (codewords longer than the table included).
        let mut x = 0x5EED_u32;
        let mut work = Scratch::default();
        for round in 0..40u32 {
            let n = [2usize, 8, 54, 256, 399, 799][(round % 6) as usize];
            let freqs: Vec<u32> = (0..n)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    if round % 3 == 0 {
                        1 << ((x >> 8) % 18)
                    } else {
                        1 + (x >> 8) % (2 + round * 50)
                    }
                })
                .collect();
            let mut lens = vec![0u8; n];
            build_lengths(&freqs, &mut lens, &mut work);
            let mut codes = vec![0u16; n];
            crate::lzx::huffenc::canonical_codes(&lens, &mut codes);
            let mut want = vec![None; 1 << 15];
            for (s, (&l, &c)) in lens.iter().zip(&codes).enumerate() {
                let l = u32::from(l);
                let lo = usize::from(c) << (15 - l);
                for w in &mut want[lo..lo + (1 << (15 - l))] {
                    *w = Some((s, l));
                }
            }
            for bits in [7, 9, 10, 11] {
                let mut t = DecodeTable::new(bits);
                // Built twice: leftovers of a previous code must not leak.
                t.build(&[4u8; 16]);
                t.build(&lens);
                for (next, w) in want.iter().enumerate() {
                    assert_eq!(
                        t.lookup(next as u32),
                        *w,
                        "round {round} bits {bits} next {next:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn decode_table_reads_canonical_codes() {
        let freqs: Vec<u32> = (0..799u32).map(|i| 1 + (i * 37 % 101) * (i % 7)).collect();
        let mut lens = vec![0u8; 799];
        build_lengths(&freqs, &mut lens, &mut Scratch::default());
        let mut codes = vec![0u16; 799];
        crate::lzx::huffenc::canonical_codes(&lens, &mut codes);
        let mut w = super::super::coder::BitWriter::new();
        let syms: Vec<usize> = (0..3000).map(|i| (i * 131) % 799).collect();
        for &s in &syms {
            w.write(u32::from(codes[s]), u32::from(lens[s]));
        }
        w.finish();
        let bytes: Vec<u8> = w.units.iter().rev().flat_map(|u| u.to_le_bytes()).collect();
        let mut r = super::super::decompress::BitReader::new(&bytes);
        let mut t = DecodeTable::new(8);
        t.build(&lens);
        for &s in &syms {
            r.ensure(15);
            let (sym, len) = t.lookup(r.peek(15)).expect("a codeword");
            assert_eq!(sym, s);
            r.consume(len);
        }
    }
}
