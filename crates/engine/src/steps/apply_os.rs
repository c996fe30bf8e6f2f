//! Apply Operating System Image (`SMS_TaskSequence_ApplyOperatingSystemAction`).
//!
//! Settings (ConfigMgr's names): `ImagePackageID` (hidden; else the
//! `/image:<id>,` argument of the action command line), `OSDImageIndex`,
//! and the destination as the class's properties `DestinationDisk` +
//! `DestinationPartition`, `DestinationLogicalDrive`, or
//! `DestinationVariable` (a variable holding `C:` or `disk,partition`),
//! also read from the command line's `/target:` argument (`/target:0,3`,
//! `/target:C:`, `/target:%OSDisk%`); none of them = the next available
//! partition: the first lettered NTFS volume (by letter) not targeted by an
//! earlier apply step of this run.
//!
//! Order: everything is checked first (package in the library and an OS
//! image, index within the WIM, destination present, large enough for the
//! image's bytes); then the destination is emptied except
//! `_SMSTaskSequence` (and the folder of `_SMSTSUserStatePath` when it is
//! on it), the image applied, `OSDTargetSystemDrive` set, and the OS made
//! bootable (see [`super::boot`]).
//!
//! A WIM holding the volume images of one capture (several images named
//! `<name>:<n>` or `<name>-<n>` with one prefix: how capture names them)
//! is applied image *i* → *i*-th formatted volume of the destination's
//! disk in partition order; `OSDImageIndex` says which of them is the OS.

use super::boot;
use super::disk::{next_free_letter, STATE_FOLDER};
use super::{Registry, StepAction, StepContext, StepError, StepOutcome};
use crate::computer::Computer;
use crate::events::Level;
use crate::runner::{Phase, E_FAIL};
use crate::volumes::{drive_letter, VolumeRef};
use std::path::Path;
use tasq_tasksequence::steps as types;
use tasq_wim::apply::ApplyOptions;
use tasq_wim::reader::Wim;

pub fn register(r: &mut Registry) {
    r.register(types::APPLY_OS, Box::new(ApplyOperatingSystem));
}

/// Volumes already targeted by an apply step of this run (for "next available").
const APPLIED_VAR: &str = "_TSQAppliedVolumes";

pub struct ApplyOperatingSystem;

fn bad(msg: String) -> StepError {
    StepError::new(E_FAIL, format!("Apply Operating System Image: {msg}"))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Next,
    DiskPartition {
        disk: usize,
        partition: u32,
        from: String,
    },
    Letter {
        letter: char,
        from: String,
    },
}

/// `/name:value` arguments of the step's action command line (after `%VAR%` expansion).
fn action_arg(ctx: &StepContext, name: &str) -> Option<String> {
    let action = ctx.env.expand(ctx.step.action.as_deref().unwrap_or(""));
    let prefix = format!("/{name}:");
    action
        .split_whitespace()
        .find(|t| t.len() > prefix.len() && t[..prefix.len()].eq_ignore_ascii_case(&prefix))
        .map(|t| t[prefix.len()..].to_string())
}

fn disk_partition(value: &str, from: &str) -> Result<Destination, String> {
    let (d, p) = value
        .split_once(',')
        .ok_or_else(|| format!("{from}={value:?}: expected disk,partition or a drive letter"))?;
    let disk: usize = d
        .trim()
        .parse()
        .ok()
        .filter(|n| *n <= 99)
        .ok_or_else(|| format!("{from}={value:?}: the disk must be 0..=99"))?;
    let partition: u32 = p
        .trim()
        .parse()
        .ok()
        .filter(|n| (1..=99).contains(n))
        .ok_or_else(|| format!("{from}={value:?}: the partition must be 1..=99"))?;
    Ok(Destination::DiskPartition {
        disk,
        partition,
        from: from.into(),
    })
}

fn letter_or_pair(value: &str, from: &str) -> Result<Destination, String> {
    if let Some(letter) = drive_letter(value) {
        return Ok(Destination::Letter {
            letter,
            from: from.into(),
        });
    }
    disk_partition(value, from)
}

