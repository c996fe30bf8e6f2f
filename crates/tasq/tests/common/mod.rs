//! Helpers shared by the `tasq` command-line tests: running the built
//! binary and wimlib-imagex (the independent peer), a fixture tree on disk,
//! and a snapshot of a tree (names, kinds, contents, symlink targets,
//! mtimes, hard-link groups) to compare what an apply produced with the
//! source.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const TASQ: &str = env!("CARGO_BIN_EXE_tasq");

/// Runs `tasq ARGS` and returns its output (whatever the exit status).
pub fn tasq(args: &[&str]) -> Output {
    Command::new(TASQ)
        .args(args)
        .output()
        .expect("cannot run the tasq binary")
}

/// Runs `tasq ARGS`, which must succeed; returns stdout.
pub fn tasq_ok(args: &[&str]) -> String {
    let out = tasq(args);
    assert!(
        out.status.success(),
        "tasq {args:?} failed ({:?}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_panic(&out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `wimlib-imagex ARGS` and returns its output.
pub fn wimlib(args: &[&str]) -> Output {
    Command::new("wimlib-imagex")
        .args(args)
        .output()
        .expect("wimlib-imagex must be installed (apt-get install wimtools)")
}

/// Runs `wimlib-imagex ARGS`, which must succeed without a warning; returns
/// stdout.
pub fn wimlib_ok(args: &[&str]) -> String {
    let out = wimlib(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "wimlib-imagex {args:?} failed ({:?}):\n{err}",
        out.status
    );
    // A warning from the peer means it found something it did not like in
    // our WIM (or could not reproduce something): that is a failure too.
    // (Its note that a WIM without an integrity table was not checked
    // against one is not about the WIM's content.)
    let warned = err
        .lines()
        .any(|l| l.contains("WARNING") && !l.contains("does not contain integrity information"));
    assert!(!warned, "wimlib-imagex {args:?} warned:\n{err}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn assert_no_panic(out: &Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "tasq panicked:\n{err}");
    assert!(!err.contains("RUST_BACKTRACE"), "tasq panicked:\n{err}");
}

/// Asserts that a tasq run failed cleanly: a non-zero exit code that is
/// not a panic's (101) nor a signal, exactly one line on stderr starting
/// with `tasq: error:`, containing every one of `needles`
/// (case-insensitively). Returns that line.
pub fn assert_clean_failure(out: &Output, needles: &[&str]) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_no_panic(out);
    let code = out.status.code();
    assert!(
        code.is_some(),
        "tasq was killed by a signal: {:?}\n{err}",
        out.status
    );
    assert_ne!(
        code,
        Some(0),
        "tasq succeeded where it must fail; stdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_ne!(code, Some(101), "exit code 101 is a panic's:\n{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got:\n{err}");
    let line = lines[0];
    assert!(
        line.starts_with("tasq: error: "),
        "error line does not start with `tasq: error:`: {line}"
    );
    let low = line.to_lowercase();
    for n in needles {
        assert!(
            low.contains(&n.to_lowercase()),
            "error line does not mention {n:?}: {line}"
        );
    }
    line.to_string()
}

/// A temporary directory that is removed at the end of the test.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("tasq-cli-")
        .tempdir()
        .expect("temp dir")
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// Deterministic pseudo-random bytes (xorshift).
pub fn random_bytes(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(0x9E37_79B9) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// Text-like bytes that compress well but not trivially (words drawn from
/// a small vocabulary in a pseudo-random order).
pub fn text_bytes(n: usize, seed: u32) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "windows", "system32", "driver", "imaging", "the", "of", "and", "registry", "boot",
        "kernel", "capture", "apply", "\r\n", "sequence", "task", "0x1F", "volume", "NTFS",
        "chunk", "LZX",
    ];
    let r = random_bytes(n / 3 + 16, seed);
    let mut out = Vec::with_capacity(n + 16);
    let mut i = 0;
    while out.len() < n {
        out.extend_from_slice(WORDS[r[i % r.len()] as usize % WORDS.len()].as_bytes());
        out.push(b' ');
        i += 1;
    }
    out.truncate(n);
    out
}

/// Sets a path's mtime (and atime) without following a symlink, from a
/// date GNU `touch -d` understands. Whole 100 ns ticks only, so that a WIM
/// (100 ns precision) can reproduce the time exactly.
pub fn set_mtime(p: &Path, date: &str) {
    let st = Command::new("touch")
        .arg("-h")
        .arg("-d")
        .arg(date)
        .arg(p)
        .status()
        .expect("touch");
    assert!(st.success(), "touch -h -d {date:?} {}", p.display());
}

pub const UNICODE_NAME: &str = "Ünïcödé 日本語 🎉.txt";

/// Builds the fixture tree in `root` (created if missing), about 1.6 MB:
///
/// ```text
/// a.txt                       "hello\n", mtime in 1950
/// empty                       0 bytes
/// emptydir/
/// d1/big.bin                  1 MiB, 24 chunks of text then 8 random (multi-chunk)
/// d1/dup1.bin, d1/d2/dup2.bin, dup3.bin   three copies of 150 KiB
/// hl_a, d1/hl_b, d1/d2/hl_c   one 5000-byte file with three names
/// d1/d2/d3/deep.txt           small file four levels down
/// rel_link -> a.txt, abs_link -> /nonexistent/tasq-test/abs (dangling),
/// dir_link -> d1, d1/d2/up_link -> ../../emptydir (relative, to a directory)
/// Ünïcödé 日本語 🎉.txt, "name with spaces & ;,'.txt"
/// ```
pub fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("d1/d2/d3")).unwrap();
    fs::create_dir_all(root.join("emptydir")).unwrap();
    fs::write(root.join("a.txt"), b"hello\n").unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    let mut big = text_bytes(24 * 32768, 1);
    big.extend_from_slice(&random_bytes(8 * 32768, 2));
    fs::write(root.join("d1/big.bin"), &big).unwrap();
    let dup = text_bytes(150 * 1024, 3);
    for p in ["d1/dup1.bin", "d1/d2/dup2.bin", "dup3.bin"] {
        fs::write(root.join(p), &dup).unwrap();
    }
    fs::write(root.join("hl_a"), random_bytes(5000, 4)).unwrap();
    fs::hard_link(root.join("hl_a"), root.join("d1/hl_b")).unwrap();
    fs::hard_link(root.join("hl_a"), root.join("d1/d2/hl_c")).unwrap();
    fs::write(root.join("d1/d2/d3/deep.txt"), b"deep down\n").unwrap();
    symlink("a.txt", root.join("rel_link")).unwrap();
    symlink("/nonexistent/tasq-test/abs", root.join("abs_link")).unwrap();
    symlink("d1", root.join("dir_link")).unwrap();
    symlink("../../emptydir", root.join("d1/d2/up_link")).unwrap();
    fs::write(root.join(UNICODE_NAME), "grüße, 世界".as_bytes()).unwrap();
    fs::write(root.join("name with spaces & ;,'.txt"), b"spaces").unwrap();
    set_fixture_times(root);
}

