//! Canonical Huffman codes for XPRESS: building a length-limited code from
//! symbol frequencies (compressor) and a lookup table from codeword lengths
//! (decompressor).

use super::{MAX_CODEWORD_LEN, NUM_SYMBOLS};

// ---------------------------------------------------------------------------
// Encoder side
// ---------------------------------------------------------------------------

/// Computes codeword lengths (at most [`MAX_CODEWORD_LEN`]) for `freqs` and
/// the matching canonical codewords (MSB-first, right-aligned).
///
/// Symbols with frequency 0 get length 0. The code is always complete when
/// at least one symbol is used: a lone used symbol is paired with a dummy
/// one, both getting length 1, so that decoders requiring a complete code
/// (wimlib's does) accept it.
pub(crate) fn make_code(
    freqs: &[u32; NUM_SYMBOLS],
    lens: &mut [u8; NUM_SYMBOLS],
    codewords: &mut [u16; NUM_SYMBOLS],
) {
    *lens = [0; NUM_SYMBOLS];
    // Used symbols sorted by (frequency, symbol), packed as freq << 9 | sym
    // so one integer sort does it; in arrays on the stack, not the heap
    // (this runs once per chunk).
    let mut keys = [0u64; NUM_SYMBOLS];
    let mut n = 0;
    for (sym, &f) in freqs.iter().enumerate() {
        if f != 0 {
            keys[n] = ((f as u64) << 9) | sym as u64;
            n += 1;
        }
    }
    let sorted = &mut keys[..n];
    match n {
        0 => {}
        1 => {
            let sym = (sorted[0] & 0x1FF) as usize;
            lens[sym] = 1;
            lens[if sym == 0 { 1 } else { 0 }] = 1;
        }
        n => {
            sorted.sort_unstable();
            let mut weights = [0u32; NUM_SYMBOLS];
            let a = &mut weights[..n];
            for (w, &v) in a.iter_mut().zip(sorted.iter()) {
                *w = (v >> 9) as u32;
            }
            minimum_redundancy(a);
            // a[i] is now the length of the i-th least frequent symbol; the
            // lengths never increase with i. Count them, clamping to the
            // limit, then repair the Kraft sum if the clamp broke it.
            let mut count = [0u32; MAX_CODEWORD_LEN + 1];
            for &l in a.iter() {
                count[(l as usize).min(MAX_CODEWORD_LEN)] += 1;
            }
            limit_lengths(&mut count);
            // Longest codes go to the least frequent symbols.
            let mut i = 0;
            for len in (1..=MAX_CODEWORD_LEN).rev() {
                for _ in 0..count[len] {
                    lens[(sorted[i] & 0x1FF) as usize] = len as u8;
                    i += 1;
                }
            }
            debug_assert_eq!(i, n);
        }
    }
    canonical_codewords(lens, codewords);
}

/// Moffat & Katajainen's in-place minimum-redundancy code computation.
/// Input: `a` holds at least two frequencies sorted ascending. Output: `a[i]`
/// is the codeword length of the symbol whose frequency was `a[i]`.
fn minimum_redundancy(a: &mut [u32]) {
    let n = a.len();
    debug_assert!(n >= 2);
    // Phase 1: build the tree; internal nodes overwrite the array, each
    // holding its weight until it is used and then its parent's index.
    a[0] += a[1];
    let mut root = 0usize;
    let mut leaf = 2usize;
    for next in 1..n - 1 {
        // First child.
        if leaf >= n || a[root] < a[leaf] {
            a[next] = a[root];
            a[root] = next as u32;
            root += 1;
        } else {
            a[next] = a[leaf];
            leaf += 1;
        }
        // Second child.
        if leaf >= n || (root < next && a[root] < a[leaf]) {
            a[next] += a[root];
            a[root] = next as u32;
            root += 1;
        } else {
            a[next] += a[leaf];
            leaf += 1;
        }
    }
    // Phase 2: parent pointers to internal node depths.
    a[n - 2] = 0;
    for next in (0..n - 2).rev() {
        a[next] = a[a[next] as usize] + 1;
    }
    // Phase 3: internal node depths to leaf depths.
    let mut avail: isize = 1;
    let mut used: isize;
    let mut depth = 0u32;
    let mut root = n as isize - 2;
    let mut next = n as isize - 1;
    while avail > 0 {
        used = 0;
        while root >= 0 && a[root as usize] == depth {
            used += 1;
            root -= 1;
        }
        while avail > used {
            a[next as usize] = depth;
            next -= 1;
            avail -= 1;
        }
        avail = 2 * used;
        depth += 1;
    }
}