/// Reads the destination settings.
pub fn destination(ctx: &StepContext) -> Result<Destination, String> {
    let disk = ctx.param("DestinationDisk");
    let part = ctx.param("DestinationPartition");
    if disk.is_some() || part.is_some() {
        let d = disk.ok_or("DestinationPartition is set but DestinationDisk is not")?;
        let p = part.ok_or("DestinationDisk is set but DestinationPartition is not")?;
        return disk_partition(&format!("{d},{p}"), "DestinationDisk,DestinationPartition");
    }
    if let Some(l) = ctx.param("DestinationLogicalDrive") {
        let letter = drive_letter(&l)
            .filter(|c| *c >= 'C')
            .ok_or_else(|| format!("DestinationLogicalDrive={l:?}: expected a letter C to Z"))?;
        return Ok(Destination::Letter {
            letter,
            from: "DestinationLogicalDrive".into(),
        });
    }
    if let Some(var) = ctx.param("DestinationVariable") {
        let from = format!("DestinationVariable ({var})");
        let value = ctx
            .env
            .get(&var)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| format!("DestinationVariable={var}: the variable {var} is not set"))?
            .to_string();
        return letter_or_pair(&value, &from);
    }
    if let Some(t) = action_arg(ctx, "target") {
        if t.contains('%') {
            return Err(format!(
                "the destination /target:{t} names a variable that is not set"
            ));
        }
        return letter_or_pair(&t, "/target");
    }
    Ok(Destination::Next)
}

fn volume_key(v: &VolumeRef) -> String {
    match v {
        VolumeRef::Partition {
            disk, partition, ..
        } => format!("{disk}:{partition}"),
        VolumeRef::HostDir { path } => path.display().to_string(),
    }
}

fn is_fat(fs: &str) -> bool {
    fs.to_ascii_uppercase().starts_with("FAT")
}

/// A partition of disk `disk` read from its table (no letter needed).
fn partition_volume(computer: &Computer, disk: usize, partition: u32) -> Result<VolumeRef, String> {
    let d = computer
        .disks
        .get(disk)
        .ok_or_else(|| format!("the computer has {} disk(s)", computer.disks.len()))?;
    let dk = tasq_disk::Disk::open(&d.path, false).map_err(|e| e.to_string())?;
    let t = tasq_disk::read_table(&dk).map_err(|e| e.to_string())?;
    let e = t
        .entries
        .iter()
        .find(|e| e.index == partition)
        .ok_or_else(|| format!("disk {disk} has no partition {partition}"))?;
    let found = tasq_disk::detect(&dk, e.offset(), e.size()).map_err(|e| e.to_string())?;
    Ok(VolumeRef::Partition {
        disk,
        partition,
        offset: e.offset(),
        len: e.size(),
        fs: found.fs.to_string(),
        label: found.label,
    })
}

/// The formatted (NTFS/FAT) volumes of disk `disk` in partition order,
/// MSR and unformatted ones left out.
fn formatted_volumes(computer: &Computer, disk: usize) -> Result<Vec<VolumeRef>, String> {
    let d = computer
        .disks
        .get(disk)
        .ok_or_else(|| format!("the computer has no disk {disk}"))?;
    let dk = tasq_disk::Disk::open(&d.path, false).map_err(|e| e.to_string())?;
    let t = tasq_disk::read_table(&dk).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for e in &t.entries {
        if e.ptype.holds_no_file_system() {
            continue;
        }
        let f = tasq_disk::detect(&dk, e.offset(), e.size()).map_err(|e| e.to_string())?;
        let fs = f.fs.to_string();
        if fs == "NTFS" || is_fat(&fs) {
            out.push(VolumeRef::Partition {
                disk,
                partition: e.index,
                offset: e.offset(),
                len: e.size(),
                fs,
                label: f.label,
            });
        }
    }
    Ok(out)
}

