//! Setup Windows and ConfigMgr (`SMS_TaskSequence_SetupWindowsAndSMSAction`):
//! the hand-off from the boot environment to the installed OS.
//!
//! On the target Windows volume it
//! - regenerates `Windows\Panther\Unattend\unattend.xml` from the variables
//!   (now with the driver folders of `_TSQDriverPaths`);
//! - stages the client package (`_SMSClientPackageID`, which must hold
//!   `ccmsetup.exe`) to `_SMSTaskSequence\Packages\<id>` and its
//!   installation properties (`SMSClientInstallProperties`) to
//!   `_SMSTaskSequence\ClientInstallProperties.txt`;
//! - writes the client identity `Windows\CCM\tasq-client.json`
//!   (`install_id`, `client_guid`, `site_code`, `installed_by`, `installed`),
//!   which the capture guard and Prepare ConfigMgr Client for Capture read;
//! - writes `Windows\Setup\Scripts\SetupComplete.cmd` (CRLF), which Windows
//!   Setup runs once at the end of setup: it installs the client with
//!   `ccmsetup.exe` and the properties, then resumes the sequence with
//!   `%SystemDrive%\_SMSTaskSequence\tasq\tasq.exe run --resume --computer
//!   %SystemDrive%\_SMSTaskSequence\tasq\computer.toml --state
//!   %SystemDrive%\_SMSTaskSequence\tasq\state` (or the command line in
//!   `_TSQResumeCommandLine`, when set). tasq itself is not staged there by
//!   this step;
//! - then asks for a restart into the installed OS; the runner journals the
//!   full-OS phase and the machine driver decides what a restart means (a
//!   disk-image computer ends the run with its hand-off message).
//!
//! Everything is checked (package, properties, answer-file settings, target
//! volume) before the first write.

use super::settings::{check_and_commit, fail, open_target, vol_path, write_unattend};
use super::{Registry, StepAction, StepContext, StepError, StepOutcome};
use crate::events::Level;
use crate::runner::RestartTarget;
use serde::Serialize;
use std::path::Path;
use tasq_tasksequence::steps as types;

pub fn register(r: &mut Registry) {
    r.register(types::SETUP_WINDOWS, Box::new(SetupWindowsAndConfigMgr));
}

pub const IDENTITY_PATH: &str = "Windows\\CCM\\tasq-client.json";
pub const SETUP_COMPLETE_PATH: &str = "Windows\\Setup\\Scripts\\SetupComplete.cmd";
pub const PROPERTIES_PATH: &str = "_SMSTaskSequence\\ClientInstallProperties.txt";
/// Overrides the resume command line written into SetupComplete.cmd.
pub const VAR_RESUME_COMMAND: &str = "_TSQResumeCommandLine";
pub const DEFAULT_RESUME_COMMAND: &str = "\"%SystemDrive%\\_SMSTaskSequence\\tasq\\tasq.exe\" run --resume --computer \"%SystemDrive%\\_SMSTaskSequence\\tasq\\computer.toml\" --state \"%SystemDrive%\\_SMSTaskSequence\\tasq\\state\"";

/// The client identity file (field names are relied on by other steps).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ClientIdentity {
    pub install_id: String,
    pub client_guid: String,
    pub site_code: Option<String>,
    pub installed_by: String,
    pub installed: String,
}

/// A random (version 4) UUID, lower-case hyphenated.
pub fn new_uuid() -> Result<String, StepError> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).map_err(|e| fail(format!("no random numbers: {e}")))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// Now as RFC 3339 UTC (`2026-11-27T08:17:41Z`).
pub fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (y, mo, d, h, mi, s) = crate::log::civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `SMSSITECODE=P01` (any case, value optionally quoted) in ccmsetup properties.
pub fn site_code(props: &str) -> Option<String> {
    props.split_whitespace().find_map(|tok| {
        let (k, v) = tok.split_once('=')?;
        k.eq_ignore_ascii_case("SMSSITECODE")
            .then(|| v.trim_matches('"').to_string())
            .filter(|v| !v.is_empty())
    })
}

/// The first-boot hook, with CRLF line endings. `%` in the properties is
/// doubled so cmd passes it through literally.
pub fn setup_complete_cmd(package_id: &str, props: &str, resume: &str) -> String {
    let props = props.replace('%', "%%");
    let lines = [
        "@echo off".to_string(),
        "rem Written by tasq (Setup Windows and ConfigMgr): install the ConfigMgr client, then resume the task sequence.".to_string(),
        format!("set TSQPKG=%SystemDrive%\\_SMSTaskSequence\\Packages\\{package_id}"),
        "set TSQLOG=%SystemRoot%\\Setup\\Scripts\\tasq-setupcomplete.log".to_string(),
        "echo %DATE% %TIME% installing the client >> \"%TSQLOG%\"".to_string(),
        format!("start \"\" /wait \"%TSQPKG%\\ccmsetup.exe\" {props}").trim_end().to_string(),
        "echo %DATE% %TIME% ccmsetup exit code %ERRORLEVEL% >> \"%TSQLOG%\"".to_string(),
        "echo %DATE% %TIME% resuming the task sequence >> \"%TSQLOG%\"".to_string(),
        format!("{resume} >> \"%TSQLOG%\" 2>&1"),
        "echo %DATE% %TIME% task sequence exit code %ERRORLEVEL% >> \"%TSQLOG%\"".to_string(),
    ];
    let mut s = lines.join("\r\n");
    s.push_str("\r\n");
    s
}

/// `ccmsetup.exe` at the top of the package folder (any case).
fn has_ccmsetup(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten().any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .eq_ignore_ascii_case("ccmsetup.exe")
                    && e.path().is_file()
            })
        })
        .unwrap_or(false)
}

