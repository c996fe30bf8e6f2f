//! Helpers shared by this crate's integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::Command;

use tasq_wim::apply::{apply_image, ApplyOptions};
use tasq_wim::memfs::MemFs;
use tasq_wim::reader::Wim;

/// Deterministic bytes: text-like when `text`, else noise.
pub fn bytes(seed: u32, len: usize, text: bool) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if text {
                b"the quick brown fox jumps over a lazy dog "[(x as usize ^ (i / 9)) % 42]
            } else {
                x as u8
            }
        })
        .collect()
}

/// Runs `wimlib-imagex ARGS`, which must succeed without complaint;
/// returns stdout and stderr.
pub fn wimlib(args: &[&str]) -> String {
    let out = Command::new("wimlib-imagex")
        .args(args)
        .output()
        .expect("wimlib-imagex must be installed (scripts/setup.sh)");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "wimlib-imagex {args:?} failed: {all}");
    // (Parts written without an integrity table draw a warning from
    // `verify`; that one is expected.)
    let complaint = all
        .lines()
        .any(|l| (l.contains("WARNING") && !l.contains("integrity")) || l.contains("ERROR"));
    assert!(!complaint, "wimlib-imagex {args:?} complained: {all}");
    all
}

/// Image `n` applied by us into memory (2 threads).
pub fn apply_to_memory(wim: &Wim, n: u32) -> MemFs {
    apply_to_memory_open(wim, n, 1)
}

/// As [`apply_to_memory`], into a target that takes up to `max_open`
/// streams of one blob at once.
pub fn apply_to_memory_open(wim: &Wim, n: u32, max_open: usize) -> MemFs {
    let mut fs = MemFs::new();
    fs.max_open = max_open;
    apply_image(
        wim,
        n,
        &mut fs,
        &ApplyOptions {
            threads: 2,
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap();
    fs
}

/// The regular files of image `n` applied by us.
pub fn our_files(wim: &Wim, n: u32) -> BTreeMap<String, Vec<u8>> {
    apply_to_memory(wim, n)
        .nodes
        .into_iter()
        .filter_map(|(k, v)| v.data.map(|d| (k, d)))
        .collect()
}
