//! LZX (WIM variant) compression of one chunk.
//!
//! The chunk is E8-preprocessed into a work buffer, parsed into a list of
//! [`Seq`] items (literal runs followed by a match), then written as one or
//! more blocks: the near-optimal levels end a block where the symbol
//! statistics change and separate codes are estimated to pay (each block
//! is then parsed with its own cost model). For each block the Huffman codes are built from the item
//! statistics, and the block is written as "aligned" when coding the low
//! three bits of long offsets with their own code is cheaper than sending
//! them verbatim.

use super::e8;
use super::huffenc::HuffmanBuilder;
use super::matchfind::{match_len, HashChains, Pos};
use super::optimal::{OptParams, Optimal};
use super::tables::*;

/// `litrun` literals, then a match of `len` bytes (none when `len == 0`,
/// which only the last item of a block has). `off` is a repeat-offset index
/// (0..=2) or an explicit offset in formatted form (real offset + 2).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Seq {
    pub litrun: u32,
    pub len: u32,
    pub off: u32,
}

/// Main-alphabet symbol of a match.
#[inline(always)]
pub(crate) fn main_sym(len: u32, off: u32) -> usize {
    let slot = if off < NUM_REPS as u32 {
        off as usize
    } else {
        slot_of(off)
    };
    NUM_CHARS + slot * NUM_LEN_HEADERS + ((len as usize - MIN_MATCH).min(NUM_PRIMARY_LENS))
}

/// Writes 16-bit little-endian words, most significant bit first. Bits
/// are buffered and written two words at a time.
struct BitWriter {
    out: Vec<u8>,
    buf: u64,
    /// Bits in `buf` not yet written (below 32 between calls).
    cnt: u32,
}

impl BitWriter {
    #[inline(always)]
    fn put(&mut self, bits: u32, n: u32) {
        debug_assert!(n <= 32 && (n == 32 || bits >> n == 0));
        self.buf = (self.buf << n) | u64::from(bits);
        self.cnt += n;
        if self.cnt >= 32 {
            self.cnt -= 32;
            let w = (self.buf >> self.cnt) as u32;
            let [a, b, c, d] = w.to_be_bytes();
            self.out.extend_from_slice(&[b, a, d, c]);
        }
    }

    fn flush(&mut self) {
        if self.cnt >= 16 {
            self.cnt -= 16;
            let w = (self.buf >> self.cnt) as u16;
            self.out.extend_from_slice(&w.to_le_bytes());
        }
        if self.cnt > 0 {
            let w = (self.buf << (16 - self.cnt)) as u16;
            self.out.extend_from_slice(&w.to_le_bytes());
            self.cnt = 0;
        }
    }
}

/// The Huffman codes of one block.
struct Codes {
    main_lens: [u8; MAX_MAIN_SYMS],
    main_codes: [u16; MAX_MAIN_SYMS],
    len_lens: [u8; LEN_SYMS],
    len_codes: [u16; LEN_SYMS],
    al_lens: [u8; ALIGNED_SYMS],
    al_codes: [u16; ALIGNED_SYMS],
}

impl Codes {
    fn new() -> Self {
        Self {
            main_lens: [0; MAX_MAIN_SYMS],
            main_codes: [0; MAX_MAIN_SYMS],
            len_lens: [0; LEN_SYMS],
            len_codes: [0; LEN_SYMS],
            al_lens: [0; ALIGNED_SYMS],
            al_codes: [0; ALIGNED_SYMS],
        }
    }
}

/// Symbol frequencies of one block.
#[derive(Clone)]
pub(crate) struct Freqs {
    pub main: [u32; MAX_MAIN_SYMS],
    pub len: [u32; LEN_SYMS],
    pub al: [u32; ALIGNED_SYMS],
}

impl Freqs {
    pub fn new() -> Self {
        Self {
            main: [0; MAX_MAIN_SYMS],
            len: [0; LEN_SYMS],
            al: [0; ALIGNED_SYMS],
        }
    }

    pub fn clear(&mut self) {
        self.main.fill(0);
        self.len.fill(0);
        self.al.fill(0);
    }

    pub fn add(&mut self, o: &Freqs) {
        for (a, b) in self.main.iter_mut().zip(&o.main) {
            *a += b;
        }
        for (a, b) in self.len.iter_mut().zip(&o.len) {
            *a += b;
        }
        for (a, b) in self.al.iter_mut().zip(&o.al) {
            *a += b;
        }
    }

