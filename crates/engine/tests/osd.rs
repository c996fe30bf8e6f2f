//! OS deployment steps end to end: Format and Partition Disk and Apply
//! Operating System Image as the wizard writes them, run by the engine on
//! disk images, checked with independent tools (sgdisk, sfdisk,
//! fsck.vfat, mtools, ntfs-3g's tools, hivex's tools).

mod common;

use common::Shared;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use tasq_engine::computer::Architecture;
use tasq_engine::content::{ContentLibrary, LocalLibrary};
use tasq_engine::runner::{DiskImageMachine, Engine, EngineConfig, MediaType, RunOutcome};
use tasq_engine::sample::{sample_os_tree, sample_os_wim};
use tasq_engine::steps::Registry;
use tasq_engine::volumes::VolumeRef;
use tasq_engine::Computer;
use tasq_tasksequence::model::{Item, Sequence, Step};
use tasq_tasksequence::steps::{self as types, ApplyOsImage};
use tasq_tasksequence::templates::{build_and_capture, BuildAndCapture, PackageInfo};

const GIB: u64 = 1 << 30;

fn tool(cmd: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The wizard's build sequence, reduced to its disk and apply steps.
fn wizard_steps(image_id: &str) -> Vec<Step> {
    let a = BuildAndCapture {
        package: PackageInfo::default(),
        apply_os: ApplyOsImage {
            image_package_id: image_id.into(),
            image_index: 1,
            run_from_net: false,
        },
        windows: Default::default(),
        network: Default::default(),
        client: Default::default(),
        updates: None,
        applications: Default::default(),
        capture: Default::default(),
    };
    let (seq, _) = build_and_capture(&a);
    let mut out = Vec::new();
    fn walk(items: &[Item], out: &mut Vec<Step>) {
        for it in items {
            match it {
                Item::Step(s)
                    if [types::PARTITION_DISK, types::APPLY_OS].contains(&s.type_name()) =>
                {
                    out.push(s.clone())
                }
                Item::Group(g) => walk(&g.items, out),
                _ => {}
            }
        }
    }
    walk(&seq.items, &mut out);
    out
}

fn sequence_of(steps: Vec<Step>) -> (Sequence, String) {
    let seq = Sequence {
        items: steps.into_iter().map(Item::Step).collect(),
        ..Sequence::default()
    };
    let xml = tasq_tasksequence::export(&seq, Default::default());
    let back = tasq_tasksequence::import_str(&xml).unwrap();
    (back, xml)
}

struct Lab {
    dir: tempfile::TempDir,
    computer: Computer,
    lib: PathBuf,
}

impl Lab {
    fn new(firmware: &str, disks: &[(u64, bool)]) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let mut toml = format!("name = \"REF01\"\nfirmware = \"{firmware}\"\n");
        for (i, (size, usb)) in disks.iter().enumerate() {
            let p = dir.path().join(format!("disk{i}.img"));
            std::fs::File::create(&p).unwrap().set_len(*size).unwrap();
            toml.push_str(&format!(
                "[[disks]]\npath = \"{}\"\nusb = {usb}\n",
                p.display()
            ));
        }
        let computer = Computer::from_toml(&toml, Path::new("computer.toml")).unwrap();
        let lib = dir.path().join("library");
        Lab { dir, computer, lib }
    }

    fn disk(&self, i: usize) -> PathBuf {
        self.computer.disks[i].path.clone()
    }

    /// Adds the sample OS as an os-image package; returns its ID.
    fn add_sample_os(&self) -> String {
        let tree = self.dir.path().join("sample-tree");
        sample_os_tree(&tree, Architecture::X64).unwrap();
        let wim = self.dir.path().join("sample.wim");
        sample_os_wim(&tree, &wim, Architecture::X64).unwrap();
        LocalLibrary::new(&self.lib)
            .add("os-image", "Sample OS", &wim, BTreeMap::new())
            .unwrap()
            .id
    }

    /// An engine configuration for this lab's computer (and its library).
    fn config(&self, state: &str, with_library: bool, sink: Shared) -> EngineConfig {
        let content: Option<Box<dyn ContentLibrary>> = if with_library {
            Some(Box::new(LocalLibrary::new(&self.lib)))
        } else {
            None
        };
        EngineConfig {
            computer: self.computer.clone(),
            state_dir: self.dir.path().join(state),
            media: MediaType::Boot,
            registry: Registry::standard(),
            machine: Box::new(DiskImageMachine {
                computer_file: "computer.toml".into(),
            }),
            content,
            sinks: vec![Box::new(sink)],
            package_id: "TSQ00000".into(),
        }
    }

    fn engine(&self, seq: &Sequence, xml: &str, sink: Shared) -> Engine {
        Engine::start(seq, xml.as_bytes(), &[], self.config("state", true, sink)).unwrap()
    }

    fn run(&self, steps: Vec<Step>) -> (RunOutcome, Engine, String) {
        let (seq, xml) = sequence_of(steps);
        let sink = Shared::default();
        let mut e = self.engine(&seq, &xml, sink.clone());
        let o = e.run("OSD", false).unwrap();
        let log = messages(&sink);
        (o, e, log)
    }
}

