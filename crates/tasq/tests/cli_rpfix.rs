//! Reparse-point fixups (wimlib's default `--rpfix`): wimlib captures an
//! absolute symlink that points inside the captured tree as a target
//! relative to the image root and sets the header's RP_FIX flag; applying
//! such a WIM must re-root the link under the target directory, as
//! `wimlib-imagex apply` does, not leave it pointing at `/`.

mod common;

use std::os::unix::fs::symlink;

use common::*;

#[test]
fn absolute_links_into_the_tree_are_rerooted_like_wimlib() {
    let tmp = tempdir();
    std::fs::create_dir_all(tmp.path().join("src")).unwrap();
    // wimlib decides "inside the tree" by the real path.
    let src = tmp.path().join("src").canonicalize().unwrap();
    std::fs::create_dir_all(src.join("lib/sub")).unwrap();
    std::fs::write(src.join("lib/sub/file.txt"), b"payload\n").unwrap();
    symlink(src.join("lib/sub/file.txt"), src.join("inside")).unwrap();
    symlink(&src, src.join("to_root")).unwrap();
    symlink("/nonexistent/tasq-rpfix/outside", src.join("outside")).unwrap();
    symlink("lib/sub", src.join("relative")).unwrap();
    let wim = tmp.path().join("rpfix.wim");
    wimlib_ok(&["capture", s(&src), s(&wim), "img"]);

    let by_wimlib = tmp.path().join("by-wimlib");
    wimlib_ok(&["apply", s(&wim), s(&by_wimlib)]);
    let by_tasq = tmp.path().join("by-tasq");
    tasq_ok(&["wim", "apply", s(&wim), s(&by_tasq)]);
    let root = by_tasq.canonicalize().unwrap();
    let link = |dir: &std::path::Path, n: &str| std::fs::read_link(dir.join(n)).unwrap();
    assert_eq!(link(&by_tasq, "inside"), root.join("lib/sub/file.txt"));
    assert_eq!(link(&by_tasq, "to_root"), root);
    assert_eq!(
        link(&by_tasq, "outside"),
        std::path::Path::new("/nonexistent/tasq-rpfix/outside")
    );
    assert_eq!(link(&by_tasq, "relative"), std::path::Path::new("lib/sub"));
    assert_eq!(
        std::fs::read(by_tasq.join("inside")).unwrap(),
        b"payload\n",
        "the re-rooted link resolves inside the applied tree"
    );
    // Same shape as wimlib's result (its links point into its own target).
    let wroot = by_wimlib.canonicalize().unwrap();
    assert_eq!(link(&by_wimlib, "inside"), wroot.join("lib/sub/file.txt"));

    // --norpfix: exactly as stored (relative to the image root).
    let raw = tmp.path().join("raw");
    tasq_ok(&["wim", "apply", s(&wim), s(&raw), "--norpfix"]);
    assert_eq!(
        link(&raw, "inside"),
        std::path::Path::new("/lib/sub/file.txt")
    );
}

/// Links of a tree with absolute links into it (plain, with doubled
/// slashes, through another link to the root, to the root itself) and out
/// of it, and a relative one.
fn linked_tree(tmp: &std::path::Path) -> std::path::PathBuf {
    std::fs::create_dir_all(tmp.join("src")).unwrap();
    let src = tmp.join("src").canonicalize().unwrap();
    std::fs::create_dir_all(src.join("lib/sub")).unwrap();
    std::fs::write(src.join("lib/sub/file.txt"), b"payload\n").unwrap();
    symlink(&src, tmp.join("alias")).unwrap();
    symlink(src.join("lib/sub/file.txt"), src.join("inside")).unwrap();
    let doubled = format!("/{}//lib//sub/", src.display());
    symlink(&doubled, src.join("doubled")).unwrap();
    symlink(tmp.join("alias/lib"), src.join("via_alias")).unwrap();
    symlink(&src, src.join("to_root")).unwrap();
    symlink("/nonexistent/tasq-rpfix/outside", src.join("outside")).unwrap();
    symlink("lib/sub", src.join("relative")).unwrap();
    src
}

const LINKS: [&str; 6] = [
    "inside",
    "doubled",
    "via_alias",
    "to_root",
    "outside",
    "relative",
];

