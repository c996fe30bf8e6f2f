//! Bad input and faults through the command line. Every case must end with
//! a non-zero exit code, exactly one `tasq: error:` line naming what is
//! wrong, no panic, and nothing written outside the target (for refused
//! images: nothing written at all). Failed or interrupted writes must leave
//! an existing WIM as it was.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::Cursor;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use tasq_wim::capture::{CaptureFilter, CaptureSource, NoFilter, ScanProgress};
use tasq_wim::image::*;
use tasq_wim::reader::Wim;
use tasq_wim::writer::{ImageOptions, WimWriter, WriteOptions};
use tasq_wim::{CompressionFormat, Sha1Hash};

/// A small tree with one multi-chunk file, captured by tasq.
fn sample_wim(dir: &Path, compress: &str, check: bool) -> PathBuf {
    let src = dir.join(format!("src-{compress}"));
    fs::create_dir_all(src.join("sub")).unwrap();
    let mut big = text_bytes(200_000, 5);
    big.extend(random_bytes(70_000, 6));
    fs::write(src.join("sub/big.bin"), big).unwrap();
    fs::write(src.join("small.txt"), b"small file").unwrap();
    let wim = dir.join(format!("sample-{compress}.wim"));
    let mut args = vec!["wim", "capture", s(&src), s(&wim), "--compress", compress];
    if check {
        args.push("--check");
    }
    tasq_ok(&args);
    wim
}

