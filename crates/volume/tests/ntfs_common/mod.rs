//! Helpers of the NTFS tests: a hand-made image with every NTFS feature
//! (written by tasq-wim), NTFS volumes made by `mkntfs`, the wimlib-imagex
//! peer, and a description of an image for comparing images made by
//! different tools.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use tasq_wim::capture::{CaptureFilter, CaptureSource, NoFilter, ScanProgress};
use tasq_wim::image::*;
use tasq_wim::reader::Wim;
use tasq_wim::writer::{ImageOptions, WimWriter, WriteOptions};
use tasq_wim::{CompressionFormat, Result, Sha1Hash};

pub fn run(cmd: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} must be installed: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs wimlib-imagex; any warning it prints fails the test (a warning
/// means it met something it could not represent).
pub fn wimlib(args: &[&str]) {
    let out = run("wimlib-imagex", args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("WARNING") && !err.contains("ERROR"),
        "wimlib-imagex {args:?}:\n{err}"
    );
}

/// A fresh NTFS volume of `mib` MiB in a file.
pub fn mkntfs(path: &Path, mib: u64) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(mib << 20).unwrap();
    drop(f);
    run(
        "mkntfs",
        &["-F", "-f", "-q", "-L", "tasqtest", path.to_str().unwrap()],
    );
}

// ---- security descriptors ----

pub fn sid(authority: u64, subs: &[u32]) -> Vec<u8> {
    let mut v = vec![1, subs.len() as u8];
    v.extend_from_slice(&authority.to_be_bytes()[2..]);
    for s in subs {
        v.extend_from_slice(&s.to_le_bytes());
    }
    v
}

pub fn everyone() -> Vec<u8> {
    sid(1, &[0])
}
pub fn system() -> Vec<u8> {
    sid(5, &[18])
}
pub fn administrators() -> Vec<u8> {
    sid(5, &[32, 544])
}
pub fn users() -> Vec<u8> {
    sid(5, &[32, 545])
}
pub fn some_user() -> Vec<u8> {
    sid(5, &[21, 1_111_111_111, 2_222_222_222, 3_333_333_333, 1001])
}

/// An ACE: type 0 allow, 1 deny, 2 audit.
pub fn ace(ty: u8, flags: u8, mask: u32, sid: &[u8]) -> Vec<u8> {
    let size = 8 + sid.len();
    let mut v = vec![ty, flags];
    v.extend_from_slice(&(size as u16).to_le_bytes());
    v.extend_from_slice(&mask.to_le_bytes());
    v.extend_from_slice(sid);
    v
}

pub fn acl(aces: &[Vec<u8>]) -> Vec<u8> {
    let size = 8 + aces.iter().map(|a| a.len()).sum::<usize>();
    let mut v = vec![2, 0];
    v.extend_from_slice(&(size as u16).to_le_bytes());
    v.extend_from_slice(&(aces.len() as u16).to_le_bytes());
    v.extend_from_slice(&[0, 0]);
    for a in aces {
        v.extend_from_slice(a);
    }
    v
}

/// A self-relative descriptor laid out as Windows does: header, SACL,
/// DACL, owner, group.
pub fn sd(
    owner: &[u8],
    group: &[u8],
    dacl: Option<&[u8]>,
    sacl: Option<&[u8]>,
    control: u16,
) -> Vec<u8> {
    let mut control = control | 0x8000; // SE_SELF_RELATIVE
    let mut body = Vec::new();
    let mut off = 20u32;
    let mut sacl_off = 0;
    let mut dacl_off = 0;
    if let Some(s) = sacl {
        control |= 0x0010; // SE_SACL_PRESENT
        sacl_off = off;
        body.extend_from_slice(s);
        off += s.len() as u32;
    }
    if let Some(d) = dacl {
        control |= 0x0004; // SE_DACL_PRESENT
        dacl_off = off;
        body.extend_from_slice(d);
        off += d.len() as u32;
    }
    let owner_off = off;
    body.extend_from_slice(owner);
    off += owner.len() as u32;
    let group_off = off;
    body.extend_from_slice(group);
    let mut v = vec![1, 0];
    v.extend_from_slice(&control.to_le_bytes());
    for o in [owner_off, group_off, sacl_off, dacl_off] {
        v.extend_from_slice(&o.to_le_bytes());
    }
    v.extend_from_slice(&body);
    v
}

