//! Apply of a hand-built image through the `ApplyTarget` calls, in the
//! documented order, checked on disk: contents, hard links, symlink and
//! junction targets, times to the 100 ns, holes in sparse files, warnings.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::build::*;
use common::*;
use tasq_volume::hostdir::filetime_to_unix;
use tasq_volume::HostDirTarget;
use tasq_wim::apply::ApplyTarget;
use tasq_wim::image::*;

const UNI: &str = "ünï 🎉";

fn sparse_content() -> Vec<u8> {
    let mut v = vec![0u8; 2 << 20];
    v[(1 << 20) + 7..(1 << 20) + 10].copy_from_slice(b"xyz");
    v
}

/// The image applied in these tests, with distinct times on every inode.
fn sample_tree() -> ImageTree {
    let mut t = ImageTree::new();
    let mut n = 0u64;
    let mut next = || {
        n += 1;
        (
            ft(1_500_000_000 + n as i64 * 1000, n * 1111 % 10_000_000),
            ft(1_600_000_000 + n as i64, n * 7 + 3),
        )
    };
    let (w, a) = next();
    *t.root_inode_mut() = times(dir(), w, a);

    let (w, a) = next();
    add(&mut t, "", "d", times(dir(), w, a));
    let (w, a) = next();
    let mut f = file(
        FILE_ATTRIBUTE_READONLY | FILE_ATTRIBUTE_HIDDEN | FILE_ATTRIBUTE_ARCHIVE,
        b"file content",
    );
    f.streams.push(stream(
        StreamKind::Data,
        "Zone.Identifier",
        b"[ZoneTransfer]\r\nZoneId=3\r\n",
    ));
    f.security_id = Some(0);
    let fi = add(&mut t, "d", "f.txt", times(f, w, a));
    t.security.push(vec![
        1, 0, 4, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    let _ = fi;
    let fd = t.find("d/f.txt").unwrap();
    t.dentries[fd].short_name = utf16("F~1.TXT");
    let (w, a) = next();
    add(&mut t, "d", "sub", times(dir(), w, a));

    let (w, a) = next();
    add(
        &mut t,
        "",
        "e",
        times(file(FILE_ATTRIBUTE_ARCHIVE, b""), w, a),
    );
    let (w, a) = next();
    let h = add(
        &mut t,
        "",
        "h1",
        times(file(FILE_ATTRIBUTE_NORMAL, &pattern(5000, 3)), w, a),
    );
    link(&mut t, "d", "h2", h);

    let (w, a) = next();
    add(&mut t, "", "ls", times(symlink("d/f.txt", false), w, a));
    let (w, a) = next();
    add(
        &mut t,
        "",
        "abs",
        times(symlink("/etc/passwd", false), w, a),
    );
    let (w, a) = next();
    let jd = junction_data("\\??\\C:\\Windows\\System32", "C:\\Windows\\System32");
    add(
        &mut t,
        "",
        "j",
        times(reparse(IO_REPARSE_TAG_MOUNT_POINT, &jd, true), w, a),
    );
    let (w, a) = next();
    add(&mut t, "", "dl", times(symlink("d", true), w, a));

    let (w, a) = next();
    add(
        &mut t,
        "",
        "sp",
        times(file(FILE_ATTRIBUTE_SPARSE_FILE, &sparse_content()), w, a),
    );
    let (w, a) = next();
    add(
        &mut t,
        "",
        "sp0",
        times(
            file(FILE_ATTRIBUTE_SPARSE_FILE, &vec![0u8; 64 * 1024]),
            w,
            a,
        ),
    );
    let (w, a) = next();
    add(
        &mut t,
        "",
        "zeros",
        times(file(FILE_ATTRIBUTE_NORMAL, &vec![0u8; 64 * 1024]), w, a),
    );
    let (w, a) = next();
    add(
        &mut t,
        "",
        "wof",
        times(reparse(0x8000_0017, &[1, 2, 3, 4], false), w, a),
    );
    // Before 1970, to the 100 ns.
    add(
        &mut t,
        "",
        "old",
        times(
            file(FILE_ATTRIBUTE_NORMAL, b"old"),
            ft(-618_105_600, 1_234_567),
            ft(-157_766_400, 5_000_001),
        ),
    );
    let (w, a) = next();
    add(
        &mut t,
        "",
        UNI,
        times(file(FILE_ATTRIBUTE_NORMAL, "grüße".as_bytes()), w, a),
    );
    t
}

fn unix(ft: u64) -> (i64, i64) {
    let (s, ns) = filetime_to_unix(ft);
    (s, ns as i64)
}

/// Checks the applied tree against `tree`, entry by entry.
fn check_applied(tree: &ImageTree, root: &Path) {
    let seen = read_tree(root);
    let expect_node = |rel: &str| -> Node {
        match rel {
            "d" | "d/sub" => Node::Dir,
            "d/f.txt" => Node::File(b"file content".to_vec()),
            "e" => Node::File(Vec::new()),
            "h1" | "d/h2" => Node::File(pattern(5000, 3)),
            "ls" => Node::Link("d/f.txt".into()),
            "abs" => Node::Link("/etc/passwd".into()),
            "j" => Node::Link("/Windows/System32".into()),
            "dl" => Node::Link("d".into()),
            "sp" => Node::File(sparse_content()),
            "sp0" | "zeros" => Node::File(vec![0u8; 64 * 1024]),
            "wof" => Node::File(Vec::new()),
            "old" => Node::File(b"old".to_vec()),
            UNI => Node::File("grüße".as_bytes().to_vec()),
            other => panic!("unexpected entry {other}"),
        }
    };
    let mut want_names: Vec<String> = tree
        .preorder()
        .iter()
        .skip(1)
        .map(|&d| tree.path_of(d)[1..].replace('\\', "/"))
        .collect();
    want_names.sort();
    assert_eq!(seen.keys().cloned().collect::<Vec<_>>(), want_names);
    for (rel, s) in &seen {
        assert_eq!(s.node, expect_node(rel), "{rel}");
        let inode = tree.inode_of(tree.find(rel).unwrap());
        assert_eq!(s.mtime, unix(inode.last_write_time), "{rel} mtime");
        if !matches!(s.node, Node::Dir) {
            assert_eq!(s.atime, unix(inode.last_access_time), "{rel} atime");
        }
    }
    assert_eq!(
        seen["h1"].link_group,
        Some(vec!["d/h2".to_string(), "h1".to_string()])
    );
    assert_eq!(seen["d/f.txt"].link_group, None);
    // Holes: the 2 MiB file holds one block of data, the zero file none;
    // the non-sparse zero file is fully allocated.
    assert!(
        seen["sp"].allocated <= 16 * 1024,
        "sp allocated {}",
        seen["sp"].allocated
    );
    assert_eq!(seen["sp0"].allocated, 0);
    assert!(seen["zeros"].allocated >= 64 * 1024);
    // The root's times too.
    let m = fs::metadata(root).unwrap();
    assert_eq!(
        (m.mtime(), m.mtime_nsec()),
        unix(tree.inode_of(ImageTree::ROOT).last_write_time)
    );
    // Modes: plain 0644 files and 0755 directories, as wimlib makes them.
    assert_eq!(
        fs::metadata(root.join("d/f.txt")).unwrap().mode() & 0o7777,
        0o644
    );
    assert_eq!(fs::metadata(root.join("d")).unwrap().mode() & 0o7777, 0o755);
}

#[test]
fn applies_a_hand_built_image() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("out/new");
    let tree = sample_tree();
    let mut target = HostDirTarget::new(&root).unwrap();
    assert!(root.is_dir(), "new() creates the root");
    drive_apply(&tree, &mut target, &content);
    check_applied(&tree, &root);

    let w = target.warnings();
    let has = |needle: &str| w.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(has("Zone.Identifier"), 1, "{w:?}");
    assert_eq!(has("0x80000017"), 1, "{w:?}");
    assert_eq!(has("file attributes"), 1, "{w:?}");
    assert_eq!(has("security descriptors"), 1, "{w:?}");
    assert_eq!(has("short (DOS) names"), 1, "{w:?}");
    assert_eq!(w.len(), 5, "{w:?}");
    assert!(target.describe().contains("out/new"));
}

#[test]
fn summary_warnings_count_files_once_each() {
    // Many files with ignored attributes give one line with the count.
    let mut t = ImageTree::new();
    for i in 0..50 {
        let mut f = file(FILE_ATTRIBUTE_SYSTEM | FILE_ATTRIBUTE_HIDDEN, b"x");
        f.security_id = Some(0);
        add(&mut t, "", &format!("f{i}"), f);
    }
    t.security.push(vec![1, 0, 4, 0x80]);
    let tmp = tempfile::tempdir().unwrap();
    let mut target = HostDirTarget::new(tmp.path()).unwrap();
    drive_apply(&t, &mut target, &content);
    assert_eq!(target.warnings().len(), 2, "{:?}", target.warnings());
    assert!(
        target.warnings()[0].contains("of 50 files"),
        "{:?}",
        target.warnings()
    );
}

#[test]
fn applying_twice_gives_the_same_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = sample_tree();
    drive_apply(
        &tree,
        &mut HostDirTarget::new(tmp.path()).unwrap(),
        &content,
    );
    // Over its own output: links are replaced, directories reused, files
    // rewritten.
    drive_apply(
        &tree,
        &mut HostDirTarget::new(tmp.path()).unwrap(),
        &content,
    );
    check_applied(&tree, tmp.path());
}

