//! The full-OS steps: Install Software Updates, Install Application,
//! Prepare ConfigMgr Client for Capture, Prepare Windows for Capture. They
//! run when the engine runs inside the installed OS; the system volume is
//! drive `C:` (a host directory there). OS actions go through a
//! [`Platform`](crate::platform::Platform), injected at registration.
//!
//! Content library conventions (manifest `properties`, set with
//! `tasq content add … --property KEY=VALUE`):
//! - every `update` and `application` package: `install_command` (run with
//!   `/bin/sh -c` on Linux from the package's content folder, `%VAR%`
//!   expanded; the environment variable `SystemDrive` is the host folder of
//!   `C:`), `restart_codes` (default `3010 1641`: "installed, restart
//!   needed"), `success_codes` (default `0`; restart codes count as success
//!   too). A Linux process's exit code is 0–255, so 3010 cannot come from
//!   one: a package meant for Linux names its own restart code here;
//! - `update`: `update_id` (e.g. `KB5034441`; default the package ID),
//!   `title` (default the package name), `deployment` = `required` or
//!   `available`, `collections` = comma list of the collections the update
//!   is deployed to (an update deployed nowhere is never installed);
//! - `application`: `app_id` (the application model name that
//!   `ApplicationName` lists; the package name is what `<base>NN` variables
//!   name), detection: `detect_file` (a `C:\…` path: installed when it
//!   exists), optionally `detect_file_version` (installed when the file's
//!   version resource is at least this), or `detect_registry` (Windows only:
//!   evaluating it elsewhere is an error for that application).

use super::general::log_output;
use super::{Registry, StepAction, StepContext, StepError, StepOutcome};
use crate::content::{ContentLibrary, Manifest};
use crate::events::Level;
use crate::platform::{CommandRun, Membership, Platform, PlatformError, SysprepCommand};
use crate::runner::{RestartTarget, E_FAIL};
use crate::volumes::VolumeRef;
use std::sync::Arc;
use tasq_tasksequence::model::parse_bool;
use tasq_tasksequence::steps as types;

/// Installed update IDs (comma list), so a re-run after a restart skips them.
pub const INSTALLED_UPDATES_VAR: &str = "_TSQInstalledUpdates";
/// `<step name>|<next index>` while an Install Application step restarts mid-list.
pub const APP_PROGRESS_VAR: &str = "_TSQInstallApplicationProgress";
/// Applications that failed in the current Install Application step (comma list).
pub const APP_FAILED_VAR: &str = "_TSQInstallApplicationFailed";

/// The client's identity file, written by Setup Windows and ConfigMgr.
pub const CLIENT_FILE: &str = "C:\\Windows\\CCM\\tasq-client.json";
pub const SMSCFG_INI: &str = "C:\\Windows\\SMSCFG.INI";
pub const CLIENT_CERTS: &str = "C:\\Windows\\CCM\\Certificates";
/// The answer file Prepare Windows writes when activation is kept.
pub const SYSPREP_UNATTEND: &str = "C:\\Windows\\Panther\\tasq-sysprep-unattend.xml";

/// ERROR_SUCCESS_REBOOT_REQUIRED and ERROR_SUCCESS_REBOOT_INITIATED.
const RESTART_CODES: [i64; 2] = [3010, 1641];

pub fn register(r: &mut Registry) {
    register_with(r, crate::platform::native());
}

/// Registers the steps over a given platform (tests inject fakes).
pub fn register_with(r: &mut Registry, platform: Arc<dyn Platform>) {
    r.register(
        types::INSTALL_UPDATES,
        Box::new(InstallUpdates {
            platform: platform.clone(),
        }),
    );
    r.register(
        types::INSTALL_APPLICATION,
        Box::new(InstallApplication {
            platform: platform.clone(),
        }),
    );
    r.register(types::PREPARE_CLIENT, Box::new(PrepareClient));
    r.register(types::PREPARE_OS, Box::new(PrepareWindows { platform }));
}

fn fail(m: impl Into<String>) -> StepError {
    StepError::new(E_FAIL, m)
}

fn library<'a>(ctx: &StepContext<'a>, what: &str) -> Result<&'a dyn ContentLibrary, StepError> {
    ctx.content
        .ok_or_else(|| fail(format!("{what} needs a content library (--content)")))
}

