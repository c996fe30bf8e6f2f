//! Capture exclusions through the command line: the Windows defaults
//! (pagefile.sys, hiberfil.sys, System Volume Information, ...) when no
//! `--config` is given, a WimScript.ini-style `--config FILE` (compared
//! with wimlib-imagex given the same file), and clear errors for a bad one.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use common::*;

/// A tree with the files Windows' default exclusions name, at the root and
/// (where they must be kept) deeper down.
fn windows_like_tree(root: &Path) {
    for d in [
        "System Volume Information",
        "$Recycle.Bin/S-1-5-21",
        "Windows/CSC/v2.0.6",
        "Windows/System32",
        "keep",
        "logs/old",
    ] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    for (f, data) in [
        ("pagefile.sys", &b"page"[..]),
        ("hiberfil.sys", b"hiber"),
        ("swapfile.sys", b"swap"),
        ("System Volume Information/tracking.log", b"svi"),
        ("$Recycle.Bin/S-1-5-21/$R1.txt", b"deleted"),
        ("Windows/CSC/v2.0.6/cache", b"csc"),
        ("Windows/System32/kernel32.dll", b"MZ"),
        ("keep/pagefile.sys", b"not at the root: kept"),
        ("keep/a.tmp", b"tmp"),
        ("logs/app.log", b"log"),
        ("logs/keep.log", b"kept by exception"),
        ("logs/old/x.log", b"old"),
        ("readme.txt", b"hello"),
    ] {
        fs::write(root.join(f), data).unwrap();
    }
}

fn tasq_dir(wim: &Path) -> BTreeSet<String> {
    tasq_ok(&["wim", "dir", s(wim), "1"])
        .lines()
        .map(str::to_string)
        .collect()
}

fn set(paths: &[&str]) -> BTreeSet<String> {
    paths.iter().map(|p| p.to_string()).collect()
}

#[test]
fn default_exclusions_leave_out_windows_files() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    windows_like_tree(&src);
    let wim = tmp.path().join("d.wim");
    tasq_ok(&["wim", "capture", s(&src), s(&wim), "--compress", "xpress"]);
    let want = set(&[
        "/",
        "/keep",
        "/keep/a.tmp",
        "/keep/pagefile.sys",
        "/logs",
        "/logs/app.log",
        "/logs/keep.log",
        "/logs/old",
        "/logs/old/x.log",
        "/readme.txt",
        "/Windows",
        "/Windows/System32",
        "/Windows/System32/kernel32.dll",
    ]);
    assert_eq!(tasq_dir(&wim), want);
    // The peer sees the same list, and the counts agree.
    assert_dir_agrees(&wim, "1");
    assert_info_agrees(&wim);
    wimlib_ok(&["verify", s(&wim)]);
    let out = tmp.path().join("out");
    wimlib_ok(&["apply", s(&wim), "1", s(&out)]);
    let got: BTreeSet<String> = list_all(&out)
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect();
    let want_rel: BTreeSet<String> = want
        .iter()
        .filter(|p| *p != "/")
        .map(|p| p[1..].to_string())
        .collect();
    assert_eq!(got, want_rel);
}

#[test]
fn config_file_exclusions_match_wimlib() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    windows_like_tree(&src);
    let cfg = tmp.path().join("wimscript.ini");
    fs::write(
        &cfg,
        "; test configuration\r\n[ExclusionList]\r\n*.tmp\r\n\\logs\r\n\r\n[ExclusionException]\r\n\\logs\\keep.log\r\n",
    )
    .unwrap();
    let wim = tmp.path().join("c.wim");
    tasq_ok(&[
        "wim",
        "capture",
        s(&src),
        s(&wim),
        "--config",
        s(&cfg),
        "--compress",
        "none",
    ]);
    let got = tasq_dir(&wim);
    // A configuration replaces the defaults: pagefile.sys is captured now.
    assert!(got.contains("/pagefile.sys"), "{got:?}");
    assert!(
        got.contains("/System Volume Information/tracking.log"),
        "{got:?}"
    );
    assert!(!got.contains("/keep/a.tmp"), "{got:?}");
    assert!(
        !got.contains("/logs/app.log") && !got.contains("/logs/old"),
        "{got:?}"
    );
    assert!(
        got.contains("/logs/keep.log"),
        "the exception was not honoured: {got:?}"
    );
    // wimlib, given the same file, captures the same paths.
    let wwim = tmp.path().join("w.wim");
    let conf = format!("--config={}", s(&cfg));
    wimlib_ok(&["capture", s(&src), s(&wwim), "--compress=none", &conf]);
    assert_eq!(
        got,
        tasq_dir(&wwim),
        "tasq vs wimlib capture with the same --config"
    );
    assert_dir_agrees(&wim, "1");
}

#[test]
fn bad_config_file_is_a_one_line_error_naming_file_and_line() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    windows_like_tree(&src);
    let wim = tmp.path().join("never.wim");
    for (text, line) in [
        ("[ExclusionList]\n*.tmp\n[NoSuchSection]\n", 3),
        ("; comment\n\\pagefile.sys\n", 2),
        ("[ExclusionList]\n\n\nfoo\\bar\n", 4),
    ] {
        let cfg = tmp.path().join("bad.ini");
        fs::write(&cfg, text).unwrap();
        let out = tasq(&["wim", "capture", s(&src), s(&wim), "--config", s(&cfg)]);
        assert_clean_failure(&out, &[&format!("bad.ini:{line}:")]);
        assert!(
            !wim.exists(),
            "a WIM was written despite a bad configuration"
        );
    }
    let missing = tmp.path().join("missing.ini");
    let out = tasq(&["wim", "capture", s(&src), s(&wim), "--config", s(&missing)]);
    assert_clean_failure(&out, &["missing.ini"]);
    assert!(!wim.exists());
    // Nothing but the source and the config file in the directory: no temp file left.
    let left: BTreeSet<String> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, set(&["bad.ini", "src"]));
}
