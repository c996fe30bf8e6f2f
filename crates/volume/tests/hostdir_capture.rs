//! Capture of a real directory tree: every field of the resulting
//! `ImageTree`, the stream contents, exclusions and the error cases.

mod common;

use std::cell::RefCell;
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use common::*;
use tasq_volume::hostdir::unix_to_filetime;
use tasq_volume::HostDirSource;
use tasq_wim::capture::{CaptureFilter, CaptureSource, NoFilter, ScanProgress};
use tasq_wim::image::*;
use tasq_wim::reparse::symlink_reparse_from_unix;
use tasq_wim::Sha1Hash;

fn scan(src: &mut HostDirSource) -> (ImageTree, Vec<ScanProgress>) {
    let mut seen = Vec::new();
    let tree = src.scan(&NoFilter, &mut |p| seen.push(p)).unwrap();
    (tree, seen)
}

fn times_of(p: &Path) -> (u64, u64, u64) {
    let m = fs::symlink_metadata(p).unwrap();
    let mt = unix_to_filetime(m.mtime(), m.mtime_nsec());
    (mt, unix_to_filetime(m.atime(), m.atime_nsec()), mt)
}

fn read_stream(src: &HostDirSource, s: &Stream) -> Vec<u8> {
    match &s.source {
        StreamSource::External(id) => {
            let mut v = Vec::new();
            src.open_stream(*id).unwrap().read_to_end(&mut v).unwrap();
            v
        }
        StreamSource::Inline(d) => d.as_ref().clone(),
        StreamSource::None => Vec::new(),
    }
}

/// The inode at `path`, checked for the fields every captured inode shares.
fn inode<'a>(tree: &'a ImageTree, path: &str) -> &'a Inode {
    let d = tree.find(path).unwrap_or_else(|| panic!("{path} missing"));
    assert!(tree.dentries[d].short_name.is_empty(), "{path}");
    let i = tree.inode_of(d);
    assert_eq!(i.security_id, None, "{path}");
    assert_eq!(i.unknown_0x54, 0, "{path}");
    assert_eq!(i.rp_reserved, 0, "{path}");
    assert!(i.extra.is_empty(), "{path}");
    for s in &i.streams {
        assert!(s.hash.is_zero(), "{path}: hashes are left to the writer");
        assert!(s.name.is_empty(), "{path}: no named streams on Linux");
    }
    i
}