/// The destination volume and its letter, if it has one.
fn resolve(ctx: &StepContext, dest: &Destination) -> Result<(Option<char>, VolumeRef), String> {
    match dest {
        Destination::Letter { letter, from } => ctx
            .drives
            .get(letter)
            .map(|v| (Some(*letter), v.clone()))
            .ok_or_else(|| format!("{from}: no volume has the drive letter {letter}:")),
        Destination::DiskPartition {
            disk,
            partition,
            from,
        } => {
            let lettered = ctx.drives.iter().find(|(_, v)| {
                matches!(v, VolumeRef::Partition { disk: d, partition: p, .. } if d == disk && p == partition)
            });
            if let Some((l, v)) = lettered {
                return Ok((Some(*l), v.clone()));
            }
            partition_volume(ctx.computer, *disk, *partition)
                .map(|v| (None, v))
                .map_err(|e| format!("{from}={disk},{partition}: {e}"))
        }
        Destination::Next => {
            let done: Vec<String> = ctx
                .env
                .get(APPLIED_VAR)
                .unwrap_or("")
                .split('|')
                .map(str::to_string)
                .collect();
            ctx.drives
                .iter()
                .find(|(_, v)| {
                    let ok = match v {
                        VolumeRef::Partition { fs, .. } => fs.eq_ignore_ascii_case("NTFS"),
                        VolumeRef::HostDir { .. } => true,
                    };
                    ok && !done.contains(&volume_key(v))
                })
                .map(|(l, v)| (Some(*l), v.clone()))
                .ok_or_else(|| {
                    "no destination given and no available NTFS volume (next available partition): run Format and Partition Disk first or set the destination".to_string()
                })
        }
    }
}

/// Whether the WIM's images are the volume images of one capture.
pub fn is_volume_set(names: &[String]) -> bool {
    if names.len() < 2 {
        return false;
    }
    let mut prefix: Option<&str> = None;
    let mut last = 0u64;
    for n in names {
        let Some((p, num)) = n.rsplit_once([':', '-']) else {
            return false;
        };
        let Ok(k) = num.parse::<u64>() else {
            return false;
        };
        if k <= last || prefix.is_some_and(|x| x != p) {
            return false;
        }
        prefix = Some(p);
        last = k;
    }
    true
}

fn image_names(wim: &Wim) -> Vec<String> {
    wim.info
        .images
        .iter()
        .map(|i| i.name.clone().unwrap_or_default())
        .collect()
}

/// Empties `v` file by file except the top-level folders in `keep`.
fn wipe(ctx: &mut StepContext, v: &VolumeRef, keep: &[&str]) -> Result<(), String> {
    match v.open(ctx.computer, true) {
        Ok(mut fs) => {
            let removed =
                tasq_volume::fs::wipe_except(fs.as_mut(), keep).map_err(|e| e.to_string())?;
            fs.flush().map_err(|e| e.to_string())?;
            if !removed.is_empty() {
                ctx.log(
                    Level::Info,
                    format!(
                        "Wiped {} ({} top-level entries removed)",
                        v.describe(),
                        removed.len()
                    ),
                );
            }
            Ok(())
        }
        // ConfigMgr empties the volume file by file; a volume that cannot
        // be opened is not reformatted behind the user's back.
        Err(e) => Err(e.to_string()),
    }
}

/// Applies image `n` onto `v`; returns the target's warnings.
fn apply_to(computer: &Computer, v: &VolumeRef, wim: &Wim, n: u32) -> Result<Vec<String>, String> {
    let opts = ApplyOptions {
        threads: 0,
        ..Default::default()
    };
    match v {
        VolumeRef::HostDir { path } => {
            let mut t = tasq_volume::HostDirTarget::new(path).map_err(|e| e.to_string())?;
            tasq_wim::apply::apply_image(wim, n, &mut t, &opts, &mut |_| {})
                .map_err(|e| e.to_string())?;
            Ok(t.warnings().to_vec())
        }
        VolumeRef::Partition {
            disk,
            offset,
            len,
            fs,
            ..
        } => {
            let d = computer
                .disks
                .get(*disk)
                .ok_or_else(|| format!("no disk {disk}"))?;
            if is_fat(fs) {
                let dk = tasq_disk::Disk::open(&d.path, true).map_err(|e| e.to_string())?;
                let mut t = tasq_volume::FatTarget::new(&dk, *offset, *len, v.describe())
                    .map_err(|e| e.to_string())?;
                tasq_wim::apply::apply_image(wim, n, &mut t, &opts, &mut |_| {})
                    .map_err(|e| e.to_string())?;
                return Ok(t.warnings().to_vec());
            }
            #[cfg(feature = "ntfs")]
            if fs.eq_ignore_ascii_case("NTFS") {
                let vol = tasq_volume::NtfsVolume::open(&d.path, *offset, *len, true)
                    .map_err(|e| e.to_string())?;
                return tasq_volume::ntfs::apply_image_to_ntfs(wim, n, vol, &opts, &mut |_| {})
                    .map_err(|e| e.to_string());
            }
            Err(format!(
                "{} holds {fs}: an image goes onto NTFS or FAT",
                v.describe()
            ))
        }
    }
}