#[test]
fn hard_linked_symlink_gets_all_its_names() {
    let mut t = ImageTree::new();
    add(&mut t, "", "d", dir());
    let l = add(&mut t, "", "l1", symlink("target/x", false));
    link(&mut t, "d", "l2", l);
    let tmp = tempfile::tempdir().unwrap();
    drive_apply(&t, &mut HostDirTarget::new(tmp.path()).unwrap(), &content);
    let seen = read_tree(tmp.path());
    assert_eq!(seen["l1"].node, Node::Link("target/x".into()));
    assert_eq!(seen["d/l2"].node, Node::Link("target/x".into()));
    assert_eq!(
        seen["l1"].link_group,
        Some(vec!["d/l2".to_string(), "l1".to_string()])
    );
}

#[test]
fn bad_link_reparse_data_is_an_error_naming_the_file() {
    let mut t = ImageTree::new();
    add(
        &mut t,
        "",
        "bad",
        reparse(IO_REPARSE_TAG_SYMLINK, &[1, 2, 3], false),
    );
    let tmp = tempfile::tempdir().unwrap();
    let err =
        try_drive_apply(&t, &mut HostDirTarget::new(tmp.path()).unwrap(), &content).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("bad") && msg.contains("reparse"), "{msg}");
}

#[test]
fn link_without_reparse_data_is_warned_about() {
    let mut t = ImageTree::new();
    let mut i = symlink("x", false);
    i.streams.clear();
    add(&mut t, "", "nolink", i);
    let tmp = tempfile::tempdir().unwrap();
    let mut target = HostDirTarget::new(tmp.path()).unwrap();
    // With no reparse stream, the driver hands empty data: invalid.
    assert!(try_drive_apply(&t, &mut target, &content).is_err());

    // And when set_reparse_point is never called, set_metadata warns.
    let tmp = tempfile::tempdir().unwrap();
    let mut target = HostDirTarget::new(tmp.path()).unwrap();
    let p = tasq_wim::apply::WimPath::from_components(["nolink"]).unwrap();
    let inode = t.inode_of(t.find("nolink").unwrap());
    let e = tasq_wim::apply::ApplyEntry {
        id: 0,
        path: &p,
        inode,
        short_name: &[],
        security_descriptor: None,
    };
    target.create_file(&e).unwrap();
    target.set_metadata(&e).unwrap();
    target.finish().unwrap();
    assert!(fs::symlink_metadata(tmp.path().join("nolink")).is_err());
    assert_eq!(target.warnings().len(), 1);
    assert!(
        target.warnings()[0].contains("not created"),
        "{:?}",
        target.warnings()
    );
}

