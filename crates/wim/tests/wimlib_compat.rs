//! Interchange with wimlib-imagex (Debian package `wimtools`): what we write
//! passes `wimlib-imagex verify` and applies to the same tree; what wimlib
//! writes we read, list and apply identically.

use std::path::Path;
use std::process::Command;

use tasq_wim::apply::{apply_image, ApplyOptions};
use tasq_wim::capture::NoFilter;
use tasq_wim::memfs::MemFs;
use tasq_wim::reader::Wim;
use tasq_wim::writer::{ImageOptions, WimWriter, WriteOptions};
use tasq_wim::CompressionFormat;

fn wimlib(args: &[&str]) -> String {
    let out = Command::new("wimlib-imagex").args(args).output().expect(
        "wimlib-imagex must be installed (Debian package wimtools; scripts/setup.sh installs it)",
    );
    assert!(
        out.status.success(),
        "wimlib-imagex {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !all.contains("WARNING") && !all.contains("ERROR"),
        "wimlib-imagex {args:?} complained: {all}"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tree_fs() -> MemFs {
    let mut fs = MemFs::new();
    fs.add_dir("Windows");
    fs.add_dir("Windows\\System32");
    let big: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 & 0x3f)
        .collect();
    fs.add_file("Windows\\System32\\big.bin", &big);
    fs.add_file("Windows\\System32\\dup.bin", &big);
    fs.add_file("Windows\\a.txt", b"hello hello hello hello hello");
    fs.add_file("empty", b"");
    let rp = tasq_wim::reparse::symlink_reparse_from_unix("Windows/System32").unwrap();
    fs.nodes.insert(
        "dirlink".into(),
        tasq_wim::memfs::MemNode {
            attributes: tasq_wim::image::FILE_ATTRIBUTE_DIRECTORY,
            reparse: Some((tasq_wim::image::IO_REPARSE_TAG_SYMLINK, rp)),
            ..Default::default()
        },
    );
    fs
}

#[test]
fn wimlib_verifies_and_applies_what_we_write() {
    let dir = tempfile::tempdir().unwrap();
    for (i, c) in [
        CompressionFormat::None,
        CompressionFormat::Xpress,
        CompressionFormat::Lzx,
    ]
    .into_iter()
    .enumerate()
    {
        let path = dir.path().join(format!("ours{i}.wim"));
        let mut w = WimWriter::create(
            &path,
            WriteOptions {
                compression: c,
                integrity: true,
                ..Default::default()
            },
        )
        .unwrap();
        let mut fs = tree_fs();
        w.add_image(
            &mut fs,
            &NoFilter,
            &ImageOptions {
                name: Some("one".into()),
                ..Default::default()
            },
            &mut |_| {},
        )
        .unwrap();
        let mut fs2 = tree_fs();
        fs2.add_file("second.txt", b"2");
        w.add_image(
            &mut fs2,
            &NoFilter,
            &ImageOptions {
                name: Some("two".into()),
                boot: true,
                ..Default::default()
            },
            &mut |_| {},
        )
        .unwrap();
        w.finish().unwrap();
        let p = path.to_str().unwrap();
        let v = wimlib(&["verify", p]);
        assert!(v.contains("successfully verified"), "{v}");
        assert!(
            v.contains("Verifying integrity"),
            "integrity table not checked: {v}"
        );
        let info = wimlib(&["info", p]);
        let field = |name: &str| {
            info.lines()
                .find(|l| l.starts_with(name))
                .map(|l| l[name.len()..].trim().to_string())
        };
        assert_eq!(field("Image Count:").as_deref(), Some("2"), "{info}");
        assert_eq!(field("Boot Index:").as_deref(), Some("2"), "{info}");
        let expect = match c {
            CompressionFormat::None => "None",
            CompressionFormat::Xpress => "XPRESS",
            _ => "LZX",
        };
        assert_eq!(field("Compression:").as_deref(), Some(expect), "{info}");
        assert!(info.contains("Name:                   two"), "{info}");
        let out = dir.path().join(format!("applied{i}"));
        wimlib(&["dir", p, "1"]);
        wimlib(&["apply", p, "2", out.to_str().unwrap()]);
        assert_eq!(
            std::fs::read_link(out.join("dirlink")).unwrap().to_str(),
            Some("Windows/System32")
        );
        assert_eq!(
            std::fs::read(out.join("Windows/System32/big.bin"))
                .unwrap()
                .len(),
            300_000
        );
        assert_eq!(
            std::fs::read(out.join("Windows/a.txt")).unwrap(),
            b"hello hello hello hello hello"
        );
        assert_eq!(std::fs::read(out.join("second.txt")).unwrap(), b"2");
        assert_eq!(std::fs::read(out.join("empty")).unwrap(), b"");
    }
}

fn make_dir(root: &Path) {
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    std::fs::write(
        root.join("sub/deeper/file.txt"),
        "deep content ".repeat(5000),
    )
    .unwrap();
    std::fs::write(
        root.join("top.bin"),
        (0..100_000u32).map(|i| (i % 7) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    std::fs::write(root.join("empty"), b"").unwrap();
    std::fs::hard_link(root.join("top.bin"), root.join("hardlink.bin")).unwrap();
    std::os::unix::fs::symlink("sub/deeper/file.txt", root.join("rel-link")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", root.join("abs-link")).unwrap();
}

#[test]
fn we_read_and_apply_what_wimlib_writes() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_dir(&src);
    for c in ["none", "XPRESS", "LZX"] {
        let path = dir.path().join(format!("wimlib-{c}.wim"));
        let p = path.to_str().unwrap();
        wimlib(&[
            "capture",
            src.to_str().unwrap(),
            p,
            "first",
            &format!("--compress={c}"),
            "--check",
        ]);
        wimlib(&["append", src.to_str().unwrap(), p, "second", "--check"]);
        let wim = Wim::open(&path).unwrap();
        assert_eq!(wim.image_count(), 2);
        assert_eq!(wim.info.images[0].name.as_deref(), Some("first"));
        // Our counts agree with wimlib's XML.
        let tree = wim.read_image(1).unwrap();
        let s = tree.stats();
        assert_eq!(s.dir_count, wim.info.images[0].dir_count, "{c}");
        assert_eq!(s.file_count, wim.info.images[0].file_count, "{c}");
        assert_eq!(s.total_bytes, wim.info.images[0].total_bytes, "{c}");
        assert_eq!(s.hard_link_bytes, wim.info.images[0].hard_link_bytes, "{c}");
        tasq_wim::verify::verify(&wim, 2, &mut |_, _| {}).unwrap();
        let mut out = MemFs::new();
        apply_image(&wim, 2, &mut out, &ApplyOptions::default(), &mut |_| {}).unwrap();
        assert_eq!(
            out.nodes["sub\\deeper\\file.txt"].data.as_deref(),
            Some("deep content ".repeat(5000).as_bytes())
        );
        assert_eq!(out.nodes["hardlink.bin"].data, out.nodes["top.bin"].data);
        assert_eq!(out.nodes["empty"].data.as_deref(), Some(&b""[..]));
        let (tag, data) = out.nodes["rel-link"].reparse.clone().unwrap();
        let link = tasq_wim::reparse::parse_link_reparse(tag, &data).unwrap();
        assert_eq!(
            tasq_wim::reparse::unix_target_from_link(&link),
            "sub/deeper/file.txt"
        );
    }
}
