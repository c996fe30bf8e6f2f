//! Table-driven canonical Huffman decoding.
//!
//! A code is decoded with one look-up in a root table indexed by the next
//! `root_bits` bits of the stream; codewords longer than that point to a
//! second-level table indexed by the following `16 - root_bits` bits. Every
//! second-level table has that fixed size, which keeps construction simple
//! and cheap (codes are rebuilt for every block).
//!
//! Only complete codes are accepted (the Kraft sum must be exactly one), as
//! real encoders produce; an all-zero code is accepted as "empty", and any
//! attempt to decode from it is reported as corruption.

use super::tables::MAX_CODEWORD_LEN;

/// Entry layout: `symbol << 16 | kind << 8 | length`. `kind` 0 = symbol,
/// 1 = pointer to a subtable (symbol field = subtable start).
const KIND_SUB: u32 = 1 << 8;
/// What an empty code decodes to: an impossible symbol, no bits consumed.
/// Callers reject symbols beyond their alphabet, so decoding from an empty
/// code is reported as corruption.
pub const NO_SYMBOL: u32 = 0xFFFF;
const EMPTY: u32 = NO_SYMBOL << 16;
/// Root tables are indexed by at most this many bits.
const MAX_ROOT_BITS: u32 = 11;

pub struct DecodeTable<const RB: u32> {
    /// Fixed size so that any index of `RB` bits is in bounds; only the
    /// first `2^RB` entries are used. Inline, not boxed: the decoder then
    /// reaches every table from one pointer to itself, which leaves its
    /// hot loop registers it otherwise spilled (with the second level out
    /// of line, see `decode_sub`: LZX decoding 121.5 M → 116.8 M
    /// instructions a round, 4 MB corpus).
    root: [u32; 1 << MAX_ROOT_BITS],
    sub: Vec<u32>,
    empty: bool,
}

/// Why a code could not be built.
#[derive(Debug, PartialEq, Eq)]
pub struct BadCode;

impl<const RB: u32> DecodeTable<RB> {
    /// A table whose root is indexed by `RB` bits (a constant, so that
    /// decoding shifts by an immediate).
    pub fn new() -> Self {
        const { assert!(RB <= MAX_ROOT_BITS) };
        Self {
            root: [EMPTY; 1 << MAX_ROOT_BITS],
            sub: Vec::new(),
            empty: true,
        }
    }

    /// True when the last built code has no symbols.
    pub fn is_empty(&self) -> bool {
        self.empty
    }

    /// Builds the table for the codeword lengths `lens` (each at most 16).
    ///
    /// One pass in symbol order: canonical codes of one length are given
    /// to its symbols in increasing order, so each symbol takes the next
    /// code of its length (no sorting). Root entries are written once each;
    /// second-level tables are allocated as their prefixes first appear.
    /// Measured on the chunk_decompress bench with small chunks (DEC_SMALL,
    /// where tables weigh most): table building 17 M -> 14 M instructions
    /// a round (4 MB corpus).
    pub fn build(&mut self, lens: &[u8]) -> Result<(), BadCode> {
        let rb = RB;
        let sub_bits = MAX_CODEWORD_LEN - rb;
        // Lengths index a 32-entry array (masked, so no bounds test in the
        // loop); any length over 16 is refused after counting.
        let mut count = [0u32; 32];
        let mut max = 0u8;
        for &l in lens {
            count[usize::from(l & 31)] += 1;
            max = max.max(l);
        }
        if u32::from(max) > MAX_CODEWORD_LEN {
            return Err(BadCode);
        }
        // Kraft sum in units of 2^-16; first code of each length,
        // left-aligned to 16 bits.
        let mut kraft: u64 = 0;
        let mut next = [0u32; MAX_CODEWORD_LEN as usize + 1];
        for l in 1..=MAX_CODEWORD_LEN as usize {
            next[l] = kraft as u32;
            kraft += u64::from(count[l]) << (MAX_CODEWORD_LEN as usize - l);
        }
        self.sub.clear();
        self.empty = kraft == 0;
        if kraft == 0 {
            self.root.fill(EMPTY);
            return Ok(());
        }
        if kraft != 1 << MAX_CODEWORD_LEN {
            self.empty = true;
            self.root.fill(EMPTY);
            return Err(BadCode);
        }
        // A complete code covers every root entry, so none stays stale.
        // Prefixes that already have a second-level table (this build).
        let mut has_sub = [0u64; (1 << MAX_ROOT_BITS) / 64];
        for (sym, &l) in lens.iter().enumerate() {
            if l == 0 {
                continue;
            }
            let len = u32::from(l);
            let code = next[l as usize];
            next[l as usize] = code + (1 << (MAX_CODEWORD_LEN - len));
            if len <= rb {
                let first = (code >> sub_bits) as usize;
                let e = ((sym as u32) << 16) | len;
                let root = &mut self.root[first..];
                // The range is 2^(rb - len) entries; short ones as fixed
                // stores (a fill of a run-time length set up a vector loop
                // for every symbol).
                match rb - len {
                    0 => root[0] = e,
                    1 => root[..2].copy_from_slice(&[e; 2]),
                    2 => root[..4].copy_from_slice(&[e; 4]),
                    k => root[..1 << k].fill(e),
                }
            } else {
                let prefix = (code >> sub_bits) as usize;
                let (w, bit) = (prefix / 64, 1u64 << (prefix % 64));
                let sub_start = if has_sub[w] & bit != 0 {
                    self.root[prefix] >> 16
                } else {
                    has_sub[w] |= bit;
                    let start = self.sub.len() as u32;
                    self.root[prefix] = (start << 16) | KIND_SUB | rb;
                    self.sub.resize(self.sub.len() + (1 << sub_bits), EMPTY);
                    start
                };
                let span = 1usize << (MAX_CODEWORD_LEN - len);
                let first = (sub_start + (code & ((1 << sub_bits) - 1))) as usize;
                let e = ((sym as u32) << 16) | (len - rb);
                self.sub[first..first + span].fill(e);
            }
        }
        Ok(())
    }

