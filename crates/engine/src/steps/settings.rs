//! Apply Windows Settings and Apply Network Settings: they check their
//! settings, put them into the task sequence variables, and (re)write the
//! answer file `Windows\Panther\Unattend\unattend.xml` on the target
//! Windows volume from all the variables (`crate::unattend`), so each later
//! step's file carries the earlier steps' settings.
//!
//! The target volume is `%OSDTargetSystemDrive%` (set by Apply Operating
//! System), else `%OSDisk%` (the wizard's partition variable). Passwords and
//! product keys go to variables marked secret and never into a log line.

use super::{Registry, StepAction, StepContext, StepError, StepOutcome};
use crate::env::Environment;
use crate::events::Level;
use crate::runner::E_FAIL;
use crate::unattend::{self, AdminPassword, ImageArch, Join, Settings};
use tasq_tasksequence::steps as types;
use tasq_volume::fs::{VolPath, VolumeFs};

pub fn register(r: &mut Registry) {
    r.register(
        types::APPLY_WINDOWS_SETTINGS,
        Box::new(ApplyWindowsSettings),
    );
    r.register(
        types::APPLY_NETWORK_SETTINGS,
        Box::new(ApplyNetworkSettings),
    );
}

/// Where the answer file goes, inside the Windows volume.
pub const UNATTEND_PATH: &str = "Windows\\Panther\\Unattend\\unattend.xml";

/// The settings of Apply Windows Settings (variable names of the step).
const WINDOWS_VARS: [&str; 14] = [
    "OSDComputerName",
    "OSDRegisteredUserName",
    "OSDRegisteredOrgName",
    "OSDProductKey",
    "OSDTimeZone",
    "OSDServerLicenseMode",
    "OSDServerLicenseConnectionLimit",
    "OSDRandomAdminPassword",
    "OSDLocalAdminPassword",
    "OSDWindowsSettingsInputLocale",
    "OSDWindowsSettingsSystemLocale",
    "OSDWindowsSettingsUILanguage",
    "OSDWindowsSettingsUILanguageFallback",
    "OSDWindowsSettingsUserLocale",
];

/// The settings of Apply Network Settings. The adapter array
/// (`OSDAdapterCount`, `OSDAdapter<i>…`) is read from the environment
/// directly: it is global and the step only carries a hidden placeholder.
const NETWORK_VARS: [&str; 8] = [
    "OSDNetworkJoinType",
    "OSDWorkgroupName",
    "OSDDomainName",
    "OSDDomainOUName",
    "OSDJoinAccount",
    "OSDJoinPassword",
    "OSDDNSDomain",
    "OSDDNSSuffixSearchOrder",
];

pub(crate) fn fail(message: impl Into<String>) -> StepError {
    StepError::new(E_FAIL, message)
}

/// The step's settings over a copy of the environment: checked as a whole
/// before any variable of the real environment changes.
fn staged_env(ctx: &StepContext, vars: &[&str]) -> Environment {
    let mut env = ctx.env.clone();
    for name in vars {
        if let Some(v) = ctx.param(name) {
            let secret = tasq_tasksequence::secrets::is_secret(name, None);
            env.set_with(name, &v, secret);
        }
    }
    env
}

/// The architecture for `processorArchitecture` when the image's is not known.
pub(crate) fn default_arch(ctx: &StepContext) -> ImageArch {
    ctx.computer.architecture.into()
}

/// Checks the whole answer file's settings from `env`; on success the
/// staged values replace the environment's.
pub(crate) fn check_and_commit(
    ctx: &mut StepContext,
    env: Environment,
) -> Result<Settings, StepError> {
    let mut env = env;
    // A random administrator password is made once and kept (secret), so
    // regenerating the file later does not change it.
    let random = env
        .get("OSDRandomAdminPassword")
        .and_then(tasq_tasksequence::model::parse_bool)
        .unwrap_or(false);
    if random && !env.is_set(unattend::VAR_RANDOM_ADMIN_PASSWORD) {
        let pw = unattend::random_password().map_err(|e| fail(e.to_string()))?;
        env.set_with(unattend::VAR_RANDOM_ADMIN_PASSWORD, &pw, true);
    }
    let settings = Settings::from_env(&env, default_arch(ctx))
        .map_err(|e| fail(format!("the answer file settings are not valid: {e}")))?;
    *ctx.env = env;
    Ok(settings)
}

/// The drive of the target Windows volume: `OSDTargetSystemDrive`, else `OSDisk`.
pub(crate) fn target_drive(ctx: &StepContext) -> Result<String, StepError> {
    for var in ["OSDTargetSystemDrive", "OSDisk"] {
        if let Some(v) = ctx.env.get(var).map(str::trim).filter(|v| !v.is_empty()) {
            if crate::volumes::drive_letter(v).is_none() {
                return Err(fail(format!(
                    "{var}={v:?} is not a drive letter such as C:"
                )));
            }
            return Ok(v.trim_end_matches(['\\', '/']).to_string());
        }
    }
    Err(fail(
        "no target Windows volume: neither OSDTargetSystemDrive (set by Apply Operating System) nor OSDisk is set",
    ))
}

