//! `VolumeFs` on real NTFS and FAT volumes inside disk images, opened with
//! `open_volume` as the task sequence steps open them: the same scenario
//! runs on each backend (nested directories, overwrite, Unicode and long
//! names, a 5 MiB file, listing, tree removal, paths running into files),
//! then the volume is closed and read by independent tools (ntfs-3g's
//! `ntfsls`/`ntfscat`/`ntfsfix`, wimlib's NTFS capture, mtools and
//! `fsck.fat`). Also: reparse points are refused, a full volume leaves the
//! old file intact, read-only volumes refuse writes, and unknown file
//! systems are named in the error.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use tasq_disk::{partition_and_format, Disk, FsType, Layout};
use tasq_volume::fs::{open_volume, EntryKind, VolPath, VolumeFs};

const MIB: u64 = 1 << 20;
/// The scenario's long Unicode name (more than 8.3, non-ASCII, spaces).
const LONG: &str = "Ünïcödé 驱动程序 — a rather long driver name well past eight dot three.inf";

fn vp(s: &str) -> VolPath {
    VolPath::parse(s).unwrap()
}

fn run(cmd: &str, args: &[&str]) -> (bool, Vec<u8>, String) {
    let out = Command::new(cmd)
        .env("MTOOLS_SKIP_CHECK", "1")
        .env("LC_ALL", "C.UTF-8")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} must be installed (scripts/setup.sh): {e}"));
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn names(fs: &mut dyn VolumeFs, p: &str) -> Vec<String> {
    fs.read_dir(&vp(p))
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect()
}

