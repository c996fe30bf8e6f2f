//! Match finders over one chunk.
//!
//! - [`HashChains`]: the classic head/prev chains on 3-byte hashes, used by
//!   the lazy parser of the quick levels.
//! - [`BinaryTrees`]: a binary search tree of suffixes per hash bucket
//!   (each node's left/right children hold earlier positions whose suffix
//!   compares smaller/greater), re-rooted at every position. One descent
//!   yields the nearest match of every length and keeps the tree sorted, so
//!   the near-optimal parser gets all useful matches at logarithmic cost.
//!   A small table of 2-byte hashes adds length-2 matches.
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

#[inline(always)]
fn load8(d: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&d[i..i + 8]);
    u64::from_le_bytes(w)
}

#[inline(always)]
fn hash3(d: &[u8], i: usize, bits: u32) -> usize {
    let v = u32::from(d[i]) | u32::from(d[i + 1]) << 8 | u32::from(d[i + 2]) << 16;
    (v.wrapping_mul(0x9E37_79B1) >> (32 - bits)) as usize
}

#[inline(always)]
fn hash2(d: &[u8], i: usize, bits: u32) -> usize {
    let v = u32::from(d[i]) | u32::from(d[i + 1]) << 8;
    (v.wrapping_mul(0x9E37_79B1) >> (32 - bits)) as usize
}

const NONE: u32 = u32::MAX;
const HC_BITS: u32 = 15;

/// Hash chains for the lazy parser.
pub struct HashChains {
    head: Vec<u32>,
    prev: Vec<u32>,
}

impl HashChains {
    pub fn new() -> Self {
        Self {
            head: vec![NONE; 1 << HC_BITS],
            prev: Vec::new(),
        }
    }

    pub fn reset(&mut self, n: usize) {
        self.head.fill(NONE);
        self.prev.clear();
        self.prev.resize(n, NONE);
    }

    /// Adds position `i` (needs 3 bytes) to its chain.
    #[inline(always)]
    pub fn insert(&mut self, d: &[u8], i: usize) {
        if i + 3 <= d.len() {
            let h = hash3(d, i, HC_BITS);
            self.prev[i] = self.head[h];
            self.head[h] = i as u32;
        }
    }

    /// Longest match (length >= 3) at `i` with offset <= `max_off`, looking at
    /// up to `depth` candidates; stops early at `nice`. Inserts `i`.
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
        if i + 3 > d.len() {
            return (0, 0);
        }
        let h = hash3(d, i, HC_BITS);
        let mut cand = self.head[h];
        self.prev[i] = cand;
        self.head[h] = i as u32;
        let (mut best_len, mut best_off) = (2usize, 0usize);
        let nice = nice.min(max_len);
        let mut left = depth;
        while cand != NONE && left > 0 {
            let c = cand as usize;
            let off = i - c;
            if off > max_off {
                break;
            }
            left -= 1;
            // best_len < max_len here, so both indices are in bounds.
            if d[c + best_len] == d[i + best_len] {
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
        if best_off == 0 {
            (0, 0)
        } else {
            (best_len, best_off)
        }
    }
}
