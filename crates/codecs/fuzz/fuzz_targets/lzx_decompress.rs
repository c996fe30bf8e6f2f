#![no_main]
use libfuzzer_sys::fuzz_target;
use tasq_codecs::Decompressor;

// Input: 2 bytes of little-endian output size (capped at 32 KiB), then the
// compressed chunk. The decompressor must never panic.
fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let size = (u16::from_le_bytes([data[0], data[1]]) as usize % 32768) + 1;
    let mut out = vec![0u8; size];
    let mut d = tasq_codecs::lzx::LzxDecompressor::new(32768);
    let _ = d.decompress(&data[2..], &mut out);
});
