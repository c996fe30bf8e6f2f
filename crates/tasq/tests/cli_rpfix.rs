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
