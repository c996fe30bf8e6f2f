//! Malicious names at the library level: images whose entries are named
//! `..`, `.`, with a separator, a NUL, an unpaired surrogate, or an
//! absolute path are refused by `apply_image` (and `apply_paths`) before
//! the target receives a single call, so no backend ever has to defend
//! itself against them.

use std::io::Cursor;

use tasq_wim::apply::{apply_image, apply_paths, ApplyOptions};
use tasq_wim::capture::{CaptureFilter, CaptureSource, NoFilter, ScanProgress};
use tasq_wim::image::*;
use tasq_wim::memfs::MemFs;
use tasq_wim::reader::Wim;
use tasq_wim::writer::{ImageOptions, WimWriter, WriteOptions};
use tasq_wim::{CompressionFormat, Sha1Hash, WimError};

/// A capture source handing the writer a hand-built tree.
struct Crafted {
    tree: ImageTree,
    data: Vec<Vec<u8>>,
}

impl Crafted {
    fn new() -> Crafted {
        Crafted {
            tree: ImageTree::new(),
            data: Vec::new(),
        }
    }
    fn dir(&mut self, parent: usize, name: Vec<u16>) -> usize {
        let ino = self.tree.add_inode(Inode {
            attributes: FILE_ATTRIBUTE_DIRECTORY,
            ..Inode::default()
        });
        self.tree.add_dentry(parent, name, vec![], ino)
    }
    fn file(&mut self, parent: usize, name: Vec<u16>, content: &[u8]) -> usize {
        let id = self.data.len() as u64;
        self.data.push(content.to_vec());
        let ino = self.tree.add_inode(Inode {
            attributes: FILE_ATTRIBUTE_NORMAL,
            streams: vec![Stream {
                kind: StreamKind::Data,
                name: vec![],
                hash: Sha1Hash::ZERO,
                size: content.len() as u64,
                source: StreamSource::External(id),
            }],
            ..Inode::default()
        });
        self.tree.add_dentry(parent, name, vec![], ino)
    }
}

impl CaptureSource for Crafted {
    fn describe(&self) -> String {
        "crafted".into()
    }
    fn scan(
        &mut self,
        _: &dyn CaptureFilter,
        _: &mut dyn FnMut(ScanProgress),
    ) -> tasq_wim::Result<ImageTree> {
        Ok(self.tree.clone())
    }
    fn open_stream(&self, id: u64) -> tasq_wim::Result<Box<dyn std::io::Read + Send + '_>> {
        Ok(Box::new(Cursor::new(self.data[id as usize].clone())))
    }
}

fn bad_names() -> Vec<(&'static str, Vec<u16>)> {
    vec![
        ("dotdot", utf16("..")),
        ("dot", utf16(".")),
        ("slash", utf16("a/b")),
        ("traversal", utf16("../../etc/passwd")),
        ("backslash", utf16("..\\..\\x")),
        ("nul", utf16("a\0b")),
        ("nul-only", vec![0]),
        ("absolute", utf16("/etc/cron.d/x")),
        ("drive", utf16("C:\\Windows\\x")),
        ("unpaired surrogate", vec![b'a' as u16, 0xD800, b'b' as u16]),
    ]
}

/// The calls a refused apply may have made: none (the target is exactly
/// as new).
fn assert_untouched(fs: &MemFs, ctx: &str) {
    assert_eq!(fs, &MemFs::new(), "{ctx}: the target was written to");
}

