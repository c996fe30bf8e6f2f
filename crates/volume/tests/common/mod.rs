//! Helpers shared by the host-directory integration tests: a fixture tree
//! on disk, a driver that feeds an `ImageTree` to an `ApplyTarget` in the
//! documented call order, and readers for what ended up on disk.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;

use rustix::fs::{AtFlags, Timespec, Timestamps, CWD};
use tasq_wim::apply::{ApplyEntry, ApplyTarget, WimPath};
use tasq_wim::image::{ImageTree, Stream, StreamKind};

/// Sets a path's times without following a symlink.
pub fn set_times(p: &Path, atime: (i64, i64), mtime: (i64, i64)) {
    let t = Timestamps {
        last_access: Timespec {
            tv_sec: atime.0,
            tv_nsec: atime.1,
        },
        last_modification: Timespec {
            tv_sec: mtime.0,
            tv_nsec: mtime.1,
        },
    };
    rustix::fs::utimensat(CWD, p, &t, AtFlags::SYMLINK_NOFOLLOW).unwrap();
}

/// 100 KiB of varied bytes.
pub fn pattern(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

pub const UNICODE_NAME: &str = "Ünïcödé 日本語 🎉.txt";
/// 1950-06-01 00:00:00.123456789 UTC, before the UNIX epoch.
pub const OLD_MTIME: (i64, i64) = (-618_105_600, 123_456_789);
/// 1965-01-01 00:00:00.5 UTC.
pub const OLD_ATIME: (i64, i64) = (-157_766_400, 500_000_000);

/// Builds the capture fixture in `dir`:
///
/// ```text
/// a.txt            "hello\n"
/// empty            0 bytes
/// dir1/dir2/deep.bin   100 KiB
/// dir1/hl2  ==  hl1    hard links, 3000 bytes
/// emptydir/
/// rel_link -> a.txt
/// abs_link -> /nonexistent/abs/target   (dangling)
/// dir_link -> dir1                      (a directory)
/// sparse.bin       1 MiB with "data" at 512 KiB, holes elsewhere
/// fifo             a FIFO (skipped)
/// Ünïcödé 日本語 🎉.txt   with times before 1970
/// ```
pub fn make_fixture(dir: &Path, with_fifo: bool) {
    fs::write(dir.join("a.txt"), b"hello\n").unwrap();
    fs::write(dir.join("empty"), b"").unwrap();
    fs::create_dir_all(dir.join("dir1/dir2")).unwrap();
    fs::write(dir.join("dir1/dir2/deep.bin"), pattern(100 * 1024, 7)).unwrap();
    fs::write(dir.join("hl1"), pattern(3000, 9)).unwrap();
    fs::hard_link(dir.join("hl1"), dir.join("dir1/hl2")).unwrap();
    fs::create_dir(dir.join("emptydir")).unwrap();
    symlink("a.txt", dir.join("rel_link")).unwrap();
    symlink("/nonexistent/abs/target", dir.join("abs_link")).unwrap();
    symlink("dir1", dir.join("dir_link")).unwrap();
    {
        let f = fs::File::create(dir.join("sparse.bin")).unwrap();
        f.set_len(1 << 20).unwrap();
        use std::os::unix::fs::FileExt;
        f.write_all_at(b"data", 512 * 1024).unwrap();
    }
    if with_fifo {
        rustix::fs::mknodat(
            CWD,
            dir.join("fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
    }
    let mut f = fs::File::create(dir.join(UNICODE_NAME)).unwrap();
    f.write_all("grüße".as_bytes()).unwrap();
    drop(f);
    set_times(&dir.join(UNICODE_NAME), OLD_ATIME, OLD_MTIME);
    // Fixed, distinct times everywhere else, directories last (creating
    // entries changes a directory's mtime).
    let mut n = 0i64;
    for rel in [
        "a.txt",
        "empty",
        "dir1/dir2/deep.bin",
        "hl1",
        "rel_link",
        "abs_link",
        "dir_link",
        "sparse.bin",
        "dir1/dir2",
        "dir1",
        "emptydir",
    ] {
        n += 1;
        set_times(
            &dir.join(rel),
            (1_600_000_000 + n, 100 * n + 1),
            (1_500_000_000 + n * 1000, 987_654_321 - n),
        );
    }
}

/// Feeds `tree` to `target` in the order `tasq_wim::apply` documents.
/// `content` gives the bytes of a stream.
pub fn drive_apply(
    tree: &ImageTree,
    target: &mut dyn ApplyTarget,
    content: &dyn Fn(&Stream) -> Vec<u8>,
) {
    try_drive_apply(tree, target, content).unwrap();
}

pub fn wim_path(tree: &ImageTree, mut d: usize) -> WimPath {
    let mut comps = Vec::new();
    while d != ImageTree::ROOT {
        comps.push(tree.dentries[d].name_string());
        d = tree.dentries[d].parent;
    }
    comps.reverse();
    WimPath::from_components(comps).unwrap()
}

pub fn try_drive_apply(
    tree: &ImageTree,
    target: &mut dyn ApplyTarget,
    content: &dyn Fn(&Stream) -> Vec<u8>,
) -> tasq_wim::Result<()> {
    let order = tree.preorder();
    let paths: HashMap<usize, WimPath> = order.iter().map(|&d| (d, wim_path(tree, d))).collect();
    let entry = |d: usize| {
        let inode = tree.inode_of(d);
        ApplyEntry {
            id: d,
            path: &paths[&d],
            inode,
            short_name: &tree.dentries[d].short_name,
            security_descriptor: inode
                .security_id
                .map(|i| tree.security[i as usize].as_slice()),
        }
    };
    // 1. directories, parents first.
    for &d in &order {
        if tree.inode_of(d).is_directory() {
            target.create_directory(&entry(d))?;
        }
    }
    // 2. first names, then the other names.
    let mut first: BTreeMap<usize, usize> = BTreeMap::new();
    for &d in &order {
        let ino = tree.dentries[d].inode;
        if tree.inodes[ino].is_directory() {
            first.entry(ino).or_insert(d);
            continue;
        }
        match first.get(&ino) {
            None => {
                first.insert(ino, d);
                target.create_file(&entry(d))?;
            }
            Some(&f) => target.create_hard_link(&entry(f), &entry(d))?,
        }
    }
    // 3. data streams.
    for (&ino, &d) in &first {
        for s in &tree.inodes[ino].streams {
            if s.kind == StreamKind::ReparsePoint || (s.size == 0 && s.name.is_empty()) {
                continue;
            }
            let bytes = content(s);
            target.begin_stream(&entry(d), s)?;
            // Odd chunk sizes, as a decompressor would not hand them.
            for c in bytes.chunks(7777) {
                target.write_stream(c)?;
            }
            target.end_stream()?;
        }
    }
    // 4. reparse points.
    for (&ino, &d) in &first {
        let inode = &tree.inodes[ino];
        if inode.is_reparse_point() {
            let data = inode.reparse_stream().map(content).unwrap_or_default();
            target.set_reparse_point(&entry(d), &data)?;
        }
    }
    // 5. metadata, children before parents.
    for &d in order.iter().rev() {
        target.set_metadata(&entry(d))?;
    }
    target.finish()
}

/// What one path holds on disk, for comparing two trees.
#[derive(Debug, PartialEq, Eq)]
pub enum Node {
    Dir,
    File(Vec<u8>),
    Link(String),
}

#[derive(Debug, PartialEq, Eq)]
pub struct Seen {
    pub node: Node,
    pub mtime: (i64, i64),
    pub atime: (i64, i64),
    /// All names of the file, when it has several.
    pub link_group: Option<Vec<String>>,
    pub allocated: u64,
}

/// Everything under `root` (not following links), keyed by relative path.
/// Directory atimes are left out: reading the tree changes them. All
/// metadata is read before any content, since reads may move atimes.
pub fn read_tree(root: &Path) -> BTreeMap<String, Seen> {
    let mut stack = vec![root.to_path_buf()];
    let mut entries = Vec::new();
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p.clone());
            }
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            entries.push((rel, p, m));
        }
    }
    let mut names_of: HashMap<u64, Vec<String>> = HashMap::new();
    for (rel, _, m) in &entries {
        names_of.entry(m.ino()).or_default().push(rel.clone());
    }
    let mut out = BTreeMap::new();
    for (rel, p, m) in entries {
        let node = if m.file_type().is_symlink() {
            Node::Link(fs::read_link(&p).unwrap().to_string_lossy().into_owned())
        } else if m.is_dir() {
            Node::Dir
        } else {
            Node::File(fs::read(&p).unwrap())
        };
        let link_group = (!m.is_dir() && m.nlink() > 1).then(|| {
            let mut names = names_of[&m.ino()].clone();
            names.sort();
            names
        });
        let is_dir = m.is_dir();
        out.insert(
            rel,
            Seen {
                node,
                mtime: (m.mtime(), m.mtime_nsec()),
                atime: if is_dir {
                    (0, 0)
                } else {
                    (m.atime(), m.atime_nsec())
                },
                link_group,
                allocated: m.blocks() * 512,
            },
        );
    }
    out
}

