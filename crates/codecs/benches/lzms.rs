//! LZMS benchmark: tasq against wimlib on the same corpus, single-threaded,
//! in two shapes: 128 KiB chunks (WIM's default for non-solid LZMS
//! resources) and one large chunk per `LZMS_BENCH_SOLID_MB` MiB (solid
//! resources; wimlib uses 64 MiB).
//!
//! Prints a Markdown table: per level and shape, the total compressed size
//! (chunks that do not shrink count at their raw size, as in a WIM), the
//! ratio against wimlib, and compression and decompression speeds in MB/s
//! of uncompressed data (CPU time of this thread). Run with
//! `cargo bench -p tasq-codecs --bench lzms`; `LZMS_BENCH_MB` sets the corpus
//! size (default 8), `LZMS_BENCH_LEVELS` the levels (default 20,50,100),
//! `LZMS_BENCH_SOLID_MB` the large chunk size (default 8, 0 to skip) and
//! `LZMS_BENCH_CORPUS=<file>` reuses a saved corpus; `LZMS_BENCH_SHAPES`
//! = `chunk` or `solid` runs only one of the two shapes;
//! `LZMS_BENCH_OURS_ONLY=1` times tasq's compressor alone (quick checks);
//! `LZMS_BENCH_PER_CHUNK=1` also prints each chunk's compression time.

mod common;
#[path = "common/cputime.rs"]
mod cputime;

use cputime::{clock, cpu_secs};
use tasq_codecs::lzms::{LzmsCompressor, LzmsDecompressor};
use tasq_codecs::{Compressor, Decompressor};
use wimlib_oracle::{Ctype, WimlibCompressor, WimlibDecompressor};

fn run(corpus: &[u8], chunk: usize, level: u32) {
    let chunks: Vec<&[u8]> = corpus.chunks(chunk).collect();
    let size = corpus.len() as f64;
    let mbs = |secs: f64| size / secs / 1e6;

    let mut ours = LzmsCompressor::new(chunk, level);
    let mut buf = vec![0u8; chunk];
    let per_chunk = std::env::var_os("LZMS_BENCH_PER_CHUNK").is_some();
    let t = clock();
    let oz: Vec<Option<Vec<u8>>> = chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let tc = clock();
            let z = ours.compress(c, &mut buf).map(|n| buf[..n].to_vec());
            if per_chunk {
                println!("tasq chunk {i}: {} B in {:.2} s", c.len(), cpu_secs(&tc));
            }
            z
        })
        .collect();
    let ot = cpu_secs(&t);

    if std::env::var_os("LZMS_BENCH_OURS_ONLY").is_some() {
        let os: usize = chunks
            .iter()
            .zip(&oz)
            .map(|(c, z)| z.as_ref().map_or(c.len(), Vec::len))
            .sum();
        println!(
            "| {} KiB | {level} | {os} | | {:.1} | {ot:.2} s | |",
            chunk >> 10,
            mbs(ot)
        );
        return;
    }
    let mut wc = WimlibCompressor::new(Ctype::Lzms, chunk, level).expect("wimlib compressor");
    let t = clock();
    let wz: Vec<Option<Vec<u8>>> = chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let tc = clock();
            let z = wc.compress(c);
            if per_chunk {
                println!("wimlib chunk {i}: {} B in {:.2} s", c.len(), cpu_secs(&tc));
            }
            z
        })
        .collect();
    let wt = cpu_secs(&t);

    let total = |z: &[Option<Vec<u8>>]| -> usize {
        chunks
            .iter()
            .zip(z)
            .map(|(c, z)| z.as_ref().map_or(c.len(), Vec::len))
            .sum()
    };
    let (os, ws) = (total(&oz), total(&wz));

    let mut od = LzmsDecompressor::new(chunk);
    let mut out = vec![0u8; chunk];
    let t = clock();
    for (c, z) in chunks.iter().zip(&oz) {
        if let Some(z) = z {
            od.decompress(z, &mut out[..c.len()]).expect("ours->ours");
            assert!(&out[..c.len()] == *c, "ours->ours mismatch");
        }
    }
    let odt = cpu_secs(&t);
    let t = clock();
    for (c, z) in chunks.iter().zip(&wz) {
        if let Some(z) = z {
            od.decompress(z, &mut out[..c.len()]).expect("wimlib->ours");
            assert!(&out[..c.len()] == *c, "wimlib->ours mismatch");
        }
    }
    let owdt = cpu_secs(&t);
    let mut wd = WimlibDecompressor::new(Ctype::Lzms, chunk).expect("wimlib decompressor");
    let t = clock();
    for (c, z) in chunks.iter().zip(&wz) {
        if let Some(z) = z {
            let v = wd.decompress(z, c.len()).expect("wimlib->wimlib");
            assert_eq!(v.len(), c.len());
        }
    }
    let wdt = cpu_secs(&t);
    // One Markdown table row (header printed by main), ready for
    // docs/performance.md.
    let row = [
        format!("{} KiB", chunk >> 10),
        level.to_string(),
        format!("{os} / {ws}"),
        format!("{:.4}", os as f64 / ws as f64),
        format!("{:.1} / {:.1}", mbs(ot), mbs(wt)),
        format!("{:.2}", ot / wt),
        format!("{:.1} ({:.1}) / {:.1}", mbs(odt), mbs(owdt), mbs(wdt)),
    ];
    println!("| {} |", row.join(" | "));
}

fn main() {
    let mb = common::env_num("LZMS_BENCH_MB", 8);
    let solid_mb = common::env_num("LZMS_BENCH_SOLID_MB", 8);
    let levels: Vec<u32> = common::env_levels("LZMS_BENCH_LEVELS");
    let corpus = common::corpus_from_env("LZMS_BENCH_CORPUS", mb << 20);
    println!("LZMS corpus: {} bytes", corpus.len());
    println!("| chunk | level | bytes tasq / wimlib | size tasq/wimlib | compress MB/s tasq / wimlib | time tasq/wimlib | decompress MB/s tasq (on wimlib's data) / wimlib |");
    println!("|---|---|---|---|---|---|---|");
    // LZMS_BENCH_SHAPES: "chunk", "solid" or both (default).
    let shapes = std::env::var("LZMS_BENCH_SHAPES").unwrap_or_default();
    let (chunked, solid) = match shapes.as_str() {
        "chunk" => (true, false),
        "solid" => (false, true),
        _ => (true, true),
    };
    for &level in &levels {
        if chunked {
            run(&corpus, 1 << 17, level);
        }
        if solid && solid_mb > 0 {
            run(&corpus, (solid_mb << 20).min(corpus.len().max(1)), level);
        }
    }
}
