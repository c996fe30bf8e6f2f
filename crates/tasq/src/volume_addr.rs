//! Where `tasq wim` reads from and writes to: a directory, or a volume
//! inside a disk image or device addressed as `DISK:N` (partition N; 0 = a
//! file system on the whole disk). NTFS volumes go through libntfs-3g,
//! FAT volumes through fatfs; the WIM code sees only the two traits.

use std::path::Path;

use anyhow::{bail, Context, Result};
use tasq_disk::{list_volumes, locate, Disk, FsType, VolumeAddress};
use tasq_volume::ntfs::{apply_image_to_ntfs, NtfsSource, NtfsVolume};
use tasq_volume::{FatSource, FatTarget, HostDirSource};
use tasq_wim::apply::{ApplyOptions, ApplyProgress};
use tasq_wim::capture::CaptureSource;
use tasq_wim::reader::Wim;

/// `spec` as a volume address, when it names a partition of an existing
/// disk image or device (an existing directory always stays a directory).
pub fn volume_address(spec: &Path) -> Option<VolumeAddress> {
    if spec.exists() {
        return None;
    }
    VolumeAddress::parse(&spec.to_string_lossy()).filter(|a| a.disk.exists() && !a.disk.is_dir())
}

/// Runs `f` with the capture source that `spec` names; returns its result
/// and the source's warnings.
pub fn with_source<T>(
    spec: &Path,
    f: impl FnOnce(&mut dyn CaptureSource) -> Result<T>,
) -> Result<(T, Vec<String>)> {
    let Some(addr) = volume_address(spec) else {
        let mut src = HostDirSource::new(spec)
            .with_context(|| format!("capture source {}", spec.display()))?;
        let t = f(&mut src)?;
        return Ok((t, src.warnings().to_vec()));
    };
    let disk = Disk::open(&addr.disk, false)?;
    let v = locate(&disk, addr.index)?;
    match v.fs {
        FsType::Ntfs => {
            let vol = NtfsVolume::open(&addr.disk, v.offset, v.size, false)
                .with_context(|| format!("opening NTFS volume {addr}"))?;
            let mut src = NtfsSource::new(&vol);
            let t = f(&mut src)?;
            let w = src.warnings().to_vec();
            drop(src);
            vol.close()?;
            Ok((t, w))
        }
        FsType::Fat12 | FsType::Fat16 | FsType::Fat32 => {
            let mut src = FatSource::new(&disk, v.offset, v.size, addr.to_string())?;
            let t = f(&mut src)?;
            Ok((t, src.warnings().to_vec()))
        }
        other => bail!("volume {addr} holds {other}: only NTFS and FAT volumes can be captured"),
    }
}

/// Applies image `n` onto the volume `addr`; returns the target's warnings.
pub fn apply_to_volume(
    wim: &Wim,
    n: u32,
    addr: &VolumeAddress,
    opts: &ApplyOptions,
    progress: &mut dyn FnMut(ApplyProgress),
) -> Result<Vec<String>> {
    let disk = Disk::open(&addr.disk, true)?;
    let v = locate(&disk, addr.index)?;
    match v.fs {
        FsType::Ntfs => {
            let vol = NtfsVolume::open(&addr.disk, v.offset, v.size, true)
                .with_context(|| format!("opening NTFS volume {addr}"))?;
            Ok(apply_image_to_ntfs(wim, n, vol, opts, progress)?)
        }
        FsType::Fat12 | FsType::Fat16 | FsType::Fat32 => {
            let t = FatTarget::new(&disk, v.offset, v.size, addr.to_string())?;
            Ok(tasq_volume::fat::apply::apply_image_to_fat(
                wim, n, t, opts, progress,
            )?)
        }
        other => bail!("volume {addr} holds {other}: format it as NTFS or FAT first"),
    }
}

/// One volume of a disk for capture-disk: (index, description for the
/// image, Err(reason) when it is skipped).
pub type DiskVolume = (u32, String, std::result::Result<(), String>);

/// The volumes of a disk in order, each with whether it is captured and
/// why not.
pub fn disk_volumes(path: &Path, usb: bool) -> Result<Vec<DiskVolume>> {
    let mut disk = Disk::open(path, false)?;
    if usb {
        disk.set_usb_flag(true);
    }
    let report = list_volumes(&disk)?;
    Ok(report
        .volumes
        .into_iter()
        .map(|v| {
            let label = v.label.clone().unwrap_or_default();
            let desc = format!(
                "partition {} of {} ({}{}{})",
                v.index,
                path.display(),
                v.fs,
                if label.is_empty() { "" } else { ", label " },
                label
            );
            let ok = if v.capturable {
                Ok(())
            } else {
                Err(v.reason.unwrap_or_else(|| "not capturable".into()))
            };
            (v.index, desc, ok)
        })
        .collect())
}
