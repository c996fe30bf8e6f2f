//! Reads XML written by wimlib itself: a WIM is captured with
//! `wimlib-imagex`, its XML resource extracted with `info --extract-xml`,
//! and our reading is compared with what we put in and with what
//! `wimlib-imagex info` reports. Skipped (with a message) only when the
//! `wimlib-imagex` binary is not installed.

use std::fs;
use std::path::Path;
use std::process::Command;

use tasq_wim::xml::{filetime_now, WimInfo};

fn wimlib(args: &[&std::ffi::OsStr]) -> Option<std::process::Output> {
    match Command::new("wimlib-imagex").args(args).output() {
        Ok(out) => {
            assert!(
                out.status.success(),
                "wimlib-imagex {:?} failed: {}",
                args,
                String::from_utf8_lossy(&out.stderr)
            );
            Some(out)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("cannot run wimlib-imagex: {e}"),
    }
}

macro_rules! os {
    ($($a:expr),* $(,)?) => { &[$(std::ffi::OsStr::new($a)),*] };
}

/// A small tree: 3 directories (root included), 4 names for files of which
/// two are hard links to the same 1000-byte file.
fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("sub/deeper")).unwrap();
    fs::write(root.join("a.txt"), b"hello").unwrap();
    fs::write(root.join("sub/b.bin"), vec![7u8; 1000]).unwrap();
    fs::hard_link(root.join("sub/b.bin"), root.join("sub/deeper/b-link.bin")).unwrap();
    fs::write(root.join("sub/deeper/empty"), b"").unwrap();
}

/// The value printed by `wimlib-imagex info WIM IMAGE` for a label.
fn info_field(report: &str, label: &str) -> String {
    report
        .lines()
        .find_map(|l| l.strip_prefix(label).and_then(|r| r.strip_prefix(':')))
        .unwrap_or_else(|| panic!("no {label:?} in:\n{report}"))
        .trim()
        .to_owned()
}

#[test]
fn reads_xml_written_by_wimlib() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_tree(&src);
    let wim = dir.path().join("t.wim");
    let xml = dir.path().join("t.xml");
    let name1 = "Tést & <1> \"q\" 'a' 😀";
    let before = filetime_now();
    let Some(_) = wimlib(os![
        "capture",
        &src,
        &wim,
        name1,
        "first & only",
        "--flags=Professional",
        "--image-property",
        "DISPLAYNAME=Shown 𝄞",
        "--image-property",
        "CUSTOM/FOO=bar",
        "--image-property",
        "WINDOWS/VERSION/BUILD=17763",
        "--image-property",
        "WINDOWS/LANGUAGES/LANGUAGE=en-US",
    ]) else {
        eprintln!("SKIPPED: wimlib-imagex is not installed, cannot generate fixtures");
        return;
    };
    fs::remove_file(src.join("a.txt")).unwrap();
    wimlib(os!["append", &src, &wim, "second"]).unwrap();
    let after = filetime_now();
    wimlib(os!["info", &wim, "--extract-xml", &xml]).unwrap();
    let bytes = fs::read(&xml).unwrap();
    assert_eq!(&bytes[..2], &[0xFF, 0xFE], "wimlib writes a BOM");

    let info = WimInfo::parse(&bytes).unwrap();
    assert_eq!(info.images.len(), 2);

    let one = &info.images[0];
    assert_eq!(one.name.as_deref(), Some(name1));
    assert_eq!(one.description.as_deref(), Some("first & only"));
    assert_eq!(one.flags.as_deref(), Some("Professional"));
    assert_eq!(one.display_name.as_deref(), Some("Shown 𝄞"));
    assert_eq!((one.dir_count, one.file_count), (3, 4));
    assert_eq!(one.total_bytes, 5 + 1000 * 2);
    assert_eq!(one.hard_link_bytes, 1000);
    for t in [one.creation_time, one.last_modification_time] {
        // FILETIME from wimlib's clock, within the test's own window (with a
        // few seconds of slack for clock granularity).
        assert!(
            t + 50_000_000 >= before && t <= after + 50_000_000,
            "{t} not in {before}..{after}"
        );
    }
    let win = one.windows.as_ref().expect("WINDOWS element");
    assert_eq!(win.version.as_ref().and_then(|v| v.build), Some(17763));
    assert_eq!(win.languages, ["en-US"]);
    assert_eq!(one.extra.len(), 1);
    assert_eq!(one.extra[0].name, "CUSTOM");
    assert_eq!(one.extra[0].children[0].name, "FOO");
    assert_eq!(one.extra[0].children[0].text.as_deref(), Some("bar"));

    let two = &info.images[1];
    assert_eq!(two.name.as_deref(), Some("second"));
    assert_eq!((two.dir_count, two.file_count), (3, 3));
    assert_eq!(two.total_bytes, 2000);
    assert!(two.windows.is_none() && two.extra.is_empty());

    // The top-level TOTALBYTES is the XML resource's offset in the file.
    let header = wimlib(os!["info", "--header", &wim]).unwrap();
    let header = String::from_utf8_lossy(&header.stdout).into_owned();
    let xml_offset = header
        .lines()
        .find_map(|l| l.strip_prefix("XML Data Offset"))
        .and_then(|r| r.trim().strip_prefix('='))
        .map(|v| v.trim().parse::<u64>().unwrap())
        .expect("XML Data Offset in header");
    assert_eq!(info.total_bytes, Some(xml_offset));

    // Our numbers agree with wimlib's own report.
    for (i, img) in info.images.iter().enumerate() {
        let out = wimlib(os!["info", &wim, &(i + 1).to_string()]).unwrap();
        let report = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            info_field(&report, "Directory Count"),
            img.dir_count.to_string()
        );
        assert_eq!(
            info_field(&report, "File Count"),
            img.file_count.to_string()
        );
        assert_eq!(
            info_field(&report, "Total Bytes"),
            img.total_bytes.to_string()
        );
        assert_eq!(
            info_field(&report, "Hard Link Bytes"),
            img.hard_link_bytes.to_string()
        );
        assert_eq!(info_field(&report, "Name"), img.name.clone().unwrap());
    }

    // And what we write back reads as the same thing.
    let again = WimInfo::parse(&info.to_bytes()).unwrap();
    assert_eq!(again, info);
}
