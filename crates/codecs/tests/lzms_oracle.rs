//! LZMS interoperability with wimlib: wimlib's output (which uses delta
//! matches, long matches and every repeat index) must decode with our
//! decompressor, and our output must decode with wimlib's, byte for byte.

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use tasq_codecs::lzms::{LzmsCompressor, LzmsDecompressor};
use tasq_codecs::{Compressor, Decompressor};
use wimlib_oracle::{Ctype, WimlibCompressor, WimlibDecompressor};

/// WIM's default LZMS chunk size for non-solid resources.
const CHUNK: usize = 1 << 17;

/// Synthetic inputs: 0 random, 1 runs and short periods, 2 words, 3 x86-like
/// machine code (E8/E9 calls, FF 15, F0 83 05, REX.W 8B/8D RIP-relative),
/// 4 16-bit ramps (delta-match material).
fn gen(kind: u8, len: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed_1a35);
    let mut v: Vec<u8> = Vec::with_capacity(len + 16);
    match kind % 5 {
        0 => v.extend((0..len).map(|_| rng.gen::<u8>())),
        1 => {
            while v.len() < len {
                let period = rng.gen_range(1..24);
                let unit: Vec<u8> = (0..period).map(|_| rng.gen()).collect();
                for _ in 0..rng.gen_range(1..200) {
                    v.extend_from_slice(&unit);
                }
                if rng.gen_ratio(1, 3) {
                    v.push(rng.gen());
                }
            }
        }
        2 => {
            let words = [
                "setup",
                "driver",
                "\\Windows\\",
                "System32",
                "image",
                " ",
                ".dll",
                "\r\n",
                "registry",
                "0x",
            ];
            while v.len() < len {
                v.extend_from_slice(words[rng.gen_range(0..words.len())].as_bytes());
            }
        }
        3 => {
            let targets: Vec<u32> = (0..40).map(|_| rng.gen_range(0..1 << 20)).collect();
            while v.len() < len {
                let pos = v.len() as u32;
                let t = targets[rng.gen_range(0..targets.len())];
                match rng.gen_range(0..10) {
                    0 | 1 => {
                        v.push(0xE8);
                        v.extend_from_slice(&t.wrapping_sub(pos + 5).to_le_bytes());
                    }
                    2 => {
                        v.push(0xE9);
                        v.extend_from_slice(&t.wrapping_sub(pos + 5).to_le_bytes());
                    }
                    3 => {
                        v.extend_from_slice(&[0x48, [0x8B, 0x8D][rng.gen_range(0..2)], 0x05]);
                        v.extend_from_slice(&t.wrapping_sub(pos + 7).to_le_bytes());
                    }
                    4 => {
                        v.extend_from_slice(&[0x4C, 0x8D, 0x0D]);
                        v.extend_from_slice(&t.wrapping_sub(pos + 7).to_le_bytes());
                    }
                    5 => {
                        v.extend_from_slice(&[0xFF, 0x15]);
                        v.extend_from_slice(&t.wrapping_sub(pos + 6).to_le_bytes());
                    }
                    6 => {
                        v.extend_from_slice(&[0xF0, 0x83, 0x05]);
                        v.extend_from_slice(&t.wrapping_sub(pos + 8).to_le_bytes());
                        v.push(1);
                    }
                    7 => v.extend_from_slice(&[0x55, 0x48, 0x89, 0xE5, 0xC3]),
                    _ => v.push(rng.gen_range(0..8)),
                }
            }
        }
        _ => {
            let mut x = rng.gen::<u16>();
            while v.len() < len {
                let step = rng.gen_range(0..5u16);
                for _ in 0..rng.gen_range(10..300) {
                    x = x.wrapping_add(step);
                    v.extend_from_slice(&x.to_le_bytes());
                }
            }
        }
    }
    v.truncate(len);
    v
}

fn ours_c(data: &[u8], max: usize, level: u32) -> Option<Vec<u8>> {
    let mut c = LzmsCompressor::new(max, level);
    let mut out = vec![0u8; data.len()];
    c.compress(data, &mut out).map(|n| {
        out.truncate(n);
        out
    })
}

fn ours_d(z: &[u8], n: usize, max: usize) -> Option<Vec<u8>> {
    let mut d = LzmsDecompressor::new(max);
    let mut out = vec![0u8; n];
    d.decompress(z, &mut out).ok().map(|_| out)
}