/// Makes `count` (number of codewords per length, lengths already clamped
/// to the maximum) satisfy the Kraft equality again.
fn limit_lengths(count: &mut [u32; MAX_CODEWORD_LEN + 1]) {
    let max = MAX_CODEWORD_LEN;
    let mut total: u32 = (1..=max).map(|l| count[l] << (max - l)).sum();
    while total > 1 << max {
        // Take one codeword off the longest length and split a shorter
        // leaf into two: this lowers the Kraft sum by one unit.
        count[max] -= 1;
        for l in (1..max).rev() {
            if count[l] != 0 {
                count[l] -= 1;
                count[l + 1] += 2;
                break;
            }
        }
        total -= 1;
    }
}

/// Assigns canonical codewords: shorter codes first, ties by symbol.
pub(crate) fn canonical_codewords(lens: &[u8; NUM_SYMBOLS], codewords: &mut [u16; NUM_SYMBOLS]) {
    let mut count = [0u16; MAX_CODEWORD_LEN + 1];
    for &l in lens.iter() {
        count[l as usize] += 1;
    }
    count[0] = 0;
    let mut next = [0u16; MAX_CODEWORD_LEN + 2];
    let mut code = 0u16;
    for len in 1..=MAX_CODEWORD_LEN {
        code = (code + count[len - 1]) << 1;
        next[len] = code;
    }
    for (sym, &l) in lens.iter().enumerate() {
        if l != 0 {
            codewords[sym] = next[l as usize];
            next[l as usize] += 1;
        } else {
            codewords[sym] = 0;
        }
    }
}

// ---------------------------------------------------------------------------
// Decoder side
// ---------------------------------------------------------------------------

/// Bits indexing the root table.
pub(crate) const TABLE_BITS: u32 = 11;
/// Root table plus room for every subtable. A subtable hangs off a root
/// entry whose prefix has codewords longer than [`TABLE_BITS`]; it has
/// `2^(max_len_under_prefix - TABLE_BITS)` <= 16 entries and, the code being
/// complete, holds at least two codewords, so there are at most 256 of them.
pub(crate) const TABLE_SIZE: usize =
    (1 << TABLE_BITS) + 256 * (1 << (MAX_CODEWORD_LEN - TABLE_BITS as usize));

/// Root entry flag: the entry points to a subtable.
pub(crate) const SUBTABLE_FLAG: u32 = 1 << 31;
// Entry layout: bits 0..8 = codeword length (direct root entry), codeword
// length minus TABLE_BITS (subtable entry) or index bits (subtable pointer);
// bits 8..24 = symbol or subtable start; bit 31 = subtable pointer.

/// Never returned for a complete code (the table is sized for the worst
/// case); the checked accesses only make sure a mistake cannot panic.
const BAD_TABLE: &str = "Huffman decode table overflow";

#[inline]
fn entry(value: usize, bits: u32) -> u32 {
    ((value as u32) << 8) | bits
}

