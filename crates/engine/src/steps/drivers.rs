//! The driver steps: Auto Apply Drivers (`SMS_TaskSequence_AutoApplyAction`)
//! and Apply Driver Package (`SMS_TaskSequence_ApplyDriverPackageAction`).
//!
//! ConfigMgr's osddriverclient stages the chosen drivers into the offline
//! Windows and lets Windows Setup install them. Here the chosen drivers are
//! copied to `_SMSTaskSequence\Drivers\<n>` on the Windows volume
//! (`%OSDTargetSystemDrive%`, else `%OSDisk%`) and each staged folder
//! (`C:\_SMSTaskSequence\Drivers\<n>`) is appended to `_TSQDriverPaths`
//! (`;`-separated), which the unattend writer turns into the
//! `offlineServicing` pass's `Microsoft-Windows-PnpCustomizationsNonWinPE`
//! `DriverPaths`, so Setup installs them.
//!
//! Auto Apply Drivers matches the computer's PnP IDs against every driver
//! package of the content library (`tasq_drivers::Catalog`, Windows'
//! ranking); Apply Driver Package stages one whole package (only the INFs
//! at its top level unless `OSDRecurse` is true).
//!
//! The image the drivers are for: `OSDImageArchitecture` (x86, x64/amd64,
//! arm64) else the computer's architecture; its Windows version from
//! `_TSQImageOSVersion` (`10.0.19045`) when known, else every OS-version
//! decoration applies.

use super::{Registry, StepAction, StepContext, StepError, StepOutcome};
use crate::computer::Architecture;
use crate::events::Level;
use crate::runner::E_FAIL;
use crate::volumes::drive_letter;
use std::path::PathBuf;
use tasq_drivers::catalog::{find_infs, Catalog, Package, SelectOptions, Target};
use tasq_drivers::driver::{Arch, OsVersion};
use tasq_tasksequence::steps as types;
use tasq_volume::fs::{copy_host_tree_except, FsError, VolPath};

/// Staged driver folders for the unattend writer (`;`-separated).
pub const DRIVER_PATHS_VAR: &str = "_TSQDriverPaths";
/// The Windows version of the applied image, when the apply step knows it.
pub const IMAGE_OS_VERSION_VAR: &str = "_TSQImageOSVersion";
/// Where drivers are staged on the Windows volume.
pub const STAGING_DIR: &str = "_SMSTaskSequence\\Drivers";

pub fn register(r: &mut Registry) {
    r.register(types::AUTO_APPLY_DRIVERS, Box::new(AutoApplyDrivers));
    r.register(types::APPLY_DRIVER_PACKAGE, Box::new(ApplyDriverPackage));
}

fn fail(m: impl Into<String>) -> StepError {
    StepError::new(E_FAIL, m)
}

fn bool_param(ctx: &StepContext, name: &str, default: bool) -> Result<bool, StepError> {
    match ctx.param(name) {
        None => Ok(default),
        Some(v) => tasq_tasksequence::model::parse_bool(v.trim())
            .ok_or_else(|| fail(format!("{name}={v:?} is not true or false"))),
    }
}

/// The architecture and Windows version the drivers must fit.
fn target(ctx: &StepContext) -> Result<Target, StepError> {
    let arch = match ctx.param("OSDImageArchitecture") {
        Some(a) => Arch::parse(&a).ok_or_else(|| {
            fail(format!(
                "OSDImageArchitecture={a:?} is not x86, x64 (amd64) or arm64"
            ))
        })?,
        None => match ctx.computer.architecture {
            Architecture::X86 => Arch::X86,
            Architecture::X64 => Arch::Amd64,
            Architecture::Arm64 => Arch::Arm64,
        },
    };
    let os = match ctx
        .env
        .get(IMAGE_OS_VERSION_VAR)
        .filter(|v| !v.trim().is_empty())
    {
        Some(v) => Some(OsVersion::parse(v).ok_or_else(|| {
            fail(format!(
                "{IMAGE_OS_VERSION_VAR}={v:?} is not a Windows version such as 10.0.19045"
            ))
        })?),
        None => None,
    };
    Ok(Target { arch, os })
}