/// The entry of dentry `d`, with its path from `paths`.
fn entry_of<'a>(
    tree: &'a ImageTree,
    paths: &'a [tasq_wim::apply::WimPath],
    d: usize,
) -> tasq_wim::apply::ApplyEntry<'a> {
    tasq_wim::apply::ApplyEntry {
        id: d,
        path: &paths[d],
        inode: tree.inode_of(d),
        short_name: &[],
        security_descriptor: None,
    }
}

/// Streams of one blob opened together (as the applier does for a blob
/// with several names): each file gets every byte, a small one through the
/// write-behind thread and a large one directly, a sparse one with holes,
/// and each its own times; the target refuses more than it said it takes.
#[test]
fn several_streams_open_at_once_each_get_the_data() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("multi");
    let small = pattern(10_000, 7);
    let mut large = vec![0u8; 3 << 20];
    large[(1 << 20)..(1 << 20) + 5000].copy_from_slice(&pattern(5000, 9));
    let mut tree = ImageTree::new();
    let mut n = 0;
    let mut file_at = |tree: &mut ImageTree, name: &str, attrs: u32, data: &[u8]| {
        n += 1;
        let inode = times(
            file(attrs, data),
            ft(1_600_000_000 + n, n as u64),
            ft(1_650_000_000 + n, 3),
        );
        add(tree, "", name, inode);
        tree.find(name).unwrap()
    };
    let smalls: Vec<usize> = (0..3)
        .map(|k| file_at(&mut tree, &format!("s{k}"), FILE_ATTRIBUTE_NORMAL, &small))
        .collect();
    let larges = vec![
        file_at(&mut tree, "l0", FILE_ATTRIBUTE_NORMAL, &large),
        file_at(&mut tree, "l1", FILE_ATTRIBUTE_SPARSE_FILE, &large),
        file_at(&mut tree, "l2", FILE_ATTRIBUTE_NORMAL, &large),
    ];
    let mut target = HostDirTarget::new(&root).unwrap();
    let order = tree.preorder();
    let paths: Vec<_> = (0..tree.dentries.len())
        .map(|d| wim_path(&tree, d))
        .collect();
    let entry = |d: usize| entry_of(&tree, &paths, d);
    target.create_directory(&entry(ImageTree::ROOT)).unwrap();
    for &d in &order[1..] {
        target.create_file(&entry(d)).unwrap();
    }
    for (ds, data) in [(&smalls, &small), (&larges, &large)] {
        let limit = target.max_open_streams(data.len() as u64);
        assert!(limit >= ds.len(), "limit {limit} for {} bytes", data.len());
        for &d in ds {
            let e = entry(d);
            target.begin_stream(&e, &e.inode.streams[0]).unwrap();
        }
        for piece in data.chunks(7777) {
            target.write_stream(piece).unwrap();
        }
        target.end_stream().unwrap();
    }
    for &d in order.iter().rev() {
        target.set_metadata(&entry(d)).unwrap();
    }
    target.finish().unwrap();
    let seen = read_tree(&root);
    assert_eq!(seen.len(), 6);
    for &d in smalls.iter().chain(&larges) {
        let rel = &paths[d].as_slash_str().to_string();
        let want = if smalls.contains(&d) { &small } else { &large };
        assert!(
            matches!(&seen[rel].node, Node::File(b) if b == want),
            "{rel}"
        );
        let inode = tree.inode_of(d);
        assert_eq!(seen[rel].mtime, unix(inode.last_write_time), "{rel} mtime");
        assert_eq!(seen[rel].atime, unix(inode.last_access_time), "{rel} atime");
    }
    assert!(
        seen["l1"].allocated <= 64 * 1024,
        "sparse: {}",
        seen["l1"].allocated
    );
    assert!(seen["l0"].allocated >= 3 << 20);

    // More than the limit at once is refused, naming the file.
    let many = tmp.path().join("many");
    let mut target = HostDirTarget::new(&many).unwrap();
    let limit = target.max_open_streams(large.len() as u64);
    let mut tree = ImageTree::new();
    let ids: Vec<usize> = (0..=limit)
        .map(|k| {
            add(
                &mut tree,
                "",
                &format!("m{k}"),
                file(FILE_ATTRIBUTE_NORMAL, &large),
            );
            tree.find(&format!("m{k}")).unwrap()
        })
        .collect();
    let paths: Vec<_> = (0..tree.dentries.len())
        .map(|d| wim_path(&tree, d))
        .collect();
    let entry = |d: usize| entry_of(&tree, &paths, d);
    for (k, &d) in ids.iter().enumerate() {
        let e = entry(d);
        target.create_file(&e).unwrap();
        let r = target.begin_stream(&e, &e.inode.streams[0]);
        if k < limit {
            r.unwrap();
        } else {
            let err = r.unwrap_err().to_string();
            assert!(
                err.contains(&format!("m{limit}")) && err.contains("open"),
                "{err}"
            );
        }
    }
    target.end_stream().unwrap();
}
