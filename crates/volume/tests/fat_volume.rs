//! The FAT backend against the independent tools: what our target writes,
//! mtools (`mdir`, `mtype`, `mattrib`) reads and `fsck.fat` accepts; what
//! mtools writes, our source captures; a WIM round trip from one FAT
//! volume to another; and a damaged volume gives an error, not a panic.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use tasq_disk::{partition_and_format, Disk, Layout};
use tasq_volume::{FatSource, FatTarget};
use tasq_wim::apply::{ApplyTarget, WimPath};
use tasq_wim::capture::{CaptureSource, NoFilter};
use tasq_wim::image::*;
use tasq_wim::Sha1Hash;

const MIB: u64 = 1 << 20;

fn tool(name: &str) -> PathBuf {
    tasq_disk::format::find_program(name)
        .unwrap_or_else(|| panic!("{name} is not installed (scripts/setup.sh)"))
}

fn run(name: &str, args: &[&str]) -> (bool, Vec<u8>, String) {
    let out = Command::new(tool(name))
        .env("MTOOLS_SKIP_CHECK", "1")
        .env("LC_ALL", "C.UTF-8")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A 1 GiB GPT image with one 600 MiB FAT32 partition named `label`.
fn fat_disk(dir: &Path, name: &str, label: &str) -> (PathBuf, Disk, u64, u64) {
    let layout = Layout::from_toml(
        &format!(
            "style = \"gpt\"\n[[partition]]\ntype = \"Primary\"\nfile_system = \"FAT32\"\nsize = 600\nunit = \"MB\"\nvolume_name = \"{label}\"\n"
        ),
        "test",
    )
    .unwrap();
    let p = dir.join(name);
    let d = Disk::create(&p, 1 << 30).unwrap();
    let v = partition_and_format(&d, &layout).unwrap();
    let (off, len) = (v[0].offset, v[0].size);
    (p, d, off, len)
}

fn file_inode(attrs: u32, ctime: u64, wtime: u64, size: u64, id: u64) -> Inode {
    let mut i = Inode {
        attributes: attrs,
        creation_time: ctime,
        last_write_time: wtime,
        last_access_time: wtime,
        ..Inode::default()
    };
    if size > 0 {
        i.streams.push(Stream {
            kind: StreamKind::Data,
            name: Vec::new(),
            hash: Sha1Hash([id as u8; 20]),
            size,
            source: StreamSource::External(id),
        });
    }
    i
}

/// 2021-03-04 05:06:08.50 UTC and 2022-12-31 23:59:58 UTC as FILETIMEs
/// (UNIX 1614834368 and 1672531198).
const T_CREATE: u64 = (1_614_834_368 + 11_644_473_600) * 10_000_000 + 5_000_000;
const T_WRITE: u64 = (1_672_531_198 + 11_644_473_600) * 10_000_000;

/// The tree applied in the tests, and each stream's content by id.
fn sample_tree() -> (ImageTree, BTreeMap<u64, Vec<u8>>) {
    let mut t = ImageTree::new();
    let mut data = BTreeMap::new();
    let dir = |t: &mut ImageTree, parent: usize, name: &str, attrs: u32| {
        let i = t.add_inode(Inode {
            attributes: FILE_ATTRIBUTE_DIRECTORY | attrs,
            creation_time: T_CREATE,
            last_write_time: T_WRITE,
            last_access_time: T_WRITE,
            ..Inode::default()
        });
        t.add_dentry(parent, utf16(name), vec![], i)
    };
    let efi = dir(&mut t, 0, "EFI", 0);
    let ms = dir(&mut t, efi, "Microsoft", 0);
    let boot = dir(&mut t, ms, "Boot", FILE_ATTRIBUTE_HIDDEN);
    let mut add = |t: &mut ImageTree, parent: usize, name: &str, attrs: u32, content: Vec<u8>| {
        let id = data.len() as u64 + 1;
        let i = t.add_inode(file_inode(
            attrs,
            T_CREATE,
            T_WRITE,
            content.len() as u64,
            id,
        ));
        data.insert(id, content);
        t.add_dentry(parent, utf16(name), vec![], i);
        i
    };
    add(
        &mut t,
        boot,
        "bootmgfw.efi",
        FILE_ATTRIBUTE_ARCHIVE,
        common::pattern(100_000, 1),
    );
    add(
        &mut t,
        boot,
        "BCD",
        FILE_ATTRIBUTE_HIDDEN | FILE_ATTRIBUTE_SYSTEM | FILE_ATTRIBUTE_ARCHIVE,
        common::pattern(24_576, 2),
    );
    add(
        &mut t,
        0,
        "A Long File Name with Spaces.txt",
        FILE_ATTRIBUTE_READONLY,
        b"long\n".to_vec(),
    );
    add(
        &mut t,
        0,
        "Ünïcödé.txt",
        FILE_ATTRIBUTE_ARCHIVE,
        b"unicode\n".to_vec(),
    );
    add(&mut t, 0, "empty.dat", FILE_ATTRIBUTE_NORMAL, Vec::new());
    // Larger than the target's 8 MiB write buffer: several appends.
    add(
        &mut t,
        0,
        "big.bin",
        FILE_ATTRIBUTE_ARCHIVE,
        common::pattern(9 * MIB as usize + 123, 3),
    );
    // Hard links: both names get the data.
    let hl = add(
        &mut t,
        0,
        "link1.txt",
        FILE_ATTRIBUTE_ARCHIVE,
        b"linked\n".to_vec(),
    );
    t.add_dentry(efi, utf16("link2.txt"), vec![], hl);
    (t, data)
}

fn apply_sample(d: &Disk, off: u64, len: u64) -> Vec<String> {
    let (tree, data) = sample_tree();
    let mut target = FatTarget::new(d, off, len, "test.img:1").unwrap();
    common::drive_apply(&tree, &mut target, &|s: &Stream| match s.source {
        StreamSource::External(id) => data[&id].clone(),
        _ => Vec::new(),
    });
    target.warnings().to_vec()
}

fn extract(img: &Path, off: u64, len: u64, out: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    let mut src = std::fs::File::open(img).unwrap();
    src.seek(SeekFrom::Start(off)).unwrap();
    let mut dst = std::fs::File::create(out).unwrap();
    std::io::copy(&mut src.take(len), &mut dst).unwrap();
    dst.flush().unwrap();
}

#[test]
fn applied_volume_is_read_by_mtools_and_passes_fsck() {
    let dir = tempfile::tempdir().unwrap();
    let (img, d, off, len) = fat_disk(dir.path(), "a.img", "TASQ");
    let warnings = apply_sample(&d, off, len);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("1 hard links written as separate copies")),
        "{warnings:?}"
    );
    let at = format!("{}@@{off}", img.display());
    let (_, data) = sample_tree();
    for (path, id) in [
        ("::/EFI/Microsoft/Boot/bootmgfw.efi", 1u64),
        ("::/EFI/Microsoft/Boot/BCD", 2),
        ("::/A Long File Name with Spaces.txt", 3),
        ("::/Ünïcödé.txt", 4),
        ("::/big.bin", 6),
        ("::/link1.txt", 7),
        ("::/EFI/link2.txt", 7),
    ] {
        let (ok, out, err) = run("mtype", &["-i", &at, path]);
        assert!(ok, "{path}: {err}");
        assert!(
            out == data[&id],
            "{path}: content differs ({} bytes)",
            out.len()
        );
    }
    // Attributes, as mattrib prints them before the path.
    for (path, want) in [
        ("::/EFI/Microsoft/Boot/BCD", "ASH"),
        ("::/A Long File Name with Spaces.txt", "R"),
        ("::/empty.dat", ""),
        ("::/EFI/Microsoft/Boot", "H"),
    ] {
        let (ok, out, err) = run("mattrib", &["-i", &at, path]);
        assert!(ok, "{err}");
        let out = String::from_utf8_lossy(&out);
        let flags: String = out
            .split("::/")
            .next()
            .unwrap()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let mut f: Vec<char> = flags.chars().collect();
        f.sort();
        let mut w: Vec<char> = want.chars().collect();
        w.sort();
        assert_eq!(f, w, "{path}: {out}");
    }
    // Write times, as mdir shows them (2022-12-31 23:59).
    let (ok, out, _) = run("mdir", &["-a", "-i", &at, "::/"]);
    assert!(ok);
    let out = String::from_utf8_lossy(&out);
    let line = out
        .lines()
        .find(|l| l.ends_with("A Long File Name with Spaces.txt"))
        .unwrap();
    assert!(line.contains("2022-12-31  23:59"), "{line}");
    // fsck.fat finds nothing to repair.
    let part = dir.path().join("part.img");
    extract(&img, off, len, &part);
    let (ok, out, err) = run("fsck.fat", &["-n", part.to_str().unwrap()]);
    let text = format!("{}{err}", String::from_utf8_lossy(&out));
    assert!(ok, "{text}");
    assert!(
        !text.contains("differ") && !text.contains("uninitialized") && !text.contains("Dirty"),
        "{text}"
    );
}