fn names_in(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// Runs the read commands on a damaged WIM: each must fail cleanly,
/// mentioning every needle, and apply/extract must leave no target behind
/// and nothing else in the directory.
fn all_commands_fail(wim: &Path, needles: &[&str], ctx: &str) {
    let dir = wim.parent().unwrap();
    let before = names_in(dir);
    let target = dir.join("apply-target");
    let dest = dir.join("extract-dest");
    for args in [
        vec!["wim", "info", s(wim)],
        vec!["wim", "verify", s(wim)],
        vec!["wim", "dir", s(wim), "1"],
        vec!["wim", "apply", s(wim), "1", s(&target)],
        vec!["wim", "extract", s(wim), "1", "/sub", "--dest", s(&dest)],
    ] {
        let out = tasq(&args);
        let line = assert_clean_failure(&out, needles);
        eprintln!("{ctx}: {:?} -> {line}", args[1]);
    }
    assert!(
        !target.exists(),
        "{ctx}: apply created its target for an unreadable WIM"
    );
    assert!(
        !dest.exists(),
        "{ctx}: extract created its destination for an unreadable WIM"
    );
    assert_eq!(names_in(dir), before, "{ctx}: files appeared");
}

#[test]
fn truncated_wims_are_refused() {
    let tmp = tempdir();
    let wim = sample_wim(tmp.path(), "xpress", false);
    let bytes = fs::read(&wim).unwrap();
    let w = Wim::open(&wim).unwrap();
    let big = w
        .blobs
        .iter()
        .max_by_key(|b| b.reshdr.size_in_wim)
        .unwrap()
        .reshdr;
    let bt = w.header.blob_table;
    let xml = w.header.xml_data;
    assert!(big.offset_in_wim < bt.offset_in_wim && bt.offset_in_wim < xml.offset_in_wim);
    drop(w);
    let cases: [(&str, u64, &[&str]); 5] = [
        (
            "inside the header",
            100,
            &["not a WIM", "shorter than a WIM header"],
        ),
        (
            "inside a blob",
            big.offset_in_wim + big.size_in_wim / 2,
            &["blob table", "truncated"],
        ),
        (
            "inside the blob table",
            bt.offset_in_wim + 25,
            &["blob table", "truncated"],
        ),
        (
            "inside the XML data",
            xml.offset_in_wim + 10,
            &["XML data", "truncated"],
        ),
        (
            "one byte short",
            bytes.len() as u64 - 1,
            &["XML data", "truncated"],
        ),
    ];
    for (what, cut, needles) in cases {
        let d = tmp.path().join(format!("cut-{cut}"));
        fs::create_dir(&d).unwrap();
        let t = d.join("t.wim");
        fs::write(&t, &bytes[..cut as usize]).unwrap();
        all_commands_fail(&t, needles, &format!("truncated {what}"));
    }
}

fn flip(path: &Path, offset: u64) {
    let mut b = fs::read(path).unwrap();
    b[offset as usize] ^= 0x5A;
    fs::write(path, b).unwrap();
}

#[test]
fn bit_flips_in_a_blob_name_the_blob() {
    let tmp = tempdir();
    for compress in ["xpress", "lzx", "none"] {
        let wim = sample_wim(tmp.path(), compress, false);
        let w = Wim::open(&wim).unwrap();
        let e = w
            .blobs
            .iter()
            .max_by_key(|b| b.reshdr.size_in_wim)
            .unwrap()
            .clone();
        drop(w);
        // Past the chunk table, in the middle of the stored data.
        flip(&wim, e.reshdr.offset_in_wim + e.reshdr.size_in_wim * 2 / 3);
        let hash = e.hash.to_string();
        // The metadata is intact, so listing works.
        tasq_ok(&["wim", "dir", s(&wim), "1"]);
        let out = tasq(&["wim", "verify", s(&wim)]);
        let line = assert_clean_failure(&out, &[&format!("blob {hash}")]);
        assert!(
            line.contains("SHA-1")
                || line.to_lowercase().contains("decompress")
                || line.contains("invalid"),
            "{line}"
        );
        let target = tmp.path().join(format!("t-{compress}"));
        let out = tasq(&["wim", "apply", s(&wim), s(&target)]);
        assert_clean_failure(&out, &[&format!("blob {hash}")]);
        // The peer agrees the WIM is damaged.
        assert!(
            !wimlib(&["verify", s(&wim)]).status.success(),
            "wimlib-imagex verify accepted a flipped {compress} WIM"
        );
    }
}

#[test]
fn bit_flips_in_metadata_name_the_image() {
    let tmp = tempdir();
    for compress in ["lzx", "none"] {
        let wim = sample_wim(tmp.path(), compress, false);
        let w = Wim::open(&wim).unwrap();
        let m = w.metadata[0].reshdr;
        drop(w);
        flip(&wim, m.offset_in_wim + m.size_in_wim / 2);
        let dir = tmp.path().join(format!("m-{compress}"));
        fs::create_dir(&dir).unwrap();
        let moved = dir.join("m.wim");
        fs::rename(&wim, &moved).unwrap();
        // info reads only the header, blob table and XML: it still works.
        tasq_ok(&["wim", "info", s(&moved)]);
        let before = names_in(&dir);
        for args in [
            vec!["wim", "verify", s(&moved)],
            vec!["wim", "dir", s(&moved), "1"],
            vec!["wim", "apply", s(&moved), s(&dir.join("target"))],
        ] {
            assert_clean_failure(&tasq(&args), &["image 1"]);
        }
        assert!(
            !dir.join("target").exists(),
            "apply created its target for a corrupt image"
        );
        assert_eq!(names_in(&dir), before);
    }
}

#[test]
fn integrity_table_catches_a_flip() {
    let tmp = tempdir();
    let wim = sample_wim(tmp.path(), "xpress", true);
    let w = Wim::open(&wim).unwrap();
    let e = w
        .blobs
        .iter()
        .max_by_key(|b| b.reshdr.size_in_wim)
        .unwrap()
        .clone();
    drop(w);
    flip(&wim, e.reshdr.offset_in_wim + e.reshdr.size_in_wim / 2);
    assert_clean_failure(&tasq(&["wim", "verify", s(&wim)]), &["integrity"]);
}

#[test]
fn not_a_wim() {
    let tmp = tempdir();
    let cases: [(&str, &[u8], &[&str]); 3] = [
        ("text.wim", &[b'x'; 4096], &["text.wim", "not a WIM"]),
        ("empty.wim", b"", &["empty.wim", "not a WIM"]),
        ("almost.wim", b"MSWIM\0\0\0", &["almost.wim", "not a WIM"]),
    ];
    for (name, content, needles) in cases {
        let d = tmp.path().join(format!("d-{name}"));
        fs::create_dir(&d).unwrap();
        let p = d.join(name);
        fs::write(&p, content).unwrap();
        all_commands_fail(&p, needles, name);
    }
    // A directory given as the WIM.
    let d = tmp.path().join("dir-as-wim");
    fs::create_dir_all(d.join("iam.wim")).unwrap();
    all_commands_fail(&d.join("iam.wim"), &["iam.wim"], "directory");
    // A WIM that does not exist.
    let d = tmp.path().join("missing");
    fs::create_dir_all(&d).unwrap();
    all_commands_fail(&d.join("nope.wim"), &["nope.wim"], "missing file");
}

// ---------------------------------------------------------------------
// Malicious images, crafted through the library's own writer.

/// A capture source that hands the writer a hand-built tree.
struct Crafted {
    tree: ImageTree,
    data: Vec<Vec<u8>>,
}

impl Crafted {
    fn new() -> Crafted {
        Crafted {
            tree: ImageTree::new(),
            data: Vec::new(),
        }
    }

    fn dir(&mut self, parent: usize, name: &str) -> usize {
        let ino = self.tree.add_inode(Inode {
            attributes: FILE_ATTRIBUTE_DIRECTORY,
            ..Inode::default()
        });
        self.tree.add_dentry(parent, utf16(name), vec![], ino)
    }

    fn file(&mut self, parent: usize, name: &str, content: &[u8]) -> usize {
        let id = self.data.len() as u64;
        self.data.push(content.to_vec());
        let ino = self.tree.add_inode(Inode {
            attributes: FILE_ATTRIBUTE_NORMAL,
            streams: vec![Stream {
                kind: StreamKind::Data,
                name: vec![],
                hash: Sha1Hash::ZERO,
                size: content.len() as u64,
                source: StreamSource::External(id),
            }],
            ..Inode::default()
        });
        self.tree.add_dentry(parent, utf16(name), vec![], ino)
    }

    fn write(mut self, wim: &Path, compression: CompressionFormat) {
        let mut w = WimWriter::create(
            wim,
            WriteOptions {
                compression,
                ..WriteOptions::default()
            },
        )
        .unwrap();
        w.add_image(
            &mut self,
            &NoFilter,
            &ImageOptions {
                name: Some("crafted".into()),
                ..Default::default()
            },
            &mut |_| {},
        )
        .unwrap();
        w.finish().unwrap();
    }
}

impl CaptureSource for Crafted {
    fn describe(&self) -> String {
        "crafted tree".into()
    }
    fn scan(
        &mut self,
        _: &dyn CaptureFilter,
        _: &mut dyn FnMut(ScanProgress),
    ) -> tasq_wim::Result<ImageTree> {
        Ok(self.tree.clone())
    }
    fn open_stream(&self, id: u64) -> tasq_wim::Result<Box<dyn std::io::Read + Send + '_>> {
        Ok(Box::new(Cursor::new(self.data[id as usize].clone())))
    }
}

