//! LZX benchmark: tasq against wimlib on the same 8 MiB corpus cut into
//! 32 KiB chunks (as a WIM writer does), single-threaded.
//!
//! Prints, per level, the total compressed size (chunks that do not shrink
//! count at their raw size, as in a WIM), the ratio against wimlib, and the
//! compression and decompression speeds in MB/s of uncompressed data.
//! Run with `cargo bench -p tasq-codecs --bench lzx`; set `LZX_BENCH_MB` to
//! change the corpus size, `LZX_BENCH_LEVELS` (comma-separated) the levels
//! and `LZX_BENCH_ROUNDS` the number of alternated timing rounds (best kept);
//! `LZX_BENCH_SAVE=<file>` saves the corpus, `LZX_BENCH_CORPUS=<file>` reuses it.
//! `LZX_BENCH_ONLY=tasq` compresses with tasq only and skips the rest (for
//! `perf stat` counts of tasq's compressor alone).

mod common;

use std::time::Instant;
use tasq_codecs::lzx::{LzxCompressor, LzxDecompressor};
use tasq_codecs::{Compressor, Decompressor};
use wimlib_oracle::{Ctype, WimlibCompressor, WimlibDecompressor};

const CHUNK: usize = 32768;

/// A clock for this thread: CPU time from /proc/thread-self/schedstat when
/// available (the machine may be shared, so wall time would also count time
/// spent waiting for a core), else wall time.
struct Clock(Instant, Option<u64>);

fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

impl Clock {
    fn start() -> Self {
        Clock(Instant::now(), cpu_ns())
    }
    fn secs(&self) -> f64 {
        match (self.1, cpu_ns()) {
            (Some(a), Some(b)) => (b - a) as f64 / 1e9,
            _ => self.0.elapsed().as_secs_f64(),
        }
    }
}

/// Compressed chunks (`None` = stored raw) and the seconds taken.
fn run_compress(
    chunks: &[&[u8]],
    mut f: impl FnMut(&[u8]) -> Option<Vec<u8>>,
) -> (Vec<Option<Vec<u8>>>, f64) {
    let t = Clock::start();
    let out: Vec<_> = chunks.iter().map(|c| f(c)).collect();
    (out, t.secs())
}

fn total(chunks: &[&[u8]], z: &[Option<Vec<u8>>]) -> usize {
    chunks
        .iter()
        .zip(z)
        .map(|(c, z)| z.as_ref().map_or(c.len(), Vec::len))
        .sum()
}

fn main() {
    let mb: usize = common::env_num("LZX_BENCH_MB", 8);
    let levels: Vec<u32> = common::env_levels("LZX_BENCH_LEVELS");
    let rounds: usize = common::env_num("LZX_BENCH_ROUNDS", 2);
    // LZX_BENCH_CORPUS=<file> benchmarks a saved corpus instead (the one
    // built from /usr changes whenever packages are installed).
    let corpus = common::corpus_from_env("LZX_BENCH_CORPUS", mb << 20);
    if let Ok(path) = std::env::var("LZX_BENCH_SAVE") {
        std::fs::write(path, &corpus).expect("LZX_BENCH_SAVE file");
    }
    let chunks: Vec<&[u8]> = corpus.chunks(CHUNK).collect();
    let size = corpus.len() as f64;
    let mbs = |secs: f64| size / secs / 1e6;
    if std::env::var("LZX_BENCH_ONLY").as_deref() == Ok("tasq") {
        for &level in &levels {
            let mut ours = LzxCompressor::new(CHUNK, level);
            let mut buf = vec![0u8; CHUNK];
            let (z, t) = run_compress(&chunks, |c| {
                ours.compress(c, &mut buf).map(|n| buf[..n].to_vec())
            });
            let n = total(&chunks, &z);
            println!("level {level:3}: tasq {n:9} B {:6.1} MB/s", mbs(t));
        }
        return;
    }
    println!(
        "LZX corpus: {} bytes in {} chunks of {} bytes",
        corpus.len(),
        chunks.len(),
        CHUNK
    );
    for &level in &levels {
        // The machine may be shared: alternate the two compressors and keep
        // each one's best time.
        let mut ours = LzxCompressor::new(CHUNK, level);
        let mut buf = vec![0u8; CHUNK];
        let mut wc = WimlibCompressor::new(Ctype::Lzx, CHUNK, level).expect("wimlib compressor");
        let (mut oz, mut ot, mut wz, mut wt) = (Vec::new(), f64::MAX, Vec::new(), f64::MAX);
        for _ in 0..rounds.max(1) {
            let (z, t) = run_compress(&chunks, |c| {
                ours.compress(c, &mut buf).map(|n| buf[..n].to_vec())
            });
            (oz, ot) = (z, ot.min(t));
            let (z, t) = run_compress(&chunks, |c| wc.compress(c));
            (wz, wt) = (z, wt.min(t));
        }
        let (os, ws) = (total(&chunks, &oz), total(&chunks, &wz));

        // Decompression: each decoder on its own encoder's output, plus ours
        // on wimlib's output; stored chunks are skipped (no work for either).
        let mut od = LzxDecompressor::new(CHUNK);
        let mut out = vec![0u8; CHUNK];
        let t = Clock::start();
        for (c, z) in chunks.iter().zip(&oz) {
            if let Some(z) = z {
                od.decompress(z, &mut out[..c.len()]).expect("ours->ours");
                assert_eq!(&out[..c.len()], *c);
            }
        }
        let odt = t.secs();
        let mut wd = WimlibDecompressor::new(Ctype::Lzx, CHUNK).expect("wimlib decompressor");
        let t = Clock::start();
        for (c, z) in chunks.iter().zip(&wz) {
            if let Some(z) = z {
                let v = wd.decompress(z, c.len()).expect("wimlib->wimlib");
                assert_eq!(v.len(), c.len());
            }
        }
        let wdt = t.secs();
        let t = Clock::start();
        for (c, z) in chunks.iter().zip(&wz) {
            if let Some(z) = z {
                od.decompress(z, &mut out[..c.len()]).expect("wimlib->ours");
            }
        }
        let owdt = t.secs();
        println!(
            "level {level:3}: tasq {os:9} B ({:.4} of input) {:6.1} MB/s | wimlib {ws:9} B ({:.4}) {:6.1} MB/s | size tasq/wimlib {:.4}, time tasq/wimlib {:.2}",
            os as f64 / size,
            mbs(ot),
            ws as f64 / size,
            mbs(wt),
            os as f64 / ws as f64,
            ot / wt
        );
        println!(
            "           decompress: tasq {:7.1} MB/s (on wimlib's data {:7.1}) | wimlib {:7.1} MB/s",
            mbs(odt),
            mbs(owdt),
            mbs(wdt)
        );
    }
}
