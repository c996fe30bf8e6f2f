//! XPRESS: tasq against wimlib on the same corpus in the same run.
//!
//! 8 MiB of real files cut into 32 KiB chunks (the WIM default), compressed
//! at the default level 50 and decompressed. Before timing, prints the total
//! compressed size of both (chunks that do not shrink count at their raw
//! size, as a WIM stores them) at levels 20, 50 and 100.
//!
//! Then prints speeds measured in CPU time of the benchmark thread (from
//! /proc/thread-self/schedstat, best of several runs, tasq and wimlib
//! interleaved): on a shared machine those are steadier than criterion's
//! wall-clock figures, which follow.
//!
//! Run: `cargo bench -p tasq-codecs --bench xpress`. `XPRESS_BENCH_LEVELS`
//! (comma-separated) sets the levels of the size and CPU-time tables,
//! `XPRESS_BENCH_CORPUS=<file>` benchmarks a saved corpus (such as the one
//! the LZX bench saves with `LZX_BENCH_SAVE`) instead of reading /usr.
//! `XPRESS_BENCH_PROFILE=<seconds>` only runs tasq's compressor at the
//! first level of `XPRESS_BENCH_LEVELS` over and over for that long (for
//! `perf record`), prints its speed and skips everything else.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;
use tasq_codecs::xpress::{XpressCompressor, XpressDecompressor};
use tasq_codecs::{Compressor, Decompressor};
use wimlib_oracle::{Ctype, WimlibCompressor, WimlibDecompressor};

const CHUNK: usize = 32768;
const CORPUS: usize = 8 << 20;

/// Compressed chunks; `None` where the chunk is stored raw.
type Chunks = Vec<Option<Vec<u8>>>;

fn tasq_compress_all(c: &mut XpressCompressor, corpus: &[u8], out: &mut [u8]) -> usize {
    corpus
        .chunks(CHUNK)
        .map(|ch| c.compress(ch, &mut out[..ch.len()]).unwrap_or(ch.len()))
        .sum()
}

fn wimlib_compress_all(c: &mut WimlibCompressor, corpus: &[u8]) -> usize {
    corpus
        .chunks(CHUNK)
        .map(|ch| c.compress(ch).map_or(ch.len(), |z| z.len()))
        .sum()
}

fn total(chunks: &Chunks, corpus: &[u8]) -> usize {
    chunks
        .iter()
        .zip(corpus.chunks(CHUNK))
        .map(|(z, ch)| z.as_ref().map_or(ch.len(), Vec::len))
        .sum()
}

/// The levels of the size and CPU-time tables.
fn levels() -> Vec<u32> {
    common::env_levels("XPRESS_BENCH_LEVELS")
}

fn print_sizes(corpus: &[u8]) {
    let mut out = vec![0u8; CHUNK];
    println!(
        "xpress corpus: {} bytes in {} chunks of {CHUNK}",
        corpus.len(),
        corpus.len().div_ceil(CHUNK)
    );
    for level in levels() {
        let ours = tasq_compress_all(&mut XpressCompressor::new(CHUNK, level), corpus, &mut out);
        let theirs = wimlib_compress_all(
            &mut WimlibCompressor::new(Ctype::Xpress, CHUNK, level).unwrap(),
            corpus,
        );
        println!(
            "xpress level {level:3}: tasq {ours} bytes ({:.2}%), wimlib {theirs} bytes ({:.2}%), tasq/wimlib = {:.4}",
            100.0 * ours as f64 / corpus.len() as f64,
            100.0 * theirs as f64 / corpus.len() as f64,
            ours as f64 / theirs as f64
        );
    }
}

/// CPU time used so far by this thread, in seconds; wall-clock time where
/// Linux's per-thread scheduler statistics are not available.
fn thread_cpu_seconds() -> f64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(|ns| ns as f64 * 1e-9)
        .unwrap_or_else(|| {
            START
                .get_or_init(std::time::Instant::now)
                .elapsed()
                .as_secs_f64()
        })
}

/// Best CPU time of `runs` runs of each closure, run alternately.
fn best_of(runs: usize, mut a: impl FnMut(), mut b: impl FnMut()) -> (f64, f64) {
    let (mut ta, mut tb) = (f64::MAX, f64::MAX);
    for _ in 0..runs {
        let t = thread_cpu_seconds();
        a();
        ta = ta.min(thread_cpu_seconds() - t);
        let t = thread_cpu_seconds();
        b();
        tb = tb.min(thread_cpu_seconds() - t);
    }
    (ta, tb)
}