/// Captures `src` with tasq's WIM writer, then checks with wimlib-imagex
/// that the scenario's files are in the image with their content.
fn capture_round_trip(src: &mut dyn tasq_wim::capture::CaptureSource, wim: &Path) {
    use tasq_wim::writer::{ImageOptions, WimWriter, WriteOptions};
    let mut w = WimWriter::create(wim, WriteOptions::default()).unwrap();
    w.add_image(
        src,
        &tasq_wim::capture_config::CaptureConfig::windows_default(),
        &ImageOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    w.finish().unwrap();
    let w = wim.to_str().unwrap();
    let extract = |path: &str| {
        let (ok, out, err) = run("wimlib-imagex", &["extract", w, "1", path, "--to-stdout"]);
        assert!(ok, "{path}: {err}");
        out
    };
    assert_eq!(extract("/Windows/Panther/Unattend/unattend.xml"), b"<new/>");
    assert_eq!(extract(&format!("/Drivers/{LONG}")), b"[Version]");
    assert!(extract("/big.bin") == common::pattern(5 * MIB as usize, 7));
    let (ok, out, err) = run("wimlib-imagex", &["dir", w, "1"]);
    assert!(ok, "{err}");
    let listing = String::from_utf8_lossy(&out);
    assert!(
        listing.lines().any(|l| l == "/_SMSTaskSequence/Logs"),
        "{listing}"
    );
    assert!(!listing.contains("~tasq"), "{listing}");
}

/// The common scenario. Leaves on the volume: `Windows\Panther\Unattend\
/// unattend.xml` = "<new/>", `Drivers\<LONG>` = "[Version]", `big.bin` =
/// pattern(5 MiB, 7), `a.txt` = "a", `_SMSTaskSequence\Logs\` (empty).
fn exercise(fs: &mut dyn VolumeFs) {
    let free0 = fs.free_space().unwrap();
    assert!(free0 > 10 * MIB, "{free0}");

    // Nested directories are created on the way.
    let ua = vp("Windows\\Panther\\Unattend\\unattend.xml");
    assert_eq!(fs.write_file(&ua, &mut &b"<old>xml</old>"[..]).unwrap(), 14);
    assert_eq!(fs.read_file(&ua, 100).unwrap(), b"<old>xml</old>");
    let m = fs.metadata(&ua).unwrap().unwrap();
    assert_eq!((m.kind, m.size), (EntryKind::File, 14));
    assert_eq!(
        fs.metadata(&vp("Windows\\Panther")).unwrap().unwrap().kind,
        EntryKind::Dir
    );
    assert_eq!(
        fs.metadata(&VolPath::root()).unwrap().unwrap().kind,
        EntryKind::Dir
    );
    assert_eq!(fs.metadata(&vp("Windows\\nope")).unwrap(), None);
    assert_eq!(fs.metadata(&vp("nope\\deeper")).unwrap(), None);
    // Lookup ignores case, as Windows does.
    let upper = vp("WINDOWS\\panther\\UNATTEND\\Unattend.XML");
    assert_eq!(fs.read_file(&upper, 100).unwrap(), b"<old>xml</old>");
    // The limit is enforced.
    assert!(fs.read_file(&ua, 13).is_err());
    // Replace (shorter), through a differently cased name: one file stays.
    assert_eq!(fs.write_file(&upper, &mut &b"<new/>"[..]).unwrap(), 6);
    assert_eq!(fs.read_file(&ua, 100).unwrap(), b"<new/>");
    let listed = names(fs, "Windows\\Panther\\Unattend");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].eq_ignore_ascii_case("unattend.xml"), "{listed:?}");
    // create_dir_all is idempotent and merges.
    fs.create_dir_all(&vp("_SMSTaskSequence\\Logs")).unwrap();
    fs.create_dir_all(&vp("_smstasksequence\\Logs")).unwrap();
    assert_eq!(names(fs, "_SMSTaskSequence"), ["Logs"]);
    assert!(names(fs, "_SMSTaskSequence\\Logs").is_empty());

    // Unicode and long names come back exactly.
    let drv = vp(&format!("Drivers\\net\\{LONG}"));
    fs.write_file(&drv, &mut &b"[Version]"[..]).unwrap();
    assert_eq!(names(fs, "Drivers\\net"), [LONG]);
    assert_eq!(fs.read_file(&drv, 100).unwrap(), b"[Version]");
    fs.write_file(&vp(&format!("Drivers\\{LONG}")), &mut &b"[Version]"[..])
        .unwrap();
    fs.write_file(&vp("Drivers\\net\\sub\\x.sys"), &mut &[1u8; 3000][..])
        .unwrap();

    // A 5 MiB file.
    let big = common::pattern(5 * MIB as usize, 7);
    assert_eq!(
        fs.write_file(&vp("big.bin"), &mut big.as_slice()).unwrap(),
        5 * MIB
    );
    assert!(fs.read_file(&vp("big.bin"), 5 * MIB).unwrap() == big);
    let free1 = fs.free_space().unwrap();
    assert!(free1 + 5 * MIB <= free0, "{free0} -> {free1}");

    // A path running into a file is an error, never a panic.
    fs.write_file(&vp("a.txt"), &mut &b"a"[..]).unwrap();
    for r in [
        fs.write_file(&vp("a.txt\\b"), &mut &b"b"[..]).map(|_| ()),
        fs.read_file(&vp("a.txt\\b"), 10).map(|_| ()),
        fs.create_dir_all(&vp("a.txt\\c")),
        fs.read_dir(&vp("a.txt")).map(|_| ()),
        fs.metadata(&vp("a.txt\\b")).map(|_| ()),
        fs.remove(&vp("a.txt\\b")),
    ] {
        let e = r.unwrap_err().to_string();
        assert!(e.contains("a.txt"), "{e}");
    }
    // Writing over a directory, reading one, listing a missing one.
    assert!(fs.write_file(&vp("Drivers"), &mut &b"x"[..]).is_err());
    assert!(fs.read_file(&vp("Drivers"), 10).is_err());
    assert!(fs.read_dir(&vp("missing")).is_err());
    assert!(fs.read_file(&vp("missing.txt"), 10).is_err());

    // Removing a tree; removing nothing is fine; the root is refused.
    fs.remove(&vp("drivers\\NET")).unwrap();
    assert_eq!(fs.metadata(&vp("Drivers\\net")).unwrap(), None);
    assert_eq!(names(fs, "Drivers"), [LONG]);
    fs.remove(&vp("Drivers\\net")).unwrap();
    assert!(fs.remove(&VolPath::root()).is_err());

    // The handle survives a flush.
    fs.flush().unwrap();
    assert_eq!(fs.read_file(&ua, 100).unwrap(), b"<new/>");
    let mut root = names(fs, "");
    root.sort_by_key(|n| n.to_lowercase());
    assert_eq!(
        root,
        ["_SMSTaskSequence", "a.txt", "big.bin", "Drivers", "Windows"]
    );
    // No temporary names are left behind.
    for d in ["", "Windows\\Panther\\Unattend", "Drivers"] {
        assert!(
            names(fs, d).iter().all(|n| !n.contains("~tasq")),
            "{d}: {:?}",
            names(fs, d)
        );
    }
}

