//! Capture of a disk's volumes, each as its own image of one WIM: the
//! rule ConfigMgr's Capture Operating System Image applies (only NTFS and
//! FAT32 volumes, none on a USB disk) and the source for one volume
//! (libntfs-3g for NTFS, fatfs for FAT). `tasq wim capture-disk` and the
//! engine's capture step both go through here, so the rule and the
//! backend choice live in one place.

use std::path::Path;

use tasq_disk::{list_volumes, locate, Disk, DiskError, FsType};
use tasq_wim::capture::{CaptureFilter, CaptureSource};
use tasq_wim::writer::{ImageOptions, ProgressEvent, WimWriter};
use tasq_wim::WimError;

use crate::FatSource;

#[derive(Debug, thiserror::Error)]
pub enum DiskCaptureError {
    #[error(transparent)]
    Disk(#[from] DiskError),
    #[error(transparent)]
    Wim(#[from] WimError),
    #[error("volume {volume} holds {fs}: only NTFS and FAT volumes can be captured")]
    NotCapturable { volume: String, fs: FsType },
}

/// One volume of a disk, in partition order, with the capture verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskVolume {
    /// Partition number (0: a file system on the whole disk).
    pub index: u32,
    pub offset: u64,
    pub size: u64,
    pub fs: FsType,
    pub label: Option<String>,
    /// "partition 2 of disk.img (NTFS, label Windows)", for images and logs.
    pub description: String,
    /// Why the volume is not captured; `None` when it is.
    pub skip: Option<String>,
}

/// The volumes of the disk at `path` with whether each is captured and why
/// not. `usb` marks an image file as a USB disk (a block device knows).
pub fn disk_volumes(path: &Path, usb: bool) -> Result<Vec<DiskVolume>, DiskCaptureError> {
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
            let description = format!(
                "partition {} of {} ({}{}{})",
                v.index,
                path.display(),
                v.fs,
                if label.is_empty() { "" } else { ", label " },
                label
            );
            let skip = if v.capturable {
                None
            } else {
                Some(v.reason.unwrap_or_else(|| "not capturable".into()))
            };
            DiskVolume {
                index: v.index,
                offset: v.offset,
                size: v.size,
                fs: v.fs,
                label: v.label,
                description,
                skip,
            }
        })
        .collect())
}

/// Runs `f` with a capture source over volume `index` of the disk at
/// `path`; returns its result and the source's warnings.
pub fn with_volume_source<T, E>(
    path: &Path,
    index: u32,
    f: impl FnOnce(&mut dyn CaptureSource) -> Result<T, E>,
) -> Result<(T, Vec<String>), E>
where
    E: From<DiskCaptureError>,
{
    let disk = Disk::open(path, false).map_err(DiskCaptureError::from)?;
    let v = locate(&disk, index).map_err(DiskCaptureError::from)?;
    let name = format!("{}:{index}", path.display());
    match v.fs {
        #[cfg(feature = "ntfs")]
        FsType::Ntfs => {
            let vol = crate::NtfsVolume::open(path, v.offset, v.size, false)
                .map_err(DiskCaptureError::from)?;
            let mut src = crate::NtfsSource::new(&vol);
            let t = f(&mut src)?;
            let w = src.warnings().to_vec();
            drop(src);
            vol.close().map_err(DiskCaptureError::from)?;
            Ok((t, w))
        }
        FsType::Fat12 | FsType::Fat16 | FsType::Fat32 => {
            let mut src =
                FatSource::new(&disk, v.offset, v.size, name).map_err(DiskCaptureError::from)?;
            let t = f(&mut src)?;
            Ok((t, src.warnings().to_vec()))
        }
        other => Err(DiskCaptureError::NotCapturable {
            volume: name,
            fs: other,
        }
        .into()),
    }
}

/// Captures volume `index` of the disk at `path` as a new image of `w`;
/// returns the image number and the source's warnings.
pub fn capture_volume(
    w: &mut WimWriter,
    path: &Path,
    index: u32,
    filter: &dyn CaptureFilter,
    image: &ImageOptions,
    progress: &mut dyn FnMut(ProgressEvent),
) -> Result<(u32, Vec<String>), DiskCaptureError> {
    with_volume_source(path, index, |src| {
        w.add_image(src, filter, image, progress)
            .map_err(DiskCaptureError::from)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disk_without_a_table_is_an_error_not_a_panic() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("zero.img");
        std::fs::write(&p, vec![0u8; 1 << 20]).unwrap();
        // Either no volume or an error: never a panic on an empty disk.
        if let Ok(v) = disk_volumes(&p, false) {
            assert!(v.iter().all(|v| v.skip.is_some()));
        }
        let missing = d.path().join("missing.img");
        assert!(matches!(
            disk_volumes(&missing, false),
            Err(DiskCaptureError::Disk(_))
        ));
    }
}
