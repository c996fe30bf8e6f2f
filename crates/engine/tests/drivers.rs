//! Auto Apply Drivers and Apply Driver Package end to end: a content library
//! with driver packages, a reference computer with PnP IDs, the Windows
//! volume as a host directory, a sequence run by the engine.

mod common;

use common::Shared;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tasq_engine::content::LocalLibrary;
use tasq_engine::events::{Event, Level};
use tasq_engine::runner::{DiskImageMachine, Engine, EngineConfig, MediaType, RunOutcome};
use tasq_engine::steps::Registry;
use tasq_engine::volumes::VolumeRef;
use tasq_engine::Computer;

const NIC: &str = "PCI\\VEN_8086&DEV_15B8&SUBSYS_86721043&REV_10&CC_020000\\3&11583659&0&FE";
const SMBUS: &str = "PCI\\VEN_8086&DEV_2930&SUBSYS_11001AF4&REV_02&CC_0C0500\\3&267A616A&0&FB";
const UNKNOWN: &str = "PCI\\VEN_10EC&DEV_8168&SUBSYS_00000000&REV_15";

fn inf(driver_ver: &str, mfg: &str, sections: &[(&str, &str)]) -> String {
    let mut s = format!(
        "[Version]\r\nSignature=\"$Windows NT$\"\r\nClass=Net\r\nClassGuid={{4d36e972-e325-11ce-bfc1-08002be10318}}\r\nProvider=%P%\r\nDriverVer={driver_ver}\r\nCatalogFile=d.cat\r\n[Manufacturer]\r\n%P%={mfg}\r\n"
    );
    for (name, ids) in sections {
        s.push_str(&format!("[{name}]\r\n%D% = Inst, {ids}\r\n"));
    }
    s.push_str("[Inst]\r\nCopyFiles=F\r\n[Strings]\r\nP=\"Contoso\"\r\nD=\"Contoso device\"\r\n");
    s
}

/// A driver folder: the INF, its catalog and a driver binary.
fn driver_dir(dir: &Path, inf_text: &str, signed: bool) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("d.inf"), inf_text).unwrap();
    if signed {
        std::fs::write(dir.join("d.cat"), b"catalog").unwrap();
    }
    std::fs::write(dir.join("d.sys"), vec![0x4Du8; 3000]).unwrap();
}

fn smbus_sample() -> Vec<u8> {
    // Where CI puts the shared samples, else beside the checkout.
    let fixed = Path::new("/work/shared/samples/inf");
    let dir = if fixed.is_dir() {
        fixed.to_path_buf()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .map(|a| a.join("shared/samples/inf"))
            .find(|p| p.is_dir())
            .expect("shared/samples/inf")
    };
    std::fs::read(dir.join("virtio-win_Q35_SMBus_smbus.inf")).unwrap()
}

struct Lab {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    lib: PathBuf,
    c: PathBuf,
    ids: BTreeMap<&'static str, String>,
}

