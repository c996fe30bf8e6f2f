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

const HASH3_BITS: u32 = 14;
const HASH4_BITS: u32 = 15;

pub(crate) struct HcMatchFinder {
    hash3: Box<[u16]>,
    hash4: Box<[u16]>,
    /// `prev[pos]`: the previous position (+1) on `pos`'s hash-4 chain.
    prev: Box<[u16]>,
}

#[inline(always)]
pub(crate) fn load_u32(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(data[at..at + 4].try_into().unwrap())
}

#[inline(always)]
fn load_u64(data: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(data[at..at + 8].try_into().unwrap())
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
/// first `len` bytes match, capped at `max_len` (`b + max_len <= data.len()`,
/// `a < b`).
#[inline(always)]
pub(crate) fn extend(data: &[u8], a: usize, b: usize, mut len: usize, max_len: usize) -> usize {
    while len + 8 <= max_len {
        let x = load_u64(data, a + len) ^ load_u64(data, b + len);
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
            hash3: vec![0; 1 << HASH3_BITS].into_boxed_slice(),
            hash4: vec![0; 1 << HASH4_BITS].into_boxed_slice(),
            prev: vec![0; max_chunk_size.min(MAX_CHUNK_SIZE)].into_boxed_slice(),
        }
    }

    /// Forgets the previous chunk; makes room for one of `size` bytes.
    pub(crate) fn reset(&mut self, size: usize) {
        self.hash3.fill(0);
        self.hash4.fill(0);
        if self.prev.len() < size {
            self.prev = vec![0; size].into_boxed_slice();
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
        debug_assert!(max_len >= 4 && nice_len <= max_len && cur + max_len <= data.len());
        let seq = load_u32(data, cur);
        let h3 = hash3(seq);
        let h4 = hash4(seq);
        let cand3 = self.hash3[h3] as usize;
        self.hash3[h3] = (cur + 1) as u16;
        let mut cand = self.hash4[h4] as usize;
        self.hash4[h4] = (cur + 1) as u16;
        self.prev[cur] = cand as u16;

        let mut best_pos = cur;
        let mut depth_left = depth;
        if best_len < 4 {
            if best_len < 3 && cand3 != 0 {
                let p = cand3 - 1;
                if (load_u32(data, p) ^ seq) & 0x00FF_FFFF == 0 {
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
                if load_u32(data, p) == seq {
                    break;
                }
                cand = self.prev[p] as usize;
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
            cand = self.prev[p] as usize;
            depth_left -= 1;
            if depth_left == 0 {
                return (best_len, cur - best_pos);
            }
        } else if best_len >= nice_len {
            return (best_len, 0);
        }
        // Look for longer matches: a candidate must agree on the four bytes
        // ending at `best_len` (which includes the byte that would make it
        // longer) and on the first four.
        while cand != 0 {
            let p = cand - 1;
            if best_len < max_len
                && load_u32(data, p + best_len - 3) == load_u32(data, cur + best_len - 3)
                && load_u32(data, p) == seq
            {
                let len = extend(data, p, cur, 4, max_len);
                if len > best_len {
                    best_len = len;
                    best_pos = p;
                    if best_len >= nice_len {
                        break;
                    }
                }
            }
            cand = self.prev[p] as usize;
            depth_left -= 1;
            if depth_left == 0 {
                break;
            }
        }
        (best_len, cur - best_pos)
    }

    /// Inserts positions `cur..cur + count` without searching (those from
    /// which four bytes cannot be read are left out).
    #[inline(always)]
    pub(crate) fn skip(&mut self, data: &[u8], cur: usize, count: usize) {
        let end = (cur + count).min(data.len().saturating_sub(3));
        for pos in cur..end {
            let seq = load_u32(data, pos);
            self.hash3[hash3(seq)] = (pos + 1) as u16;
            let h4 = hash4(seq);
            self.prev[pos] = self.hash4[h4];
            self.hash4[h4] = (pos + 1) as u16;
        }
    }
}