    /// Counts the symbols of `seqs` over the block bytes `data`.
    pub fn count(&mut self, data: &[u8], seqs: &[Seq]) {
        let mut p = 0usize;
        for s in seqs {
            for &b in &data[p..p + s.litrun as usize] {
                self.main[b as usize] += 1;
            }
            p += s.litrun as usize;
            if s.len != 0 {
                self.count_match(s);
                p += s.len as usize;
            }
        }
    }

    #[inline(always)]
    fn count_match(&mut self, s: &Seq) {
        self.main[main_sym(s.len, s.off)] += 1;
        if s.len as usize >= MIN_MATCH + NUM_PRIMARY_LENS {
            self.len[s.len as usize - MIN_MATCH - NUM_PRIMARY_LENS] += 1;
        }
        if s.off >= NUM_REPS as u32 && slot_of(s.off) >= MIN_ALIGNED_SLOT {
            self.al[(s.off & 7) as usize] += 1;
        }
    }
}

/// Counts the symbols of `seqs` (over `data`) into `freqs[b]` for the
/// block `b` they start in; block `b` ends at `ends[b]`.
fn count_blocks(data: &[u8], seqs: &[Seq], ends: &[usize], freqs: &mut [Freqs]) {
    let mut b = 0;
    let mut p = 0usize;
    for f in freqs.iter_mut() {
        f.clear();
    }
    for s in seqs {
        let lit_end = p + s.litrun as usize;
        while p < lit_end {
            while ends[b] <= p {
                b += 1;
            }
            let stop = lit_end.min(ends[b]);
            for &c in &data[p..stop] {
                freqs[b].main[c as usize] += 1;
            }
            p = stop;
        }
        if s.len != 0 {
            while ends[b] <= p {
                b += 1;
            }
            freqs[b].count_match(s);
            p += s.len as usize;
        }
    }
}

/// Bits a split must save by the estimate of
/// [`LzxCompressor::keep_useful_splits`] (which leaves out the extra offset
/// bits and estimates the code lengths' cost). Measured: 400 to 900 best
/// on the bench corpus; 200 is 0.1 % smaller on a corpus of libraries but
/// splits uniform text (see the test chunks_are_split_where_the_data_changes)
/// into blocks that come out ~1 % larger than one block.
const SPLIT_MARGIN_BITS: u64 = 600;
/// Estimated header bits per used symbol of a block's main and length codes
/// (measured best of 3, 4 and 5).
const HEADER_BITS_PER_SYMBOL: f32 = 4.0;

/// Levels up to this one use lazy parsing; above, near-optimal parsing.
const MAX_LAZY_LEVEL: u32 = 34;

/// Parser settings derived from the level.
#[derive(Clone, Copy)]
struct Params {
    depth: u32,
    nice: usize,
}

/// A reusable LZX chunk compressor.
pub struct LzxCompressor {
    /// Largest chunk accepted; 0 when LZX cannot describe the window (then
    /// every chunk is left uncompressed).
    max_chunk_size: usize,
    order: u32,
    num_main_syms: usize,
    params: Params,
    buf: Vec<u8>,
    seqs: Vec<Seq>,
    /// Block ends of the chunk and the greedy parse's symbol frequencies
    /// of each block (near-optimal parsing).
    block_ends: Vec<usize>,
    block_freqs: Vec<Freqs>,
    hc16: HashChains<u16>,
    hc32: HashChains<u32>,
    opt: Option<Box<Optimal>>,
    opt_params: OptParams,
    huff: HuffmanBuilder,
    freqs: Freqs,
    codes: Codes,
    prev_main_lens: [u8; MAX_MAIN_SYMS],
    prev_len_lens: [u8; LEN_SYMS],
    bw: BitWriter,
}