fn print_cpu_speeds(corpus: &[u8]) {
    let mb = corpus.len() as f64 / 1e6;
    let mut out = vec![0u8; CHUNK];
    for level in levels() {
        let mut tc = XpressCompressor::new(CHUNK, level);
        let mut wc = WimlibCompressor::new(Ctype::Xpress, CHUNK, level).unwrap();
        let (t, w) = best_of(
            if level > 60 { 2 } else { 5 },
            || {
                tasq_compress_all(&mut tc, corpus, &mut out);
            },
            || {
                wimlib_compress_all(&mut wc, corpus);
            },
        );
        println!(
            "xpress compress level {level:3} (CPU time): tasq {:.1} MB/s, wimlib {:.1} MB/s, tasq/wimlib speed = {:.2}",
            mb / t,
            mb / w,
            w / t
        );
    }
    let mut tc = XpressCompressor::new(CHUNK, 50);
    let mut wc = WimlibCompressor::new(Ctype::Xpress, CHUNK, 50).unwrap();
    let ours: Chunks = corpus
        .chunks(CHUNK)
        .map(|ch| {
            let mut z = vec![0u8; ch.len()];
            tc.compress(ch, &mut z).map(|n| {
                z.truncate(n);
                z
            })
        })
        .collect();
    let theirs: Chunks = corpus.chunks(CHUNK).map(|ch| wc.compress(ch)).collect();
    let mut td = XpressDecompressor::new(CHUNK);
    let mut wd = WimlibDecompressor::new(Ctype::Xpress, CHUNK).unwrap();
    let mut buf = vec![0u8; CHUNK];
    let (t, w) = best_of(
        10,
        || {
            for (z, ch) in ours.iter().zip(corpus.chunks(CHUNK)) {
                if let Some(z) = z {
                    td.decompress(z, &mut buf[..ch.len()]).unwrap();
                }
            }
        },
        || {
            for (z, ch) in theirs.iter().zip(corpus.chunks(CHUNK)) {
                if let Some(z) = z {
                    wd.decompress(z, ch.len()).unwrap();
                }
            }
        },
    );
    println!(
        "xpress decompress (CPU time, MB of output incl. raw chunks): tasq {:.1} MB/s, wimlib {:.1} MB/s, tasq/wimlib speed = {:.2}",
        mb / t,
        mb / w,
        w / t
    );
}

/// Tasq's compressor alone, repeated for `secs` seconds of CPU time.
fn profile_tasq(corpus: &[u8], secs: f64) {
    let level = levels().first().copied().unwrap_or(50);
    let mut tc = XpressCompressor::new(CHUNK, level);
    let mut out = vec![0u8; CHUNK];
    let start = thread_cpu_seconds();
    let mut rounds = 0usize;
    let mut size = 0;
    while thread_cpu_seconds() - start < secs {
        size = tasq_compress_all(&mut tc, corpus, &mut out);
        rounds += 1;
    }
    let t = thread_cpu_seconds() - start;
    // FNV-1a of every chunk's output, to tell whether a change altered it.
    let mut digest = 0xcbf2_9ce4_8422_2325u64;
    for ch in corpus.chunks(CHUNK) {
        let z = tc
            .compress(ch, &mut out[..ch.len()])
            .map_or(ch, |n| &out[..n]);
        for &b in z {
            digest = (digest ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    println!(
        "xpress tasq only, level {level}: {size} bytes (digest {digest:016x}), {rounds} rounds, {:.1} MB/s (CPU time)",
        (rounds * corpus.len()) as f64 / 1e6 / t
    );
}

fn bench(c: &mut Criterion) {
    let corpus = common::corpus_from_env("XPRESS_BENCH_CORPUS", CORPUS);
    if let Some(secs) = std::env::var("XPRESS_BENCH_PROFILE")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
    {
        profile_tasq(&corpus, secs);
        return;
    }
    print_sizes(&corpus);
    print_cpu_speeds(&corpus);

    let mut group = c.benchmark_group("xpress");
    group.throughput(Throughput::Bytes(corpus.len() as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(6));

    let mut tc = XpressCompressor::new(CHUNK, 50);
    let mut out = vec![0u8; CHUNK];
    group.bench_function("compress/tasq", |b| {
        b.iter(|| tasq_compress_all(&mut tc, &corpus, &mut out))
    });
    let mut wc = WimlibCompressor::new(Ctype::Xpress, CHUNK, 50).unwrap();
    group.bench_function("compress/wimlib", |b| {
        b.iter(|| wimlib_compress_all(&mut wc, &corpus))
    });

    // Decompress each side's own output (both decoders also read the other's
    // output in the tests).
    let ours: Chunks = corpus
        .chunks(CHUNK)
        .map(|ch| {
            let mut z = vec![0u8; ch.len()];
            tc.compress(ch, &mut z).map(|n| {
                z.truncate(n);
                z
            })
        })
        .collect();
    let theirs: Chunks = corpus.chunks(CHUNK).map(|ch| wc.compress(ch)).collect();
    println!(
        "xpress level  50 (timed): tasq {} bytes, wimlib {} bytes",
        total(&ours, &corpus),
        total(&theirs, &corpus)
    );

    let mut td = XpressDecompressor::new(CHUNK);
    let mut buf = vec![0u8; CHUNK];
    group.bench_function("decompress/tasq", |b| {
        b.iter(|| {
            for (z, ch) in ours.iter().zip(corpus.chunks(CHUNK)) {
                if let Some(z) = z {
                    td.decompress(z, &mut buf[..ch.len()]).unwrap();
                }
            }
        })
    });
    let mut wd = WimlibDecompressor::new(Ctype::Xpress, CHUNK).unwrap();
    group.bench_function("decompress/wimlib", |b| {
        b.iter(|| {
            for (z, ch) in theirs.iter().zip(corpus.chunks(CHUNK)) {
                if let Some(z) = z {
                    wd.decompress(z, ch.len()).unwrap();
                }
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
