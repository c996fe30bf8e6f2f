//! Times the host-directory backend on a real tree and prints the same
//! steps done by wimlib-imagex beside it.
//!
//! `cargo run --release -p tasq-volume --example hostdir_bench -- [SRC]`
//! (SRC defaults to /usr/share/doc). The steps are not identical: wimlib's
//! capture also hashes and writes an (uncompressed) WIM, and its apply
//! reads from that WIM; ours reads the source files directly. Numbers are
//! for a warm page cache.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::Read;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use tasq_volume::{HostDirSource, HostDirTarget};
use tasq_wim::capture::{CaptureSource, NoFilter};
use tasq_wim::image::StreamSource;

fn main() {
    let src: PathBuf = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/usr/share/doc".into())
        .into();
    let tmp = tempfile::tempdir().expect("temporary directory");

    let t = Instant::now();
    let mut source = HostDirSource::new(&src).expect("source");
    let tree = source.scan(&NoFilter, &mut |_| {}).expect("scan");
    let scan = t.elapsed();
    let stats = tree.stats();
    println!(
        "tree {}: {} dirs, {} files, {} bytes, {} warnings",
        src.display(),
        stats.dir_count,
        stats.file_count,
        stats.total_bytes,
        source.warnings().len()
    );
    println!("tasq scan:                   {:8.3} s", scan.as_secs_f64());

    let t = Instant::now();
    let mut bytes = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    for inode in &tree.inodes {
        for s in &inode.streams {
            if let StreamSource::External(id) = s.source {
                let mut r = source.open_stream(id).expect("open");
                loop {
                    let n = r.read(&mut buf).expect("read");
                    if n == 0 {
                        break;
                    }
                    bytes += n as u64;
                }
            }
        }
    }
    let read = t.elapsed();
    println!(
        "tasq read all streams:       {:8.3} s ({:.0} MiB/s)",
        read.as_secs_f64(),
        bytes as f64 / read.as_secs_f64() / (1 << 20) as f64
    );

    let t = Instant::now();
    let mut target = HostDirTarget::new(tmp.path().join("by_tasq")).expect("target");
    common::drive_apply(&tree, &mut target, &|s| match &s.source {
        StreamSource::External(id) => {
            let mut v = Vec::new();
            source
                .open_stream(*id)
                .expect("open")
                .read_to_end(&mut v)
                .expect("read");
            v
        }
        StreamSource::Inline(d) => d.as_ref().clone(),
        StreamSource::None => Vec::new(),
    });
    println!(
        "tasq apply (from source):    {:8.3} s",
        t.elapsed().as_secs_f64()
    );

    let wim = tmp.path().join("x.wim");
    let run = |args: &[&str]| {
        let t = Instant::now();
        let out = Command::new("wimlib-imagex")
            .args(args)
            .output()
            .expect("wimlib-imagex");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        t.elapsed().as_secs_f64()
    };
    let s = src.to_str().expect("UTF-8 source path");
    let w = wim.to_str().expect("UTF-8 temp path");
    println!(
        "wimlib capture --compress=none --norpfix: {:8.3} s",
        run(&["capture", s, w, "bench", "--compress=none", "--norpfix"])
    );
    let out = tmp.path().join("by_wimlib");
    println!(
        "wimlib apply (from the WIM):  {:8.3} s",
        run(&["apply", w, "1", out.to_str().expect("UTF-8 temp path")])
    );
}