impl StepAction for ApplyOperatingSystem {
    fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError> {
        // ---- checks (nothing is written before they all pass) ----
        let pkg = ctx
            .param("ImagePackageID")
            .or_else(|| {
                action_arg(ctx, "image").and_then(|a| a.split(',').next().map(str::to_string))
            })
            .filter(|p| !p.trim().is_empty())
            .ok_or_else(|| {
                bad("ImagePackageID is empty: the step names no OS image package".into())
            })?;
        let index_text = ctx.param("OSDImageIndex").unwrap_or_else(|| "1".into());
        let index: u32 = index_text
            .trim()
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                bad(format!(
                    "OSDImageIndex={index_text:?} is not an image index (1 or more)"
                ))
            })?;
        let lib = ctx.content.ok_or_else(|| {
            bad(format!(
                "ImagePackageID={pkg}: no content library is configured"
            ))
        })?;
        let manifest = lib
            .manifest(&pkg)
            .map_err(|e| bad(format!("ImagePackageID={pkg}: {e}")))?;
        if manifest.kind != "os-image" {
            return Err(bad(format!(
                "ImagePackageID={pkg} is a {} package, not an OS image",
                manifest.kind
            )));
        }
        let dir = lib
            .content_dir(&pkg)
            .map_err(|e| bad(format!("ImagePackageID={pkg}: {e}")))?;
        let wim_rel = manifest
            .files
            .iter()
            .map(|f| f.path.clone())
            .find(|p| p.to_ascii_lowercase().ends_with(".wim"))
            .ok_or_else(|| {
                bad(format!(
                    "ImagePackageID={pkg}: the package holds no .wim file"
                ))
            })?;
        let wim_path = dir.join(&wim_rel);
        let wim = Wim::open(&wim_path)
            .map_err(|e| bad(format!("ImagePackageID={pkg}: {}: {e}", wim_path.display())))?;
        let count = wim.image_count();
        if index > count {
            return Err(bad(format!(
                "OSDImageIndex={index}: {wim_rel} of {pkg} has {count} image(s)"
            )));
        }
        let dest = destination(ctx).map_err(bad)?;
        let (letter, target) = resolve(ctx, &dest).map_err(bad)?;

        // Which image goes where.
        let names = image_names(&wim);
        let plan: Vec<(u32, VolumeRef)> = if is_volume_set(&names) {
            let VolumeRef::Partition { disk, .. } = &target else {
                return Err(bad(format!(
                    "{wim_rel} holds the {count} volume images of a capture; the destination must be a partition of a disk"
                )));
            };
            let vols = formatted_volumes(ctx.computer, *disk).map_err(bad)?;
            if vols.len() < count as usize {
                return Err(bad(format!(
                    "{wim_rel} holds the {count} volume images of a capture but disk {disk} has {} formatted volume(s)",
                    vols.len()
                )));
            }
            (1..=count).zip(vols).collect()
        } else {
            vec![(index, target.clone())]
        };
        for (n, v) in &plan {
            let need = wim
                .info
                .images
                .get(*n as usize - 1)
                .map(|i| i.total_bytes)
                .unwrap_or(0);
            if let VolumeRef::Partition { len, .. } = v {
                if need > *len {
                    return Err(bad(format!(
                        "image {n} of {wim_rel} holds {need} bytes but {} is only {len} bytes",
                        v.describe()
                    )));
                }
            }
        }

        // ---- the work ----
        let mut keep = vec![STATE_FOLDER.to_string()];
        if let Some(us) = ctx.env.get("_SMSTSUserStatePath") {
            if let Some((_, rest)) = crate::volumes::split_drive_path(us) {
                if let Some(first) = rest.split('\\').find(|s| !s.is_empty()) {
                    keep.push(first.to_string());
                }
            }
        }
        let keep_refs: Vec<&str> = keep.iter().map(String::as_str).collect();
        let mut os_volume = target.clone();
        for (n, v) in &plan {
            wipe(ctx, v, &keep_refs).map_err(|e| bad(format!("wiping {}: {e}", v.describe())))?;
            ctx.log(
                Level::Info,
                format!(
                    "Applying image {n} of {wim_rel} ({pkg}) to {}",
                    v.describe()
                ),
            );
            let warnings = apply_to(ctx.computer, v, &wim, *n)
                .map_err(|e| bad(format!("applying image {n} to {}: {e}", v.describe())))?;
            for w in warnings {
                ctx.log(Level::Warning, w);
            }
            if *n == index {
                os_volume = v.clone();
            }
        }
        let mut applied: Vec<String> = ctx
            .env
            .get(APPLIED_VAR)
            .unwrap_or("")
            .split('|')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        applied.extend(plan.iter().map(|(_, v)| volume_key(v)));
        ctx.env.set(APPLIED_VAR, &applied.join("|"));

        // The OS volume's letter (given one when it has none).
        let os_letter = ctx
            .drives
            .iter()
            .find(|(_, v)| **v == os_volume)
            .map(|(l, _)| *l)
            .or(letter.filter(|_| os_volume == target));
        let os_letter = match os_letter {
            Some(l) => l,
            None => {
                let l = next_free_letter(ctx.drives)
                    .ok_or_else(|| bad("no drive letter is free for the OS volume".into()))?;
                ctx.drives.insert(l, os_volume.clone());
                l
            }
        };
        ctx.env
            .set("OSDTargetSystemDrive", &format!("{os_letter}:"));
        ctx.log(
            Level::Info,
            format!("Set OSDTargetSystemDrive={os_letter}:"),
        );

        if ctx.phase == Phase::Pe {
            make_bootable(ctx, &wim, index, &os_volume).map_err(bad)?;
        }
        Ok(StepOutcome::code(0))
    }
}