/// Gives every entry of the fixture a fixed, distinct mtime with a
/// sub-second part; directories last (creating entries changes a
/// directory's mtime), deepest first.
pub fn set_fixture_times(root: &Path) {
    if root.join("a.txt").exists() {
        set_mtime(&root.join("a.txt"), "1950-06-01 12:00:00.1234567 UTC");
    }
    let mut entries: Vec<PathBuf> = Vec::new();
    let mut dirs: Vec<PathBuf> = Vec::new();
    walk(root, &mut |p, m| {
        if m.is_dir() {
            dirs.push(p.to_path_buf());
        } else if !p.ends_with("a.txt") {
            entries.push(p.to_path_buf());
        }
    });
    for (i, p) in entries.iter().enumerate() {
        set_mtime(
            p,
            &format!(
                "2019-03-{:02} 10:20:30.{:07} UTC",
                1 + i % 28,
                1_000_000 + i * 37
            ),
        );
    }
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for (i, d) in dirs.iter().enumerate() {
        set_mtime(
            d,
            &format!(
                "2001-09-{:02} 08:00:00.{:07} UTC",
                1 + i % 28,
                5_000_000 + i * 11
            ),
        );
    }
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path, &fs::Metadata)) {
    let m = fs::symlink_metadata(dir).unwrap();
    f(dir, &m);
    if !m.is_dir() {
        return;
    }
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names {
        walk(&p, f);
    }
}

/// What one entry of a tree is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    /// Size and SHA-1 of the content.
    File(u64, String),
    Symlink(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    /// (seconds, nanoseconds) since the UNIX epoch.
    pub mtime: (i64, i64),
}

/// A tree as the tests compare it: entries by relative path ("" is the
/// root), and the hard-link groups (paths sharing an inode, two or more).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub entries: BTreeMap<String, Entry>,
    pub links: BTreeSet<Vec<String>>,
}

pub fn snapshot(root: &Path) -> Snapshot {
    let mut entries = BTreeMap::new();
    let mut by_inode: HashMap<(u64, u64), Vec<String>> = HashMap::new();
    walk(root, &mut |p, m| {
        let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_string();
        let kind = if m.is_dir() {
            Kind::Dir
        } else if m.file_type().is_symlink() {
            Kind::Symlink(fs::read_link(p).unwrap().to_str().unwrap().to_string())
        } else {
            let data = fs::read(p).unwrap();
            Kind::File(data.len() as u64, tasq_wim::Sha1Hash::of(&data).to_string())
        };
        if m.is_file() && m.nlink() > 1 {
            by_inode
                .entry((m.dev(), m.ino()))
                .or_default()
                .push(rel.clone());
        }
        entries.insert(
            rel,
            Entry {
                kind,
                mtime: (m.mtime(), m.mtime_nsec()),
            },
        );
    });
    let links = by_inode
        .into_values()
        .map(|mut v| {
            v.sort();
            v
        })
        .collect();
    Snapshot { entries, links }
}