/// Library: NET (two NIC drivers, categories Network), SMBUS (the real
/// virtio-win smbus.inf, category Chipset), OTHER (a package whose
/// subfolder holds a second INF), and a plain non-driver package.
fn new_lab() -> Lab {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let lib_dir = root.join("lib");
    let lib = LocalLibrary::new(&lib_dir);
    let mut ids = BTreeMap::new();
    let src = root.join("src");
    let hw = "PCI\\VEN_8086&DEV_15B8&SUBSYS_86721043&REV_10";
    driver_dir(
        &src.join("net/e1d-old"),
        &inf("01/01/2019,1.0.0.0", "M,NTamd64", &[("M.NTamd64", hw)]),
        true,
    );
    driver_dir(
        &src.join("net/e1d-new"),
        &inf("06/01/2024,2.0.0.0", "M,NTamd64", &[("M.NTamd64", hw)]),
        true,
    );
    driver_dir(
        &src.join("net/e1d-x86"),
        &inf("06/01/2025,3.0.0.0", "M,NTx86", &[("M.NTx86", hw)]),
        true,
    );
    let mut props = BTreeMap::new();
    props.insert("categories".to_string(), "Network".to_string());
    ids.insert(
        "net",
        lib.add("driver", "Intel NIC", &src.join("net"), props)
            .unwrap()
            .id,
    );
    std::fs::create_dir_all(src.join("smbus")).unwrap();
    std::fs::write(src.join("smbus/smbus.inf"), smbus_sample()).unwrap();
    std::fs::write(src.join("smbus/smbus.cat"), b"cat").unwrap();
    let mut props = BTreeMap::new();
    props.insert("categories".to_string(), "Chipset".to_string());
    ids.insert(
        "smbus",
        lib.add("driver", "Q35 SMBus", &src.join("smbus"), props)
            .unwrap()
            .id,
    );
    driver_dir(
        &src.join("other"),
        &inf(
            "01/01/2020,1.0.0.0",
            "M,NTamd64",
            &[("M.NTamd64", "PCI\\VEN_1AF4&DEV_1000")],
        ),
        true,
    );
    driver_dir(
        &src.join("other/sub"),
        &inf(
            "01/01/2020,1.0.0.0",
            "M,NTamd64",
            &[("M.NTamd64", "PCI\\VEN_1AF4&DEV_1001")],
        ),
        true,
    );
    driver_dir(
        &src.join("other/unsigned"),
        &inf(
            "01/01/2020,1.0.0.0",
            "M,NTamd64",
            &[("M.NTamd64", "PCI\\VEN_1AF4&DEV_1002")],
        ),
        false,
    );
    ids.insert(
        "other",
        lib.add("driver", "Other", &src.join("other"), BTreeMap::new())
            .unwrap()
            .id,
    );
    std::fs::create_dir_all(src.join("app")).unwrap();
    std::fs::write(src.join("app/setup.cmd"), "echo").unwrap();
    ids.insert(
        "app",
        lib.add("application", "App", &src.join("app"), BTreeMap::new())
            .unwrap()
            .id,
    );
    let c = root.join("C");
    std::fs::create_dir_all(&c).unwrap();
    Lab {
        _tmp: tmp,
        root,
        lib: lib_dir,
        c,
        ids,
    }
}

fn auto_step(best: &str, unsigned: &str, categories: Option<&str>) -> String {
    let cat = categories
        .map(|c| format!("<variable name=\"OSDAutoApplyDriverCategoryList\" property=\"CategoryList\">{c}</variable>"))
        .unwrap_or_default();
    format!("<step type=\"SMS_TaskSequence_AutoApplyAction\" name=\"Auto Apply Drivers\" runIn=\"WinPE\"><action>osddriverclient.exe /auto /bestmatch:%OSDAutoApplyDriverBestMatch% /unsigned:%OSDAllowUnsignedDriver%</action><defaultVarList><variable name=\"OSDAutoApplyDriverBestMatch\" property=\"BestMatch\">{best}</variable><variable name=\"OSDAllowUnsignedDriver\" property=\"UnsignedDriver\">{unsigned}</variable>{cat}</defaultVarList></step>")
}

fn package_step(id: &str, recurse: &str, unsigned: &str) -> String {
    format!("<step type=\"SMS_TaskSequence_ApplyDriverPackageAction\" name=\"Apply Driver Package\" runIn=\"WinPE\"><action>osddriverclient.exe /install:{id}  /unsigned:%OSDAllowUnsignedDriver% /recurse:%OSDRecurse%</action><defaultVarList><variable name=\"OSDApplyDriverDriverPackageID\" property=\"DriverPackageID\" hidden=\"true\">{id}</variable><variable name=\"OSDRecurse\" property=\"Recurse\">{recurse}</variable><variable name=\"OSDAllowUnsignedDriver\" property=\"UnsignedDriver\">{unsigned}</variable></defaultVarList></step>")
}

struct Ran {
    outcome: RunOutcome,
    vars: BTreeMap<String, String>,
    messages: Vec<(Level, String)>,
    failures: Vec<String>,
}

fn run(lab: &Lab, steps: &[String], vars: &[(&str, &str)], pnp: &[&str], arch: &str) -> Ran {
    let c = VolumeRef::HostDir {
        path: lab.c.clone(),
    };
    run_on(lab, steps, vars, pnp, arch, None, c)
}