/// Builds image trees by hand for the apply tests.
pub mod build {
    use std::sync::Arc;

    use tasq_wim::image::*;
    use tasq_wim::Sha1Hash;

    pub fn stream(kind: StreamKind, name: &str, bytes: &[u8]) -> Stream {
        Stream {
            kind,
            name: utf16(name),
            hash: Sha1Hash::of(bytes),
            size: bytes.len() as u64,
            source: StreamSource::Inline(Arc::new(bytes.to_vec())),
        }
    }

    /// Inline content of a hand-built stream.
    pub fn content(s: &Stream) -> Vec<u8> {
        match &s.source {
            StreamSource::Inline(d) => d.as_ref().clone(),
            _ => Vec::new(),
        }
    }

    /// FILETIME from UNIX seconds and 100 ns ticks.
    pub const fn ft(secs: i64, ticks: u64) -> u64 {
        ((secs + 11_644_473_600) as u64) * 10_000_000 + ticks
    }

    pub fn times(mut i: Inode, write: u64, access: u64) -> Inode {
        i.creation_time = write.saturating_sub(10_000_000);
        i.last_write_time = write;
        i.last_access_time = access;
        i
    }

    pub fn dir() -> Inode {
        Inode {
            attributes: FILE_ATTRIBUTE_DIRECTORY,
            ..Inode::default()
        }
    }