/// Opens the target volume for writing.
pub(crate) fn open_target(ctx: &StepContext) -> Result<(String, Box<dyn VolumeFs>), StepError> {
    let drive = target_drive(ctx)?;
    let (fs, _) = ctx.open_drive(&drive, true)?;
    Ok((drive, fs))
}

pub(crate) fn vol_path(p: &str) -> Result<VolPath, StepError> {
    VolPath::parse(p).map_err(|e| fail(format!("{p}: {e}")))
}

/// Writes the answer file to the open target volume and logs where.
pub(crate) fn write_unattend(
    ctx: &mut StepContext,
    drive: &str,
    fs: &mut dyn VolumeFs,
    settings: &Settings,
) -> Result<(), StepError> {
    let xml = settings.render();
    let path = vol_path(UNATTEND_PATH)?;
    ctx.log(
        Level::Info,
        format!("Writing configuration information to {drive}\\{UNATTEND_PATH}"),
    );
    fs.write_file(&path, &mut xml.as_bytes())
        .map_err(|e| fail(format!("writing {drive}\\{UNATTEND_PATH}: {e}")))?;
    Ok(())
}

fn finish(ctx: &mut StepContext, settings: &Settings) -> Result<StepOutcome, StepError> {
    let (drive, mut fs) = open_target(ctx)?;
    write_unattend(ctx, &drive, fs.as_mut(), settings)?;
    fs.flush()
        .map_err(|e| fail(format!("writing {drive}: {e}")))?;
    Ok(StepOutcome::code(0))
}

/// Apply Windows Settings.
pub struct ApplyWindowsSettings;

impl StepAction for ApplyWindowsSettings {
    fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError> {
        let env = staged_env(ctx, &WINDOWS_VARS);
        if env.get("OSDComputerName").is_none() {
            return Err(fail(
                "OSDComputerName: must be set (the new computer's name)",
            ));
        }
        // Fail before any change when the target is unknown.
        target_drive(ctx)?;
        let s = check_and_commit(ctx, env)?;
        let notes = [
            ("computer name", s.computer_name.clone()),
            ("Registered Owner", s.registered_owner.clone()),
            ("Registered Organization", s.registered_org.clone()),
            ("Time Zone", s.time_zone.map(str::to_string)),
            ("system locale", s.locales.system.clone()),
            ("input locale", s.locales.input.clone()),
            ("UI language", s.locales.ui.clone()),
            ("user locale", s.locales.user.clone()),
        ];
        for (what, v) in notes {
            match v {
                Some(v) => ctx.log(Level::Info, format!("Setting the {what}: {v}")),
                None => ctx.log(
                    Level::Info,
                    format!("The {what} is not set in the environment. Not setting it in the unattend answer file."),
                ),
            }
        }
        ctx.log(
            Level::Info,
            if s.product_key.is_some() {
                "Setting the product key."
            } else {
                "The OSDProductKey variable is not set in the environment. Not setting the product key."
            },
        );
        match &s.admin {
            AdminPassword::Random(_) => ctx.log(
                Level::Info,
                "Setting a randomly generated local administrator password; the account will be disabled.",
            ),
            AdminPassword::Given(_) => ctx.log(Level::Info, "Setting local admin password."),
            AdminPassword::Unset => {}
        }
        if let Some(l) = &s.server_license {
            let text = match l {
                unattend::ServerLicense::PerSeat => "Server licensing: per seat (LicensingMode 2)".to_string(),
                unattend::ServerLicense::PerServer(n) => format!(
                    "Server licensing: per server, {n} connections (LicensingMode 4; the connection limit has no answer-file setting and is kept in OSDServerLicenseConnectionLimit only)"
                ),
            };
            ctx.log(Level::Info, text);
        }
        finish(ctx, &s)
    }
}

/// Apply Network Settings.
pub struct ApplyNetworkSettings;

impl StepAction for ApplyNetworkSettings {
    fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError> {
        let mut env = staged_env(ctx, &NETWORK_VARS);
        if env.get("OSDNetworkJoinType").is_none() {
            // The step's default: join the workgroup WORKGROUP.
            env.set("OSDNetworkJoinType", "1");
            if env.get("OSDWorkgroupName").is_none() {
                env.set("OSDWorkgroupName", "WORKGROUP");
            }
        }
        target_drive(ctx)?;
        let s = check_and_commit(ctx, env)?;
        match &s.join {
            Some(Join::Workgroup(w)) => ctx.log(Level::Info, format!("Joining workgroup: {w}")),
            Some(Join::Domain {
                domain,
                ou,
                account_domain,
                user,
                ..
            }) => ctx.log(
                Level::Info,
                format!(
                    "Joining domain: {domain} (OU {}) with the account {account_domain}\\{user}",
                    ou.as_deref().unwrap_or("default")
                ),
            ),
            None => {}
        }
        ctx.log(
            Level::Info,
            format!(
                "Getting namespace \"Microsoft-Windows-UnattendedJoin\" for architecture \"{}\"",
                s.arch.name()
            ),
        );
        for a in &s.adapters {
            ctx.log(
                Level::Info,
                format!(
                    "Adapter {}: {}",
                    a.identifier,
                    if a.dhcp {
                        "DHCP".to_string()
                    } else {
                        a.addresses.join(", ")
                    }
                ),
            );
        }
        finish(ctx, &s)
    }
}