/// Runs with drive C: at `c` (and `disk` as the computer's disk 0).
fn run_on(
    lab: &Lab,
    steps: &[String],
    vars: &[(&str, &str)],
    pnp: &[&str],
    arch: &str,
    disk: Option<&Path>,
    c: VolumeRef,
) -> Ran {
    let xml = format!(
        "<sequence version=\"3.10\" name=\"Drivers\">{}</sequence>",
        steps.concat()
    );
    let seq = tasq_tasksequence::import_str(&xml).unwrap();
    let pnp_list: Vec<String> = pnp.iter().map(|p| format!("{p:?}")).collect();
    let computer = Computer::from_toml(
        &format!(
            "name = \"REF01\"\narchitecture = \"{arch}\"\npnp_ids = [{}]\n{}",
            pnp_list.join(", "),
            disk.map(|d| format!("[[disks]]\npath = {:?}\n", d.display().to_string()))
                .unwrap_or_default()
        ),
        Path::new("computer.toml"),
    )
    .unwrap();
    let sink = Shared::default();
    let cfg = EngineConfig {
        computer,
        state_dir: lab.root.join(format!(
            "state{}",
            std::process::id() as u64 + rand_suffix()
        )),
        media: MediaType::Boot,
        registry: Registry::standard(),
        machine: Box::new(DiskImageMachine {
            computer_file: "computer.toml".into(),
        }),
        content: Some(Box::new(LocalLibrary::new(&lab.lib))),
        sinks: vec![Box::new(sink.clone())],
        package_id: "TSQ00000".into(),
    };
    let vars: Vec<(String, String, bool)> = vars
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string(), false))
        .collect();
    let mut e = Engine::start(&seq, xml.as_bytes(), &vars, cfg).unwrap();
    e.state.drives.insert('C', c);
    let outcome = e.run("Drivers", false).unwrap();
    let events = sink.0.lock().unwrap().0.clone();
    let mut messages = Vec::new();
    let mut failures = Vec::new();
    for ev in events {
        match ev {
            Event::Message { level, text } => messages.push((level, text)),
            Event::StepFailed { error, .. } => failures.push(error),
            _ => {}
        }
    }
    Ran {
        outcome,
        vars: e.env.to_map(),
        messages,
        failures,
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

fn has(r: &Ran, level: Level, needle: &str) -> bool {
    r.messages
        .iter()
        .any(|(l, t)| *l == level && t.contains(needle))
}

#[test]
fn auto_apply_stages_the_best_driver_per_device_and_lists_it() {
    let lab = new_lab();
    let r = run(
        &lab,
        &[auto_step("true", "false", None)],
        &[("OSDTargetSystemDrive", "C:")],
        &[NIC, SMBUS, UNKNOWN],
        "x64",
    );
    assert_eq!(
        r.outcome,
        RunOutcome::Succeeded,
        "{:?} {:?}",
        r.failures,
        r.messages
    );
    assert_eq!(
        r.vars.get("_TSQDriverPaths").map(String::as_str),
        Some("C:\\_SMSTaskSequence\\Drivers\\1;C:\\_SMSTaskSequence\\Drivers\\2")
    );
    let staged = lab.c.join("_SMSTaskSequence/Drivers");
    // NIC: the newest amd64 driver (the x86 one is newer still but never matches).
    let one = std::fs::read_to_string(staged.join("1/d.inf")).unwrap();
    assert!(one.contains("06/01/2024,2.0.0.0"), "{one}");
    assert_eq!(std::fs::read(staged.join("1/d.sys")).unwrap().len(), 3000);
    assert!(staged.join("1/d.cat").is_file());
    assert_eq!(
        std::fs::read(staged.join("2/smbus.inf")).unwrap(),
        smbus_sample()
    );
    assert!(!staged.join("3").exists());
    assert!(
        has(
            &r,
            Level::Warning,
            &format!("No driver found for device {UNKNOWN}")
        ),
        "{:?}",
        r.messages
    );
    assert!(
        has(&r, Level::Info, "chose") && has(&r, Level::Info, "e1d-new/d.inf"),
        "{:?}",
        r.messages
    );
    assert!(
        has(
            &r,
            Level::Info,
            "hardware ID PCI\\VEN_8086&DEV_15B8&SUBSYS_86721043&REV_10 matched"
        ),
        "{:?}",
        r.messages
    );
    assert!(has(&r, Level::Info, "[Models.NTamd64]"), "{:?}", r.messages);
}

#[test]
fn all_compatible_categories_and_architecture() {
    let lab = new_lab();
    let r = run(
        &lab,
        &[auto_step("false", "false", Some("network"))],
        &[("OSDisk", "C:")],
        &[NIC, SMBUS],
        "x64",
    );
    assert_eq!(r.outcome, RunOutcome::Succeeded, "{:?}", r.failures);
    // Both amd64 NIC drivers, newest first; SMBus is not in the category.
    let paths = r.vars.get("_TSQDriverPaths").unwrap();
    assert_eq!(paths.split(';').count(), 2);
    let staged = lab.c.join("_SMSTaskSequence/Drivers");
    assert!(std::fs::read_to_string(staged.join("1/d.inf"))
        .unwrap()
        .contains("2.0.0.0"));
    assert!(std::fs::read_to_string(staged.join("2/d.inf"))
        .unwrap()
        .contains("1.0.0.0"));
    assert!(has(
        &r,
        Level::Warning,
        &format!("No driver found for device {SMBUS}")
    ));
    assert!(has(&r, Level::Warning, "categories"), "{:?}", r.messages);
    // For an x86 image the x86 driver wins; OSDImageArchitecture overrides the computer.
    let lab2 = new_lab();
    let r = run(
        &lab2,
        &[auto_step("true", "false", None)],
        &[("OSDisk", "C:"), ("OSDImageArchitecture", "x86")],
        &[NIC],
        "x64",
    );
    assert_eq!(r.outcome, RunOutcome::Succeeded, "{:?}", r.failures);
    let one = std::fs::read_to_string(lab2.c.join("_SMSTaskSequence/Drivers/1/d.inf")).unwrap();
    assert!(one.contains("3.0.0.0"), "{one}");
}

#[test]
fn staging_appends_after_earlier_drivers() {
    let lab = new_lab();
    std::fs::create_dir_all(lab.c.join("_SMSTaskSequence/Drivers/7")).unwrap();
    let r = run(
        &lab,
        &[
            auto_step("true", "false", None),
            package_step(&lab.ids["other"], "false", "false"),
        ],
        &[
            ("OSDTargetSystemDrive", "C:"),
            ("_TSQDriverPaths", "C:\\Earlier"),
        ],
        &[NIC],
        "x64",
    );
    assert_eq!(r.outcome, RunOutcome::Succeeded, "{:?}", r.failures);
    assert_eq!(
        r.vars["_TSQDriverPaths"],
        "C:\\Earlier;C:\\_SMSTaskSequence\\Drivers\\8;C:\\_SMSTaskSequence\\Drivers\\9"
    );
}

#[test]
fn apply_driver_package_recurse_and_unsigned() {
    let lab = new_lab();
    let other = lab.ids["other"].clone();
    // Not recursing: only the top-level INF; subfolders with INFs stay out.
    let r = run(
        &lab,
        &[package_step(&other, "false", "false")],
        &[("OSDTargetSystemDrive", "C:")],
        &[],
        "x64",
    );
    assert_eq!(r.outcome, RunOutcome::Succeeded, "{:?}", r.failures);
    let one = lab.c.join("_SMSTaskSequence/Drivers/1");
    assert!(one.join("d.inf").is_file() && one.join("d.sys").is_file());
    assert!(!one.join("sub").exists() && !one.join("unsigned").exists());
    assert_eq!(
        r.vars["_TSQDriverPaths"],
        "C:\\_SMSTaskSequence\\Drivers\\1"
    );
    // Recursing: the subfolder too, but the unsigned INF is left out.
    let r = run(
        &lab,
        &[package_step(&other, "true", "false")],
        &[("OSDTargetSystemDrive", "C:")],
        &[],
        "x64",
    );
    assert_eq!(r.outcome, RunOutcome::Succeeded, "{:?}", r.failures);
    let two = lab.c.join("_SMSTaskSequence/Drivers/2");
    assert!(two.join("sub/d.inf").is_file());
    assert!(!two.join("unsigned/d.inf").exists() && two.join("unsigned/d.sys").is_file());
    assert!(
        has(&r, Level::Warning, "unsigned/d.inf: unsigned"),
        "{:?}",
        r.messages
    );
    // Allowed: it is staged.
    let r = run(
        &lab,
        &[package_step(&other, "true", "true")],
        &[("OSDTargetSystemDrive", "C:")],
        &[],
        "x64",
    );
    assert_eq!(r.outcome, RunOutcome::Succeeded);
    assert!(lab
        .c
        .join("_SMSTaskSequence/Drivers/3/unsigned/d.inf")
        .is_file());
}

#[test]
fn bad_settings_fail_before_touching_the_volume() {
    let lab = new_lab();
    // (steps, variables, what the error must say)
    type Case<'a> = (Vec<String>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![auto_step("maybe", "false", None)],
            vec![("OSDisk", "C:")],
            "OSDAutoApplyDriverBestMatch",
        ),
        (
            vec![auto_step("true", "false", None)],
            vec![],
            "neither OSDTargetSystemDrive nor OSDisk",
        ),
        (
            vec![auto_step("true", "false", None)],
            vec![("OSDTargetSystemDrive", "Q:")],
            "OSDTargetSystemDrive=\"Q:\": no volume",
        ),
        (
            vec![auto_step("true", "false", None)],
            vec![("OSDisk", "C:"), ("OSDImageArchitecture", "sparc")],
            "OSDImageArchitecture",
        ),
        (
            vec![auto_step("true", "false", None)],
            vec![("OSDisk", "C:"), ("_TSQImageOSVersion", "ten")],
            "_TSQImageOSVersion",
        ),
        (
            vec![package_step("", "false", "false")],
            vec![("OSDisk", "C:")],
            "OSDApplyDriverDriverPackageID is not set",
        ),
        (
            vec![package_step(&lab.ids["app"], "false", "false")],
            vec![("OSDisk", "C:")],
            "not a driver package",
        ),
        (
            vec![package_step("TSQ00099", "false", "false")],
            vec![("OSDisk", "C:")],
            "TSQ00099",
        ),
        (
            vec![package_step(&lab.ids["net"], "yes please", "false")],
            vec![("OSDisk", "C:")],
            "OSDRecurse",
        ),
        // NET's INFs are all in subfolders.
        (
            vec![package_step(&lab.ids["net"], "false", "false")],
            vec![("OSDisk", "C:")],
            "no INF file at its top level",
        ),
    ];
    for (steps, vars, want) in cases {
        let r = run(&lab, &steps, &vars, &[NIC], "x64");
        assert!(matches!(r.outcome, RunOutcome::Failed { .. }), "{want}");
        assert!(
            r.failures.iter().any(|f| f.contains(want)),
            "{want}: {:?}",
            r.failures
        );
        assert!(
            !lab.c.join("_SMSTaskSequence").exists(),
            "{want}: the volume was touched"
        );
    }
}