/// Asserts two trees are the same, naming the first difference.
pub fn assert_same_tree(expected: &Path, actual: &Path, ctx: &str) {
    let (a, b) = (snapshot(expected), snapshot(actual));
    assert_snapshots_equal(&a, &b, ctx);
}

pub fn assert_snapshots_equal(a: &Snapshot, b: &Snapshot, ctx: &str) {
    let keys: BTreeSet<&String> = a.entries.keys().chain(b.entries.keys()).collect();
    for k in keys {
        assert_eq!(
            a.entries.get(k),
            b.entries.get(k),
            "{ctx}: entry {k:?} differs (left: expected, right: actual)"
        );
    }
    assert_eq!(a.links, b.links, "{ctx}: hard-link groups differ");
}

/// `wimlib-imagex info` output parsed into the WIM fields and one map per
/// image (keys as wimlib prints them: "Name", "File Count", ...).
pub struct WimlibInfo {
    pub wim: HashMap<String, String>,
    pub images: Vec<HashMap<String, String>>,
}

pub fn wimlib_info(wim: &Path) -> WimlibInfo {
    let text = wimlib_ok(&["info", s(wim)]);
    let mut info = WimlibInfo {
        wim: HashMap::new(),
        images: Vec::new(),
    };
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim().to_string(), v.trim().to_string());
        if k == "Index" {
            info.images.push(HashMap::new());
        }
        match info.images.last_mut() {
            Some(im) => {
                im.insert(k, v);
            }
            None => {
                info.wim.insert(k, v);
            }
        }
    }
    info
}

/// `tasq wim info --json`.
pub fn tasq_info(wim: &Path) -> serde_json::Value {
    let out = tasq_ok(&["wim", "info", s(wim), "--json"]);
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("tasq wim info --json is not JSON ({e}):\n{out}"))
}

/// Checks that `tasq wim info --json` and `wimlib-imagex info` agree on the
/// image count, boot index and, per image, name, directory and file counts
/// and total bytes. Returns the number of images.
pub fn assert_info_agrees(wim: &Path) -> usize {
    let w = wimlib_info(wim);
    let t = tasq_info(wim);
    let count: usize = w.wim["Image Count"].parse().unwrap();
    assert_eq!(
        t["image_count"].as_u64(),
        Some(count as u64),
        "image count of {}",
        wim.display()
    );
    assert_eq!(w.images.len(), count);
    assert_eq!(
        t["boot_index"].as_u64().map(|b| b.to_string()),
        Some(w.wim["Boot Index"].clone()),
        "boot index of {}",
        wim.display()
    );
    let images = t["images"].as_array().expect("images array");
    assert_eq!(images.len(), count);
    for (i, (wi, ti)) in w.images.iter().zip(images).enumerate() {
        let ctx = format!("{} image {}", wim.display(), i + 1);
        assert_eq!(ti["index"].as_u64(), Some(i as u64 + 1), "{ctx}");
        assert_eq!(ti["name"].as_str().unwrap_or(""), wi["Name"], "{ctx}: name");
        for (tk, wk) in [
            ("dir_count", "Directory Count"),
            ("file_count", "File Count"),
            ("total_bytes", "Total Bytes"),
        ] {
            assert_eq!(
                ti[tk].as_u64().map(|v| v.to_string()),
                Some(wi[wk].clone()),
                "{ctx}: {tk}"
            );
        }
    }
    count
}

/// The sorted path lists of `tasq wim dir` and `wimlib-imagex dir` must be
/// equal (and not trivially empty).
pub fn assert_dir_agrees(wim: &Path, image: &str) -> Vec<String> {
    let mut t: Vec<String> = tasq_ok(&["wim", "dir", s(wim), image])
        .lines()
        .map(str::to_string)
        .collect();
    let mut w: Vec<String> = wimlib_ok(&["dir", s(wim), image])
        .lines()
        .map(str::to_string)
        .collect();
    t.sort();
    w.sort();
    assert!(t.len() > 1, "tasq wim dir listed only {t:?}");
    assert_eq!(
        t,
        w,
        "tasq wim dir vs wimlib-imagex dir of {} image {image}",
        wim.display()
    );
    t
}

/// Every file in `dir` (recursively), for "nothing else appeared" checks.
pub fn list_all(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if fs::symlink_metadata(dir).is_err() {
        return out;
    }
    walk(dir, &mut |p, _| {
        out.insert(p.strip_prefix(dir).unwrap().to_str().unwrap().to_string());
    });
    out
}