impl LzxCompressor {
    /// A compressor for chunks of up to `max_chunk_size` bytes (the LZX
    /// window is that size rounded up to a power of two, at least 32 KiB, up
    /// to 2 MiB). `level` follows wimlib: 20 quick, 50 default, 100 slow.
    pub fn new(max_chunk_size: usize, level: u32) -> Self {
        let (max, order) = match window_order(max_chunk_size) {
            Some(o) => (max_chunk_size, o),
            None => (0, MIN_WINDOW_ORDER),
        };
        let level = level.clamp(1, 1000);
        Self {
            max_chunk_size: max,
            order,
            num_main_syms: NUM_CHARS + num_offset_slots(order) * NUM_LEN_HEADERS,
            params: Params {
                depth: (level / 2).max(4),
                nice: ((level * 8 / 5) as usize).clamp(16, MAX_MATCH),
            },
            buf: Vec::new(),
            seqs: Vec::new(),
            block_ends: Vec::new(),
            block_freqs: Vec::new(),
            hc16: HashChains::new(),
            hc32: HashChains::new(),
            opt: (level > MAX_LAZY_LEVEL).then(|| Box::new(Optimal::new())),
            opt_params: OptParams {
                depth: (level * 24 / 50).max(4),
                nice: ((level * 48 / 50) as usize).clamp(8, MAX_MATCH),
                passes: 1 + u32::from(level >= 60) + u32::from(level >= 100),
            },
            huff: HuffmanBuilder::new(),
            freqs: Freqs::new(),
            codes: Codes::new(),
            prev_main_lens: [0; MAX_MAIN_SYMS],
            prev_len_lens: [0; LEN_SYMS],
            bw: BitWriter {
                out: Vec::new(),
                buf: 0,
                cnt: 0,
            },
        }
    }

    pub fn compress_chunk(&mut self, input: &[u8], output: &mut [u8]) -> Option<usize> {
        if input.is_empty() || input.len() > self.max_chunk_size {
            return None;
        }
        self.buf.clear();
        self.buf.extend_from_slice(input);
        e8::preprocess(&mut self.buf);
        self.bw.out.clear();
        self.bw.buf = 0;
        self.bw.cnt = 0;
        self.prev_main_lens = [0; MAX_MAIN_SYMS];
        self.prev_len_lens = [0; LEN_SYMS];
        let mut seqs = std::mem::take(&mut self.seqs);
        let buf = std::mem::take(&mut self.buf);
        if let Some(mut opt) = self.opt.take() {
            let max_off = (1usize << self.order) - 3;
            opt.find_matches(&buf, max_off, &self.opt_params);
            // A greedy parse of the chunk gives each block's first cost
            // model, and the statistics that decide the blocks.
            opt.greedy(&buf, 0, [1; NUM_REPS], &mut seqs);
            let mut ends = std::mem::take(&mut self.block_ends);
            Optimal::block_ends(&buf, &seqs, &mut ends);
            let mut freqs = std::mem::take(&mut self.block_freqs);
            freqs.resize_with(ends.len(), Freqs::new);
            count_blocks(&buf, &seqs, &ends, &mut freqs);
            if ends.len() > 1 {
                self.keep_useful_splits(&mut ends, &mut freqs);
            }
            let mut start = 0;
            let mut reps = [1u32; NUM_REPS];
            for (&end, first) in ends.iter().zip(&freqs) {
                opt.parse_block(
                    &buf[..end],
                    start,
                    reps,
                    first,
                    self.num_main_syms,
                    &self.opt_params,
                    &mut self.huff,
                    &mut seqs,
                );
                for s in &seqs {
                    if s.len != 0 {
                        update_reps(&mut reps, s.off, s.off.wrapping_sub(2));
                    }
                }
                self.write_block(&buf[start..end], &seqs);
                start = end;
            }
            self.block_ends = ends;
            self.block_freqs = freqs;
            self.opt = Some(opt);
        } else {
            self.parse_lazy(&buf, &mut seqs);
            self.write_block(&buf, &seqs);
        }
        self.seqs = seqs;
        self.buf = buf;
        self.bw.flush();
        let n = self.bw.out.len();
        if n < input.len() && n <= output.len() {
            output[..n].copy_from_slice(&self.bw.out);
            Some(n)
        } else {
            None
        }
    }