fn scan(d: &Disk, off: u64, len: u64) -> (FatSource, ImageTree) {
    let mut src = FatSource::new(d, off, len, "test.img:1").unwrap();
    let tree = src.scan(&NoFilter, &mut |_| {}).unwrap();
    (src, tree)
}

fn read_stream(src: &FatSource, s: &Stream) -> Vec<u8> {
    let StreamSource::External(id) = s.source else {
        panic!("{s:?}")
    };
    let mut v = Vec::new();
    src.open_stream(id).unwrap().read_to_end(&mut v).unwrap();
    assert_eq!(v.len() as u64, s.size);
    v
}

#[test]
fn files_written_by_mtools_are_captured() {
    let dir = tempfile::tempdir().unwrap();
    let (img, d, off, len) = fat_disk(dir.path(), "m.img", "MT");
    let at = format!("{}@@{off}", img.display());
    let host = dir.path().join("h");
    std::fs::create_dir(&host).unwrap();
    let big = common::pattern(3 * MIB as usize + 5, 9);
    std::fs::write(host.join("big"), &big).unwrap();
    std::fs::write(host.join("small"), b"tiny").unwrap();
    for args in [
        vec!["mmd", "-i", &at, "::/Program Files"],
        vec!["mmd", "-i", &at, "::/Program Files/Sub Dir"],
        vec![
            "mcopy",
            "-i",
            &at,
            host.join("big").to_str().unwrap(),
            "::/Program Files/Sub Dir/A big file.bin",
        ],
        vec![
            "mcopy",
            "-i",
            &at,
            host.join("small").to_str().unwrap(),
            "::/SHORT.TXT",
        ],
        vec!["mattrib", "-i", &at, "+r", "+h", "::/SHORT.TXT"],
    ] {
        let (ok, _, err) = run(args[0], &args[1..]);
        assert!(ok, "{args:?}: {err}");
    }
    let (src, tree) = scan(&d, off, len);
    let f = tree
        .find("Program Files\\Sub Dir\\A big file.bin")
        .expect("long names captured");
    let inode = tree.inode_of(f);
    assert_eq!(inode.attributes, FILE_ATTRIBUTE_ARCHIVE);
    assert_eq!(read_stream(&src, inode.unnamed_data().unwrap()), big);
    // mtools gives a long name an 8.3 alias; the capture keeps it.
    let short = String::from_utf16(&tree.dentries[f].short_name).unwrap();
    assert!(
        short.starts_with("ABIGFI~") && short.ends_with(".BIN"),
        "{short}"
    );
    assert!(tree
        .inode_of(tree.find("Program Files").unwrap())
        .is_directory());
    let s = tree.find("SHORT.TXT").unwrap();
    assert!(
        tree.dentries[s].short_name.is_empty(),
        "an 8.3 name has no alias"
    );
    let si = tree.inode_of(s);
    assert_eq!(
        si.attributes,
        FILE_ATTRIBUTE_ARCHIVE | FILE_ATTRIBUTE_READONLY | FILE_ATTRIBUTE_HIDDEN
    );
    assert_eq!(read_stream(&src, si.unnamed_data().unwrap()), b"tiny");
    // mtools stamps the current time; it must decode to within a day.
    let now = tasq_volume::hostdir::unix_to_filetime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
        0,
    );
    let day = 86_400 * 10_000_000u64;
    assert!(
        si.last_write_time.abs_diff(now) < day,
        "{} vs {now}",
        si.last_write_time
    );
}

