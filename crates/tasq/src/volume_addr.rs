//! Where `tasq wim` reads from and writes to: a directory, or a volume
//! inside a disk image or device addressed as `DISK:N` (partition N; 0 = a
//! file system on the whole disk). NTFS volumes go through libntfs-3g,
//! FAT volumes through fatfs; the WIM code sees only the two traits.

use std::path::Path;

use anyhow::{bail, Context, Result};
use tasq_disk::{locate, Disk, FsType, VolumeAddress};
use tasq_volume::ntfs::{apply_image_to_ntfs, NtfsVolume};
use tasq_volume::{FatTarget, HostDirSource};
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
/// and the source's warnings. `rpfix`: reparse-point fixups of a directory
/// source (see [`HostDirSource::with_rpfix`]).
pub fn with_source<T>(
    spec: &Path,
    rpfix: bool,
    f: impl FnOnce(&mut dyn CaptureSource) -> Result<T>,
) -> Result<(T, Vec<String>)> {
    let Some(addr) = volume_address(spec) else {
        let mut src = HostDirSource::new(spec)
            .and_then(|s| s.with_rpfix(rpfix))
            .with_context(|| format!("capture source {}", spec.display()))?;
        let t = f(&mut src)?;
        return Ok((t, src.warnings().to_vec()));
    };
    tasq_volume::disk_capture::with_volume_source(&addr.disk, addr.index, |src| {
        f(src).with_context(|| format!("capturing volume {addr}"))
    })
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