/// Applies (and extracts) a malicious WIM that sits alone in `dir`: both
/// must be refused with an error mentioning `needles`, before anything is
/// created: no target, no extract destination, nothing new in `dir` or
/// its parent.
fn refused(dir: &Path, wim: &Path, needles: &[&str]) {
    let parent = dir.parent().unwrap();
    let (before, before_parent) = (list_all(dir), names_in(parent));
    let target = dir.join("target");
    let line = assert_clean_failure(&tasq(&["wim", "apply", s(wim), s(&target)]), needles);
    eprintln!("{}: {line}", wim.display());
    assert!(
        !target.exists(),
        "apply of a refused image created its target"
    );
    // An existing (empty) target stays empty.
    fs::create_dir(&target).unwrap();
    assert_clean_failure(&tasq(&["wim", "apply", s(wim), "1", s(&target)]), needles);
    assert!(
        list_all(&target) == BTreeSet::from([String::new()]),
        "apply wrote into the target: {:?}",
        list_all(&target)
    );
    fs::remove_dir(&target).unwrap();
    let dest = dir.join("dest");
    assert_clean_failure(
        &tasq(&["wim", "extract", s(wim), "1", "/", "--dest", s(&dest)]),
        needles,
    );
    assert!(
        !dest.exists(),
        "extract of a refused image created its destination"
    );
    assert_eq!(list_all(dir), before, "files appeared next to the WIM");
    assert_eq!(names_in(parent), before_parent, "files appeared outside");
}