/// A boolean setting; a value that is not true/false is an error naming it.
fn flag(ctx: &StepContext, name: &str, default: bool) -> Result<bool, StepError> {
    match ctx.param(name) {
        None => Ok(default),
        Some(v) => {
            parse_bool(&v).ok_or_else(|| fail(format!("{name}=\"{v}\" is not true or false")))
        }
    }
}

/// One installable package: what to run and which exit codes mean success.
struct Installer {
    id: String,
    label: String,
    command: String,
    success: Vec<i64>,
    /// Exit codes that mean "installed; restart needed".
    restart: Vec<i64>,
}

fn prop<'m>(m: &'m Manifest, key: &str) -> Option<&'m str> {
    m.properties
        .get(key)
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
}

impl Installer {
    fn from_manifest(m: &Manifest, label: String) -> Result<Installer, String> {
        let command = prop(m, "install_command")
            .ok_or_else(|| format!("package {} ({label}) has no install_command property", m.id))?
            .to_string();
        let codes = |key: &str, default: &[i64]| match prop(m, key) {
            None => Ok(default.to_vec()),
            Some(s) => s
                .split([' ', ','])
                .filter(|t| !t.is_empty())
                .map(|t| t.parse::<i64>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| {
                    format!(
                        "package {} ({label}): {key}=\"{s}\" is not a list of numbers",
                        m.id
                    )
                }),
        };
        let restart = codes("restart_codes", &RESTART_CODES)?;
        let mut success = codes("success_codes", &[0])?;
        success.extend(restart.iter().copied());
        Ok(Installer {
            id: m.id.clone(),
            label,
            command,
            success,
            restart,
        })
    }

    /// Runs the install command from the package's folder; the exit code.
    fn run(&self, ctx: &mut StepContext, platform: &dyn Platform) -> Result<i64, String> {
        let lib = library(ctx, "installing").map_err(|e| e.message)?;
        let dir = lib
            .content_dir(&self.id)
            .map_err(|e| format!("package {}: {e}", self.id))?;
        let cmdline = ctx.env.expand(&self.command);
        let mut env = Vec::new();
        if let Some(VolumeRef::HostDir { path }) = ctx.drives.get(&'C') {
            env.push(("SystemDrive".to_string(), path.display().to_string()));
        }
        ctx.log(
            Level::Info,
            format!("Installing {} from {}: {cmdline}", self.label, self.id),
        );
        let out = platform
            .run_command(&CommandRun {
                command_line: &cmdline,
                dir: Some(&dir),
                timeout: ctx.timeout,
                env: &env,
            })
            .map_err(|e| format!("{}: {e}", self.label))?;
        log_output(ctx, &out);
        Ok(out.code)
    }
}

// ---- Install Software Updates ----

pub struct InstallUpdates {
    platform: Arc<dyn Platform>,
}

struct Update {
    update_id: String,
    installer: Installer,
}

fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty())
}

/// The updates to install: deployed to one of the computer's collections,
/// required ones (or all with `all`), sorted by update ID.
fn select_updates(
    manifests: &[Manifest],
    collections: &[String],
    all: bool,
) -> Result<(Vec<Update>, Vec<String>), String> {
    let mut chosen = Vec::new();
    let mut notes = Vec::new();
    for m in manifests.iter().filter(|m| m.kind == "update") {
        let update_id = prop(m, "update_id").unwrap_or(&m.id).to_string();
        let title = prop(m, "title").unwrap_or(&m.name).to_string();
        let required = match prop(m, "deployment")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("required") => true,
            Some("available") => false,
            other => {
                return Err(format!(
                "update package {} ({update_id}): deployment=\"{}\" is not required or available",
                m.id,
                other.unwrap_or("")
            ))
            }
        };
        let targeted = prop(m, "collections").is_some_and(|c| {
            split_list(c).any(|c| collections.iter().any(|k| k.trim().eq_ignore_ascii_case(c)))
        });
        if !targeted {
            notes.push(format!(
                "{update_id} ({title}) is not deployed to any collection of this computer"
            ));
            continue;
        }
        if !required && !all {
            notes.push(format!(
                "{update_id} ({title}) is available, not required (SMSInstallUpdateTarget=Mandatory)"
            ));
            continue;
        }
        let installer = Installer::from_manifest(m, format!("update {update_id} ({title})"))?;
        chosen.push(Update {
            update_id,
            installer,
        });
    }
    chosen.sort_by(|a, b| a.update_id.cmp(&b.update_id));
    Ok((chosen, notes))
}