#[test]
fn applied_tree_captures_back_with_names_attributes_and_times() {
    let dir = tempfile::tempdir().unwrap();
    let (_img, d, off, len) = fat_disk(dir.path(), "r.img", "RT");
    apply_sample(&d, off, len);
    let (src, tree) = scan(&d, off, len);
    let (want, data) = sample_tree();
    // Every path of the sample is there with its attributes and content.
    for dn in 1..want.dentries.len() {
        let path = want.path_of(dn);
        let got = tree.find(&path).unwrap_or_else(|| panic!("{path} missing"));
        let wi = want.inode_of(dn);
        let gi = tree.inode_of(got);
        assert_eq!(gi.attributes, wi.attributes, "{path}");
        assert_eq!(gi.creation_time, T_CREATE, "{path}: creation time to 10 ms");
        assert_eq!(gi.last_write_time, T_WRITE, "{path}: write time to 2 s");
        // Access times keep the day only.
        assert_eq!(
            gi.last_access_time,
            T_WRITE / (86_400 * 10_000_000) * (86_400 * 10_000_000)
        );
        if let Some(s) = wi.unnamed_data() {
            let StreamSource::External(id) = s.source else {
                unreachable!()
            };
            assert_eq!(
                read_stream(&src, gi.unnamed_data().unwrap()),
                data[&id],
                "{path}"
            );
        }
    }
    assert_eq!(tree.dentries.len(), want.dentries.len());
}

