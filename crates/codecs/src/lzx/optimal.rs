//! Near-optimal parsing: a minimum-cost path over the graph whose edges are
//! the literal and the matches available at each position.
//!
//! All matches of the chunk are found once (binary trees) and cached. A
//! forward pass then computes, for each position, the cheapest way found to
//! reach it under a cost model of the symbols. The repeat-offset queue is
//! part of the state: each position keeps the queue of its best path, which
//! makes the search a (very good) approximation rather than an exact
//! optimum. The parse is repeated with costs re-derived from the Huffman
//! code lengths the previous parse would get, so costs and parse converge.

use super::compress::{update_reps, Freqs, Seq};
use super::huffenc::HuffmanBuilder;
use super::matchfind::{match_len, BinaryTrees, Match, Pos};
use super::tables::*;

/// Costs are in 1/16 bit.
const BIT: u32 = 16;
const INF: u32 = u32::MAX;

/// Best arrival found so far at a position: its cost and the item taken,
/// `offset code << 9 | length` (length 1 = literal). Kept to 8 bytes since
/// the parser writes these in its innermost loop; the repeat-offset queue of
/// a position is derived from its item once the position is final.
#[derive(Clone, Copy)]
struct Node {
    cost: u32,
    item: u32,
}

const EMPTY_NODE: Node = Node { cost: INF, item: 0 };
const LEN_BITS: u32 = 9;

/// Symbol costs for one pass.
struct Costs {
    main: [u32; MAX_MAIN_SYMS],
    len: [u32; LEN_SYMS],
    aligned: [u32; ALIGNED_SYMS],
    /// Length-symbol cost by match length (0 below 9).
    len_tail: [u32; MAX_MATCH + 1],
    /// Whether offsets of slots >= 8 are costed as in an aligned block.
    use_aligned: bool,
}

impl Costs {
    /// Cost of the offset bits following the main symbol of an explicit
    /// match with formatted offset `f` in slot `slot`.
    #[inline(always)]
    fn offset(&self, f: u32, slot: usize) -> u32 {
        let extra = u32::from(EXTRA_BITS[slot]);
        if self.use_aligned && slot >= MIN_ALIGNED_SLOT {
            (extra - 3) * BIT + self.aligned[(f & 7) as usize]
        } else {
            extra * BIT
        }
    }

    /// Main-symbol costs of the 8 length headers of `slot`.
    #[inline(always)]
    fn slot_main(&self, slot: usize) -> &[u32; NUM_LEN_HEADERS] {
        let s = NUM_CHARS + slot * NUM_LEN_HEADERS;
        self.main[s..s + NUM_LEN_HEADERS]
            .try_into()
            .unwrap_or(&[INF / 4; NUM_LEN_HEADERS])
    }

    fn fill_len_tail(&mut self) {
        for len in MIN_MATCH + NUM_PRIMARY_LENS..=MAX_MATCH {
            self.len_tail[len] = self.len[len - MIN_MATCH - NUM_PRIMARY_LENS];
        }
    }
}

/// Offers the match lengths `lo..=hi` (starting at `reach[0]`, the current
/// position) with base cost `base`; `main8` are the main-symbol costs of the
/// slot's 8 length headers, `tail[len]` the length-symbol cost.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn relax(
    reach: &mut [Node],
    lo: usize,
    hi: usize,
    base: u32,
    main8: &[u32; NUM_LEN_HEADERS],
    tail: &[u32; MAX_MATCH + 1],
    off: u32,
) {
    let Some(targets) = reach.get_mut(lo..=hi) else {
        return;
    };
    let tails = &tail[lo..=hi];
    for (k, (node, &t)) in targets.iter_mut().zip(tails).enumerate() {
        let len = lo + k;
        let lh = (len - MIN_MATCH).min(NUM_PRIMARY_LENS);
        let mc = base + main8[lh] + t;
        if mc < node.cost {
            *node = Node {
                cost: mc,
                item: off << LEN_BITS | len as u32,
            };
        }
    }
}

