//! LZX interoperability with wimlib (the reference implementation): our
//! compressor's output must decompress identically with wimlib and with our
//! decompressor, and our decompressor must read what wimlib produces.

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use tasq_codecs::lzx::{LzxCompressor, LzxDecompressor};
use tasq_codecs::{Compressor, DecompressError, Decompressor};
use wimlib_oracle::{Ctype, WimlibCompressor, WimlibDecompressor};

const CHUNK: usize = 32768;
const LEVELS: [u32; 3] = [20, 50, 100];

/// Data shaped like the kinds a WIM holds.
fn sample(kind: u8, len: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    match kind % 4 {
        0 => (0..len).map(|_| rng.gen()).collect(),
        1 => {
            // Repetitive: a short pattern with occasional mutations.
            let pat: Vec<u8> = (0..rng.gen_range(1..40)).map(|_| rng.gen()).collect();
            (0..len)
                .map(|i| {
                    if rng.gen_ratio(1, 50) {
                        rng.gen()
                    } else {
                        pat[i % pat.len()]
                    }
                })
                .collect()
        }
        2 => {
            // Text-like: words from a small vocabulary.
            const WORDS: [&str; 12] = [
                "the ",
                "windows ",
                "image ",
                "file ",
                "of ",
                "and ",
                "to ",
                "system32\\",
                "driver ",
                "\r\n",
                "config ",
                "a ",
            ];
            let mut v = Vec::with_capacity(len + 16);
            while v.len() < len {
                v.extend_from_slice(WORDS[rng.gen_range(0..WORDS.len())].as_bytes());
            }
            v.truncate(len);
            v
        }
        _ => {
            // x86-like: call instructions (E8 + rel32) among opcode bytes.
            let mut v = Vec::with_capacity(len + 8);
            let targets: Vec<i32> = (0..16).map(|_| rng.gen_range(0..60000)).collect();
            while v.len() < len {
                match rng.gen_range(0..6) {
                    0 | 1 => {
                        let pos = v.len() as i32;
                        v.push(0xE8);
                        let t = targets[rng.gen_range(0..targets.len())];
                        v.extend_from_slice(&(t - pos - 5).to_le_bytes());
                    }
                    2 => v.extend_from_slice(&[0x48, 0x89, 0xE5]),
                    3 => v.push(0xE8),
                    _ => v.push(rng.gen_range(0..16)),
                }
            }
            v.truncate(len);
            v
        }
    }
}

fn ours_compress(data: &[u8], level: u32) -> Option<Vec<u8>> {
    let mut c = LzxCompressor::new(CHUNK, level);
    let mut out = vec![0u8; data.len()];
    c.compress(data, &mut out).map(|n| {
        out.truncate(n);
        out
    })
}

fn ours_decompress(z: &[u8], n: usize) -> Result<Vec<u8>, DecompressError> {
    let mut d = LzxDecompressor::new(CHUNK);
    let mut out = vec![0u8; n];
    d.decompress(z, &mut out).map(|_| out)
}

/// Checks every direction for one chunk; returns whether ours compressed it.
fn check_all(data: &[u8], level: u32) -> bool {
    let ours = ours_compress(data, level);
    if let Some(z) = &ours {
        assert!(z.len() < data.len());
        assert_eq!(
            ours_decompress(z, data.len()).expect("ours->ours"),
            data,
            "ours->ours"
        );
        let mut w = WimlibDecompressor::new(Ctype::Lzx, CHUNK).unwrap();
        assert_eq!(
            w.decompress(z, data.len())
                .expect("wimlib rejected our stream"),
            data,
            "ours->wimlib"
        );
    }
    let mut wc = WimlibCompressor::new(Ctype::Lzx, CHUNK, level).unwrap();
    if let Some(z) = wc.compress(data) {
        assert_eq!(
            ours_decompress(&z, data.len()).expect("wimlib->ours"),
            data,
            "wimlib->ours"
        );
    }
    ours.is_some()
}

#[test]
fn edge_sizes_all_kinds_all_directions() {
    for &len in &[0usize, 1, 2, 3, 10, 11, 12, 100, 4097, 32767, 32768] {
        for kind in 0..4u8 {
            for &level in &LEVELS {
                check_all(&sample(kind, len, len as u64 * 7 + u64::from(kind)), level);
            }
        }
    }
}

#[test]
fn compressible_data_shrinks() {
    for kind in 1..4u8 {
        for &level in &LEVELS {
            assert!(
                check_all(&sample(kind, CHUNK, 99), level),
                "kind {kind} level {level}"
            );
        }
    }
}

#[test]
fn incompressible_data_returns_none() {
    for &level in &LEVELS {
        assert!(ours_compress(&sample(0, CHUNK, 5), level).is_none());
        assert!(ours_compress(&sample(0, 1000, 6), level).is_none());
        assert!(ours_compress(&[7u8], level).is_none());
        assert!(ours_compress(&[], level).is_none());
    }
}

