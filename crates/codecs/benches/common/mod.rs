//! The benchmark corpus shared by the codec benchmarks: real files of this
//! machine (executables, libraries, text), the kind of data a captured
//! Windows volume holds, read in a fixed order so runs are comparable;
//! and the environment settings every bench reads the same way.
// Each bench includes this module and uses part of it.
#![allow(dead_code)]

use std::path::Path;

/// FNV-1a, to key cached benchmark data by the corpus content.
pub fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// A number from the environment variable `name`, or `default`.
pub fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Comma-separated compression levels from `name`, or 20, 50 and 100.
pub fn env_levels(name: &str) -> Vec<u32> {
    std::env::var(name)
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![20, 50, 100])
}

/// The first `limit` bytes of the file named by `name` (a saved corpus:
/// the one built from /usr changes whenever packages are installed), or
/// [`corpus`]`(limit)` when it is not set.
pub fn corpus_from_env(name: &str, limit: usize) -> Vec<u8> {
    match std::env::var(name) {
        Ok(path) => {
            let mut v = std::fs::read(&path).unwrap_or_else(|e| panic!("{name} file {path}: {e}"));
            v.truncate(limit);
            v
        }
        Err(_) => corpus(limit),
    }
}

/// Up to `limit` bytes taken from regular files under /usr/bin, /usr/lib and
/// /usr/share/doc, in sorted path order, each file at most 1 MiB.
pub fn corpus(limit: usize) -> Vec<u8> {
    let mut files = Vec::new();
    for root in ["/usr/bin", "/usr/lib/x86_64-linux-gnu", "/usr/share/doc"] {
        collect(Path::new(root), &mut files, 0);
    }
    files.sort();
    let mut out = Vec::with_capacity(limit);
    // Interleave kinds: take every 7th file so binaries and text mix.
    for (i, f) in files.iter().enumerate() {
        if i % 7 != 0 {
            continue;
        }
        if let Ok(data) = std::fs::read(f) {
            let take = data.len().min(1 << 20).min(limit - out.len());
            out.extend_from_slice(&data[..take]);
            if out.len() >= limit {
                break;
            }
        }
    }
    out
}

fn collect(dir: &Path, files: &mut Vec<std::path::PathBuf>, depth: usize) {
    if depth > 4 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            collect(&e.path(), files, depth + 1);
        } else if ft.is_file() {
            files.push(e.path());
        }
    }
}