#[test]
fn malicious_names_are_refused_before_anything_is_written() {
    let tmp = tempdir();
    // Each case: a harmless file first (so a careless apply would have
    // started writing), then the bad entry, with a file under it when it
    // is a directory.
    let cases: [(&str, &str, bool); 7] = [
        ("dotdot", "..", true),
        ("dotdot-file", "..", false),
        ("dot", ".", true),
        ("slash", "a/b", false),
        ("slash-dir", "x/../../escaped-dir", true),
        ("nul", "nul\0name", false),
        ("absolute", "/tmp/tasq-absolute-escape", false),
    ];
    for (tag, bad, is_dir) in cases {
        let dir = tmp.path().join(tag).join("work");
        fs::create_dir_all(&dir).unwrap();
        let mut c = Crafted::new();
        c.file(ImageTree::ROOT, "aaa-harmless.txt", b"fine");
        let sub = c.dir(ImageTree::ROOT, "sub");
        if is_dir {
            let d = c.dir(sub, bad);
            c.file(d, "escaped.txt", b"pwned");
        } else {
            c.file(sub, bad, b"pwned");
        }
        let wim = dir.join("bad.wim");
        c.write(&wim, CompressionFormat::Lzx);
        refused(&dir, &wim, &["image 1", "unsafe name"]);
        assert!(!Path::new("/tmp/tasq-absolute-escape").exists());
    }
}

/// On a Linux directory a `\\` is an ordinary character, as in wimlib:
/// the name is applied literally inside the target (it cannot separate
/// anything there), never as a path. NTFS and FAT targets refuse it
/// (tests in tasq-wim and tasq-volume).
#[test]
fn backslash_names_apply_literally_inside_a_directory_target() {
    let tmp = tempdir();
    let dir = tmp.path().join("work");
    fs::create_dir_all(&dir).unwrap();
    let mut c = Crafted::new();
    let sub = c.dir(ImageTree::ROOT, "sub");
    c.file(sub, "..\\..\\x", b"literal");
    c.file(sub, "system-systemd\\x2dcryptsetup.slice", b"unit");
    let wim = dir.join("bs.wim");
    c.write(&wim, CompressionFormat::Lzx);
    let target = dir.join("target");
    let out = tasq(&["wim", "apply", s(&wim), s(&target)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs::read(target.join("sub").join("..\\..\\x")).unwrap(),
        b"literal"
    );
    assert_eq!(
        fs::read(target.join("sub/system-systemd\\x2dcryptsetup.slice")).unwrap(),
        b"unit"
    );
    assert_eq!(names_in(tmp.path()), BTreeSet::from(["work".to_string()]));
    assert!(!dir.join("x").exists() && !tmp.path().join("x").exists());
}

fn le64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().unwrap())
}

/// Writes an uncompressed WIM whose directory `a` lists the root's
/// children as its own (a cycle: \a\a\a...), with the metadata's SHA-1
/// fixed in the blob table so only the structure is wrong.
fn cyclic_wim(wim: &Path) {
    let mut c = Crafted::new();
    let a = c.dir(ImageTree::ROOT, "a");
    c.file(a, "f.txt", b"in a");
    c.write(wim, CompressionFormat::None);
    let w = Wim::open(wim).unwrap();
    let m = w.metadata[0].clone();
    drop(w);
    let mut bytes = fs::read(wim).unwrap();
    let (off, len) = (
        m.reshdr.offset_in_wim as usize,
        m.reshdr.size_in_wim as usize,
    );
    let meta = &mut bytes[off..off + len];
    let sd_len = match (u32::from_le_bytes(meta[..4].try_into().unwrap()) as usize + 7) & !7 {
        0 => 8,
        n => n,
    };
    let root_list = le64(&meta[sd_len + 16..]) as usize;
    // The first entry of the root's list is `a`; point its subdir offset
    // back at the root's list.
    assert_eq!(
        &meta[root_list + 102..root_list + 104],
        &[b'a', 0],
        "layout changed"
    );
    meta[root_list + 16..root_list + 24].copy_from_slice(&(root_list as u64).to_le_bytes());
    let new_hash = Sha1Hash::of(meta);
    let old = m.hash.0;
    let pos = bytes
        .windows(20)
        .rposition(|w| w == old)
        .expect("metadata hash in the blob table");
    bytes[pos..pos + 20].copy_from_slice(&new_hash.0);
    fs::write(wim, bytes).unwrap();
}

#[test]
fn directory_cycle_is_refused() {
    let tmp = tempdir();
    let dir = tmp.path().join("cycle");
    fs::create_dir_all(&dir).unwrap();
    let wim = dir.join("cycle.wim");
    cyclic_wim(&wim);
    refused(&dir, &wim, &["image 1", "cycle"]);
    assert_clean_failure(&tasq(&["wim", "verify", s(&wim)]), &["image 1", "cycle"]);
    assert_clean_failure(&tasq(&["wim", "dir", s(&wim), "1"]), &["image 1", "cycle"]);
}

