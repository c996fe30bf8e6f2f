//! The tasq binary does not load libsmbclient (and the ~66 samba libraries
//! behind it) unless an SMB share is used: neither `tasq --version` nor a
//! WIM capture and apply maps it. Checked with the dynamic loader's own
//! trace (`LD_DEBUG=libs`), which lists every shared object a process
//! loads, whether it is a link-time dependency or opened with dlopen.

mod common;

use common::*;
use std::process::Command;

/// Runs `tasq ARGS` under `LD_DEBUG=libs`, which must succeed; returns the
/// loader's trace.
fn loader_trace(args: &[&str]) -> String {
    let out = Command::new(TASQ)
        .args(args)
        .env("LD_DEBUG", "libs")
        .output()
        .expect("cannot run the tasq binary");
    assert!(
        out.status.success(),
        "tasq {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trace = String::from_utf8_lossy(&out.stderr).into_owned();
    // The trace is there at all: libc is always loaded.
    assert!(trace.contains("libc.so.6"), "no loader trace: {trace}");
    trace
}

fn assert_no_samba(trace: &str, what: &str) {
    for lib in ["libsmbclient", "samba", "libtalloc"] {
        assert!(!trace.contains(lib), "{what} loaded {lib}:\n{trace}");
    }
}

#[test]
fn version_loads_no_samba_library() {
    let trace = loader_trace(&["--version"]);
    assert_no_samba(&trace, "tasq --version");
}

#[test]
fn wim_capture_and_apply_load_no_samba_library() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    make_tree(&src);
    let wim = tmp.path().join("a.wim");
    let out = tmp.path().join("out");
    let trace = loader_trace(&["wim", "capture", s(&src), s(&wim), "--name", "a"]);
    assert_no_samba(&trace, "tasq wim capture");
    let trace = loader_trace(&["wim", "apply", s(&wim), "1", s(&out)]);
    assert_no_samba(&trace, "tasq wim apply");
    assert_same_tree(&src, &out, "apply");
}