#[test]
fn wim_round_trip_between_two_fat_volumes() {
    use tasq_wim::apply::{apply_image, ApplyOptions};
    use tasq_wim::writer::{ImageOptions, WimWriter, WriteOptions};
    let dir = tempfile::tempdir().unwrap();
    let (_a, da, oa, la) = fat_disk(dir.path(), "a.img", "SRC");
    apply_sample(&da, oa, la);
    let wim = dir.path().join("fat.wim");
    let mut w = WimWriter::create(&wim, WriteOptions::default()).unwrap();
    let mut src = FatSource::new(&da, oa, la, "a.img:1").unwrap();
    w.add_image(&mut src, &NoFilter, &ImageOptions::default(), &mut |_| {})
        .unwrap();
    w.finish().unwrap();
    // wimlib reads what we wrote from a FAT volume.
    if let Some(wimlib) = tasq_disk::format::find_program("wimlib-imagex") {
        let out = Command::new(wimlib)
            .args(["verify", wim.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (_b, db, ob, lb) = fat_disk(dir.path(), "b.img", "DST");
    let r = tasq_wim::reader::Wim::open(&wim).unwrap();
    let mut t = FatTarget::new(&db, ob, lb, "b.img:1").unwrap();
    apply_image(&r, 1, &mut t, &ApplyOptions::default(), &mut |_| {}).unwrap();
    let (_, ta) = scan(&da, oa, la);
    let (sb, tb) = scan(&db, ob, lb);
    let (_, data) = sample_tree();
    assert_eq!(ta.dentries.len(), tb.dentries.len());
    for dn in 1..ta.dentries.len() {
        let path = ta.path_of(dn);
        let g = tb.find(&path).unwrap_or_else(|| panic!("{path} missing"));
        let (ia, ib) = (ta.inode_of(dn), tb.inode_of(g));
        assert_eq!(
            (
                ia.attributes,
                ia.creation_time,
                ia.last_write_time,
                ia.last_access_time
            ),
            (
                ib.attributes,
                ib.creation_time,
                ib.last_write_time,
                ib.last_access_time
            ),
            "{path}"
        );
        assert_eq!(ia.data_size(), ib.data_size(), "{path}");
    }
    let big = tb.find("big.bin").unwrap();
    assert_eq!(
        read_stream(&sb, tb.inode_of(big).unnamed_data().unwrap()),
        data[&6]
    );
}

#[test]
fn a_looping_directory_chain_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let (_img, d, off, len) = fat_disk(dir.path(), "bad.img", "BAD");
    apply_sample(&d, off, len);
    // Make the root directory's cluster point at itself in the FAT.
    let mut boot = [0u8; 512];
    d.read_exact_at(&mut boot, off).unwrap();
    let reserved = u16::from_le_bytes([boot[14], boot[15]]) as u64;
    let root = u32::from_le_bytes([boot[44], boot[45], boot[46], boot[47]]);
    d.write_all_at(&root.to_le_bytes(), off + reserved * 512 + root as u64 * 4)
        .unwrap();
    let mut src = FatSource::new(&d, off, len, "bad.img:1").unwrap();
    let e = src.scan(&NoFilter, &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("bad.img:1") && e.contains("loops"), "{e}");
    // Not a FAT volume at all.
    let e = FatSource::new(&d, 0, MIB, "bad.img:0")
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a FAT volume"), "{e}");
}

/// Throughput of the FAT backend (run with `--ignored --nocapture`):
/// 256 MiB in 8 files applied, then captured and read back.
#[test]
#[ignore]
fn measure_fat_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let (_img, d, off, len) = fat_disk(dir.path(), "perf.img", "PERF");
    let mut t = ImageTree::new();
    let chunk = common::pattern(32 * MIB as usize, 5);
    for i in 0..8u64 {
        let ino = t.add_inode(file_inode(
            FILE_ATTRIBUTE_ARCHIVE,
            T_CREATE,
            T_WRITE,
            chunk.len() as u64,
            i + 1,
        ));
        t.add_dentry(0, utf16(&format!("file{i}.bin")), vec![], ino);
    }
    let start = std::time::Instant::now();
    let mut target = FatTarget::new(&d, off, len, "perf.img:1").unwrap();
    common::drive_apply(&t, &mut target, &|_| chunk.clone());
    let apply = start.elapsed();
    let start = std::time::Instant::now();
    let (src, tree) = scan(&d, off, len);
    let mut total = 0usize;
    for dn in 1..tree.dentries.len() {
        let v = read_stream(&src, tree.inode_of(dn).unnamed_data().unwrap());
        assert!(v == chunk);
        total += v.len();
    }
    let capture = start.elapsed();
    let mib = total as f64 / MIB as f64;
    println!(
        "FAT apply {mib:.0} MiB in {:.2} s ({:.0} MiB/s); scan+read {:.2} s ({:.0} MiB/s)",
        apply.as_secs_f64(),
        mib / apply.as_secs_f64(),
        capture.as_secs_f64(),
        mib / capture.as_secs_f64()
    );
}

#[test]
fn a_file_larger_than_its_cluster_chain_fails_to_open_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_img, d, off, len) = fat_disk(dir.path(), "short.img", "SHORT");
    apply_sample(&d, off, len);
    let (src, tree) = scan(&d, off, len);
    // Claim 1 GiB for big.bin in its directory entry.
    let e = {
        let mut slice = d.slice(off, len).unwrap();
        let mut raw = tasq_disk::fat::RawFat::open(&mut slice).unwrap();
        raw.lookup(&["big.bin".to_string()]).unwrap()
    };
    d.write_all_at(&(1u32 << 30).to_le_bytes(), off + e.entry_offset + 28)
        .unwrap();
    let (src2, tree2) = scan(&d, off, len);
    let s = tree2
        .inode_of(tree2.find("big.bin").unwrap())
        .unnamed_data()
        .unwrap();
    let StreamSource::External(id) = s.source else {
        unreachable!()
    };
    let err = src2.open_stream(id).err().unwrap().to_string();
    assert!(
        err.contains("test.img:1\\big.bin") && err.contains("cannot hold"),
        "{err}"
    );
    drop((src, tree));
}

