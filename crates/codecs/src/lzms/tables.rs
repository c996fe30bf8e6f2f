//! Constants and slot tables of the LZMS format.
//!
//! Lengths and offsets are coded as a Huffman-coded *slot* followed by a
//! number of verbatim extra bits; the slot bases are derived at compile time
//! from the extra-bit counts, which the format fixes as runs of equal values.

/// Offset slots of the format (enough for offsets up to `MAX_OFFSET`).
pub const NUM_OFFSET_SLOTS: usize = 799;
/// Length slots of the format.
pub const NUM_LENGTH_SLOTS: usize = 54;
/// Literal alphabet and delta-power alphabet sizes.
pub const NUM_LITERAL_SYMS: usize = 256;
pub const NUM_POWER_SYMS: usize = 8;
/// Largest representable match length and offset.
pub const MAX_MATCH_LEN: u32 = 1_073_809_578;
/// Largest chunk the format is used with (Microsoft's limit, 1 GiB).
pub const MAX_BUFFER_SIZE: usize = 1 << 30;
/// Symbols coded between two rebuilds of each adaptive Huffman code.
pub const LITERAL_REBUILD: u32 = 1024;
pub const LZ_OFFSET_REBUILD: u32 = 1024;
pub const LENGTH_REBUILD: u32 = 512;
pub const DELTA_OFFSET_REBUILD: u32 = 1024;
pub const POWER_REBUILD: u32 = 512;
/// Longest codeword any LZMS Huffman code may have.
pub const MAX_CODEWORD_LEN: usize = 15;
/// Probability contexts: the number of recent bits remembered per decision
/// class is log2 of these.
pub const NUM_MAIN_STATES: usize = 16;
pub const NUM_MATCH_STATES: usize = 32;
pub const NUM_LZ_STATES: usize = 64;
pub const NUM_LZ_REP_STATES: usize = 64;
pub const NUM_DELTA_STATES: usize = 64;
pub const NUM_DELTA_REP_STATES: usize = 64;
/// Repeat queues hold three usable entries (plus one pending slot).
pub const NUM_REPS: usize = 3;

/// Extra offset bits as (bits, number of consecutive slots) runs.
const OFFSET_RUNS: [(u8, u16); 21] = [
    (0, 8),
    (2, 9),
    (3, 7),
    (4, 10),
    (5, 15),
    (6, 15),
    (7, 20),
    (8, 20),
    (9, 30),
    (10, 33),
    (11, 40),
    (12, 42),
    (13, 45),
    (14, 60),
    (15, 73),
    (16, 80),
    (17, 85),
    (18, 95),
    (19, 105),
    (20, 6),
    (30, 1),
];

/// Extra length bits as runs, as above.
const LENGTH_RUNS: [(u8, u16); 13] = [
    (0, 26),
    (1, 4),
    (2, 6),
    (3, 4),
    (4, 5),
    (5, 2),
    (6, 1),
    (7, 1),
    (8, 1),
    (9, 1),
    (10, 1),
    (16, 1),
    (30, 1),
];

const fn expand<const N: usize>(runs: &[(u8, u16)]) -> [u8; N] {
    let mut t = [0u8; N];
    let mut s = 0;
    let mut r = 0;
    while r < runs.len() {
        let mut k = 0;
        while k < runs[r].1 {
            t[s] = runs[r].0;
            s += 1;
            k += 1;
        }
        r += 1;
    }
    assert!(s == N, "slot runs must cover every slot");
    t
}

/// Bases start at 1 (neither lengths nor offsets can be 0); one more entry
/// marks the end of the last slot, which makes slot searches simpler.
const fn bases<const N: usize, const M: usize>(extra: &[u8; N]) -> [u32; M] {
    let mut t = [0u32; M];
    t[0] = 1;
    let mut s = 0;
    while s < N {
        t[s + 1] = t[s] + (1u32 << extra[s]);
        s += 1;
    }
    t
}

pub const OFFSET_EXTRA: [u8; NUM_OFFSET_SLOTS] = expand(&OFFSET_RUNS);
pub const OFFSET_BASE: [u32; NUM_OFFSET_SLOTS + 1] = bases(&OFFSET_EXTRA);
pub const LENGTH_EXTRA: [u8; NUM_LENGTH_SLOTS] = expand(&LENGTH_RUNS);
pub const LENGTH_BASE: [u32; NUM_LENGTH_SLOTS + 1] = bases(&LENGTH_EXTRA);

/// The slot whose range holds `value` (`value` must be at least 1 and below
/// the table's end entry).
pub fn slot_of(value: u32, base: &[u32]) -> usize {
    // partition_point gives the first base above `value`; the slot is the one
    // before it.
    base.partition_point(|&b| b <= value).saturating_sub(1)
}

