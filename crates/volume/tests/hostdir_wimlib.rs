//! Compatibility with wimlib-imagex, the peer: the same directory captured
//! by both tools gives the same image (names, attributes, times, reparse
//! data, hard links, stream contents), and the same image applied by both
//! gives the same tree on disk.
//!
//! wimlib captures into an uncompressed WIM (`--compress=none`), read here
//! with tasq-wim's header, blob table and metadata parsers. `--norpfix`
//! because HostDirSource does not rewrite absolute link targets.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use common::*;
use tasq_volume::{HostDirSource, HostDirTarget};
use tasq_wim::blob_table::parse_blob_table;
use tasq_wim::capture::{CaptureSource, NoFilter};
use tasq_wim::header::{Header, HEADER_SIZE};
use tasq_wim::image::*;
use tasq_wim::metadata::parse_metadata;
use tasq_wim::Sha1Hash;

fn wimlib(args: &[&str]) {
    let out = Command::new("wimlib-imagex")
        .args(args)
        .output()
        .expect("wimlib-imagex must be installed (scripts/setup.sh installs wimtools)");
    assert!(
        out.status.success(),
        "wimlib-imagex {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Wim {
    tree: ImageTree,
    blobs: HashMap<Sha1Hash, Vec<u8>>,
}

/// Reads image 1 of an uncompressed, single-part WIM.
fn read_uncompressed_wim(path: &Path) -> Wim {
    let bytes = fs::read(path).unwrap();
    let hdr = Header::parse(&bytes[..HEADER_SIZE]).unwrap();
    let at = |off: u64, len: u64| bytes[off as usize..(off + len) as usize].to_vec();
    let table = at(hdr.blob_table.offset_in_wim, hdr.blob_table.size_in_wim);
    let mut blobs = HashMap::new();
    let mut metadata = None;
    for e in parse_blob_table(&table).unwrap() {
        assert!(!e.reshdr.is_compressed());
        let data = at(e.reshdr.offset_in_wim, e.reshdr.size_in_wim);
        assert_eq!(Sha1Hash::of(&data), e.hash);
        if e.reshdr.is_metadata() {
            metadata = Some(data);
        } else {
            blobs.insert(e.hash, data);
        }
    }
    let mut tree = parse_metadata(&metadata.expect("no metadata resource"), 1).unwrap();
    for inode in &mut tree.inodes {
        for s in &mut inode.streams {
            if !s.hash.is_zero() {
                s.size = blobs[&s.hash].len() as u64;
            }
        }
    }
    Wim { tree, blobs }
}

/// Everything an image says about one path, with stream contents as
/// hashes, for comparing images made by different tools.
#[derive(Debug, PartialEq, Eq)]
struct Described {
    attributes: u32,
    security_id: Option<u32>,
    times: (u64, u64, u64),
    reparse: (u32, u16, u16),
    short_name: Vec<u16>,
    streams: Vec<(StreamKind, String, u64, Sha1Hash)>,
    other_names: Vec<String>,
}

fn describe(
    tree: &ImageTree,
    hash_of: &dyn Fn(&Stream) -> Sha1Hash,
) -> BTreeMap<String, Described> {
    let mut names_of: HashMap<usize, Vec<String>> = HashMap::new();
    for d in tree.preorder() {
        names_of
            .entry(tree.dentries[d].inode)
            .or_default()
            .push(tree.path_of(d));
    }
    let mut out = BTreeMap::new();
    for d in tree.preorder() {
        let i = tree.inode_of(d);
        let path = tree.path_of(d);
        let mut other_names: Vec<String> = names_of[&tree.dentries[d].inode]
            .iter()
            .filter(|n| **n != path)
            .cloned()
            .collect();
        other_names.sort();
        let mut streams: Vec<_> = i
            .streams
            .iter()
            .map(|s| {
                (
                    s.kind,
                    s.name_string(),
                    s.size,
                    if s.size == 0 {
                        Sha1Hash::ZERO
                    } else {
                        hash_of(s)
                    },
                )
            })
            .collect();
        streams.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        out.insert(
            path,
            Described {
                attributes: i.attributes,
                security_id: i.security_id,
                times: (i.creation_time, i.last_access_time, i.last_write_time),
                reparse: (i.reparse_tag, i.rp_reserved, i.rp_flags),
                short_name: tree.dentries[d].short_name.clone(),
                streams,
                other_names,
            },
        );
    }
    out
}

/// Moves every atime of the tree into the future: with relatime, reading
/// a file or listing a directory then leaves its atime alone, so the
/// captures by the two tools see the same times.
fn freeze_atimes(root: &Path) {
    let mut all = vec![root.to_path_buf()];
    let mut i = 0;
    while i < all.len() {
        let p = all[i].clone();
        i += 1;
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                all.push(e.unwrap().path());
            }
        }
    }
    // Children first: changing a child's times does not touch its parent.
    for (k, p) in all.iter().enumerate().rev() {
        use std::os::unix::fs::MetadataExt;
        let m = fs::symlink_metadata(p).unwrap();
        set_times(
            p,
            (4_000_000_000 + k as i64, 123_456_700 + k as i64 * 100),
            (m.mtime(), m.mtime_nsec()),
        );
    }
}

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let src = dir.join("src");
        fs::create_dir(&src).unwrap();
        make_fixture(&src, true);
        freeze_atimes(&src);
        Fixture { _tmp: tmp, dir }
    }
    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.join(rel)
    }
    fn s(&self, rel: &str) -> String {
        self.path(rel).to_str().unwrap().to_string()
    }
}

