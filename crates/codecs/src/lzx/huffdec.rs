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
/// 1 = pointer to a subtable (symbol field = subtable start), 2 = invalid.
const KIND_SUB: u32 = 1 << 8;
const INVALID: u32 = 2 << 8;

pub struct DecodeTable {
    root_bits: u32,
    entries: Vec<u32>,
    /// Scratch: symbols sorted by (length, symbol).
    sorted: Vec<u16>,
}

/// Why a code could not be built.
#[derive(Debug, PartialEq, Eq)]
pub struct BadCode;

impl DecodeTable {
    pub fn new(root_bits: u32) -> Self {
        debug_assert!(root_bits <= MAX_CODEWORD_LEN);
        Self {
            root_bits,
            entries: vec![INVALID; 1 << root_bits],
            sorted: Vec::new(),
        }
    }

    /// Builds the table for the codeword lengths `lens` (each at most 16).
    pub fn build(&mut self, lens: &[u8]) -> Result<(), BadCode> {
        let rb = self.root_bits;
        let sub_bits = MAX_CODEWORD_LEN - rb;
        let mut count = [0u32; MAX_CODEWORD_LEN as usize + 1];
        for &l in lens {
            if u32::from(l) > MAX_CODEWORD_LEN {
                return Err(BadCode);
            }
            count[l as usize] += 1;
        }
        count[0] = 0;
        // Kraft sum in units of 2^-16.
        let mut kraft: u64 = 0;
        for (l, &c) in count.iter().enumerate().skip(1) {
            kraft += u64::from(c) << (MAX_CODEWORD_LEN as usize - l);
        }
        self.entries.clear();
        self.entries.resize(1 << rb, INVALID);
        if kraft == 0 {
            return Ok(()); // empty code: every entry stays invalid
        }
        if kraft != 1 << MAX_CODEWORD_LEN {
            return Err(BadCode);
        }
        // Sort symbols canonically with a counting sort.
        let mut offs = [0u32; MAX_CODEWORD_LEN as usize + 2];
        for l in 1..=MAX_CODEWORD_LEN as usize {
            offs[l + 1] = offs[l] + count[l];
        }
        self.sorted.clear();
        self.sorted
            .resize(offs[MAX_CODEWORD_LEN as usize + 1] as usize, 0);
        for (sym, &l) in lens.iter().enumerate() {
            if l != 0 {
                let o = &mut offs[l as usize];
                self.sorted[*o as usize] = sym as u16;
                *o += 1;
            }
        }
        // Assign canonical codes in order; `code` is left-aligned to 16 bits.
        let mut code: u32 = 0;
        let mut cur_prefix = u32::MAX;
        let mut sub_start = 0u32;
        for &sym in &self.sorted {
            let len = u32::from(lens[sym as usize]);
            let span = 1u32 << (MAX_CODEWORD_LEN - len);
            if len <= rb {
                let first = (code >> sub_bits) as usize;
                let n = (span >> sub_bits) as usize;
                let e = (u32::from(sym) << 16) | len;
                self.entries[first..first + n].fill(e);
            } else {
                let prefix = code >> sub_bits;
                if prefix != cur_prefix {
                    cur_prefix = prefix;
                    sub_start = self.entries.len() as u32;
                    self.entries[prefix as usize] = (sub_start << 16) | KIND_SUB | rb;
                    self.entries
                        .resize(self.entries.len() + (1 << sub_bits), INVALID);
                }
                let low = code & ((1 << sub_bits) - 1);
                let first = (sub_start + low) as usize;
                let e = (u32::from(sym) << 16) | (len - rb);
                self.entries[first..first + span as usize].fill(e);
            }
            code += span;
        }
        Ok(())
    }

    /// Decodes one symbol from the next 16 bits of the stream (`bits16`,
    /// most significant first). Returns `(symbol, bits used)`; `None` when
    /// the code is empty.
    #[inline(always)]
    pub fn decode(&self, bits16: u32) -> Option<(u32, u32)> {
        let rb = self.root_bits;
        let root = (bits16 >> (MAX_CODEWORD_LEN - rb)) as usize;
        // The root table has exactly 2^rb entries, so `root` is in bounds;
        // `get` keeps the compiler from having to prove it.
        let mut e = *self.entries.get(root)?;
        let mut used = 0;
        if e & KIND_SUB != 0 {
            let sub_bits = MAX_CODEWORD_LEN - rb;
            let idx = (e >> 16) + (bits16 & ((1 << sub_bits) - 1));
            e = *self.entries.get(idx as usize)?;
            used = rb;
        }
        if e & INVALID != 0 {
            return None;
        }
        Some((e >> 16, used + (e & 0xFF)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_small_canonical_code() {
        // lens: A=2 B=1 C=3 D=3 -> B=0, A=10, C=110, D=111
        let mut t = DecodeTable::new(2);
        t.build(&[2, 1, 3, 3]).unwrap();
        assert_eq!(t.decode(0b0 << 15), Some((1, 1)));
        assert_eq!(t.decode(0b10 << 14), Some((0, 2)));
        assert_eq!(t.decode(0b110 << 13), Some((2, 3)));
        assert_eq!(t.decode(0b111 << 13 | 0x1FFF), Some((3, 3)));
    }

    #[test]
    fn long_codes_go_through_subtables() {
        // A code with lengths 1,2,...,15,16,16.
        let mut lens: Vec<u8> = (1..=16).collect();
        lens.push(16);
        let mut t = DecodeTable::new(4);
        t.build(&lens).unwrap();
        // Symbol k (len k+1) has code 1...10 (k ones then a zero).
        for k in 0..15u32 {
            let code = ((1u32 << k) - 1) << 1; // k ones, then 0, len k+1
            let bits = code << (16 - (k + 1));
            assert_eq!(t.decode(bits), Some((k, k + 1)), "k={k}");
        }
        assert_eq!(t.decode(0xFFFE), Some((15, 16)));
        assert_eq!(t.decode(0xFFFF), Some((16, 16)));
    }

    #[test]
    fn rejects_incomplete_and_oversubscribed_codes() {
        let mut t = DecodeTable::new(4);
        assert_eq!(t.build(&[1, 0, 0]), Err(BadCode));
        assert_eq!(t.build(&[1, 1, 1]), Err(BadCode));
        assert_eq!(t.build(&[17, 1]), Err(BadCode));
        assert_eq!(t.build(&[0, 0, 0]), Ok(()));
        assert_eq!(t.decode(0), None);
    }
}
