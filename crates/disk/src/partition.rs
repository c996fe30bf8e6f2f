//! Writing a layout: the partition table (MBR with `mbrman`, GPT with
//! `gpt`) and then the file systems, as the Format and Partition Disk step
//! does. [`partition_and_format`] is the call the task-sequence engine
//! makes; it returns each volume with what the step records (offset, size,
//! file system, label, letter variable).

use std::io::{Seek, SeekFrom};

use crate::disk::{Disk, SECTOR_SIZE};
use crate::error::{DiskError, Result};
use crate::format::{format_fat32, format_ntfs, zero_range};
use crate::layout::{plan, FsKind, Layout, PartKind, PlannedPartition, Style};

/// A volume made by [`partition_and_format`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CreatedVolume {
    pub index: u32,
    pub offset: u64,
    pub size: u64,
    pub kind: PartKind,
    pub file_system: Option<FsKind>,
    pub label: String,
    pub bootable: bool,
    pub letter_variable: Option<String>,
}

fn terr(disk: &Disk, what: &str, e: impl std::fmt::Display) -> DiskError {
    DiskError::Io {
        disk: disk.name(),
        context: format!("write the {what}"),
        source: std::io::Error::other(e.to_string()),
    }
}

/// CHS of an LBA for 255 heads and 63 sectors per track; past the CHS
/// range, the conventional 1023/254/63.
fn chs(lba: u64) -> mbrman::CHS {
    let c = lba / (255 * 63);
    if c > 1023 {
        return mbrman::CHS::new(1023, 254, 63);
    }
    mbrman::CHS::new(c as u16, ((lba / 63) % 255) as u8, (lba % 63 + 1) as u8)
}

/// Writes the partition table of `layout` (nothing else) and returns
/// where each partition went. Old table signatures (both GPT copies) are
/// cleared first, and the first MiB of every new partition is zeroed so
/// that no stale file-system signature survives.
pub fn write_partition_table(disk: &Disk, layout: &Layout) -> Result<Vec<PlannedPartition>> {
    if !disk.is_writable() {
        return Err(DiskError::InvalidArgument(format!(
            "{}: opened read-only",
            disk.name()
        )));
    }
    let planned = plan(layout, disk.sectors(), &disk.name())?;
    let n = disk.sectors();
    zero_range(disk, 0, 34 * SECTOR_SIZE)?;
    zero_range(disk, (n - 33) * SECTOR_SIZE, 33 * SECTOR_SIZE)?;
    for p in &planned {
        zero_range(
            disk,
            p.start_lba * SECTOR_SIZE,
            (p.sectors * SECTOR_SIZE).min(1 << 20),
        )?;
    }
    let mut f = disk
        .file()
        .try_clone()
        .map_err(|e| DiskError::io(disk.name(), "duplicate the handle", e))?;
    match layout.style {
        Style::Mbr => {
            let sig = *uuid::Uuid::new_v4().as_bytes();
            let mut mbr = mbrman::MBR::new_from(
                &mut f,
                SECTOR_SIZE as u32,
                [sig[0], sig[1], sig[2], sig[3] | 1],
            )
            .map_err(|e| terr(disk, "MBR", e))?;
            for p in &planned {
                let entry = mbrman::MBRPartitionEntry {
                    boot: if p.spec.bootable {
                        mbrman::BOOT_ACTIVE
                    } else {
                        mbrman::BOOT_INACTIVE
                    },
                    first_chs: chs(p.start_lba),
                    sys: p.mbr_type(),
                    last_chs: chs(p.start_lba + p.sectors - 1),
                    // plan() refused disks past 2^32 sectors for MBR.
                    starting_lba: p.start_lba as u32,
                    sectors: p.sectors as u32,
                };
                match mbr.get_mut(p.index as usize) {
                    Some(slot) => *slot = entry,
                    None => {
                        return Err(DiskError::Layout {
                            disk: disk.name(),
                            reason: format!("partition {}: no such MBR slot", p.index),
                        })
                    }
                }
            }
            f.seek(SeekFrom::Start(0))
                .map_err(|e| DiskError::io(disk.name(), "seek", e))?;
            mbr.write_into(&mut f).map_err(|e| terr(disk, "MBR", e))?;
        }
        Style::Gpt => {
            let pm =
                gpt::mbr::ProtectiveMBR::with_lb_size(u32::try_from(n - 1).unwrap_or(u32::MAX));
            pm.overwrite_lba0(&mut f)
                .map_err(|e| terr(disk, "protective MBR", e))?;
            let mut g = gpt::GptConfig::new()
                .writable(true)
                .logical_block_size(gpt::disk::LogicalBlockSize::Lb512)
                .create_from_device(f, None)
                .map_err(|e| terr(disk, "GPT", e))?;
            for p in &planned {
                let guid = uuid::Uuid::parse_str(p.gpt_type()).map_err(|e| terr(disk, "GPT", e))?;
                let ty = gpt::partition_types::Type {
                    guid,
                    os: gpt::partition_types::OperatingSystem::None,
                };
                g.add_partition_at(
                    &p.spec.volume_name,
                    p.index,
                    p.start_lba,
                    p.sectors,
                    ty,
                    p.gpt_attributes(),
                )
                .map_err(|e| DiskError::BadPartition {
                    disk: disk.name(),
                    index: p.index,
                    reason: format!("cannot add to the GPT: {e}"),
                })?;
            }
            g.write().map_err(|e| terr(disk, "GPT", e))?;
        }
    }
    disk.sync()?;
    Ok(planned)
}

/// Partitions `disk` by `layout` and formats every partition that has a
/// file system; a partition without quick format is zeroed first.
pub fn partition_and_format(disk: &Disk, layout: &Layout) -> Result<Vec<CreatedVolume>> {
    let planned = write_partition_table(disk, layout)?;
    let mut out = Vec::new();
    for p in planned {
        let offset = p.start_lba * SECTOR_SIZE;
        let size = p.sectors * SECTOR_SIZE;
        if let Some(fs) = p.spec.file_system {
            if !p.spec.quick_format {
                zero_range(disk, offset, size)?;
            }
            match fs {
                FsKind::Fat32 => format_fat32(disk, p.index, offset, size, &p.spec.volume_name)?,
                FsKind::Ntfs => format_ntfs(disk, p.index, offset, size, &p.spec.volume_name)?,
            }
        }
        out.push(CreatedVolume {
            index: p.index,
            offset,
            size,
            kind: p.spec.kind,
            file_system: p.spec.file_system,
            label: p.spec.volume_name.clone(),
            bootable: p.spec.bootable,
            letter_variable: p.spec.letter_variable.clone(),
        });
    }
    disk.sync()?;
    Ok(out)
}