    /// Decodes one symbol from the bits at the top of `bits` (most
    /// significant first; at least 16 must be valid). Returns
    /// `(symbol, bits used)`; an empty code gives `(NO_SYMBOL, 0)`.
    #[inline(always)]
    pub fn decode(&self, bits: u64) -> (u32, u32) {
        let rb = RB;
        // Fewer than 2^MAX_ROOT_BITS values: always inside the root.
        let e = self.root[(bits >> (64 - rb)) as usize];
        if e & KIND_SUB == 0 {
            return (e >> 16, e & 0xFF);
        }
        self.decode_sub(e, bits)
    }

    /// The second level of [`Self::decode`] (a few percent of symbols):
    /// out of line, so that the callers' loops keep their registers.
    #[cold]
    #[inline(never)]
    fn decode_sub(&self, e: u32, bits: u64) -> (u32, u32) {
        let rb = RB;
        let sub_bits = MAX_CODEWORD_LEN - rb;
        let bits16 = (bits >> 48) as u32;
        let si = ((e >> 16) + (bits16 & ((1 << sub_bits) - 1))) as usize;
        let e2 = self.sub.get(si).copied().unwrap_or(EMPTY);
        (e2 >> 16, rb + (e2 & 0xFF))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl<const RB: u32> DecodeTable<RB> {
        /// Decodes from 16 bits given in the low half of a `u32`.
        fn decode16(&self, bits16: u32) -> (u32, u32) {
            self.decode(u64::from(bits16) << 48)
        }
    }

    #[test]
    fn decodes_a_small_canonical_code() {
        // lens: A=2 B=1 C=3 D=3 -> B=0, A=10, C=110, D=111
        let mut t = DecodeTable::<2>::new();
        t.build(&[2, 1, 3, 3]).unwrap();
        assert_eq!(t.decode16(0b0 << 15), (1, 1));
        assert_eq!(t.decode16(0b10 << 14), (0, 2));
        assert_eq!(t.decode16(0b110 << 13), (2, 3));
        assert_eq!(t.decode16(0b111 << 13 | 0x1FFF), (3, 3));
    }

    #[test]
    fn long_codes_go_through_subtables() {
        // A code with lengths 1,2,...,15,16,16.
        let mut lens: Vec<u8> = (1..=16).collect();
        lens.push(16);
        let mut t = DecodeTable::<4>::new();
        t.build(&lens).unwrap();
        // Symbol k (len k+1) has code 1...10 (k ones then a zero).
        for k in 0..15u32 {
            let code = ((1u32 << k) - 1) << 1; // k ones, then 0, len k+1
            let bits = code << (16 - (k + 1));
            assert_eq!(t.decode16(bits), (k, k + 1), "k={k}");
        }
        assert_eq!(t.decode16(0xFFFE), (15, 16));
        assert_eq!(t.decode16(0xFFFF), (16, 16));
    }

    #[test]
    fn rejects_incomplete_and_oversubscribed_codes() {
        let mut t = DecodeTable::<4>::new();
        assert_eq!(t.build(&[1, 0, 0]), Err(BadCode));
        assert_eq!(t.build(&[1, 1, 1]), Err(BadCode));
        assert_eq!(t.build(&[17, 1]), Err(BadCode));
        assert_eq!(t.build(&[0, 0, 0]), Ok(()));
        assert!(t.is_empty());
        assert_eq!(t.decode16(0), (NO_SYMBOL, 0));
    }
}