/// Every direction for one buffer; returns (ours, wimlib) compressed sizes.
fn check(data: &[u8], max: usize, level: u32) -> (Option<usize>, Option<usize>) {
    let ours = ours_c(data, max, level);
    if let Some(z) = &ours {
        assert!(z.len() < data.len());
        assert!(
            ours_d(z, data.len(), max).as_deref() == Some(data),
            "ours->ours len {}",
            data.len()
        );
        let mut w = WimlibDecompressor::new(Ctype::Lzms, max).unwrap();
        assert!(
            w.decompress(z, data.len()).as_deref() == Some(data),
            "ours->wimlib len {} level {level}",
            data.len()
        );
    }
    let mut wc = WimlibCompressor::new(Ctype::Lzms, max, level).unwrap();
    let theirs = wc.compress(data);
    if let Some(z) = &theirs {
        assert!(
            ours_d(z, data.len(), max).as_deref() == Some(data),
            "wimlib->ours len {} level {level}",
            data.len()
        );
    }
    (ours.map(|z| z.len()), theirs.map(|z| z.len()))
}

#[test]
fn edge_sizes_every_kind_both_directions() {
    for &len in &[
        0usize,
        1,
        2,
        3,
        4,
        5,
        16,
        17,
        18,
        33,
        100,
        1000,
        4097,
        65536,
        CHUNK - 1,
        CHUNK,
    ] {
        for kind in 0..5u8 {
            for level in [20u32, 50, 100] {
                check(&gen(kind, len, len as u64 + u64::from(kind)), CHUNK, level);
            }
        }
    }
}

#[test]
fn compressible_kinds_shrink() {
    for kind in 1..5u8 {
        let data = gen(kind, CHUNK, 7);
        let (ours, theirs) = check(&data, CHUNK, 50);
        let (o, t) = (
            ours.expect("ours compresses"),
            theirs.expect("wimlib compresses"),
        );
        // Loose sanity bound against wimlib's near-optimal parser.
        assert!(
            o < data.len() / 2 && o < t * 2,
            "kind {kind}: ours {o} wimlib {t}"
        );
    }
    assert!(ours_c(&gen(0, CHUNK, 1), CHUNK, 50).is_none());
}

fn usr_files(step: usize, take: usize) -> Vec<Vec<u8>> {
    let mut files: Vec<_> = [
        "/usr/bin",
        "/usr/share/doc/git",
        "/usr/lib/x86_64-linux-gnu",
    ]
    .iter()
    .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
    .map(|e| e.path())
    .filter(|p| p.is_file())
    .collect();
    files.sort();
    files
        .iter()
        .step_by(step)
        .filter_map(|f| std::fs::read(f).ok())
        .filter(|d| !d.is_empty())
        .take(take)
        .collect()
}

#[test]
fn real_files_both_directions() {
    let mut n = 0;
    let (mut ours_total, mut theirs_total, mut raw) = (0usize, 0usize, 0usize);
    for data in usr_files(23, 40) {
        for chunk in data.chunks(CHUNK).take(4) {
            let (o, t) = check(chunk, CHUNK, 50);
            ours_total += o.unwrap_or(chunk.len());
            theirs_total += t.unwrap_or(chunk.len());
            raw += chunk.len();
            n += 1;
        }
    }
    assert!(
        n >= 40 && raw > 1_000_000,
        "too little real data ({n} chunks, {raw} bytes)"
    );
    eprintln!("real files: {raw} bytes, ours {ours_total}, wimlib {theirs_total}");
}

/// Real bytes from /usr/bin concatenated to `len`.
fn real_bytes(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    for d in usr_files(5, usize::MAX) {
        v.extend_from_slice(&d[..d.len().min(1 << 20)]);
        if v.len() >= len {
            break;
        }
    }
    v.truncate(len);
    v
}

#[test]
fn multi_mebibyte_chunks_both_directions() {
    // Solid resources use large chunks (wimlib: 64 MiB by default).
    for &len in &[1usize << 20, (4 << 20) + 3, 6 << 20] {
        let data = real_bytes(len);
        assert_eq!(data.len(), len);
        let (o, t) = check(&data, len, 50);
        eprintln!("{len} bytes: ours {o:?} wimlib {t:?}");
        assert!(o.is_some() && t.is_some());
    }
}

#[test]
fn corrupt_streams_fail_or_differ_without_panics() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    for kind in 1..5u8 {
        let data = gen(kind, 20_000, 9);
        let mut wc = WimlibCompressor::new(Ctype::Lzms, CHUNK, 50).unwrap();
        for z in [
            ours_c(&data, CHUNK, 50).unwrap(),
            wc.compress(&data).unwrap(),
        ] {
            for _ in 0..200 {
                let mut bad = z.clone();
                let bit = rng.gen_range(0..bad.len() * 8);
                bad[bit / 8] ^= 1 << (bit % 8);
                let _ = ours_d(&bad, data.len(), CHUNK);
            }
            for cut in [2usize, 4, z.len() / 2] {
                let _ = ours_d(&z[..z.len() - cut], data.len(), CHUNK);
            }
            // Odd lengths and fewer than 4 bytes are malformed.
            assert!(ours_d(&z[..z.len() - 1], data.len(), CHUNK).is_none());
            assert!(ours_d(&z[..2], data.len(), CHUNK).is_none());
        }
    }
}

