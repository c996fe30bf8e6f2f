//! The two entropy-coded streams of an LZMS chunk and the state both ends
//! share.
//!
//! A chunk is read in 16-bit little-endian units from both ends: the range
//! coder's stream (item-type decisions) runs forwards from the start, the
//! Huffman/verbatim bitstream runs backwards from the end. Within a unit the
//! first bit is the high-order one. Both readers supply zero bits once their
//! side runs out, as Microsoft's and wimlib's decoders do; the item loop is
//! bounded by the output size, so that cannot loop forever.

/// Probabilities are n/64.
const PROB_BITS: u32 = 6;
const PROB_DENOM: u32 = 1 << PROB_BITS;

/// Adaptive probability of a 0 bit: the number of zeros among the last 64
/// bits coded with this entry.
#[derive(Clone, Copy)]
pub struct Prob {
    zeros: u32,
    /// The last 64 bits, newest in the low bit.
    recent: u64,
}

impl Prob {
    /// Initial history: 32 zeros then alternating 0/1, so 48/64 zeros.
    const INITIAL: Prob = Prob {
        zeros: 48,
        recent: 0x5555_5555,
    };

    /// The usable probability: 0/64 and 64/64 are nudged inwards.
    #[inline]
    fn get(self) -> u32 {
        self.zeros.clamp(1, PROB_DENOM - 1)
    }

    #[inline]
    fn update(&mut self, bit: u32) {
        let oldest = (self.recent >> 63) as u32;
        // Dropping a 1 adds a zero to the window, adding a 1 removes one.
        self.zeros = self.zeros + oldest - bit;
        self.recent = (self.recent << 1) | u64::from(bit);
    }
}

/// One binary decision class: the last few bits coded in it select one of
/// `N` probability entries.
#[derive(Clone)]
pub struct Model<const N: usize> {
    state: usize,
    probs: [Prob; N],
}

impl<const N: usize> Model<N> {
    pub fn new() -> Self {
        Model {
            state: 0,
            probs: [Prob::INITIAL; N],
        }
    }

    /// The probability (of a 0) for the next bit, and records `bit`.
    #[inline]
    fn take(&mut self, bit: u32) -> u32 {
        let e = &mut self.probs[self.state];
        let p = e.get();
        e.update(bit);
        self.state = ((self.state << 1) | bit as usize) & (N - 1);
        p
    }

    /// The current context (the last bits coded, newest lowest).
    #[inline]
    pub fn state(&self) -> u8 {
        self.state as u8
    }

    /// The probability (n/64) of a 0 in context `state`.
    #[inline]
    pub fn prob0_at(&self, state: u8) -> u32 {
        self.probs[usize::from(state) & (N - 1)].get()
    }

    /// The context after coding `bit` in context `state`.
    #[inline]
    pub fn next_state(state: u8, bit: u32) -> u8 {
        (((usize::from(state) << 1) | bit as usize) & (N - 1)) as u8
    }
}

/// Forward reader of range-coded decisions.
pub struct RangeDecoder<'a> {
    data: &'a [u8],
    pos: usize,
    range: u32,
    code: u32,
}

#[inline]
fn le16(data: &[u8], pos: usize) -> u32 {
    match data.get(pos..pos + 2) {
        Some(b) => u32::from(u16::from_le_bytes([b[0], b[1]])),
        None => 0,
    }
}

impl<'a> RangeDecoder<'a> {
    /// `data` must hold at least 4 bytes (the caller checks).
    pub fn new(data: &'a [u8]) -> Self {
        RangeDecoder {
            data,
            pos: 4,
            range: u32::MAX,
            code: (le16(data, 0) << 16) | le16(data, 2),
        }
    }

    #[inline]
    pub fn bit<const N: usize>(&mut self, m: &mut Model<N>) -> u32 {
        if self.range < 0x1_0000 {
            self.range <<= 16;
            self.code <<= 16;
            if self.pos < self.data.len() {
                self.code |= le16(self.data, self.pos);
                self.pos += 2;
            }
        }
        let e = &m.probs[m.state];
        let bound = (self.range >> PROB_BITS) * e.get();
        let bit = if self.code < bound {
            self.range = bound;
            0
        } else {
            self.range -= bound;
            self.code -= bound;
            1
        };
        m.take(bit);
        bit
    }
}

