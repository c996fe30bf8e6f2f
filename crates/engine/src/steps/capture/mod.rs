//! The capture family: Capture Operating System Image and Connect to
//! Network Folder.
//!
//! Capture (boot environment only) takes every NTFS/FAT32 volume of the
//! computer's non-USB disks, in disk and partition order, as its own image
//! of one LZX WIM with the default Windows exclusions, and writes it to a
//! local path or an SMB share (`\\server\share\dir\file.wim`,
//! `smb://server:port/share/...`, or a drive letter that Connect to
//! Network Folder mapped). Every setting is checked and the share
//! connected and authenticated before the first volume is read; the WIM
//! reaches its name only complete (temporary name, then rename). The
//! guard (see [`guard`]) refuses a second capture from the same
//! reference computer and marks the computer after a capture.

pub mod dest;
pub mod guard;
pub mod smb;
mod smbffi;

use super::{Registry, StepAction, StepContext, StepError, StepOutcome};
use crate::events::Level;
use crate::runner::{Phase, E_FAIL};
use crate::volumes::VolumeRef;
use dest::{parse_destination, Account, Destination, DriveTarget, SmbLocation};
use smb::SmbShare;
use std::path::{Path, PathBuf};
use tasq_tasksequence::steps as types;
use tasq_volume::disk_capture::{capture_volume, disk_volumes, DiskVolume};
use tasq_volume::VolPath;
use tasq_wim::capture_config::CaptureConfig;
use tasq_wim::writer::{ImageOptions, WimWriter, WriteOptions};
use tasq_wim::CompressionFormat;

/// ConfigMgr's type name of Connect to Network Folder.
pub const CONNECT_NETWORK_FOLDER: &str = "SMS_TaskSequence_ConnectNetworkFolderAction";

/// Variables that keep a Connect to Network Folder mapping for later steps
/// (journaled with the environment; the password one is secret).
fn net_vars(letter: char) -> [String; 3] {
    [
        format!("_TSQNetworkFolder_{letter}"),
        format!("_TSQNetworkFolderAccount_{letter}"),
        format!("_TSQNetworkFolderPassword_{letter}"),
    ]
}

pub fn register(r: &mut Registry) {
    r.register(types::CAPTURE_OS, Box::new(CaptureOsImage));
    r.register(CONNECT_NETWORK_FOLDER, Box::new(ConnectNetworkFolder));
}

fn fail(m: impl Into<String>) -> StepError {
    StepError::new(E_FAIL, m)
}

/// A mapped network drive: location, account, password.
fn mapped_drive(ctx: &StepContext, letter: char) -> Option<(SmbLocation, String, String)> {
    let [p, a, w] = net_vars(letter);
    let loc = SmbLocation::parse(ctx.env.get(&p)?).ok()?;
    Some((
        loc,
        ctx.env.get(&a).unwrap_or("").to_string(),
        ctx.env.get(&w).unwrap_or("").to_string(),
    ))
}

/// Connect to Network Folder: checks the account on the share and records
/// the drive letter → share mapping for later steps.
pub struct ConnectNetworkFolder;

impl StepAction for ConnectNetworkFolder {
    fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError> {
        let path = ctx
            .param("SMSConnectNetworkFolderPath")
            .ok_or_else(|| fail("SMSConnectNetworkFolderPath: no network folder given"))?;
        let loc = SmbLocation::parse(path.trim())
            .map_err(|e| fail(format!("SMSConnectNetworkFolderPath: {e}")))?;
        let raw_letter = ctx
            .param("SMSConnectNetworkFolderDriveLetter")
            .ok_or_else(|| fail("SMSConnectNetworkFolderDriveLetter: no drive letter given"))?;
        let letter = crate::volumes::drive_letter(&raw_letter).ok_or_else(|| {
            fail(format!(
                "SMSConnectNetworkFolderDriveLetter: {raw_letter:?} is not a drive letter"
            ))
        })?;
        if let Some(v) = ctx.drives.get(&letter) {
            return Err(fail(format!(
                "SMSConnectNetworkFolderDriveLetter: {letter}: is already the letter of {}",
                v.describe()
            )));
        }
        let account_raw = ctx
            .param("SMSConnectNetworkFolderAccount")
            .ok_or_else(|| fail("SMSConnectNetworkFolderAccount: no account given"))?;
        let account = Account::parse(account_raw.trim())
            .map_err(|e| fail(format!("SMSConnectNetworkFolderAccount: {e}")))?;
        let password = ctx
            .param("SMSConnectNetworkFolderPassword")
            .ok_or_else(|| fail("SMSConnectNetworkFolderPassword: no password given"))?;
        let share = SmbShare::connect(&loc, &account, &password).map_err(fail)?;
        share.check_dir(&loc.path).map_err(fail)?;
        drop(share);
        let [p, a, w] = net_vars(letter);
        ctx.env.set(&p, &loc.to_url());
        ctx.env.set(&a, &account.to_string());
        ctx.env.set_with(&w, &password, true);
        ctx.log(
            Level::Info,
            format!("Connected {letter}: to {loc} as {account}"),
        );
        Ok(StepOutcome::code(0))
    }
}