// ---------------------------------------------------------------- NTFS

#[cfg(feature = "ntfs")]
mod ntfs {
    use super::*;
    use tasq_volume::ntfs::{NtfsFs, NtfsSource, NtfsTarget, NtfsVolume};
    use tasq_wim::apply::{ApplyEntry, ApplyTarget, WimPath};
    use tasq_wim::image::*;

    const HEAD: u64 = MIB;

    fn mkntfs(path: &Path, mib: u64) {
        let f = std::fs::File::create(path).unwrap();
        f.set_len(mib * MIB).unwrap();
        drop(f);
        let (ok, out, err) = run(
            "mkntfs",
            &["-F", "-f", "-q", "-L", "tasq", path.to_str().unwrap()],
        );
        assert!(ok, "{}{err}", String::from_utf8_lossy(&out));
    }

    /// A disk image with a fresh NTFS volume of `mib` MiB at offset HEAD.
    fn ntfs_disk(dir: &Path, mib: u64) -> (PathBuf, u64) {
        let part = dir.join("part0.img");
        mkntfs(&part, mib);
        let mut disk = vec![0x5Au8; HEAD as usize];
        disk.extend_from_slice(&std::fs::read(&part).unwrap());
        disk.extend(std::iter::repeat_n(0xA5u8, MIB as usize));
        let path = dir.join("disk.img");
        std::fs::write(&path, &disk).unwrap();
        (path, mib * MIB)
    }

    fn cut_out(disk: &Path, size: u64, to: &Path) {
        let b = std::fs::read(disk).unwrap();
        assert!(b[..HEAD as usize].iter().all(|&x| x == 0x5A));
        assert!(b[(HEAD + size) as usize..].iter().all(|&x| x == 0xA5));
        std::fs::write(to, &b[HEAD as usize..(HEAD + size) as usize]).unwrap();
    }

    fn ntfscat(img: &Path, path: &str) -> Vec<u8> {
        let (ok, out, err) = run("ntfscat", &["-f", img.to_str().unwrap(), path]);
        assert!(ok, "ntfscat {path}: {err}");
        out
    }

    fn ntfsls(img: &Path, path: &str) -> Vec<String> {
        let (ok, out, err) = run("ntfsls", &["-f", img.to_str().unwrap(), "-p", path]);
        assert!(ok, "ntfsls {path}: {err}");
        String::from_utf8_lossy(&out)
            .lines()
            .filter(|l| *l != "." && *l != "..")
            .map(str::to_string)
            .collect()
    }

    fn now_filetime() -> u64 {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        (d.as_secs() + 11_644_473_600) * 10_000_000
    }

