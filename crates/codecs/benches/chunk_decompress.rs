//! Chunk decompression benchmark in the WIM shape: a corpus cut into 32 KiB
//! chunks, compressed once by wimlib (LZX or XPRESS, level 50 by default),
//! then decompressed by tasq and by wimlib alternately, several rounds in
//! one process, into a reused output buffer.
//!
//! Prints each round's speeds (MB/s of uncompressed data over CPU time of
//! this thread), the best round of each decoder and the medians. Run with
//! `cargo bench -p tasq-codecs --bench chunk_decompress`; `DEC_CODEC`
//! selects `lzx` (default) or `xpress`, `DEC_MB` the corpus size (default
//! 32), `DEC_LEVEL` wimlib's level (default 50), `DEC_ROUNDS` the rounds
//! (default 9), `DEC_CORPUS=<file>` replaces the /usr corpus.
//! `DEC_SMALL=1` cuts chunks of 1 to 32 KiB (see below).
//! `DEC_ONLY=tasq` or `DEC_ONLY=wimlib` times one decoder only (for `perf`);
//! `DEC_ONLY=tasq-compress` or `DEC_ONLY=wimlib-compress` times one
//! compressor (at `DEC_LEVEL`) over the same chunks instead (for `perf`
//! and `valgrind`, which need one side alone).

mod common;
#[path = "common/cputime.rs"]
mod cputime;
#[path = "common/rounds.rs"]
mod rounds;

use cputime::{clock, cpu_secs};
use tasq_codecs::{new_compressor, new_decompressor, CompressionFormat};
use wimlib_oracle::{Ctype, WimlibCompressor, WimlibDecompressor};

const CHUNK: usize = 32768;

/// Cache format: per chunk a little-endian u32 length (0 = stored raw),
/// then that many bytes.
fn encode_cache(zs: &[Option<Vec<u8>>]) -> Vec<u8> {
    let mut v = Vec::new();
    for z in zs {
        let z = z.as_deref().unwrap_or(&[]);
        v.extend_from_slice(&(z.len() as u32).to_le_bytes());
        v.extend_from_slice(z);
    }
    v
}

/// The cached chunks, or `None` when the file does not hold exactly `n`
/// (an interrupted run may have left it short): then they are made again.
fn decode_cache(mut b: &[u8], n: usize) -> Option<Vec<Option<Vec<u8>>>> {
    let mut zs = Vec::with_capacity(n);
    for _ in 0..n {
        let len = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
        let z = b.get(4..4 + len)?;
        zs.push((len > 0).then(|| z.to_vec()));
        b = b.get(4 + len..)?;
    }
    b.is_empty().then_some(zs)
}