/// Everything the capture needs, checked before any work.
struct Plan {
    dest: Destination,
    /// For SMB: the connected share, the temporary and final names.
    smb: Option<(SmbShare, Vec<String>, Vec<String>)>,
    description: Option<String>,
    version: Option<String>,
    creator: Option<String>,
    /// (disk index, volume) to capture, in order.
    volumes: Vec<(usize, DiskVolume)>,
}

/// Capture Operating System Image.
pub struct CaptureOsImage;

impl StepAction for CaptureOsImage {
    fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError> {
        if ctx.phase != Phase::Pe {
            return Err(fail(
                "Capture Operating System Image runs only in the boot environment (WinPE); restart into it (Prepare Windows for Capture does) and run the step there",
            ));
        }
        let mut plan = validate(ctx)?;
        let windows = find_windows_volume(ctx, &plan.volumes);
        let state = match &windows {
            Some(vref) => {
                let mut fs = vref
                    .open(ctx.computer, false)
                    .map_err(|e| fail(format!("capture guard: {e}")))?;
                let st = guard::read_state(fs.as_mut())
                    .map_err(|e| fail(format!("capture guard: {e}")))?;
                guard::check(&st).map_err(fail)?;
                Some(st)
            }
            None => {
                ctx.log(
                    Level::Warning,
                    "No captured volume holds Windows\\System32: this computer cannot be marked against a second capture",
                );
                None
            }
        };
        if let Some((share, temp, _)) = &plan.smb {
            // Proves the right to write there before the capture starts.
            share.create_new(temp).map_err(fail)?;
        }
        let result = capture_and_store(ctx, &mut plan);
        if result.is_err() {
            if let Some((share, temp, _)) = &plan.smb {
                let _ = share.remove(temp);
            }
        }
        let images = result?;
        ctx.log(
            Level::Info,
            format!("Captured {images} volume image(s) to {}", plan.dest),
        );
        if let (Some(vref), Some(st)) = (windows, state) {
            let marker = guard::Marker {
                install_id: st.install_id,
                captured: guard::utc_stamp(now_secs()),
                destination: plan.dest.to_string(),
            };
            let mut fs = vref.open(ctx.computer, true).map_err(|e| {
                fail(format!(
                    "the WIM was written, but marking the computer as captured failed: {e}"
                ))
            })?;
            guard::mark(fs.as_mut(), &marker).map_err(|e| {
                fail(format!(
                    "the WIM was written, but marking the computer as captured failed: {e}"
                ))
            })?;
            ctx.log(
                Level::Info,
                format!(
                    "Marked {} as captured ({})",
                    vref.describe(),
                    guard::MARKER_FILE
                ),
            );
        }
        Ok(StepOutcome::code(0))
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn optional(ctx: &StepContext, name: &str, max: usize) -> Result<Option<String>, StepError> {
    match ctx.param(name) {
        Some(v) if v.chars().count() > max => {
            Err(fail(format!("{name}: longer than {max} characters")))
        }
        Some(v) if v.chars().any(|c| c.is_control()) => {
            Err(fail(format!("{name}: contains a control character")))
        }
        v => Ok(v),
    }
}

fn validate(ctx: &mut StepContext) -> Result<Plan, StepError> {
    let raw = ctx
        .param("OSDCaptureDestination")
        .ok_or_else(|| fail("OSDCaptureDestination: no destination given"))?;
    let mut mapped: Option<(String, String)> = None;
    let dest = {
        let lookup = |l: char| -> Option<DriveTarget> {
            if let Some((loc, _, _)) = mapped_drive(ctx, l) {
                return Some(DriveTarget::Network(loc));
            }
            match ctx.drives.get(&l) {
                Some(VolumeRef::HostDir { path }) => Some(DriveTarget::HostDir(path.clone())),
                _ => None,
            }
        };
        parse_destination(&raw, &lookup).map_err(|e| fail(format!("OSDCaptureDestination: {e}")))?
    };
    if let Some((l, _)) = crate::volumes::split_drive_path(raw.trim()) {
        if let Some((_, a, p)) = mapped_drive(ctx, l) {
            mapped = Some((a, p));
        }
    }
    let description = optional(ctx, "OSDImageDescription", 255)?;
    let version = optional(ctx, "OSDImageVersion", 32)?;
    let creator = optional(ctx, "OSDImageCreator", 255)?;
    let smb = match &dest {
        Destination::Local(p) => {
            let parent = p.parent().unwrap_or(Path::new("/"));
            if !parent.is_dir() {
                return Err(fail(format!(
                    "OSDCaptureDestination: folder {} does not exist",
                    parent.display()
                )));
            }
            None
        }
        Destination::Smb(loc) => {
            let (acc_raw, pw) = match (
                ctx.param("OSDCaptureAccount"),
                ctx.param("OSDCaptureAccountPassword"),
                mapped,
            ) {
                (Some(a), p, _) => (a, p),
                (None, _, Some((a, p))) => (a, Some(p).filter(|p| !p.is_empty())),
                (None, _, None) => {
                    return Err(fail(
                        "OSDCaptureAccount: an account is needed to write to a network share",
                    ))
                }
            };
            let account = Account::parse(acc_raw.trim())
                .map_err(|e| fail(format!("OSDCaptureAccount: {e}")))?;
            let password = pw.ok_or_else(|| {
                fail("OSDCaptureAccountPassword: a password is needed to write to a network share")
            })?;
            let (file, dir) = loc
                .path
                .split_last()
                .ok_or_else(|| fail("OSDCaptureDestination: no file name"))?;
            let share = SmbShare::connect(loc, &account, &password).map_err(fail)?;
            share.check_dir(dir).map_err(fail)?;
            let mut temp = dir.to_vec();
            temp.push(format!(".{file}.tasq-{}", uuid::Uuid::new_v4().simple()));
            ctx.log(
                Level::Info,
                format!("Connected to {} as {account}", share.root()),
            );
            Some((share, temp, loc.path.clone()))
        }
    };
    let volumes = plan_volumes(ctx)?;
    Ok(Plan {
        dest,
        smb,
        description,
        version,
        creator,
        volumes,
    })
}

/// The capturable volumes of every disk, others logged with the reason.
fn plan_volumes(ctx: &mut StepContext) -> Result<Vec<(usize, DiskVolume)>, StepError> {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for (d, disk) in ctx.computer.disks.iter().enumerate() {
        let vols = disk_volumes(&disk.path, disk.usb)
            .map_err(|e| fail(format!("reading disk {d} ({}): {e}", disk.path.display())))?;
        for v in vols {
            match &v.skip {
                Some(why) => skipped.push(format!(
                    "Skipping partition {} of disk {d} ({}): {why}",
                    v.index, v.fs
                )),
                None => out.push((d, v)),
            }
        }
    }
    for s in skipped {
        ctx.log(Level::Info, s);
    }
    if out.is_empty() {
        return Err(fail(
            "the computer has no volume to capture (only NTFS and FAT32 volumes on non-USB disks are captured)",
        ));
    }
    Ok(out)
}

fn volume_ref(d: usize, v: &DiskVolume) -> VolumeRef {
    VolumeRef::Partition {
        disk: d,
        partition: v.index,
        offset: v.offset,
        len: v.size,
        fs: v.fs.to_string(),
        label: v.label.clone(),
    }
}

/// The volume with `Windows\System32`: among the captured partitions, then
/// among host-directory drives (a full-OS style mapping).
fn find_windows_volume(ctx: &mut StepContext, vols: &[(usize, DiskVolume)]) -> Option<VolumeRef> {
    let mut candidates: Vec<VolumeRef> = vols.iter().map(|(d, v)| volume_ref(*d, v)).collect();
    candidates.extend(
        ctx.drives
            .values()
            .filter(|v| matches!(v, VolumeRef::HostDir { .. }))
            .cloned(),
    );
    let sys32 = VolPath::parse("\\Windows\\System32").ok()?;
    for c in candidates {
        match c.open(ctx.computer, false) {
            Ok(mut fs) => {
                if let Ok(Some(m)) = fs.metadata(&sys32) {
                    if m.kind == tasq_volume::fs::EntryKind::Dir {
                        return Some(c);
                    }
                }
            }
            Err(e) => ctx.log(
                Level::Warning,
                format!("Cannot look for Windows on {}: {e}", c.describe()),
            ),
        }
    }
    None
}

/// Captures every planned volume into one WIM and puts it at the
/// destination; returns the number of images.
fn capture_and_store(ctx: &mut StepContext, plan: &mut Plan) -> Result<u32, StepError> {
    let wim_path: PathBuf = match (&plan.dest, &plan.smb) {
        (Destination::Local(p), _) => p.clone(),
        (Destination::Smb(_), _) => {
            let dir = ctx.state_dir.join("capture");
            std::fs::create_dir_all(&dir)
                .map_err(|e| fail(format!("creating {}: {e}", dir.display())))?;
            dir.join(format!("{}.wim", uuid::Uuid::new_v4().simple()))
        }
    };
    let r = write_wim(ctx, plan, &wim_path);
    let r = r.and_then(|n| {
        if let Some((share, temp, dest)) = &plan.smb {
            let f = std::fs::File::open(&wim_path)
                .map_err(|e| fail(format!("opening {}: {e}", wim_path.display())))?;
            let len = f
                .metadata()
                .map_err(|e| fail(format!("{}: {e}", wim_path.display())))?
                .len();
            ctx.log(Level::Info, format!("Copying {len} bytes to {}", plan.dest));
            share
                .upload(
                    &mut std::io::BufReader::new(f),
                    len,
                    temp,
                    dest,
                    &mut |_| {},
                )
                .map_err(fail)?;
        }
        Ok(n)
    });
    if plan.smb.is_some() {
        let _ = std::fs::remove_file(&wim_path);
    }
    r
}

/// The default Windows exclusions plus the engine's own folder: ConfigMgr
/// never captures `_SMSTaskSequence` (it holds the run's journal, its key
/// and staged content, which must not travel inside a reference image).
fn capture_config() -> Result<CaptureConfig, StepError> {
    let mut c = CaptureConfig::windows_default();
    c.add_exclusion("\\_SMSTaskSequence")
        .map_err(|e| fail(format!("capture exclusions: {e}")))?;
    Ok(c)
}

fn write_wim(ctx: &mut StepContext, plan: &Plan, wim_path: &Path) -> Result<u32, StepError> {
    let opts = WriteOptions {
        compression: CompressionFormat::Lzx,
        chunk_size: 32768,
        level: 50,
        threads: 0,
        integrity: false,
        solid: None,
    };
    let config = capture_config()?;
    let mut w = WimWriter::create(wim_path, opts)
        .map_err(|e| fail(format!("creating {}: {e}", wim_path.display())))?;
    let mut props = Vec::new();
    if let Some(v) = &plan.version {
        props.push(("IMAGEVERSION".to_string(), v.clone()));
    }
    if let Some(c) = &plan.creator {
        props.push(("IMAGECREATOR".to_string(), c.clone()));
    }
    let mut count = 0;
    for (d, v) in &plan.volumes {
        let path = ctx
            .computer
            .disks
            .get(*d)
            .map(|x| x.path.clone())
            .ok_or_else(|| fail(format!("the computer has no disk {d}")))?;
        let where_ = format!("partition {} of disk {d} ({})", v.index, v.fs);
        let image = ImageOptions {
            name: Some(format!(
                "{} disk {d} partition {}",
                ctx.computer.name, v.index
            )),
            description: plan.description.clone().or_else(|| Some(where_.clone())),
            display_description: Some(v.description.clone()),
            properties: props.clone(),
            ..Default::default()
        };
        ctx.log(Level::Info, format!("Capturing {where_}"));
        let (n, warnings) = capture_volume(&mut w, &path, v.index, &config, &image, &mut |_| {})
            .map_err(|e| fail(format!("capturing {where_}: {e}")))?;
        for warn in warnings {
            ctx.log(Level::Warning, warn);
        }
        ctx.log(Level::Info, format!("Captured {where_} as image {n}"));
        count = n;
    }
    w.finish()
        .map_err(|e| fail(format!("writing {}: {e}", wim_path.display())))?;
    Ok(count)
}
