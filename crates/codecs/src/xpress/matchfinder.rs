//! Hash-chain match finder for one chunk (at most 64 KiB, so positions fit
//! in 16 bits).
//!
//! Length 4+ matches come from chains of positions whose first four bytes
//! hash alike; length 3 matches from a one-entry-per-bucket table holding the
//! most recent position with the same three-byte hash (in XPRESS a length 3
//! match only pays off at a short distance, so the nearest one is enough).
//! Stored positions are `pos + 1`, 0 meaning "none"; a position is only
//! inserted when four bytes can be read from it.

use super::MAX_CHUNK_SIZE;

const HASH3_BITS: u32 = 15;
const HASH4_BITS: u32 = 16;

pub(crate) struct HcMatchFinder {
    hash3: Box<[u16; 1 << HASH3_BITS]>,
    hash4: Box<[u16; 1 << HASH4_BITS]>,
    /// `prev[pos]`: the previous position (+1) on `pos`'s hash-4 chain.
    prev: Box<[u16]>,
}

/// The match finder's tables borrowed for one chunk. Working on a local
/// view (rather than through the compressor) lets the compiler keep the
/// table pointers in registers across the stores into the tables.
pub(crate) struct Finder<'a> {
    hash3: &'a mut [u16; 1 << HASH3_BITS],
    hash4: &'a mut [u16; 1 << HASH4_BITS],
    prev: &'a mut [u16],
    /// Hashes computed ahead (for the prefetch) for position `next_pos`.
    next_pos: usize,
    next_h3: usize,
    next_h4: usize,
}

#[inline(always)]
pub(crate) fn load_u32(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(data[at..at + 4].try_into().unwrap())
}

/// `load_u32` without the bounds check, for the chain walk (measured: the
/// checks cost about a fifth of the compressor's time).
///
/// # Safety
/// `at + 4 <= data.len()`.
#[inline(always)]
unsafe fn load_u32_unchecked(data: &[u8], at: usize) -> u32 {
    debug_assert!(at + 4 <= data.len());
    // SAFETY: the caller guarantees the 4 bytes are inside `data`;
    // read_unaligned has no alignment requirement.
    u32::from_le(unsafe { data.as_ptr().add(at).cast::<u32>().read_unaligned() })
}

/// # Safety
/// `at + 8 <= data.len()`.
#[inline(always)]
unsafe fn load_u64_unchecked(data: &[u8], at: usize) -> u64 {
    debug_assert!(at + 8 <= data.len());
    // SAFETY: as for load_u32_unchecked.
    u64::from_le(unsafe { data.as_ptr().add(at).cast::<u64>().read_unaligned() })
}

#[inline(always)]
fn hash4(seq: u32) -> usize {
    (seq.wrapping_mul(0x1E35_A7BD) >> (32 - HASH4_BITS)) as usize
}

#[inline(always)]
fn hash3(seq: u32) -> usize {
    ((seq << 8).wrapping_mul(0x1E35_A7BD) >> (32 - HASH3_BITS)) as usize
}

/// Length of the common prefix of `data[a..]` and `data[b..]`, knowing the
/// first `len` bytes match, capped at `max_len`.
/// Panics unless `a < b` and `b + max_len <= data.len()`.
#[inline(always)]
pub(crate) fn extend(data: &[u8], a: usize, b: usize, mut len: usize, max_len: usize) -> usize {
    assert!(a < b && b + max_len <= data.len());
    while len + 8 <= max_len {
        // SAFETY: a + len + 8 < b + len + 8 <= b + max_len <= data.len().
        let x = unsafe { load_u64_unchecked(data, a + len) ^ load_u64_unchecked(data, b + len) };
        if x != 0 {
            return len + (x.trailing_zeros() / 8) as usize;
        }
        len += 8;
    }
    while len < max_len && data[a + len] == data[b + len] {
        len += 1;
    }
    len
}

impl HcMatchFinder {
    pub(crate) fn new(max_chunk_size: usize) -> Self {
        Self {
            hash3: Box::new([0; 1 << HASH3_BITS]),
            hash4: Box::new([0; 1 << HASH4_BITS]),
            prev: vec![0; max_chunk_size.min(MAX_CHUNK_SIZE)].into_boxed_slice(),
        }
    }

