#![no_main]
use libfuzzer_sys::fuzz_target;
use tasq_codecs::{Compressor, Decompressor};

// Input: 2 bytes of little-endian output size (capped at 32 KiB), then the
// compressed chunk. The decompressor must never panic. When the input does
// decode, the result is also pushed through the compressor (level from the
// first byte) and must come back unchanged: this reaches the compressor with
// the odd, structured data that decoding random streams produces.
fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let size = (u16::from_le_bytes([data[0], data[1]]) as usize % 32768) + 1;
    let mut out = vec![0u8; size];
    let mut d = tasq_codecs::lzx::LzxDecompressor::new(32768);
    if d.decompress(&data[2..], &mut out).is_err() {
        return;
    }
    let level = [20, 50, 100][data[0] as usize % 3];
    let mut c = tasq_codecs::lzx::LzxCompressor::new(32768, level);
    let mut z = vec![0u8; size];
    if let Some(n) = c.compress(&out, &mut z) {
        let mut back = vec![0u8; size];
        d.decompress(&z[..n], &mut back)
            .expect("our own stream decodes");
        assert!(back == out, "round trip changed the data");
    }
});
