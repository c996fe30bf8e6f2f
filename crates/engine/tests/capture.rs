//! Capture Operating System Image and Connect to Network Folder, run by the
//! engine on a disk-image reference computer: a GPT disk (FAT32 ESP,
//! NTFS Windows, NTFS recovery, ext4) and a USB disk. The WIM is checked
//! with wimlib-imagex; SMB destinations go to a real Samba server started
//! by the test (see `samba/mod.rs`; needs root, as CI has).

mod common;
mod samba;

use common::{finish, seq, xml_escape, Shared};
use samba::{Samba, PASSWORD, USER};
use std::path::{Path, PathBuf};
use std::process::Command;
use tasq_disk::{
    partition_and_format, Disk, FsKind, Layout, PartKind, PartitionSpec, SizeSpec, Style,
};
use tasq_engine::events::Event;
use tasq_engine::runner::{DiskImageMachine, Engine, EngineConfig, MediaType, RunOutcome};
use tasq_engine::steps::Registry;
use tasq_engine::volumes::VolumeRef;
use tasq_engine::Computer;
use tasq_volume::ntfs::{apply_image_to_ntfs, NtfsVolume};
use tasq_volume::{FatTarget, HostDirSource};
use tasq_wim::apply::ApplyOptions;
use tasq_wim::capture_config::CaptureConfig;
use tasq_wim::reader::Wim;
use tasq_wim::writer::{ImageOptions, WimWriter, WriteOptions};

const MB: u64 = 1 << 20;

fn part(kind: PartKind, fs: Option<FsKind>, mb: u64, name: &str) -> PartitionSpec {
    PartitionSpec {
        kind,
        file_system: fs,
        size: SizeSpec::Mb(mb),
        quick_format: true,
        bootable: false,
        volume_name: name.into(),
        letter_variable: None,
    }
}

/// Puts the tree at `src` onto a volume through a WIM (tasq's own apply).
fn fill(disk: &Path, offset: u64, size: u64, fs: FsKind, src: &Path, work: &Path) {
    let wim = work.join(format!("fill-{offset}.wim"));
    let mut w = WimWriter::create(&wim, WriteOptions::default()).unwrap();
    let mut s = HostDirSource::new(src).unwrap();
    w.add_image(
        &mut s,
        &CaptureConfig::default(),
        &ImageOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    w.finish().unwrap();
    let wim = Wim::open(&wim).unwrap();
    match fs {
        FsKind::Ntfs => {
            let v = NtfsVolume::open(disk, offset, size, true).unwrap();
            apply_image_to_ntfs(&wim, 1, v, &ApplyOptions::default(), &mut |_| {}).unwrap();
        }
        FsKind::Fat32 => {
            let d = Disk::open(disk, true).unwrap();
            let t = FatTarget::new(&d, offset, size, "fat").unwrap();
            tasq_volume::fat::apply::apply_image_to_fat(
                &wim,
                1,
                t,
                &ApplyOptions::default(),
                &mut |_| {},
            )
            .unwrap();
        }
    }
}

fn write_tree(root: &Path, files: &[(&str, Vec<u8>)]) {
    for (p, data) in files {
        let f = root.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, data).unwrap();
    }
}

/// Bytes that do not compress (so the WIM is bigger than the small share).
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The record Setup Windows and ConfigMgr writes.
fn client_json(id: &str) -> Vec<u8> {
    format!("{{\"install_id\":\"{id}\",\"client_guid\":\"GUID:X\",\"site_code\":\"PS1\",\"installed_by\":\"tasq\",\"installed\":\"2026-11-27T08:00:00Z\"}}").into_bytes()
}

struct Reference {
    work: tempfile::TempDir,
    computer: Computer,
}

/// A 400 MB disk image with the three given partitions and a 40 MB
/// fourth one made ext4 (which capture must skip).
fn four_partitions(
    path: &Path,
    style: Style,
    first: [PartitionSpec; 3],
) -> Vec<tasq_disk::CreatedVolume> {
    let disk = Disk::create(path, 400 * MB).unwrap();
    let mut partitions = first.to_vec();
    partitions.push(part(PartKind::Primary, None, 40, "Linux"));
    let vols = partition_and_format(&disk, &Layout { style, partitions }).unwrap();
    drop(disk);
    let ext = &vols[3];
    let st = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-E"])
        .arg(format!("offset={}", ext.offset))
        .arg(path)
        .arg(format!("{}k", ext.size / 1024))
        .status()
        .unwrap();
    assert!(st.success(), "mkfs.ext4");
    vols
}