// ---- a capture source built from an ImageTree ----

/// Serves a hand-built tree to WimWriter: streams are External(i) into `data`.
pub struct TreeSource {
    pub tree: ImageTree,
    pub data: Vec<Arc<Vec<u8>>>,
}

impl CaptureSource for TreeSource {
    fn describe(&self) -> String {
        "hand-built tree".into()
    }
    fn scan(
        &mut self,
        _filter: &dyn CaptureFilter,
        _progress: &mut dyn FnMut(ScanProgress),
    ) -> Result<ImageTree> {
        Ok(self.tree.clone())
    }
    fn open_stream(&self, id: u64) -> Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(Cursor::new(
            self.data[id as usize].as_ref().clone(),
        )))
    }
}

pub struct Builder {
    pub src: TreeSource,
    sds: tasq_wim::security::SecurityDescriptorSet,
    time: u64,
}

impl Builder {
    pub fn new(root_sd: &[u8]) -> Builder {
        let mut b = Builder {
            src: TreeSource {
                tree: ImageTree::new(),
                data: Vec::new(),
            },
            sds: tasq_wim::security::SecurityDescriptorSet::new(),
            time: 132_000_000_000_000_000,
        };
        let sid = b.sds.add(root_sd);
        let t = b.next_times();
        let root = b.src.tree.root_inode_mut();
        root.attributes = FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_HIDDEN | FILE_ATTRIBUTE_SYSTEM;
        root.security_id = Some(sid);
        (
            root.creation_time,
            root.last_write_time,
            root.last_access_time,
        ) = t;
        b
    }

    /// Distinct times with odd 100 ns digits, creation < write < access.
    fn next_times(&mut self) -> (u64, u64, u64) {
        self.time += 10_000_000 * 3600 + 1_234_567;
        (self.time, self.time + 54_321, self.time + 987_654_321)
    }

    pub fn data_stream(&mut self, name: &str, data: &[u8]) -> Stream {
        let source = if data.is_empty() {
            StreamSource::None
        } else {
            self.src.data.push(Arc::new(data.to_vec()));
            StreamSource::External(self.src.data.len() as u64 - 1)
        };
        Stream {
            kind: StreamKind::Data,
            name: utf16(name),
            hash: Sha1Hash::ZERO,
            size: data.len() as u64,
            source,
        }
    }

    /// Adds an inode; returns its index.
    pub fn inode(&mut self, attributes: u32, sd: &[u8], streams: Vec<Stream>) -> usize {
        let sid = self.sds.add(sd);
        let t = self.next_times();
        self.src.tree.add_inode(Inode {
            attributes,
            security_id: Some(sid),
            creation_time: t.0,
            last_write_time: t.1,
            last_access_time: t.2,
            streams,
            ..Inode::default()
        })
    }

    /// Adds a name for `inode` at `path` (parent must exist); returns the dentry.
    pub fn name(&mut self, path: &str, short: &str, inode: usize) -> usize {
        let t = &self.src.tree;
        let (parent, name) = path.rsplit_once('\\').unwrap();
        let p = if parent.is_empty() {
            ImageTree::ROOT
        } else {
            t.find(parent).unwrap()
        };
        self.src
            .tree
            .add_dentry(p, utf16(name), utf16(short), inode)
    }

    pub fn dir(&mut self, path: &str, short: &str, attributes: u32, sd: &[u8]) -> usize {
        let i = self.inode(FILE_ATTRIBUTE_DIRECTORY | attributes, sd, vec![]);
        self.name(path, short, i)
    }

    pub fn file(
        &mut self,
        path: &str,
        short: &str,
        attributes: u32,
        sd: &[u8],
        data: &[u8],
    ) -> usize {
        let s = self.data_stream("", data);
        let i = self.inode(
            attributes,
            sd,
            if data.is_empty() { vec![] } else { vec![s] },
        );
        self.name(path, short, i);
        i
    }

