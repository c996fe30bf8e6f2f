//! The full-OS steps run by the engine inside a Linux "installed OS": the
//! system drive C: is a temporary folder, installers are real shell scripts
//! in a temporary content library, restarts into the installed OS end the
//! run and `Engine::resume` continues it as after a reboot.
mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tasq_engine::content::LocalLibrary;
use tasq_engine::platform::{
    CommandRun, LinuxPlatform, Membership, Platform, PlatformError, ProcessOutput, SysprepCommand,
};
use tasq_engine::runner::{DiskImageMachine, Engine, EngineConfig, MediaType, RunOutcome};
use tasq_engine::steps::{fullos, Registry};
use tasq_engine::volumes::VolumeRef;
use tasq_engine::Computer;

/// Linux for commands; a chosen domain membership; Sysprep either the real
/// Linux refusal or a recorded success.
struct Fake {
    linux: LinuxPlatform,
    domain: Option<String>,
    sysprep_ok: bool,
    sysprep_calls: Mutex<Vec<String>>,
    /// Reports this exit code as the second one, as a platform whose
    /// processes can exit with 3010 (Windows) would.
    widen: Option<(i64, i64)>,
}

impl Platform for Fake {
    fn name(&self) -> &str {
        "fake"
    }
    fn run_command(&self, run: &CommandRun) -> Result<ProcessOutput, PlatformError> {
        let mut out = self.linux.run_command(run)?;
        if let Some((from, to)) = self.widen {
            if out.code == from {
                out.code = to;
            }
        }
        Ok(out)
    }
    fn domain_membership(&self) -> Result<Membership, PlatformError> {
        Ok(match &self.domain {
            Some(d) => Membership::Domain(d.clone()),
            None => Membership::Workgroup,
        })
    }
    fn run_sysprep(
        &self,
        cmd: &SysprepCommand,
        timeout: Option<Duration>,
    ) -> Result<i64, PlatformError> {
        self.sysprep_calls.lock().unwrap().push(cmd.command_line());
        if self.sysprep_ok {
            Ok(0)
        } else {
            self.linux.run_sysprep(cmd, timeout)
        }
    }
}

fn fake(domain: Option<&str>, sysprep_ok: bool) -> Arc<Fake> {
    Arc::new(Fake {
        linux: LinuxPlatform {
            realm_program: "/nonexistent/realm".into(),
            sssd_conf: "/nonexistent/sssd.conf".into(),
        },
        domain: domain.map(str::to_string),
        sysprep_ok,
        sysprep_calls: Mutex::new(Vec::new()),
        widen: None,
    })
}