/// Runs every position of `d` through the trees, caching its matches.
fn find_all<P: Pos>(
    bt: &mut BinaryTrees<P>,
    d: &[u8],
    max_off: usize,
    p: &OptParams,
    (matches, starts, scratch): (&mut Vec<Match>, &mut Vec<u32>, &mut Vec<Match>),
) {
    let n = d.len();
    bt.reset(n);
    let mut i = 0;
    while i < n {
        starts.push(matches.len() as u32);
        let before = matches.len();
        bt.find_and_insert(d, i, max_off, p.depth, p.nice, matches);
        let longest = matches[before..].last().map_or(0, |m| m.len as usize);
        let end = i + longest;
        i += 1;
        if longest >= p.nice {
            // The parser takes such a match whole, so the positions it
            // covers only need to enter the trees.
            while i < end {
                starts.push(matches.len() as u32);
                scratch.clear();
                bt.find_and_insert(d, i, max_off, p.depth, p.nice, scratch);
                i += 1;
            }
        }
    }
    starts.push(matches.len() as u32);
}

/// Parser settings.
pub struct OptParams {
    /// Tree nodes visited per position.
    pub depth: u32,
    /// Match length taken at once without considering shorter ones.
    pub nice: usize,
    /// Parses with refined costs.
    pub passes: u32,
    /// Start from the statistics of a greedy parse.
    pub greedy_start: bool,
}

pub struct Optimal {
    bt16: BinaryTrees<u16>,
    bt32: BinaryTrees<u32>,
    /// Matches of every position, `starts[i]..starts[i + 1]`.
    matches: Vec<Match>,
    starts: Vec<u32>,
    scratch: Vec<Match>,
    nodes: Vec<Node>,
    /// Repeat-offset queue at each position on its best path.
    reps_at: Vec<[u32; NUM_REPS]>,
    costs: Box<Costs>,
    freqs: Box<Freqs>,
    lens: [u8; MAX_MAIN_SYMS],
    codes: [u16; MAX_MAIN_SYMS],
    path: Vec<(u16, u32)>,
}

impl Optimal {
    pub fn new() -> Self {
        Self {
            bt16: BinaryTrees::new(),
            bt32: BinaryTrees::new(),
            matches: Vec::new(),
            starts: Vec::new(),
            scratch: Vec::new(),
            nodes: Vec::new(),
            reps_at: Vec::new(),
            costs: Box::new(Costs {
                main: [0; MAX_MAIN_SYMS],
                len: [0; LEN_SYMS],
                aligned: [0; ALIGNED_SYMS],
                len_tail: [0; MAX_MATCH + 1],
                use_aligned: false,
            }),
            freqs: Box::new(Freqs::new()),
            lens: [0; MAX_MAIN_SYMS],
            codes: [0; MAX_MAIN_SYMS],
            path: Vec::new(),
        }
    }

    /// Parses `d` (the whole chunk, one block) into `seqs`.
    pub fn parse(
        &mut self,
        d: &[u8],
        max_off: usize,
        num_main_syms: usize,
        p: &OptParams,
        huff: &mut HuffmanBuilder,
        seqs: &mut Vec<Seq>,
    ) {
        self.find_all_matches(d, max_off, p);
        if p.greedy_start {
            // Statistics of a cheap greedy parse make a better first cost
            // model than a guess, and spare one expensive pass.
            self.initial_costs(d, num_main_syms);
            self.greedy(d, seqs);
            self.update_costs(d, seqs, num_main_syms, huff);
        } else {
            self.initial_costs(d, num_main_syms);
        }
        for pass in 0..p.passes.max(1) {
            self.min_cost_path(d, p.nice, seqs);
            if pass + 1 < p.passes {
                self.update_costs(d, seqs, num_main_syms, huff);
            }
        }
    }

    fn find_all_matches(&mut self, d: &[u8], max_off: usize, p: &OptParams) {
        self.matches.clear();
        self.starts.clear();
        self.starts.reserve(d.len() + 1);
        let out = (&mut self.matches, &mut self.starts, &mut self.scratch);
        if d.len() < u16::LIMIT {
            find_all(&mut self.bt16, d, max_off, p, out);
        } else {
            find_all(&mut self.bt32, d, max_off, p, out);
        }
    }

    /// Best cached or repeat match at `i`: `(length, offset code)`, length 0
    /// when there is none worth taking.
    #[inline(always)]
    fn best_cached(&self, d: &[u8], i: usize, reps: &[u32; NUM_REPS]) -> (usize, u32) {
        let max_len = (d.len() - i).min(MAX_MATCH);
        let (mut best_len, mut best_off) = (0usize, 0u32);
        if let Some(m) = self.matches[self.starts[i] as usize..self.starts[i + 1] as usize].last() {
            if m.len >= 3 {
                best_len = m.len as usize;
                best_off = m.off + 2;
            }
        }
        if max_len >= MIN_MATCH {
            for (k, &r) in reps.iter().enumerate() {
                let r = r as usize;
                if r <= i && d[i - r] == d[i] && d[i + 1 - r] == d[i + 1] {
                    let l = match_len(d, i - r, i, max_len);
                    // A repeat match is much cheaper: prefer it unless the
                    // explicit one is clearly longer.
                    if l + 1 >= best_len {
                        return (l, k as u32);
                    }
                }
            }
        }
        if best_off >= NUM_REPS as u32 {
            if let Some(k) = reps.iter().position(|&r| r + 2 == best_off) {
                best_off = k as u32;
            }
        }
        (best_len, best_off)
    }