    pub fn file(attributes: u32, data: &[u8]) -> Inode {
        let mut i = Inode {
            attributes,
            ..Inode::default()
        };
        if !data.is_empty() {
            i.streams.push(stream(StreamKind::Data, "", data));
        }
        i
    }

    pub fn symlink(target: &str, is_dir: bool) -> Inode {
        let data = tasq_wim::reparse::symlink_reparse_from_unix(target).unwrap();
        reparse(IO_REPARSE_TAG_SYMLINK, &data, is_dir)
    }

    pub fn reparse(tag: u32, data: &[u8], is_dir: bool) -> Inode {
        Inode {
            attributes: FILE_ATTRIBUTE_REPARSE_POINT
                | if is_dir { FILE_ATTRIBUTE_DIRECTORY } else { 0 },
            reparse_tag: tag,
            streams: vec![stream(StreamKind::ReparsePoint, "", data)],
            ..Inode::default()
        }
    }

    /// Junction reparse data (without the 8-byte header) for an NT path.
    pub fn junction_data(nt_target: &str, print: &str) -> Vec<u8> {
        let s: Vec<u8> = nt_target
            .encode_utf16()
            .flat_map(|c| c.to_le_bytes())
            .collect();
        let p: Vec<u8> = print.encode_utf16().flat_map(|c| c.to_le_bytes()).collect();
        let mut out = Vec::new();
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&(s.len() as u16).to_le_bytes());
        out.extend_from_slice(&(s.len() as u16 + 2).to_le_bytes());
        out.extend_from_slice(&(p.len() as u16).to_le_bytes());
        out.extend_from_slice(&s);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&p);
        out.extend_from_slice(&[0, 0]);
        out
    }

    /// Adds `inode` under the dentry at `parent_path` as `name`; returns the inode index.
    pub fn add(tree: &mut ImageTree, parent_path: &str, name: &str, inode: Inode) -> usize {
        let parent = tree.find(parent_path).unwrap();
        let i = tree.add_inode(inode);
        tree.add_dentry(parent, utf16(name), Vec::new(), i);
        i
    }

    /// Adds another name for inode `i`.
    pub fn link(tree: &mut ImageTree, parent_path: &str, name: &str, i: usize) {
        let parent = tree.find(parent_path).unwrap();
        tree.add_dentry(parent, utf16(name), Vec::new(), i);
    }
}
