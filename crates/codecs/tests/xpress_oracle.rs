//! XPRESS against wimlib: our output must decode with wimlib, wimlib's
//! output must decode with ours, and our decoder must survive garbage.

#[path = "../benches/common/mod.rs"]
mod common;

use proptest::prelude::*;
use rand::{rngs::StdRng, Rng, SeedableRng};
use tasq_codecs::xpress::{XpressCompressor, XpressDecompressor};
use tasq_codecs::{Compressor, Decompressor};
use wimlib_oracle::{Ctype, WimlibCompressor, WimlibDecompressor};

const MAX: usize = 65536;
const SIZES: &[usize] = &[
    0, 1, 2, 3, 4, 25, 100, 255, 256, 257, 260, 261, 262, 300, 1000, 4096, 32767, 32768, 40000,
    65535, 65536,
];
const LEVELS: &[u32] = &[1, 20, 50, 100];

fn random_data(rng: &mut StdRng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.gen()).collect()
}

fn repetitive_data(rng: &mut StdRng, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        match rng.gen_range(0..4) {
            0 => v.extend(std::iter::repeat_n(rng.gen::<u8>(), rng.gen_range(1..3000))),
            1 => {
                let pat: Vec<u8> = (0..rng.gen_range(1..12)).map(|_| rng.gen()).collect();
                for _ in 0..rng.gen_range(1..500) {
                    v.extend_from_slice(&pat);
                }
            }
            2 if !v.is_empty() => {
                // Copy from far back (long offsets and long lengths).
                let start = rng.gen_range(0..v.len());
                let len = rng.gen_range(1..=v.len() - start).min(70000);
                let copy: Vec<u8> = v[start..start + len].to_vec();
                v.extend_from_slice(&copy);
            }
            _ => v.extend((0..rng.gen_range(1..40)).map(|_| rng.gen::<u8>())),
        }
    }
    v.truncate(n);
    v
}

fn text_data(rng: &mut StdRng, n: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the",
        "of",
        "and",
        "a",
        "to",
        "in",
        "is",
        "you",
        "that",
        "it",
        "he",
        "was",
        "for",
        "on",
        "are",
        "as",
        "with",
        "his",
        "they",
        "I",
        "at",
        "be",
        "this",
        "have",
        "from",
        "or",
        "one",
        "had",
        "by",
        "word",
        "but",
        "not",
        "what",
        "all",
        "were",
        "we",
        "when",
        "your",
        "can",
        "said",
        "there",
        "use",
        "an",
        "each",
        "which",
        "she",
        "do",
        "how",
        "Windows",
        "image",
        "compression",
        "chunk",
        "Huffman",
        "<xml>",
        "</xml>",
        "\r\n",
        "C:\\Windows\\System32",
    ];
    let mut v = Vec::with_capacity(n + 32);
    while v.len() < n {
        v.extend_from_slice(WORDS[rng.gen_range(0..WORDS.len())].as_bytes());
        v.push(if rng.gen_ratio(1, 9) { b'\n' } else { b' ' });
    }
    v.truncate(n);
    v
}

type Gen = fn(&mut StdRng, usize) -> Vec<u8>;
const GENS: &[(&str, Gen)] = &[
    ("random", random_data),
    ("repetitive", repetitive_data),
    ("text", text_data),
];

fn ours_compress(c: &mut XpressCompressor, data: &[u8]) -> Option<Vec<u8>> {
    let mut out = vec![0u8; data.len()];
    let n = c.compress(data, &mut out)?;
    assert!(
        n < data.len(),
        "compressor returned {n} for {} input bytes",
        data.len()
    );
    out.truncate(n);
    Some(out)
}

fn ours_decompress(
    d: &mut XpressDecompressor,
    z: &[u8],
    n: usize,
) -> Result<Vec<u8>, tasq_codecs::DecompressError> {
    let mut out = vec![0u8; n];
    d.decompress(z, &mut out)?;
    Ok(out)
}

/// Our compressor → wimlib's and our decompressor, for every generator,
/// size and level.
#[test]
fn ours_to_wimlib_and_back() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut wd = WimlibDecompressor::new(Ctype::Xpress, MAX).unwrap();
    let mut od = XpressDecompressor::new(MAX);
    for &level in LEVELS {
        let mut c = XpressCompressor::new(MAX, level);
        for &(name, gen) in GENS {
            for &n in SIZES {
                let data = gen(&mut rng, n);
                let Some(z) = ours_compress(&mut c, &data) else {
                    assert!(
                        name == "random" || n <= 300,
                        "{name} {n} bytes level {level} did not compress"
                    );
                    continue;
                };
                assert_eq!(
                    wd.decompress(&z, n).as_deref(),
                    Some(&data[..]),
                    "wimlib: {name} {n} level {level}"
                );
                assert_eq!(
                    ours_decompress(&mut od, &z, n).unwrap(),
                    data,
                    "ours: {name} {n} level {level}"
                );
            }
        }
    }
}