    pub fn write(mut self, wim: &Path) {
        self.src.tree.security = self.sds.descriptors.clone();
        let mut w = WimWriter::create(
            wim,
            WriteOptions {
                compression: CompressionFormat::None,
                ..WriteOptions::default()
            },
        )
        .unwrap();
        w.add_image(
            &mut self.src,
            &NoFilter,
            &ImageOptions {
                name: Some("fixture".into()),
                ..ImageOptions::default()
            },
            &mut |_| {},
        )
        .unwrap();
        w.finish().unwrap();
    }
}

/// Bytes that do not compress to nothing and differ per seed.
pub fn pseudo_random(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(12345);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Reparse data (no header) of a junction to `target` (an NT path).
pub fn junction_data(target: &str, print: &str) -> Vec<u8> {
    let s: Vec<u8> = target
        .encode_utf16()
        .flat_map(|c| c.to_le_bytes())
        .collect();
    let p: Vec<u8> = print.encode_utf16().flat_map(|c| c.to_le_bytes()).collect();
    let mut v = Vec::new();
    v.extend_from_slice(&0u16.to_le_bytes());
    v.extend_from_slice(&(s.len() as u16).to_le_bytes());
    v.extend_from_slice(&((s.len() + 2) as u16).to_le_bytes());
    v.extend_from_slice(&(p.len() as u16).to_le_bytes());
    v.extend_from_slice(&s);
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&p);
    v.extend_from_slice(&[0, 0]);
    v
}

pub const SYSVOL: &str = "\\System Volume Information";