    /// Drops the proposed block ends where one block with one set of codes
    /// is estimated no larger than two (each one's symbols and code
    /// lengths, by the greedy parse's statistics `freqs` of each block,
    /// which are merged along).
    fn keep_useful_splits(&self, ends: &mut Vec<usize>, freqs: &mut Vec<Freqs>) {
        let mut both = Freqs::new();
        let mut kept = 0;
        let mut cur_bits = self.estimate_bits(&freqs[0]);
        for k in 1..ends.len() {
            let next_bits = self.estimate_bits(&freqs[k]);
            both.main = freqs[kept].main;
            both.len = freqs[kept].len;
            both.al = freqs[kept].al;
            both.add(&freqs[k]);
            let both_bits = self.estimate_bits(&both);
            if both_bits > cur_bits + next_bits + SPLIT_MARGIN_BITS {
                ends[kept] = ends[k - 1];
                kept += 1;
                freqs.swap(kept, k);
                cur_bits = next_bits;
            } else {
                std::mem::swap(&mut freqs[kept], &mut both);
                cur_bits = both_bits;
            }
        }
        ends[kept] = *ends.last().unwrap_or(&0);
        ends.truncate(kept + 1);
        freqs.truncate(kept + 1);
    }

    /// Estimated bits of a block with the symbol frequencies `f`: the
    /// information content of its symbols (aligned-offset symbols at 3
    /// bits when that is less) and [`HEADER_BITS_PER_SYMBOL`] per used main
    /// and length symbol for the code lengths, plus the three pretrees.
    /// (Measured: within 0.003 % of the size reached with exact Huffman
    /// code and header sizes, at a fraction of the cost.)
    fn estimate_bits(&self, f: &Freqs) -> u64 {
        let (main, main_used) = entropy_bits(&f.main[..self.num_main_syms]);
        let (len, len_used) = entropy_bits(&f.len);
        let (al, _) = entropy_bits(&f.al);
        let verbatim_al: u64 = f.al.iter().map(|&x| 3 * u64::from(x)).sum();
        let header = 4 + 3 * PRE_SYMS as u64 * 4;
        header
            + (main + len + HEADER_BITS_PER_SYMBOL * (main_used + len_used) as f32) as u64
            + verbatim_al.min(24 + al as u64)
    }

    /// Lazy parsing with hash chains: take the best match at each position
    /// unless the next position has a better one.
    fn parse_lazy(&mut self, d: &[u8], seqs: &mut Vec<Seq>) {
        let max_off = (1usize << self.order) - 3;
        if d.len() < u16::LIMIT {
            lazy_parse(&mut self.hc16, d, max_off, self.params, seqs);
        } else {
            lazy_parse(&mut self.hc32, d, max_off, self.params, seqs);
        }
    }

    /// Builds the codes for one block and writes it.
    fn write_block(&mut self, data: &[u8], seqs: &[Seq]) {
        self.freqs.clear();
        self.freqs.count(data, seqs);
        let nm = self.num_main_syms;
        let c = &mut self.codes;
        self.huff.build(
            &self.freqs.main[..nm],
            MAX_CODEWORD_LEN,
            &mut c.main_lens[..nm],
            &mut c.main_codes[..nm],
        );
        self.huff.build(
            &self.freqs.len,
            MAX_CODEWORD_LEN,
            &mut c.len_lens,
            &mut c.len_codes,
        );
        self.huff.build(
            &self.freqs.al,
            MAX_ALIGNED_LEN,
            &mut c.al_lens,
            &mut c.al_codes,
        );
        // Verbatim sends every extra offset bit as is; aligned codes the low
        // three bits of slots >= 8 and pays 24 bits for its code lengths.
        let mut aligned_gain: i64 = -24;
        for (sym, &f) in self.freqs.al.iter().enumerate() {
            aligned_gain += i64::from(f) * (3 - i64::from(c.al_lens[sym]));
        }
        let aligned = aligned_gain > 0;

        let bw = &mut self.bw;
        bw.put(
            if aligned {
                BLOCK_ALIGNED
            } else {
                BLOCK_VERBATIM
            },
            3,
        );
        let size = data.len();
        if size == DEFAULT_BLOCK_SIZE {
            bw.put(1, 1);
        } else {
            bw.put(0, 1);
            if self.order >= 16 {
                bw.put((size >> 8) as u32, 16);
                bw.put((size & 0xFF) as u32, 8);
            } else {
                bw.put(size as u32, 16);
            }
        }
        if aligned {
            for &l in &c.al_lens {
                bw.put(u32::from(l), 3);
            }
        }
        write_lens(
            bw,
            &mut self.huff,
            &self.prev_main_lens[..NUM_CHARS],
            &c.main_lens[..NUM_CHARS],
        );
        write_lens(
            bw,
            &mut self.huff,
            &self.prev_main_lens[NUM_CHARS..nm],
            &c.main_lens[NUM_CHARS..nm],
        );
        write_lens(bw, &mut self.huff, &self.prev_len_lens, &c.len_lens);
        self.prev_main_lens = c.main_lens;
        self.prev_len_lens = c.len_lens;

        let mut p = 0usize;
        for s in seqs {
            for &b in &data[p..p + s.litrun as usize] {
                bw.put(
                    u32::from(c.main_codes[b as usize]),
                    u32::from(c.main_lens[b as usize]),
                );
            }
            p += s.litrun as usize;
            if s.len == 0 {
                continue;
            }
            p += s.len as usize;
            let ms = main_sym(s.len, s.off);
            bw.put(u32::from(c.main_codes[ms]), u32::from(c.main_lens[ms]));
            if s.len as usize >= MIN_MATCH + NUM_PRIMARY_LENS {
                let ls = s.len as usize - MIN_MATCH - NUM_PRIMARY_LENS;
                bw.put(u32::from(c.len_codes[ls]), u32::from(c.len_lens[ls]));
            }
            if s.off >= NUM_REPS as u32 {
                let slot = slot_of(s.off);
                let extra = u32::from(EXTRA_BITS[slot]);
                let bits = s.off - SLOT_BASE[slot];
                if aligned && slot >= MIN_ALIGNED_SLOT {
                    bw.put(bits >> 3, extra - 3);
                    let a = (bits & 7) as usize;
                    bw.put(u32::from(c.al_codes[a]), u32::from(c.al_lens[a]));
                } else {
                    bw.put(bits, extra);
                }
            }
        }
    }
}