#[test]
fn an_unreadable_inf_fails_the_step_naming_file_and_line() {
    let lab = new_lab();
    // Damage an INF inside the library (after it was indexed): a bad UTF-16 surrogate on line 2.
    let dir = LocalLibrary::new(&lab.lib);
    use tasq_engine::content::ContentLibrary;
    let inf_path = dir
        .content_dir(&lab.ids["smbus"])
        .unwrap()
        .join("smbus.inf");
    let mut bad = vec![0xFF, 0xFE];
    for u in "[Version]\r\n".encode_utf16() {
        bad.extend_from_slice(&u.to_le_bytes());
    }
    bad.extend_from_slice(&0xD800u16.to_le_bytes());
    bad.extend_from_slice(&0x0041u16.to_le_bytes());
    std::fs::write(&inf_path, bad).unwrap();
    let r = run(
        &lab,
        &[auto_step("true", "false", None)],
        &[("OSDisk", "C:")],
        &[NIC],
        "x64",
    );
    assert!(matches!(r.outcome, RunOutcome::Failed { .. }));
    assert!(
        r.failures
            .iter()
            .any(|f| f.contains("smbus.inf, line 2") && f.contains("surrogate")),
        "{:?}",
        r.failures
    );
    assert!(!lab.c.join("_SMSTaskSequence").exists());
}

