//! Unsafe situations: links (and a FIFO) planted in the target where the
//! image puts a directory or a file, and images that put entries under a
//! link. Nothing may be written, created or touched outside the root.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink as plant, MetadataExt};
use std::path::{Path, PathBuf};

use common::build::*;
use common::*;
use tasq_volume::hostdir::filetime_to_unix;
use tasq_volume::HostDirTarget;
use tasq_wim::apply::{ApplyEntry, ApplyTarget, WimPath};
use tasq_wim::image::*;

struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

/// A target root and, beside it, an "outside" directory holding a victim
/// file, with old times so that any change shows.
fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    fs::create_dir(&root).unwrap();
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("victim"), b"VICTIM").unwrap();
    set_times(
        &outside.join("victim"),
        (1_000_000_000, 0),
        (1_000_000_000, 0),
    );
    set_times(&outside, (1_000_000_000, 0), (1_000_000_000, 0));
    Setup {
        _tmp: tmp,
        root,
        outside,
    }
}

/// The outside directory must hold exactly the victim, unchanged.
fn assert_outside_untouched(outside: &Path) {
    let names: Vec<_> = fs::read_dir(outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec!["victim"],
        "something was created outside the root"
    );
    let m = fs::symlink_metadata(outside.join("victim")).unwrap();
    assert_eq!(fs::read(outside.join("victim")).unwrap(), b"VICTIM");
    assert_eq!(m.mtime(), 1_000_000_000, "victim mtime changed");
    assert_eq!(m.nlink(), 1, "victim was hard-linked into the target");
    let m = fs::metadata(outside).unwrap();
    assert_eq!(m.mtime(), 1_000_000_000, "outside directory changed");
}

/// (last write, last access) of `d/f`, a small file the write-behind
/// thread writes, and of `victim`, whose name the planting tests take (the
/// file then comes back to the apply thread).
const F_TIMES: (u64, u64) = (ft(1_500_000_000, 1_234_567), ft(1_400_000_000, 7_654_321));
const VICTIM_TIMES: (u64, u64) = (ft(1_300_000_000, 42), ft(1_200_000_000, 0));

fn small_tree() -> ImageTree {
    let mut t = ImageTree::new();
    add(&mut t, "", "d", dir());
    add(
        &mut t,
        "d",
        "f",
        times(
            file(FILE_ATTRIBUTE_NORMAL, b"new data"),
            F_TIMES.0,
            F_TIMES.1,
        ),
    );
    let h = add(&mut t, "", "h1", file(FILE_ATTRIBUTE_NORMAL, b"linked"));
    link(&mut t, "", "h2", h);
    add(
        &mut t,
        "",
        "victim",
        times(
            file(FILE_ATTRIBUTE_NORMAL, b"replaced"),
            VICTIM_TIMES.0,
            VICTIM_TIMES.1,
        ),
    );
    add(&mut t, "", "e", file(FILE_ATTRIBUTE_NORMAL, b""));
    add(
        &mut t,
        "",
        "sp",
        file(FILE_ATTRIBUTE_SPARSE_FILE, &[0u8; 10000]),
    );
    add(&mut t, "", "l", symlink("d/f", false));
    t
}

fn check_small_tree(root: &Path) {
    let seen = read_tree(root);
    assert_eq!(seen["d"].node, Node::Dir);
    assert_eq!(seen["d/f"].node, Node::File(b"new data".to_vec()));
    assert_eq!(seen["h1"].node, Node::File(b"linked".to_vec()));
    assert_eq!(
        seen["h2"].link_group,
        Some(vec!["h1".to_string(), "h2".to_string()])
    );
    assert_eq!(seen["victim"].node, Node::File(b"replaced".to_vec()));
    assert_eq!(seen["e"].node, Node::File(Vec::new()));
    assert_eq!(seen["sp"].node, Node::File(vec![0u8; 10000]));
    assert_eq!(seen["l"].node, Node::Link("d/f".into()));
    for (name, (write, access)) in [("d/f", F_TIMES), ("victim", VICTIM_TIMES)] {
        let unix = |t: u64| {
            let (s, ns) = filetime_to_unix(t);
            (s, i64::from(ns))
        };
        assert_eq!(seen[name].mtime, unix(write), "{name} mtime");
        assert_eq!(seen[name].atime, unix(access), "{name} atime");
    }
}