fn messages(sink: &Shared) -> String {
    let c = sink.0.lock().unwrap();
    c.0.iter()
        .map(|e| format!("{e:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn sha(p: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut f = std::fs::File::open(p).unwrap();
    let mut all = Vec::new();
    f.read_to_end(&mut all).unwrap();
    // Content comparison of a sparse 1 GiB file: fold it.
    let mut acc = vec![0u8; 4096];
    for (i, b) in all.iter().enumerate() {
        acc[i % 4096] ^= b.rotate_left((i / 4096 % 8) as u32);
    }
    acc
}

fn partition_steps(uefi: bool) -> Vec<Step> {
    wizard_steps("TSQ00001")
        .into_iter()
        .filter(|s| {
            s.type_name() == types::PARTITION_DISK
                && s.name.ends_with(if uefi { "UEFI" } else { "BIOS" })
        })
        .collect()
}

#[test]
fn the_wizards_uefi_partition_step_makes_a_gpt_disk_and_sets_osdisk() {
    let lab = Lab::new("uefi", &[(GIB, false)]);
    let (o, e, log) = lab.run(partition_steps(true));
    assert_eq!(o, RunOutcome::Succeeded, "{log}");
    let disk = lab.disk(0);
    let (ok, out) = tool("sgdisk", &["-p", disk.to_str().unwrap()]);
    assert!(ok, "{out}");
    // EFI (EF00), MSR (0C01), basic data (0700), recovery (2700).
    for code in ["EF00", "0C01", "0700", "2700"] {
        assert!(out.contains(code), "{code}: {out}");
    }
    assert!(out.contains("500.0 MiB"), "{out}");
    assert!(out.contains("128.0 MiB"), "{out}");
    assert_eq!(e.env.get("OSDisk"), Some("C:"));
    assert_eq!(e.env.get("_SMSTSMDataPath"), Some("C:\\_SMSTaskSequence"));
    match e.state.drives.get(&'C') {
        Some(VolumeRef::Partition { partition, fs, .. }) => {
            assert_eq!(*partition, 3);
            assert_eq!(fs, "NTFS");
        }
        other => panic!("C: is {other:?}"),
    }
    // ESP, MSR and recovery have no letter.
    assert_eq!(e.state.drives.len(), 1, "{:?}", e.state.drives);
    // The ESP is a clean FAT32 volume.
    let esp = volume_file(&lab, 0, 1);
    let (ok, out) = tool("fsck.vfat", &["-n", esp.to_str().unwrap()]);
    assert!(ok, "{out}");
    let (ok, out) = tool("minfo", &["-i", esp.to_str().unwrap(), "::"]);
    assert!(ok && out.contains("FAT32"), "{out}");
}

#[test]
fn the_wizards_bios_partition_step_makes_an_mbr_disk_with_an_active_system_partition() {
    let lab = Lab::new("bios", &[(GIB, false)]);
    let (o, e, log) = lab.run(partition_steps(false));
    assert_eq!(o, RunOutcome::Succeeded, "{log}");
    let (ok, out) = tool("sfdisk", &["-d", lab.disk(0).to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(out.contains("label: dos"), "{out}");
    let lines: Vec<String> = out
        .lines()
        .filter(|l| l.contains("start="))
        .map(|l| l.replace(' ', ""))
        .collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].contains("type=7") && lines[0].contains("bootable"),
        "{out}"
    );
    assert!(lines[0].contains(&format!("size={}", 350 * 2048)), "{out}");
    assert!(lines[2].contains("type=27"), "{out}");
    // C: is Windows (partition 2); System Reserved gets the next letter.
    assert_eq!(e.env.get("OSDisk"), Some("C:"));
    let part = |l: char| match e.state.drives.get(&l) {
        Some(VolumeRef::Partition { partition, .. }) => *partition,
        other => panic!("{l}: {other:?}"),
    };
    assert_eq!(part('C'), 2);
    assert_eq!(part('D'), 1);
    let t = tasq_disk::list_volumes(&tasq_disk::Disk::open(lab.disk(0), false).unwrap()).unwrap();
    let labels: Vec<_> = t
        .volumes
        .iter()
        .map(|v| v.label.clone().unwrap_or_default())
        .collect();
    assert_eq!(labels, ["System Reserved", "Windows", "Recovery"]);
}

#[test]
fn bad_partition_variables_fail_naming_the_variable_and_leave_the_disk_alone() {
    for (var, value, expect) in [
        ("OSDPartitions2SizeUnits", "TB", "OSDPartitions2SizeUnits"),
        ("OSDPartitions0Type", "Logical", "OSDPartitions0Type"),
        ("OSDPartitionStyle", "APM", "OSDPartitionStyle"),
        ("OSDDiskIndex", "3", "OSDDiskIndex"),
        ("OSDPartitions2Size", "-5", "OSDPartitions2Size"),
    ] {
        // Every bad value is refused before the layout is planned, so a
        // small disk full of a pattern shows any write.
        let lab = Lab::new("uefi", &[(64 << 20, false)]);
        std::fs::write(lab.disk(0), vec![0xA5u8; 64 << 20]).unwrap();
        let before = sha(&lab.disk(0));
        let mut steps = partition_steps(true);
        steps[0].set_var(var, None, value);
        let (o, _, log) = lab.run(steps);
        assert!(matches!(o, RunOutcome::Failed { .. }), "{var}: {o:?}");
        assert!(log.contains(expect), "{var}: {log}");
        assert_eq!(before, sha(&lab.disk(0)), "{var}: the disk was written");
    }
}

#[test]
fn a_collection_variable_overrides_the_steps_setting() {
    let lab = Lab::new("uefi", &[(GIB, false), (GIB, false)]);
    let (seq, xml) = sequence_of(partition_steps(true));
    let sink = Shared::default();
    let mut e = Engine::start(
        &seq,
        xml.as_bytes(),
        &[("OSDDiskIndex".into(), "1".into(), false)],
        lab.config("state", false, sink.clone()),
    )
    .unwrap();
    assert_eq!(
        e.run("x", false).unwrap(),
        RunOutcome::Succeeded,
        "{}",
        messages(&sink)
    );
    let t1 = tasq_disk::read_table(&tasq_disk::Disk::open(lab.disk(1), false).unwrap()).unwrap();
    assert_eq!(t1.entries.len(), 4);
    let t0 = tasq_disk::read_table(&tasq_disk::Disk::open(lab.disk(0), false).unwrap()).unwrap();
    assert!(t0.entries.is_empty());
}

#[test]
fn usb_disks_are_refused() {
    let lab = Lab::new("uefi", &[(GIB, true)]);
    let before = sha(&lab.disk(0));
    let (o, _, log) = lab.run(partition_steps(true));
    assert!(matches!(o, RunOutcome::Failed { .. }));
    assert!(log.contains("USB"), "{log}");
    assert_eq!(before, sha(&lab.disk(0)));
}

#[test]
fn discovery_letters_existing_volumes_from_c_skipping_esp_msr_and_recovery() {
    let lab = Lab::new("uefi", &[(GIB, false), (GIB / 2, false)]);
    let d0 = tasq_disk::Disk::open(lab.disk(0), true).unwrap();
    tasq_disk::partition_and_format(&d0, &tasq_disk::Layout::uefi()).unwrap();
    let d1 = tasq_disk::Disk::open(lab.disk(1), true).unwrap();
    let data = tasq_disk::Layout::from_toml(
        "style = \"mbr\"\n[[partition]]\ntype = \"Primary\"\nfile_system = \"FAT32\"\nsize = 100\nunit = \"MB\"\nvolume_name = \"DATA\"\n",
        "t",
    )
    .unwrap();
    tasq_disk::partition_and_format(&d1, &data).unwrap();
    let (drives, problems) = tasq_engine::volumes::discover(&lab.computer);
    assert!(problems.is_empty(), "{problems:?}");
    let got: Vec<(char, usize, u32)> = drives
        .iter()
        .map(|(l, v)| match v {
            VolumeRef::Partition {
                disk, partition, ..
            } => (*l, *disk, *partition),
            _ => panic!(),
        })
        .collect();
    assert_eq!(got, vec![('C', 0, 3), ('D', 1, 1)]);
    // The runner does it when a run starts without letters.
    let (o, e, log) = lab.run(vec![]);
    assert_eq!(o, RunOutcome::Succeeded, "{log}");
    assert_eq!(e.state.drives, drives);
}

fn apply_step(image_id: &str) -> Step {
    wizard_steps(image_id)
        .into_iter()
        .find(|s| s.type_name() == types::APPLY_OS)
        .unwrap()
}

#[test]
fn apply_to_a_host_directory_keeps_the_state_folder_and_sets_the_target_drive() {
    let lab = Lab::new("uefi", &[]);
    let id = lab.add_sample_os();
    let c = lab.dir.path().join("C");
    std::fs::create_dir_all(c.join("_SMSTaskSequence")).unwrap();
    std::fs::write(c.join("_SMSTaskSequence/keep.txt"), b"k").unwrap();
    std::fs::create_dir_all(c.join("OldWindows")).unwrap();
    std::fs::write(c.join("stale.txt"), b"x").unwrap();
    let (seq, xml) = sequence_of(vec![apply_step(&id)]);
    let sink = Shared::default();
    let mut e = lab.engine(&seq, &xml, sink.clone());
    e.state
        .drives
        .insert('C', VolumeRef::HostDir { path: c.clone() });
    let o = e.run("x", false).unwrap();
    let log = messages(&sink);
    assert_eq!(o, RunOutcome::Succeeded, "{log}");
    assert!(c.join("Windows/System32/config/SOFTWARE").is_file());
    assert!(c.join("_SMSTaskSequence/keep.txt").is_file());
    assert!(!c.join("stale.txt").exists() && !c.join("OldWindows").exists());
    assert_eq!(e.env.get("OSDTargetSystemDrive"), Some("C:"));
    assert!(log.contains("not a partition of a disk"), "{log}");
}

#[test]
fn apply_checks_package_index_and_destination_before_writing() {
    let lab = Lab::new("uefi", &[]);
    let id = lab.add_sample_os();
    let c = lab.dir.path().join("C");
    std::fs::create_dir_all(&c).unwrap();
    std::fs::write(c.join("stale.txt"), b"x").unwrap();
    let with = |id: &str, var: &str, value: &str| {
        let mut s = apply_step(id);
        s.set_var(var, None, value);
        s
    };
    let cases: Vec<(Step, &str)> = vec![
        (apply_step("TSQ00042"), "ImagePackageID=TSQ00042"),
        (with(&id, "OSDImageIndex", "2"), "OSDImageIndex=2"),
        (with(&id, "OSDImageIndex", "zero"), "OSDImageIndex"),
        (
            with(&id, "DestinationLogicalDrive", "E:"),
            "DestinationLogicalDrive: no volume has the drive letter E:",
        ),
        (
            with(&id, "DestinationVariable", "OSDisk"),
            "DestinationVariable=OSDisk",
        ),
    ];
    for (step, expect) in cases {
        let (seq, xml) = sequence_of(vec![step]);
        let sink = Shared::default();
        let mut e = lab.engine(&seq, &xml, sink.clone());
        e.state
            .drives
            .insert('C', VolumeRef::HostDir { path: c.clone() });
        let o = e.run("x", false).unwrap();
        let log = messages(&sink);
        assert!(matches!(o, RunOutcome::Failed { .. }), "{expect}: {log}");
        assert!(log.contains(expect), "{expect}: {log}");
        assert!(
            c.join("stale.txt").exists(),
            "{expect}: the destination was wiped"
        );
    }
}

#[test]
fn the_state_folder_is_copied_to_smstsmdatapath_when_the_run_stops() {
    let lab = Lab::new("uefi", &[]);
    let c = lab.dir.path().join("C");
    std::fs::create_dir_all(&c).unwrap();
    let xml = common::seq(&[common::setvar("S", "X", "1", "")]);
    let seq = tasq_tasksequence::import_str(&xml).unwrap();
    let sink = Shared::default();
    let mut e = Engine::start(
        &seq,
        xml.as_bytes(),
        &[(
            "_SMSTSMDataPath".into(),
            "C:\\_SMSTaskSequence".into(),
            false,
        )],
        lab.config("state", false, sink.clone()),
    )
    .unwrap();
    e.state
        .drives
        .insert('C', VolumeRef::HostDir { path: c.clone() });
    assert_eq!(e.run("x", false).unwrap(), RunOutcome::Succeeded);
    let copied = c.join("_SMSTaskSequence");
    let host: Vec<_> = std::fs::read_dir(lab.dir.path().join("state"))
        .unwrap()
        .map(|d| d.unwrap().file_name())
        .collect();
    assert!(!host.is_empty());
    for name in host {
        assert!(copied.join(&name).exists(), "{name:?} not copied");
    }
    assert!(messages(&sink).contains("Copied the task sequence state"));
}

#[test]
fn the_bcd_store_holds_bootmgr_and_a_loader_read_back_with_hivex_tools() {
    use tasq_engine::steps::boot::{self, BcdRequest, DeviceId};
    let d = tempfile::tempdir().unwrap();
    let tree = d.path().join("tree");
    sample_os_tree(&tree, Architecture::X64).unwrap();
    let staged = d.path().join("staged");
    std::fs::create_dir_all(&staged).unwrap();
    // What the apply step extracts: Windows\Boot and the template.
    Command::new("cp")
        .arg("-r")
        .arg(tree.join("Windows/Boot"))
        .arg(&staged)
        .status()
        .unwrap();
    std::fs::copy(
        tree.join("Windows/System32/config/BCD-Template"),
        staged.join("BCD-Template"),
    )
    .unwrap();
    for (fw, store, loader_path) in [
        (
            tasq_engine::computer::Firmware::Uefi,
            "EFI/Microsoft/Boot/BCD",
            "\\Windows\\system32\\winload.efi",
        ),
        (
            tasq_engine::computer::Firmware::Bios,
            "Boot/BCD",
            "\\Windows\\system32\\winload.exe",
        ),
    ] {
        let esp = d.path().join(format!("sys-{fw:?}"));
        std::fs::create_dir_all(&esp).unwrap();
        let mut fs = tasq_volume::HostDirFs::new(&esp).unwrap();
        let req = BcdRequest {
            firmware: fw,
            system: DeviceId::Gpt {
                disk_guid: [0x11; 16],
                partition_guid: [0x22; 16],
            },
            os: DeviceId::Mbr {
                signature: 0xdead_beef,
                offset: 0x0010_0000,
            },
            description: "Windows".into(),
            locale: "en-US".into(),
        };
        let rep = boot::make_bootable(&mut fs, &staged, Architecture::X64, &req).unwrap();
        let bcd = esp.join(store);
        assert!(bcd.is_file(), "{fw:?}");
        if fw == tasq_engine::computer::Firmware::Uefi {
            assert!(esp.join("EFI/Microsoft/Boot/bootmgfw.efi").is_file());
            assert!(esp.join("EFI/Boot/bootx64.efi").is_file());
        } else {
            assert!(esp.join("bootmgr").is_file());
            assert!(esp.join("Boot/memtest.exe").is_file());
        }
        let get = |key: &str| {
            let (ok, out) = tool("hivexget", &[bcd.to_str().unwrap(), key]);
            assert!(ok, "{key}: {out}");
            out
        };
        let bm = get(&format!("\\Objects\\{}\\Description", boot::BOOTMGR_GUID));
        assert!(bm.contains("\"Type\"=dword:10100002"), "{bm}");
        let def = get(&format!(
            "\\Objects\\{}\\Elements\\23000003",
            boot::BOOTMGR_GUID
        ));
        // hivexget decodes strings.
        assert!(
            def.contains(&format!("\"Element\"=\"{}\"", rep.loader)),
            "{def}"
        );
        let ld = get(&format!("\\Objects\\{}\\Description", rep.loader));
        assert!(ld.contains("\"Type\"=dword:10200003"), "{ld}");
        let path = get(&format!("\\Objects\\{}\\Elements\\12000002", rep.loader));
        assert!(
            path.contains(&format!(
                "\"Element\"=\"{}\"",
                loader_path.replace('\\', "\\\\")
            )) || path.contains(loader_path),
            "{path}"
        );
        let dev = get(&format!("\\Objects\\{}\\Elements\\21000001", rep.loader));
        assert!(dev.contains("hex(3):"), "{dev}");
        // The signature deadbeef at 0x38, the offset at 0x20.
        assert!(dev.replace("\\\n  ", "").contains("ef,be,ad,de"), "{dev}");
        // hivexml parses the whole store.
        let (ok, xml) = tool("hivexml", &[bcd.to_str().unwrap()]);
        assert!(ok && xml.contains("Objects"), "{xml}");
    }
}

/// Copies the bytes of a partition into a file of its own (zero MiBs
/// left as holes) for tools that take a volume file.
fn partition_file(disk: &Path, offset: u64, len: u64, out: &Path) -> PathBuf {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::File::open(disk).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut o = std::fs::File::create(out).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        f.read_exact(&mut buf[..n]).unwrap();
        if buf[..n].iter().all(|b| *b == 0) {
            o.seek(SeekFrom::Current(n as i64)).unwrap();
        } else {
            o.write_all(&buf[..n]).unwrap();
        }
        left -= n as u64;
    }
    o.set_len(len).unwrap();
    out.to_path_buf()
}

fn volume_file(lab: &Lab, disk: usize, partition: u32) -> PathBuf {
    let d = tasq_disk::Disk::open(lab.disk(disk), false).unwrap();
    let t = tasq_disk::read_table(&d).unwrap();
    let e = t.entries.iter().find(|e| e.index == partition).unwrap();
    partition_file(
        &lab.disk(disk),
        e.offset(),
        e.size(),
        &lab.dir.path().join(format!("vol-{disk}-{partition}.img")),
    )
}

fn ntfs_list(vol: &Path, path: &str) -> String {
    let (ok, out) = tool("ntfsls", &["-f", "-p", path, vol.to_str().unwrap()]);
    assert!(ok, "{out}");
    out
}

#[test]
fn a_capture_of_several_volumes_is_applied_image_n_to_volume_n() {
    let lab = Lab::new("bios", &[(GIB, false)]);
    let d = tasq_disk::Disk::open(lab.disk(0), true).unwrap();
    let layout = tasq_disk::Layout::from_toml(
        "style = \"mbr\"\n[[partition]]\ntype = \"Primary\"\nfile_system = \"NTFS\"\nsize = 200\nunit = \"MB\"\nvolume_name = \"One\"\n[[partition]]\ntype = \"Primary\"\nfile_system = \"NTFS\"\nvolume_name = \"Two\"\n",
        "t",
    )
    .unwrap();
    tasq_disk::partition_and_format(&d, &layout).unwrap();
    drop(d);
    // A WIM of two volume images named as a disk capture names them.
    let t1 = lab.dir.path().join("t1");
    let t2 = lab.dir.path().join("t2");
    std::fs::create_dir_all(t1.join("first")).unwrap();
    std::fs::write(t1.join("first/a.txt"), b"one").unwrap();
    std::fs::create_dir_all(t2.join("second")).unwrap();
    std::fs::write(t2.join("second/b.txt"), b"two").unwrap();
    let wim = lab.dir.path().join("cap.wim");
    for (verb, tree, name) in [("capture", &t1, "ref.img:1"), ("append", &t2, "ref.img:2")] {
        let (ok, out) = tool(
            "wimlib-imagex",
            &[verb, tree.to_str().unwrap(), wim.to_str().unwrap(), name],
        );
        assert!(ok, "{out}");
    }
    let id = LocalLibrary::new(&lab.lib)
        .add("os-image", "Captured", &wim, BTreeMap::new())
        .unwrap()
        .id;
    let mut step = apply_step(&id);
    step.set_var("OSDImageIndex", None, "2");
    let (o, e, log) = lab.run(vec![step]);
    // Image 2 holds no Windows: both volumes are applied, then making it
    // bootable fails the step (an OS image that is not one).
    assert!(matches!(o, RunOutcome::Failed { .. }), "{log}");
    assert!(log.contains("cannot be made bootable"), "{log}");
    // Discovery lettered them C: and D:; image 2 (the "OS") is on D:.
    assert_eq!(e.env.get("OSDTargetSystemDrive"), Some("D:"), "{log}");
    let v1 = volume_file(&lab, 0, 1);
    let v2 = volume_file(&lab, 0, 2);
    assert!(ntfs_list(&v1, "/").contains("first"));
    assert!(!ntfs_list(&v1, "/").contains("second"));
    assert!(ntfs_list(&v2, "/second").contains("b.txt"));
    for v in [&v1, &v2] {
        let (ok, out) = tool("ntfsfix", &["-n", v.to_str().unwrap()]);
        assert!(ok, "{out}");
    }
}

/// The GUID text `sgdisk -i` prints, as the bytes a GPT entry holds.
fn guid_bytes(text: &str) -> Vec<u8> {
    let h: String = text.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    let b: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&h[i * 2..i * 2 + 2], 16).unwrap())
        .collect();
    let mut out = Vec::new();
    out.extend(b[0..4].iter().rev());
    out.extend(b[4..6].iter().rev());
    out.extend(b[6..8].iter().rev());
    out.extend(&b[8..16]);
    out
}

