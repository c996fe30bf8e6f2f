//! Pipable WIMs (wimlib's `WLPWM` format, `wimlib-imagex capture --pipable`
//! or capture to standard output): tasq reads them from a file — info, dir,
//! verify, apply, extract, export to a normal WIM — and refuses to modify
//! one in place.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

/// `wimlib-imagex capture SRC - NAME` streamed into `dest`.
fn wimlib_capture_to_stdout(src: &Path, dest: &Path, name: &str, compress: &str) {
    let out = std::fs::File::create(dest).unwrap();
    let st = Command::new("wimlib-imagex")
        .args(["capture", s(src), "-", name])
        .arg(format!("--compress={compress}"))
        .stdout(Stdio::from(out))
        .stderr(Stdio::null())
        .status()
        .expect("wimlib-imagex");
    assert!(st.success(), "wimlib-imagex capture to stdout failed");
}

/// wimlib-imagex, which warns on every pipable capture (the format is
/// wimlib's own): success is all that is checked.
fn wimlib_pipable(args: &[&str]) {
    let out = wimlib(args);
    assert!(
        out.status.success(),
        "wimlib-imagex {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pipable_wims_from_wimlib_are_read_and_applied() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    make_tree(&src);
    let src2 = tmp.path().join("src2");
    std::fs::create_dir_all(src2.join("sub")).unwrap();
    std::fs::write(src2.join("sub/other.txt"), text_bytes(70_000, 9)).unwrap();
    // WIM times have 100 ns steps: give the second tree whole-second ones.
    for p in ["sub/other.txt", "sub", ""] {
        set_mtime(&src2.join(p), "2001-02-03 04:05:06 UTC");
    }

    for ctype in ["none", "xpress", "lzx", "lzms"] {
        // Written to a seekable file, with an integrity table, two images.
        let wim = tmp.path().join(format!("p-{ctype}.wim"));
        wimlib_pipable(&[
            "capture",
            s(&src),
            s(&wim),
            "one",
            "--pipable",
            "--check",
            &format!("--compress={ctype}"),
        ]);
        wimlib_pipable(&["append", s(&src2), s(&wim), "two", "--check"]);
        assert_eq!(&std::fs::read(&wim).unwrap()[..5], b"WLPWM", "{ctype}");
        let info = tasq_ok(&["wim", "info", s(&wim)]);
        assert!(info.contains("Pipable:        yes"), "{info}");
        assert_eq!(assert_info_agrees(&wim), 2, "{ctype}");
        assert_dir_agrees(&wim, "1");
        assert_dir_agrees(&wim, "two");
        tasq_ok(&["wim", "verify", s(&wim)]);
        for (img, tree) in [("1", &src), ("2", &src2)] {
            let out = tmp.path().join(format!("t-{ctype}-{img}"));
            tasq_ok(&["wim", "apply", s(&wim), img, s(&out)]);
            assert_same_tree(tree, &out, &format!("pipable {ctype} image {img}"));
        }
        // Export to a normal WIM that wimlib verifies (compressed pipable
        // resources have their own chunk layout and are never copied raw).
        let normal = tmp.path().join(format!("n-{ctype}.wim"));
        tasq_ok(&[
            "wim",
            "export",
            s(&wim),
            "1",
            s(&normal),
            "--compress",
            ctype,
        ]);
        assert_eq!(&std::fs::read(&normal).unwrap()[..5], b"MSWIM");
        assert!(wimlib_ok(&["verify", s(&normal)]).contains("successfully verified"));
        let out = tmp.path().join(format!("w-{ctype}"));
        wimlib_ok(&["apply", s(&normal), s(&out)]);
        assert_same_tree(&src, &out, &format!("export of pipable {ctype}"));
    }

    // Streamed to standard output (header at the start without tables).
    let streamed = tmp.path().join("streamed.wim");
    wimlib_capture_to_stdout(&src, &streamed, "streamed", "lzx");
    assert_eq!(assert_info_agrees(&streamed), 1);
    let out = tmp.path().join("t-streamed");
    tasq_ok(&["wim", "apply", s(&streamed), s(&out)]);
    assert_same_tree(&src, &out, "pipable WIM streamed by wimlib");
    let ex = tmp.path().join("ex");
    tasq_ok(&[
        "wim",
        "extract",
        s(&streamed),
        "1",
        "/d1/big.bin",
        "--dest",
        s(&ex),
    ]);
    assert_eq!(
        std::fs::read(ex.join("big.bin")).unwrap(),
        std::fs::read(src.join("d1/big.bin")).unwrap()
    );
}

#[test]
fn pipable_wims_are_not_modified_in_place_and_damage_is_reported() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    make_tree(&src);
    let wim = tmp.path().join("p.wim");
    wimlib_pipable(&[
        "capture",
        s(&src),
        s(&wim),
        "one",
        "--pipable",
        "--compress=lzx",
    ]);
    let before = std::fs::read(&wim).unwrap();

    let out = tasq(&["wim", "append", s(&src), s(&wim), "--name", "two"]);
    assert_clean_failure(&out, &["pipable", "export"]);
    let out = tasq(&["wim", "delete", s(&wim), "1"]);
    assert_clean_failure(&out, &["pipable", "export"]);
    let out = tasq(&["wim", "optimize", s(&wim)]);
    assert_clean_failure(&out, &["pipable", "export"]);
    assert_eq!(std::fs::read(&wim).unwrap(), before, "pipable WIM changed");

    // Cut off the final header (an interrupted stream): named, no panic.
    let cut = tmp.path().join("cut.wim");
    std::fs::write(&cut, &before[..before.len() - 100]).unwrap();
    let out = tasq(&["wim", "info", s(&cut)]);
    assert_clean_failure(&out, &["pipable", "final header"]);

    // Damage in the middle of the file data (in a pipable WIM the
    // metadata comes first, so the middle is file data): one clean error.
    let mut bad = before.clone();
    let at = before.len() / 2;
    for b in &mut bad[at..at + 64] {
        *b ^= 0x5a;
    }
    let damaged = tmp.path().join("damaged.wim");
    std::fs::write(&damaged, &bad).unwrap();
    let dest = tmp.path().join("dest");
    let out = tasq(&["wim", "apply", s(&damaged), s(&dest)]);
    assert_clean_failure(&out, &[]);
}