/// Forward writer of range-coded decisions (LZMA-style carry handling with
/// 16-bit units).
pub struct RangeEncoder {
    /// Low end of the interval: 32 bits plus a carry bit.
    low: u64,
    range: u32,
    /// The last unit not yet written (a carry may still change it) and the
    /// number of pending units (`cache` followed by 0xFFFF units).
    cache: u16,
    pending: u32,
    /// The very first unit is a placeholder the decoder never sees.
    started: bool,
    pub out: Vec<u8>,
}

impl RangeEncoder {
    pub fn new() -> Self {
        RangeEncoder {
            low: 0,
            range: u32::MAX,
            cache: 0,
            pending: 1,
            started: false,
            out: Vec::new(),
        }
    }

    pub fn reset(&mut self) {
        let out = std::mem::take(&mut self.out);
        *self = RangeEncoder::new();
        self.out = out;
        self.out.clear();
    }

    fn shift_low(&mut self) {
        let top_is_ffff = (self.low as u32) >= 0xFFFF_0000;
        let carried = self.low >> 32 != 0;
        if !top_is_ffff || carried {
            let carry = (self.low >> 32) as u16;
            let mut unit = self.cache;
            while self.pending > 0 {
                if self.started {
                    self.out
                        .extend_from_slice(&unit.wrapping_add(carry).to_le_bytes());
                }
                self.started = true;
                unit = 0xFFFF;
                self.pending -= 1;
            }
            self.cache = (self.low >> 16) as u16;
        }
        self.pending += 1;
        self.low = (self.low & 0xFFFF) << 16;
    }

    #[inline]
    pub fn bit<const N: usize>(&mut self, m: &mut Model<N>, bit: u32) {
        let p = m.take(bit);
        if self.range <= 0xFFFF {
            self.range <<= 16;
            self.shift_low();
        }
        let bound = (self.range >> PROB_BITS) * p;
        if bit == 0 {
            self.range = bound;
        } else {
            self.low += u64::from(bound);
            self.range -= bound;
        }
    }

    /// Pushes out every unit the decoder needs.
    pub fn finish(&mut self) {
        for _ in 0..4 {
            self.shift_low();
        }
    }
}

/// Backward writer: units are collected in writing order and reversed into
/// place when the chunk is assembled.
pub struct BitWriter {
    buf: u64,
    count: u32,
    pub units: Vec<u16>,
}

impl BitWriter {
    pub fn new() -> Self {
        BitWriter {
            buf: 0,
            count: 0,
            units: Vec::new(),
        }
    }

    pub fn reset(&mut self) {
        self.buf = 0;
        self.count = 0;
        self.units.clear();
    }

    /// Writes the low `n` (0..=32) bits of `bits`, high bit first.
    #[inline]
    pub fn write(&mut self, bits: u32, n: u32) {
        if n == 0 {
            return;
        }
        self.buf = (self.buf << n) | u64::from(bits);
        self.count += n;
        while self.count >= 16 {
            self.count -= 16;
            self.units.push((self.buf >> self.count) as u16);
        }
    }

    pub fn finish(&mut self) {
        if self.count > 0 {
            self.units.push((self.buf << (16 - self.count)) as u16);
            self.count = 0;
        }
    }

    /// Bytes written so far (for the early give-up check).
    pub fn len_bytes(&self) -> usize {
        self.units.len() * 2
    }
}

/// The repeat-offset queue of LZ matches (u32 offsets) or delta matches
/// ((power, raw offset) pairs as u64). Three entries are addressable plus one
/// overflow slot, because a source used by an item only reaches the front
/// after the *next* item: right after a match of the same kind, entry 0 is
/// that pending source and index `i` names entry `i + 1`.
#[derive(Clone, Copy)]
pub struct RepQueue<T: Copy> {
    q: [T; NUM_QUEUE],
}

const NUM_QUEUE: usize = super::tables::NUM_REPS + 1;

impl<T: Copy> RepQueue<T> {
    pub fn new(init: [T; NUM_QUEUE]) -> Self {
        RepQueue { q: init }
    }