// ---------------------------------------------------------------------
// Sizes that would make a careless reader allocate without bound.

/// Runs tasq with its address space limited to 1 GiB: a reader that
/// believed a size field from the file would fail to allocate (and abort)
/// instead of succeeding lazily.
fn tasq_limited(args: &[&str]) -> std::process::Output {
    Command::new("prlimit")
        .arg("--as=1073741824")
        .arg("--")
        .arg(TASQ)
        .args(args)
        .output()
        .expect("prlimit (util-linux)")
}

/// Rewrites the first blob-table entry whose hash is `hash`.
fn patch_entry(wim: &Path, hash: &Sha1Hash, f: impl Fn(&mut [u8])) {
    let mut bytes = fs::read(wim).unwrap();
    let w = Wim::open(wim).unwrap();
    let bt = w.header.blob_table;
    drop(w);
    let table = &mut bytes[bt.offset_in_wim as usize..(bt.offset_in_wim + bt.size_in_wim) as usize];
    let e = table
        .chunks_exact_mut(50)
        .find(|e| &e[30..50] == hash.0.as_slice())
        .expect("entry");
    f(e);
    fs::write(wim, bytes).unwrap();
}

#[test]
fn huge_sizes_in_the_blob_table_are_rejected_early() {
    let tmp = tempdir();
    // Each case patches a fresh copy.
    type Patch = fn(&mut [u8]);
    let cases: [(&str, bool, Patch, &[&str]); 4] = [
        // A compressed blob claiming 1 TiB: its chunk table cannot fit.
        (
            "blob-1TiB",
            false,
            |e| e[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes()),
            &["blob"],
        ),
        // 5 GiB: 8-byte chunk table entries.
        (
            "blob-5GiB",
            false,
            |e| e[16..24].copy_from_slice(&(5u64 << 30).to_le_bytes()),
            &["blob"],
        ),
        // An uncompressed resource claiming 1 TiB stored: past the end of the file.
        (
            "stored-1TiB",
            false,
            |e| {
                e[..7].copy_from_slice(&(1u64 << 40).to_le_bytes()[..7]);
                e[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes());
            },
            &["extends to byte"],
        ),
        // The metadata resource claiming 1 TiB once decompressed.
        (
            "metadata-1TiB",
            true,
            |e| e[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes()),
            &["image 1"],
        ),
    ];
    let orig = sample_wim(tmp.path(), "lzx", false);
    let w = Wim::open(&orig).unwrap();
    let blob = w
        .blobs
        .iter()
        .max_by_key(|b| b.reshdr.size_in_wim)
        .unwrap()
        .hash;
    let meta = w.metadata[0].hash;
    drop(w);
    for (tag, is_meta, patch, needles) in cases {
        let dir = tmp.path().join(tag);
        fs::create_dir(&dir).unwrap();
        let wim = dir.join("huge.wim");
        fs::copy(&orig, &wim).unwrap();
        patch_entry(&wim, if is_meta { &meta } else { &blob }, patch);
        let start = Instant::now();
        let out = tasq_limited(&["wim", "verify", s(&wim)]);
        let line = assert_clean_failure(&out, needles);
        eprintln!("{tag}: {line}");
        let target = dir.join("t");
        assert_clean_failure(
            &tasq_limited(&["wim", "apply", s(&wim), s(&target)]),
            needles,
        );
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{tag}: took {:?}",
            start.elapsed()
        );
        // Nothing outside the target.
        assert_eq!(
            names_in(&dir)
                .into_iter()
                .filter(|n| n != "t")
                .collect::<Vec<_>>(),
            ["huge.wim"]
        );
    }
}

// ---------------------------------------------------------------------
// Failed and interrupted writes.

/// Restores write access to a directory made immutable or read-only.
struct Unlock(PathBuf, bool);

impl Drop for Unlock {
    fn drop(&mut self) {
        if self.1 {
            let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
        }
        let _ = fs::set_permissions(&self.0, fs::Permissions::from_mode(0o755));
    }
}

