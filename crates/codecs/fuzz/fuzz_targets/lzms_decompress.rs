#![no_main]
use libfuzzer_sys::fuzz_target;
use tasq_codecs::{Compressor, Decompressor};

// Input: 3 bytes of little-endian output size (capped at 256 KiB, above the
// 128 KiB WIM default so large offset alphabets are reached), then the
// compressed chunk. The decompressor must never panic; LZMS readers pad
// with zero bits, so most inputs "decode". When one does, the result goes
// through the compressor (level from the first byte) and must come back
// unchanged.
const MAX: usize = 1 << 18;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let size = (u32::from_le_bytes([data[0], data[1], data[2], 0]) as usize % MAX) + 1;
    let mut out = vec![0u8; size];
    let mut d = tasq_codecs::lzms::LzmsDecompressor::new(MAX);
    if d.decompress(&data[3..], &mut out).is_err() {
        return;
    }
    let level = [20, 50, 100][data[0] as usize % 3];
    let mut c = tasq_codecs::lzms::LzmsCompressor::new(MAX, level);
    let mut z = vec![0u8; size];
    if let Some(n) = c.compress(&out, &mut z) {
        let mut back = vec![0u8; size];
        d.decompress(&z[..n], &mut back)
            .expect("our own stream decodes");
        assert!(back == out, "round trip changed the data");
    }
});