#[test]
fn captures_every_kind_of_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("src");
    fs::create_dir(&root).unwrap();
    make_fixture(&root, true);
    set_times(&root, (1_400_000_000, 1), (1_300_000_000, 999_999_999));
    // Times as stat reports them before the capture reads anything.
    let before: Vec<(String, (u64, u64, u64))> = [
        "a.txt",
        "empty",
        "dir1",
        "dir1/dir2",
        "dir1/dir2/deep.bin",
        "hl1",
        "dir1/hl2",
        "emptydir",
        "rel_link",
        "abs_link",
        "dir_link",
        "sparse.bin",
        UNICODE_NAME,
    ]
    .iter()
    .map(|r| (r.to_string(), times_of(&root.join(r))))
    .collect();

    let mut src = HostDirSource::new(&root).unwrap();
    let (tree, progress) = scan(&mut src);

    // Root: the capture root itself, with its times.
    let r = tree.inode_of(ImageTree::ROOT);
    assert_eq!(r.attributes, FILE_ATTRIBUTE_DIRECTORY);
    assert_eq!(
        r.last_write_time,
        unix_to_filetime(1_300_000_000, 999_999_999)
    );
    assert_eq!(r.creation_time, r.last_write_time);
    assert!(r.streams.is_empty());
    assert!(tree.dentries[ImageTree::ROOT].name.is_empty());

    // The exact set of names (the FIFO is left out).
    let mut names: Vec<String> = tree
        .preorder()
        .iter()
        .skip(1)
        .map(|&d| tree.path_of(d))
        .collect();
    names.sort();
    let mut want = vec![
        "\\a.txt",
        "\\abs_link",
        "\\dir1",
        "\\dir1\\dir2",
        "\\dir1\\dir2\\deep.bin",
        "\\dir1\\hl2",
        "\\dir_link",
        "\\empty",
        "\\emptydir",
        "\\hl1",
        "\\rel_link",
        "\\sparse.bin",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    want.push(format!("\\{UNICODE_NAME}"));
    want.sort();
    assert_eq!(names, want);
    assert_eq!(tree.dentries.len(), want.len() + 1);

    for (rel, (c, a, w)) in &before {
        let i = inode(&tree, rel);
        assert_eq!(
            (i.creation_time, i.last_access_time, i.last_write_time),
            (*c, *a, *w),
            "{rel}"
        );
    }
    // The pre-1970 times, to the 100 ns.
    let u = inode(&tree, UNICODE_NAME);
    assert_eq!(
        u.last_write_time,
        unix_to_filetime(OLD_MTIME.0, OLD_MTIME.1)
    );
    assert_eq!(u.last_write_time, 110_263_680_001_234_567);
    assert_eq!(u.last_access_time, 114_867_072_005_000_000);

    // Directories.
    for d in ["dir1", "dir1/dir2", "emptydir"] {
        let i = inode(&tree, d);
        assert_eq!(i.attributes, FILE_ATTRIBUTE_DIRECTORY, "{d}");
        assert!(i.streams.is_empty(), "{d}");
        assert_eq!(i.reparse_tag, 0);
    }
    assert!(tree.dentries[tree.find("emptydir").unwrap()]
        .children
        .is_empty());

    // Regular files: one unnamed stream with the size, read back intact.
    for (rel, content) in [
        ("a.txt", b"hello\n".to_vec()),
        ("dir1/dir2/deep.bin", pattern(100 * 1024, 7)),
        ("hl1", pattern(3000, 9)),
        (UNICODE_NAME, "grüße".as_bytes().to_vec()),
    ] {
        let i = inode(&tree, rel);
        assert_eq!(i.attributes, FILE_ATTRIBUTE_NORMAL, "{rel}");
        assert_eq!(i.reparse_tag, 0);
        assert_eq!(i.rp_flags, 0);
        assert_eq!(i.streams.len(), 1, "{rel}");
        let s = &i.streams[0];
        assert_eq!(s.kind, StreamKind::Data);
        assert_eq!(s.size, content.len() as u64, "{rel}");
        assert!(matches!(s.source, StreamSource::External(_)), "{rel}");
        assert_eq!(read_stream(&src, s), content, "{rel}");
    }
    // Empty file: no stream at all.
    let e = inode(&tree, "empty");
    assert_eq!(e.attributes, FILE_ATTRIBUTE_NORMAL);
    assert!(e.streams.is_empty());

    // Sparse file.
    let sp = inode(&tree, "sparse.bin");
    assert_eq!(sp.attributes, FILE_ATTRIBUTE_SPARSE_FILE);
    assert_eq!(sp.streams[0].size, 1 << 20);
    let mut want_sparse = vec![0u8; 1 << 20];
    want_sparse[512 * 1024..512 * 1024 + 4].copy_from_slice(b"data");
    assert_eq!(read_stream(&src, &sp.streams[0]), want_sparse);

    // Hard links: one inode, two names, counted once in the bytes.
    let h1 = tree.find("hl1").unwrap();
    let h2 = tree.find("dir1/hl2").unwrap();
    assert_eq!(tree.dentries[h1].inode, tree.dentries[h2].inode);
    assert_eq!(tree.link_counts()[tree.dentries[h1].inode], 2);
    assert_eq!(tree.inodes.len(), tree.dentries.len() - 1);

    // Symlinks.
    for (rel, target, is_dir) in [
        ("rel_link", "a.txt", false),
        ("abs_link", "/nonexistent/abs/target", false),
        ("dir_link", "dir1", true),
    ] {
        let i = inode(&tree, rel);
        let want_attr =
            FILE_ATTRIBUTE_REPARSE_POINT | if is_dir { FILE_ATTRIBUTE_DIRECTORY } else { 0 };
        assert_eq!(i.attributes, want_attr, "{rel}");
        assert_eq!(i.reparse_tag, IO_REPARSE_TAG_SYMLINK, "{rel}");
        assert_eq!(i.rp_flags, WIM_RP_FLAG_NOT_FIXED, "{rel}");
        assert_eq!(i.streams.len(), 1, "{rel}");
        let data = symlink_reparse_from_unix(target).unwrap();
        let s = &i.streams[0];
        assert_eq!(s.kind, StreamKind::ReparsePoint);
        assert_eq!(s.size, data.len() as u64);
        assert_eq!(s.source, StreamSource::Inline(Arc::new(data)), "{rel}");
        // A link to a directory is not descended into.
        assert!(tree.dentries[tree.find(rel).unwrap()].children.is_empty());
    }

    // Warnings: the FIFO, named, in both places.
    assert_eq!(src.warnings().len(), 1, "{:?}", src.warnings());
    let w = &src.warnings()[0];
    assert!(
        w.contains("FIFO") && w.contains(&root.join("fifo").display().to_string()),
        "{w}"
    );
    assert_eq!(tree.warnings, src.warnings());

    // Progress: monotone, ending with the full counts.
    let last = progress.last().unwrap();
    assert_eq!(last.dirs, 4); // root, dir1, dir2, emptydir
    assert_eq!(last.files, 10); // 9 non-directory inodes + the second hard link
    assert_eq!(
        last.bytes,
        6 + 100 * 1024
            + 3000
            + (1 << 20)
            + "grüße".len() as u64
            + tree
                .inodes
                .iter()
                .filter(|i| i.is_reparse_point())
                .map(|i| i.streams[0].size)
                .sum::<u64>()
    );
    assert!(progress
        .windows(2)
        .all(|w| w[0].files <= w[1].files && w[0].dirs <= w[1].dirs));
    // The directory symlink counts as a file in the XML counts, as in
    // wimlib (inode_is_directory excludes reparse points).
    assert_eq!(tree.stats().file_count, 9 + 1);
    assert_eq!(tree.stats().dir_count, 4);
}