/// Makes `dir` unwritable: mode 0555, and for root (whom modes do not
/// stop) the immutable attribute. Returns None when that is impossible.
fn lock_dir(dir: &Path) -> Option<Unlock> {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o555)).unwrap();
    let probe = dir.join(".probe");
    if fs::write(&probe, b"x").is_err() {
        return Some(Unlock(dir.to_path_buf(), false));
    }
    let _ = fs::remove_file(&probe);
    let ok = Command::new("chattr")
        .arg("+i")
        .arg(dir)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let guard = Unlock(dir.to_path_buf(), ok);
    if ok && fs::write(&probe, b"x").is_err() {
        return Some(guard);
    }
    let _ = fs::remove_file(&probe);
    None
}

#[test]
fn failed_capture_leaves_the_existing_wim_untouched() {
    let tmp = tempdir();
    let out_dir = tmp.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let src = tmp.path().join("src");
    make_tree(&src);
    let wim = out_dir.join("keep.wim");
    tasq_ok(&["wim", "capture", s(&src), s(&wim), "--compress", "xpress"]);
    let orig = fs::read(&wim).unwrap();
    let names = names_in(&out_dir);

    // A source that does not exist.
    let out = tasq(&[
        "wim",
        "capture",
        s(&tmp.path().join("no-such-dir")),
        s(&wim),
    ]);
    assert_clean_failure(&out, &["no-such-dir"]);
    assert!(fs::read(&wim).unwrap() == orig, "the WIM changed");
    assert_eq!(names_in(&out_dir), names);
    // A source that is a file.
    let out = tasq(&["wim", "capture", s(&src.join("a.txt")), s(&wim)]);
    assert_clean_failure(&out, &["a.txt", "not a directory"]);
    assert!(fs::read(&wim).unwrap() == orig);

    // The destination path is a directory: the finished temporary file
    // cannot be renamed over it; it must be removed, the directory kept.
    let as_dir = out_dir.join("isdir.wim");
    fs::create_dir(&as_dir).unwrap();
    let out = tasq(&["wim", "capture", s(&src), s(&as_dir)]);
    assert_clean_failure(&out, &["isdir.wim"]);
    assert!(as_dir.is_dir() && names_in(&as_dir).is_empty());
    assert_eq!(
        names_in(&out_dir),
        &names | &BTreeSet::from(["isdir.wim".to_string()]),
        "a temporary file was left behind"
    );
    fs::remove_dir(&as_dir).unwrap();

    // The destination directory cannot be written to.
    match lock_dir(&out_dir) {
        Some(_guard) => {
            let out = tasq(&["wim", "capture", s(&src), s(&wim), "--compress", "lzx"]);
            assert_clean_failure(&out, &["keep.wim"]);
            assert!(fs::read(&wim).unwrap() == orig, "the WIM changed");
            assert_eq!(names_in(&out_dir), names, "a temporary file was left behind");
        }
        None => eprintln!("NOTE: cannot make a directory unwritable here (no chattr?): read-only destination case skipped"),
    }
    wimlib_ok(&["verify", s(&wim)]);
}

/// A source of `mb` MiB of text, slow enough under LZX level 100 on one
/// thread to be interrupted while the WIM is being written.
fn slow_source(dir: &Path, mb: usize) -> PathBuf {
    let src = dir.join("slow");
    fs::create_dir_all(&src).unwrap();
    for i in 0..mb {
        // Letters at random: about 4.7 bits a byte, so LZX works hard and
        // the output grows steadily.
        let data: Vec<u8> = random_bytes(1 << 20, 100 + i as u32)
            .iter()
            .map(|b| b'a' + b % 26)
            .collect();
        fs::write(src.join(format!("f{i:03}.txt")), data).unwrap();
    }
    src
}