#[test]
fn library_indexes_driver_packages_and_refuses_ones_without_an_inf() {
    let lab = new_lab();
    use tasq_engine::content::ContentLibrary;
    let lib = LocalLibrary::new(&lab.lib);
    let m = lib.manifest(&lab.ids["net"]).unwrap();
    assert_eq!(m.properties["infs"], "3");
    assert_eq!(m.properties["classes"], "Net");
    assert_eq!(m.properties["architectures"], "amd64,x86");
    assert_eq!(m.properties["categories"], "Network");
    let m = lib.manifest(&lab.ids["smbus"]).unwrap();
    assert_eq!(m.properties["architectures"], "amd64,any");
    assert_eq!(m.properties["providers"], "Red Hat, Inc.");
    let before = lib.list().unwrap().len();
    let e = lib
        .add(
            "driver",
            "Empty",
            &lab.root.join("src/app"),
            BTreeMap::new(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("at least one .inf"), "{e}");
    let bad = lab.root.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("x.inf"), "[Version]\nSignature=\"$Windows 95$\"\n").unwrap();
    let e = lib.add("driver", "Bad", &bad, BTreeMap::new()).unwrap_err();
    assert!(e.to_string().contains("x.inf, line 2"), "{e}");
    assert_eq!(
        lib.list().unwrap().len(),
        before,
        "refused packages leave nothing behind"
    );
}