    #[test]
    fn ntfs_scenario_then_independent_tools() {
        let dir = tempfile::tempdir().unwrap();
        let (disk, size) = ntfs_disk(dir.path(), 64);
        let t0 = now_filetime();
        {
            let mut fs = open_volume(&disk, HEAD, size, FsType::Ntfs, true).unwrap();
            assert!(fs.describe().contains("NTFS"), "{}", fs.describe());
            exercise(fs.as_mut());
            fs.flush().unwrap();
        }
        let part = dir.path().join("part.img");
        cut_out(&disk, size, &part);

        // ntfs-3g's own tools read what was written.
        let (ok, out, err) = run("ntfsfix", &["-n", part.to_str().unwrap()]);
        let text = format!("{}{err}", String::from_utf8_lossy(&out));
        assert!(ok, "{text}");
        assert!(
            !text.contains("FAILED") && !text.contains("corrupt"),
            "{text}"
        );
        assert_eq!(
            ntfscat(&part, "/Windows/Panther/Unattend/unattend.xml"),
            b"<new/>"
        );
        assert!(ntfscat(&part, "/big.bin") == common::pattern(5 * MIB as usize, 7));
        assert_eq!(ntfscat(&part, &format!("/Drivers/{LONG}")), b"[Version]");
        let root = ntfsls(&part, "/");
        for n in ["_SMSTaskSequence", "a.txt", "big.bin", "Drivers", "Windows"] {
            assert!(root.iter().any(|l| l == n), "{n} not in {root:?}");
        }
        assert!(!root.iter().any(|l| l.contains("~tasq")), "{root:?}");
        assert_eq!(ntfsls(&part, "/Drivers"), [LONG]);

        // wimlib's NTFS capture (independent reader of the volume) sees
        // files with ARCHIVE, times of now and an inherited descriptor.
        let wim = dir.path().join("wimlib.wim");
        let (ok, _, err) = run(
            "wimlib-imagex",
            &[
                "capture",
                part.to_str().unwrap(),
                wim.to_str().unwrap(),
                "--compress=none",
            ],
        );
        assert!(ok, "{err}");
        let w = tasq_wim::reader::Wim::open(&wim).unwrap();
        let tree = w.read_image(1).unwrap();
        let f = tree
            .find("Windows\\Panther\\Unattend\\unattend.xml")
            .expect("unattend.xml in wimlib's image");
        let ino = &tree.inodes[tree.dentries[f].inode];
        assert_eq!(
            ino.attributes & 0xFFFF,
            FILE_ATTRIBUTE_ARCHIVE,
            "{:#x}",
            ino.attributes
        );
        assert!(
            ino.last_write_time + 10_000_000 >= t0,
            "{} < {t0}",
            ino.last_write_time
        );
        assert!(ino.creation_time + 10_000_000 >= t0);
        let sd_of = |i: &Inode| tree.security[i.security_id.unwrap() as usize].clone();
        let root_sd = sd_of(&tree.inodes[tree.dentries[0].inode]);
        let d = tree.find("Windows").unwrap();
        let dino = &tree.inodes[tree.dentries[d].inode];
        assert_eq!(
            dino.attributes, FILE_ATTRIBUTE_DIRECTORY,
            "{:#x}",
            dino.attributes
        );
        check_inherited_sd(&sd_of(dino), &root_sd, true);
        let a = tree.find("a.txt").unwrap();
        check_inherited_sd(
            &sd_of(&tree.inodes[tree.dentries[a].inode]),
            &root_sd,
            false,
        );
        let p = tree.find("Windows\\Panther\\Unattend").unwrap();
        let p_sd = sd_of(&tree.inodes[tree.dentries[p].inode]);
        check_inherited_sd(&sd_of(ino), &p_sd, false);

        // And tasq's own capture (NtfsSource -> WIM) holds the files.
        let vol = NtfsVolume::open(&disk, HEAD, size, false).unwrap();
        let mut src = NtfsSource::new(&vol);
        capture_round_trip(&mut src, &dir.path().join("tasq.wim"));
    }

    /// The ACEs of a descriptor's DACL as (type, flags, mask, SID).
    fn aces(sd: &[u8]) -> Vec<(u8, u8, u32, Vec<u8>)> {
        let dacl_off = u32::from_le_bytes(sd[16..20].try_into().unwrap()) as usize;
        assert!(dacl_off > 0, "no DACL");
        let count = u16::from_le_bytes(sd[dacl_off + 4..dacl_off + 6].try_into().unwrap());
        let mut p = dacl_off + 8;
        let mut out = Vec::new();
        for _ in 0..count {
            let size = u16::from_le_bytes(sd[p + 2..p + 4].try_into().unwrap()) as usize;
            let mask = u32::from_le_bytes(sd[p + 4..p + 8].try_into().unwrap());
            out.push((sd[p], sd[p + 1], mask, sd[p + 8..p + size].to_vec()));
            p += size;
        }
        out
    }

    /// Owner BUILTIN\Administrators (S-1-5-32-544), and the effective
    /// ACEs are those of the parent `parent_sd` that a file (OBJECT_INHERIT)
    /// or directory (CONTAINER_INHERIT) inherits, as Windows computes them.
    fn check_inherited_sd(sd: &[u8], parent_sd: &[u8], dir: bool) {
        let owner_off = u32::from_le_bytes(sd[4..8].try_into().unwrap()) as usize;
        assert_eq!(
            &sd[owner_off..owner_off + 16],
            &[1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0],
            "owner"
        );
        let flag = if dir { 0x02 } else { 0x01 };
        // Inherited ACEs have their generic rights mapped to file rights.
        let map_generic = |m: u32| {
            let mut out = m & 0x0FFF_FFFF;
            for (g, specific) in [
                (0x8000_0000u32, 0x0012_0089u32),
                (0x4000_0000, 0x0012_0116),
                (0x2000_0000, 0x0012_00A0),
                (0x1000_0000, 0x001F_01FF),
            ] {
                if m & g != 0 {
                    out |= specific;
                }
            }
            out
        };
        let mut want: Vec<_> = aces(parent_sd)
            .into_iter()
            .filter(|a| a.1 & flag != 0)
            .map(|a| (a.0, map_generic(a.2), a.3))
            .collect();
        // Inherit-only (0x08) ACEs are for the children, not effective.
        let mut got: Vec<_> = aces(sd)
            .into_iter()
            .filter(|a| a.1 & 0x08 == 0)
            .map(|a| (a.0, a.2, a.3))
            .collect();
        want.sort();
        got.sort();
        assert!(!want.is_empty(), "the parent has nothing inheritable");
        assert_eq!(got, want);
    }

