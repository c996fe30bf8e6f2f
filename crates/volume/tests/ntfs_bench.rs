//! Benchmark (ignored by default): capture of one NTFS volume by tasq and
//! by `wimlib-imagex capture`, same run, same compression (LZX, level 50,
//! default threads). The volume is made by wimlib applying a capture of a
//! host directory (`TASQ_NTFS_BENCH_SRC`, default `/usr/share`).
//!
//! `cargo test --release -p tasq-volume --test ntfs_bench -- --ignored --nocapture`
#![cfg(feature = "ntfs")]

mod ntfs_common;

use std::path::Path;
use std::time::Instant;

use ntfs_common::{mkntfs, run};
use tasq_volume::ntfs::{NtfsSource, NtfsVolume};
use tasq_wim::capture_config::CaptureConfig;
use tasq_wim::writer::{ImageOptions, WimWriter, WriteOptions};
use tasq_wim::CompressionFormat;

fn dir_size(p: &Path) -> u64 {
    let out = run("du", &["-sb", p.to_str().unwrap()]);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
#[ignore]
fn capture_speed_vs_wimlib() {
    let src = std::env::var("TASQ_NTFS_BENCH_SRC").unwrap_or_else(|_| "/usr/share".into());
    let work = std::env::var("TASQ_NTFS_BENCH_DIR")
        .unwrap_or_else(|_| std::env::temp_dir().display().to_string());
    let dir = tempfile::tempdir_in(work).unwrap();
    let seed = dir.path().join("seed.wim");
    run(
        "wimlib-imagex",
        &[
            "capture",
            &src,
            seed.to_str().unwrap(),
            "seed",
            "--compress=none",
        ],
    );
    let img = dir.path().join("vol.img");
    let mib = dir_size(Path::new(&src)) * 2 / (1 << 20) + 256;
    mkntfs(&img, mib);
    run(
        "wimlib-imagex",
        &["apply", seed.to_str().unwrap(), "1", img.to_str().unwrap()],
    );
    std::fs::remove_file(&seed).unwrap();
    // Warm the page cache for both tools alike.
    run("cat", &[img.to_str().unwrap()]);

    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    // Scan only (metadata of every file, no data).
    let t = Instant::now();
    let vol = NtfsVolume::open_whole(&img, false).unwrap();
    let tree = tasq_wim::capture::CaptureSource::scan(
        &mut NtfsSource::new(&vol),
        &CaptureConfig::windows_default(),
        &mut |_| {},
    )
    .unwrap();
    drop(vol);
    eprintln!(
        "tasq scan only: {:.2} s for {} paths",
        t.elapsed().as_secs_f64(),
        tree.dentries.len()
    );
    for (label, tasq_c, wimlib_c) in [
        ("none", CompressionFormat::None, "--compress=none"),
        ("LZX", CompressionFormat::Lzx, "--compress=LZX"),
    ] {
        let theirs = dir.path().join(format!("wimlib-{label}.wim"));
        let t = Instant::now();
        run(
            "wimlib-imagex",
            &[
                "capture",
                img.to_str().unwrap(),
                theirs.to_str().unwrap(),
                "w",
                wimlib_c,
            ],
        );
        let t_wimlib = t.elapsed().as_secs_f64();

        let ours = dir.path().join(format!("tasq-{label}.wim"));
        let t = Instant::now();
        let vol = NtfsVolume::open_whole(&img, false).unwrap();
        let mut w = WimWriter::create(
            &ours,
            WriteOptions {
                compression: tasq_c,
                ..WriteOptions::default()
            },
        )
        .unwrap();
        w.add_image(
            &mut NtfsSource::new(&vol),
            &CaptureConfig::windows_default(),
            &ImageOptions::default(),
            &mut |_| {},
        )
        .unwrap();
        w.finish().unwrap();
        vol.close().unwrap();
        let t_tasq = t.elapsed().as_secs_f64();
        eprintln!(
            "[{label}] wimlib-imagex capture: {t_wimlib:.2} s, {} bytes; tasq capture: {t_tasq:.2} s, {} bytes; \
             time ratio tasq/wimlib {:.2}, size ratio {:.3}",
            size(&theirs),
            size(&ours),
            t_tasq / t_wimlib,
            size(&ours) as f64 / size(&theirs) as f64
        );
        std::fs::remove_file(&ours).unwrap();
        if label != "LZX" {
            std::fs::remove_file(&theirs).unwrap();
            continue;
        }
        // Apply of wimlib's LZX image onto fresh volumes by both tools.
        let fresh = |name: &str| {
            let p = dir.path().join(name);
            mkntfs(&p, mib);
            p
        };
        let v1 = fresh("apply-wimlib.img");
        let t = Instant::now();
        run(
            "wimlib-imagex",
            &["apply", theirs.to_str().unwrap(), "1", v1.to_str().unwrap()],
        );
        let a_wimlib = t.elapsed().as_secs_f64();
        std::fs::remove_file(&v1).unwrap();
        let v2 = fresh("apply-tasq.img");
        let t = Instant::now();
        let wim = tasq_wim::reader::Wim::open(&theirs).unwrap();
        let vol = NtfsVolume::open_whole(&v2, true).unwrap();
        tasq_volume::ntfs::apply_image_to_ntfs(&wim, 1, vol, &Default::default(), &mut |_| {})
            .unwrap();
        let a_tasq = t.elapsed().as_secs_f64();
        eprintln!(
            "[apply LZX] wimlib-imagex apply: {a_wimlib:.2} s; tasq apply: {a_tasq:.2} s; \
             time ratio tasq/wimlib {:.2}",
            a_tasq / a_wimlib
        );
    }
    eprintln!("NTFS volume from {src}: {mib} MiB volume");
}
