//! Formatting a partition: FAT32 in process with `fatfs`, NTFS with
//! `mkntfs` from ntfs-3g.
//!
//! `mkntfs` only formats from offset 0 of what it is given (its
//! `--partition-start` merely records the hidden-sector count in the boot
//! sector), and we use neither loop devices nor root. So NTFS is made on
//! a sparse temporary file of the partition's size and the extents that
//! mkntfs wrote (found with SEEK_DATA/SEEK_HOLE, a few MiB for a quick
//! format) are copied into the partition.

use std::io::Write;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::Command;

use crate::disk::{Disk, DiskKind, SECTOR_SIZE};
use crate::error::{DiskError, Result};
use crate::fat;

fn ferr(disk: &Disk, index: u32, fs: &str, reason: impl Into<String>) -> DiskError {
    DiskError::Format {
        disk: disk.name(),
        index,
        fs: fs.into(),
        reason: reason.into(),
    }
}

/// The 11-byte FAT label: upper case, characters FAT forbids replaced by
/// `_`, cut to 11 bytes; None when empty.
pub fn fat_label_bytes(label: &str) -> Option<[u8; 11]> {
    let mut out = [b' '; 11];
    let mut n = 0;
    for c in label.chars() {
        if n == 11 {
            break;
        }
        let c = c.to_ascii_uppercase();
        let b = if c.is_ascii_alphanumeric() || " !#$%&'()-@^_`{}~".contains(c) {
            c as u8
        } else {
            b'_'
        };
        out[n] = b;
        n += 1;
    }
    (n > 0 && out.iter().any(|&b| b != b' ')).then_some(out)
}