    /// The source repeat index `idx` (< 3) names; `pending` says whether the
    /// previous item was a match of this queue's kind.
    #[inline]
    pub fn get(&self, idx: usize, pending: bool) -> T {
        self.q[idx + usize::from(pending)]
    }

    /// Takes repeat `idx`: it leaves its slot (later entries keep their
    /// places, earlier ones move down) and becomes the pending front entry.
    #[inline]
    pub fn take(&mut self, idx: usize, pending: bool) -> T {
        let k = idx + usize::from(pending);
        let v = self.q[k];
        self.q[k] = self.q[idx];
        let mut j = idx;
        while j > 0 {
            self.q[j] = self.q[j - 1];
            j -= 1;
        }
        self.q[0] = v;
        v
    }

    /// An explicitly coded source goes to the front, everything moves back.
    #[inline]
    pub fn push(&mut self, v: T) {
        self.q.copy_within(0..NUM_QUEUE - 1, 1);
        self.q[0] = v;
    }
}

/// Item kinds, remembered for the delayed queue updates.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Prev {
    Literal,
    Lz,
    Delta,
}

/// All range-coder decision classes of a chunk.
pub struct Models {
    pub main: Model<{ super::tables::NUM_MAIN_STATES }>,
    pub is_delta: Model<{ super::tables::NUM_MATCH_STATES }>,
    pub lz_is_rep: Model<{ super::tables::NUM_LZ_STATES }>,
    pub lz_rep: [Model<{ super::tables::NUM_LZ_REP_STATES }>; 2],
    pub delta_is_rep: Model<{ super::tables::NUM_DELTA_STATES }>,
    pub delta_rep: [Model<{ super::tables::NUM_DELTA_REP_STATES }>; 2],
}

impl Models {
    pub fn new() -> Self {
        Models {
            main: Model::new(),
            is_delta: Model::new(),
            lz_is_rep: Model::new(),
            lz_rep: [Model::new(), Model::new()],
            delta_is_rep: Model::new(),
            delta_rep: [Model::new(), Model::new()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_coder_round_trips_skewed_and_random_bits() {
        let mut bits = Vec::new();
        let mut x = 12345u32;
        for i in 0..20000u32 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            // Long runs of zeros then noise, so probabilities hit the clamps.
            bits.push(if i < 5000 {
                0
            } else if i < 9000 {
                1
            } else {
                (x >> 16) & 1
            });
        }
        let mut enc = RangeEncoder::new();
        let mut m = Model::<16>::new();
        for &b in &bits {
            enc.bit(&mut m, b);
        }
        enc.finish();
        let mut dec = RangeDecoder::new(&enc.out);
        let mut m = Model::<16>::new();
        for (i, &b) in bits.iter().enumerate() {
            assert_eq!(dec.bit(&mut m), b, "bit {i}");
        }
    }

    #[test]
    fn bitstream_round_trips_backwards() {
        let mut w = BitWriter::new();
        let items: Vec<(u32, u32)> = (0..500u32)
            .map(|i| (i * 7919 % (1 << (i % 31)), i % 31))
            .collect();
        for &(v, n) in &items {
            w.write(v, n);
        }
        w.finish();
        let bytes: Vec<u8> = w.units.iter().rev().flat_map(|u| u.to_le_bytes()).collect();
        let mut r = super::super::decompress::BitReader::new(&bytes);
        for &(v, n) in &items {
            assert_eq!(r.read(n), v);
        }
        // Past the end the reader yields zeros.
        assert_eq!(r.read(32), 0);
    }

    #[test]
    fn rep_queue_delays_the_front_insertion() {
        let mut q = RepQueue::new([1u32, 2, 3, 4]);
        q.push(100); // explicit match: pending at the front
                     // Right after it, repeat 0 is the old front (1), not 100.
        assert_eq!(q.get(0, true), 1);
        assert_eq!(q.take(1, true), 2);
        // After a literal the pending entries are visible in LRU order.
        assert_eq!(q.get(0, false), 2);
        assert_eq!(q.get(1, false), 100);
        assert_eq!(q.get(2, false), 1);
    }
}