    /// Forgets the previous chunk and returns the tables for one of `size`
    /// bytes.
    pub(crate) fn begin(&mut self, size: usize) -> Finder<'_> {
        self.hash3.fill(0);
        self.hash4.fill(0);
        if self.prev.len() < size {
            self.prev = vec![0; size].into_boxed_slice();
        }
        Finder {
            hash3: &mut self.hash3,
            hash4: &mut self.hash4,
            prev: &mut self.prev,
            next_pos: usize::MAX,
            next_h3: 0,
            next_h4: 0,
        }
    }
}

impl Finder<'_> {
    /// Asks the CPU to start loading the hash buckets of position `pos`, so
    /// that the next search does not wait for them (the tables are larger
    /// than L1; measured).
    #[inline(always)]
    fn prefetch(&mut self, data: &[u8], pos: usize) {
        if pos + 4 <= data.len() {
            let seq = load_u32(data, pos);
            self.next_pos = pos;
            self.next_h3 = hash3(seq);
            self.next_h4 = hash4(seq);
            #[cfg(target_arch = "x86_64")]
            {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                let p3 = self.hash3[self.next_h3..].as_ptr();
                let p4 = self.hash4[self.next_h4..].as_ptr();
                // SAFETY: a prefetch is only a hint and never faults; both
                // pointers are in bounds anyway.
                #[allow(unused_unsafe)]
                unsafe {
                    _mm_prefetch::<_MM_HINT_T0>(p3.cast());
                    _mm_prefetch::<_MM_HINT_T0>(p4.cast());
                }
            }
        }
    }

    /// The hashes of position `cur` (usually computed ahead).
    #[inline(always)]
    fn hashes(&self, cur: usize, seq: u32) -> (usize, usize) {
        if self.next_pos == cur {
            (self.next_h3, self.next_h4)
        } else {
            (hash3(seq), hash4(seq))
        }
    }

    /// Inserts position `cur` and returns the longest match there longer
    /// than `best_len` (`(best_len, 0)` if none), looking at no more than
    /// `depth` chain entries and stopping at a match of `nice_len` bytes.
    /// Requires `4 <= max_len`, `nice_len <= max_len`,
    /// `cur + max_len <= data.len()`, `depth >= 1`.
    #[inline(always)]
    pub(crate) fn longest_match(
        &mut self,
        data: &[u8],
        cur: usize,
        mut best_len: usize,
        max_len: usize,
        nice_len: usize,
        depth: u32,
    ) -> (usize, usize) {
        // Everything below relies on these (a candidate p is always < cur).
        assert!(
            max_len >= 4
                && nice_len <= max_len
                && cur + max_len <= data.len()
                && cur < self.prev.len()
        );
        let seq = load_u32(data, cur);
        let (h3, h4) = self.hashes(cur, seq);
        let cand3 = self.hash3[h3] as usize;
        self.hash3[h3] = (cur + 1) as u16;
        let mut cand = self.hash4[h4] as usize;
        self.hash4[h4] = (cur + 1) as u16;
        self.prev[cur] = cand as u16;
        self.prefetch(data, cur + 1);

        // Chains only hold positions inserted for this chunk, all before
        // `cur` (positions strictly decrease along a chain).
        let prev = &self.prev[..cur];
        let mut best_pos = cur;
        let mut depth_left = depth;
        if best_len < 4 {
            // Both tables get the same positions, so with no earlier
            // position on the 3-byte hash there is no match at all.
            if cand3 == 0 {
                return (best_len, 0);
            }
            if best_len < 3 {
                let p = cand3 - 1;
                // SAFETY: p < cur and cur + 4 <= data.len().
                if (unsafe { load_u32_unchecked(data, p) } ^ seq) & 0x00FF_FFFF == 0 {
                    best_len = 3;
                    best_pos = p;
                }
            }
            // Find the first length 4 match.
            loop {
                if cand == 0 {
                    return (best_len, cur - best_pos);
                }
                let p = cand - 1;
                // SAFETY: p < cur and cur + 4 <= data.len().
                if unsafe { load_u32_unchecked(data, p) } == seq {
                    break;
                }
                cand = prev[p] as usize;
                depth_left -= 1;
                if depth_left == 0 {
                    return (best_len, cur - best_pos);
                }
            }
            let p = cand - 1;
            best_len = extend(data, p, cur, 4, max_len);
            best_pos = p;
            if best_len >= nice_len {
                return (best_len, cur - best_pos);
            }
            cand = prev[p] as usize;
            depth_left -= 1;
            if depth_left == 0 {
                return (best_len, cur - best_pos);
            }
        } else if best_len >= nice_len {
            return (best_len, 0);
        }
        // Look for longer matches: a candidate must agree on the four bytes
        // ending at `best_len` (which includes the byte that would make it
        // longer) and on the first four. Here 4 <= best_len < nice_len <=
        // max_len, so those four bytes are inside the window.
        let mut cur_tail = load_u32(data, cur + best_len - 3);
        while cand != 0 {
            let p = cand - 1;
            // SAFETY: p < cur and best_len + 1 <= max_len, so
            // p + best_len + 1 < cur + max_len <= data.len().
            let hit = unsafe {
                load_u32_unchecked(data, p + best_len - 3) == cur_tail
                    && load_u32_unchecked(data, p) == seq
            };
            if hit {
                let len = extend(data, p, cur, 4, max_len);
                if len > best_len {
                    best_len = len;
                    best_pos = p;
                    if best_len >= nice_len {
                        break;
                    }
                    cur_tail = load_u32(data, cur + best_len - 3);
                }
            }
            cand = prev[p] as usize;
            depth_left -= 1;
            if depth_left == 0 {
                break;
            }
        }
        (best_len, cur - best_pos)
    }

    /// Inserts position `cur` and appends to `out` every match that is
    /// longer than all the ones before it on the way along the chains, as
    /// `len << 16 | offset`: lengths strictly increase and each is reached
    /// with the smallest offset found for it. Returns the longest length
    /// (2 if none). Same requirements as [`Self::longest_match`].
    pub(crate) fn collect_matches(
        &mut self,
        data: &[u8],
        cur: usize,
        max_len: usize,
        nice_len: usize,
        depth: u32,
        out: &mut Vec<u32>,
    ) -> usize {
        assert!(
            max_len >= 4
                && nice_len <= max_len
                && cur + max_len <= data.len()
                && cur < self.prev.len()
        );
        let seq = load_u32(data, cur);
        let (h3, h4) = self.hashes(cur, seq);
        let cand3 = self.hash3[h3] as usize;
        self.hash3[h3] = (cur + 1) as u16;
        let mut cand = self.hash4[h4] as usize;
        self.hash4[h4] = (cur + 1) as u16;
        self.prev[cur] = cand as u16;
        self.prefetch(data, cur + 1);
        if cand3 == 0 {
            return 2;
        }
        let prev = &self.prev[..cur];
        let mut best_len = 2;
        let p = cand3 - 1;
        if (load_u32(data, p) ^ seq) & 0x00FF_FFFF == 0 {
            best_len = 3;
            out.push(3 << 16 | (cur - p) as u32);
        }
        let mut depth_left = depth;
        while cand != 0 && depth_left != 0 {
            let p = cand - 1;
            // A longer match must agree on the four bytes ending at
            // `best_len` (best_len + 1 <= max_len here) and on the first
            // four.
            let hit = if best_len < 4 {
                load_u32(data, p) == seq
            } else {
                load_u32(data, p + best_len - 3) == load_u32(data, cur + best_len - 3)
                    && load_u32(data, p) == seq
            };
            if hit {
                let len = extend(data, p, cur, 4, max_len);
                if len > best_len {
                    best_len = len;
                    out.push((len as u32) << 16 | (cur - p) as u32);
                    if len >= nice_len {
                        break;
                    }
                }
            }
            cand = prev[p] as usize;
            depth_left -= 1;
        }
        best_len
    }

    /// Inserts positions `cur..cur + count` without searching (those from
    /// which four bytes cannot be read are left out).
    #[inline(always)]
    pub(crate) fn skip(&mut self, data: &[u8], cur: usize, count: usize) {
        let end = (cur + count).min(data.len().saturating_sub(3));
        self.prefetch(data, cur + count);
        for pos in cur..end {
            let seq = load_u32(data, pos);
            self.hash3[hash3(seq)] = (pos + 1) as u16;
            let h4 = hash4(seq);
            self.prev[pos] = self.hash4[h4];
            self.hash4[h4] = (pos + 1) as u16;
        }
    }
}