struct World {
    _dir: tempfile::TempDir,
    lib: PathBuf,
    /// The host folder that is drive C:.
    c: PathBuf,
    state: PathBuf,
    src: PathBuf,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let w = World {
            lib: dir.path().join("lib"),
            c: dir.path().join("C"),
            state: dir.path().join("state"),
            src: dir.path().join("src"),
            _dir: dir,
        };
        std::fs::create_dir_all(&w.c).unwrap();
        w
    }

    /// A package whose `install.sh` is `script`; returns its ID.
    fn package(&self, kind: &str, name: &str, script: &str, props: &[(&str, &str)]) -> String {
        let src = self.src.join(name.replace(' ', "_"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("install.sh"), script).unwrap();
        let mut p: BTreeMap<String, String> = props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        p.entry("install_command".into())
            .or_insert_with(|| "sh install.sh".into());
        LocalLibrary::new(&self.lib)
            .add(kind, name, &src, p)
            .unwrap()
            .id
    }

    fn config(&self, platform: Arc<dyn Platform>, sink: Shared) -> EngineConfig {
        let computer = Computer::from_toml(
            "name = \"REF01\"\ncollections = [\"SMS00001\", \"LAB0001A\"]\narchitecture = \"x64\"",
            Path::new("computer.toml"),
        )
        .unwrap();
        let mut registry = Registry::general();
        fullos::register_with(&mut registry, platform);
        EngineConfig {
            computer,
            state_dir: self.state.clone(),
            media: MediaType::None,
            registry,
            machine: Box::new(DiskImageMachine {
                computer_file: "computer.toml".into(),
            }),
            content: Some(Box::new(LocalLibrary::new(&self.lib))),
            sinks: vec![Box::new(sink)],
            package_id: "TSQ00000".into(),
        }
    }

    /// Runs in the full OS, resuming after every restart into the
    /// installed OS; returns the result and the number of such restarts.
    fn run(&self, xml: &str, vars: &[(&str, &str)], platform: Arc<dyn Platform>) -> (Ran, u32) {
        let s = tasq_tasksequence::import_str(xml).unwrap();
        let sink = Shared::default();
        let vars: Vec<(String, String, bool)> = vars
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string(), false))
            .collect();
        let mut e = Engine::start(
            &s,
            xml.as_bytes(),
            &vars,
            self.config(platform.clone(), sink.clone()),
        )
        .unwrap();
        e.state.drives.insert(
            'C',
            VolumeRef::HostDir {
                path: self.c.clone(),
            },
        );
        let mut outcome = e.run("Test", false).unwrap();
        let mut restarts = 0;
        while matches!(outcome, RunOutcome::RestartRequired { .. }) {
            restarts += 1;
            assert!(restarts < 10, "restart loop");
            let (e2, _) = Engine::resume(self.config(platform.clone(), sink.clone())).unwrap();
            e = e2;
            outcome = e.run("Test", true).unwrap();
        }
        (finish(e, outcome, sink), restarts)
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.c.join(rel)).unwrap_or_default()
    }
}

fn updates_step(target: &str, attrs: &str) -> String {
    format!(
        "<step type=\"SMS_TaskSequence_InstallUpdateAction\" name=\"Install Software Updates\" runIn=\"FullOS\" successCodeList=\"0\" retryCount=\"2\" {attrs}><action>TSInstallSWUpdate.exe /target:%SMSInstallUpdateTarget%</action><defaultVarList><variable name=\"RetryCount\" property=\"RetryCount\" hidden=\"true\">2</variable><variable name=\"SMSInstallUpdateTarget\" property=\"Target\">{target}</variable><variable name=\"SMSTSSoftwareUpdateScanUseCache\" property=\"UseCache\">true</variable></defaultVarList></step>"
    )
}

fn apps_step(name: &str, apps: &str, base: &str, continue_on_error: bool) -> String {
    format!(
        "<step type=\"SMS_TaskSequence_InstallApplicationAction\" name=\"{name}\" runIn=\"FullOS\" successCodeList=\"0\" retryCount=\"2\"><action>smsappinstall.exe /app:{apps} /basevar:{base} /continueOnError:{coe}</action><defaultVarList><variable name=\"ApplicationName\" property=\"ApplicationName\" hidden=\"true\">{apps}</variable><variable name=\"BaseVariableName\" property=\"BaseVariableName\" hidden=\"true\">{base}</variable><variable name=\"OSDAppClearCache\" property=\"ClearCache\">false</variable><variable name=\"ContinueOnInstallError\" property=\"ContinueOnInstallError\" hidden=\"true\">{coe}</variable><variable name=\"RetryCount\" property=\"RetryCount\" hidden=\"true\">2</variable></defaultVarList></step>",
        apps = xml_escape(apps),
        coe = continue_on_error
    )
}

fn prepare_client_step() -> String {
    "<step type=\"SMS_TaskSequence_PrepareSMSClientAction\" name=\"Prepare ConfigMgr Client for Capture\" runIn=\"FullOS\" successCodeList=\"0\" retryCount=\"0\"><action>osdpreparesmsclient.exe</action><defaultVarList/></step>".into()
}

fn prepare_os_step(keep_activation: bool, mass_storage: bool) -> String {
    format!(
        "<step type=\"SMS_TaskSequence_PrepareOSAction\" name=\"Prepare Windows for Capture\" runIn=\"FullOS\" successCodeList=\"0\" retryCount=\"0\"><action>osdprepareos.exe /activate:%OSDKeepActivation% /bmsd:%OSDBuildStorageDriverList% /shutdown:%OSDShutdownPreparedOs%</action><defaultVarList><variable name=\"OSDBuildStorageDriverList\" property=\"BuildStorageDriverList\">{mass_storage}</variable><variable name=\"OSDKeepActivation\" property=\"KeepActivation\">{keep_activation}</variable><variable name=\"OSDShutdownPreparedOs\" property=\"ShutdownPreparedOs\">false</variable></defaultVarList></step>"
    )
}