/// Each link's target after `wimlib-imagex apply --norpfix` (the stored
/// target, as wimlib turns it back into a UNIX one).
fn stored_targets(wim: &std::path::Path, image: &str, out: &std::path::Path) -> Vec<String> {
    wimlib_ok(&["apply", s(wim), image, s(out), "--norpfix"]);
    LINKS
        .iter()
        .map(|n| {
            std::fs::read_link(out.join(n))
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

fn has_rpfix_flag(wim: &std::path::Path) -> bool {
    wimlib_ok(&["info", s(wim)]).contains("Relative path junction")
}

#[test]
fn capture_fixes_links_into_the_tree_like_wimlib() {
    let tmp = tempdir();
    let src = linked_tree(tmp.path());
    let ours = tmp.path().join("ours.wim");
    let theirs = tmp.path().join("theirs.wim");
    tasq_ok(&["wim", "capture", s(&src), s(&ours), "--compress", "none"]);
    wimlib_ok(&["capture", s(&src), s(&theirs), "img", "--compress=none"]);
    let got = stored_targets(&ours, "1", &tmp.path().join("a1"));
    let want = stored_targets(&theirs, "1", &tmp.path().join("a2"));
    assert_eq!(got, want, "stored link targets, tasq vs wimlib");
    // The fixed ones lost the tree's path; the others kept theirs.
    assert_eq!(got[0], "/lib/sub/file.txt");
    assert_eq!(got[4], "/nonexistent/tasq-rpfix/outside");
    assert_eq!(got[5], "lib/sub");
    assert!(has_rpfix_flag(&ours), "tasq's WIM is marked RP_FIX");
    assert!(has_rpfix_flag(&theirs));

    // Applied by either tool, a fixed link points into the applied tree.
    for (who, dir) in [("tasq", "t"), ("wimlib", "w")] {
        let out = tmp.path().join(dir);
        if who == "tasq" {
            tasq_ok(&["wim", "apply", s(&ours), s(&out)]);
        } else {
            wimlib_ok(&["apply", s(&ours), s(&out)]);
        }
        let root = out.canonicalize().unwrap();
        assert_eq!(
            std::fs::read_link(out.join("inside")).unwrap(),
            root.join("lib/sub/file.txt"),
            "{who}"
        );
        assert_eq!(
            std::fs::read(out.join("via_alias/sub/file.txt")).unwrap(),
            b"payload\n"
        );
    }
}

#[test]
fn norpfix_and_append_follow_wimlibs_defaults() {
    let tmp = tempdir();
    let src = linked_tree(tmp.path());
    let raw = |i: usize| tmp.path().join(format!("raw{i}"));
    let as_is = src.join("lib/sub/file.txt").to_string_lossy().into_owned();

    // --norpfix: stored as they are, no flag; an append keeps that default.
    let plain = tmp.path().join("plain.wim");
    tasq_ok(&[
        "wim",
        "capture",
        s(&src),
        s(&plain),
        "--norpfix",
        "--compress",
        "none",
    ]);
    assert!(!has_rpfix_flag(&plain));
    tasq_ok(&[
        "wim",
        "append",
        s(&src),
        s(&plain),
        "second",
        "--compress",
        "none",
    ]);
    assert!(!has_rpfix_flag(&plain));
    assert_eq!(stored_targets(&plain, "1", &raw(1))[0], as_is);
    assert_eq!(stored_targets(&plain, "2", &raw(2))[0], as_is);
    // ... unless asked.
    tasq_ok(&[
        "wim",
        "append",
        s(&src),
        s(&plain),
        "third",
        "--rpfix",
        "--compress",
        "none",
    ]);
    assert!(has_rpfix_flag(&plain));
    assert_eq!(stored_targets(&plain, "3", &raw(3))[0], "/lib/sub/file.txt");

    // A WIM marked RP_FIX: appends fix their links too, --norpfix keeps them.
    let fixed = tmp.path().join("fixed.wim");
    tasq_ok(&["wim", "capture", s(&src), s(&fixed), "--compress", "none"]);
    tasq_ok(&[
        "wim",
        "append",
        s(&src),
        s(&fixed),
        "second",
        "--compress",
        "none",
    ]);
    tasq_ok(&[
        "wim",
        "append",
        s(&src),
        s(&fixed),
        "third",
        "--norpfix",
        "--compress",
        "none",
    ]);
    assert!(has_rpfix_flag(&fixed));
    assert_eq!(stored_targets(&fixed, "2", &raw(4))[0], "/lib/sub/file.txt");
    assert_eq!(stored_targets(&fixed, "3", &raw(5))[0], as_is);
    let out = tasq(&[
        "wim",
        "capture",
        s(&src),
        s(&tmp.path().join("x.wim")),
        "--rpfix",
        "--norpfix",
    ]);
    assert!(!out.status.success(), "--rpfix and --norpfix conflict");
}
