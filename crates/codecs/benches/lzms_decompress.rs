//! LZMS decompression benchmark in the solid-resource shape: one large
//! chunk (64 MiB by default, wimlib's solid chunk size) compressed by
//! wimlib, decompressed by tasq and by wimlib alternately, several rounds
//! in one process, into reused output buffers.
//!
//! Prints each round's speeds (MB/s of uncompressed data over CPU time of
//! this thread, so other jobs on the machine disturb it less), the best
//! round of each decoder (the least disturbed; the machine is shared) and
//! the medians. Run with
//! `cargo bench -p tasq-codecs --bench lzms_decompress`; `LZMS_DEC_MB` sets
//! the chunk size (default 64), `LZMS_DEC_LEVEL` wimlib's level (default
//! 50), `LZMS_DEC_ROUNDS` the rounds (default 9),
//! `LZMS_BENCH_CORPUS=<file>` replaces the /usr corpus. The compressed chunk
//! is cached in the temp directory (compressing 64 MiB takes a while).
//! `LZMS_DEC_ONLY=tasq` or `LZMS_DEC_ONLY=wimlib` times one decoder only
//! (for `perf` and `valgrind`).

mod common;
#[path = "common/cputime.rs"]
mod cputime;
#[path = "common/rounds.rs"]
mod rounds;

use cputime::{clock, cpu_secs};
use tasq_codecs::lzms::LzmsDecompressor;
use tasq_codecs::Decompressor;
use wimlib_oracle::{Ctype, WimlibCompressor, WimlibDecompressor};

fn main() {
    // `cargo test --all-targets` runs bench binaries without `--bench`:
    // then a 1 MiB, one-round smoke run, not the 64 MiB measurement.
    let measuring = std::env::args().any(|a| a == "--bench");
    let (mb_default, rounds_default) = if measuring { (64, 9) } else { (1, 1) };
    let mb = common::env_num("LZMS_DEC_MB", mb_default);
    let level = common::env_num("LZMS_DEC_LEVEL", 50) as u32;
    let rounds = common::env_num("LZMS_DEC_ROUNDS", rounds_default).max(1);
    let corpus = common::corpus_from_env("LZMS_BENCH_CORPUS", mb << 20);
    let n = corpus.len();
    let cache = std::env::temp_dir().join(format!(
        "tasq-lzms-dec-{n}-{level}-{:016x}.bin",
        common::fnv(&corpus)
    ));
    let z = match std::fs::read(&cache) {
        Ok(z) => z,
        Err(_) => {
            let mut wc = WimlibCompressor::new(Ctype::Lzms, n, level).expect("wimlib compressor");
            let z = wc.compress(&corpus).expect("corpus compresses");
            // A failed cache write only costs the next run a recompression.
            let _ = std::fs::write(&cache, &z);
            z
        }
    };
    println!(
        "LZMS decompression, one {n}-byte chunk compressed by wimlib level {level} to {} bytes",
        z.len()
    );

    let mut ours = LzmsDecompressor::new(n);
    let mut theirs = WimlibDecompressor::new(Ctype::Lzms, n).expect("wimlib decompressor");
    let mut out = vec![0u8; n];
    // Warm-up round, also the correctness check of both decoders.
    ours.decompress(&z, &mut out)
        .expect("tasq decodes wimlib's chunk");
    assert!(out == corpus, "tasq's output differs");
    out.fill(0);
    assert!(theirs.decompress_into(&z, &mut out), "wimlib decodes");
    assert!(out == corpus, "wimlib's output differs");

    let mbs = |secs: f64| n as f64 / secs / 1e6;
    if let Ok(only) = std::env::var("LZMS_DEC_ONLY") {
        for round in 0..rounds {
            let t = clock();
            if only == "wimlib" {
                assert!(theirs.decompress_into(&z, &mut out), "wimlib decodes");
            } else {
                ours.decompress(&z, &mut out).expect("tasq decodes");
            }
            println!("| {round} | {:.1} MB/s ({only}) |", mbs(cpu_secs(&t)));
        }
        return;
    }
    let mut table = rounds::Rounds::new();
    for _ in 0..rounds {
        let t = clock();
        ours.decompress(&z, &mut out).expect("tasq decodes");
        let ot = cpu_secs(&t);
        let t = clock();
        assert!(theirs.decompress_into(&z, &mut out), "wimlib decodes");
        let wt = cpu_secs(&t);
        table.push(mbs(ot), mbs(wt));
    }
    table.finish();
}
