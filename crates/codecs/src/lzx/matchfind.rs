//! Match finders over one chunk.
//!
//! - [`HashChains`]: head/prev chains on 4-byte hashes and a table of the
//!   latest position per 3-byte hash, used by the lazy parser of the quick
//!   levels.
//! - [`BinaryTrees`]: a binary search tree of suffixes per bucket of
//!   4-byte hashes (each node's left/right children hold earlier positions
//!   whose suffix compares smaller/greater), re-rooted at every position.
//!   One descent yields the nearest match of every length and keeps the
//!   tree sorted, so the near-optimal parser gets all useful matches at
//!   logarithmic cost. Keying the trees on 4 bytes keeps them small and
//!   the descents short; lengths 2 and 3 come from two small hash tables
//!   (the latest position per 2-byte hash, the latest two per 3-byte hash).
//!
//! Positions are `u32`; a chunk is at most 2 MiB.

/// Length of the common prefix of `d[a..]` and `d[b..]`, at most `max`
/// (the caller guarantees `b + max <= d.len()` and `a < b`).
#[inline(always)]
pub fn match_len(d: &[u8], a: usize, b: usize, max: usize) -> usize {
    let mut n = 0;
    while n + 8 <= max {
        let x = load8(d, a + n) ^ load8(d, b + n);
        if x != 0 {
            return n + (x.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    while n < max && d[a + n] == d[b + n] {
        n += 1;
    }
    n
}

/// [`match_len`] without bounds checks, for the match finder's tree walk.
///
/// # Safety
///
/// `a < b` and `b + max <= d.len()` (as for [`match_len`]), so that every
/// byte read, at `a + k` or `b + k` for `k < max`, is inside `d`.
#[inline(always)]
unsafe fn match_len_unchecked(d: &[u8], a: usize, b: usize, max: usize) -> usize {
    debug_assert!(a < b && b + max <= d.len());
    let p = d.as_ptr();
    let mut n = 0;
    while n + 8 <= max {
        // SAFETY: a + n + 8 <= b + n + 8 <= b + max <= d.len().
        let (x, y) = unsafe {
            (
                p.add(a + n).cast::<u64>().read_unaligned(),
                p.add(b + n).cast::<u64>().read_unaligned(),
            )
        };
        let x = u64::from_le(x ^ y);
        if x != 0 {
            return n + (x.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    // SAFETY: a + n < b + n < b + max <= d.len().
    while n < max && unsafe { *p.add(a + n) == *p.add(b + n) } {
        n += 1;
    }
    n
}

/// The `N` bytes at `i`.
#[inline(always)]
fn load<const N: usize>(d: &[u8], i: usize) -> [u8; N] {
    let mut w = [0u8; N];
    w.copy_from_slice(&d[i..i + N]);
    w
}

#[inline(always)]
fn load8(d: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(load(d, i))
}

#[inline(always)]
fn load4(d: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(load(d, i))
}

/// A `bits`-bit hash of `v`.
#[inline(always)]
fn hash_bits(v: u32, bits: u32) -> usize {
    (v.wrapping_mul(0x9E37_79B1) >> (32 - bits)) as usize
}

/// The 3 bytes at `i` as a little-endian value (for a position where 4
/// bytes are not available).
#[inline(always)]
fn load3(d: &[u8], i: usize) -> u32 {
    let [a, b, c] = load(d, i);
    u32::from_le_bytes([a, b, c, 0])
}

/// Bits of the lazy parser's table of the latest position per 3-byte
/// hash, and of its chain heads per 4-byte hash.
const HC3_BITS: u32 = 14;
const HC4_BITS: u32 = 15;

/// Makes `v` `len` copies of `x` (allocating only the first time).
fn refill<T: Copy>(v: &mut Vec<T>, len: usize, x: T) {
    v.clear();
    v.resize(len, x);
}

/// Hash chains for the lazy parser: chains of earlier positions with the
/// same 4-byte hash, and the latest position per 3-byte hash for matches
/// of length 3. (Chains on 3-byte hashes, as before, hold many candidates
/// that share only 3 bytes, or none: each costs a cache miss to reject.)
pub struct HashChains<P: Pos> {
    head3: Vec<P>,
    head4: Vec<P>,
    prev: Vec<P>,
}

impl<P: Pos> HashChains<P> {
    /// Tables are allocated by the first [`HashChains::reset`]: a
    /// compressor holds finders for both position widths and uses one.
    pub fn new() -> Self {
        Self {
            head3: Vec::new(),
            head4: Vec::new(),
            prev: Vec::new(),
        }
    }

    pub fn reset(&mut self, n: usize) {
        debug_assert!(n < P::LIMIT);
        refill(&mut self.head3, 1 << HC3_BITS, P::NONE);
        refill(&mut self.head4, 1 << HC4_BITS, P::NONE);
        self.prev.clear();
        self.prev.resize(n, P::NONE);
    }

    /// Adds position `i` to the tables (a position needs 3 bytes for the
    /// 3-byte table, 4 for a chain).
    #[inline(always)]
    pub fn insert(&mut self, d: &[u8], i: usize) {
        if i + 4 <= d.len() {
            let v = load4(d, i);
            self.head3[hash_bits(v & 0xFF_FFFF, HC3_BITS)] = P::make(i);
            let h = hash_bits(v, HC4_BITS);
            self.prev[i] = self.head4[h];
            self.head4[h] = P::make(i);
        } else if i + 3 <= d.len() {
            self.head3[hash_bits(load3(d, i), HC3_BITS)] = P::make(i);
        }
    }

    /// A long match (length >= 3) at `i` with offset <= `max_off`: the
    /// latest position sharing 3 bytes, then up to `depth` candidates of the
    /// 4-byte chain (the longest among them); stops early at `nice`.
    /// Inserts `i`. Returns (length, offset), (0, 0) for none.
    #[inline]
    pub fn find_and_insert(
        &mut self,
        d: &[u8],
        i: usize,
        max_off: usize,
        depth: u32,
        nice: usize,
        max_len: usize,
    ) -> (usize, usize) {
        if i + 3 > d.len() || max_len < 3 {
            self.insert(d, i);
            return (0, 0);
        }
        if i + 4 > d.len() {
            // Three bytes left: only the 3-byte table can match them.
            let h = hash_bits(load3(d, i), HC3_BITS);
            let cand = std::mem::replace(&mut self.head3[h], P::make(i));
            if cand != P::NONE {
                let c = cand.get();
                if i - c <= max_off && d[c..c + 3] == d[i..i + 3] {
                    return (3, i - c);
                }
            }
            return (0, 0);
        }
        let v = load4(d, i);
        let c3 = std::mem::replace(
            &mut self.head3[hash_bits(v & 0xFF_FFFF, HC3_BITS)],
            P::make(i),
        );
        let h = hash_bits(v, HC4_BITS);
        let mut cand = self.head4[h];
        self.prev[i] = cand;
        self.head4[h] = P::make(i);
        let (mut best_len, mut best_off) = (0usize, 0usize);
        if c3 != P::NONE {
            let c = c3.get();
            if i - c <= max_off && load4(d, c) & 0xFF_FFFF == v & 0xFF_FFFF {
                (best_len, best_off) = (3, i - c);
            }
        }
        // i + 4 <= d.len(), so max_len >= 4.
        let nice = nice.min(max_len);
        let mut left = depth;
        while cand != P::NONE && left > 0 {
            let c = cand.get();
            let off = i - c;
            if off > max_off {
                break;
            }
            left -= 1;
            // The 4 bytes ending at best_len must match for a longer match
            // (best_len < max_len, so they lie inside `d`: c < i).
            let at = best_len.max(3) - 3;
            if load4(d, c + at) == load4(d, i + at) {
                let l = match_len(d, c, i, max_len);
                if l > best_len {
                    best_len = l;
                    best_off = off;
                    if l >= nice {
                        break;
                    }
                }
            }
            cand = self.prev[c];
        }
        (best_len, best_off)
    }
}

const H2_BITS: u32 = 12;
const H3_BITS: u32 = 15;
const H4_BITS: u32 = 16;

/// A match found by [`BinaryTrees`]: a length (2..=257, 9 bits) and a
/// distance (below 2 MiB, 21 bits) packed in 4 bytes: a chunk's cached
/// match lists are the near-optimal parser's largest buffer.
#[derive(Clone, Copy, Debug)]
pub struct Match(u32);

impl Match {
    #[inline(always)]
    pub fn new(len: usize, off: usize) -> Match {
        debug_assert!(len < 1 << 9 && off < 1 << 23);
        Match(((off as u32) << 9) | len as u32)
    }

    #[inline(always)]
    pub fn length(self) -> usize {
        (self.0 & 0x1FF) as usize
    }

    #[inline(always)]
    pub fn offset(self) -> u32 {
        self.0 >> 9
    }
}

/// A stored position: `u16` for chunks below 64 KiB (half the memory, so
/// the trees stay in cache), `u32` otherwise. `NONE` marks "no position".
pub trait Pos: Copy + Eq {
    const NONE: Self;
    /// Chunks must be shorter than this.
    const LIMIT: usize;
    fn get(self) -> usize;
    fn make(p: usize) -> Self;
}

impl Pos for u16 {
    const NONE: Self = u16::MAX;
    const LIMIT: usize = u16::MAX as usize;
    #[inline(always)]
    fn get(self) -> usize {
        self as usize
    }
    #[inline(always)]
    fn make(p: usize) -> Self {
        p as u16
    }
}

impl Pos for u32 {
    const NONE: Self = u32::MAX;
    const LIMIT: usize = u32::MAX as usize;
    #[inline(always)]
    fn get(self) -> usize {
        self as usize
    }
    #[inline(always)]
    fn make(p: usize) -> Self {
        p as u32
    }
}

/// Binary-tree match finder (see the module comment).
pub struct BinaryTrees<P: Pos> {
    /// Latest position of each 2-byte hash (length-2 matches).
    head2: Vec<P>,
    /// Latest two positions of each 3-byte hash (length-3 matches).
    head3: Vec<[P; 2]>,
    /// Tree root of each 4-byte hash (matches of 4 bytes and more).
    head4: Vec<P>,
    /// `child[2p]`: root of the subtree of suffixes smaller than suffix `p`,
    /// `child[2p + 1]`: larger.
    child: Vec<P>,
}

/// Asks the CPU to bring `r`'s cache line closer; no effect on results.
#[inline(always)]
fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: prefetching never faults and has no visible effect; the
        // pointer comes from a live reference anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((r as *const T).cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

impl<P: Pos> BinaryTrees<P> {
    /// Tables are allocated by the first [`BinaryTrees::reset`] (see
    /// [`HashChains::new`]).
    pub fn new() -> Self {
        Self {
            head2: Vec::new(),
            head3: Vec::new(),
            head4: Vec::new(),
            child: Vec::new(),
        }
    }

    pub fn reset(&mut self, n: usize) {
        debug_assert!(n < P::LIMIT);
        refill(&mut self.head2, 1 << H2_BITS, P::NONE);
        refill(&mut self.head3, 1 << H3_BITS, [P::NONE; 2]);
        refill(&mut self.head4, 1 << H4_BITS, P::NONE);
        // Every child slot of position p is written when p is inserted,
        // before anything reads it, so no clearing is needed.
        if self.child.len() < 2 * n {
            self.child.resize(2 * n, P::NONE);
        }
    }

    /// Inserts position `i` and appends to `out` its matches with offset at
    /// most `max_off`, by strictly increasing length (each the nearest of
    /// its length, except that lengths 2 and 3 come from hash tables and may
    /// be missed), looking at up to `depth` tree nodes; stops at `nice`.
    /// Positions with fewer than 4 bytes left are neither searched nor
    /// inserted.
    #[inline]
    pub fn find_and_insert(
        &mut self,
        d: &[u8],
        i: usize,
        max_off: usize,
        depth: u32,
        nice: usize,
        out: &mut Vec<Match>,
    ) {
        let n = d.len();
        if i + 4 > n {
            return;
        }
        let max_len = (n - i).min(super::tables::MAX_MATCH);
        let nice = nice.min(max_len);
        let min_pos = i.saturating_sub(max_off);
        let seq = load4(d, i);
        let mut best = 1usize;
        // The next position's table slots are random accesses: start
        // loading them now so they are in cache by the next call.
        if i + 5 <= n {
            let next = load4(d, i + 1);
            prefetch(&self.head3[hash_bits(next & 0xFF_FFFF, H3_BITS)]);
            prefetch(&self.head4[hash_bits(next, H4_BITS)]);
        }

        // The first candidate among `cands` sharing the `len` bytes of
        // `seq` under `mask` becomes a match of that length.
        let mut short = |cands: &[P], len: u16, mask: u32| {
            for &cand in cands {
                if cand == P::NONE {
                    return;
                }
                let c = cand.get();
                if c >= min_pos && load4(d, c) & mask == seq & mask {
                    best = usize::from(len);
                    out.push(Match::new(usize::from(len), i - c));
                    return;
                }
            }
        };
        let h2 = hash_bits(seq & 0xFFFF, H2_BITS);
        let c2 = self.head2[h2];
        self.head2[h2] = P::make(i);
        short(&[c2], 2, 0xFFFF);
        let h3 = hash_bits(seq & 0xFF_FFFF, H3_BITS);
        let c3 = self.head3[h3];
        self.head3[h3] = [P::make(i), c3[0]];
        short(&c3, 3, 0xFF_FFFF);

        let h4 = hash_bits(seq, H4_BITS);
        let mut cand = self.head4[h4];
        self.head4[h4] = P::make(i);
        // The tree walk is the compressor's hottest loop; its accesses are
        // unchecked under these invariants (checked in debug builds):
        // - every position in the trees (`cand`, once not NONE) is below i:
        //   positions enter in increasing order and the trees are reset
        //   per chunk, and `child` has a slot pair for each of them;
        // - `len < max_len` at every byte test, and i + max_len <= n, so
        //   c + len < i + len < n.
        assert!(self.child.len() >= 2 * n);
        let child = self.child.as_mut_ptr();
        let dp = d.as_ptr();
        let mut lt_slot = 2 * i;
        let mut gt_slot = 2 * i + 1;
        let (mut lt_len, mut gt_len) = (0usize, 0usize);
        let mut left = depth;
        loop {
            let c = cand.get();
            if cand == P::NONE || c < min_pos || left == 0 {
                // SAFETY: the slots are those of i or of an earlier
                // position, all below 2n <= child.len().
                unsafe {
                    *child.add(lt_slot) = P::NONE;
                    *child.add(gt_slot) = P::NONE;
                }
                return;
            }
            debug_assert!(c < i);
            left -= 1;
            let mut len = lt_len.min(gt_len);
            debug_assert!(len < max_len);
            // Most candidates differ right at `len`: test that byte before
            // extending word by word.
            // SAFETY: c + len < i + len < i + max_len <= n (invariants above).
            let (mut cb, mut ib) = unsafe { (*dp.add(c + len), *dp.add(i + len)) };
            if cb == ib {
                // SAFETY: c + len + 1 < i + len + 1 and
                // (i + len + 1) + (max_len - len - 1) = i + max_len <= n.
                len += 1 + unsafe {
                    match_len_unchecked(d, c + len + 1, i + len + 1, max_len - len - 1)
                };
                if len > best {
                    best = len;
                    out.push(Match::new(len, i - c));
                }
                if len >= nice {
                    // Equal as far as we may look: c takes i's place.
                    // SAFETY: c < i, so 2c + 1 < 2n; the slots as above.
                    unsafe {
                        *child.add(lt_slot) = *child.add(2 * c);
                        *child.add(gt_slot) = *child.add(2 * c + 1);
                    }
                    return;
                }
                // len < nice <= max_len here.
                // SAFETY: as for the first test.
                (cb, ib) = unsafe { (*dp.add(c + len), *dp.add(i + len)) };
            }
            // SAFETY: the slots as above; c < i, so 2c + 1 < 2n.
            unsafe {
                if cb < ib {
                    *child.add(lt_slot) = cand;
                    lt_slot = 2 * c + 1;
                    cand = *child.add(lt_slot);
                    lt_len = len;
                } else {
                    *child.add(gt_slot) = cand;
                    gt_slot = 2 * c;
                    cand = *child.add(gt_slot);
                    gt_len = len;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Every length and distance LZX can express survives the packing.
        #[test]
        fn packed_match_keeps_length_and_distance(len in 2usize..=257, off in 1usize..(1 << 21)) {
            let m = Match::new(len, off);
            proptest::prop_assert_eq!((m.length(), m.offset() as usize), (len, off));
        }
    }

    /// Brute force: the longest match at i within max_off.
    fn longest(d: &[u8], i: usize, max_off: usize) -> usize {
        let max = (d.len() - i).min(257);
        (i.saturating_sub(max_off)..i)
            .map(|c| match_len(d, c, i, max))
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn binary_trees_find_the_longest_match_with_unbounded_depth() {
        let mut seed = 12345u32;
        let d: Vec<u8> = (0..6000)
            .map(|_| {
                seed = seed.wrapping_mul(1103515245).wrapping_add(12345);
                b"abcab"[(seed >> 16) as usize % 5]
            })
            .collect();
        let mut bt = BinaryTrees::<u16>::new();
        bt.reset(d.len());
        let mut out = Vec::new();
        for i in 0..d.len() {
            out.clear();
            bt.find_and_insert(&d, i, 32765, u32::MAX, 257, &mut out);
            let best = out.last().map_or(0, |m| m.length());
            let want = longest(&d, i, 32765);
            if i + 4 <= d.len() && want >= 4 {
                assert_eq!(best, want, "at {i}");
            }
            for w in out.windows(2) {
                assert!(w[0].length() < w[1].length());
            }
            for m in &out {
                let o = m.offset() as usize;
                assert!(match_len(&d, i - o, i, m.length()) == m.length());
            }
        }
    }

    #[test]
    fn hash_chains_find_the_longest_match_with_unbounded_depth() {
        let d: Vec<u8> = (0..5000u32).map(|i| (i * i % 7 + i % 3) as u8).collect();
        let mut hc = HashChains::<u16>::new();
        hc.reset(d.len());
        for i in 0..d.len() {
            let max_len = (d.len() - i).min(257);
            let (l, o) = hc.find_and_insert(&d, i, 32765, u32::MAX, 257, max_len);
            let want = longest(&d, i, 32765);
            if l > 0 {
                assert_eq!(match_len(&d, i - o, i, l), l, "at {i}");
            }
            // Matches of 4 or more come from the chains, which hold every
            // earlier position; a match of exactly 3 only from the latest
            // position with the same 3-byte hash.
            if want >= 4 {
                assert_eq!(l, want, "at {i}");
            } else {
                assert!(l == 0 || l == want, "at {i}: {l} of {want}");
            }
        }
    }
}