    /// Makes `Junction` (a directory junction to C:\Windows) and
    /// `Link.txt` (a file symlink) with the existing apply code.
    fn make_reparse_points(img: &Path) {
        let vol = NtfsVolume::open_whole(img, true).unwrap();
        let mut t = NtfsTarget::new(vol).unwrap();
        let dir_inode = Inode {
            attributes: FILE_ATTRIBUTE_DIRECTORY,
            ..Inode::default()
        };
        let root = WimPath::root();
        // Ids: the root 0, the junction 1.
        fn entry<'a>(path: &'a WimPath, inode: &'a Inode) -> ApplyEntry<'a> {
            ApplyEntry {
                id: usize::from(!path.is_root()),
                path,
                inode,
                short_name: &[],
                security_descriptor: None,
            }
        }
        t.create_directory(&entry(&root, &dir_inode)).unwrap();
        let j = WimPath::from_components(["Junction"]).unwrap();
        t.create_directory(&entry(&j, &dir_inode)).unwrap();
        let data = common::build::junction_data("\\??\\C:\\Windows", "C:\\Windows");
        let rp = Inode {
            attributes: FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_REPARSE_POINT,
            reparse_tag: IO_REPARSE_TAG_MOUNT_POINT,
            ..Inode::default()
        };
        t.set_reparse_point(&entry(&j, &rp), &data).unwrap();
        t.finish().unwrap();
    }