/// Per run of equal extra-bit counts in `OFFSET_RUNS`: its first slot and
/// its first value.
const fn offset_run_starts() -> [(u16, u32); OFFSET_RUNS.len() + 1] {
    let mut t = [(0u16, 0u32); OFFSET_RUNS.len() + 1];
    let mut r = 0;
    let mut slot = 0u16;
    let mut base = 1u32;
    while r < OFFSET_RUNS.len() {
        t[r] = (slot, base);
        slot += OFFSET_RUNS[r].1;
        base += (OFFSET_RUNS[r].1 as u32) << OFFSET_RUNS[r].0;
        r += 1;
    }
    t[r] = (slot, base);
    t
}

const OFFSET_RUN_STARTS: [(u16, u32); OFFSET_RUNS.len() + 1] = offset_run_starts();

/// For each k, the run holding the value 2^k.
const fn offset_run_of_pow2() -> [u8; 32] {
    let mut t = [0u8; 32];
    let mut k = 0;
    while k < 32 {
        let v = 1u64 << k;
        let mut r = 0;
        while r + 1 < OFFSET_RUN_STARTS.len() - 1 && OFFSET_RUN_STARTS[r + 1].1 as u64 <= v {
            r += 1;
        }
        t[k] = r as u8;
        k += 1;
    }
    t
}

const OFFSET_RUN_OF_POW2: [u8; 32] = offset_run_of_pow2();

/// `slot_of(offset, &OFFSET_BASE)` without a search: the run of equal
/// extra-bit counts is found from the offset's top bit (then at most a few
/// steps on), and the slot within the run by a shift. `offset` must be in
/// 1..OFFSET_BASE[NUM_OFFSET_SLOTS].
#[inline]
pub fn offset_slot(offset: u32) -> usize {
    let mut r = usize::from(OFFSET_RUN_OF_POW2[(31 - offset.leading_zeros()) as usize]);
    while r + 2 < OFFSET_RUN_STARTS.len() && OFFSET_RUN_STARTS[r + 1].1 <= offset {
        r += 1;
    }
    let (slot, base) = OFFSET_RUN_STARTS[r];
    usize::from(slot) + ((offset - base) >> OFFSET_RUNS[r].0) as usize
}

/// Offset slots in use for a chunk of `size` bytes: enough for the largest
/// possible offset `size - 1`. Both sides must agree on it because it is the
/// size of the offset alphabets.
pub fn num_offset_slots(size: usize) -> usize {
    if size < 2 {
        return 0;
    }
    let largest = u32::try_from(size - 1).unwrap_or(u32::MAX);
    (slot_of(largest, &OFFSET_BASE) + 1).min(NUM_OFFSET_SLOTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_ends_match_the_format_limits() {
        // The end entries are the format's documented maxima plus one.
        assert_eq!(OFFSET_BASE[NUM_OFFSET_SLOTS], 1_180_427_429);
        assert_eq!(OFFSET_BASE[NUM_OFFSET_SLOTS - 1], 0x065b_e4a5);
        assert_eq!(LENGTH_BASE[NUM_LENGTH_SLOTS], MAX_MATCH_LEN + 1);
        assert_eq!(LENGTH_BASE[NUM_LENGTH_SLOTS - 1], 0x0001_08ab);
        assert_eq!(&OFFSET_BASE[..12], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 17, 21]);
    }

    #[test]
    fn direct_offset_slot_agrees_with_the_search() {
        let mut vals: Vec<u32> = (1..70_000).collect();
        for s in 0..NUM_OFFSET_SLOTS {
            let b = OFFSET_BASE[s];
            vals.extend([b, b + 1, OFFSET_BASE[s + 1] - 1]);
        }
        let mut x = 1u32;
        for _ in 0..100_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            vals.push(1 + x % (OFFSET_BASE[NUM_OFFSET_SLOTS] - 1));
        }
        for v in vals {
            assert_eq!(offset_slot(v), slot_of(v, &OFFSET_BASE), "{v}");
        }
    }

    #[test]
    fn slot_lookup_brackets_the_value() {
        for v in [1u32, 2, 8, 9, 12, 13, 100, 65_535, 1 << 20, 1_000_000_000] {
            let s = slot_of(v, &OFFSET_BASE);
            assert!(OFFSET_BASE[s] <= v && v < OFFSET_BASE[s + 1], "{v}");
        }
        for v in [1u32, 26, 27, 28, 29, 255, 0x108ab, MAX_MATCH_LEN] {
            let s = slot_of(v, &LENGTH_BASE);
            assert!(LENGTH_BASE[s] <= v && v < LENGTH_BASE[s + 1], "{v}");
        }
        assert_eq!(num_offset_slots(0), 0);
        assert_eq!(num_offset_slots(1), 0);
        assert_eq!(num_offset_slots(2), 1);
        assert_eq!(num_offset_slots(32768), slot_of(32767, &OFFSET_BASE) + 1);
    }
}