/// bcdboot's part: boot files and store on the system partition of the OS disk.
fn make_bootable(ctx: &mut StepContext, wim: &Wim, n: u32, os: &VolumeRef) -> Result<(), String> {
    let VolumeRef::Partition {
        disk, partition, ..
    } = os
    else {
        ctx.log(
            Level::Warning,
            format!(
                "{} is not a partition of a disk: no boot files or BCD store written",
                os.describe()
            ),
        );
        return Ok(());
    };
    let cdisk = ctx
        .computer
        .disks
        .get(*disk)
        .ok_or_else(|| format!("no disk {disk}"))?
        .clone();
    let staging = ctx.state_dir.join("boot-staging");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| format!("{}: {e}", staging.display()))?;
    let r = (|| {
        let mut t = tasq_volume::HostDirTarget::new(&staging).map_err(|e| e.to_string())?;
        let sel = [
            "\\Windows\\Boot".to_string(),
            "\\Windows\\System32\\config\\BCD-Template".to_string(),
        ];
        if let Err(e) = tasq_wim::apply::apply_paths(
            wim,
            n,
            &sel,
            &mut t,
            &ApplyOptions {
                threads: 1,
                ..Default::default()
            },
            &mut |_| {},
        ) {
            return Err(format!(
                "image {n} has no Windows boot files ({e}): it cannot be made bootable"
            ));
        }
        bootable_from(ctx, &cdisk.path, *disk, *partition, &staging)
    })();
    let _ = std::fs::remove_dir_all(&staging);
    r
}