/// Copies `len` bytes at `off` of `img` to `to`, leaving zero blocks as holes.
fn cut_out(img: &Path, off: u64, len: u64, to: &Path) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::File::open(img).unwrap();
    f.seek(SeekFrom::Start(off)).unwrap();
    let mut out = std::fs::File::create(to).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = (buf.len() as u64).min(left) as usize;
        f.read_exact(&mut buf[..n]).unwrap();
        if buf[..n].iter().all(|&b| b == 0) {
            out.seek(SeekFrom::Current(n as i64)).unwrap();
        } else {
            out.write_all(&buf[..n]).unwrap();
        }
        left -= n as u64;
    }
    out.set_len(len).unwrap();
}

fn tool(cmd: &str, args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} must be installed (scripts/setup.sh): {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn drivers_staged_on_ntfs_windows_volumes_of_gpt_and_mbr_disks() {
    use tasq_disk::{partition_and_format, Disk, Layout};
    for (name, layout) in [("gpt", Layout::uefi()), ("mbr", Layout::bios())] {
        let lab = new_lab();
        let img = lab.root.join(format!("{name}.img"));
        let d = Disk::create(&img, 1 << 30).unwrap();
        let vols = partition_and_format(&d, &layout).unwrap();
        drop(d);
        let win = vols
            .iter()
            .find(|v| v.letter_variable.as_deref() == Some("OSDisk"))
            .unwrap();
        let c = VolumeRef::Partition {
            disk: 0,
            partition: win.index,
            offset: win.offset,
            len: win.size,
            fs: "NTFS".into(),
            label: Some("Windows".into()),
        };
        let r = run_on(
            &lab,
            &[
                auto_step("true", "false", None),
                package_step(&lab.ids["other"], "true", "false"),
            ],
            &[("OSDisk", "C:")],
            &[NIC, SMBUS],
            "x64",
            Some(&img),
            c,
        );
        assert_eq!(
            r.outcome,
            RunOutcome::Succeeded,
            "{name}: {:?} {:?}",
            r.failures,
            r.messages
        );
        assert_eq!(
            r.vars["_TSQDriverPaths"],
            "C:\\_SMSTaskSequence\\Drivers\\1;C:\\_SMSTaskSequence\\Drivers\\2;C:\\_SMSTaskSequence\\Drivers\\3"
        );
        // ntfs-3g's tools read the staged files back from the partition.
        let part = lab.root.join(format!("{name}-windows.img"));
        cut_out(&img, win.offset, win.size, &part);
        let p = part.to_str().unwrap();
        let listing = String::from_utf8(tool(
            "ntfsls",
            &["-f", p, "-p", "/_SMSTaskSequence/Drivers"],
        ))
        .unwrap();
        let mut dirs: Vec<&str> = listing.lines().filter(|l| !l.starts_with('.')).collect();
        dirs.sort();
        assert_eq!(dirs, ["1", "2", "3"], "{name}");
        let inf1 = String::from_utf8(tool(
            "ntfscat",
            &["-f", p, "/_SMSTaskSequence/Drivers/1/d.inf"],
        ))
        .unwrap();
        assert!(inf1.contains("06/01/2024,2.0.0.0"), "{name}: {inf1}");
        assert_eq!(
            tool(
                "ntfscat",
                &["-f", p, "/_SMSTaskSequence/Drivers/2/smbus.inf"]
            ),
            smbus_sample()
        );
        assert_eq!(
            tool(
                "ntfscat",
                &["-f", p, "/_SMSTaskSequence/Drivers/3/sub/d.sys"]
            )
            .len(),
            3000
        );
        let unsigned = String::from_utf8(tool(
            "ntfsls",
            &["-f", p, "-p", "/_SMSTaskSequence/Drivers/3/unsigned"],
        ))
        .unwrap();
        assert!(
            unsigned.lines().any(|l| l == "d.sys") && !unsigned.lines().any(|l| l == "d.inf"),
            "{unsigned}"
        );
        let text = String::from_utf8_lossy(&tool("ntfsfix", &["-n", p])).to_string();
        assert!(
            !text.contains("FAILED") && !text.contains("corrupt"),
            "{text}"
        );
    }
}
