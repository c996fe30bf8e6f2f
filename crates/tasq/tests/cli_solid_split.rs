//! `tasq wim` with solid resources and split WIMs, judged by wimlib-imagex:
//! `capture/export --solid` WIMs verify and apply under wimlib; `split`
//! parts are read by `info/dir/verify/apply/extract --ref` and joined by
//! wimlib; `join` puts wimlib's parts back together.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn parts(dir: &Path, stem: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with(stem) && n.ends_with(".swm")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn solid_capture_and_export_verify_and_apply_under_wimlib() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    make_tree(&src);
    for (ctype, chunk) in [("lzx", "65536"), ("xpress", "8192"), ("lzms", "67108864")] {
        let wim = tmp.path().join(format!("solid-{ctype}.wim"));
        tasq_ok(&[
            "wim",
            "capture",
            s(&src),
            s(&wim),
            "--solid",
            "--solid-compress",
            ctype,
            "--solid-chunk-size",
            chunk,
        ]);
        let info = tasq_ok(&["wim", "info", s(&wim)]);
        assert!(info.contains("Version:        3584"), "{info}");
        assert!(info.contains("Solid:          1 resource(s)"), "{info}");
        assert!(wimlib_ok(&["verify", s(&wim)]).contains("successfully verified"));
        let out = tmp.path().join(format!("wimlib-{ctype}"));
        wimlib_ok(&["apply", s(&wim), s(&out)]);
        assert_same_tree(&src, &out, &format!("solid {ctype}, applied by wimlib"));
        let out = tmp.path().join(format!("tasq-{ctype}"));
        tasq_ok(&["wim", "apply", s(&wim), s(&out)]);
        assert_same_tree(&src, &out, &format!("solid {ctype}, applied by tasq"));
        tasq_ok(&["wim", "verify", s(&wim)]);
    }
    // Ordinary -> solid by export.
    let plain = tmp.path().join("plain.wim");
    tasq_ok(&["wim", "capture", s(&src), s(&plain), "--compress", "xpress"]);
    let exported = tmp.path().join("exported.wim");
    tasq_ok(&[
        "wim",
        "export",
        s(&plain),
        "1",
        s(&exported),
        "--solid",
        "--solid-compress",
        "lzx",
    ]);
    assert!(wimlib_ok(&["verify", s(&exported)]).contains("successfully verified"));
    let out = tmp.path().join("exported-applied");
    wimlib_ok(&["apply", s(&exported), s(&out)]);
    assert_same_tree(&src, &out, "exported solid, applied by wimlib");
    // Bad solid options are one clean error line.
    let out = tasq(&[
        "wim",
        "capture",
        s(&src),
        s(&tmp.path().join("bad.wim")),
        "--solid",
        "--solid-compress",
        "lzx",
        "--solid-chunk-size",
        "1000",
    ]);
    assert_clean_failure(&out, &["chunk size 1000"]);
}

#[test]
fn split_parts_are_read_with_ref_and_joined_by_wimlib() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    make_tree(&src);
    let wim = tmp.path().join("w.wim");
    tasq_ok(&["wim", "capture", s(&src), s(&wim)]);
    let first = tmp.path().join("p.swm");
    tasq_ok(&["wim", "split", s(&wim), s(&first), "--part-size", "300K"]);
    let ps = parts(tmp.path(), "p");
    assert!(ps.len() >= 3, "{ps:?}");
    assert!(tmp.path().join("p2.swm").exists());
    let glob = format!("{}/p*.swm", tmp.path().display());
    let info = tasq_ok(&["wim", "info", s(&first), "--ref", &glob]);
    assert!(
        info.contains(&format!("Part Number:    1/{}", ps.len())),
        "{info}"
    );
    tasq_ok(&["wim", "verify", s(&first), "--ref", &glob]);
    let listing = tasq_ok(&["wim", "dir", s(&first), "1", "--ref", &glob]);
    assert!(listing.contains("/d1/d2/d3/deep.txt"), "{listing}");
    let out = tmp.path().join("applied");
    tasq_ok(&["wim", "apply", s(&first), s(&out), "--ref", &glob]);
    assert_same_tree(&src, &out, "split set applied by tasq");
    let ex = tmp.path().join("extracted");
    tasq_ok(&[
        "wim",
        "extract",
        s(&first),
        "1",
        "/d1/d2/d3/deep.txt",
        "--dest",
        s(&ex),
        "--ref",
        &glob,
    ]);
    assert_eq!(std::fs::read(ex.join("deep.txt")).unwrap(), b"deep down\n");
    // Without the other parts: one clean error naming the file.
    let out = tasq(&["wim", "apply", s(&first), s(&tmp.path().join("no"))]);
    assert_clean_failure(&out, &["p.swm", "missing"]);
    // wimlib reads and joins our parts.
    assert!(wimlib_ok(&["verify", s(&first), "--ref", &glob]).contains("successfully verified"));
    let joined = tmp.path().join("joined.wim");
    let mut args = vec!["join", s(&joined)];
    args.extend(ps.iter().map(|p| s(p)));
    wimlib_ok(&args);
    let out = tmp.path().join("joined-applied");
    wimlib_ok(&["apply", s(&joined), s(&out)]);
    assert_same_tree(&src, &out, "tasq split joined by wimlib");
}

#[test]
fn join_puts_wimlib_parts_back_together() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    make_tree(&src);
    let wim = tmp.path().join("w.wim");
    wimlib_ok(&["capture", s(&src), s(&wim), "--compress=XPRESS"]);
    let first = tmp.path().join("q.swm");
    wimlib_ok(&["split", s(&wim), s(&first), "0.3"]);
    let mut ps = parts(tmp.path(), "q");
    assert!(ps.len() >= 3, "{ps:?}");
    ps.reverse(); // any order
    let joined = tmp.path().join("joined.wim");
    let mut args = vec!["wim", "join", s(&joined)];
    args.extend(ps.iter().map(|p| s(p)));
    tasq_ok(&args);
    assert!(wimlib_ok(&["verify", s(&joined)]).contains("successfully verified"));
    let out = tmp.path().join("applied");
    wimlib_ok(&["apply", s(&joined), s(&out)]);
    assert_same_tree(&src, &out, "wimlib split joined by tasq");
    // A part missing from the join is named.
    let out = tasq(&[
        "wim",
        "join",
        s(&tmp.path().join("j2.wim")),
        s(&ps[ps.len() - 1]),
        s(&ps[0]),
    ]);
    assert_clean_failure(&out, &["missing"]);
}