#[test]
fn names_and_sizes_fat_cannot_hold_are_apply_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (_img, d, off, len) = fat_disk(dir.path(), "names.img", "N");
    let mut t = FatTarget::new(&d, off, len, "names.img:1").unwrap();
    let bad = WimPath::from_components(["what?.txt"]).unwrap();
    let inode = file_inode(FILE_ATTRIBUTE_ARCHIVE, T_CREATE, T_WRITE, 0, 0);
    let e = tasq_wim::apply::ApplyEntry {
        id: 0,
        path: &bad,
        inode: &inode,
        short_name: &[],
        security_descriptor: None,
    };
    let err = t.create_file(&e).unwrap_err().to_string();
    assert!(err.contains("names.img:1\\what?.txt"), "{err}");
    let ok = WimPath::from_components(["huge.bin"]).unwrap();
    let e = tasq_wim::apply::ApplyEntry {
        id: 1,
        path: &ok,
        ..e
    };
    t.create_file(&e).unwrap();
    let huge = Stream {
        kind: StreamKind::Data,
        name: Vec::new(),
        hash: Sha1Hash([1; 20]),
        size: 5 << 30,
        source: StreamSource::None,
    };
    let err = t.begin_stream(&e, &huge).unwrap_err().to_string();
    assert!(err.contains("more than a FAT file can hold"), "{err}");
}

