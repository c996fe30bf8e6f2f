//! XPRESS: tasq against wimlib on the same corpus in the same run.
//!
//! 8 MiB of real files cut into 32 KiB chunks (the WIM default), compressed
//! at the default level 50 and decompressed. Before timing, prints the total
//! compressed size of both (chunks that do not shrink count at their raw
//! size, as a WIM stores them) at levels 20, 50 and 100.
//!
//! Run: `cargo bench -p tasq-codecs --bench xpress`.

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

fn print_sizes(corpus: &[u8]) {
    let mut out = vec![0u8; CHUNK];
    println!(
        "xpress corpus: {} bytes in {} chunks of {CHUNK}",
        corpus.len(),
        corpus.len().div_ceil(CHUNK)
    );
    for level in [20, 50, 100] {
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

fn bench(c: &mut Criterion) {
    let corpus = common::corpus(CORPUS);
    print_sizes(&corpus);

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