/// The reference computer: disk 0 GPT with ESP (FAT32), Windows (NTFS,
/// `windows_tree` decides whether it has `Windows\System32`), Recovery
/// (NTFS) and an ext4 partition; disk 1 a USB disk with one NTFS volume.
fn reference(with_system32: bool) -> Reference {
    reference_with(with_system32, None)
}

/// As [`reference`], with a ConfigMgr client record on the Windows volume.
fn reference_with(with_system32: bool, client: Option<&str>) -> Reference {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let d0 = w.join("disk0.img");
    let vols = four_partitions(
        &d0,
        Style::Gpt,
        [
            part(PartKind::Efi, Some(FsKind::Fat32), 100, "System"),
            part(PartKind::Primary, Some(FsKind::Ntfs), 120, "Windows"),
            part(PartKind::Recovery, Some(FsKind::Ntfs), 60, "Recovery"),
        ],
    );
    let win_dir = if with_system32 {
        "Windows/System32"
    } else {
        "Data"
    };
    type Tree = Vec<(String, Vec<u8>)>;
    let trees: [(&str, Tree); 3] = [
        (
            "esp",
            vec![("EFI/Boot/bootx64.efi".into(), b"MZ boot manager".to_vec())],
        ),
        (
            "win",
            vec![
                (format!("{win_dir}/config.txt"), b"windows config".to_vec()),
                ("Users/Public/noise.bin".into(), noise(3 << 20, 7)),
                ("pagefile.sys".into(), vec![0u8; 4096]),
                (
                    "_SMSTaskSequence/journal.key".into(),
                    b"never in an image".to_vec(),
                ),
            ]
            .into_iter()
            .chain(client.map(|id| ("Windows/CCM/tasq-client.json".to_string(), client_json(id))))
            .collect(),
        ),
        (
            "rec",
            vec![("Recovery/WindowsRE/winre.txt".into(), b"winre".to_vec())],
        ),
    ];
    for (i, (name, files)) in trees.iter().enumerate() {
        let src = w.join(name);
        let f: Vec<(&str, Vec<u8>)> = files.iter().map(|(p, d)| (p.as_str(), d.clone())).collect();
        write_tree(&src, &f);
        let v = &vols[i];
        fill(&d0, v.offset, v.size, v.file_system.unwrap(), &src, w);
    }

    let d1 = w.join("usb.img");
    let usb = Disk::create(&d1, 64 * MB).unwrap();
    partition_and_format(
        &usb,
        &Layout {
            style: Style::Gpt,
            partitions: vec![part(PartKind::Primary, Some(FsKind::Ntfs), 30, "Stick")],
        },
    )
    .unwrap();
    drop(usb);
    let toml = format!(
        "name = \"REF01\"\nfirmware = \"uefi\"\n[[disks]]\npath = \"{}\"\n[[disks]]\npath = \"{}\"\nusb = true\n",
        d0.display(),
        d1.display()
    );
    let computer = Computer::from_toml(&toml, Path::new("computer.toml")).unwrap();
    Reference { work, computer }
}

fn capture_step(dest: &str, account: &str, extra: &[(&str, &str)]) -> String {
    let mut vars = vec![
        (
            "OSDCaptureDestination",
            "CaptureDestination",
            dest.to_string(),
        ),
        ("OSDCaptureAccount", "CaptureUsername", account.to_string()),
    ];
    for (n, v) in extra {
        let prop = n.trim_start_matches("OSD");
        vars.push((n, prop, v.to_string()));
    }
    let body: String = vars
        .iter()
        .map(|(n, p, v)| {
            format!(
                "<variable name=\"{n}\" property=\"{p}\">{}</variable>",
                xml_escape(v)
            )
        })
        .collect();
    format!("<step type=\"SMS_TaskSequence_CaptureSystemImageAction\" name=\"Capture the Reference Machine\" runIn=\"WinPE\"><action>osdcapturesystemimage.exe</action><defaultVarList>{body}</defaultVarList></step>")
}