#[test]
fn capture_matches_wimlib() {
    let fx = Fixture::new();
    let mut src = HostDirSource::new(fx.path("src")).unwrap();
    let ours = src.scan(&NoFilter, &mut |_| {}).unwrap();
    wimlib(&[
        "capture",
        &fx.s("src"),
        &fx.s("x.wim"),
        "img",
        "--compress=none",
        "--norpfix",
    ]);
    let theirs = read_uncompressed_wim(&fx.path("x.wim"));

    let ours_desc = describe(&ours, &|s| match &s.source {
        StreamSource::External(id) => {
            let mut v = Vec::new();
            src.open_stream(*id).unwrap().read_to_end(&mut v).unwrap();
            Sha1Hash::of(&v)
        }
        StreamSource::Inline(d) => Sha1Hash::of(d),
        StreamSource::None => panic!("capture left a stream without a source"),
    });
    let theirs_desc = describe(&theirs.tree, &|s| s.hash);
    assert_eq!(ours_desc.len(), 14, "{:?}", ours_desc.keys());
    for (path, d) in &theirs_desc {
        assert_eq!(ours_desc.get(path), Some(d), "{path}");
    }
    assert_eq!(
        ours_desc.keys().collect::<Vec<_>>(),
        theirs_desc.keys().collect::<Vec<_>>()
    );
    // Both skipped the FIFO.
    assert!(theirs.tree.find("fifo").is_none());
}

#[test]
fn apply_matches_wimlib() {
    let fx = Fixture::new();
    wimlib(&[
        "capture",
        &fx.s("src"),
        &fx.s("x.wim"),
        "img",
        "--compress=none",
        "--norpfix",
    ]);
    wimlib(&["apply", &fx.s("x.wim"), "1", &fx.s("by_wimlib")]);
    let wim = read_uncompressed_wim(&fx.path("x.wim"));
    let mut target = HostDirTarget::new(fx.path("by_tasq")).unwrap();
    drive_apply(&wim.tree, &mut target, &|s| wim.blobs[&s.hash].clone());
    assert!(target.warnings().is_empty(), "{:?}", target.warnings());

    let a = read_tree(&fx.path("by_wimlib"));
    let b = read_tree(&fx.path("by_tasq"));
    assert_eq!(a.len(), 13, "{:?}", a.keys());
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, sa) in &a {
        let sb = &b[path];
        assert_eq!(sa.node, sb.node, "{path}");
        assert_eq!(sa.mtime, sb.mtime, "{path} mtime");
        assert_eq!(sa.atime, sb.atime, "{path} atime");
        assert_eq!(sa.link_group, sb.link_group, "{path} links");
    }
    // Both keep the sparse file sparse.
    assert!(
        a["sparse.bin"].allocated <= 64 * 1024,
        "wimlib: {}",
        a["sparse.bin"].allocated
    );
    assert!(
        b["sparse.bin"].allocated <= 64 * 1024,
        "tasq: {}",
        b["sparse.bin"].allocated
    );
    // And the directory times, which read_tree leaves out of atime.
    for d in ["", "dir1", "dir1/dir2", "emptydir"] {
        use std::os::unix::fs::MetadataExt;
        let ma = fs::metadata(fx.path("by_wimlib").join(d)).unwrap();
        let mb = fs::metadata(fx.path("by_tasq").join(d)).unwrap();
        assert_eq!(
            (ma.mtime(), ma.mtime_nsec()),
            (mb.mtime(), mb.mtime_nsec()),
            "{d:?}"
        );
    }
}

#[test]
fn capture_then_apply_reproduces_the_tree() {
    // Our capture fed straight to our apply (no WIM in between) gives what
    // wimlib's capture + apply gives.
    let fx = Fixture::new();
    let mut src = HostDirSource::new(fx.path("src")).unwrap();
    let tree = src.scan(&NoFilter, &mut |_| {}).unwrap();
    wimlib(&[
        "capture",
        &fx.s("src"),
        &fx.s("x.wim"),
        "img",
        "--compress=none",
        "--norpfix",
    ]);
    wimlib(&["apply", &fx.s("x.wim"), "1", &fx.s("by_wimlib")]);
    let mut target = HostDirTarget::new(fx.path("by_tasq")).unwrap();
    drive_apply(&tree, &mut target, &|s| match &s.source {
        StreamSource::External(id) => {
            let mut v = Vec::new();
            src.open_stream(*id).unwrap().read_to_end(&mut v).unwrap();
            v
        }
        StreamSource::Inline(d) => d.as_ref().clone(),
        StreamSource::None => Vec::new(),
    });
    let a = read_tree(&fx.path("by_wimlib"));
    let b = read_tree(&fx.path("by_tasq"));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, sa) in &a {
        let sb = &b[path];
        assert_eq!(
            (&sa.node, sa.mtime, sa.atime, &sa.link_group),
            (&sb.node, sb.mtime, sb.atime, &sb.link_group),
            "{path}"
        );
    }
    // Times survive to the 100 ns: the fixture's pre-1970 file.
    let u = &b[UNICODE_NAME];
    assert_eq!(u.mtime, (OLD_MTIME.0, OLD_MTIME.1 / 100 * 100));
}