/// The lazy parse of `d` into `seqs`.
fn lazy_parse<P: Pos>(
    hc: &mut HashChains<P>,
    d: &[u8],
    max_off: usize,
    params: Params,
    seqs: &mut Vec<Seq>,
) {
    let n = d.len();
    let Params { depth, nice } = params;
    hc.reset(n);
    seqs.clear();
    let mut reps = [1u32; NUM_REPS];
    let mut lit_start = 0usize;
    let mut i = 0usize;
    let mut cur = best_at(hc, d, i, &reps, max_off, depth, nice);
    while i < n {
        if cur.len == 0 {
            i += 1;
            if i < n {
                cur = best_at(hc, d, i, &reps, max_off, depth, nice);
            }
            continue;
        }
        if (cur.len as usize) < nice && i + 1 < n {
            let next = best_at(hc, d, i + 1, &reps, max_off, depth, nice);
            if next.gain > cur.gain {
                i += 1;
                cur = next;
                continue;
            }
            // Take `cur`; position i+1 is already in the chains.
            for p in i + 2..i + cur.len as usize {
                hc.insert(d, p);
            }
        } else {
            for p in i + 1..i + cur.len as usize {
                hc.insert(d, p);
            }
        }
        seqs.push(Seq {
            litrun: (i - lit_start) as u32,
            len: cur.len,
            off: cur.code,
        });
        update_reps(&mut reps, cur.code, cur.real_off);
        i += cur.len as usize;
        lit_start = i;
        if i < n {
            cur = best_at(hc, d, i, &reps, max_off, depth, nice);
        }
    }
    seqs.push(Seq {
        litrun: (n - lit_start) as u32,
        len: 0,
        off: 0,
    });
}

/// Updates the repeat-offset queue as the decoder will.
#[inline(always)]
pub(crate) fn update_reps(reps: &mut [u32; NUM_REPS], code: u32, real_off: u32) {
    if code < NUM_REPS as u32 {
        reps.swap(0, code as usize);
    } else {
        reps[2] = reps[1];
        reps[1] = reps[0];
        reps[0] = real_off;
    }
}

/// A candidate match for the lazy parser.
#[derive(Clone, Copy)]
struct Cand {
    len: u32,
    /// Repeat index or formatted offset.
    code: u32,
    real_off: u32,
    /// Rough bits saved against coding the bytes as literals.
    gain: i32,
}

const NO_CAND: Cand = Cand {
    len: 0,
    code: 0,
    real_off: 0,
    gain: 0,
};

/// The two bytes at `i` (the caller checked `i + 2 <= d.len()`).
#[inline(always)]
fn two(d: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([d[i], d[i + 1]])
}

