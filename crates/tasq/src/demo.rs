//! `tasq demo`: the main job on a built-in example, with no root and no
//! network. It runs both procedures of the mission on a disk-image
//! reference computer:
//!
//! 1. a sample content library: an OS image built by code from a
//!    Windows-like tree, a boot image, a driver package that matches the
//!    example computer's network adapter, a client package, two
//!    applications and a required software update;
//! 2. the wizard's build-and-capture sequence, made from the example
//!    answers file, run by the engine on a fresh UEFI disk image: it
//!    partitions and formats the disk, applies the OS image and makes it
//!    bootable, writes the unattend file, stages the driver and the client,
//!    and stops at the hand-off into the installed OS (the steps that need
//!    a running Windows are listed, not faked);
//! 3. the custom capture sequence (Capture Operating System Image) on that
//!    disk in the boot environment: every NTFS/FAT32 volume becomes its own
//!    image of `reference.wim`, which is then verified.
//!
//! Everything lands under `--out`; the paths are printed at the end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tasq_engine::computer::{Architecture, Computer};
use tasq_engine::content::{wim_images, ContentLibrary, LocalLibrary};
use tasq_engine::events::{Event, EventSink};
use tasq_engine::log::LogSink;
use tasq_engine::runner::{DiskImageMachine, Engine, EngineConfig, Instr, MediaType, RunOutcome};
use tasq_engine::sample::{sample_os_tree, sample_os_wim};
use tasq_engine::steps::Registry;
use tasq_tasksequence::model::Item;
use tasq_tasksequence::steps::{CaptureOsImage, StepKind};
use tasq_tasksequence::templates::{self, PackageInfo};
use tasq_tasksequence::wizard::{self, Answers};
use tasq_tasksequence::ExportOptions;

const ANSWERS: &str = include_str!("../../../examples/build-and-capture.answers.toml");
/// The example computer's network adapter (examples/computer.toml).
const NIC_PNP_ID: &str = "PCI\\VEN_8086&DEV_100E&SUBSYS_001E8086&REV_02";
const COLLECTION: &str = "SMS00001";

/// Files and folders the demo writes under `--out` (removed first, so a
/// second run starts from a fresh computer; nothing else there is touched).
const OWNED: [&str; 9] = [
    "content",
    "work",
    "disk0.img",
    "computer.toml",
    "build-and-capture.xml",
    "capture.xml",
    "state-build",
    "state-capture",
    "reference.wim",
];

/// Prints the engine's progress as the CLI does.
struct Printer;

impl EventSink for Printer {
    fn event(&mut self, e: &Event) {
        match e {
            Event::StepStart { n, of, name, .. } => println!("   step {n:>2} of {of}: {name}"),
            Event::StepSkipped { name, reason, .. } => {
                println!("   skipped: {name} ({reason})")
            }
            Event::GroupSkipped { name, reason, .. } => {
                println!("   skipped group: {name} ({reason})")
            }
            Event::StepFailed { name, error, .. } => println!("   FAILED: {name}: {error}"),
            Event::RebootRequested { name, target } => {
                println!("   {name} restarts the computer ({target})")
            }
            _ => {}
        }
    }
}

fn write(path: &Path, data: &[u8]) -> Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    std::fs::write(path, data).with_context(|| format!("writing {}", path.display()))
}

fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The sample driver: an INF for the example computer's Intel PRO/1000 MT
/// adapter (with its .sys and .cat named by the INF).
const SAMPLE_INF: &str = "; Sample driver package made by `tasq demo` (not a real driver).\r\n\
[Version]\r\n\
Signature   = \"$WINDOWS NT$\"\r\n\
Class       = Net\r\n\
ClassGuid   = {4d36e972-e325-11ce-bfc1-08002be10318}\r\n\
Provider    = %Provider%\r\n\
CatalogFile = e1000demo.cat\r\n\
DriverVer   = 06/21/2024,12.19.2.45\r\n\
\r\n\
[Manufacturer]\r\n\
%Intel% = Intel, NTamd64.10.0, NTx86.10.0\r\n\
\r\n\
[Intel.NTamd64.10.0]\r\n\
%E100ENC% = E100E.ndi, PCI\\VEN_8086&DEV_100E&SUBSYS_001E8086, PCI\\VEN_8086&DEV_100E\r\n\
\r\n\
[Intel.NTx86.10.0]\r\n\
%E100ENC% = E100E.ndi, PCI\\VEN_8086&DEV_100E\r\n\
\r\n\
[E100E.ndi]\r\n\
CopyFiles = E100E.CopyFiles\r\n\
\r\n\
[E100E.CopyFiles]\r\n\
e1000demo.sys\r\n\
\r\n\
[Strings]\r\n\
Provider = \"tasq demo\"\r\n\
Intel    = \"Intel\"\r\n\
E100ENC  = \"Intel(R) PRO/1000 MT Network Connection (sample)\"\r\n";

struct Library {
    os: String,
    boot: String,
    client: String,
    apps: Vec<String>,
}

/// Builds the sample content library under `out/content` from trees made
/// under `out/work`.
fn build_library(out: &Path, work: &Path) -> Result<(LocalLibrary, Library, PathBuf)> {
    let lib = LocalLibrary::new(&out.join("content"));
    let os_tree = work.join("os-tree");
    sample_os_tree(&os_tree, Architecture::X64).context("writing the sample OS tree")?;
    let os_wim = work.join("install.wim");
    sample_os_wim(&os_tree, &os_wim, Architecture::X64).context("capturing the sample OS")?;
    let os = lib.add(
        "os-image",
        "Windows 11 Enterprise (sample)",
        &os_wim,
        BTreeMap::new(),
    )?;
    let boot_tree = work.join("boot-tree");
    write(
        &boot_tree.join("README.txt"),
        b"The boot image is tasq itself on Linux; this package stands for it.\r\n",
    )?;
    let boot_wim = work.join("boot.wim");
    sample_os_wim(&boot_tree, &boot_wim, Architecture::X64)
        .context("capturing the sample boot image")?;
    let boot = lib.add(
        "boot-image",
        "tasq boot environment x64 (sample)",
        &boot_wim,
        BTreeMap::new(),
    )?;
    let drv = work.join("drivers/e1000demo");
    write(&drv.join("e1000demo.inf"), SAMPLE_INF.as_bytes())?;
    write(&drv.join("e1000demo.sys"), b"MZ sample driver binary\r\n")?;
    write(&drv.join("e1000demo.cat"), b"sample catalog\r\n")?;
    lib.add(
        "driver",
        "Intel PRO/1000 MT (sample)",
        &drv,
        props(&[("categories", "Network")]),
    )?;
    let client_dir = work.join("client");
    write(
        &client_dir.join("ccmsetup.exe"),
        b"Placeholder for the Configuration Manager client installer (sample, not Microsoft's).\r\n",
    )?;
    let client = lib.add(
        "client",
        "Configuration Manager Client (sample)",
        &client_dir,
        BTreeMap::new(),
    )?;
    let answers = Answers::from_toml(ANSWERS).context("the example answers file")?;
    let mut apps = Vec::new();
    for (i, app_id) in answers.install_applications.applications.iter().enumerate() {
        let dir = work.join(format!("app{}", i + 1));
        write(
            &dir.join("install.sh"),
            format!("#!/bin/sh\necho installing sample application {}\n", i + 1).as_bytes(),
        )?;
        let m = lib.add(
            "application",
            &format!("Sample application {}", i + 1),
            &dir,
            props(&[("app_id", app_id), ("install_command", "sh install.sh")]),
        )?;
        apps.push(m.id);
    }
    let upd = work.join("update");
    write(
        &upd.join("install.sh"),
        b"#!/bin/sh\necho installing KB5034441\n",
    )?;
    lib.add(
        "update",
        "2026-11 Cumulative Update (sample)",
        &upd,
        props(&[
            ("update_id", "KB5034441"),
            ("deployment", "required"),
            ("collections", COLLECTION),
            ("install_command", "sh install.sh"),
        ]),
    )?;
    Ok((
        lib,
        Library {
            os: os.id,
            boot: boot.id,
            client: client.id,
            apps,
        },
        os_wim,
    ))
}

