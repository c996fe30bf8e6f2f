//! Near-optimal parsing for the high compression levels.
//!
//! First every position's matches are collected (each length reachable at a
//! position, with the smallest offset found for it). Then a backward pass
//! computes the cheapest way to code the rest of the chunk from every
//! position, pricing each literal and match with a model of the Huffman
//! codeword lengths. The first pass assumes all symbols cost the same; each
//! further pass prices them with the code built from the previous pass's
//! choices. Not guaranteed optimal (the code depends on the choices, and
//! only the smallest offset is tried per length) but well ahead of lazy
//! parsing.

use super::compress::Items;
use super::huffman::make_code;
use super::matchfinder::Finder;
use super::{END_OF_DATA, MAX_CODEWORD_LEN, MIN_MATCH_LEN, NUM_CHARS, NUM_SYMBOLS};

/// Work buffers, kept between chunks.
#[derive(Default)]
pub(super) struct NearOptimal {
    /// Matches of all positions, `len << 16 | offset`.
    cache: Vec<u32>,
    /// `cache[starts[i]..starts[i + 1]]` are position i's matches.
    starts: Vec<u32>,
    /// Cheapest cost (bits) from position i to the end.
    cost: Vec<u32>,
    /// The first item of that cheapest way: 1 for a literal, else
    /// `len << 16 | offset`.
    choice: Vec<u32>,
}

impl NearOptimal {
    /// Parses `input` into `items` (which must be empty).
    pub(super) fn parse(
        &mut self,
        mf: &mut Finder<'_>,
        input: &[u8],
        depth: u32,
        nice_len: usize,
        passes: u32,
        items: &mut Items,
    ) {
        self.find_matches(mf, input, depth, nice_len);
        let mut costs = [9u32; NUM_SYMBOLS];
        for pass in 0..passes {
            self.min_cost_path(input, &costs);
            if pass + 1 < passes {
                let mut freqs = [0u32; NUM_SYMBOLS];
                self.walk(input, |sym| freqs[sym] += 1);
                freqs[END_OF_DATA] += 1;
                let mut lens = [0u8; NUM_SYMBOLS];
                let mut codewords = [0u16; NUM_SYMBOLS];
                make_code(&freqs, &mut lens, &mut codewords);
                for (c, &l) in costs.iter_mut().zip(&lens) {
                    // An unused symbol would get some long codeword.
                    *c = if l != 0 {
                        l as u32
                    } else {
                        MAX_CODEWORD_LEN as u32
                    };
                }
            }
        }
        let mut i = 0;
        while i < input.len() {
            let c = self.choice[i];
            if c == 1 {
                items.literal(input[i]);
                i += 1;
            } else {
                let len = (c >> 16) as usize;
                items.do_match(len, (c & 0xFFFF) as usize);
                i += len;
            }
        }
    }

    fn find_matches(&mut self, mf: &mut Finder<'_>, input: &[u8], depth: u32, nice_len: usize) {
        let n = input.len();
        self.cache.clear();
        self.starts.clear();
        let mut i = 0;
        while i < n {
            self.starts.push(self.cache.len() as u32);
            if i + 4 <= n {
                let max_len = n - i;
                let nice = nice_len.min(max_len);
                let best = mf.collect_matches(input, i, max_len, nice, depth, &mut self.cache);
                if best >= nice {
                    // A long match will almost surely be taken: the
                    // positions it covers get no matches (this also keeps
                    // highly repetitive data from costing quadratic time).
                    mf.skip(input, i + 1, best - 1);
                    for _ in 1..best {
                        self.starts.push(self.cache.len() as u32);
                    }
                    i += best;
                    continue;
                }
            }
            i += 1;
        }
        self.starts.push(self.cache.len() as u32);
        debug_assert_eq!(self.starts.len(), n + 1);
    }

    fn min_cost_path(&mut self, input: &[u8], costs: &[u32; NUM_SYMBOLS]) {
        let n = input.len();
        self.cost.clear();
        self.cost.resize(n + 1, 0);
        self.choice.clear();
        self.choice.resize(n, 1);
        for i in (0..n).rev() {
            let mut best = costs[input[i] as usize] + self.cost[i + 1];
            let mut choice = 1u32;
            let matches = &self.cache[self.starts[i] as usize..self.starts[i + 1] as usize];
            let mut len = MIN_MATCH_LEN;
            for &m in matches {
                let max = (m >> 16) as usize;
                let offset = m & 0xFFFF;
                let log2 = 31 - offset.leading_zeros();
                let base = NUM_CHARS + ((log2 as usize) << 4);
                // Every length up to this match's, not reached by a closer
                // match, is coded with this offset.
                while len <= max {
                    let adj = len - MIN_MATCH_LEN;
                    let mut c = costs[base + adj.min(0xF)] + log2 + self.cost[i + len];
                    if adj >= 0xF {
                        c += if adj - 0xF >= 0xFF { 24 } else { 8 };
                    }
                    if c < best {
                        best = c;
                        choice = (len as u32) << 16 | offset;
                    }
                    len += 1;
                }
            }
            self.cost[i] = best;
            self.choice[i] = choice;
        }
    }

    /// Calls `f` with the symbol of each item on the current path.
    fn walk(&self, input: &[u8], mut f: impl FnMut(usize)) {
        let mut i = 0;
        while i < input.len() {
            let c = self.choice[i];
            if c == 1 {
                f(input[i] as usize);
                i += 1;
            } else {
                let len = (c >> 16) as usize;
                let offset = c & 0xFFFF;
                let log2 = (31 - offset.leading_zeros()) as usize;
                f(NUM_CHARS + (log2 << 4 | (len - MIN_MATCH_LEN).min(0xF)));
                i += len;
            }
        }
    }
}