/// The drive letter of the Windows volume, checked against the drive map.
fn destination(ctx: &StepContext) -> Result<char, StepError> {
    for var in ["OSDTargetSystemDrive", "OSDisk"] {
        let Some(v) = ctx.env.get(var).map(str::trim).filter(|v| !v.is_empty()) else {
            continue;
        };
        let letter =
            drive_letter(v).ok_or_else(|| fail(format!("{var}={v:?} is not a drive letter")))?;
        if !ctx.drives.contains_key(&letter) {
            return Err(fail(format!(
                "{var}={v:?}: no volume has the drive letter {letter}:"
            )));
        }
        return Ok(letter);
    }
    Err(fail(
        "neither OSDTargetSystemDrive nor OSDisk is set: no Windows volume to stage drivers on (apply an operating system image first)",
    ))
}

fn categories_of(props: &std::collections::BTreeMap<String, String>) -> Vec<String> {
    props
        .get("categories")
        .map(|c| {
            c.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Logs the parser's warnings for each INF (a few per file).
fn log_inf_warnings(ctx: &mut StepContext, catalog: &Catalog) {
    for d in &catalog.drivers {
        let w = &d.inf.warnings;
        if w.is_empty() {
            continue;
        }
        let shown: Vec<String> = w.iter().take(3).map(|x| x.to_string()).collect();
        ctx.log(
            Level::Warning,
            format!(
                "{}: {} line(s) skipped or guessed: {}{}",
                d.path.display(),
                w.len(),
                shown.join("; "),
                if w.len() > 3 { "; …" } else { "" }
            ),
        );
    }
}

/// One staging job: a host folder and the host paths inside it to leave out.
struct Stage {
    src: PathBuf,
    skip: Vec<PathBuf>,
}

/// Copies each job to the next free `_SMSTaskSequence\Drivers\<n>` on the
/// volume and appends the folders to `_TSQDriverPaths`. Returns the paths.
fn stage(ctx: &mut StepContext, letter: char, jobs: &[Stage]) -> Result<Vec<String>, StepError> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let (mut fs, _) = ctx.open_drive(&format!("{letter}:"), true)?;
    let fs_err = |e: FsError| fail(format!("staging drivers: {e}"));
    let base = VolPath::parse(STAGING_DIR).map_err(fail)?;
    let mut next = 1u32;
    if fs.metadata(&base).map_err(fs_err)?.is_some() {
        for e in fs.read_dir(&base).map_err(fs_err)? {
            if let Ok(n) = e.name.parse::<u32>() {
                next = next.max(n.saturating_add(1));
            }
        }
    }
    let mut staged = Vec::new();
    for job in jobs {
        let dest = base.join(&next.to_string()).map_err(fail)?;
        let stats =
            copy_host_tree_except(fs.as_mut(), &job.src, &dest, &job.skip).map_err(fs_err)?;
        for s in &stats.skipped {
            ctx.log(Level::Warning, format!("not staged: {s}"));
        }
        let path = format!("{letter}:\\{STAGING_DIR}\\{next}");
        ctx.log(
            Level::Info,
            format!(
                "Staged {} to {path} ({} files, {} bytes)",
                job.src.display(),
                stats.files,
                stats.bytes
            ),
        );
        staged.push(path);
        next = next.saturating_add(1);
    }
    fs.flush().map_err(fs_err)?;
    let mut all: Vec<String> = ctx
        .env
        .get(DRIVER_PATHS_VAR)
        .unwrap_or("")
        .split(';')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    for p in &staged {
        if !all.iter().any(|a| a.eq_ignore_ascii_case(p)) {
            all.push(p.clone());
        }
    }
    ctx.env.set(DRIVER_PATHS_VAR, &all.join(";"));
    Ok(staged)
}

/// Auto Apply Drivers.
pub struct AutoApplyDrivers;

impl StepAction for AutoApplyDrivers {
    fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError> {
        // Every setting is checked before anything is read or written.
        let opts = SelectOptions {
            best_match: bool_param(ctx, "OSDAutoApplyDriverBestMatch", true)?,
            allow_unsigned: bool_param(ctx, "OSDAllowUnsignedDriver", false)?,
            categories: ctx
                .param("OSDAutoApplyDriverCategoryList")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        };
        let target = target(ctx)?;
        let letter = destination(ctx)?;
        let lib = ctx
            .content
            .ok_or_else(|| fail("Auto Apply Drivers needs the content library (--content)"))?;
        let mut catalog = Catalog::new();
        let manifests = lib
            .list()
            .map_err(|e| fail(format!("listing the content library: {e}")))?;
        for m in manifests.into_iter().filter(|m| m.kind == "driver") {
            let dir = lib
                .content_dir(&m.id)
                .map_err(|e| fail(format!("driver package {}: {e}", m.id)))?;
            let package = Package {
                id: m.id.clone(),
                name: m.name.clone(),
                categories: categories_of(&m.properties),
                dir,
            };
            catalog.add_package(package, true).map_err(|e| {
                fail(format!(
                    "driver package {} ({}): unreadable INF {e}",
                    m.id, m.name
                ))
            })?;
        }
        log_inf_warnings(ctx, &catalog);
        ctx.log(
            Level::Info,
            format!(
                "Driver catalog: {} INF(s) in {} driver package(s); matching for {}{}, {}, unsigned drivers {}{}",
                catalog.drivers.len(),
                catalog.packages.len(),
                target.arch.name(),
                target
                    .os
                    .map(|o| format!(" Windows {}.{}.{}", o.major, o.minor, o.build))
                    .unwrap_or_default(),
                if opts.best_match {
                    "best matched driver per device"
                } else {
                    "all compatible drivers"
                },
                if opts.allow_unsigned { "allowed" } else { "not allowed" },
                if opts.categories.is_empty() {
                    String::new()
                } else {
                    format!(", categories {}", opts.categories.join(", "))
                }
            ),
        );
        let pnp = ctx.computer.pnp_ids.clone();
        if pnp.is_empty() {
            ctx.log(
                Level::Warning,
                "The computer lists no PnP devices (pnp_ids); no drivers to apply",
            );
        }
        let sel = catalog.select(&pnp, target, &opts);
        for dev in &sel.devices {
            if dev.chosen.is_empty() {
                let why: Vec<String> = dev
                    .excluded
                    .iter()
                    .map(|(c, r)| format!("{}: {r}", c.explain(&catalog)))
                    .collect();
                ctx.log(
                    Level::Warning,
                    format!(
                        "No driver found for device {}{}",
                        dev.device.pnp_id,
                        if why.is_empty() {
                            String::new()
                        } else {
                            format!(" (left out: {})", why.join("; "))
                        }
                    ),
                );
                continue;
            }
            for (i, c) in dev.chosen.iter().enumerate() {
                ctx.log(
                    Level::Info,
                    format!(
                        "Device {}: {} {}",
                        dev.device.pnp_id,
                        if i == 0 { "chose" } else { "also compatible:" },
                        c.explain(&catalog)
                    ),
                );
            }
        }
        // Stage each chosen INF's folder once, in the order chosen.
        let mut jobs: Vec<Stage> = Vec::new();
        for d in sel.drivers() {
            let Some(drv) = catalog.drivers.get(d) else {
                continue;
            };
            let folder = drv.folder().to_path_buf();
            if !jobs.iter().any(|j| j.src == folder) {
                jobs.push(Stage {
                    src: folder,
                    skip: Vec::new(),
                });
            }
        }
        let staged = stage(ctx, letter, &jobs)?;
        ctx.log(
            Level::Info,
            format!(
                "Auto Apply Drivers staged {} driver folder(s); {DRIVER_PATHS_VAR}={}",
                staged.len(),
                ctx.env.get(DRIVER_PATHS_VAR).unwrap_or("")
            ),
        );
        Ok(StepOutcome::code(0))
    }
}

/// Apply Driver Package.
pub struct ApplyDriverPackage;

impl StepAction for ApplyDriverPackage {
    fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError> {
        let id = ctx
            .param("OSDApplyDriverDriverPackageID")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                fail("OSDApplyDriverDriverPackageID is not set: no driver package to apply")
            })?;
        let recurse = bool_param(ctx, "OSDRecurse", false)?;
        let allow_unsigned = bool_param(ctx, "OSDAllowUnsignedDriver", false)?;
        let target = target(ctx)?;
        let letter = destination(ctx)?;
        let lib = ctx.content.ok_or_else(|| {
            fail(format!(
                "driver package {id} needed but no content library given (--content)"
            ))
        })?;
        let m = lib
            .manifest(&id)
            .map_err(|e| fail(format!("OSDApplyDriverDriverPackageID={id}: {e}")))?;
        if m.kind != "driver" {
            return Err(fail(format!(
                "OSDApplyDriverDriverPackageID={id}: package \"{}\" is a {} package, not a driver package",
                m.name, m.kind
            )));
        }
        let dir = lib
            .content_dir(&id)
            .map_err(|e| fail(format!("driver package {id}: {e}")))?;
        let mut catalog = Catalog::new();
        let n = catalog
            .add_package(
                Package {
                    id: id.clone(),
                    name: m.name.clone(),
                    categories: categories_of(&m.properties),
                    dir: dir.clone(),
                },
                recurse,
            )
            .map_err(|e| {
                fail(format!(
                    "driver package {id} ({}): unreadable INF {e}",
                    m.name
                ))
            })?;
        log_inf_warnings(ctx, &catalog);
        if n == 0 {
            return Err(fail(format!(
                "driver package {id} has no INF file{}",
                if recurse {
                    ""
                } else {
                    " at its top level (OSDRecurse is false)"
                }
            )));
        }
        let mut skip = Vec::new();
        if !recurse {
            // Subfolders holding INFs stay out, so Setup's recursive search
            // of the staged folder sees only the top-level INFs.
            for e in std::fs::read_dir(&dir)
                .map_err(|e| fail(format!("{}: {e}", dir.display())))?
                .flatten()
            {
                let p = e.path();
                if e.file_type().is_ok_and(|t| t.is_dir())
                    && find_infs(&p, true).map(|v| !v.is_empty()).unwrap_or(true)
                {
                    ctx.log(
                        Level::Info,
                        format!(
                            "{} not staged: it holds INFs and OSDRecurse is false",
                            p.display()
                        ),
                    );
                    skip.push(p);
                }
            }
        }
        let mut usable = 0;
        for d in &catalog.drivers {
            let fits = d
                .inf
                .manufacturers
                .iter()
                .any(|mf| mf.section_for(target.arch, target.os).is_some());
            if !fits {
                ctx.log(
                    Level::Warning,
                    format!(
                        "{}: no Models section for {}; Windows will not use it",
                        d.rel_path,
                        target.arch.name()
                    ),
                );
            }
            if !d.signed(target) && !allow_unsigned {
                ctx.log(
                    Level::Warning,
                    format!(
                        "{}: unsigned (no catalog file for {} next to it) and OSDAllowUnsignedDriver is false; not staged",
                        d.rel_path,
                        target.arch.name()
                    ),
                );
                skip.push(d.path.clone());
                continue;
            }
            usable += 1;
            ctx.log(
                Level::Info,
                format!(
                    "{}: class {}, provider {}, DriverVer {} {}",
                    d.rel_path,
                    d.inf.class,
                    d.inf.provider,
                    d.inf.driver_ver.date_text(),
                    d.inf.driver_ver.version_text()
                ),
            );
        }
        if usable == 0 {
            return Err(fail(format!(
                "driver package {id}: none of its {n} INF(s) is signed and OSDAllowUnsignedDriver is false"
            )));
        }
        let staged = stage(ctx, letter, &[Stage { src: dir, skip }])?;
        ctx.log(
            Level::Info,
            format!(
                "Apply Driver Package {id} (\"{}\"): {usable} INF(s) staged to {}",
                m.name,
                staged.join(", ")
            ),
        );
        Ok(StepOutcome::code(0))
    }
}