fn connect_step(path: &str, letter: &str, account: &str) -> String {
    format!("<step type=\"SMS_TaskSequence_ConnectNetworkFolderAction\" name=\"Connect to Network Folder\" runIn=\"WinPEandFullOS\"><action>smsnetuse.exe %SMSConnectNetworkFolderPath%</action><defaultVarList><variable name=\"SMSConnectNetworkFolderDriveLetter\" property=\"DriveLetter\">{letter}</variable><variable name=\"SMSConnectNetworkFolderPath\" property=\"Path\">{}</variable><variable name=\"SMSConnectNetworkFolderAccount\" property=\"Username\">{}</variable></defaultVarList></step>", xml_escape(path), xml_escape(account))
}

struct Run {
    outcome: RunOutcome,
    log: String,
    events: Vec<Event>,
}

fn run(
    r: &Reference,
    steps: &[String],
    vars: &[(&str, &str, bool)],
    drives: &[(char, PathBuf)],
    media: MediaType,
) -> Run {
    let state = tempfile::tempdir_in(r.work.path()).unwrap();
    let xml = seq(steps);
    let s = tasq_tasksequence::import_str(&xml).unwrap();
    let sink = Shared::default();
    let cfg = EngineConfig {
        computer: r.computer.clone(),
        state_dir: state.path().to_path_buf(),
        media,
        registry: Registry::standard(),
        machine: Box::new(DiskImageMachine {
            computer_file: "computer.toml".into(),
        }),
        content: None,
        sinks: vec![Box::new(sink.clone())],
        package_id: "TSQ00000".into(),
    };
    let vars: Vec<(String, String, bool)> = vars
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), *c))
        .collect();
    let mut e = Engine::start(&s, xml.as_bytes(), &vars, cfg).unwrap();
    for (l, p) in drives {
        e.state
            .drives
            .insert(*l, VolumeRef::HostDir { path: p.clone() });
    }
    let outcome = e.run("Test", false).unwrap();
    let log = std::fs::read_to_string(state.path().join("smsts.log")).unwrap_or_default();
    let ran = finish(e, outcome, sink);
    // Capture's working files live in the state dir; none may be left.
    let leftovers = Samba::files(&state.path().join("capture"));
    assert!(
        leftovers.is_empty(),
        "local temporary WIMs left: {leftovers:?}"
    );
    Run {
        outcome: ran.outcome,
        log,
        events: ran.events,
    }
}

/// The log plus every message and error the run reported.
fn all_text(r: &Run) -> String {
    let mut t = r.log.clone();
    for e in &r.events {
        match e {
            Event::Message { text, .. } => t.push_str(text),
            Event::StepFailed { error, .. } => t.push_str(error),
            other => t.push_str(&format!("{other:?}")),
        }
        t.push('\n');
    }
    t
}

