//! Binary-tree match finder for LZMS chunks of up to 1 GiB.
//!
//! Every position is the root of the binary search tree of earlier suffixes
//! sharing its 3-byte hash (left subtree: suffixes that compare smaller,
//! right: greater); inserting a position re-roots its tree at it. One
//! descent both reports the nearest match of each length and keeps the tree
//! sorted, and it stops after `depth` nodes or at `nice` bytes, so a 64 MiB
//! window costs a bounded number of node visits per byte. A direct table
//! of the last position of each 2-byte hash adds length-2 matches.
//!
//! LZX has its own (16/32-bit, 2 MiB window) variant; this one differs in
//! the hash table, which grows with the chunk, in `skip`, and in that the
//! reported lengths are capped at `nice` (the parser extends long ones).

use crate::lzx::matchfind::match_len;

const NONE: u32 = u32::MAX;

/// A match: `len` bytes at distance `off`.
#[derive(Clone, Copy, Debug)]
pub struct Match {
    pub len: u32,
    pub off: u32,
}

pub struct BinaryTrees {
    head3: Vec<u32>,
    bits: u32,
    head2: Vec<u32>,
    /// `child[2p]`: subtree of suffixes smaller than suffix `p`;
    /// `child[2p + 1]`: greater.
    child: Vec<u32>,
}

#[inline(always)]
fn hash3(d: &[u8], i: usize, bits: u32) -> usize {
    let v = u32::from(d[i]) | u32::from(d[i + 1]) << 8 | u32::from(d[i + 2]) << 16;
    (v.wrapping_mul(0x9E37_79B1) >> (32 - bits)) as usize
}

const H2_BITS: u32 = 12;

#[inline(always)]
fn key2(d: &[u8], i: usize) -> usize {
    let v = u32::from(d[i]) | u32::from(d[i + 1]) << 8;
    (v.wrapping_mul(0x9E37_79B1) >> (32 - H2_BITS)) as usize
}

impl BinaryTrees {
    pub fn new() -> Self {
        BinaryTrees {
            head3: Vec::new(),
            bits: 0,
            head2: Vec::new(),
            child: Vec::new(),
        }
    }

    /// Prepares for a chunk of `n` bytes (`n < u32::MAX`).
    pub fn reset(&mut self, n: usize) {
        // About one bucket per 16 bytes, 2^12 .. 2^22 buckets.
        self.bits = (usize::BITS - n.leading_zeros())
            .saturating_sub(4)
            .clamp(12, 22);
        self.head3.clear();
        huge_pages(&mut self.head3, 1 << self.bits);
        self.head3.resize(1 << self.bits, NONE);
        self.head2.clear();
        self.head2.resize(1 << H2_BITS, NONE);
        // Child slots of p are written when p is inserted, before any read,
        // so fresh links need no initialisation: zeroed memory straight from
        // the kernel, whose pages become resident only as the parse reaches
        // them (a 64 MiB chunk's 512 MiB are not all taken at its start).
        if self.child.len() < 2 * n {
            self.child = Vec::new();
            self.child = huge_zeroed(2 * n);
        }
    }

    /// Gives the tree links and hash heads back to the allocator (after a
    /// big chunk: 8 bytes per input byte that would otherwise stay resident
    /// while the thread waits or compresses something smaller).
    pub fn release(&mut self) {
        self.child = Vec::new();
        self.head3 = Vec::new();
    }

    /// Call before searching or skipping position `i`: prefetches the
    /// bucket of `i + 2` and the first tree node (links and bytes) of
    /// `i + 1`, so the misses of the next two descents overlap this one.
    #[inline(always)]
    pub fn prefetch(&self, d: &[u8], i: usize) {
        let n = d.len();
        if i + 5 <= n {
            prefetch(&self.head3[hash3(d, i + 2, self.bits)]);
        }
        if i + 4 <= n {
            let c = self.head3[hash3(d, i + 1, self.bits)];
            if c != NONE {
                let c = c as usize;
                prefetch(&self.child[2 * c]);
                prefetch(&d[c]);
            }
        }
    }

    /// Inserts `i` and appends its matches to `out` by strictly increasing
    /// length, each the nearest of its length, lengths capped at `nice`.
    #[inline]
    pub fn find(&mut self, d: &[u8], i: usize, depth: u32, nice: usize, out: &mut Vec<Match>) {
        let n = d.len();
        if i + 3 > n {
            return;
        }
        let k2 = key2(d, i);
        let c2 = self.head2[k2];
        self.head2[k2] = i as u32;
        if c2 != NONE {
            let c = c2 as usize;
            // A match of 3+ bytes at the nearest 2-byte match is found again
            // (as the nearest of its length) in the tree.
            if d[c] == d[i] && d[c + 1] == d[i + 1] && d[c + 2] != d[i + 2] {
                out.push(Match {
                    len: 2,
                    off: (i - c) as u32,
                });
            }
        }
        self.descend::<true>(d, i, depth, nice, out);
    }