    #[test]
    fn reparse_points_are_refused_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("rp.img");
        mkntfs(&img, 16);
        make_reparse_points(&img);
        let mut fs = NtfsFs::open(&img, 0, 16 * MIB, true).unwrap();
        let listed = fs.read_dir(&VolPath::root()).unwrap();
        let j = listed.iter().find(|e| e.name == "Junction").unwrap();
        assert_eq!(j.kind, EntryKind::Other);
        assert_eq!(
            fs.metadata(&vp("junction")).unwrap().unwrap().kind,
            EntryKind::Other
        );
        for (what, r) in [
            (
                "write",
                fs.write_file(&vp("Junction\\evil.txt"), &mut &b"x"[..])
                    .map(|_| ()),
            ),
            ("mkdir", fs.create_dir_all(&vp("Junction\\sub"))),
            ("list", fs.read_dir(&vp("Junction")).map(|_| ())),
            ("read", fs.read_file(&vp("Junction\\x"), 10).map(|_| ())),
            ("meta", fs.metadata(&vp("Junction\\x")).map(|_| ())),
            (
                "replace",
                fs.write_file(&vp("Junction"), &mut &b"x"[..]).map(|_| ()),
            ),
        ] {
            let e = r.expect_err(what).to_string();
            assert!(e.contains("reparse point"), "{what}: {e}");
        }
        // Removing it removes the junction itself.
        fs.remove(&vp("Junction")).unwrap();
        assert_eq!(fs.metadata(&vp("Junction")).unwrap(), None);
        fs.flush().unwrap();
        assert_eq!(fs.metadata(&vp("Junction")).unwrap(), None);
        fs.close().unwrap();
        let (ok, out, err) = run("ntfsfix", &["-n", img.to_str().unwrap()]);
        assert!(ok, "{}{err}", String::from_utf8_lossy(&out));
    }

    #[test]
    fn metadata_files_are_hidden_and_unreachable() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("m.img");
        mkntfs(&img, 16);
        let mut fs = NtfsFs::open(&img, 0, 16 * MIB, true).unwrap();
        assert!(fs.read_dir(&VolPath::root()).unwrap().is_empty());
        for p in ["$MFT", "$Bitmap", "$Extend\\$Quota"] {
            let e = fs.write_file(&vp(p), &mut &b"x"[..]).unwrap_err();
            assert!(e.to_string().contains("metadata"), "{e}");
            assert!(fs.read_file(&vp(p), 1 << 30).is_err());
            assert!(fs.remove(&vp(p)).is_err());
        }
        fs.close().unwrap();
        let (ok, out, err) = run("ntfsfix", &["-n", img.to_str().unwrap()]);
        assert!(ok, "{}{err}", String::from_utf8_lossy(&out));
    }

    #[test]
    fn full_volume_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("small.img");
        mkntfs(&img, 8);
        let mut fs = NtfsFs::open(&img, 0, 8 * MIB, true).unwrap();
        let old = common::pattern(MIB as usize, 3);
        fs.write_file(&vp("Boot\\BCD"), &mut old.as_slice())
            .unwrap();
        let free = fs.free_space().unwrap();
        let huge = common::pattern((free + 2 * MIB) as usize, 4);
        let e = fs
            .write_file(&vp("boot\\bcd"), &mut huge.as_slice())
            .unwrap_err();
        assert!(
            e.to_string().contains("BCD") || e.to_string().contains("bcd"),
            "{e}"
        );
        assert!(fs.read_file(&vp("Boot\\BCD"), 8 * MIB).unwrap() == old);
        assert_eq!(names(&mut fs, "Boot"), ["BCD"]);
        // The space of the failed attempt is given back.
        let after = fs.free_space().unwrap();
        assert!(after + 64 * 1024 >= free, "{free} -> {after}");
        fs.close().unwrap();
        let (ok, out, err) = run("ntfsfix", &["-n", img.to_str().unwrap()]);
        assert!(ok, "{}{err}", String::from_utf8_lossy(&out));
        assert!(ntfscat(&img, "/Boot/BCD") == old);
    }

    #[test]
    fn read_only_volume_reads_and_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("ro.img");
        mkntfs(&img, 16);
        let mut fs = NtfsFs::open(&img, 0, 16 * MIB, true).unwrap();
        fs.write_file(&vp("x\\y.txt"), &mut &b"yes"[..]).unwrap();
        fs.close().unwrap();
        let before = std::fs::read(&img).unwrap();
        let mut fs = open_volume(&img, 0, 16 * MIB, FsType::Ntfs, false).unwrap();
        assert_eq!(fs.read_file(&vp("X\\Y.TXT"), 10).unwrap(), b"yes");
        for r in [
            fs.write_file(&vp("z.txt"), &mut &b"z"[..]).map(|_| ()),
            fs.create_dir_all(&vp("d")),
            fs.remove(&vp("x")),
        ] {
            assert!(r.unwrap_err().to_string().contains("read-only"));
        }
        fs.flush().unwrap();
        drop(fs);
        assert!(
            std::fs::read(&img).unwrap() == before,
            "a read-only open changed the image"
        );
    }
}

// ----------------------------------------------------------------- FAT

/// A 1 GiB GPT disk (sparse) with one 200 MB FAT32 partition, formatted by
/// tasq_disk.
fn fat_disk(dir: &Path) -> (PathBuf, u64, u64) {
    let layout = Layout::from_toml(
        "style = \"gpt\"\n[[partition]]\ntype = \"Primary\"\nfile_system = \"FAT32\"\nsize = 200\nunit = \"MB\"\nvolume_name = \"SYSTEM\"\n",
        "test",
    )
    .unwrap();
    let p = dir.join("fat.img");
    let d = Disk::create(&p, 1 << 30).unwrap();
    let v = partition_and_format(&d, &layout).unwrap();
    (p, v[0].offset, v[0].size)
}

fn extract(img: &Path, off: u64, len: u64, to: &Path) {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(img).unwrap();
    f.seek(SeekFrom::Start(off)).unwrap();
    let mut buf = Vec::new();
    f.take(len).read_to_end(&mut buf).unwrap();
    std::fs::write(to, buf).unwrap();
}

fn fsck_fat(part: &Path) {
    let (ok, out, err) = run("fsck.fat", &["-n", part.to_str().unwrap()]);
    let text = format!("{}{err}", String::from_utf8_lossy(&out));
    assert!(ok, "{text}");
    assert!(
        !text.contains("differ") && !text.contains("uninitialized") && !text.contains("Dirty"),
        "{text}"
    );
}

