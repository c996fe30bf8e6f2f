//! wimlib as the oracle: a tree is captured by `wimlib-imagex capture
//! --config=FILE`, and the set of paths in the resulting image must be
//! exactly the paths our `is_excluded` keeps. wimlib on UNIX matches case
//! sensitively, so the names and patterns here agree in case. Skipped (with
//! a message) only when `wimlib-imagex` is not installed.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use tasq_wim::capture_config::CaptureConfig;

const FILES: &[&str] = &[
    "a.log",
    "keep.log",
    "logs/x.log",
    "logs/sub/y.log",
    "dir/other",
    "dir/file",
    "dir/keep/x.txt",
    "dir/keep/x.bin",
    "dir/sub/x.txt",
    "src/main.rs",
    "src/node_modules/m/index.js",
    "src/node_modules.txt",
    "temp/t",
    "sub/temp/t",
    "data/a.tmp",
    "data/x/a.tmp",
    "music/song.mp3",
    "x.mp3.txt",
    "pagefile.sys",
    "hiberfil.sys",
    "System Volume Information/tracking.log",
    "$Recycle.Bin/S-1-5/desktop.ini",
    "Windows/CSC/v2/namespace",
    "Windows/System32/pagefile.sys",
    "ab/c",
    "ab/cd",
    "abc/d/e",
    "with space/f",
    "other/file",
];

const CONFIGS: &[&str] = &[
    "[ExclusionList]\n*.log\n[ExclusionException]\nkeep.log\n\\logs\n",
    "[ExclusionList]\n\\dir\n[ExclusionException]\n\\dir\\keep\\*.txt\n",
    "[ExclusionList]\n\\dir\n[ExclusionException]\nfile\n",
    "[ExclusionList]\nnode_modules\n\\temp\n\\data\\*.tmp\n*.mp3\n",
    "[ExclusionList]\n\\a*\\?\n/with space\nC:\\sub\\temp\n",
    "[ExclusionList]\n*\n[ExclusionException]\n\\dir\\keep\n",
    "[ExclusionList]\n\\*\\*\\*\n",
    "[ExclusionList]\n?\n*.t?t\n[ExclusionException]\n\\dir\\sub\n",
];

/// Every path of the tree in image form ("\a\b"), directories included.
fn all_paths() -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for f in FILES {
        let parts: Vec<&str> = f.split('/').collect();
        for n in 1..=parts.len() {
            set.insert(format!("\\{}", parts[..n].join("\\")));
        }
    }
    set
}

fn make_tree(root: &Path) {
    for f in FILES {
        let p = root.join(f);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, f.as_bytes()).unwrap();
    }
}

/// Captures `src` with wimlib and lists the image; None if wimlib is absent.
fn wimlib_paths(dir: &Path, src: &Path, config: Option<&str>) -> Option<BTreeSet<String>> {
    let wim = dir.join("o.wim");
    let _ = fs::remove_file(&wim);
    let mut cmd = Command::new("wimlib-imagex");
    cmd.arg("capture").arg(src).arg(&wim);
    if let Some(text) = config {
        let cfg = dir.join("config.ini");
        fs::write(&cfg, text).unwrap();
        cmd.arg(format!("--config={}", cfg.display()));
    }
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("cannot run wimlib-imagex: {e}"),
    };
    assert!(
        out.status.success(),
        "capture failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("wimlib-imagex")
        .arg("dir")
        .arg(&wim)
        .arg("1")
        .output()
        .unwrap();
    assert!(out.status.success());
    let listing = String::from_utf8(out.stdout).unwrap();
    Some(
        listing
            .lines()
            .filter(|l| *l != "/")
            .map(|l| l.replace('/', "\\"))
            .collect(),
    )
}

fn ours(config: &CaptureConfig) -> BTreeSet<String> {
    all_paths()
        .into_iter()
        .filter(|p| !config.is_excluded(p))
        .collect()
}

#[test]
fn exclusions_agree_with_wimlib() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_tree(&src);
    let Some(everything) = wimlib_paths(dir.path(), &src, Some("[ExclusionList]\n")) else {
        eprintln!("SKIPPED: wimlib-imagex is not installed; cannot compare with wimlib");
        return;
    };
    assert_eq!(everything, all_paths(), "tree listing sanity check");

    for text in CONFIGS {
        let theirs = wimlib_paths(dir.path(), &src, Some(text)).unwrap();
        let config = CaptureConfig::parse(text.as_bytes(), "config.ini").unwrap();
        let mine = ours(&config);
        assert_eq!(
            mine,
            theirs,
            "config:\n{text}\nonly ours: {:?}\nonly wimlib's: {:?}",
            mine.difference(&theirs).collect::<Vec<_>>(),
            theirs.difference(&mine).collect::<Vec<_>>()
        );
        // Each config must exclude something, or the comparison proves little.
        assert!(
            mine.len() < everything.len(),
            "config excludes nothing:\n{text}"
        );
    }

    // No --config: wimlib applies its default list, which must be ours.
    let theirs = wimlib_paths(dir.path(), &src, None).unwrap();
    assert_eq!(ours(&CaptureConfig::windows_default()), theirs);
}