fn after() -> String {
    setvar("After", "AfterRan", "yes", "")
}

/// A script that appends `id` to C:\install.log and exits with `code`.
fn logging(id: &str, code: i32) -> String {
    format!("echo {id} >> \"$SystemDrive/install.log\"\nexit {code}\n")
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

fn add_updates(w: &World) {
    w.package(
        "update",
        "Cumulative Update",
        &logging("KB1", 0),
        &[
            ("update_id", "KB1"),
            ("deployment", "required"),
            ("collections", "LAB0001A"),
        ],
    );
    w.package(
        "update",
        "Optional Update",
        &logging("KB2", 0),
        &[
            ("update_id", "KB2"),
            ("deployment", "available"),
            ("collections", "SMS00001"),
        ],
    );
    w.package(
        "update",
        "Elsewhere Update",
        &logging("KB3", 0),
        &[
            ("update_id", "KB3"),
            ("deployment", "required"),
            ("collections", "OTHER001"),
        ],
    );
    w.package(
        "update",
        "Servicing Stack",
        &logging("KB4", 194),
        &[
            ("restart_codes", "194"),
            ("update_id", "KB4"),
            ("deployment", "required"),
            ("collections", "lab0001a, OTHER001"),
        ],
    );
}

#[test]
fn required_updates_for_the_computers_collections_then_restart_and_resume_without_reinstall() {
    let w = World::new();
    add_updates(&w);
    let xml = seq(&[updates_step("Mandatory", ""), after()]);
    let (ran, restarts) = w.run(&xml, &[], fake(None, false));
    assert_eq!(ran.outcome, RunOutcome::Succeeded, "{:?}", ran.events);
    // KB2 is only available, KB3 targets another collection; KB4's restart code
    // restarted the computer once and the re-run installed nothing again.
    assert_eq!(lines(&w.read("install.log")), vec!["KB1", "KB4"]);
    assert_eq!(restarts, 1);
    assert_eq!(
        ran.order,
        ord(&[
            ("Install Software Updates", "succeeded"),
            ("Install Software Updates", "succeeded"),
            ("After", "succeeded"),
        ])
    );
    assert_eq!(ran.vars.get("_TSQInstalledUpdates").unwrap(), "KB1,KB4");
}

#[test]
fn exit_code_3010_restarts_by_default_where_the_platform_can_return_it() {
    let w = World::new();
    w.package(
        "update",
        "Feature Update",
        &logging("KB7", 194),
        &[
            ("update_id", "KB7"),
            ("deployment", "required"),
            ("collections", "SMS00001"),
        ],
    );
    let p = Arc::new(Fake {
        widen: Some((194, 3010)),
        ..Arc::try_unwrap(fake(None, false)).ok().unwrap()
    });
    let (ran, restarts) = w.run(&seq(&[updates_step("Mandatory", ""), after()]), &[], p);
    assert_eq!(ran.outcome, RunOutcome::Succeeded, "{:?}", ran.events);
    assert_eq!(restarts, 1);
    assert_eq!(lines(&w.read("install.log")), vec!["KB7"]);
    assert!(format!("{:?}", ran.events).contains("needs a restart (exit code 3010)"));
}

#[test]
fn all_updates_include_available_ones_and_a_variable_overrides_the_step() {
    let w = World::new();
    add_updates(&w);
    let xml = seq(&[updates_step("Mandatory", ""), after()]);
    let (ran, _) = w.run(
        &xml,
        &[("SMSInstallUpdateTarget", "All")],
        fake(None, false),
    );
    assert_eq!(ran.outcome, RunOutcome::Succeeded);
    assert_eq!(lines(&w.read("install.log")), vec!["KB1", "KB2", "KB4"]);

    let w = World::new();
    add_updates(&w);
    let (ran, _) = w.run(
        &seq(&[updates_step("Sometimes", "")]),
        &[],
        fake(None, false),
    );
    match &ran.outcome {
        RunOutcome::Failed { .. } => {}
        o => panic!("{o:?}"),
    }
    assert!(w.read("install.log").is_empty(), "nothing ran");
    assert!(
        format!("{:?}", ran.events).contains("SMSInstallUpdateTarget=\\\"Sometimes\\\""),
        "{:?}",
        ran.events
    );
}

#[test]
fn a_failing_update_fails_the_step_unless_it_continues_on_error() {
    let w = World::new();
    w.package(
        "update",
        "Broken",
        &logging("KB9", 43),
        &[
            ("update_id", "KB9"),
            ("deployment", "required"),
            ("collections", "SMS00001"),
        ],
    );
    let (ran, _) = w.run(
        &seq(&[updates_step("All", ""), after()]),
        &[],
        fake(None, false),
    );
    assert_eq!(
        ran.outcome,
        RunOutcome::Failed {
            step: "Install Software Updates".into(),
            exit_code: 43
        }
    );
    assert!(!ran.vars.contains_key("AfterRan"));
    assert!(!ran.vars.contains_key("_TSQInstalledUpdates"));

    let (ran, _) = w.run(
        &seq(&[updates_step("All", "continueOnError=\"true\""), after()]),
        &[],
        fake(None, false),
    );
    assert_eq!(ran.outcome, RunOutcome::Succeeded);
    assert_eq!(ran.vars.get("AfterRan").unwrap(), "yes");
    assert_eq!(ran.vars.get("_SMSTSLastActionRetCode").unwrap(), "0");
}

/// Apps A (ok, creates its detection file), B (fails), C (restart), D (ok),
/// E (already present: skipped), the model names `App.A` … `App.E`.
fn add_apps(w: &World) {
    std::fs::create_dir_all(w.c.join("Program Files/E")).unwrap();
    std::fs::write(w.c.join("Program Files/E/e.exe"), "present").unwrap();
    // A Linux exit code is 8-bit, so C's "installed, restart needed" is 194
    // (declared with restart_codes), not 3010.
    for (n, code) in [("A", 0), ("B", 5), ("C", 194), ("D", 0), ("E", 0)] {
        let script = format!(
            "echo {n} >> \"$SystemDrive/install.log\"\nmkdir -p \"$SystemDrive/Program Files/{n}\"\necho x > \"$SystemDrive/Program Files/{n}/{lower}.exe\"\nexit {code}\n",
            lower = n.to_ascii_lowercase()
        );
        let app_id = format!("ScopeId_1/Application_{n}");
        let detect = format!("C:\\Program Files\\{n}\\{}.exe", n.to_ascii_lowercase());
        w.package(
            "application",
            &format!("App {n}"),
            &script,
            &[
                ("app_id", &app_id),
                ("detect_file", &detect),
                ("restart_codes", "194"),
            ],
        );
    }
}

fn app_list(names: &str) -> String {
    names
        .chars()
        .map(|c| format!("ScopeId_1/Application_{c}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn applications_continue_past_a_failure_restart_mid_list_and_skip_detected_ones() {
    let w = World::new();
    add_apps(&w);
    let xml = seq(&[
        apps_step("Install Application", &app_list("ABCDE"), "", true),
        after(),
    ]);
    let (ran, restarts) = w.run(&xml, &[], fake(None, false));
    assert_eq!(ran.outcome, RunOutcome::Succeeded, "{:?}", ran.events);
    // Each installer ran once; E was detected and never run; the restart
    // after C continued with D instead of starting over.
    assert_eq!(lines(&w.read("install.log")), vec!["A", "B", "C", "D"]);
    assert_eq!(restarts, 1);
    assert_eq!(
        ran.vars.get("_TSQInstallApplicationFailed").unwrap(),
        "ScopeId_1/Application_B"
    );
    assert!(!ran.vars.contains_key("_TSQInstallApplicationProgress"));
    assert_eq!(ran.vars.get("AfterRan").unwrap(), "yes");
    let text = format!("{:?}", ran.events);
    assert!(text.contains("exit code 5"), "{text}");
    assert!(text.contains("already installed"), "{text}");
}

#[test]
fn without_continue_on_install_error_the_first_failure_ends_the_step() {
    let w = World::new();
    add_apps(&w);
    let xml = seq(&[
        apps_step("Install Application", &app_list("ABCD"), "", false),
        after(),
    ]);
    let (ran, restarts) = w.run(&xml, &[], fake(None, false));
    assert_eq!(
        ran.outcome,
        RunOutcome::Failed {
            step: "Install Application".into(),
            exit_code: 5
        }
    );
    assert_eq!(lines(&w.read("install.log")), vec!["A", "B"]);
    assert_eq!(restarts, 0);
}

#[test]
fn base_variable_list_names_applications_until_the_first_gap() {
    let w = World::new();
    add_apps(&w);
    let xml = seq(&[apps_step("Install Application", "", "Apps", false)]);
    let (ran, _) = w.run(
        &xml,
        &[
            ("Apps01", "App D"),
            ("Apps02", "App A"),
            ("Apps04", "App B"),
        ],
        fake(None, false),
    );
    assert_eq!(ran.outcome, RunOutcome::Succeeded, "{:?}", ran.events);
    assert_eq!(lines(&w.read("install.log")), vec!["D", "A"]);

    // An unknown application fails the step before anything is installed.
    let w = World::new();
    add_apps(&w);
    let (ran, _) = w.run(
        &xml,
        &[("Apps01", "App A"), ("Apps02", "No Such App")],
        fake(None, false),
    );
    assert!(matches!(ran.outcome, RunOutcome::Failed { .. }));
    assert!(w.read("install.log").is_empty());
    assert!(format!("{:?}", ran.events).contains("No Such App"));
}

#[test]
fn detection_rules_version_registry_and_post_install_check() {
    let w = World::new();
    // Version 3.0.0.0 present, at least 2.1 wanted: skipped.
    let mut ver = vec![0u8; 40];
    ver.extend_from_slice(&[0xBD, 0x04, 0xEF, 0xFE, 0, 0, 1, 0]);
    ver.extend_from_slice(&(3u32 << 16).to_le_bytes());
    ver.extend_from_slice(&0u32.to_le_bytes());
    std::fs::create_dir_all(w.c.join("Tools")).unwrap();
    std::fs::write(w.c.join("Tools/tool.exe"), &ver).unwrap();
    w.package(
        "application",
        "Tool",
        &logging("Tool", 0),
        &[
            ("detect_file", "C:\\Tools\\tool.exe"),
            ("detect_file_version", "2.1"),
        ],
    );
    // Version wanted 4.0: installed (the script leaves the file as it is, so
    // the post-install check fails).
    w.package(
        "application",
        "Tool4",
        &logging("Tool4", 0),
        &[
            ("detect_file", "C:\\Tools\\tool.exe"),
            ("detect_file_version", "4.0"),
        ],
    );
    w.package(
        "application",
        "Reg",
        &logging("Reg", 0),
        &[("detect_registry", "HKLM\\SOFTWARE\\Contoso\\Version")],
    );
    w.package("application", "Plain", &logging("Plain", 0), &[]);
    let xml = seq(&[apps_step(
        "Install Application",
        "Tool,Tool4,Reg,Plain",
        "",
        true,
    )]);
    let (ran, _) = w.run(&xml, &[], fake(None, false));
    assert_eq!(ran.outcome, RunOutcome::Succeeded);
    assert_eq!(lines(&w.read("install.log")), vec!["Tool4", "Plain"]);
    assert_eq!(
        ran.vars.get("_TSQInstallApplicationFailed").unwrap(),
        "Tool4,Reg"
    );
    let text = format!("{:?}", ran.events);
    assert!(text.contains("exists only on Windows"), "{text}");
    assert!(text.contains("detection rule does not find"), "{text}");
}

fn client_json() -> &'static str {
    r#"{"install_id":"7d1c","client_guid":"GUID:1234-5678","site_code":"PS1","installed_by":"Setup Windows and ConfigMgr","installed":true}"#
}

#[test]
fn prepare_client_removes_the_identity_but_keeps_the_install_id() {
    let w = World::new();
    std::fs::create_dir_all(w.c.join("Windows/CCM/Certificates")).unwrap();
    std::fs::write(w.c.join("Windows/CCM/tasq-client.json"), client_json()).unwrap();
    std::fs::write(w.c.join("Windows/CCM/Certificates/sms.cer"), "cert").unwrap();
    std::fs::write(
        w.c.join("Windows/SMSCFG.INI"),
        "[Configuration - Client Properties]\nSMS Unique Identifier=GUID:1234-5678\n",
    )
    .unwrap();
    let (ran, _) = w.run(
        &seq(&[prepare_client_step(), after()]),
        &[],
        fake(None, false),
    );
    assert_eq!(ran.outcome, RunOutcome::Succeeded, "{:?}", ran.events);
    let v: serde_json::Value =
        serde_json::from_str(&w.read("Windows/CCM/tasq-client.json")).unwrap();
    let o = v.as_object().unwrap();
    assert_eq!(o.get("install_id").unwrap(), "7d1c");
    assert_eq!(
        o.get("installed_by").unwrap(),
        "Setup Windows and ConfigMgr"
    );
    assert_eq!(o.get("installed").unwrap(), true);
    assert!(!o.contains_key("client_guid"));
    assert!(!o.contains_key("site_code"));
    assert!(!w.c.join("Windows/SMSCFG.INI").exists());
    assert!(!w.c.join("Windows/CCM/Certificates").exists());
    assert!(w.c.join("Windows/CCM").is_dir());
}

#[test]
fn prepare_client_without_a_client_fails_clearly() {
    let w = World::new();
    let (ran, _) = w.run(&seq(&[prepare_client_step()]), &[], fake(None, false));
    assert!(matches!(ran.outcome, RunOutcome::Failed { .. }));
    let text = format!("{:?}", ran.events);
    assert!(text.contains("no ConfigMgr client is installed"), "{text}");
    assert!(!w.c.join("Windows").exists(), "nothing was created");
}

#[test]
fn prepare_windows_refuses_a_domain_joined_computer() {
    let w = World::new();
    let p = fake(Some("corp.example.com"), true);
    let (ran, _) = w.run(&seq(&[prepare_os_step(true, false)]), &[], p.clone());
    assert!(matches!(ran.outcome, RunOutcome::Failed { .. }));
    let text = format!("{:?}", ran.events);
    assert!(
        text.contains("joined to the domain corp.example.com")
            && text.contains("capture must be from a workgroup computer"),
        "{text}"
    );
    assert!(p.sysprep_calls.lock().unwrap().is_empty());
    assert!(
        !w.c.join("Windows").exists(),
        "nothing written before the refusal"
    );
}

#[test]
fn prepare_windows_fails_honestly_on_linux() {
    let w = World::new();
    let p = fake(None, false);
    let (ran, restarts) = w.run(
        &seq(&[prepare_os_step(false, true), after()]),
        &[],
        p.clone(),
    );
    assert_eq!(
        ran.outcome,
        RunOutcome::Failed {
            step: "Prepare Windows for Capture".into(),
            exit_code: 0x8000_4005
        }
    );
    assert_eq!(restarts, 0);
    assert_eq!(
        ran.vars.get("_SMSTSInWinPE").unwrap(),
        "false",
        "no restart happened"
    );
    assert_eq!(ran.order, ord(&[("Prepare Windows for Capture", "failed")]));
    let text = format!("{:?}", ran.events);
    assert!(text.contains("Sysprep exists only on Windows"), "{text}");
    assert!(text.contains("mass storage driver list"), "{text}");
    assert_eq!(
        *p.sysprep_calls.lock().unwrap(),
        vec!["C:\\Windows\\System32\\Sysprep\\sysprep.exe /generalize /oobe /quit".to_string()]
    );
}

#[test]
fn prepare_windows_with_a_working_sysprep_keeps_activation_and_restarts_into_the_boot_environment()
{
    let w = World::new();
    let p = fake(None, true);
    let (ran, _) = w.run(
        &seq(&[prepare_os_step(true, false), after()]),
        &[],
        p.clone(),
    );
    assert_eq!(ran.outcome, RunOutcome::Succeeded, "{:?}", ran.events);
    assert_eq!(ran.vars.get("_SMSTSInWinPE").unwrap(), "true");
    assert_eq!(
        *p.sysprep_calls.lock().unwrap(),
        vec!["C:\\Windows\\System32\\Sysprep\\sysprep.exe /generalize /oobe /quit /unattend:C:\\Windows\\Panther\\tasq-sysprep-unattend.xml".to_string()]
    );
    let xml = w.read("Windows/Panther/tasq-sysprep-unattend.xml");
    assert!(xml.contains("<settings pass=\"generalize\">"), "{xml}");
    assert!(xml.contains("Microsoft-Windows-Security-SPP"), "{xml}");
    assert!(xml.contains("processorArchitecture=\"amd64\""), "{xml}");
    assert!(xml.contains("<SkipRearm>1</SkipRearm>"), "{xml}");
}

#[test]
fn the_standard_registry_has_the_full_os_steps() {
    let r = Registry::standard();
    for t in [
        tasq_tasksequence::steps::INSTALL_UPDATES,
        tasq_tasksequence::steps::INSTALL_APPLICATION,
        tasq_tasksequence::steps::PREPARE_CLIENT,
        tasq_tasksequence::steps::PREPARE_OS,
    ] {
        assert!(r.contains(t), "{t}");
    }
}

// ---- The same steps with C: on a partition of a disk image ----

mod disk_images {
    use super::*;
    use std::process::Command;
    use tasq_disk::{partition_and_format, Disk, FsType, Layout};
    use tasq_volume::VolPath;

    /// A 256 MiB disk with one 100 MB partition of `fs` (`NTFS`/`FAT32`) in
    /// the `style` (`gpt`/`mbr`) table; its offset and size.
    fn disk(dir: &Path, style: &str, fs: &str) -> (PathBuf, u64, u64) {
        let layout = Layout::from_toml(
            &format!("style = \"{style}\"\n[[partition]]\ntype = \"Primary\"\nfile_system = \"{fs}\"\nsize = 100\nunit = \"MB\"\nvolume_name = \"Windows\"\n"),
            "test",
        )
        .unwrap();
        let p = dir.join(format!("{style}-{fs}.img"));
        let d = Disk::create(&p, 256 << 20).unwrap();
        let v = partition_and_format(&d, &layout).unwrap();
        (p, v[0].offset, v[0].size)
    }

    fn seed_client(img: &Path, off: u64, len: u64, fs: FsType) {
        let mut v = tasq_volume::fs::open_volume(img, off, len, fs, true).unwrap();
        let p = |s: &str| VolPath::parse(s).unwrap();
        v.write_file(
            &p("Windows\\CCM\\tasq-client.json"),
            &mut client_json().as_bytes(),
        )
        .unwrap();
        v.write_file(&p("Windows\\SMSCFG.INI"), &mut &b"[x]\n"[..])
            .unwrap();
        v.write_file(&p("Windows\\CCM\\Certificates\\sms.cer"), &mut &b"c"[..])
            .unwrap();
        v.flush().unwrap();
    }

    /// Runs Prepare Client then Prepare Windows (working fake Sysprep,
    /// activation kept) with C: on the partition.
    fn run_on(img: &Path, off: u64, len: u64, fs: &str) -> Ran {
        let w = World::new();
        let xml = seq(&[prepare_client_step(), prepare_os_step(true, false)]);
        let s = tasq_tasksequence::import_str(&xml).unwrap();
        let sink = Shared::default();
        let mut cfg = w.config(fake(None, true), sink.clone());
        cfg.computer.disks.push(tasq_engine::computer::Disk {
            path: img.to_path_buf(),
            size: None,
            usb: false,
        });
        let mut e = Engine::start(&s, xml.as_bytes(), &[], cfg).unwrap();
        e.state.drives.insert(
            'C',
            VolumeRef::Partition {
                disk: 0,
                partition: 1,
                offset: off,
                len,
                fs: fs.into(),
                label: Some("Windows".into()),
            },
        );
        let outcome = e.run("Test", false).unwrap();
        finish(e, outcome, sink)
    }

    fn tool(cmd: &str, args: &[&str]) -> String {
        let o = Command::new(cmd).args(args).output().unwrap();
        assert!(
            o.status.success(),
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    /// Copies the partition out of the disk (the tools read a file system, not a disk).
    fn cut(img: &Path, off: u64, len: u64, to: &Path) {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(img).unwrap();
        f.seek(SeekFrom::Start(off)).unwrap();
        let mut out = std::fs::File::create(to).unwrap();
        std::io::copy(&mut f.take(len), &mut out).unwrap();
    }

    fn check_client_json(text: &str) {
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        let o = v.as_object().unwrap();
        assert_eq!(o.get("install_id").unwrap(), "7d1c");
        assert!(!o.contains_key("client_guid") && !o.contains_key("site_code"));
    }

    #[test]
    fn gpt_ntfs_system_volume_checked_with_ntfs_3g_tools() {
        let dir = tempfile::tempdir().unwrap();
        let (img, off, len) = disk(dir.path(), "gpt", "NTFS");
        seed_client(&img, off, len, FsType::Ntfs);
        let ran = run_on(&img, off, len, "NTFS");
        assert_eq!(ran.outcome, RunOutcome::Succeeded, "{:?}", ran.events);
        let part = dir.path().join("part.img");
        cut(&img, off, len, &part);
        let p = part.to_str().unwrap();
        check_client_json(&tool(
            "ntfscat",
            &["-f", p, "/Windows/CCM/tasq-client.json"],
        ));
        let windows = tool("ntfsls", &["-f", p, "-p", "/Windows"]);
        assert!(!windows.lines().any(|l| l == "SMSCFG.INI"), "{windows}");
        let ccm = tool("ntfsls", &["-f", p, "-p", "/Windows/CCM"]);
        assert!(!ccm.lines().any(|l| l == "Certificates"), "{ccm}");
        assert!(ccm.lines().any(|l| l == "tasq-client.json"), "{ccm}");
        let xml = tool(
            "ntfscat",
            &["-f", p, "/Windows/Panther/tasq-sysprep-unattend.xml"],
        );
        assert!(xml.contains("<SkipRearm>1</SkipRearm>"), "{xml}");
    }

    #[test]
    fn mbr_fat32_system_volume_checked_with_mtools_and_fsck() {
        let dir = tempfile::tempdir().unwrap();
        let (img, off, len) = disk(dir.path(), "mbr", "FAT32");
        seed_client(&img, off, len, FsType::Fat32);
        let ran = run_on(&img, off, len, "FAT32");
        assert_eq!(ran.outcome, RunOutcome::Succeeded, "{:?}", ran.events);
        let at = format!("{}@@{off}", img.display());
        check_client_json(&tool(
            "mtype",
            &["-i", &at, "::/Windows/CCM/tasq-client.json"],
        ));
        let windows = tool("mdir", &["-b", "-i", &at, "::/Windows"]);
        assert!(
            !windows.to_ascii_uppercase().contains("SMSCFG.INI"),
            "{windows}"
        );
        let ccm = tool("mdir", &["-b", "-i", &at, "::/Windows/CCM"]);
        assert!(!ccm.to_ascii_uppercase().contains("CERTIFICATES"), "{ccm}");
        assert!(ccm.contains("tasq-client.json"), "{ccm}");
        let xml = tool(
            "mtype",
            &["-i", &at, "::/Windows/Panther/tasq-sysprep-unattend.xml"],
        );
        assert!(xml.contains("<SkipRearm>1</SkipRearm>"), "{xml}");
        // The file system is consistent after the steps.
        let part = dir.path().join("part.img");
        cut(&img, off, len, &part);
        let o = Command::new("fsck.fat")
            .args(["-n", part.to_str().unwrap()])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success() && !text.contains("Dirty"), "{text}");
    }
}