    /// Inserts `i` without reporting matches.
    #[inline]
    pub fn skip(&mut self, d: &[u8], i: usize, depth: u32, nice: usize) {
        if i + 3 > d.len() {
            return;
        }
        self.head2[key2(d, i)] = i as u32;
        self.descend::<false>(d, i, depth, nice, &mut Vec::new());
    }

    #[inline(always)]
    fn descend<const REPORT: bool>(
        &mut self,
        d: &[u8],
        i: usize,
        depth: u32,
        nice: usize,
        out: &mut Vec<Match>,
    ) {
        let max_len = (d.len() - i).min(nice);
        let h = hash3(d, i, self.bits);
        let mut cand = self.head3[h];
        self.head3[h] = i as u32;
        let child = &mut self.child[..];
        let mut lt_slot = 2 * i;
        let mut gt_slot = 2 * i + 1;
        let (mut lt_len, mut gt_len) = (0usize, 0usize);
        let mut best = 2usize;
        let mut left = depth;
        loop {
            if cand == NONE || left == 0 {
                child[lt_slot] = NONE;
                child[gt_slot] = NONE;
                return;
            }
            let c = cand as usize;
            left -= 1;
            let mut len = lt_len.min(gt_len);
            if len < max_len && d[c + len] == d[i + len] {
                len += 1 + match_len(d, c + len + 1, i + len + 1, max_len - len - 1);
            }
            if REPORT && len > best {
                best = len;
                out.push(Match {
                    len: len as u32,
                    off: (i - c) as u32,
                });
            }
            if len >= max_len {
                // Equal as far as we look: c's subtrees become i's.
                child[lt_slot] = child[2 * c];
                child[gt_slot] = child[2 * c + 1];
                return;
            }
            if d[c + len] < d[i + len] {
                child[lt_slot] = cand;
                lt_slot = 2 * c + 1;
                cand = child[lt_slot];
                lt_len = len;
            } else {
                child[gt_slot] = cand;
                gt_slot = 2 * c;
                cand = child[gt_slot];
                gt_len = len;
            }
        }
    }
}

/// Reserves room for `n` elements in `v` (which must be empty) and, for
/// large buffers, asks Linux to back them with transparent huge pages: the
/// match finder touches them at random, and with 4 KiB pages nearly every
/// access to a 64 MiB window also misses the TLB. Measured: see the
/// commit that added it. Call before the memory is first written.
pub(super) fn huge_pages<T>(v: &mut Vec<T>, n: usize) {
    debug_assert!(v.is_empty());
    v.reserve_exact(n);
    advise_huge(v);
}

/// `n` zero links, by [`huge_pages`]' rules. The zeroed allocation of a
/// large buffer is fresh memory from the kernel that nobody has written, so
/// the advice still comes before the first touch.
fn huge_zeroed(n: usize) -> Vec<u32> {
    let mut v = vec![0u32; n];
    advise_huge(&mut v);
    v
}

fn advise_huge<T>(v: &mut Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let bytes = v.capacity() * std::mem::size_of::<T>();
        if bytes < 4 * HUGE {
            return;
        }
        let start = v.as_mut_ptr() as usize;
        let begin = start.next_multiple_of(HUGE);
        let end = (start + bytes) / HUGE * HUGE;
        if end > begin {
            // SAFETY: [begin, end) lies inside the allocation `v` owns
            // (page-aligned, as madvise requires); MADV_HUGEPAGE changes no
            // contents and no mapping, only how pages are backed, and its
            // failure is harmless (the call is advice).
            unsafe {
                libc::madvise(begin as *mut libc::c_void, end - begin, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = v;
}

#[inline(always)]
pub(super) fn prefetch<T>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults, even on a bad address,
    // and here the address is a live reference.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (p as *const T).cast::<i8>(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn longest(d: &[u8], i: usize, cap: usize) -> usize {
        let max = (d.len() - i).min(cap);
        (0..i).map(|c| match_len(d, c, i, max)).max().unwrap_or(0)
    }

    #[test]
    fn finds_the_longest_match_with_unbounded_depth_and_skips_keep_trees_sorted() {
        let mut seed = 12345u32;
        let d: Vec<u8> = (0..20_000)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                b"abcab"[(seed >> 16) as usize % 5]
            })
            .collect();
        let mut bt = BinaryTrees::new();
        bt.reset(d.len());
        let mut out = Vec::new();
        for i in 0..d.len() {
            if i % 7 == 3 {
                bt.skip(&d, i, u32::MAX, 40);
                continue;
            }
            out.clear();
            bt.find(&d, i, u32::MAX, 40, &mut out);
            for w in out.windows(2) {
                assert!(w[0].len < w[1].len);
            }
            for m in &out {
                let o = m.off as usize;
                assert!(o >= 1 && o <= i);
                assert!(match_len(&d, i - o, i, d.len() - i) >= m.len as usize);
            }
            let best = out.last().map_or(0, |m| m.len as usize);
            if i + 3 <= d.len() {
                let want = longest(&d, i, 40);
                if want >= 3 {
                    assert_eq!(best, want, "at {i}");
                }
            }
        }
    }
}