#[test]
fn names_equal_but_for_case_do_not_overwrite_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let (img, d, off, len) = fat_disk(dir.path(), "case.img", "CASE");
    let mut t = ImageTree::new();
    let mut data = BTreeMap::new();
    for (i, name) in ["Readme.txt", "README.TXT"].into_iter().enumerate() {
        let id = i as u64 + 1;
        let content = format!("content {i}\n").into_bytes();
        let ino = t.add_inode(file_inode(
            FILE_ATTRIBUTE_ARCHIVE,
            T_CREATE,
            T_WRITE,
            content.len() as u64,
            id,
        ));
        data.insert(id, content);
        t.add_dentry(0, utf16(name), vec![], ino);
    }
    let mut target = FatTarget::new(&d, off, len, "case.img:1").unwrap();
    common::drive_apply(&t, &mut target, &|s: &Stream| match s.source {
        StreamSource::External(id) => data[&id].clone(),
        _ => Vec::new(),
    });
    let w = target.warnings().join("\n");
    assert!(w.contains("same name when case is ignored"), "{w}");
    // The first in collation order ("README.TXT") is kept, whole.
    let (ok, out, err) = run(
        "mtype",
        &["-i", &format!("{}@@{off}", img.display()), "::/readme.txt"],
    );
    assert!(ok, "{err}");
    assert_eq!(out, data[&2]);
}

/// A whole-disk FAT volume made by mkfs.fat and filled by mtools.
fn mkfs_volume(dir: &Path, name: &str, mib: u64, fat_bits: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p)
        .unwrap()
        .set_len(mib * MIB)
        .unwrap();
    let (ok, _, err) = run(
        "mkfs.fat",
        &["-F", fat_bits, "-n", "SMALL", p.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    let host = dir.join(format!("{name}.src"));
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("f1"), common::pattern(70_000, 4)).unwrap();
    std::fs::write(host.join("f2"), b"two").unwrap();
    let img = p.to_str().unwrap();
    for args in [
        vec!["mmd", "-i", img, "::/Some Directory"],
        vec![
            "mcopy",
            "-i",
            img,
            host.join("f1").to_str().unwrap(),
            "::/Some Directory/First File.bin",
        ],
        vec![
            "mcopy",
            "-i",
            img,
            host.join("f2").to_str().unwrap(),
            "::/TWO.TXT",
        ],
    ] {
        let (ok, _, err) = run(args[0], &args[1..]);
        assert!(ok, "{args:?}: {err}");
    }
    p
}

#[test]
fn fat12_and_fat16_volumes_are_captured() {
    let dir = tempfile::tempdir().unwrap();
    for (name, mib, bits) in [("f12.img", 4, "12"), ("f16.img", 32, "16")] {
        let p = mkfs_volume(dir.path(), name, mib, bits);
        let d = Disk::open(&p, false).unwrap();
        let r = tasq_disk::list_volumes(&d).unwrap();
        assert_eq!(r.volumes[0].fs.to_string(), format!("FAT{bits}"));
        let (src, tree) = scan(&d, 0, d.size());
        let f = tree.find("Some Directory\\First File.bin").unwrap();
        let got = read_stream(&src, tree.inode_of(f).unnamed_data().unwrap());
        assert_eq!(got, common::pattern(70_000, 4), "{name}");
        let t = tree.find("TWO.TXT").unwrap();
        assert_eq!(
            read_stream(&src, tree.inode_of(t).unnamed_data().unwrap()),
            b"two"
        );
    }
}

