//! Helpers shared by this crate's integration tests.
#![allow(dead_code)]

/// Deterministic bytes: text-like when `text`, else noise.
pub fn bytes(seed: u32, len: usize, text: bool) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if text {
                b"the quick brown fox jumps over a lazy dog "[(x as usize ^ (i / 9)) % 42]
            } else {
                x as u8
            }
        })
        .collect()
}