fn wimlib(args: &[&str], wim: &Path) -> String {
    let o = Command::new("wimlib-imagex")
        .arg(args[0])
        .arg(wim)
        .args(&args[1..])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "wimlib-imagex {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The captured WIM: 3 images (ESP, Windows, Recovery) in partition order,
/// verified and listed by wimlib-imagex, the default exclusions applied,
/// and the step's description/version/creator recorded.
fn check_wim(wim: &Path) {
    let v = wimlib(&["verify"], wim);
    assert!(v.contains("successfully verified"), "{v}");
    let info = wimlib(&["info"], wim);
    assert!(info.contains("Image Count:    3"), "{info}");
    assert!(info.contains("Compression:    LZX"), "{info}");
    assert!(info.contains("REF01 disk 0 partition 1"), "{info}");
    assert!(info.contains("REF01 disk 0 partition 2"), "{info}");
    assert!(info.contains("REF01 disk 0 partition 3"), "{info}");
    assert!(info.contains("(NTFS, label Windows)"), "{info}");
    assert!(info.contains("Reference build 42"), "{info}");
    let esp = wimlib(&["dir", "1"], wim);
    assert!(esp.contains("/EFI/Boot/bootx64.efi"), "{esp}");
    let win = wimlib(&["dir", "2"], wim);
    assert!(win.contains("/Users/Public/noise.bin"), "{win}");
    assert!(!win.contains("pagefile.sys"), "default exclusions: {win}");
    assert!(
        !win.contains("_SMSTaskSequence"),
        "engine folder captured: {win}"
    );
    let rec = wimlib(&["dir", "3"], wim);
    assert!(rec.contains("/Recovery/WindowsRE/winre.txt"), "{rec}");
    let xml_path = wim.with_extension("xml");
    let o = Command::new("wimlib-imagex")
        .arg("info")
        .arg(wim)
        .arg("--extract-xml")
        .arg(&xml_path)
        .status()
        .unwrap();
    assert!(o.success());
    let raw = std::fs::read(&xml_path).unwrap();
    let u16s: Vec<u16> = raw
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let xml = String::from_utf16_lossy(&u16s);
    assert!(xml.contains("<IMAGEVERSION>10.0.1</IMAGEVERSION>"), "{xml}");
    assert!(
        xml.contains("<IMAGECREATOR>Build Team</IMAGECREATOR>"),
        "{xml}"
    );
}

const META: [(&str, &str); 3] = [
    ("OSDImageDescription", "Reference build 42"),
    ("OSDImageVersion", "10.0.1"),
    ("OSDImageCreator", "Build Team"),
];

#[test]
fn capture_to_local_path_replaces_existing_wim() {
    let r = reference(true);
    let out = r.work.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let wim = out.join("ref.wim");
    std::fs::write(&wim, b"an old capture").unwrap();
    let ran = run(
        &r,
        &[capture_step(&wim.display().to_string(), "", &META)],
        &[],
        &[],
        MediaType::Boot,
    );
    let text = all_text(&ran);
    assert_eq!(ran.outcome, RunOutcome::Succeeded, "{text}");
    check_wim(&wim);
    // ext4 and every USB volume are skipped, with the reason in the log.
    assert!(
        text.contains("Skipping partition 4 of disk 0 (ext4)"),
        "{text}"
    );
    assert!(
        text.contains("Skipping partition 1 of disk 1 (NTFS)"),
        "{text}"
    );
    assert!(text.contains("USB"), "{text}");
    // Only the WIM (and wimlib's XML dump) are in the folder: no temporary.
    assert_eq!(Samba::files(&out), ["ref.wim", "ref.xml"]);
}

#[test]
fn capture_to_unc_share_on_samba() {
    let r = reference(true);
    let smb = Samba::start();
    std::fs::create_dir_all(smb.images.join("caps")).unwrap();
    std::fs::write(smb.images.join("caps/ref.wim"), b"old").unwrap();
    let ran = run(
        &r,
        &[capture_step(
            &smb.unc("images", "caps\\ref.wim"),
            &format!("TASQ\\{USER}"),
            &META,
        )],
        &[("OSDCaptureAccountPassword", PASSWORD, true)],
        &[],
        MediaType::Boot,
    );
    let text = all_text(&ran);
    assert_eq!(ran.outcome, RunOutcome::Succeeded, "{text}");
    assert!(!text.contains(PASSWORD), "password in the log");
    // The old file was replaced by the complete WIM; no temporary left.
    assert_eq!(Samba::files(&smb.images.join("caps")), ["ref.wim"]);
    let copy = r.work.path().join("fetched.wim");
    std::fs::copy(smb.images.join("caps/ref.wim"), &copy).unwrap();
    check_wim(&copy);
}

#[test]
fn wrong_password_fails_before_any_capture_work() {
    let r = reference(true);
    let smb = Samba::start();
    let ran = run(
        &r,
        &[capture_step(
            &format!("smb://127.0.0.1:{}/images/ref.wim", smb.port),
            USER,
            &[],
        )],
        &[("OSDCaptureAccountPassword", "not-the-password", true)],
        &[],
        MediaType::Boot,
    );
    let text = all_text(&ran);
    assert!(matches!(ran.outcome, RunOutcome::Failed { .. }), "{text}");
    assert!(text.contains("access denied for account tasqcap"), "{text}");
    assert!(
        text.contains(&format!("\\\\127.0.0.1:{}\\images", smb.port)),
        "{text}"
    );
    assert!(!text.contains("not-the-password"), "password in the log");
    assert!(
        !text.contains("Capturing partition"),
        "capture started: {text}"
    );
    assert!(Samba::files(&smb.images).is_empty());
}

#[test]
fn missing_password_and_bad_account_are_named() {
    let r = reference(true);
    let bad = run(
        &r,
        &[capture_step("\\\\srv\\share\\ref.wim", "A\\B\\C", &[])],
        &[("OSDCaptureAccountPassword", "x", true)],
        &[],
        MediaType::Boot,
    );
    assert!(
        all_text(&bad).contains("OSDCaptureAccount:"),
        "{}",
        all_text(&bad)
    );
    let nopw = run(
        &r,
        &[capture_step("\\\\srv\\share\\ref.wim", "bob", &[])],
        &[],
        &[],
        MediaType::Boot,
    );
    assert!(all_text(&nopw).contains("OSDCaptureAccountPassword:"));
    let dest = run(
        &r,
        &[capture_step("\\\\srv\\share\\ref.txt", "bob", &[])],
        &[("OSDCaptureAccountPassword", "x", true)],
        &[],
        MediaType::Boot,
    );
    assert!(all_text(&dest).contains("OSDCaptureDestination:"));
}

#[test]
fn share_full_leaves_no_wim_at_the_destination() {
    let r = reference(true);
    let smb = Samba::start();
    std::fs::write(smb.small.join("ref.wim"), b"previous").unwrap();
    let ran = run(
        &r,
        &[capture_step(&smb.unc("small", "ref.wim"), USER, &META)],
        &[("OSDCaptureAccountPassword", PASSWORD, true)],
        &[],
        MediaType::Boot,
    );
    let text = all_text(&ran);
    assert!(matches!(ran.outcome, RunOutcome::Failed { .. }), "{text}");
    assert!(text.contains("writing"), "{text}");
    // The earlier file is untouched and the temporary is gone.
    assert_eq!(Samba::files(&smb.small), ["ref.wim"]);
    assert_eq!(
        std::fs::read(smb.small.join("ref.wim")).unwrap(),
        b"previous"
    );
}

#[test]
fn connect_network_folder_maps_a_drive_for_the_capture() {
    let r = reference(true);
    let smb = Samba::start();
    std::fs::create_dir_all(smb.images.join("base/caps")).unwrap();
    let ran = run(
        &r,
        &[
            connect_step(&smb.unc("images", "base"), "Z:", USER),
            capture_step("Z:\\caps\\ref.wim", "", &META),
        ],
        &[("SMSConnectNetworkFolderPassword", PASSWORD, true)],
        &[],
        MediaType::Boot,
    );
    let text = all_text(&ran);
    assert_eq!(ran.outcome, RunOutcome::Succeeded, "{text}");
    assert!(text.contains("Connected Z: to"), "{text}");
    let copy = r.work.path().join("z.wim");
    std::fs::copy(smb.images.join("base/caps/ref.wim"), &copy).unwrap();
    check_wim(&copy);

    let bad = run(
        &r,
        &[connect_step(&smb.unc("images", "base"), "Y:", USER)],
        &[("SMSConnectNetworkFolderPassword", "wrong", true)],
        &[],
        MediaType::Boot,
    );
    let t = all_text(&bad);
    assert!(matches!(bad.outcome, RunOutcome::Failed { .. }), "{t}");
    assert!(t.contains("access denied"), "{t}");
}

#[test]
fn connection_dropped_mid_upload_leaves_nothing_at_the_destination() {
    use tasq_engine::steps::capture::dest::{Account, SmbLocation};
    use tasq_engine::steps::capture::smb::SmbShare;
    let mut smb = Samba::start();
    std::fs::write(smb.images.join("ref.wim"), b"previous").unwrap();
    let loc = SmbLocation::parse(&smb.unc("images", "ref.wim")).unwrap();
    let share = SmbShare::connect(&loc, &Account::parse(USER).unwrap(), PASSWORD).unwrap();
    let temp = vec![".ref.wim.tasq-test".to_string()];
    share.create_new(&temp).unwrap();
    let data = noise(8 << 20, 3);
    let mut killed = false;
    let err = share
        .upload(
            &mut data.as_slice(),
            data.len() as u64,
            &temp,
            &["ref.wim".to_string()],
            &mut |done| {
                if done >= 2 << 20 && !killed {
                    killed = true;
                    smb.kill();
                }
            },
        )
        .unwrap_err();
    assert!(killed);
    assert!(err.contains("ref.wim"), "{err}");
    // The server is gone, so the temporary could not be removed by the
    // client; the destination name still holds the previous file.
    assert_eq!(
        std::fs::read(smb.images.join("ref.wim")).unwrap(),
        b"previous"
    );
}

#[test]
fn guard_refuses_a_second_capture_unless_the_client_was_reinstalled() {
    // The Windows volume is a host directory here (C:); the disk's NTFS
    // volume has no Windows\System32.
    let r = reference(false);
    let c = r.work.path().join("C");
    let client = |id: &str| {
        write_tree(
            &c,
            &[
                ("Windows/System32/ntdll.dll", b"MZ".to_vec()),
                ("Windows/CCM/tasq-client.json", client_json(id)),
            ],
        )
    };
    client("install-1");
    let out = r.work.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let wim = out.join("ref.wim");
    let step = capture_step(&wim.display().to_string(), "", &META);
    let first = run(
        &r,
        std::slice::from_ref(&step),
        &[],
        &[('C', c.clone())],
        MediaType::Boot,
    );
    assert_eq!(first.outcome, RunOutcome::Succeeded, "{}", all_text(&first));
    let marker: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.join("Windows/CCM/tasq-captured.json")).unwrap())
            .unwrap();
    assert_eq!(marker["install_id"], "install-1");
    assert_eq!(marker["destination"], wim.display().to_string());
    let when = marker["captured"].as_str().unwrap().to_string();
    assert!(when.ends_with('Z') && when.len() == 20, "{when}");

    // Same client: refused before any work, saying when and what to do.
    std::fs::remove_file(&wim).unwrap();
    let second = run(
        &r,
        std::slice::from_ref(&step),
        &[],
        &[('C', c.clone())],
        MediaType::Boot,
    );
    let t = all_text(&second);
    assert!(matches!(second.outcome, RunOutcome::Failed { .. }), "{t}");
    assert!(t.contains(&format!("already captured on {when}")), "{t}");
    assert!(t.contains("new reference computer"), "{t}");
    assert!(!t.contains("Capturing partition"), "{t}");
    assert!(!wim.exists());

    // The client was reinstalled (new install id): allowed again.
    client("install-2");
    let third = run(&r, &[step], &[], &[('C', c.clone())], MediaType::Boot);
    assert_eq!(third.outcome, RunOutcome::Succeeded, "{}", all_text(&third));
    check_wim(&wim);
    let marker: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.join("Windows/CCM/tasq-captured.json")).unwrap())
            .unwrap();
    assert_eq!(marker["install_id"], "install-2");
}