fn bootable_from(
    ctx: &mut StepContext,
    disk_path: &Path,
    disk: usize,
    os_partition: u32,
    staged: &Path,
) -> Result<(), String> {
    use crate::computer::Firmware;
    let firmware = ctx.computer.firmware;
    let dk = tasq_disk::Disk::open(disk_path, false).map_err(|e| e.to_string())?;
    let table = tasq_disk::read_table(&dk).map_err(|e| e.to_string())?;
    drop(dk);
    let sys_index = match firmware {
        Firmware::Uefi => table
            .entries
            .iter()
            .find(|e| match &e.ptype {
                tasq_disk::PartitionType::Gpt { type_guid, .. } => {
                    type_guid == tasq_disk::layout::GUID_EFI_SYSTEM
                }
                tasq_disk::PartitionType::Mbr { sys, .. } => *sys == 0xEF,
                _ => false,
            })
            .map(|e| e.index)
            .ok_or_else(|| {
                format!("disk {disk} has no EFI system partition: a UEFI computer cannot start it")
            })?,
        Firmware::Bios => {
            if table.style == tasq_disk::PartitionStyle::Gpt {
                return Err(format!(
                    "disk {disk} is GPT: a BIOS computer starts from an MBR disk"
                ));
            }
            table
                .entries
                .iter()
                .find(|e| matches!(e.ptype, tasq_disk::PartitionType::Mbr { active: true, .. }))
                .map(|e| e.index)
                .unwrap_or(os_partition)
        }
    };
    let sys_vol = ctx
        .drives
        .values()
        .find(|v| matches!(v, VolumeRef::Partition { disk: d, partition: p, .. } if *d == disk && *p == sys_index))
        .cloned()
        .map(Ok)
        .unwrap_or_else(|| partition_volume(ctx.computer, disk, sys_index))?;
    let req = boot::BcdRequest {
        firmware,
        system: boot::device_id(disk_path, sys_index)?,
        os: boot::device_id(disk_path, os_partition)?,
        description: "Windows".into(),
        locale: "en-US".into(),
    };
    let mut fs = sys_vol
        .open(ctx.computer, true)
        .map_err(|e| format!("the system partition {}: {e}", sys_vol.describe()))?;
    let report = boot::make_bootable(fs.as_mut(), staged, ctx.computer.architecture, &req)?;
    drop(fs);
    ctx.log(
        Level::Info,
        format!(
            "Boot files ({} files) and the BCD store {} written to {} (loader {})",
            report.files,
            report.store,
            sys_vol.describe(),
            report.loader
        ),
    );
    if firmware == Firmware::Bios {
        if let Some(w) = boot::write_mbr_code(disk_path, Path::new(boot::SYSLINUX_MBR))? {
            ctx.log(Level::Warning, w);
        } else {
            ctx.log(
                Level::Info,
                format!("MBR boot code of disk {disk}: syslinux's generic mbr.bin"),
            );
        }
        ctx.log(
            Level::Warning,
            format!(
                "the boot sector of {} is not made to load bootmgr (that code comes with Windows' bootsect.exe): a BIOS computer will not start Windows from this disk yet",
                sys_vol.describe()
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_sets_are_recognised_by_their_names() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(is_volume_set(&v(&["disk.img:1", "disk.img:3"])));
        assert!(is_volume_set(&v(&["1-1", "1-2", "1-3"])));
        assert!(!is_volume_set(&v(&["disk.img:1"])));
        assert!(!is_volume_set(&v(&["Windows 10 Pro", "Windows 10 Home"])));
        assert!(!is_volume_set(&v(&["a:1", "b:2"])));
        assert!(!is_volume_set(&v(&["a:2", "a:1"])));
    }

    #[test]
    fn destinations_parse() {
        assert_eq!(
            letter_or_pair("d:", "X").unwrap(),
            Destination::Letter {
                letter: 'D',
                from: "X".into()
            }
        );
        assert_eq!(
            letter_or_pair("0,3", "X").unwrap(),
            Destination::DiskPartition {
                disk: 0,
                partition: 3,
                from: "X".into()
            }
        );
        assert!(letter_or_pair("0,0", "X").unwrap_err().contains("X="));
        assert!(letter_or_pair("banana", "X").is_err());
    }
}