impl StepAction for InstallUpdates {
    fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError> {
        let target = ctx
            .param("SMSInstallUpdateTarget")
            .unwrap_or_else(|| "Mandatory".into());
        let all = match target.to_ascii_lowercase().as_str() {
            "mandatory" => false,
            "all" => true,
            _ => {
                return Err(fail(format!(
                    "SMSInstallUpdateTarget=\"{target}\" is not Mandatory or All"
                )))
            }
        };
        let lib = library(ctx, "Install Software Updates")?;
        let manifests = lib
            .list()
            .map_err(|e| fail(format!("content library: {e}")))?;
        let (updates, notes) =
            select_updates(&manifests, &ctx.computer.collections, all).map_err(fail)?;
        for n in notes {
            ctx.log(Level::Info, format!("Not installing {n}"));
        }
        let mut installed: Vec<String> = ctx
            .env
            .get(INSTALLED_UPDATES_VAR)
            .map(|s| split_list(s).map(str::to_string).collect())
            .unwrap_or_default();
        let pending: Vec<&Update> = updates
            .iter()
            .filter(|u| {
                !installed
                    .iter()
                    .any(|i| i.eq_ignore_ascii_case(&u.update_id))
            })
            .collect();
        ctx.log(
            Level::Info,
            format!(
                "{} update(s) apply, {} already installed, {} to install",
                updates.len(),
                updates.len() - pending.len(),
                pending.len()
            ),
        );
        let mut restart = false;
        for u in pending {
            let code = u.installer.run(ctx, self.platform.as_ref()).map_err(fail)?;
            if !u.installer.success.contains(&code) {
                return Err(StepError::new(
                    code,
                    format!(
                        "{} failed with exit code {code} (success codes {:?})",
                        u.installer.label, u.installer.success
                    ),
                ));
            }
            installed.push(u.update_id.clone());
            ctx.env.set(INSTALLED_UPDATES_VAR, &installed.join(","));
            if u.installer.restart.contains(&code) {
                ctx.log(
                    Level::Info,
                    format!("{} needs a restart (exit code {code})", u.installer.label),
                );
                restart = true;
            }
        }
        Ok(StepOutcome {
            exit_code: 0,
            // After the restart the step runs again and installs whatever is
            // still pending (nothing, when every update went in).
            restart: restart.then_some((RestartTarget::InstalledOs, true)),
        })
    }
}

// ---- Install Application ----

pub struct InstallApplication {
    platform: Arc<dyn Platform>,
}