/// Starts `tasq ARGS` and kills it (SIGKILL: no clean-up runs) as soon as
/// `grown` says the output has grown. Returns false if it finished first.
fn kill_when(args: &[&str], grown: impl Fn() -> bool) -> bool {
    let mut child = Command::new(TASQ)
        .args(args)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if grown() {
            child.kill().unwrap();
            child.wait().unwrap();
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "tasq did not make progress"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn interrupted_capture_and_append_leave_a_valid_wim() {
    let tmp = tempdir();
    let small = tmp.path().join("small");
    fs::create_dir_all(&small).unwrap();
    fs::write(small.join("x.txt"), b"x").unwrap();
    let wim = tmp.path().join("w.wim");
    tasq_ok(&[
        "wim",
        "capture",
        s(&small),
        s(&wim),
        "--name",
        "first",
        "--check",
    ]);
    let orig = fs::read(&wim).unwrap();
    let slow = slow_source(tmp.path(), 6);

    // Capture over the WIM, killed while the temporary file grows.
    let dir = tmp.path().to_path_buf();
    let killed = kill_when(
        &[
            "wim",
            "capture",
            s(&slow),
            s(&wim),
            "--compress",
            "lzx:100",
            "--threads",
            "1",
        ],
        || {
            fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).any(|e| {
                e.file_name().to_string_lossy().contains("tmp")
                    && e.metadata().is_ok_and(|m| m.len() > 0)
            })
        },
    );
    assert!(
        killed,
        "the capture finished before it could be interrupted"
    );
    assert!(
        fs::read(&wim).unwrap() == orig,
        "an interrupted capture changed the existing WIM"
    );
    // (The killed process's temporary file stays; a later run does not mind it.)

    // Append, killed while the WIM grows: the header still describes the
    // old WIM, which must be intact and verify (with its integrity table).
    let len = orig.len() as u64;
    let w2 = wim.clone();
    let killed = kill_when(
        &[
            "wim",
            "append",
            s(&slow),
            s(&wim),
            "--name",
            "second",
            "--compress",
            "lzx:100",
            "--threads",
            "1",
        ],
        || fs::metadata(&w2).is_ok_and(|m| m.len() > len),
    );
    assert!(killed, "the append finished before it could be interrupted");
    let now = fs::read(&wim).unwrap();
    assert!(
        now.len() > orig.len() && now[..orig.len()] == orig[..],
        "an interrupted append changed the old WIM's bytes"
    );
    wimlib_ok(&["verify", s(&wim)]);
    tasq_ok(&["wim", "verify", s(&wim)]);
    assert_eq!(tasq_info(&wim)["image_count"].as_u64(), Some(1));

    // A later append works on the WIM left behind, and a failing append
    // (source missing) changes nothing.
    tasq_ok(&["wim", "append", s(&small), s(&wim), "--name", "again"]);
    wimlib_ok(&["verify", s(&wim)]);
    assert_eq!(assert_info_agrees(&wim), 2);
    let before = fs::read(&wim).unwrap();
    assert_clean_failure(
        &tasq(&["wim", "append", s(&tmp.path().join("gone")), s(&wim)]),
        &["gone"],
    );
    assert!(fs::read(&wim).unwrap() == before);
    wimlib_ok(&["verify", s(&wim)]);
}

/// Points the header's blob table or XML data at a crafted compressed
/// resource claiming 1 GiB - 1 bytes: 512 chunks of 2 MiB (the largest LZX
/// chunk size), a well-formed chunk table, 4 stored bytes per chunk. The
/// reader must not reserve the claimed size before the first chunk fails
/// to decompress.
fn claim_huge_table(wim: &Path, reshdr_at: usize) {
    let mut b = fs::read(wim).unwrap();
    b[0x14..0x18].copy_from_slice(&(2u32 << 20).to_le_bytes());
    let start = 208usize;
    for k in 1..512u32 {
        let p = start + (k as usize - 1) * 4;
        b[p..p + 4].copy_from_slice(&(k * 4).to_le_bytes());
    }
    let size_in_wim: u64 = 511 * 4 + 512 * 4;
    let mut rh = [0u8; 24];
    rh[..7].copy_from_slice(&size_in_wim.to_le_bytes()[..7]);
    rh[7] = 0x02 | 0x04; // metadata | compressed
    rh[8..16].copy_from_slice(&(start as u64).to_le_bytes());
    rh[16..24].copy_from_slice(&((1u64 << 30) - 1).to_le_bytes());
    b[reshdr_at..reshdr_at + 24].copy_from_slice(&rh);
    fs::write(wim, b).unwrap();
}

#[test]
fn huge_compressed_tables_are_not_allocated_up_front() {
    let tmp = tempdir();
    let orig = sample_wim(tmp.path(), "lzx", false);
    for (tag, at, needle) in [
        ("blob-table", 0x30, "blob table"),
        ("xml", 0x48, "XML data"),
    ] {
        let wim = tmp.path().join(format!("{tag}.wim"));
        fs::copy(&orig, &wim).unwrap();
        claim_huge_table(&wim, at);
        let start = Instant::now();
        let out = tasq_limited(&["wim", "info", s(&wim)]);
        let line = assert_clean_failure(&out, &[needle]);
        eprintln!("{tag}: {line}");
        assert!(start.elapsed() < Duration::from_secs(10));
    }
}