#[test]
fn capture_runs_only_in_the_boot_environment() {
    let r = reference(true);
    let wim = r.work.path().join("x.wim");
    let step = capture_step(&wim.display().to_string(), "", &[])
        .replace("runIn=\"WinPE\"", "runIn=\"WinPEandFullOS\"");
    let ran = run(&r, &[step], &[], &[], MediaType::None);
    let t = all_text(&ran);
    assert!(matches!(ran.outcome, RunOutcome::Failed { .. }), "{t}");
    assert!(t.contains("only in the boot environment"), "{t}");
    assert!(!wim.exists());
}

/// The marker as an independent tool reads it: the NTFS partition copied
/// out with dd and the file read with ntfscat.
fn ntfs_file(r: &Reference, index: u32, path: &str) -> Option<Vec<u8>> {
    let d0 = r.work.path().join("disk0.img");
    let v = tasq_volume::disk_capture::disk_volumes(&d0, false)
        .unwrap()
        .into_iter()
        .find(|v| v.index == index)
        .unwrap();
    let part = r.work.path().join("part.img");
    let st = Command::new("dd")
        .arg(format!("if={}", d0.display()))
        .arg(format!("of={}", part.display()))
        .args(["bs=1M", "status=none", "conv=sparse"])
        .arg(format!("skip={}", v.offset / MB))
        .arg(format!("count={}", v.size / MB))
        .status()
        .unwrap();
    assert!(st.success());
    let o = Command::new("ntfscat")
        .arg(&part)
        .arg(path)
        .output()
        .unwrap();
    o.status.success().then_some(o.stdout)
}

