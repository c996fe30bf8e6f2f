//! Constants and offset-slot tables of the LZX format (WIM variant).
//!
//! Offsets are handled here in their *formatted* form, `offset + 2`, which is
//! what the offset slots partition: slots 0..=2 stand for the three repeat
//! offsets, slot `s >= 3` covers formatted offsets
//! `SLOT_BASE[s] .. SLOT_BASE[s] + 2^EXTRA_BITS[s]`.

/// Literal byte values in the main alphabet.
pub const NUM_CHARS: usize = 256;
/// Shortest and longest match.
pub const MIN_MATCH: usize = 2;
pub const MAX_MATCH: usize = 257;
/// Length headers per offset slot in the main alphabet (7 direct + 1 escape).
pub const NUM_LEN_HEADERS: usize = 8;
/// Lengths below `MIN_MATCH + NUM_PRIMARY_LENS` need no length symbol.
pub const NUM_PRIMARY_LENS: usize = 7;
/// Symbols of the length tree.
pub const LEN_SYMS: usize = MAX_MATCH - MIN_MATCH + 1 - NUM_PRIMARY_LENS; // 249
/// Symbols of the pretree and of the aligned-offset tree.
pub const PRE_SYMS: usize = 20;
pub const ALIGNED_SYMS: usize = 8;
/// Offset slots from which aligned blocks entropy-code the low 3 offset bits.
pub const MIN_ALIGNED_SLOT: usize = 8;
/// Repeat-offset queue length.
pub const NUM_REPS: usize = 3;
/// Maximum number of offset slots (2 MiB window).
pub const MAX_OFFSET_SLOTS: usize = 50;
/// Largest main alphabet.
pub const MAX_MAIN_SYMS: usize = NUM_CHARS + MAX_OFFSET_SLOTS * NUM_LEN_HEADERS;
/// Codeword length limits of the format (pretree lengths are 4-bit fields,
/// aligned ones 3-bit fields).
pub const MAX_CODEWORD_LEN: u32 = 16;
pub const MAX_PRE_LEN: u32 = 15;
pub const MAX_ALIGNED_LEN: u32 = 7;
/// Block types of the 3-bit block header field.
pub const BLOCK_VERBATIM: u32 = 1;
pub const BLOCK_ALIGNED: u32 = 2;
pub const BLOCK_UNCOMPRESSED: u32 = 3;
/// Block size implied by the 1-bit "default size" flag.
pub const DEFAULT_BLOCK_SIZE: usize = 32768;
/// Smallest and largest window (log2). WIMGAPI only uses 2^15.
pub const MIN_WINDOW_ORDER: u32 = 15;
pub const MAX_WINDOW_ORDER: u32 = 21;
/// The fixed "file size" of the E8 call translation in WIM files.
pub const E8_MAGIC_FILESIZE: i32 = 12_000_000;

/// Extra (verbatim) offset bits of each slot.
pub const EXTRA_BITS: [u8; MAX_OFFSET_SLOTS] = extra_bits();
/// First formatted offset of each slot (one more entry marks the end).
pub const SLOT_BASE: [u32; MAX_OFFSET_SLOTS + 1] = slot_bases();

const fn extra_bits() -> [u8; MAX_OFFSET_SLOTS] {
    let mut t = [0u8; MAX_OFFSET_SLOTS];
    let mut s = 4;
    while s < MAX_OFFSET_SLOTS {
        let e = s / 2 - 1;
        t[s] = if e > 17 { 17 } else { e as u8 };
        s += 1;
    }
    t
}

const fn slot_bases() -> [u32; MAX_OFFSET_SLOTS + 1] {
    let eb = extra_bits();
    let mut t = [0u32; MAX_OFFSET_SLOTS + 1];
    let mut s = 0;
    while s < MAX_OFFSET_SLOTS {
        t[s + 1] = t[s] + (1u32 << eb[s]);
        s += 1;
    }
    t
}

/// The window order (log2 of the window size) for chunks of up to
/// `max_chunk_size` bytes, or `None` when LZX cannot describe such a window.
pub fn window_order(max_chunk_size: usize) -> Option<u32> {
    if max_chunk_size > 1 << MAX_WINDOW_ORDER {
        return None;
    }
    let mut order = MIN_WINDOW_ORDER;
    while (1usize << order) < max_chunk_size {
        order += 1;
    }
    Some(order)
}

/// Number of offset slots of a window. The largest real offset is
/// `window - 3` (a match cannot copy the first two bytes onto the last two),
/// i.e. formatted offset `window - 1`.
pub fn num_offset_slots(order: u32) -> usize {
    let max_formatted = (1u32 << order) - 1;
    let mut n = 30;
    while n < MAX_OFFSET_SLOTS && SLOT_BASE[n] <= max_formatted {
        n += 1;
    }
    n
}

/// The slot of a formatted offset (`>= 3`, i.e. an explicit offset).
#[inline]
pub fn slot_of(formatted: u32) -> usize {
    // Slots come in pairs per power of two from formatted offset 4 on:
    // formatted offsets [2^k, 2^k + 2^(k-1)) and [2^k + 2^(k-1), 2^(k+1)).
    if formatted < 4 {
        return formatted as usize;
    }
    let k = 31 - formatted.leading_zeros(); // floor(log2), >= 2
    let half = (formatted >> (k - 1)) & 1;
    let s = (2 * k + half) as usize;
    if s < 36 {
        s
    } else {
        // From slot 36 on every slot has 17 extra bits (span 2^17).
        36 + ((formatted - SLOT_BASE[36]) >> 17) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_tables_match_the_published_values() {
        // Values from the LZX specification (real offsets = formatted - 2).
        assert_eq!(&SLOT_BASE[..12], &[0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48]);
        assert_eq!(SLOT_BASE[29], 24576);
        assert_eq!(SLOT_BASE[30], 32768);
        assert_eq!(SLOT_BASE[36], 262144);
        assert_eq!(SLOT_BASE[50], 2097152);
        assert_eq!(EXTRA_BITS[8], 3);
        assert_eq!(EXTRA_BITS[29], 13);
        assert_eq!(EXTRA_BITS[35], 16);
        assert_eq!(EXTRA_BITS[49], 17);
    }

    #[test]
    fn slot_of_inverts_slot_base() {
        for f in 3u32..(1 << 21) {
            let s = slot_of(f);
            assert!(SLOT_BASE[s] <= f && f < SLOT_BASE[s + 1], "f={f} s={s}");
        }
    }

    #[test]
    fn window_geometry() {
        assert_eq!(window_order(0), Some(15));
        assert_eq!(window_order(32768), Some(15));
        assert_eq!(window_order(32769), Some(16));
        assert_eq!(window_order(1 << 21), Some(21));
        assert_eq!(window_order((1 << 21) + 1), None);
        assert_eq!(num_offset_slots(15), 30);
        assert_eq!(num_offset_slots(16), 32);
        assert_eq!(num_offset_slots(17), 34);
        assert_eq!(num_offset_slots(21), 50);
    }
}