/// A fresh 32-bit volume serial number.
fn volume_serial() -> u32 {
    let u = uuid::Uuid::new_v4();
    let b = u.as_bytes();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Formats `len` bytes at `offset` as FAT32 with `label`.
pub fn format_fat32(disk: &Disk, index: u32, offset: u64, len: u64, label: &str) -> Result<()> {
    let sectors = u32::try_from(len / SECTOR_SIZE).map_err(|_| {
        ferr(
            disk,
            index,
            "FAT32",
            "the partition is larger than FAT32 allows",
        )
    })?;
    let hidden = u32::try_from(offset / SECTOR_SIZE).unwrap_or(u32::MAX);
    let mut slice = disk.slice(offset, len)?;
    let mut opts = fatfs::FormatVolumeOptions::new()
        .fat_type(fatfs::FatType::Fat32)
        .total_sectors(sectors)
        .bytes_per_sector(SECTOR_SIZE as u16)
        .volume_id(volume_serial());
    if let Some(l) = fat_label_bytes(label) {
        opts = opts.volume_label(l);
    }
    fatfs::format_volume(&mut slice, opts)
        .map_err(|e| ferr(disk, index, "FAT32", e.to_string()))?;
    // FAT type is decided by the cluster count alone; fatfs will lay out
    // FAT32 structures on a volume too small to have 65525 clusters, which
    // every reader would then take for FAT16.
    {
        use std::io::{Read, Seek, SeekFrom};
        let mut boot = [0u8; 512];
        slice
            .flush()
            .and_then(|_| slice.seek(SeekFrom::Start(0)))
            .and_then(|_| slice.read_exact(&mut boot))
            .map_err(|e| ferr(disk, index, "FAT32", e.to_string()))?;
        let geo = fat::parse_boot_sector(&boot).map_err(|e| ferr(disk, index, "FAT32", e))?;
        if geo.bits != fat::FatBits::Fat32 {
            return Err(ferr(
                disk,
                index,
                "FAT32",
                format!(
                    "{} MiB is too small: {} clusters, FAT32 needs at least 65525",
                    len >> 20,
                    geo.cluster_count
                ),
            ));
        }
    }
    fat::set_hidden_sectors(&mut slice, hidden).map_err(|e| ferr(disk, index, "FAT32", e))?;
    // fatfs leaves the FSInfo free-cluster count "unknown"; counting once
    // and unmounting records it, as Windows' format does.
    {
        use std::io::{Seek, SeekFrom};
        // fatfs insists on finding its stream at offset 0 (it asserts).
        slice
            .seek(SeekFrom::Start(0))
            .map_err(|e| ferr(disk, index, "FAT32", e.to_string()))?;
        let fs = fatfs::FileSystem::new(&mut slice, fatfs::FsOptions::new())
            .map_err(|e| ferr(disk, index, "FAT32", format!("mount after format: {e}")))?;
        fs.stats()
            .map_err(|e| ferr(disk, index, "FAT32", e.to_string()))?;
        fs.unmount()
            .map_err(|e| ferr(disk, index, "FAT32", e.to_string()))?;
    }
    slice
        .flush()
        .map_err(|e| ferr(disk, index, "FAT32", format!("write: {e}")))?;
    Ok(())
}

/// Finds a program in PATH or the sbin directories (mkntfs lives in
/// /usr/sbin, which a non-root PATH may lack).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Formats `len` bytes at `offset` as NTFS with `label`, by `mkntfs -Q`.
pub fn format_ntfs(disk: &Disk, index: u32, offset: u64, len: u64, label: &str) -> Result<()> {
    let fs = "NTFS";
    let mkntfs = find_program("mkntfs")
        .ok_or_else(|| ferr(disk, index, fs, "mkntfs not found (install ntfs-3g)"))?;
    let tmp = tempfile::NamedTempFile::new()
        .map_err(|e| ferr(disk, index, fs, format!("temporary file: {e}")))?;
    tmp.as_file()
        .set_len(len)
        .map_err(|e| ferr(disk, index, fs, format!("temporary file: {e}")))?;
    let out = Command::new(&mkntfs)
        .args(["-Q", "-F", "-q", "-s", "512", "-H", "255", "-S", "63", "-p"])
        .arg((offset / SECTOR_SIZE).to_string())
        .arg("-L")
        .arg(label)
        .arg(tmp.path())
        .output()
        .map_err(|e| ferr(disk, index, fs, format!("run {}: {e}", mkntfs.display())))?;
    if !out.status.success() {
        return Err(ferr(
            disk,
            index,
            fs,
            format!(
                "mkntfs failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    copy_data_extents(tmp.as_file(), len, disk, offset)
        .map_err(|e| ferr(disk, index, fs, format!("copy into the partition: {e}")))?;
    Ok(())
}

/// Copies the allocated extents of sparse file `src` (of `len` bytes) to
/// `disk` at `offset`.
fn copy_data_extents(
    src: &std::fs::File,
    len: u64,
    disk: &Disk,
    offset: u64,
) -> std::io::Result<()> {
    use rustix::fs::{seek, SeekFrom};
    use std::os::unix::fs::FileExt;
    let mut pos = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    while pos < len {
        let data = match seek(src.as_fd(), SeekFrom::Data(pos)) {
            Ok(d) => d,
            // ENXIO: no data after pos.
            Err(rustix::io::Errno::NXIO) => break,
            Err(e) => return Err(e.into()),
        };
        let hole = seek(src.as_fd(), SeekFrom::Hole(data))?.min(len);
        let mut p = data;
        while p < hole {
            let n = ((hole - p) as usize).min(buf.len());
            src.read_exact_at(&mut buf[..n], p)?;
            disk.file().write_all_at(&buf[..n], offset + p)?;
            p += n as u64;
        }
        pos = hole;
    }
    Ok(())
}

/// Zeroes `len` bytes at `offset`: punches a hole in an image file (no
/// blocks written), writes zeros on a block device.
pub fn zero_range(disk: &Disk, offset: u64, len: u64) -> Result<()> {
    use rustix::fs::{fallocate, FallocateFlags};
    if disk.kind() == DiskKind::ImageFile
        && fallocate(
            disk.file().as_fd(),
            FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
            offset,
            len,
        )
        .is_ok()
    {
        return Ok(());
    }
    let zeros = vec![0u8; 1 << 20];
    let mut p = 0u64;
    while p < len {
        let n = (len - p).min(zeros.len() as u64) as usize;
        disk.write_all_at(&zeros[..n], offset + p)?;
        p += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fat_labels() {
        assert_eq!(&fat_label_bytes("efi").unwrap(), b"EFI        ");
        assert_eq!(&fat_label_bytes("System Reserved").unwrap(), b"SYSTEM RESE");
        assert_eq!(&fat_label_bytes("a.b*c").unwrap(), b"A_B_C      ");
        assert!(fat_label_bytes("").is_none());
        assert!(fat_label_bytes("   ").is_none());
    }
}
