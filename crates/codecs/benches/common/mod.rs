//! The benchmark corpus shared by the codec benchmarks: real files of this
//! machine (executables, libraries, text), the kind of data a captured
//! Windows volume holds, read in a fixed order so runs are comparable.

use std::path::Path;

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