/// wimlib's compressor (several levels) → our decompressor.
#[test]
fn wimlib_to_ours() {
    let mut rng = StdRng::seed_from_u64(2);
    let mut od = XpressDecompressor::new(MAX);
    for level in [1, 20, 50, 80, 100] {
        let mut wc = WimlibCompressor::new(Ctype::Xpress, MAX, level).unwrap();
        for &(name, gen) in GENS {
            for &n in SIZES {
                let data = gen(&mut rng, n);
                if let Some(z) = wc.compress(&data) {
                    assert_eq!(
                        ours_decompress(&mut od, &z, n).unwrap(),
                        data,
                        "{name} {n} level {level}"
                    );
                }
            }
        }
    }
}

/// Real files (the benchmark corpus) cut into 32 KiB chunks, both ways, and
/// our compressed size stays close to wimlib's at the default level.
#[test]
fn real_files_in_32k_chunks() {
    let corpus = common::corpus(4 << 20);
    assert!(corpus.len() > 1 << 20, "corpus too small");
    let mut c = XpressCompressor::new(32768, 50);
    let mut wc = WimlibCompressor::new(Ctype::Xpress, 32768, 50).unwrap();
    let mut od = XpressDecompressor::new(32768);
    let mut wd = WimlibDecompressor::new(Ctype::Xpress, 32768).unwrap();
    let (mut ours_total, mut wimlib_total) = (0usize, 0usize);
    for chunk in corpus.chunks(32768) {
        let ours = ours_compress(&mut c, chunk);
        let theirs = wc.compress(chunk);
        ours_total += ours.as_ref().map_or(chunk.len(), Vec::len);
        wimlib_total += theirs.as_ref().map_or(chunk.len(), Vec::len);
        if let Some(z) = &ours {
            assert_eq!(wd.decompress(z, chunk.len()).as_deref(), Some(chunk));
            assert_eq!(ours_decompress(&mut od, z, chunk.len()).unwrap(), chunk);
        }
        if let Some(z) = &theirs {
            assert_eq!(ours_decompress(&mut od, z, chunk.len()).unwrap(), chunk);
        }
    }
    let ratio = ours_total as f64 / wimlib_total as f64;
    println!(
        "corpus {} bytes: tasq {ours_total}, wimlib {wimlib_total}, ratio {ratio:.4}",
        corpus.len()
    );
    assert!(ratio <= 1.02, "compressed size {ratio:.4}x wimlib's");
}

/// The near-optimal parser (levels 60+) beats lazy parsing and stays
/// within 1% of wimlib's own near-optimal parser.
#[test]
fn high_levels_compress_better() {
    let corpus = common::corpus(2 << 20);
    let total = |level: u32| -> (usize, usize) {
        let mut c = XpressCompressor::new(32768, level);
        let mut wc = WimlibCompressor::new(Ctype::Xpress, 32768, level).unwrap();
        let mut d = XpressDecompressor::new(32768);
        let (mut ours, mut theirs) = (0, 0);
        for chunk in corpus.chunks(32768) {
            ours += match ours_compress(&mut c, chunk) {
                Some(z) => {
                    assert_eq!(ours_decompress(&mut d, &z, chunk.len()).unwrap(), chunk);
                    z.len()
                }
                None => chunk.len(),
            };
            theirs += wc.compress(chunk).map_or(chunk.len(), |z| z.len());
        }
        (ours, theirs)
    };
    let (lazy, _) = total(50);
    let (opt, wimlib_opt) = total(100);
    println!("level 50: {lazy}, level 100: {opt}, wimlib level 100: {wimlib_opt}");
    assert!(
        opt < lazy,
        "level 100 ({opt}) not smaller than level 50 ({lazy})"
    );
    assert!((opt as f64) < wimlib_opt as f64 * 1.01);
}

#[test]
fn incompressible_data_is_refused() {
    let mut rng = StdRng::seed_from_u64(3);
    for level in [1, 50, 100] {
        let mut c = XpressCompressor::new(MAX, level);
        for n in [1000, 32768, 65536] {
            assert_eq!(ours_compress(&mut c, &random_data(&mut rng, n)), None);
        }
    }
}