fn engine_config(
    computer: &Computer,
    computer_file: &Path,
    state: &Path,
    content: &Path,
) -> EngineConfig {
    EngineConfig {
        computer: computer.clone(),
        state_dir: state.to_path_buf(),
        media: MediaType::Boot,
        registry: Registry::standard(),
        machine: Box::new(DiskImageMachine {
            computer_file: computer_file.to_path_buf(),
        }),
        content: Some(Box::new(LocalLibrary::new(content))),
        sinks: vec![
            Box::new(LogSink::new(
                &state.join("logs"),
                tasq_engine::log::DEFAULT_MAX_SIZE,
            )),
            Box::new(Printer),
        ],
        package_id: "TSQ00000".into(),
    }
}

pub fn run(out: &Path) -> Result<i32> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let out = out
        .canonicalize()
        .with_context(|| format!("resolving {}", out.display()))?;
    for name in OWNED {
        let p = out.join(name);
        if p.is_dir() {
            std::fs::remove_dir_all(&p).with_context(|| format!("removing {}", p.display()))?;
        } else if p.exists() {
            std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    let work = out.join("work");

    println!(
        "1. Content library (distribution point): {}",
        out.join("content").display()
    );
    let (lib, ids, os_wim) = build_library(&out, &work)?;
    for m in lib.list()? {
        println!("   {}  {:<11} {}", m.id, m.kind, m.name);
    }

    // The wizard, from the example answers with this library's package IDs.
    let mut answers = Answers::from_toml(ANSWERS).context("the example answers file")?;
    answers.task_sequence.boot_image = ids.boot.clone();
    answers.install_windows.image_package = ids.os.clone();
    answers.install_windows.image_index = 1;
    answers.install_configmgr.client_package = ids.client.clone();
    answers.install_applications.applications = ids
        .apps
        .iter()
        .map(|id| lib.manifest(id).map(|m| m.name))
        .collect::<Result<_, _>>()?;
    let images = wim_images(&os_wim)?;
    let (seq, _pkg) = wizard::build(&answers, Some(&images)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let seq_file = out.join("build-and-capture.xml");
    write(
        &seq_file,
        tasq_tasksequence::export(&seq, ExportOptions::default()).as_bytes(),
    )?;
    println!(
        "2. Build-and-capture sequence from the wizard (passwords blanked in the file): {}",
        seq_file.display()
    );

    let computer_file = out.join("computer.toml");
    write(
        &computer_file,
        format!(
            "# The example reference computer of `tasq demo`: UEFI, one 8 GiB disk image.\n\
             name = \"REF-W11-01\"\narchitecture = \"x64\"\nfirmware = \"uefi\"\n\
             make = \"Contoso\"\nmodel = \"Virtual Machine 9\"\nserial = \"CZC1234ABC\"\n\
             uuid = \"4C4C4544-0042-3510-8052-B4C04F4E3132\"\n\
             mac_addresses = [\"00:15:5D:01:02:03\"]\npnp_ids = [{nic:?}]\n\
             memory_mb = 8192\nchassis_types = [3]\ncollections = [\"{COLLECTION}\"]\n\n\
             [[disks]]\npath = \"disk0.img\"\nsize = \"8G\"\nusb = false\n",
            nic = NIC_PNP_ID
        )
        .as_bytes(),
    )?;
    let computer = Computer::load(&computer_file)?;
    computer.prepare_disks()?;
    println!(
        "3. Reference computer: {} (disk 0: {})",
        computer_file.display(),
        out.join("disk0.img").display()
    );

    // Build: runs in the boot environment up to the hand-off into Windows.
    let bytes = tasq_tasksequence::export(
        &seq,
        ExportOptions {
            keep_secrets: true,
            ..Default::default()
        },
    );
    let build_state = out.join("state-build");
    let mut engine = Engine::start(
        &seq,
        bytes.as_bytes(),
        &[],
        engine_config(
            &computer,
            &computer_file,
            &build_state,
            &out.join("content"),
        ),
    )?;
    let name = seq.name.clone().unwrap_or_default();
    let outcome = engine.run(&name, false)?;
    let waiting: Vec<String> = engine
        .instrs
        .iter()
        .skip(engine.state.ip)
        .filter_map(|i| match i {
            Instr::Step(s) if !s.is_disabled() => Some(s.name.clone()),
            _ => None,
        })
        .collect();
    match &outcome {
        RunOutcome::RestartRequired { message } => {
            println!("   hand-off: {message}");
            println!(
                "   (this run's state folder: add `--state {}`)",
                build_state.display()
            );
        }
        RunOutcome::Failed { step, exit_code } => {
            bail!(
                "the build failed at \"{step}\" (exit code {exit_code}); see {}",
                build_state.join("logs/smsts.log").display()
            )
        }
        RunOutcome::Succeeded => {}
    }
    println!("   waiting for the installed OS (a running Windows), not run here:");
    for w in &waiting {
        println!("     - {w}");
    }
    drop(engine);

    // Capture: the custom sequence, in the boot environment.
    let (mut cap, _) = templates::custom(&PackageInfo {
        name: "Capture the reference computer".into(),
        description: "Custom capture sequence made by tasq demo".into(),
        boot_image_id: ids.boot.clone(),
    });
    let wim_path = out.join("reference.wim");
    let mut step = StepKind::CaptureOperatingSystemImage.new_step("Capture Operating System Image");
    CaptureOsImage {
        destination: wim_path.display().to_string(),
        image_creator: answers.image_properties.created_by.clone(),
        image_description: answers.image_properties.description.clone(),
        image_version: answers.image_properties.version.clone(),
        ..Default::default()
    }
    .write(&mut step);
    cap.items.push(Item::Step(step));
    let cap_xml = tasq_tasksequence::export(&cap, ExportOptions::default());
    let cap_file = out.join("capture.xml");
    write(&cap_file, cap_xml.as_bytes())?;
    println!(
        "4. Custom capture sequence (Prepare ConfigMgr Client and Prepare Windows run in \
         Windows before it; here the computer is captured from the boot environment): {}",
        cap_file.display()
    );
    let cap_state = out.join("state-capture");
    let mut engine = Engine::start(
        &cap,
        cap_xml.as_bytes(),
        &[],
        engine_config(&computer, &computer_file, &cap_state, &out.join("content")),
    )?;
    match engine.run(cap.name.as_deref().unwrap_or("capture"), false)? {
        RunOutcome::Succeeded => {}
        other => bail!(
            "the capture did not succeed ({other:?}); see {}",
            cap_state.join("logs/smsts.log").display()
        ),
    }
    drop(engine);

    let wim = tasq_wim::reader::Wim::open(&wim_path)?;
    let rep = tasq_wim::verify::verify(&wim, 0, &mut |_, _| {})?;
    println!(
        "5. Captured and verified: {} ({} images, one per NTFS/FAT32 volume)",
        wim_path.display(),
        rep.images
    );
    for (i, img) in wim.info.images.iter().enumerate() {
        println!(
            "     image {}: {} ({} files)",
            i + 1,
            img.name.as_deref().unwrap_or("(unnamed)"),
            img.file_count
        );
    }
    println!("\nLogs (CMTrace format):");
    println!("   {}", build_state.join("logs/smsts.log").display());
    println!("   {}", cap_state.join("logs/smsts.log").display());
    println!(
        "Inspect with:  tasq wim info {0}   |   wimlib-imagex info {0}   |   tasq disk list {1}",
        wim_path.display(),
        out.join("disk0.img").display()
    );
    Ok(0)
}

pub fn default_out() -> PathBuf {
    PathBuf::from("demo-out")
}