/// Setup Windows and ConfigMgr.
pub struct SetupWindowsAndConfigMgr;

impl StepAction for SetupWindowsAndConfigMgr {
    fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError> {
        // ---- checks, before any write ----
        let id = ctx
            .param("_SMSClientPackageID")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| fail("_SMSClientPackageID: the step names no client package"))?;
        let lib = ctx.content.ok_or_else(|| {
            fail(format!(
                "client package {id}: no content library was given to the run"
            ))
        })?;
        let manifest = lib
            .manifest(&id)
            .map_err(|e| fail(format!("client package {id}: {e}")))?;
        let src = lib
            .content_dir(&id)
            .map_err(|e| fail(format!("client package {id}: {e}")))?;
        if !has_ccmsetup(&src) {
            return Err(fail(format!(
                "client package {id} ({}) has no ccmsetup.exe at its top level",
                manifest.name
            )));
        }
        if manifest.kind != "client" {
            ctx.log(
                Level::Warning,
                format!(
                    "package {id} is a {} package, not a client package",
                    manifest.kind
                ),
            );
        }
        let props = ctx.param("SMSClientInstallProperties").unwrap_or_default();
        if props.contains(['\r', '\n']) {
            return Err(fail("SMSClientInstallProperties: must be one line"));
        }
        let resume = ctx
            .env
            .get(VAR_RESUME_COMMAND)
            .map(str::to_string)
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_RESUME_COMMAND.to_string());
        if resume.contains(['\r', '\n']) {
            return Err(fail(format!("{VAR_RESUME_COMMAND}: must be one line")));
        }
        super::settings::target_drive(ctx)?;
        let env = ctx.env.clone();
        let settings = check_and_commit(ctx, env)?;
        let identity = ClientIdentity {
            install_id: new_uuid()?,
            client_guid: format!("GUID:{}", new_uuid()?.to_ascii_uppercase()),
            site_code: site_code(&props),
            installed_by: "tasq".into(),
            installed: rfc3339_now(),
        };
        let identity_json = serde_json::to_string_pretty(&identity)
            .map_err(|e| fail(format!("client identity: {e}")))?;

        // ---- writes ----
        let (drive, mut fs) = open_target(ctx)?;
        write_unattend(ctx, &drive, fs.as_mut(), &settings)?;
        if !settings.driver_paths.is_empty() {
            ctx.log(
                Level::Info,
                format!(
                    "Driver paths for offline servicing: {}",
                    settings.driver_paths.join("; ")
                ),
            );
        }
        let dest = vol_path(&format!("_SMSTaskSequence\\Packages\\{id}"))?;
        ctx.log(
            Level::Info,
            format!("Staging the client package {id} to {drive}\\{dest}"),
        );
        let stats = tasq_volume::fs::copy_host_tree(fs.as_mut(), &src, &dest)
            .map_err(|e| fail(format!("staging client package {id}: {e}")))?;
        for s in &stats.skipped {
            ctx.log(Level::Warning, format!("not staged: {s}"));
        }
        ctx.log(
            Level::Info,
            format!("Staged {} files ({} bytes)", stats.files, stats.bytes),
        );
        let writes = [
            (PROPERTIES_PATH, format!("{props}\r\n")),
            (IDENTITY_PATH, identity_json),
            (
                SETUP_COMPLETE_PATH,
                setup_complete_cmd(&id, &props, &resume),
            ),
        ];
        for (p, text) in writes {
            let path = vol_path(p)?;
            fs.write_file(&path, &mut text.as_bytes())
                .map_err(|e| fail(format!("writing {drive}\\{p}: {e}")))?;
            ctx.log(Level::Info, format!("Wrote {drive}\\{p}"));
        }
        fs.flush()
            .map_err(|e| fail(format!("writing {drive}: {e}")))?;
        ctx.log(
            Level::Info,
            format!(
                "Client {} prepared (site code {}); restarting into the installed OS, where SetupComplete.cmd installs the client and resumes the sequence",
                identity.client_guid,
                identity.site_code.as_deref().unwrap_or("none")
            ),
        );
        Ok(StepOutcome {
            exit_code: 0,
            restart: Some((RestartTarget::InstalledOs, false)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4() {
        let a = new_uuid().unwrap();
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
        assert!(matches!(a.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
        assert_ne!(a, new_uuid().unwrap());
    }

    #[test]
    fn site_code_is_found_in_properties() {
        assert_eq!(site_code("SMSSITECODE=P01 SMSMP=mp"), Some("P01".into()));
        assert_eq!(site_code("smssitecode=\"AUTO\""), Some("AUTO".into()));
        assert_eq!(site_code("SMSMP=mp"), None);
        assert_eq!(site_code("SMSSITECODE="), None);
    }

    #[test]
    fn setup_complete_has_crlf_and_escapes_percent() {
        let s = setup_complete_cmd("TSQ00003", "SMSSITECODE=P01 X=50%", "tasq run --resume");
        assert!(s.ends_with("\r\n"));
        assert_eq!(s.matches('\n').count(), s.matches("\r\n").count());
        assert!(s.contains("ccmsetup.exe\" SMSSITECODE=P01 X=50%%\r\n"));
        assert!(s.contains("Packages\\TSQ00003"));
        assert!(s.contains("tasq run --resume >> "));
    }

    #[test]
    fn rfc3339_has_the_right_shape() {
        let t = rfc3339_now();
        assert_eq!(t.len(), 20);
        assert!(t.ends_with('Z'));
        assert_eq!(&t[4..5], "-");
        assert_eq!(&t[10..11], "T");
    }
}