fn mtype(at: &str, path: &str) -> Vec<u8> {
    let (ok, out, err) = run("mtype", &["-i", at, path]);
    assert!(ok, "mtype {path}: {err}");
    out
}

#[test]
fn fat_scenario_then_mtools_and_fsck() {
    let dir = tempfile::tempdir().unwrap();
    let (img, off, len) = fat_disk(dir.path());
    {
        let mut fs = open_volume(&img, off, len, FsType::Fat32, true).unwrap();
        assert!(fs.describe().contains("FAT"), "{}", fs.describe());
        exercise(fs.as_mut());
        fs.flush().unwrap();
    }
    let at = format!("{}@@{off}", img.display());
    assert_eq!(
        mtype(&at, "::/Windows/Panther/Unattend/unattend.xml"),
        b"<new/>"
    );
    assert!(mtype(&at, "::/big.bin") == common::pattern(5 * MIB as usize, 7));
    assert_eq!(mtype(&at, &format!("::/Drivers/{LONG}")), b"[Version]");
    // New files carry ARCHIVE, as mattrib shows it.
    let (ok, out, err) = run("mattrib", &["-i", &at, "::/a.txt"]);
    assert!(ok, "{err}");
    let out = String::from_utf8_lossy(&out);
    assert!(out.trim_start().starts_with('A'), "{out}");
    // Write times are today's (UTC).
    let (ok, out, _) = run("mdir", &["-a", "-i", &at, "::/"]);
    assert!(ok);
    let out = String::from_utf8_lossy(&out);
    let line = out.lines().find(|l| l.ends_with("a.txt")).unwrap_or("");
    let (ok, today, _) = run("date", &["-u", "+%Y-%m-%d"]);
    assert!(ok);
    let today = String::from_utf8_lossy(&today).trim().to_string();
    assert!(out.contains(&today), "{today} not in:\n{out}\n{line}");
    let part = dir.path().join("part.img");
    extract(&img, off, len, &part);
    fsck_fat(&part);
    // tasq's FAT capture (FatSource -> WIM) holds the files.
    let d = Disk::open(&img, false).unwrap();
    let mut src = tasq_volume::FatSource::new(&d, off, len, "fat.img:1").unwrap();
    capture_round_trip(&mut src, &dir.path().join("fat.wim"));
}

/// A FAT12 volume of `kib` KiB made by mkfs.fat (an independent formatter).
fn mkfs_fat(path: &Path, kib: u64) {
    let _ = std::fs::remove_file(path);
    let (ok, out, err) = run(
        "mkfs.fat",
        &["-C", path.to_str().unwrap(), &kib.to_string()],
    );
    assert!(ok, "{}{err}", String::from_utf8_lossy(&out));
}

#[test]
fn fat_full_volume_keeps_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("small.img");
    mkfs_fat(&img, 4096);
    let size = std::fs::metadata(&img).unwrap().len();
    let mut fs = open_volume(&img, 0, size, FsType::Fat12, true).unwrap();
    let old = common::pattern(MIB as usize, 3);
    fs.write_file(&vp("EFI\\Boot\\BCD"), &mut old.as_slice())
        .unwrap();
    let free = fs.free_space().unwrap();
    let huge = common::pattern((free + MIB) as usize, 4);
    let e = fs
        .write_file(&vp("efi\\boot\\bcd"), &mut huge.as_slice())
        .unwrap_err();
    assert!(e.to_string().to_lowercase().contains("bcd"), "{e}");
    assert!(fs.read_file(&vp("EFI\\Boot\\BCD"), 8 * MIB).unwrap() == old);
    assert_eq!(names(fs.as_mut(), "EFI\\Boot"), ["BCD"]);
    assert_eq!(fs.free_space().unwrap(), free);
    fs.flush().unwrap();
    drop(fs);
    fsck_fat(&img);
    assert!(mtype(&format!("{}@@0", img.display()), "::/EFI/Boot/BCD") == old);
}