/// Fills `table` (at least [`TABLE_SIZE`] entries) to decode the canonical
/// code with codeword lengths `lens`. Fails unless the lengths describe a
/// complete prefix code (over-subscribed, incomplete and empty codes are all
/// rejected, as wimlib does for non-empty ones).
pub(crate) fn build_decode_table(
    lens: &[u8; NUM_SYMBOLS],
    table: &mut [u32],
) -> Result<(), &'static str> {
    const MAX: usize = MAX_CODEWORD_LEN;
    const TB: usize = TABLE_BITS as usize;
    let mut count = [0u16; MAX + 1];
    for &l in lens.iter() {
        count[l as usize] += 1;
    }
    count[0] = 0;
    // Kraft sum in units of 2^-MAX.
    let mut left: i32 = 1;
    for &c in &count[1..] {
        left = (left << 1) - c as i32;
        if left < 0 {
            return Err("over-subscribed Huffman code");
        }
    }
    if left != 0 {
        return Err("incomplete Huffman code");
    }
    // Symbols sorted by (length, symbol): canonical order.
    let mut offs = [0u16; MAX + 2];
    for l in 1..=MAX {
        offs[l + 1] = offs[l] + count[l];
    }
    let mut sorted = [0u16; NUM_SYMBOLS];
    for (sym, &l) in lens.iter().enumerate() {
        if l != 0 {
            sorted[offs[l as usize] as usize] = sym as u16;
            offs[l as usize] += 1;
        }
    }
    let num_used: usize = count[1..].iter().map(|&c| c as usize).sum();

    // Direct entries: walk codes in canonical order. `code` is the current
    // codeword, `len` its length.
    let mut i = 0usize;
    let mut code: u32 = 0;
    let mut len = 1usize;
    let mut remaining_at_len = count[1];
    let advance_len = |len: &mut usize, code: &mut u32, remaining: &mut u16| {
        while *remaining == 0 && *len < MAX {
            *len += 1;
            *code <<= 1;
            *remaining = count[*len];
        }
    };
    advance_len(&mut len, &mut code, &mut remaining_at_len);
    while i < num_used && len <= TB {
        let sym = sorted[i] as usize;
        let span = 1usize << (TB - len);
        let start = (code as usize) << (TB - len);
        table
            .get_mut(start..start + span)
            .ok_or(BAD_TABLE)?
            .fill(entry(sym, len as u32));
        i += 1;
        code += 1;
        remaining_at_len -= 1;
        advance_len(&mut len, &mut code, &mut remaining_at_len);
    }
    // Long codewords, grouped by their TABLE_BITS-bit prefix.
    let mut next_sub = 1usize << TB;
    while i < num_used {
        let prefix = (code >> (len - TB)) as usize;
        // Find the longest codeword under this prefix: the subtree is
        // complete, so its codewords (consecutive in canonical order) fill
        // exactly 2^(MAX - TB) units of 2^-MAX.
        let mut fill = 0u32;
        let mut j = i;
        let mut max_len = len;
        {
            let mut l = len;
            let mut rem = remaining_at_len;
            while fill < 1 << (MAX - TB) {
                while rem == 0 {
                    if l == MAX {
                        // Unreachable for a complete code (checked above).
                        return Err("inconsistent Huffman code");
                    }
                    l += 1;
                    rem = count[l];
                }
                fill += 1 << (MAX - l);
                max_len = l;
                rem -= 1;
                j += 1;
            }
        }
        let sub_bits = max_len - TB;
        let start = next_sub;
        next_sub += 1 << sub_bits;
        *table.get_mut(prefix).ok_or(BAD_TABLE)? = SUBTABLE_FLAG | entry(start, sub_bits as u32);
        while i < j {
            let sym = sorted[i] as usize;
            let low = (code as usize) & ((1 << (len - TB)) - 1);
            let span = 1usize << (max_len - len);
            let s = start + (low << (max_len - len));
            table
                .get_mut(s..s + span)
                .ok_or(BAD_TABLE)?
                .fill(entry(sym, (len - TB) as u32));
            i += 1;
            code += 1;
            remaining_at_len -= 1;
            advance_len(&mut len, &mut code, &mut remaining_at_len);
        }
    }
    debug_assert!(next_sub <= TABLE_SIZE);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kraft(lens: &[u8; NUM_SYMBOLS]) -> u64 {
        lens.iter()
            .filter(|&&l| l != 0)
            .map(|&l| 1u64 << (MAX_CODEWORD_LEN - l as usize))
            .sum()
    }

    #[test]
    fn lengths_are_limited_and_complete() {
        // Fibonacci frequencies force very deep unlimited trees.
        let mut freqs = [0u32; NUM_SYMBOLS];
        let (mut a, mut b) = (1u32, 1u32);
        for f in freqs.iter_mut().take(30) {
            *f = a;
            let c = a.saturating_add(b);
            a = b;
            b = c;
        }
        let mut lens = [0; NUM_SYMBOLS];
        let mut cw = [0; NUM_SYMBOLS];
        make_code(&freqs, &mut lens, &mut cw);
        assert!(lens.iter().all(|&l| l as usize <= MAX_CODEWORD_LEN));
        assert_eq!(kraft(&lens), 1 << MAX_CODEWORD_LEN);
        let mut table = vec![0u32; TABLE_SIZE];
        build_decode_table(&lens, &mut table).unwrap();
    }

    #[test]
    fn all_symbols_and_single_symbol() {
        let mut lens = [0; NUM_SYMBOLS];
        let mut cw = [0; NUM_SYMBOLS];
        let mut table = vec![0u32; TABLE_SIZE];
        make_code(&[1; NUM_SYMBOLS], &mut lens, &mut cw);
        assert!(lens.iter().all(|&l| l == 9));
        build_decode_table(&lens, &mut table).unwrap();
        let mut freqs = [0; NUM_SYMBOLS];
        freqs[0] = 5;
        make_code(&freqs, &mut lens, &mut cw);
        assert_eq!((lens[0], lens[1]), (1, 1));
        build_decode_table(&lens, &mut table).unwrap();
    }

    #[test]
    fn rejects_bad_codes() {
        let mut table = vec![0u32; TABLE_SIZE];
        assert!(build_decode_table(&[0; NUM_SYMBOLS], &mut table).is_err());
        let mut lens = [0; NUM_SYMBOLS];
        lens[0] = 1;
        assert!(build_decode_table(&lens, &mut table).is_err());
        lens[1] = 1;
        lens[2] = 1;
        assert!(build_decode_table(&lens, &mut table).is_err());
    }
}