/// The fixture: a tree using every feature the NTFS backend claims.
pub fn build_fixture(wim: &Path) {
    let admins_full = ace(0, 0x03, 0x001F_01FF, &administrators());
    let system_full = ace(0, 0x03, 0x001F_01FF, &system());
    let users_read = ace(0, 0x03, 0x0012_00A9, &users());
    let root_sd = sd(
        &administrators(),
        &system(),
        Some(&acl(&[
            admins_full.clone(),
            system_full.clone(),
            users_read.clone(),
        ])),
        None,
        0x1000, // SE_DACL_PROTECTED
    );
    let user_sd = sd(
        &some_user(),
        &users(),
        Some(&acl(&[
            ace(1, 0, 0x0001_0000, &everyone()), // deny DELETE to Everyone
            ace(0, 0, 0x001F_01FF, &some_user()),
            admins_full.clone(),
        ])),
        None,
        0,
    );
    let audited_sd = sd(
        &administrators(),
        &administrators(),
        Some(&acl(&[admins_full.clone(), users_read.clone()])),
        Some(&acl(&[ace(2, 0x80, 0x0001_0000, &everyone())])), // audit failed DELETE
        0,
    );
    let inherited_sd = sd(
        &system(),
        &system(),
        Some(&acl(&[
            ace(0, 0x10, 0x001F_01FF, &system()), // inherited
            ace(0, 0x10, 0x0012_00A9, &users()),
        ])),
        None,
        0x0400, // SE_DACL_AUTO_INHERITED
    );
    let mut b = Builder::new(&root_sd);

    b.dir(
        "\\Documents and Settings",
        "DOCUME~1",
        FILE_ATTRIBUTE_HIDDEN,
        &user_sd,
    );
    b.dir("\\Docs", "", 0, &inherited_sd);
    b.dir("\\Other", "", FILE_ATTRIBUTE_READONLY, &audited_sd);
    b.dir("\\Docs\\Deep", "", 0, &inherited_sd);

    // A long name with a short name and two named streams (one empty).
    let main = b.data_stream("", b"The annual report.\r\n");
    let zone = b.data_stream("Zone.Identifier", b"[ZoneTransfer]\r\nZoneId=3\r\n");
    let empty = b.data_stream("empty stream", b"");
    let i = b.inode(
        FILE_ATTRIBUTE_ARCHIVE,
        &inherited_sd,
        vec![main, zone, empty],
    );
    b.name("\\Docs\\Report for 2024.txt", "REPORT~1.TXT", i);

    // A directory with a named stream.
    let ds = b.data_stream("dirstream", b"data on a directory");
    let i = b.inode(FILE_ATTRIBUTE_DIRECTORY, &inherited_sd, vec![ds]);
    b.name("\\Docs\\With stream", "WITHST~1", i);

    // Hard links: three names, one with a short name, in two directories.
    let big = pseudo_random(300_000, 1);
    let s = b.data_stream("", &big);
    let i = b.inode(FILE_ATTRIBUTE_ARCHIVE, &user_sd, vec![s]);
    b.name("\\Docs\\Hard link one.dat", "HARDLI~1.DAT", i);
    b.name("\\Other\\second name.dat", "", i);
    b.name("\\Docs\\Deep\\third.dat", "", i);
    // Two names, the short name on the one that comes second in the tree:
    // it must still be the one created first (a short name is only given
    // to a file with one name).
    let s = b.data_stream("", b"two names, the second short");
    let i = b.inode(FILE_ATTRIBUTE_ARCHIVE, &user_sd, vec![s]);
    b.name("\\Other\\a first name.dat", "", i);
    b.name("\\Other\\z later name.dat", "ZLATER~1.DAT", i);

    // Same content in an unrelated file (deduplicated in the WIM only).
    b.file(
        "\\Other\\copy of big.dat",
        "COPYOF~1.DAT",
        FILE_ATTRIBUTE_ARCHIVE,
        &user_sd,
        &big,
    );

    // Sparse: data at the start and in the middle, holes elsewhere.
    let mut sparse = vec![0u8; 1 << 20];
    sparse[..5000].copy_from_slice(&pseudo_random(5000, 2));
    sparse[600_000..610_000].copy_from_slice(&pseudo_random(10_000, 3));
    b.file(
        "\\sparse.bin",
        "",
        FILE_ATTRIBUTE_SPARSE_FILE | FILE_ATTRIBUTE_ARCHIVE,
        &root_sd,
        &sparse,
    );

    // Compressed directory: files created in it are compressed by NTFS.
    b.dir("\\Packed", "", FILE_ATTRIBUTE_COMPRESSED, &inherited_sd);
    let text: Vec<u8> = b"compressible text, line after line. "
        .iter()
        .cycle()
        .take(200_000)
        .copied()
        .collect();
    b.file(
        "\\Packed\\text.txt",
        "",
        FILE_ATTRIBUTE_COMPRESSED | FILE_ATTRIBUTE_ARCHIVE,
        &inherited_sd,
        &text,
    );
    // The same content again (one blob, two compressed files written at
    // once), and in a file whose named stream holds it too (two streams
    // of one record in one blob: the second is held and written after).
    b.file(
        "\\Packed\\text copy.txt",
        "",
        FILE_ATTRIBUTE_COMPRESSED | FILE_ATTRIBUTE_ARCHIVE,
        &inherited_sd,
        &text,
    );
    let main = b.data_stream("", &text);
    let same = b.data_stream("same again", &text);
    let i = b.inode(FILE_ATTRIBUTE_ARCHIVE, &inherited_sd, vec![main, same]);
    b.name("\\Other\\two equal streams.txt", "", i);

    // Attributes and an empty file.
    b.file(
        "\\empty.txt",
        "",
        FILE_ATTRIBUTE_READONLY
            | FILE_ATTRIBUTE_HIDDEN
            | FILE_ATTRIBUTE_SYSTEM
            | FILE_ATTRIBUTE_ARCHIVE,
        &root_sd,
        b"",
    );
    b.file(
        "\\Ünïcödé ñame €.txt",
        "NCD~1.TXT",
        FILE_ATTRIBUTE_NOT_CONTENT_INDEXED,
        &user_sd,
        b"unicode",
    );
    b.file(
        "\\Other\\small.txt",
        "",
        FILE_ATTRIBUTE_ARCHIVE | FILE_ATTRIBUTE_TEMPORARY,
        &audited_sd,
        b"x",
    );

    // Object id, with birth volume, birth object and domain ids (the
    // 64-byte form the volume's $ObjId index gives back).
    let i = b.file(
        "\\Docs\\tracked.txt",
        "",
        FILE_ATTRIBUTE_ARCHIVE,
        &inherited_sd,
        b"tracked",
    );
    let oid: Vec<u8> = (0x10..0x50).collect();
    b.src.tree.inodes[i].extra = tasq_volume::ntfs::capture::object_id_item(&oid);

    // Symlink to a file (relative), symlink to a directory (absolute)
    // and a junction.
    let data = tasq_wim::reparse::symlink_reparse_from_unix("Docs/tracked.txt").unwrap();
    let rs = Stream {
        kind: StreamKind::ReparsePoint,
        name: vec![],
        hash: Sha1Hash::ZERO,
        size: data.len() as u64,
        source: StreamSource::Inline(Arc::new(data)),
    };
    let i = b.inode(
        FILE_ATTRIBUTE_REPARSE_POINT | FILE_ATTRIBUTE_ARCHIVE,
        &root_sd,
        vec![rs],
    );
    b.src.tree.inodes[i].reparse_tag = IO_REPARSE_TAG_SYMLINK;
    b.src.tree.inodes[i].rp_flags = WIM_RP_FLAG_NOT_FIXED;
    b.name("\\link to tracked", "LINKTO~1", i);

    let data = tasq_wim::reparse::symlink_reparse_from_unix("/Docs/Deep").unwrap();
    let rs = Stream {
        kind: StreamKind::ReparsePoint,
        name: vec![],
        hash: Sha1Hash::ZERO,
        size: data.len() as u64,
        source: StreamSource::Inline(Arc::new(data)),
    };
    let i = b.inode(
        FILE_ATTRIBUTE_REPARSE_POINT | FILE_ATTRIBUTE_DIRECTORY,
        &root_sd,
        vec![rs],
    );
    b.src.tree.inodes[i].reparse_tag = IO_REPARSE_TAG_SYMLINK;
    b.src.tree.inodes[i].rp_flags = WIM_RP_FLAG_NOT_FIXED;
    b.name("\\dirlink", "", i);

    let data = junction_data("\\??\\C:\\Docs", "C:\\Docs");
    let rs = Stream {
        kind: StreamKind::ReparsePoint,
        name: vec![],
        hash: Sha1Hash::ZERO,
        size: data.len() as u64,
        source: StreamSource::Inline(Arc::new(data)),
    };
    let i = b.inode(
        FILE_ATTRIBUTE_REPARSE_POINT
            | FILE_ATTRIBUTE_DIRECTORY
            | FILE_ATTRIBUTE_HIDDEN
            | FILE_ATTRIBUTE_SYSTEM,
        &inherited_sd,
        vec![rs],
    );
    b.src.tree.inodes[i].reparse_tag = IO_REPARSE_TAG_MOUNT_POINT;
    b.src.tree.inodes[i].rp_flags = WIM_RP_FLAG_NOT_FIXED;
    b.name("\\Application Data", "APPLIC~1", i);

    // Excluded by the default capture configuration.
    b.dir(
        SYSVOL,
        "SYSTEM~1",
        FILE_ATTRIBUTE_HIDDEN | FILE_ATTRIBUTE_SYSTEM,
        &root_sd,
    );
    b.file(
        &format!("{SYSVOL}\\tracking.log"),
        "TRACKI~1.LOG",
        FILE_ATTRIBUTE_ARCHIVE,
        &root_sd,
        b"should not be captured",
    );

    b.write(wim);
}