#[test]
fn guard_marks_the_ntfs_windows_volume_and_refuses_a_second_capture() {
    let r = reference_with(true, Some("ntfs-install-1"));
    let out = r.work.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let wim = out.join("ref.wim");
    let step = capture_step(&wim.display().to_string(), "", &META);
    let first = run(&r, std::slice::from_ref(&step), &[], &[], MediaType::Boot);
    assert_eq!(first.outcome, RunOutcome::Succeeded, "{}", all_text(&first));
    let m: serde_json::Value = serde_json::from_slice(
        &ntfs_file(&r, 2, "Windows/CCM/tasq-captured.json").expect("marker on NTFS"),
    )
    .unwrap();
    assert_eq!(m["install_id"], "ntfs-install-1");
    // The marker is on the computer, not in the image taken before it.
    assert!(!wimlib(&["dir", "2"], &wim).contains("tasq-captured"));
    check_wim(&wim);

    let second = run(&r, std::slice::from_ref(&step), &[], &[], MediaType::Boot);
    let t = all_text(&second);
    assert!(matches!(second.outcome, RunOutcome::Failed { .. }), "{t}");
    assert!(t.contains("already captured on"), "{t}");

    // Client reinstalled: a new record on the NTFS volume.
    let d0 = r.work.path().join("disk0.img");
    let v = tasq_volume::disk_capture::disk_volumes(&d0, false)
        .unwrap()
        .into_iter()
        .find(|v| v.index == 2)
        .unwrap();
    let mut fs = tasq_volume::open_volume(&d0, v.offset, v.size, v.fs, true).unwrap();
    let p = tasq_volume::VolPath::parse("\\Windows\\CCM\\tasq-client.json").unwrap();
    fs.write_file(&p, &mut client_json("ntfs-install-2").as_slice())
        .unwrap();
    fs.flush().unwrap();
    drop(fs);
    let third = run(&r, &[step], &[], &[], MediaType::Boot);
    assert_eq!(third.outcome, RunOutcome::Succeeded, "{}", all_text(&third));
    let m: serde_json::Value =
        serde_json::from_slice(&ntfs_file(&r, 2, "Windows/CCM/tasq-captured.json").unwrap())
            .unwrap();
    assert_eq!(m["install_id"], "ntfs-install-2");
}