    /// Lazy parse from the match cache (a match is deferred when the next
    /// position has a longer one); only its statistics are used.
    fn greedy(&mut self, d: &[u8], seqs: &mut Vec<Seq>) {
        let n = d.len();
        seqs.clear();
        let mut reps = [1u32; NUM_REPS];
        let mut lit = 0u32;
        let mut i = 0;
        let mut cur = self.best_cached(d, 0, &reps);
        while i < n {
            if cur.0 == 0 {
                lit += 1;
                i += 1;
                if i < n {
                    cur = self.best_cached(d, i, &reps);
                }
                continue;
            }
            if i + 1 < n && cur.0 < 32 {
                let next = self.best_cached(d, i + 1, &reps);
                if next.0 > cur.0 {
                    lit += 1;
                    i += 1;
                    cur = next;
                    continue;
                }
            }
            let (best_len, best_off) = cur;
            seqs.push(Seq {
                litrun: lit,
                len: best_len as u32,
                off: best_off,
            });
            update_reps(&mut reps, best_off, best_off.wrapping_sub(2));
            lit = 0;
            i += best_len;
            if i < n {
                cur = self.best_cached(d, i, &reps);
            }
        }
        seqs.push(Seq {
            litrun: lit,
            len: 0,
            off: 0,
        });
    }

    /// A first guess before any statistics of the parse exist: literals by
    /// their frequency in the chunk, matches at a flat price.
    fn initial_costs(&mut self, d: &[u8], nm: usize) {
        let mut hist = [0u32; 256];
        for &b in d {
            hist[b as usize] += 1;
        }
        let n = d.len() as f32;
        let c = &mut self.costs;
        for (b, &h) in hist.iter().enumerate() {
            c.main[b] = if h == 0 {
                12 * BIT
            } else {
                let bits = (n / h as f32).log2() + 1.0;
                ((bits * BIT as f32) as u32).clamp(BIT, 15 * BIT)
            };
        }
        for sym in NUM_CHARS..nm {
            let slot = (sym - NUM_CHARS) / NUM_LEN_HEADERS;
            let lh = (sym - NUM_CHARS) % NUM_LEN_HEADERS;
            let base = match slot {
                0 => 7 * BIT,
                1 | 2 => 9 * BIT,
                _ => 9 * BIT + (slot as u32 * BIT) / 8,
            };
            c.main[sym] = base + if lh == NUM_PRIMARY_LENS { BIT } else { 0 };
        }
        for (s, v) in c.len.iter_mut().enumerate() {
            *v = ((4 + s / 12) as u32).min(12) * BIT;
        }
        c.aligned = [3 * BIT; ALIGNED_SYMS];
        c.use_aligned = false;
        c.fill_len_tail();
    }

    /// Costs from the code lengths the last parse would be given.
    fn update_costs(&mut self, d: &[u8], seqs: &[Seq], nm: usize, huff: &mut HuffmanBuilder) {
        let f = &mut self.freqs;
        f.clear();
        f.count(d, seqs);
        let c = &mut self.costs;
        huff.build(
            &f.main[..nm],
            MAX_CODEWORD_LEN,
            &mut self.lens[..nm],
            &mut self.codes[..nm],
        );
        for s in 0..nm {
            c.main[s] = if self.lens[s] == 0 {
                10 * BIT
            } else {
                u32::from(self.lens[s]) * BIT
            };
        }
        huff.build(
            &f.len,
            MAX_CODEWORD_LEN,
            &mut self.lens[..LEN_SYMS],
            &mut self.codes[..LEN_SYMS],
        );
        for s in 0..LEN_SYMS {
            c.len[s] = if self.lens[s] == 0 {
                10 * BIT
            } else {
                u32::from(self.lens[s]) * BIT
            };
        }
        huff.build(
            &f.al,
            MAX_ALIGNED_LEN,
            &mut self.lens[..ALIGNED_SYMS],
            &mut self.codes[..ALIGNED_SYMS],
        );
        let mut gain: i64 = -24;
        for s in 0..ALIGNED_SYMS {
            gain += i64::from(f.al[s]) * (3 - i64::from(self.lens[s]));
            c.aligned[s] = if self.lens[s] == 0 {
                7 * BIT
            } else {
                u32::from(self.lens[s]) * BIT
            };
        }
        c.use_aligned = gain > 0;
        c.fill_len_tail();
    }