#[test]
fn real_files_chunked() {
    let mut files: Vec<_> = std::fs::read_dir("/usr/bin")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut total = 0usize;
    let mut tested = 0usize;
    for f in files.iter().step_by(37).take(12) {
        let Ok(data) = std::fs::read(f) else { continue };
        for chunk in data.chunks(CHUNK).take(8) {
            for &level in &LEVELS {
                check_all(chunk, level);
            }
            total += chunk.len();
            tested += 1;
        }
    }
    assert!(
        tested > 20 && total > 200_000,
        "too little real data found ({tested} chunks)"
    );
}

#[test]
fn corrupt_input_is_an_error_not_a_panic() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    for kind in 1..4u8 {
        let data = sample(kind, CHUNK, 3);
        let z = ours_compress(&data, 50).unwrap();
        // Truncation always removes bits the stream needs.
        for cut in [1usize, 2, 3, z.len() / 2, z.len() - 1] {
            assert!(
                ours_decompress(&z[..z.len() - cut], data.len()).is_err(),
                "cut {cut}"
            );
        }
        // Bit flips: any result but a panic; decoding to the original data
        // would mean the flip went unnoticed in a used bit, which is possible
        // only for padding bits at the end.
        for _ in 0..300 {
            let mut bad = z.clone();
            let bit = rng.gen_range(0..bad.len() * 8);
            bad[bit / 8] ^= 1 << (bit % 8);
            let _ = ours_decompress(&bad, data.len());
        }
        // Wrong expected size.
        assert!(ours_decompress(&z, data.len() - 1).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip_random_shapes(kind in 0u8..4, len in 0usize..=CHUNK, seed: u64, lvl in 0usize..3) {
        check_all(&sample(kind, len, seed), LEVELS[lvl]);
    }

    #[test]
    fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2000), n in 0usize..=CHUNK) {
        let _ = ours_decompress(&data, n);
    }

    #[test]
    fn garbage_after_a_valid_header_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..4000), n in 1usize..=CHUNK) {
        // A verbatim block header with the default size, then garbage: this
        // reaches the pretree and Huffman decoding paths far more often.
        let mut data = vec![0x00, 0x30];
        data.extend_from_slice(&tail);
        let _ = ours_decompress(&data, n);
    }
}

/// Real bytes from /usr/bin, `len` of them.
fn real_bytes(len: usize) -> Vec<u8> {
    let mut files: Vec<_> = std::fs::read_dir("/usr/bin")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut v = Vec::with_capacity(len);
    for f in files.iter().step_by(11) {
        if let Ok(d) = std::fs::read(f) {
            v.extend_from_slice(&d[..d.len().min(200_000)]);
        }
        if v.len() >= len {
            break;
        }
    }
    v.truncate(len);
    v
}

#[test]
fn large_windows_both_ways() {
    // Windows above 32 KiB (wimlib supports up to 2 MiB): the main alphabet
    // grows, block sizes take 24 bits and wimlib splits chunks into several
    // blocks, exercising the delta coding of lengths between blocks.
    for &(max, len) in &[
        (65536usize, 65536usize),
        (65536, 65534),
        (65536, 65535),
        (40000, 40000),
        (1 << 20, 1 << 20),
        (1 << 21, 1 << 21),
        (1 << 20, 300_001),
    ] {
        let data = real_bytes(len);
        assert_eq!(data.len(), len);
        for level in [20u32, 50] {
            let mut c = LzxCompressor::new(max, level);
            let mut z = vec![0u8; len];
            let n = c.compress(&data, &mut z).expect("real data compresses");
            let mut d = LzxDecompressor::new(max);
            let mut out = vec![0u8; len];
            d.decompress(&z[..n], &mut out).expect("ours->ours");
            assert!(out == data, "ours->ours window {max}");
            let mut w = WimlibDecompressor::new(Ctype::Lzx, max).unwrap();
            assert!(
                w.decompress(&z[..n], len).expect("ours->wimlib") == data,
                "ours->wimlib window {max}"
            );
        }
        let mut wc = WimlibCompressor::new(Ctype::Lzx, max, 50).unwrap();
        let z = wc.compress(&data).expect("wimlib compresses");
        let mut d = LzxDecompressor::new(max);
        let mut out = vec![0u8; len];
        d.decompress(&z, &mut out).expect("wimlib->ours");
        assert!(out == data, "wimlib->ours window {max}");
    }
}

#[test]
fn unsupported_window_sizes_are_refused_cleanly() {
    let data = sample(1, 1000, 1);
    let mut c = LzxCompressor::new((1 << 21) + 1, 50);
    let mut z = vec![0u8; data.len()];
    assert!(c.compress(&data, &mut z).is_none());
    let mut d = LzxDecompressor::new((1 << 21) + 1);
    let mut out = vec![0u8; 1000];
    assert!(matches!(
        d.decompress(&z, &mut out),
        Err(DecompressError::ChunkTooLarge { .. })
    ));
    // A chunk larger than the compressor was created for is left raw.
    let mut c = LzxCompressor::new(500, 50);
    assert!(c.compress(&data, &mut z).is_none());
}