/// Best match at `i` among the repeat offsets and the hash chains.
#[inline(always)]
fn best_at<P: Pos>(
    hc: &mut HashChains<P>,
    d: &[u8],
    i: usize,
    reps: &[u32; NUM_REPS],
    max_off: usize,
    depth: u32,
    nice: usize,
) -> Cand {
    let max_len = (d.len() - i).min(MAX_MATCH);
    let mut best = NO_CAND;
    if max_len >= MIN_MATCH {
        // Cheap two-byte test first: most positions match no repeat.
        let here = two(d, i);
        for (k, &r) in reps.iter().enumerate() {
            let r = r as usize;
            if r <= i && two(d, i - r) == here {
                let l = match_len(d, i - r, i, max_len);
                if l >= MIN_MATCH {
                    let gain = 8 * l as i32 - 8 - k as i32;
                    if gain > best.gain {
                        best = Cand {
                            len: l as u32,
                            code: k as u32,
                            real_off: r as u32,
                            gain,
                        };
                    }
                }
            }
        }
    }
    let (l, off) = hc.find_and_insert(d, i, max_off, depth, nice, max_len);
    if l >= 3 && l > best.len as usize {
        let f = off as u32 + 2;
        let gain = 8 * l as i32 - 9 - i32::from(EXTRA_BITS[slot_of(f)]);
        if gain > best.gain {
            // An explicit offset equal to a repeat offset is sent as that
            // repeat (cheaper, and the queue update is the same).
            let code = reps
                .iter()
                .position(|&r| r == off as u32)
                .map_or(f, |k| k as u32);
            best = Cand {
                len: l as u32,
                code,
                real_off: off as u32,
                gain,
            };
        }
    }
    best
}

/// log2 of `x` (> 0) within 0.01: exponent plus a quadratic through the
/// mantissa's ends. Symbol costs are estimates, so this is precise enough,
/// and several times cheaper than `f32::log2`.
#[inline(always)]
pub(crate) fn log2_approx(x: f32) -> f32 {
    let bits = x.to_bits();
    let exp = ((bits >> 23) & 0xFF) as i32 - 127;
    let t = f32::from_bits((bits & 0x007F_FFFF) | 0x3F80_0000) - 1.0;
    exp as f32 + t * (1.3465 - 0.3465 * t)
}

/// Information content of symbols with frequencies `freqs`, in bits, and
/// the number of symbols used.
fn entropy_bits(freqs: &[u32]) -> (f32, u32) {
    let total: u32 = freqs.iter().sum();
    if total == 0 {
        return (0.0, 0);
    }
    let n = total as f32;
    let mut sum = 0.0f32;
    let mut used = 0;
    for &f in freqs {
        if f != 0 {
            let f = f as f32;
            sum += f * log2_approx(n / f);
            used += 1;
        }
    }
    (sum, used)
}