#[test]
fn fat_drop_without_flush_writes_back() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("drop.img");
    mkfs_fat(&img, 2048);
    let size = std::fs::metadata(&img).unwrap().len();
    let mut fs = open_volume(&img, 0, size, FsType::Fat12, true).unwrap();
    fs.write_file(&vp("EFI\\Microsoft\\Boot\\BCD"), &mut &b"bcd"[..])
        .unwrap();
    drop(fs);
    fsck_fat(&img);
    let at = format!("{}@@0", img.display());
    assert_eq!(mtype(&at, "::/EFI/Microsoft/Boot/BCD"), b"bcd");
    let (ok, out, err) = run("mattrib", &["-i", &at, "::/EFI/Microsoft/Boot/BCD"]);
    assert!(ok, "{err}");
    let out = String::from_utf8_lossy(&out);
    assert!(out.trim_start().starts_with('A'), "{out}");
}

#[test]
fn fat_read_only_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("ro.img");
    mkfs_fat(&img, 2048);
    let size = std::fs::metadata(&img).unwrap().len();
    let mut fs = open_volume(&img, 0, size, FsType::Fat12, true).unwrap();
    fs.write_file(&vp("x\\y.txt"), &mut &b"yes"[..]).unwrap();
    fs.flush().unwrap();
    drop(fs);
    let before = std::fs::read(&img).unwrap();
    let mut fs = open_volume(&img, 0, size, FsType::Fat12, false).unwrap();
    assert_eq!(fs.read_file(&vp("X\\Y.TXT"), 10).unwrap(), b"yes");
    for r in [
        fs.write_file(&vp("z.txt"), &mut &b"z"[..]).map(|_| ()),
        fs.create_dir_all(&vp("d")),
        fs.remove(&vp("x")),
    ] {
        assert!(r.unwrap_err().to_string().contains("read-only"));
    }
    fs.flush().unwrap();
    drop(fs);
    assert!(
        std::fs::read(&img).unwrap() == before,
        "a read-only open changed the image"
    );
    fsck_fat(&img);
}

#[test]
fn other_file_systems_are_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("x.img");
    std::fs::write(&img, vec![0u8; MIB as usize]).unwrap();
    for (t, name) in [
        (FsType::Ext4, "Ext4"),
        (FsType::ExFat, "ExFat"),
        (FsType::Unknown, "Unknown"),
    ] {
        let e = open_volume(&img, 0, MIB, t, false)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(name), "{e}");
    }
    // A FAT or NTFS type on bytes that are neither is an error too.
    assert!(open_volume(&img, 0, MIB, FsType::Fat32, false).is_err());
    #[cfg(feature = "ntfs")]
    assert!(open_volume(&img, 0, MIB, FsType::Ntfs, false).is_err());
}

/// Rough figures, not a check: `cargo test --test volume_fs -- --ignored
/// --nocapture volume_fs_timings`. Writes 500 small files into one
/// directory and one 64 MiB file, on NTFS and FAT32.
#[test]
#[ignore]
fn volume_fs_timings() {
    fn time(fs: &mut dyn VolumeFs, what: &str) {
        let t = std::time::Instant::now();
        for i in 0..500 {
            fs.write_file(&vp(&format!("Drivers\\f{i:04}.inf")), &mut &[7u8; 2000][..])
                .unwrap();
        }
        let small = t.elapsed();
        let big = common::pattern(64 * MIB as usize, 1);
        let t = std::time::Instant::now();
        fs.write_file(&vp("big.wim"), &mut big.as_slice()).unwrap();
        let write = t.elapsed();
        let t = std::time::Instant::now();
        assert!(fs.read_file(&vp("big.wim"), 1 << 30).unwrap() == big);
        let read = t.elapsed();
        let t = std::time::Instant::now();
        fs.flush().unwrap();
        let flush = t.elapsed();
        println!(
            "{what}: 500 x 2 KB files {small:?}, 64 MiB write {write:?}, read {read:?}, flush {flush:?}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    #[cfg(feature = "ntfs")]
    {
        let img = dir.path().join("n.img");
        let f = std::fs::File::create(&img).unwrap();
        f.set_len(256 * MIB).unwrap();
        drop(f);
        let (ok, _, err) = run("mkntfs", &["-F", "-f", "-q", img.to_str().unwrap()]);
        assert!(ok, "{err}");
        let mut fs = open_volume(&img, 0, 256 * MIB, FsType::Ntfs, true).unwrap();
        time(fs.as_mut(), "NTFS");
    }
    let (img, off, len) = fat_disk(dir.path());
    let mut fs = open_volume(&img, off, len, FsType::Fat32, true).unwrap();
    time(fs.as_mut(), "FAT32");
}