/// Finds an application package by model name (`app_id`), package name or package ID.
fn find_app<'m>(apps: &[&'m Manifest], name: &str) -> Result<&'m Manifest, String> {
    let hits: Vec<&&Manifest> = apps
        .iter()
        .filter(|m| {
            prop(m, "app_id").is_some_and(|a| a.eq_ignore_ascii_case(name))
                || m.name.eq_ignore_ascii_case(name)
                || m.id.eq_ignore_ascii_case(name)
        })
        .collect();
    match hits.as_slice() {
        [one] => Ok(one),
        [] => Err(format!(
            "the application \"{name}\" is not in the content library"
        )),
        _ => Err(format!(
            "the application \"{name}\" matches several packages ({})",
            hits.iter()
                .map(|m| m.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// `a.b.c.d` → four numbers (missing parts are 0).
fn parse_version(s: &str) -> Option<[u64; 4]> {
    let mut v = [0u64; 4];
    let parts: Vec<&str> = s.trim().split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    for (slot, p) in v.iter_mut().zip(parts) {
        *slot = p.trim().parse().ok()?;
    }
    Some(v)
}

/// The file version of a Windows executable: the `VS_FIXEDFILEINFO` of its
/// version resource, found by its signature (0xFEEF04BD, DWORD-aligned as
/// the resource format requires).
pub fn file_version(data: &[u8]) -> Option<[u64; 4]> {
    const SIG: [u8; 4] = [0xBD, 0x04, 0xEF, 0xFE];
    let mut off = 0usize;
    while let Some(w) = data.get(off..off + 16) {
        if w.get(..4) == Some(&SIG[..]) {
            let dw = |i: usize| {
                w.get(i..i + 4)
                    .and_then(|b| b.try_into().ok())
                    .map(u32::from_le_bytes)
            };
            let (ms, ls) = (dw(8)?, dw(12)?);
            return Some([
                u64::from(ms >> 16),
                u64::from(ms & 0xFFFF),
                u64::from(ls >> 16),
                u64::from(ls & 0xFFFF),
            ]);
        }
        off += 4;
    }
    None
}

/// Largest file read to find its version.
const VERSION_READ_MAX: u64 = 256 << 20;

/// Whether the application's detection rule finds it installed; `None`
/// when it has no rule.
fn detect(ctx: &StepContext, m: &Manifest) -> Result<Option<bool>, String> {
    if let Some(r) = prop(m, "detect_registry") {
        return Err(format!(
            "its detection rule looks at the registry ({r}), which exists only on Windows; it cannot be evaluated here"
        ));
    }
    let Some(file) = prop(m, "detect_file") else {
        return Ok(None);
    };
    let file = ctx.env.expand(file);
    let (mut fs, path) = ctx.open_drive(&file, false).map_err(|e| e.message)?;
    let meta = fs.metadata(&path).map_err(|e| e.to_string())?;
    let Some(meta) = meta.filter(|e| e.kind == tasq_volume::fs::EntryKind::File) else {
        return Ok(Some(false));
    };
    let Some(want) = prop(m, "detect_file_version") else {
        return Ok(Some(true));
    };
    let want_v = parse_version(want)
        .ok_or_else(|| format!("detect_file_version=\"{want}\" is not a version (a.b.c.d)"))?;
    if meta.size > VERSION_READ_MAX {
        return Err(format!("{file} is too large to read its version"));
    }
    let data = fs
        .read_file(&path, VERSION_READ_MAX)
        .map_err(|e| e.to_string())?;
    Ok(Some(file_version(&data).is_some_and(|v| v >= want_v)))
}

/// The application names the step lists: `ApplicationName`, else the
/// values of `<BaseVariableName>01`, `02`, … up to the first one missing.
fn app_names(ctx: &StepContext) -> Result<Vec<String>, StepError> {
    if let Some(list) = ctx.param("ApplicationName") {
        let names: Vec<String> = split_list(&list).map(str::to_string).collect();
        if !names.is_empty() {
            return Ok(names);
        }
    }
    let Some(base) = ctx.param("BaseVariableName") else {
        return Err(fail(
            "neither ApplicationName nor BaseVariableName names an application",
        ));
    };
    let base = base.trim().to_string();
    tasq_tasksequence::variables::check_settable(&format!("{base}01"))
        .map_err(|e| fail(format!("BaseVariableName=\"{base}\": {e}")))?;
    // Two-digit suffixes: 01 … 99.
    Ok((1..=99)
        .map(|i| ctx.env.get(&format!("{base}{i:02}")).map(str::to_string))
        .take_while(Option::is_some)
        .flatten()
        .collect())
}

impl StepAction for InstallApplication {
    fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError> {
        let continue_on_error = flag(ctx, "ContinueOnInstallError", false)?;
        let names = app_names(ctx)?;
        if names.is_empty() {
            ctx.log(
                Level::Info,
                "No application to install (the base variable list is empty)",
            );
            return Ok(StepOutcome::code(0));
        }
        let lib = library(ctx, "Install Application")?;
        let manifests = lib
            .list()
            .map_err(|e| fail(format!("content library: {e}")))?;
        let apps: Vec<&Manifest> = manifests
            .iter()
            .filter(|m| m.kind == "application")
            .collect();
        // Every application is resolved before any is installed.
        let mut plan = Vec::new();
        for n in &names {
            let m = find_app(&apps, n).map_err(fail)?;
            let inst = Installer::from_manifest(m, format!("application \"{n}\"")).map_err(fail)?;
            plan.push((m, inst));
        }
        let step_name = ctx.step.name.clone();
        let start = match ctx
            .env
            .get(APP_PROGRESS_VAR)
            .and_then(|p| p.rsplit_once('|'))
        {
            Some((s, i)) if s == step_name => i.parse::<usize>().unwrap_or(0),
            _ => {
                ctx.env.set(APP_FAILED_VAR, "");
                0
            }
        };
        let mut failed: Vec<String> = ctx
            .env
            .get(APP_FAILED_VAR)
            .map(|s| split_list(s).map(str::to_string).collect())
            .unwrap_or_default();
        for (i, (m, inst)) in plan.iter().enumerate().skip(start) {
            let result = self.install_one(ctx, m, inst);
            match result {
                Ok(code) if inst.restart.contains(&code) => {
                    ctx.log(
                        Level::Info,
                        format!(
                            "{} needs a restart (exit code {code}); the step goes on after it",
                            inst.label
                        ),
                    );
                    ctx.env
                        .set(APP_PROGRESS_VAR, &format!("{step_name}|{}", i + 1));
                    ctx.env.set(APP_FAILED_VAR, &failed.join(","));
                    return Ok(StepOutcome {
                        exit_code: 0,
                        restart: Some((RestartTarget::InstalledOs, true)),
                    });
                }
                Ok(_) => {}
                Err(e) if continue_on_error => {
                    ctx.log(
                        Level::Warning,
                        format!("{} (exit code {}); continuing with the next application (ContinueOnInstallError)", e.message, e.code),
                    );
                    failed.push(names.get(i).cloned().unwrap_or_default());
                }
                Err(e) => {
                    ctx.env.set(APP_PROGRESS_VAR, "");
                    ctx.env.set(APP_FAILED_VAR, "");
                    return Err(e);
                }
            }
        }
        ctx.env.set(APP_PROGRESS_VAR, "");
        ctx.env.set(APP_FAILED_VAR, &failed.join(","));
        if !failed.is_empty() {
            ctx.log(
                Level::Warning,
                format!(
                    "{} of {} application(s) failed: {}",
                    failed.len(),
                    plan.len(),
                    failed.join(", ")
                ),
            );
        }
        Ok(StepOutcome::code(0))
    }
}

impl InstallApplication {
    /// Installs one application unless its detection rule finds it; the
    /// installer's exit code (a success code), or the failure.
    fn install_one(
        &self,
        ctx: &mut StepContext,
        m: &Manifest,
        inst: &Installer,
    ) -> Result<i64, StepError> {
        let label = &inst.label;
        match detect(ctx, m) {
            Err(e) => return Err(fail(format!("{label}: {e}"))),
            Ok(Some(true)) => {
                ctx.log(
                    Level::Info,
                    format!("{label} is already installed (detection rule); skipped"),
                );
                return Ok(0);
            }
            Ok(_) => {}
        }
        let code = inst.run(ctx, self.platform.as_ref()).map_err(fail)?;
        if !inst.success.contains(&code) {
            return Err(StepError::new(
                code,
                format!(
                    "{label} failed with exit code {code} (success codes {:?})",
                    inst.success
                ),
            ));
        }
        // ConfigMgr checks the detection rule after a successful install; a
        // restart-pending install is checked by the next run instead.
        if !inst.restart.contains(&code) && detect(ctx, m).map_err(fail)? == Some(false) {
            return Err(fail(format!(
                "{label}: the installer returned {code} but the detection rule does not find the application"
            )));
        }
        ctx.log(Level::Info, format!("{label} installed (exit code {code})"));
        Ok(code)
    }
}

// ---- Prepare ConfigMgr Client for Capture ----

pub struct PrepareClient;

/// Largest client identity file read.
const CLIENT_FILE_MAX: u64 = 1 << 20;

impl StepAction for PrepareClient {
    fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError> {
        let (mut fs, path) = ctx.open_drive(CLIENT_FILE, true)?;
        let present = fs
            .metadata(&path)
            .map_err(|e| fail(e.to_string()))?
            .is_some();
        if !present {
            return Err(fail(format!(
                "no ConfigMgr client is installed: {CLIENT_FILE} is missing (Setup Windows and ConfigMgr installs the client)"
            )));
        }
        let data = fs
            .read_file(&path, CLIENT_FILE_MAX)
            .map_err(|e| fail(e.to_string()))?;
        let mut doc: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&data)
            .map_err(|e| fail(format!("{CLIENT_FILE}: not a client identity file: {e}")))?;
        if doc.get("installed") == Some(&serde_json::Value::Bool(false)) {
            return Err(fail(format!(
                "no ConfigMgr client is installed: {CLIENT_FILE} says installed = false"
            )));
        }
        if !doc.contains_key("install_id") {
            ctx.log(
                Level::Warning,
                format!("{CLIENT_FILE} has no install_id; the capture guard cannot tell this installation apart"),
            );
        }
        let removed: Vec<&str> = ["client_guid", "site_code"]
            .into_iter()
            .filter(|k| doc.remove(*k).is_some())
            .collect();
        let text = serde_json::to_vec_pretty(&doc).map_err(|e| fail(e.to_string()))?;
        fs.write_file(&path, &mut text.as_slice())
            .map_err(|e| fail(e.to_string()))?;
        ctx.log(
            Level::Info,
            format!(
                "Removed the client identity from {CLIENT_FILE}: {}",
                if removed.is_empty() {
                    "nothing was left".to_string()
                } else {
                    removed.join(", ")
                }
            ),
        );
        for extra in [SMSCFG_INI, CLIENT_CERTS] {
            let p = crate::volumes::split_drive_path(extra)
                .and_then(|(_, rest)| tasq_volume::VolPath::parse(rest).ok())
                .ok_or_else(|| fail(format!("{extra} is not a path on a drive")))?;
            let there = fs.metadata(&p).map_err(|e| fail(e.to_string()))?.is_some();
            if there {
                fs.remove(&p).map_err(|e| fail(e.to_string()))?;
                ctx.log(Level::Info, format!("Deleted {extra}"));
            }
        }
        fs.flush().map_err(|e| fail(e.to_string()))?;
        Ok(StepOutcome::code(0))
    }
}

// ---- Prepare Windows for Capture ----

pub struct PrepareWindows {
    platform: Arc<dyn Platform>,
}

fn unattend_arch(a: crate::computer::Architecture) -> &'static str {
    match a {
        crate::computer::Architecture::X86 => "x86",
        crate::computer::Architecture::X64 => "amd64",
        crate::computer::Architecture::Arm64 => "arm64",
    }
}

/// An answer file for Sysprep's generalize pass that keeps the activation
/// state (`SkipRearm`).
pub fn keep_activation_unattend(arch: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<unattend xmlns=\"urn:schemas-microsoft-com:unattend\">\n  <settings pass=\"generalize\">\n    <component name=\"Microsoft-Windows-Security-SPP\" processorArchitecture=\"{arch}\" publicKeyToken=\"31bf3856ad364e35\" language=\"neutral\" versionScope=\"nonSxS\" xmlns:wcm=\"http://schemas.microsoft.com/WMIConfig/2002/State\">\n      <SkipRearm>1</SkipRearm>\n    </component>\n  </settings>\n</unattend>\n"
    )
}

impl StepAction for PrepareWindows {
    fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError> {
        let mass_storage = flag(ctx, "OSDBuildStorageDriverList", false)?;
        let keep_activation = flag(ctx, "OSDKeepActivation", false)?;
        if flag(ctx, "OSDShutdownPreparedOs", false)? {
            return Err(fail(
                "OSDShutdownPreparedOs=true (shut down after Sysprep) is not supported: the machine driver can restart into the boot environment but has no shutdown",
            ));
        }
        match self
            .platform
            .domain_membership()
            .map_err(|e| fail(format!("cannot tell whether the computer is domain-joined: {e}")))?
        {
            Membership::Domain(d) => {
                return Err(fail(format!(
                    "the computer is joined to the domain {d}; capture must be from a workgroup computer (Sysprep's generalize would leave the image with a broken domain membership): join a workgroup first"
                )))
            }
            Membership::Workgroup => {}
        }
        let mut cmd = SysprepCommand {
            program: "C:\\Windows\\System32\\Sysprep\\sysprep.exe".into(),
            args: vec!["/generalize".into(), "/oobe".into(), "/quit".into()],
        };
        if mass_storage {
            ctx.log(
                Level::Warning,
                "OSDBuildStorageDriverList: the mass storage driver list applies to Windows XP and Server 2003 Sysprep only; Sysprep from Windows Vista on has no such list, so nothing is added",
            );
        }
        if keep_activation {
            let (mut fs, p) = ctx.open_drive(SYSPREP_UNATTEND, true)?;
            let xml = keep_activation_unattend(unattend_arch(ctx.computer.architecture));
            fs.write_file(&p, &mut xml.as_bytes())
                .and_then(|_| fs.flush())
                .map_err(|e| fail(e.to_string()))?;
            cmd.args.push(format!("/unattend:{SYSPREP_UNATTEND}"));
        }
        ctx.log(
            Level::Info,
            format!("Running Sysprep: {}", cmd.command_line()),
        );
        let code = self
            .platform
            .run_sysprep(&cmd, ctx.timeout)
            .map_err(|e| match e {
                PlatformError::TimedOut { .. } => {
                    StepError::new(super::general::E_TIMEOUT, format!("Sysprep: {e}"))
                }
                other => fail(format!("Sysprep was not run: {other}")),
            })?;
        if code != 0 {
            return Err(StepError::new(
                code,
                format!("Sysprep failed with exit code {code}"),
            ));
        }
        Ok(StepOutcome {
            exit_code: 0,
            restart: Some((RestartTarget::BootEnvironment, false)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_versions_come_from_the_fixed_file_info() {
        let mut data = vec![0u8; 64];
        data.extend_from_slice(&[0xBD, 0x04, 0xEF, 0xFE]);
        data.extend_from_slice(&0x0001_0000u32.to_le_bytes());
        data.extend_from_slice(&((2u32 << 16) | 5).to_le_bytes());
        data.extend_from_slice(&((300u32 << 16) | 7).to_le_bytes());
        assert_eq!(file_version(&data), Some([2, 5, 300, 7]));
        // Misaligned signature: not a version resource.
        let mut odd = vec![0u8; 2];
        odd.extend_from_slice(&data[64..]);
        assert_eq!(file_version(&odd), None);
        // Truncated after the signature.
        assert_eq!(file_version(&data[..70]), None);
        assert_eq!(file_version(&[]), None);
        assert_eq!(parse_version("1.2"), Some([1, 2, 0, 0]));
        assert_eq!(parse_version("1.2.3.4.5"), None);
        assert_eq!(parse_version("x"), None);
    }

    fn manifest(kind: &str, id: &str, props: &[(&str, &str)]) -> Manifest {
        Manifest {
            id: id.into(),
            kind: kind.into(),
            name: format!("pkg {id}"),
            properties: props
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            files: vec![],
        }
    }

    #[test]
    fn updates_are_filtered_by_collection_and_deployment() {
        let ms = vec![
            manifest(
                "update",
                "TSQ00001",
                &[
                    ("update_id", "KB2"),
                    ("deployment", "required"),
                    ("collections", "C1, C2"),
                    ("install_command", "true"),
                ],
            ),
            manifest(
                "update",
                "TSQ00002",
                &[
                    ("update_id", "KB1"),
                    ("deployment", "available"),
                    ("collections", "c2"),
                    ("install_command", "true"),
                ],
            ),
            manifest(
                "update",
                "TSQ00003",
                &[
                    ("update_id", "KB3"),
                    ("deployment", "required"),
                    ("collections", "OTHER"),
                    ("install_command", "true"),
                ],
            ),
            manifest("application", "TSQ00004", &[("install_command", "true")]),
        ];
        let cols = vec!["C2".to_string()];
        let ids = |all| {
            select_updates(&ms, &cols, all)
                .unwrap()
                .0
                .into_iter()
                .map(|u| u.update_id)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(false), vec!["KB2"]);
        assert_eq!(ids(true), vec!["KB1", "KB2"]);
        let bad = vec![manifest(
            "update",
            "TSQ00009",
            &[("deployment", "sometimes"), ("collections", "C2")],
        )];
        let e = select_updates(&bad, &cols, true).err().unwrap();
        assert!(e.contains("TSQ00009") && e.contains("deployment"), "{e}");
        let nocmd = vec![manifest(
            "update",
            "TSQ00009",
            &[("deployment", "required"), ("collections", "C2")],
        )];
        let e = select_updates(&nocmd, &cols, false).err().unwrap();
        assert!(e.contains("install_command"), "{e}");
    }

    #[test]
    fn success_codes_parse_or_name_the_package() {
        let m = manifest(
            "application",
            "TSQ00001",
            &[("install_command", "x"), ("success_codes", "0 1641,3010")],
        );
        assert_eq!(
            Installer::from_manifest(&m, "a".into()).unwrap().success,
            vec![0, 1641, 3010, 3010, 1641]
        );
        let m = manifest(
            "application",
            "TSQ00001",
            &[("install_command", "x"), ("restart_codes", "194")],
        );
        let i = Installer::from_manifest(&m, "a".into()).unwrap();
        assert_eq!((i.success, i.restart), (vec![0, 194], vec![194]));
        let m = manifest(
            "application",
            "TSQ00001",
            &[("install_command", "x"), ("success_codes", "0 zero")],
        );
        let e = Installer::from_manifest(&m, "a".into()).err().unwrap();
        assert!(e.contains("TSQ00001") && e.contains("success_codes"), "{e}");
    }
}