fn main() {
    // `cargo test --all-targets` runs bench binaries without `--bench`:
    // then a 1 MiB, one-round smoke run.
    let measuring = std::env::args().any(|a| a == "--bench");
    let (mb_default, rounds_default) = if measuring { (32, 9) } else { (1, 1) };
    let (format, ctype) = match std::env::var("DEC_CODEC").as_deref() {
        Ok("xpress") => (CompressionFormat::Xpress, Ctype::Xpress),
        _ => (CompressionFormat::Lzx, Ctype::Lzx),
    };
    let mb = common::env_num("DEC_MB", mb_default);
    let level = common::env_num("DEC_LEVEL", 50) as u32;
    let rounds = common::env_num("DEC_ROUNDS", rounds_default).max(1);
    let corpus = common::corpus_from_env("DEC_CORPUS", mb << 20);
    // DEC_SMALL=1: chunks of 1, 2, 4, 8 and 32 KiB in turn, like the last
    // chunks of small files, where the per-chunk work (code tables) weighs.
    let small = std::env::var("DEC_SMALL").is_ok_and(|v| v == "1");
    let chunks: Vec<&[u8]> = if small {
        let mut v = Vec::new();
        let mut rest = &corpus[..];
        for k in [1usize, 2, 4, 8, 32].iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (a, b) = rest.split_at((k << 10).min(rest.len()));
            v.push(a);
            rest = b;
        }
        v
    } else {
        corpus.chunks(CHUNK).collect()
    };
    // Chunks that do not shrink are stored raw in a WIM: no work for
    // either decoder, so they are left out. wimlib's output is cached in
    // the temp directory (level 50 takes seconds per run otherwise).
    let cache = std::env::temp_dir().join(format!(
        "tasq-dec-{format}-{}-{level}-{}-{:016x}.bin",
        corpus.len(),
        if small { "small" } else { "32k" },
        common::fnv(&corpus)
    ));
    let cached = std::fs::read(&cache)
        .ok()
        .and_then(|b| decode_cache(&b, chunks.len()));
    let zs: Vec<Option<Vec<u8>>> = match cached {
        Some(zs) => zs,
        None => {
            let mut wc = WimlibCompressor::new(ctype, CHUNK, level).expect("wimlib compressor");
            let zs: Vec<_> = chunks.iter().map(|c| wc.compress(c)).collect();
            // A failed cache write only costs the next run a recompression.
            let _ = std::fs::write(&cache, encode_cache(&zs));
            zs
        }
    };
    let pairs: Vec<(&[u8], Vec<u8>)> = chunks
        .iter()
        .zip(zs)
        .filter_map(|(c, z)| z.map(|z| (*c, z)))
        .collect();
    let n: usize = pairs.iter().map(|(c, _)| c.len()).sum();
    let zn: usize = pairs.iter().map(|(_, z)| z.len()).sum();
    println!(
        "{format} decompression: {} of {} chunks compressed by wimlib level {level}, {n} -> {zn} bytes",
        pairs.len(),
        chunks.len()
    );

    let mut ours = new_decompressor(format, CHUNK).expect("tasq decompressor");
    let mut theirs = WimlibDecompressor::new(ctype, CHUNK).expect("wimlib decompressor");
    let mut out = vec![0u8; CHUNK];
    // Warm-up round, also the correctness check of both decoders.
    for (c, z) in &pairs {
        let o = &mut out[..c.len()];
        ours.decompress(z, o).expect("tasq decodes wimlib's chunk");
        assert!(o == *c, "tasq's output differs");
        o.fill(0);
        assert!(theirs.decompress_into(z, o), "wimlib decodes");
        assert!(o == *c, "wimlib's output differs");
    }

    let mbs = |secs: f64| n as f64 / secs / 1e6;
    if let Ok(only) = std::env::var("DEC_ONLY") {
        if let Some(side) = only.strip_suffix("-compress") {
            let mut tc = new_compressor(format, CHUNK, level).expect("tasq compressor");
            let mut wc = WimlibCompressor::new(ctype, CHUNK, level).expect("wimlib compressor");
            let mut zbuf = vec![0u8; CHUNK];
            for round in 0..rounds {
                let t = clock();
                let mut zn = 0usize;
                for c in &chunks {
                    zn += if side == "wimlib" {
                        wc.compress(c).map_or(c.len(), |z| z.len())
                    } else {
                        tc.compress(c, &mut zbuf[..c.len()]).unwrap_or(c.len())
                    };
                }
                println!(
                    "| {round} | {:.1} MB/s ({only}, {zn} bytes) |",
                    corpus.len() as f64 / cpu_secs(&t) / 1e6
                );
            }
            return;
        }
        for round in 0..rounds {
            let t = clock();
            for (c, z) in &pairs {
                let o = &mut out[..c.len()];
                if only == "wimlib" {
                    assert!(theirs.decompress_into(z, o), "wimlib decodes");
                } else {
                    ours.decompress(z, o).expect("tasq decodes");
                }
            }
            println!("| {round} | {:.1} MB/s ({only}) |", mbs(cpu_secs(&t)));
        }
        return;
    }
    let mut table = rounds::Rounds::new();
    for _ in 0..rounds {
        let t = clock();
        for (c, z) in &pairs {
            ours.decompress(z, &mut out[..c.len()])
                .expect("tasq decodes");
        }
        let ot = cpu_secs(&t);
        let t = clock();
        for (c, z) in &pairs {
            assert!(
                theirs.decompress_into(z, &mut out[..c.len()]),
                "wimlib decodes"
            );
        }
        let wt = cpu_secs(&t);
        table.push(mbs(ot), mbs(wt));
    }
    table.finish();
}