/// The BIOS/MBR layout: System Reserved, Windows and Recovery (all NTFS)
/// become images 1–3 of the WIM; an ext4 partition is skipped.
#[test]
fn capture_of_an_mbr_disk_takes_every_ntfs_volume() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let d0 = w.join("mbr.img");
    let vols = four_partitions(
        &d0,
        Style::Mbr,
        [
            part(PartKind::Primary, Some(FsKind::Ntfs), 60, "System Reserved"),
            part(PartKind::Primary, Some(FsKind::Ntfs), 150, "Windows"),
            part(PartKind::Recovery, Some(FsKind::Ntfs), 60, "Recovery"),
        ],
    );
    let trees: [Vec<(&str, Vec<u8>)>; 3] = [
        vec![("bootmgr", b"boot manager".to_vec())],
        vec![
            ("Windows/System32/config.txt", b"windows".to_vec()),
            ("hiberfil.sys", vec![1u8; 4096]),
        ],
        vec![("Recovery/WindowsRE/winre.txt", b"winre".to_vec())],
    ];
    for (i, files) in trees.iter().enumerate() {
        let src = w.join(format!("t{i}"));
        write_tree(&src, files);
        let v = &vols[i];
        fill(&d0, v.offset, v.size, v.file_system.unwrap(), &src, w);
    }
    let toml = format!(
        "name = \"REF02\"\nfirmware = \"bios\"\n[[disks]]\npath = \"{}\"\n",
        d0.display()
    );
    let computer = Computer::from_toml(&toml, Path::new("computer.toml")).unwrap();
    let r = Reference { work, computer };
    let wim = r.work.path().join("mbr.wim");
    let ran = run(
        &r,
        &[capture_step(&wim.display().to_string(), "", &META)],
        &[],
        &[],
        MediaType::Boot,
    );
    let text = all_text(&ran);
    assert_eq!(ran.outcome, RunOutcome::Succeeded, "{text}");
    assert!(text.contains("(ext4)"), "{text}");
    let v = wimlib(&["verify"], &wim);
    assert!(v.contains("successfully verified"), "{v}");
    let info = wimlib(&["info"], &wim);
    assert!(info.contains("Image Count:    3"), "{info}");
    assert!(wimlib(&["dir", "1"], &wim).contains("/bootmgr"));
    let win = wimlib(&["dir", "2"], &wim);
    assert!(win.contains("/Windows/System32/config.txt"), "{win}");
    assert!(!win.contains("hiberfil.sys"), "{win}");
    assert!(wimlib(&["dir", "3"], &wim).contains("/Recovery/WindowsRE/winre.txt"));
}