/// The value after `label:` in sgdisk's output.
fn sgdisk_field(args: &[&str], label: &str) -> String {
    let (ok, out) = tool("sgdisk", args);
    assert!(ok, "{out}");
    out.lines()
        .find(|l| l.contains(label))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or_else(|| panic!("{label}: {out}"))
        .trim()
        .to_string()
}

fn hex_list(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn hivexget(hive: &Path, key: &str) -> String {
    let (ok, out) = tool("hivexget", &[hive.to_str().unwrap(), key]);
    assert!(ok, "{key}: {out}");
    out.replace("\\\n  ", "").replace("\\\n", "")
}

/// The loader GUID a store's {bootmgr} default names.
fn default_loader(bcd: &Path) -> String {
    let def = hivexget(
        bcd,
        "\\Objects\\{9dea862c-5cdd-4e70-acc1-f32b344d4795}\\Elements\\23000003",
    );
    let start = def.find('{').unwrap();
    def[start..start + 38].to_string()
}

#[test]
fn uefi_wizard_sequence_partitions_applies_and_makes_the_disk_bootable() {
    let lab = Lab::new("uefi", &[(GIB, false)]);
    let id = lab.add_sample_os();
    let (o, e, log) = lab.run(wizard_steps(&id));
    assert_eq!(o, RunOutcome::Succeeded, "{log}");
    assert_eq!(e.env.get("OSDTargetSystemDrive"), Some("C:"));
    let disk = lab.disk(0);
    // Windows on partition 3, checked by ntfs-3g's tools.
    let win = volume_file(&lab, 0, 3);
    let (ok, out) = tool("ntfsfix", &["-n", win.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(ntfs_list(&win, "/Windows/System32/config").contains("SOFTWARE"));
    // The state folder was copied onto C: when the run ended: the journal's
    // snapshot and its record file, the key, the sequence.
    let listing = ntfs_list(&win, "/_SMSTaskSequence");
    for f in [
        "journal.json",
        "journal.records",
        "journal.key",
        "sequence.enc",
    ] {
        assert!(listing.contains(f), "{f} not copied: {listing}\n{log}");
    }
    // The ESP: a clean FAT32 with the boot files and the store.
    let esp = volume_file(&lab, 0, 1);
    let (ok, out) = tool("fsck.vfat", &["-n", esp.to_str().unwrap()]);
    assert!(ok, "{out}");
    let esp_s = esp.to_str().unwrap();
    let (ok, out) = tool("mdir", &["-i", esp_s, "::/EFI/Boot"]);
    assert!(ok && out.to_ascii_lowercase().contains("bootx64"), "{out}");
    let bcd = lab.dir.path().join("BCD.uefi");
    let (ok, out) = tool(
        "mcopy",
        &[
            "-i",
            esp_s,
            "::/EFI/Microsoft/Boot/BCD",
            bcd.to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}");
    let loader = default_loader(&bcd);
    let path = hivexget(&bcd, &format!("\\Objects\\{loader}\\Elements\\12000002"));
    assert!(path.contains("winload.efi"), "{path}");
    // The OS device names partition 3 by its GPT GUID and the disk's GUID.
    let d = disk.to_str().unwrap();
    let part_guid = sgdisk_field(&["-i", "3", d], "Partition unique GUID");
    let disk_guid = sgdisk_field(&["-p", d], "Disk identifier (GUID)");
    let dev = hivexget(&bcd, &format!("\\Objects\\{loader}\\Elements\\21000001"));
    assert!(dev.contains(&hex_list(&guid_bytes(&part_guid))), "{dev}");
    assert!(dev.contains(&hex_list(&guid_bytes(&disk_guid))), "{dev}");
    // {bootmgr}'s device is the ESP (partition 1).
    let esp_guid = sgdisk_field(&["-i", "1", d], "Partition unique GUID");
    let bmdev = hivexget(
        &bcd,
        "\\Objects\\{9dea862c-5cdd-4e70-acc1-f32b344d4795}\\Elements\\11000001",
    );
    assert!(bmdev.contains(&hex_list(&guid_bytes(&esp_guid))), "{bmdev}");
}

#[test]
fn bios_wizard_sequence_writes_bootmgr_the_store_and_mbr_code() {
    let lab = Lab::new("bios", &[(GIB, false)]);
    let id = lab.add_sample_os();
    let (o, e, log) = lab.run(wizard_steps(&id));
    assert_eq!(o, RunOutcome::Succeeded, "{log}");
    assert_eq!(e.env.get("OSDTargetSystemDrive"), Some("C:"));
    let sys = volume_file(&lab, 0, 1);
    let root = ntfs_list(&sys, "/");
    assert!(root.contains("bootmgr"), "{root}");
    let bcd = lab.dir.path().join("BCD.bios");
    let out = Command::new("ntfscat")
        .args(["-f", sys.to_str().unwrap(), "/Boot/BCD"])
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::write(&bcd, &out.stdout).unwrap();
    let loader = default_loader(&bcd);
    let path = hivexget(&bcd, &format!("\\Objects\\{loader}\\Elements\\12000002"));
    assert!(path.contains("winload.exe"), "{path}");
    // The OS device: MBR style, the disk signature, partition 2's offset.
    let mut s0 = [0u8; 512];
    use std::io::Read;
    std::fs::File::open(lab.disk(0))
        .unwrap()
        .read_exact(&mut s0)
        .unwrap();
    let dev = hivexget(&bcd, &format!("\\Objects\\{loader}\\Elements\\21000001"));
    assert!(dev.contains(&hex_list(&s0[440..444])), "{dev}");
    assert!(
        dev.contains(&hex_list(&(718_848u64 * 512).to_le_bytes())),
        "{dev}"
    );
    // syslinux's MBR code, when installed; the warning about the boot sector.
    if let Ok(code) = std::fs::read(tasq_engine::steps::boot::SYSLINUX_MBR) {
        assert_eq!(&s0[..code.len()], &code[..]);
    }
    assert!(log.contains("not made to load bootmgr"), "{log}");
}

#[test]
fn apply_empties_an_ntfs_volume_file_by_file_keeping_the_state_folder() {
    let lab = Lab::new("uefi", &[(GIB, false)]);
    let id = lab.add_sample_os();
    let (o, e, log) = lab.run(partition_steps(true));
    assert_eq!(o, RunOutcome::Succeeded, "{log}");
    // Leftovers on C: and a file in the state folder, written with the
    // volume's own file access.
    let Some(VolumeRef::Partition { offset, len, .. }) = e.state.drives.get(&'C').cloned() else {
        panic!()
    };
    drop(e);
    {
        let mut fs =
            tasq_volume::fs::open_volume(&lab.disk(0), offset, len, tasq_disk::FsType::Ntfs, true)
                .unwrap();
        let p = |s: &str| tasq_volume::VolPath::parse(s).unwrap();
        fs.write_file(&p("_SMSTaskSequence\\keep.txt"), &mut &b"keep"[..])
            .unwrap();
        fs.write_file(&p("Old\\stale.txt"), &mut &b"stale"[..])
            .unwrap();
        fs.flush().unwrap();
    }
    // A second run: discovery finds C: again, the apply step wipes it.
    let mut step = apply_step(&id);
    step.set_var("DestinationLogicalDrive", None, "C:");
    let (seq, xml) = sequence_of(vec![step]);
    let sink = Shared::default();
    let mut e = Engine::start(
        &seq,
        xml.as_bytes(),
        &[],
        lab.config("state2", true, sink.clone()),
    )
    .unwrap();
    let o = e.run("x", false).unwrap();
    let log = messages(&sink);
    assert_eq!(o, RunOutcome::Succeeded, "{log}");
    assert!(log.contains("Wiped"), "{log}");
    let win = volume_file(&lab, 0, 3);
    let root = ntfs_list(&win, "/");
    assert!(!root.contains("Old"), "{root}");
    assert!(root.contains("Windows"), "{root}");
    assert!(ntfs_list(&win, "/_SMSTaskSequence").contains("keep.txt"));
    let (ok, out) = tool("ntfsfix", &["-n", win.to_str().unwrap()]);
    assert!(ok, "{out}");
}