    /// One forward minimum-cost pass; writes the chosen items to `seqs`.
    fn min_cost_path(&mut self, d: &[u8], nice: usize, seqs: &mut Vec<Seq>) {
        let n = d.len();
        self.nodes.clear();
        self.nodes.resize(n + 1, EMPTY_NODE);
        self.nodes[0].cost = 0;
        self.reps_at.clear();
        self.reps_at.resize(n + 1, [1; NUM_REPS]);
        let c = &*self.costs;
        let nodes = &mut self.nodes[..];
        let reps_at = &mut self.reps_at[..];
        for i in 0..n {
            let Node { cost, item } = nodes[i];
            let len = (item & ((1 << LEN_BITS) - 1)) as usize;
            let reps = if len > 1 && len <= i {
                let mut r = reps_at[i - len];
                let off = item >> LEN_BITS;
                update_reps(&mut r, off, off.wrapping_sub(2));
                r
            } else if len == 1 {
                reps_at[i - 1]
            } else {
                [1; NUM_REPS]
            };
            reps_at[i] = reps;
            // Literal.
            let lc = cost + c.main[d[i] as usize];
            if lc < nodes[i + 1].cost {
                nodes[i + 1] = Node { cost: lc, item: 1 };
            }
            let max_len = (n - i).min(MAX_MATCH);
            if max_len < MIN_MATCH {
                continue;
            }
            // Repeat offsets.
            let reach = &mut nodes[i..=i + max_len];
            let mut rep_best = 0;
            for k in 0..NUM_REPS {
                let r = reps[k] as usize;
                if r > i
                    || d[i - r] != d[i]
                    || d[i + 1 - r] != d[i + 1]
                    || (k > 0 && reps[..k].contains(&reps[k]))
                {
                    continue;
                }
                let l = match_len(d, i - r, i, max_len);
                if l < MIN_MATCH {
                    continue;
                }
                let lo = if l >= nice { l } else { MIN_MATCH };
                relax(reach, lo, l, cost, c.slot_main(k), &c.len_tail, k as u32);
                rep_best = rep_best.max(l);
            }
            // Explicit offsets.
            let ms = &self.matches[self.starts[i] as usize..self.starts[i + 1] as usize];
            // Lengths a repeat offset reaches are left to it: it costs no
            // offset bits, so an explicit offset rarely wins there.
            let mut prev = (MIN_MATCH - 1).max(rep_best);
            if let Some(last) = ms.last() {
                if last.len as usize >= nice {
                    prev = prev.max(last.len as usize - 1);
                }
            }
            for m in ms {
                let ml = m.len as usize;
                if ml <= prev {
                    continue;
                }
                if reps.contains(&m.off) {
                    // The repeat-offset edges above cover it, cheaper.
                    prev = ml;
                    continue;
                }
                let f = m.off + 2;
                let slot = slot_of(f);
                let oc = cost + c.offset(f, slot);
                relax(reach, prev + 1, ml, oc, c.slot_main(slot), &c.len_tail, f);
                prev = ml;
            }
        }
        // Walk back from the end, then emit forwards.
        self.path.clear();
        let mut j = n;
        while j > 0 {
            let item = self.nodes[j].item;
            let len = (item & ((1 << LEN_BITS) - 1)) as u16;
            self.path.push((len, item >> LEN_BITS));
            // Every position is reached (a literal always is), with len >= 1.
            j -= (len as usize).clamp(1, j);
        }
        seqs.clear();
        let mut lit = 0u32;
        let mut reps = [1u32; NUM_REPS];
        for &(len, off) in self.path.iter().rev() {
            if len == 1 {
                lit += 1;
            } else {
                seqs.push(Seq {
                    litrun: lit,
                    len: u32::from(len),
                    off,
                });
                update_reps(&mut reps, off, off.wrapping_sub(2));
                lit = 0;
            }
        }
        seqs.push(Seq {
            litrun: lit,
            len: 0,
            off: 0,
        });
    }
}