#[test]
fn factory_functions_build_lzms() {
    use tasq_codecs::{new_compressor, new_decompressor, CompressionFormat};
    let data = gen(3, 50_000, 4);
    let mut c = new_compressor(CompressionFormat::Lzms, CHUNK, 50).expect("LZMS compressor");
    let mut z = vec![0u8; data.len()];
    let n = c.compress(&data, &mut z).expect("compresses");
    let mut d = new_decompressor(CompressionFormat::Lzms, CHUNK).expect("LZMS decompressor");
    let mut out = vec![0u8; data.len()];
    d.decompress(&z[..n], &mut out).unwrap();
    assert!(out == data);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn round_trips_against_wimlib(kind in 0u8..5, len in 0usize..40_000, seed: u64, lvl in 0usize..3) {
        check(&gen(kind, len, seed), CHUNK, [20, 50, 100][lvl]);
    }

    #[test]
    fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..3000), n in 0usize..100_000) {
        let _ = ours_d(&data, n, CHUNK);
    }
}

/// wimlib's default solid chunk size. Slow in debug builds, so run on
/// demand: `cargo test --release -p tasq-codecs --test lzms_oracle -- --ignored`.
#[test]
#[ignore]
fn solid_64_mib_chunk_both_directions() {
    let len = 64 << 20;
    let mut data = real_bytes(48 << 20);
    // Top up with synthetic kinds if /usr holds less.
    let mut seed = 0;
    while data.len() < len {
        data.extend_from_slice(&gen((seed % 4) as u8 + 1, 1 << 20, seed));
        seed += 1;
    }
    data.truncate(len);
    let (o, t) = check(&data, len, 50);
    eprintln!("64 MiB: ours {o:?} wimlib {t:?}");
    assert!(o.is_some() && t.is_some());
}

/// Writes a seed corpus for the `lzms_decompress` fuzz target (3-byte size,
/// then a stream from wimlib or from us) into `$LZMS_SEEDS`:
/// `LZMS_SEEDS=fuzz/corpus/lzms_decompress cargo test -p tasq-codecs --test lzms_oracle -- --ignored seeds`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let Ok(dir) = std::env::var("LZMS_SEEDS") else {
        return;
    };
    std::fs::create_dir_all(&dir).unwrap();
    let mut wc = WimlibCompressor::new(Ctype::Lzms, CHUNK, 50).unwrap();
    for kind in 1..5u8 {
        for (k, &len) in [300usize, 3000, 30_000].iter().enumerate() {
            let data = gen(kind, len, k as u64);
            let streams = [wc.compress(&data), ours_c(&data, CHUNK, 50)];
            for (w, z) in streams.iter().enumerate() {
                let Some(z) = z else { continue };
                let mut seed = ((len - 1) as u32).to_le_bytes()[..3].to_vec();
                seed.extend_from_slice(z);
                std::fs::write(format!("{dir}/seed-{kind}-{len}-{w}"), seed).unwrap();
            }
        }
    }
}

/// Random bytes with x86 CALLs to a few targets sprinkled in: the x86
/// filter translates them, yet the whole does not shrink.
fn random_with_calls(len: usize) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xca11);
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        if rng.gen_ratio(1, 1024) {
            let pos = v.len() as u32;
            v.push(0xE8);
            let target = rng.gen_range(0..64u32) * 16;
            v.extend_from_slice(&target.wrapping_sub(pos).to_le_bytes());
        } else {
            v.push(rng.gen());
        }
    }
    v.truncate(len);
    v
}

#[test]
fn in_place_compression_matches_the_copying_one_and_restores_raw_chunks() {
    // One compressor for everything, sizes across the release threshold
    // (big chunks give the match finder's memory back, small ones reuse it).
    let max = 6 << 20;
    let mut copying = LzmsCompressor::new(max, 50);
    let mut in_place = LzmsCompressor::new(max, 50);
    let mut out_a = vec![0u8; max];
    let mut out_b = vec![0u8; max];
    for (data, shrinks) in [
        (real_bytes(6 << 20), true),
        (real_bytes(1 << 20), true),
        (random_with_calls(5 << 20), false),
        (real_bytes((5 << 20) + 7), true),
        (random_with_calls(300_000), false),
    ] {
        let n = data.len();
        let a = copying.compress(&data, &mut out_a[..n]);
        let mut buf = data.clone();
        let b = in_place.compress_in_place(&mut buf, &mut out_b[..n]);
        assert_eq!(a.is_some(), shrinks, "{n} bytes");
        assert_eq!(a, b, "{n} bytes: sizes");
        match a {
            Some(k) => {
                assert!(out_a[..k] == out_b[..k], "{n} bytes: outputs differ");
                assert!(ours_d(&out_b[..k], n, max).as_deref() == Some(&data[..]));
            }
            None => assert!(buf == data, "{n} bytes: input not restored"),
        }
    }
}