/// Cutting a chunk short never yields wrong data silently: either an error
/// or (when only trailing padding was cut) the original.
#[test]
fn truncated_chunks_are_rejected() {
    let mut rng = StdRng::seed_from_u64(4);
    let mut c = XpressCompressor::new(MAX, 50);
    let mut od = XpressDecompressor::new(MAX);
    let mut wc = WimlibCompressor::new(Ctype::Xpress, MAX, 50).unwrap();
    for &(_, gen) in GENS {
        for n in [500, 5000, 32768] {
            let data = gen(&mut rng, n);
            for z in [ours_compress(&mut c, &data), wc.compress(&data)]
                .into_iter()
                .flatten()
            {
                let mut errors = 0;
                for cut in 1..z.len().min(400) {
                    match ours_decompress(&mut od, &z[..z.len() - cut], n) {
                        Ok(out) => assert_eq!(out, data, "cut {cut} decoded to wrong data"),
                        Err(_) => errors += 1,
                    }
                }
                assert!(errors > 0);
                // Cutting into the real data (past the trailing units) fails.
                assert!(ours_decompress(&mut od, &z[..z.len() - 6], n).is_err());
            }
        }
    }
}

/// Flipped bits: a flip in the code header always breaks the code; a flip
/// in the data may go unnoticed (the WIM layer's SHA-1 catches that) but
/// must never panic.
#[test]
fn bit_flips_never_panic() {
    let mut rng = StdRng::seed_from_u64(5);
    let mut c = XpressCompressor::new(MAX, 50);
    let mut od = XpressDecompressor::new(MAX);
    let data = text_data(&mut rng, 32768);
    let z = ours_compress(&mut c, &data).unwrap();
    for bit in 0..256 * 8 {
        let mut bad = z.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert!(
            ours_decompress(&mut od, &bad, data.len()).is_err(),
            "header bit {bit}"
        );
    }
    for _ in 0..3000 {
        let mut bad = z.clone();
        for _ in 0..rng.gen_range(1..4) {
            let bit = rng.gen_range(256 * 8..bad.len() * 8);
            bad[bit / 8] ^= 1 << (bit % 8);
        }
        let _ = ours_decompress(&mut od, &bad, data.len());
    }
}

#[test]
fn wrong_output_size_is_rejected() {
    let mut rng = StdRng::seed_from_u64(6);
    let mut c = XpressCompressor::new(MAX, 50);
    let mut od = XpressDecompressor::new(MAX);
    let data = text_data(&mut rng, 10000);
    let z = ours_compress(&mut c, &data).unwrap();
    // Asking for more than was coded runs past the end-of-data symbol
    // into padding and missing units.
    assert!(ours_decompress(&mut od, &z, 12000).is_err());
    // Asking for less is a prefix of a valid chunk, unless a match crosses
    // the end.
    if let Ok(out) = ours_decompress(&mut od, &z, 5000) {
        assert_eq!(out, &data[..5000]);
    }
    let mut small = XpressDecompressor::new(4096);
    assert!(ours_decompress(&mut small, &z, 10000).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn prop_round_trip(seed in any::<u64>(), n in 0usize..=MAX, kind in 0usize..3, level in prop::sample::select(vec![1u32, 10, 20, 35, 50, 70, 100])) {
        let mut rng = StdRng::seed_from_u64(seed);
        let data = (GENS[kind].1)(&mut rng, n);
        let mut c = XpressCompressor::new(MAX, level);
        if let Some(z) = ours_compress(&mut c, &data) {
            let mut od = XpressDecompressor::new(MAX);
            prop_assert_eq!(ours_decompress(&mut od, &z, n).unwrap(), data.clone());
            let mut wd = WimlibDecompressor::new(Ctype::Xpress, MAX).unwrap();
            prop_assert_eq!(wd.decompress(&z, n), Some(data));
        }
    }

    #[test]
    fn prop_garbage_never_panics(garbage in prop::collection::vec(any::<u8>(), 0..3000), n in 0usize..=MAX) {
        let mut od = XpressDecompressor::new(MAX);
        let _ = ours_decompress(&mut od, &garbage, n);
    }

    /// Garbage behind a valid code header gets past the table build and
    /// exercises the decode loop.
    #[test]
    fn prop_garbage_with_valid_header_never_panics(body in prop::collection::vec(any::<u8>(), 0..5000), n in 0usize..=MAX, lens in 0usize..3) {
        let header: Vec<u8> = match lens {
            0 => vec![0x99; 256], // every symbol 9 bits
            1 => {
                // Skewed but complete: symbols 0-1 get 8 bits, 2-5 get 10.
                let mut h = vec![0x99; 256];
                h[0] = 0x88;
                h[1] = 0xAA;
                h[2] = 0xAA;
                h
            }
            _ => {
                let mut rng = StdRng::seed_from_u64(n as u64);
                let data = text_data(&mut rng, 4000);
                let z = ours_compress(&mut XpressCompressor::new(MAX, 50), &data).unwrap();
                z[..256].to_vec()
            }
        };
        let mut z = header;
        z.extend_from_slice(&body);
        let mut od = XpressDecompressor::new(MAX);
        let _ = ours_decompress(&mut od, &z, n);
    }
}