// ---- describing images ----

#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Described {
    pub attributes: u32,
    pub sd: Option<Vec<u8>>,
    pub times: (u64, u64, u64),
    pub short_name: String,
    /// (tag, reserved, flags)
    pub reparse: (u32, u16, u16),
    /// Stream name → (kind, content hash, size).
    pub streams: BTreeMap<String, (String, Sha1Hash, u64)>,
    /// Every path of this inode (hard links), sorted.
    pub links: Vec<String>,
    pub extra: Vec<u8>,
}

/// Every path of image 1, described.
pub fn describe(wim: &Path) -> BTreeMap<String, Described> {
    let w = Wim::open(wim).unwrap();
    let tree = w.read_image(1).unwrap();
    let mut paths_of: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for d in tree.preorder() {
        paths_of
            .entry(tree.dentries[d].inode)
            .or_default()
            .push(tree.path_of(d));
    }
    let mut out = BTreeMap::new();
    for d in tree.preorder() {
        let de = &tree.dentries[d];
        let ino = &tree.inodes[de.inode];
        let mut streams = BTreeMap::new();
        for s in &ino.streams {
            // An empty unnamed data stream is the same as none.
            if s.is_unnamed_data() && s.hash.is_zero() {
                continue;
            }
            let size = if s.hash.is_zero() {
                0
            } else {
                w.blob(&s.hash).unwrap().reshdr.uncompressed_size
            };
            streams.insert(s.name_string(), (format!("{:?}", s.kind), s.hash, size));
        }
        let mut links = paths_of[&de.inode].clone();
        links.sort();
        out.insert(
            tree.path_of(d),
            Described {
                attributes: ino.attributes,
                sd: ino.security_id.map(|i| tree.security[i as usize].clone()),
                times: (ino.creation_time, ino.last_write_time, ino.last_access_time),
                short_name: String::from_utf16_lossy(&de.short_name),
                reparse: if ino.is_reparse_point() {
                    (ino.reparse_tag, ino.rp_reserved, ino.rp_flags)
                } else {
                    (0, 0, 0)
                },
                streams,
                links,
                extra: ino.extra.clone(),
            },
        );
    }
    out
}