#[test]
fn changed_file_during_capture_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("f"), b"0123456789").unwrap();
    let mut src = HostDirSource::new(tmp.path()).unwrap();
    let (tree, _) = scan(&mut src);
    let s = inode(&tree, "f").streams[0].clone();
    fs::write(tmp.path().join("f"), b"01234").unwrap();
    let StreamSource::External(id) = s.source else {
        panic!()
    };
    let err = src
        .open_stream(id)
        .unwrap()
        .read_to_end(&mut Vec::new())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(&tmp.path().join("f").display().to_string()),
        "{err}"
    );
}

struct Recorder {
    asked: RefCell<Vec<String>>,
    exclude: Vec<&'static str>,
}

impl CaptureFilter for Recorder {
    fn is_excluded(&self, path: &str) -> bool {
        self.asked.borrow_mut().push(path.to_string());
        self.exclude.contains(&path)
    }
}

#[test]
fn exclusions_use_wim_paths_and_prune_directories() {
    let tmp = tempfile::tempdir().unwrap();
    make_fixture(tmp.path(), false);
    let filter = Recorder {
        asked: RefCell::new(Vec::new()),
        exclude: vec!["\\dir1", "\\a.txt", "\\emptydir"],
    };
    let mut src = HostDirSource::new(tmp.path()).unwrap();
    let tree = src.scan(&filter, &mut |_| {}).unwrap();
    assert!(tree.find("dir1").is_none());
    assert!(tree.find("a.txt").is_none());
    assert!(tree.find("emptydir").is_none());
    assert!(tree.find("hl1").is_some());
    assert!(tree.find("rel_link").is_some());
    let asked = filter.asked.borrow();
    assert!(asked.contains(&"\\dir1".to_string()));
    assert!(asked.contains(&format!("\\{UNICODE_NAME}")));
    // The excluded directory was not descended into.
    assert!(
        !asked.iter().any(|p| p.starts_with("\\dir1\\")),
        "{asked:?}"
    );
    // Every non-excluded name was asked about exactly once.
    let kept = tree.dentries.len() - 1;
    assert_eq!(asked.len(), kept + 3);

    // A nested path is asked about in `\a\b` form.
    let filter = Recorder {
        asked: RefCell::new(Vec::new()),
        exclude: vec!["\\dir1\\dir2"],
    };
    let tree = src.scan(&filter, &mut |_| {}).unwrap();
    assert!(tree.find("dir1").is_some());
    assert!(tree.find("dir1/hl2").is_some());
    assert!(tree.find("dir1/dir2").is_none());
    assert!(filter.asked.borrow().contains(&"\\dir1\\dir2".to_string()));
    // With `hl2` alone left of the pair's names, the file is still whole.
    let hl2 = inode(&tree, "dir1/hl2");
    assert_eq!(read_stream(&src, &hl2.streams[0]), pattern(3000, 9));
}