#[test]
fn planted_symlinks_everywhere_are_replaced_not_followed() {
    let s = setup();
    // A link where each entry of the image goes.
    plant(&s.outside, s.root.join("d")).unwrap();
    for name in ["h1", "h2", "victim", "e", "sp", "l"] {
        plant(s.outside.join("victim"), s.root.join(name)).unwrap();
    }
    let tree = small_tree();
    drive_apply(&tree, &mut HostDirTarget::new(&s.root).unwrap(), &content);
    check_small_tree(&s.root);
    assert_outside_untouched(&s.outside);
}

#[test]
fn planted_dangling_symlinks_do_not_create_files_outside() {
    let s = setup();
    for name in ["h1", "h2", "e", "sp", "l"] {
        plant(s.outside.join(format!("new-{name}")), s.root.join(name)).unwrap();
    }
    plant(s.outside.join("newdir"), s.root.join("d")).unwrap();
    drive_apply(
        &small_tree(),
        &mut HostDirTarget::new(&s.root).unwrap(),
        &content,
    );
    check_small_tree(&s.root);
    assert_outside_untouched(&s.outside);
}

#[test]
fn planted_fifo_and_files_are_replaced_without_hanging() {
    let s = setup();
    for name in ["victim", "h2"] {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            s.root.join(name),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
    }
    fs::write(s.root.join("d"), b"a file where a directory goes").unwrap();
    drive_apply(
        &small_tree(),
        &mut HostDirTarget::new(&s.root).unwrap(),
        &content,
    );
    check_small_tree(&s.root);
}

#[test]
fn existing_directories_are_reused_and_a_directory_in_the_way_of_a_file_is_an_error() {
    let s = setup();
    fs::create_dir(s.root.join("d")).unwrap();
    fs::write(s.root.join("d/keep"), b"keep me").unwrap();
    drive_apply(
        &small_tree(),
        &mut HostDirTarget::new(&s.root).unwrap(),
        &content,
    );
    check_small_tree(&s.root);
    assert_eq!(fs::read(s.root.join("d/keep")).unwrap(), b"keep me");

    // A non-empty directory where a file goes is not deleted.
    let s = setup();
    fs::create_dir(s.root.join("victim")).unwrap();
    fs::write(s.root.join("victim/data"), b"user data").unwrap();
    let err = try_drive_apply(
        &small_tree(),
        &mut HostDirTarget::new(&s.root).unwrap(),
        &content,
    )
    .unwrap_err();
    assert!(err.to_string().contains("directory is in the way"), "{err}");
    assert_eq!(fs::read(s.root.join("victim/data")).unwrap(), b"user data");
}

fn entry<'a>(path: &'a WimPath, inode: &'a Inode) -> ApplyEntry<'a> {
    ApplyEntry {
        id: id_of(path),
        path,
        inode,
        short_name: &[],
        security_descriptor: None,
    }
}

/// One id per path, as an apply gives one per entry.
fn id_of(path: &WimPath) -> usize {
    thread_local! {
        static IDS: std::cell::RefCell<std::collections::HashMap<String, usize>> =
            Default::default();
    }
    IDS.with(|m| {
        let mut m = m.borrow_mut();
        let n = m.len();
        *m.entry(path.as_slash_str().to_string()).or_insert(n)
    })
}