/// Drops `prefix` and everything under it.
pub fn without(mut d: BTreeMap<String, Described>, prefix: &str) -> BTreeMap<String, Described> {
    d.retain(|k, _| k != prefix && !k.starts_with(&format!("{prefix}\\")));
    for v in d.values_mut() {
        v.links
            .retain(|k| k != prefix && !k.starts_with(&format!("{prefix}\\")));
    }
    d
}

/// Asserts two descriptions are equal, listing every difference.
pub fn assert_same(a: &BTreeMap<String, Described>, b: &BTreeMap<String, Described>, what: &str) {
    let mut diffs = Vec::new();
    for (k, va) in a {
        match b.get(k) {
            None => diffs.push(format!("{k}: only in the first")),
            Some(vb) if va != vb => diffs.push(format!("{k}:\n   {va:?}\n   {vb:?}")),
            _ => {}
        }
    }
    for k in b.keys() {
        if !a.contains_key(k) {
            diffs.push(format!("{k}: only in the second"));
        }
    }
    assert!(
        diffs.is_empty(),
        "{what}: {} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

/// The features the fixture exercises are really in a description, so a
/// comparison of two descriptions that both lost them cannot pass.
pub fn assert_has_fixture_features(d: &BTreeMap<String, Described>) {
    let r = &d["\\Docs\\Report for 2024.txt"];
    assert_eq!(r.short_name, "REPORT~1.TXT");
    assert!(r.streams.contains_key("Zone.Identifier"));
    assert_eq!(r.streams["empty stream"].2, 0);
    assert_eq!(d["\\Docs\\Hard link one.dat"].links.len(), 3);
    assert_eq!(d["\\Docs\\Hard link one.dat"].short_name, "HARDLI~1.DAT");
    assert_eq!(d["\\Other\\z later name.dat"].short_name, "ZLATER~1.DAT");
    assert_eq!(d["\\Other\\a first name.dat"].links.len(), 2);
    assert_eq!(d["\\link to tracked"].reparse.0, IO_REPARSE_TAG_SYMLINK);
    assert_eq!(
        d["\\Application Data"].reparse.0,
        IO_REPARSE_TAG_MOUNT_POINT
    );
    assert!(d["\\Docs\\With stream"].streams.contains_key("dirstream"));
    assert!(!d["\\Docs\\tracked.txt"].extra.is_empty());
    assert!(d["\\Other"].sd.as_ref().unwrap().len() > 60);
    assert_ne!(d["\\Other"].sd, d["\\Docs"].sd);
    assert_eq!(d["\\sparse.bin"].streams[""].2, 1 << 20);
    assert_eq!(d["\\Packed\\text.txt"].streams[""].2, 200_000);
    assert_eq!(d["\\Packed\\text copy.txt"].streams[""].2, 200_000);
    let two = &d["\\Other\\two equal streams.txt"].streams;
    assert_eq!(two[""], two["same again"]);
    assert_eq!(two["same again"].2, 200_000);
    assert!(d.keys().any(|k| k.contains("Ünïcödé")));
}