/// Writes a pretree and the delta-coded lengths `new` (previous: `old`).
fn write_lens(bw: &mut BitWriter, huff: &mut HuffmanBuilder, old: &[u8], new: &[u8]) {
    // Items: presym | extra << 5 | (run presym for 19) << 10.
    let mut items: Vec<u32> = Vec::with_capacity(new.len());
    let mut freq = [0u32; PRE_SYMS];
    let delta = |o: u8, n: u8| -> u32 { (u32::from(o) + 17 - u32::from(n)) % 17 };
    let mut i = 0;
    while i < new.len() {
        let v = new[i];
        let mut run = 1;
        while i + run < new.len() && new[i + run] == v {
            run += 1;
        }
        if v == 0 && run >= 20 {
            let r = run.min(51);
            items.push(18 | ((r - 20) as u32) << 5);
            freq[18] += 1;
            i += r;
        } else if v == 0 && run >= 4 {
            let r = run.min(19);
            items.push(17 | ((r - 4) as u32) << 5);
            freq[17] += 1;
            i += r;
        } else if run >= 4 {
            let r = run.min(5);
            let s = delta(old[i], v);
            items.push(19 | ((r - 4) as u32) << 5 | s << 10);
            freq[19] += 1;
            freq[s as usize] += 1;
            i += r;
        } else {
            let s = delta(old[i], v);
            items.push(s);
            freq[s as usize] += 1;
            i += 1;
        }
    }
    let mut lens = [0u8; PRE_SYMS];
    let mut codes = [0u16; PRE_SYMS];
    huff.build(&freq, MAX_PRE_LEN, &mut lens, &mut codes);
    for &l in &lens {
        bw.put(u32::from(l), 4);
    }
    for it in items {
        let s = (it & 31) as usize;
        bw.put(u32::from(codes[s]), u32::from(lens[s]));
        match s {
            17 => bw.put((it >> 5) & 15, 4),
            18 => bw.put((it >> 5) & 31, 5),
            19 => {
                bw.put((it >> 5) & 1, 1);
                let s2 = (it >> 10) as usize;
                bw.put(u32::from(codes[s2]), u32::from(lens[s2]));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lzx::LzxDecompressor;

    /// A chunk made of a verbatim block (`a`) followed by an uncompressed
    /// block (`b`), the way a compressor may store a stretch it cannot
    /// shrink. Ours never writes this, but decoders must read it.
    /// Also tells whether the header ended on a 16-bit boundary.
    fn verbatim_then_raw(a: &[u8], b: &[u8]) -> (Vec<u8>, bool) {
        let mut c = LzxCompressor::new(32768, 20);
        let mut buf = [a, b].concat();
        e8::preprocess(&mut buf);
        let mut seqs = Vec::new();
        c.parse_lazy(&buf[..a.len()], &mut seqs);
        let mut reps = [1u32; NUM_REPS];
        for s in &seqs {
            if s.len != 0 {
                update_reps(&mut reps, s.off, s.off.wrapping_sub(2));
            }
        }
        c.write_block(&buf[..a.len()], &seqs);
        c.bw.put(BLOCK_UNCOMPRESSED, 3);
        c.bw.put(0, 1);
        c.bw.put(b.len() as u32, 16);
        // Align: when already on a 16-bit boundary a whole padding word
        // follows.
        let on_boundary = c.bw.cnt % 16 == 0;
        if on_boundary {
            c.bw.put(0, 16);
        }
        c.bw.flush();
        let mut out = std::mem::take(&mut c.bw.out);
        for r in reps {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out.extend_from_slice(&buf[a.len()..]);
        if b.len() % 2 == 1 {
            out.push(0);
        }
        (out, on_boundary)
    }

    #[test]
    fn log2_approx_is_within_a_hundredth() {
        for i in 1..200_000u32 {
            let x = i as f32 / 7.0;
            let e = (log2_approx(x) - x.log2()).abs();
            assert!(e < 0.01, "{x}: {e}");
        }
    }

    /// Compresses `d` at `level`, checks that ours and wimlib's decoders
    /// give `d` back, and returns the (type, size) of each block.
    fn blocks_of(d: &[u8], level: u32) -> Vec<(u32, usize)> {
        let mut c = LzxCompressor::new(32768, level);
        let mut z = vec![0u8; d.len()];
        let n = c.compress_chunk(d, &mut z).expect("compresses");
        let mut w =
            wimlib_oracle::WimlibDecompressor::new(wimlib_oracle::Ctype::Lzx, 32768).unwrap();
        assert_eq!(w.decompress(&z[..n], d.len()).as_deref(), Some(d));
        let mut ours = LzxDecompressor::new(32768);
        let mut out = vec![0u8; d.len()];
        ours.decompress_chunk(&z[..n], &mut out).expect("decodes");
        assert_eq!(out, d);
        ours.blocks.clone()
    }

    /// Text made of random words from a small vocabulary.
    fn words(n: usize, seed: u32) -> Vec<u8> {
        let vocab = [
            "the ",
            "block ",
            "of ",
            "data ",
            "compress ",
            "window ",
            "and ",
            "Huffman ",
            "code ",
            "match ",
            "offset ",
            "length ",
            "literal ",
            "tree ",
            "\n",
        ];
        let mut x = seed;
        let mut v = Vec::new();
        while v.len() < n {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            v.extend_from_slice(vocab[(x >> 16) as usize % vocab.len()].as_bytes());
        }
        v.truncate(n);
        v
    }

    /// Text, then records of binary numbers: the near-optimal levels give
    /// each part its own block (and codes); a chunk of one kind stays one
    /// block; the quick levels always write one block.
    #[test]
    fn chunks_are_split_where_the_data_changes() {
        let mut x = 99u32;
        let mut binary = Vec::new();
        while binary.len() < 16384 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            binary.extend_from_slice(&[(x >> 24) as u8, 0, 0, 0x80, (x >> 16) as u8 & 7, 0xFF]);
        }
        binary.truncate(16384);
        let mixed = [words(16384, 1), binary].concat();
        let blocks = blocks_of(&mixed, 50);
        assert!(blocks.len() >= 2, "{blocks:?}");
        assert_eq!(blocks.iter().map(|b| b.1).sum::<usize>(), mixed.len());
        assert_eq!(blocks_of(&words(32768, 2), 50).len(), 1);
        assert_eq!(blocks_of(&mixed, 20).len(), 1);
    }

    #[test]
    fn uncompressed_block_after_a_compressed_one() {
        let text =
            b"an example of text, an example of text with E8\xE8\x10\x00\x00\x00 and more text ";
        let mut boundary_cases = [0; 2];
        for b_len in [1usize, 2, 501, 4000] {
            let b: Vec<u8> = (0..b_len).map(|i| (i * 7 + 3) as u8 ^ 0xE8).collect();
            for a_len in 3000..3040 {
                let a: Vec<u8> = text.iter().cycle().take(a_len).copied().collect();
                let (z, on_boundary) = verbatim_then_raw(&a, &b);
                boundary_cases[usize::from(on_boundary)] += 1;
                let mut d = LzxDecompressor::new(32768);
                let mut out = vec![0u8; a.len() + b.len()];
                d.decompress_chunk(&z, &mut out).expect("decodes");
                assert_eq!(&out[..a.len()], &a[..]);
                assert_eq!(&out[a.len()..], &b[..]);
                let mut w =
                    wimlib_oracle::WimlibDecompressor::new(wimlib_oracle::Ctype::Lzx, 32768)
                        .unwrap();
                // wimlib, the reference decoder, reads the layout the same way.
                assert_eq!(
                    w.decompress(&z, a.len() + b.len()).as_deref(),
                    Some(&out[..])
                );
            }
        }
        assert!(
            boundary_cases[0] > 0 && boundary_cases[1] > 0,
            "{boundary_cases:?}"
        );
    }
}

/// Analysis (not a check): block counts and types of tasq's and wimlib's
/// output per 32 KiB chunk of a saved corpus, and where the size gap lies.
/// `LZX_CORPUS=/tmp/lzx3-corpus.bin cargo test -p tasq-codecs --release
/// --lib block_stats -- --ignored --nocapture`
#[cfg(test)]
mod block_stats {
    use super::*;
    use crate::lzx::LzxDecompressor;

    #[test]
    #[ignore]
    fn block_stats() {
        let path = std::env::var("LZX_CORPUS").unwrap_or("/tmp/lzx3-corpus.bin".into());
        let corpus = std::fs::read(&path).expect("corpus");
        let level = std::env::var("LZX_LEVEL")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(50);
        let mut ours = LzxCompressor::new(32768, level);
        let mut w =
            wimlib_oracle::WimlibCompressor::new(wimlib_oracle::Ctype::Lzx, 32768, level).unwrap();
        let mut d = LzxDecompressor::new(32768);
        let mut buf = vec![0u8; 32768];
        let mut out = vec![0u8; 32768];
        // By wimlib's block count: chunks, tasq bytes, wimlib bytes.
        let mut by_count = [(0usize, 0usize, 0usize); 8];
        let mut types = [[0usize; 4]; 2];
        for c in corpus.chunks(32768) {
            let o = ours.compress_chunk(c, &mut buf).map(|n| buf[..n].to_vec());
            let wz = w.compress(c);
            let (Some(o), Some(wz)) = (o, wz) else {
                continue;
            };
            d.decompress_chunk(&o, &mut out[..c.len()]).unwrap();
            for b in &d.blocks {
                types[0][b.0 as usize] += 1;
            }
            d.decompress_chunk(&wz, &mut out[..c.len()]).unwrap();
            for b in &d.blocks {
                types[1][b.0 as usize] += 1;
            }
            let e = &mut by_count[d.blocks.len().min(7)];
            e.0 += 1;
            e.1 += o.len();
            e.2 += wz.len();
        }
        println!(
            "block types [-, verbatim, aligned, raw]: tasq {:?} wimlib {:?}",
            types[0], types[1]
        );
        for (k, e) in by_count.iter().enumerate() {
            if e.0 > 0 {
                println!(
                    "wimlib {k} block(s): {} chunks, tasq {} B, wimlib {} B, ratio {:.4}",
                    e.0,
                    e.1,
                    e.2,
                    e.1 as f64 / e.2 as f64
                );
            }
        }
    }
}