#[test]
fn bad_names_are_refused_before_the_target_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    for (tag, bad) in bad_names() {
        for as_dir in [false, true] {
            let mut c = Crafted::new();
            // Harmless entries first, so a careless apply would have begun.
            c.file(ImageTree::ROOT, utf16("aaa"), b"fine");
            let sub = c.dir(ImageTree::ROOT, utf16("sub"));
            if as_dir {
                let d = c.dir(sub, bad.clone());
                c.file(d, utf16("inner"), b"pwned");
            } else {
                c.file(sub, bad.clone(), b"pwned");
            }
            let path = dir.path().join(format!("{tag}-{as_dir}.wim"));
            let mut w = WimWriter::create(
                &path,
                WriteOptions {
                    compression: CompressionFormat::Xpress,
                    ..Default::default()
                },
            )
            .unwrap();
            w.add_image(&mut c, &NoFilter, &ImageOptions::default(), &mut |_| {})
                .unwrap();
            w.finish().unwrap();
            let wim = Wim::open(&path).unwrap();
            let ctx = format!("{tag} (directory: {as_dir})");
            // The image itself reads fine: the names are only unsafe to apply.
            let tree = wim.read_image(1).unwrap();
            assert!(
                tree.dentries.iter().any(|d| d.name == bad),
                "{ctx}: the name did not survive the writer"
            );

            let mut fs = MemFs::new();
            let err =
                apply_image(&wim, 1, &mut fs, &ApplyOptions::default(), &mut |_| {}).unwrap_err();
            assert!(
                matches!(err, WimError::UnsafeName { image: 1, .. }),
                "{ctx}: {err}"
            );
            let msg = err.to_string();
            assert!(
                msg.contains("\\sub\\"),
                "{ctx}: the error does not name the path: {msg}"
            );
            assert_untouched(&fs, &ctx);

            // Extracting the directory that holds it is refused the same way.
            let mut fs = MemFs::new();
            let err = apply_paths(
                &wim,
                1,
                &["\\sub".to_string()],
                &mut fs,
                &ApplyOptions::default(),
                &mut |_| {},
            )
            .unwrap_err();
            assert!(matches!(err, WimError::UnsafeName { .. }), "{ctx}: {err}");
            assert_untouched(&fs, &ctx);

            // Extracting only the harmless file works: the bad entry is
            // not part of what is written.
            let mut fs = MemFs::new();
            apply_paths(
                &wim,
                1,
                &["aaa".to_string()],
                &mut fs,
                &ApplyOptions::default(),
                &mut |_| {},
            )
            .unwrap();
            assert_eq!(
                fs.nodes.get("aaa").and_then(|n| n.data.as_deref()),
                Some(&b"fine"[..]),
                "{ctx}"
            );
            assert_eq!(
                fs.nodes.len(),
                2,
                "{ctx}: {:?}",
                fs.nodes.keys().collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn selected_paths_cannot_climb_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Crafted::new();
    let d = c.dir(ImageTree::ROOT, utf16("d"));
    c.file(d, utf16("f"), b"f");
    let path = dir.path().join("ok.wim");
    let mut w = WimWriter::create(&path, WriteOptions::default()).unwrap();
    w.add_image(&mut c, &NoFilter, &ImageOptions::default(), &mut |_| {})
        .unwrap();
    w.finish().unwrap();
    let wim = Wim::open(&path).unwrap();
    for sel in ["..", "d/../..", "\\d\\..\\..\\etc", "d/./f", "/nonexistent"] {
        let mut fs = MemFs::new();
        let r = apply_paths(
            &wim,
            1,
            &[sel.to_string()],
            &mut fs,
            &ApplyOptions::default(),
            &mut |_| {},
        );
        assert!(r.is_err(), "selection {sel:?} was accepted");
        assert_untouched(&fs, sel);
    }
}

/// A root entry that is a directory reparse point is refused: the writer
/// gives such a directory no child list, so export or delete would have
/// silently dropped the whole tree (found by the metadata_parse fuzz
/// target).
#[test]
fn reparse_point_root_is_refused() {
    use tasq_wim::metadata::{parse_metadata, serialize_metadata};
    let mut t = ImageTree::new();
    let ino = t.add_inode(Inode {
        attributes: FILE_ATTRIBUTE_NORMAL,
        ..Inode::default()
    });
    t.add_dentry(ImageTree::ROOT, utf16("child"), vec![], ino);
    let mut bytes = serialize_metadata(&t);
    assert_eq!(parse_metadata(&bytes, 1).unwrap().dentries.len(), 2);
    // Security data of an empty table is 8 bytes; the root's attributes
    // follow its 8-byte length field.
    let attrs = FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_REPARSE_POINT;
    bytes[16..20].copy_from_slice(&attrs.to_le_bytes());
    let err = parse_metadata(&bytes, 4).unwrap_err().to_string();
    assert!(err.contains("image 4") && err.contains("root"), "{err}");
}