#[test]
fn non_utf8_name_is_an_error_naming_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("d")).unwrap();
    let bad = tmp.path().join("d").join(OsStr::from_bytes(b"bad\xffname"));
    fs::write(&bad, b"x").unwrap();
    let mut src = HostDirSource::new(tmp.path()).unwrap();
    let err = src.scan(&NoFilter, &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("not valid UTF-8"), "{err}");
    assert!(
        err.contains(&tmp.path().join("d").display().to_string()),
        "{err}"
    );
}

#[test]
fn non_utf8_symlink_target_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(OsStr::from_bytes(b"t\xfe"), tmp.path().join("l")).unwrap();
    let mut src = HostDirSource::new(tmp.path()).unwrap();
    let err = src.scan(&NoFilter, &mut |_| {}).unwrap_err().to_string();
    assert!(
        err.contains("not valid UTF-8") && err.contains("/l"),
        "{err}"
    );
}

#[test]
fn root_given_as_symlink_is_followed_and_other_roots_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    fs::create_dir(&real).unwrap();
    fs::write(real.join("x"), b"1").unwrap();
    std::os::unix::fs::symlink(&real, tmp.path().join("via")).unwrap();
    let mut src = HostDirSource::new(tmp.path().join("via")).unwrap();
    let (tree, _) = scan(&mut src);
    assert!(tree.find("x").is_some());
    assert!(src.describe().contains("via"));

    fs::write(tmp.path().join("file"), b"").unwrap();
    for bad in ["file", "missing"] {
        let err = HostDirSource::new(tmp.path().join(bad))
            .unwrap_err()
            .to_string();
        assert!(err.contains(bad), "{err}");
    }
    // A root that stops being a directory between new() and scan().
    let gone = tmp.path().join("gone");
    fs::create_dir(&gone).unwrap();
    let mut src = HostDirSource::new(&gone).unwrap();
    fs::remove_dir(&gone).unwrap();
    assert!(src.scan(&NoFilter, &mut |_| {}).is_err());
}

#[test]
fn socket_is_skipped_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(tmp.path().join("sock")).unwrap();
    fs::write(tmp.path().join("f"), b"x").unwrap();
    let mut src = HostDirSource::new(tmp.path()).unwrap();
    let (tree, _) = scan(&mut src);
    assert!(tree.find("sock").is_none());
    assert!(tree.find("f").is_some());
    assert_eq!(src.warnings().len(), 1);
    assert!(src.warnings()[0].contains("socket"), "{:?}", src.warnings());
}

#[test]
fn hashes_of_streams_match_content() {
    // The writer fills hashes from open_stream; check the bytes it will see.
    let tmp = tempfile::tempdir().unwrap();
    make_fixture(tmp.path(), false);
    let mut src = HostDirSource::new(tmp.path()).unwrap();
    let (tree, _) = scan(&mut src);
    let d = tree.find("dir1/dir2/deep.bin").unwrap();
    let got = read_stream(&src, &tree.inode_of(d).streams[0]);
    assert_eq!(Sha1Hash::of(&got), Sha1Hash::of(&pattern(100 * 1024, 7)));
}

#[test]
fn backslash_in_a_name_is_kept_with_a_warning() {
    // Legal on Linux, a separator on Windows: wimlib keeps such names too.
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("a\\b"), b"x").unwrap();
    let mut src = HostDirSource::new(tmp.path()).unwrap();
    let (tree, _) = scan(&mut src);
    let root_kids = &tree.dentries[ImageTree::ROOT].children;
    assert_eq!(root_kids.len(), 1);
    assert_eq!(tree.dentries[root_kids[0]].name_string(), "a\\b");
    assert_eq!(src.warnings().len(), 1);
    assert!(
        src.warnings()[0].contains("backslash"),
        "{:?}",
        src.warnings()
    );
}