#[test]
fn calls_through_a_planted_parent_link_fail() {
    // Without create_directory for `d` (a caller skipping a step, or a link
    // planted after it), nothing may go through the link.
    let s = setup();
    plant(&s.outside, s.root.join("d")).unwrap();
    let mut t = HostDirTarget::new(&s.root).unwrap();
    let victim = WimPath::from_components(["d", "victim"]).unwrap();
    let newf = WimPath::from_components(["d", "new"]).unwrap();
    let sub = WimPath::from_components(["d", "sub"]).unwrap();
    let f = file(FILE_ATTRIBUTE_NORMAL, b"evil");
    let stream = f.streams[0].clone();
    let mut fi = f.clone();
    fi.last_write_time = ft(1_700_000_000, 0);

    assert!(t.create_file(&entry(&newf, &f)).is_err());
    assert!(t.create_directory(&entry(&sub, &dir())).is_err());
    let err = t
        .open_stream(&entry(&victim, &f), &stream)
        .err()
        .expect("must not open through a link");
    assert!(
        err.to_string()
            .contains("symbolic links in the target are not followed"),
        "{err}"
    );
    assert!(t.set_metadata(&entry(&victim, &fi)).is_err());
    let hl = WimPath::from_components(["hl"]).unwrap();
    assert!(t
        .create_hard_link(&entry(&victim, &f), &entry(&hl, &f))
        .is_err());
    let l = symlink("x", false);
    let lp = WimPath::from_components(["d", "l"]).unwrap();
    t.create_file(&entry(&lp, &l)).unwrap();
    let data = tasq_wim::reparse::symlink_reparse_from_unix("x").unwrap();
    assert!(t.set_reparse_point(&entry(&lp, &l), &data).is_err());
    assert_outside_untouched(&s.outside);
    assert!(fs::symlink_metadata(s.root.join("hl")).is_err());
}

#[test]
fn direct_open_of_a_planted_fifo_fails_instead_of_blocking() {
    let s = setup();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        s.root.join("p"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let mut t = HostDirTarget::new(&s.root).unwrap();
    let p = WimPath::from_components(["p"]).unwrap();
    let f = file(FILE_ATTRIBUTE_NORMAL, b"x");
    assert!(t.open_stream(&entry(&p, &f), &f.streams[0]).is_err());
}

#[test]
fn entries_under_a_link_in_the_image_are_skipped() {
    // A crafted image: `dl` is a symlink to the outside directory and also
    // "contains" entries. Applying must not write through the link it made.
    let s = setup();
    let mut tree = ImageTree::new();
    add(
        &mut tree,
        "",
        "dl",
        symlink(s.outside.to_str().unwrap(), true),
    );
    add(
        &mut tree,
        "dl",
        "victim",
        file(FILE_ATTRIBUTE_NORMAL, b"overwritten"),
    );
    add(
        &mut tree,
        "dl",
        "evil",
        file(FILE_ATTRIBUTE_NORMAL, b"planted"),
    );
    add(&mut tree, "dl", "evildir", dir());
    let mut t = HostDirTarget::new(&s.root).unwrap();
    drive_apply(&tree, &mut t, &content);
    assert_eq!(fs::read_link(s.root.join("dl")).unwrap(), s.outside);
    assert_outside_untouched(&s.outside);
    assert!(
        t.warnings()
            .iter()
            .any(|w| w.contains("evil") && w.contains("symbolic link")),
        "{:?}",
        t.warnings()
    );
}

#[test]
fn writer_dropped_early_still_sets_the_length_of_a_sparse_file() {
    let s = setup();
    let mut t = HostDirTarget::new(&s.root).unwrap();
    let p = WimPath::from_components(["sp"]).unwrap();
    let f = file(FILE_ATTRIBUTE_SPARSE_FILE, &[0u8; 100_000]);
    t.create_file(&entry(&p, &f)).unwrap();
    {
        let mut w = t.open_stream(&entry(&p, &f), &f.streams[0]).unwrap();
        w.write_all(&[0u8; 50_000]).unwrap();
    }
    t.finish().unwrap();
    assert_eq!(fs::metadata(s.root.join("sp")).unwrap().len(), 50_000);
}