mod damaged {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Random bytes over the FAT and directory areas of a small FAT12
        /// volume: scanning and reading every stream ends, with data or an
        /// error, never a panic or a hang.
        #[test]
        fn random_damage_never_panics(hits in proptest::collection::vec((0usize..64 * 1024, any::<u8>()), 1..64)) {
            let dir = tempfile::tempdir().unwrap();
            let p = mkfs_volume(dir.path(), "dmg.img", 4, "12");
            let mut bytes = std::fs::read(&p).unwrap();
            for (at, b) in hits {
                // The first 64 KiB hold the boot sector, FATs, root
                // directory and the first data clusters.
                bytes[at] = b;
            }
            std::fs::write(&p, &bytes).unwrap();
            let d = Disk::open(&p, false).unwrap();
            let _ = tasq_disk::list_volumes(&d);
            if let Ok(mut src) = FatSource::new(&d, 0, d.size(), "dmg.img:0") {
                if let Ok(tree) = src.scan(&NoFilter, &mut |_| {}) {
                    for inode in &tree.inodes {
                        if let Some(StreamSource::External(id)) = inode.unnamed_data().map(|s| s.source.clone()) {
                            if let Ok(mut r) = src.open_stream(id) {
                                let mut v = Vec::new();
                                let _ = r.read_to_end(&mut v);
                                prop_assert!(v.len() as u64 <= d.size());
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn an_image_larger_than_the_volume_is_refused_before_writing() {
    use tasq_volume::fat::apply::apply_image_to_fat;
    use tasq_wim::apply::ApplyOptions;
    use tasq_wim::writer::{ImageOptions, WimWriter, WriteOptions};
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::from_toml(
        "style = \"gpt\"\n[[partition]]\ntype = \"Primary\"\nfile_system = \"FAT32\"\nsize = 40\nunit = \"MB\"\nvolume_name = \"SMALL\"\n",
        "test",
    )
    .unwrap();
    let img = dir.path().join("small.img");
    let d = Disk::create(&img, 64 * MIB).unwrap();
    let v = partition_and_format(&d, &layout).unwrap();
    let (off, len) = (v[0].offset, v[0].size);
    // A tree with a 48 MiB file (sparse on the host) and a small one.
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::File::create(tree.join("sub/big.bin"))
        .unwrap()
        .set_len(48 * MIB)
        .unwrap();
    std::fs::write(tree.join("small.txt"), b"fits").unwrap();
    let wim = dir.path().join("big.wim");
    let mut w = WimWriter::create(&wim, WriteOptions::default()).unwrap();
    let mut src = tasq_volume::HostDirSource::new(&tree).unwrap();
    w.add_image(&mut src, &NoFilter, &ImageOptions::default(), &mut |_| {})
        .unwrap();
    w.finish().unwrap();
    let r = tasq_wim::reader::Wim::open(&wim).unwrap();
    let before = std::fs::read(&img).unwrap();
    let err = apply_image_to_fat(
        &r,
        1,
        FatTarget::new(&d, off, len, "small.img:1").unwrap(),
        &ApplyOptions::default(),
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("not enough space") && err.contains("small.img:1"),
        "{err}"
    );
    assert!(
        std::fs::read(&img).unwrap() == before,
        "the volume was written to"
    );
    // Without the big file the same volume takes it.
    std::fs::remove_file(tree.join("sub/big.bin")).unwrap();
    let wim2 = dir.path().join("small.wim");
    let mut w = WimWriter::create(&wim2, WriteOptions::default()).unwrap();
    let mut src = tasq_volume::HostDirSource::new(&tree).unwrap();
    w.add_image(&mut src, &NoFilter, &ImageOptions::default(), &mut |_| {})
        .unwrap();
    w.finish().unwrap();
    let r = tasq_wim::reader::Wim::open(&wim2).unwrap();
    apply_image_to_fat(
        &r,
        1,
        FatTarget::new(&d, off, len, "small.img:1").unwrap(),
        &ApplyOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    let (ok, out, _) = run(
        "mtype",
        &["-i", &format!("{}@@{off}", img.display()), "::small.txt"],
    );
    assert!(ok);
    assert_eq!(out, b"fits");
}
