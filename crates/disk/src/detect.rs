//! File-system detection by superblock, with labels: NTFS (label from the
//! `$Volume` MFT record), FAT12/16/32 (root-directory label, else the boot
//! sector's), exFAT, ext2/3/4, XFS, Btrfs and Linux swap. Every read is
//! bounded by the partition's size; a damaged structure gives "no label"
//! or `Unknown`, never a panic.

use std::io::{Read, Seek, SeekFrom};

use crate::disk::{Disk, DiskSlice};
use crate::error::Result;
use crate::fat::{self, FatBits, RawFat};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum FsType {
    #[serde(rename = "NTFS")]
    Ntfs,
    #[serde(rename = "FAT12")]
    Fat12,
    #[serde(rename = "FAT16")]
    Fat16,
    #[serde(rename = "FAT32")]
    Fat32,
    #[serde(rename = "exFAT")]
    ExFat,
    #[serde(rename = "ext2")]
    Ext2,
    #[serde(rename = "ext3")]
    Ext3,
    #[serde(rename = "ext4")]
    Ext4,
    #[serde(rename = "XFS")]
    Xfs,
    #[serde(rename = "Btrfs")]
    Btrfs,
    #[serde(rename = "swap")]
    Swap,
    #[serde(rename = "unknown")]
    Unknown,
}

impl std::fmt::Display for FsType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = fs_name(*self);
        f.write_str(s)
    }
}

fn fs_name(t: FsType) -> &'static str {
    match t {
        FsType::Ntfs => "NTFS",
        FsType::Fat12 => "FAT12",
        FsType::Fat16 => "FAT16",
        FsType::Fat32 => "FAT32",
        FsType::ExFat => "exFAT",
        FsType::Ext2 => "ext2",
        FsType::Ext3 => "ext3",
        FsType::Ext4 => "ext4",
        FsType::Xfs => "XFS",
        FsType::Btrfs => "Btrfs",
        FsType::Swap => "swap",
        FsType::Unknown => "unknown",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Detected {
    pub fs: FsType,
    pub label: Option<String>,
}

/// Reads up to `n` bytes at `off` of the slice; fewer at its end.
fn read_some(s: &mut DiskSlice, off: u64, n: usize) -> std::io::Result<Vec<u8>> {
    if off >= s.len() {
        return Ok(Vec::new());
    }
    let n = n.min((s.len() - off) as usize);
    let mut buf = vec![0u8; n];
    s.seek(SeekFrom::Start(off))?;
    s.read_exact(&mut buf)?;
    Ok(buf)
}

fn le16(b: &[u8], o: usize) -> u64 {
    b.get(o..o + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]) as u64)
        .unwrap_or(0)
}
fn le32(b: &[u8], o: usize) -> u64 {
    b.get(o..o + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as u64)
        .unwrap_or(0)
}
fn le64(b: &[u8], o: usize) -> u64 {
    le32(b, o) | (le32(b, o + 4) << 32)
}

/// A NUL-padded byte label as text (lossy UTF-8), None when empty.
fn cstr_label(b: &[u8]) -> Option<String> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    let s = String::from_utf8_lossy(&b[..end]).trim_end().to_string();
    (!s.is_empty()).then_some(s)
}

/// Detects the file system of `len` bytes at `offset` of `disk`.
pub fn detect(disk: &Disk, offset: u64, len: u64) -> Result<Detected> {
    let mut s = disk.slice(offset, len)?;
    let io = |e: std::io::Error| {
        crate::error::DiskError::io(
            disk.name(),
            format!("read the volume at offset {offset}"),
            e,
        )
    };
    let head = read_some(&mut s, 0, 4096).map_err(io)?;
    Ok(detect_in(&mut s, &head).unwrap_or(Detected {
        fs: FsType::Unknown,
        label: None,
    }))
}

fn detect_in(s: &mut DiskSlice, head: &[u8]) -> Option<Detected> {
    let oem = head.get(3..11);
    if oem == Some(b"NTFS    ".as_slice()) {
        return Some(Detected {
            fs: FsType::Ntfs,
            label: ntfs_label(s, head),
        });
    }
    if oem == Some(b"EXFAT   ".as_slice()) {
        return Some(Detected {
            fs: FsType::ExFat,
            label: exfat_label(s, head),
        });
    }
    if let Ok(geo) = fat::parse_boot_sector(head) {
        let fs = match geo.bits {
            FatBits::Fat12 => FsType::Fat12,
            FatBits::Fat16 => FsType::Fat16,
            FatBits::Fat32 => FsType::Fat32,
        };
        let root = RawFat::open(s)
            .ok()
            .and_then(|mut r| r.root_label().ok().flatten());
        let label = root
            .filter(|l| !l.is_empty())
            .or_else(|| fat::boot_sector_label(head, geo.bits));
        return Some(Detected { fs, label });
    }
    if head.get(0..4) == Some(b"XFSB".as_slice()) {
        return Some(Detected {
            fs: FsType::Xfs,
            label: head.get(108..120).and_then(cstr_label),
        });
    }
    // ext2/3/4: the superblock is at 1024, magic 0xEF53 at +56.
    if let Some(sb) = head.get(1024..2048) {
        if le16(sb, 56) == 0xEF53 {
            let compat = le32(sb, 92);
            let incompat = le32(sb, 96);
            let ro_compat = le32(sb, 100);
            // ext3 adds the journal; features beyond what ext3 knows
            // (extents, 64bit, flex_bg, huge_file, metadata_csum...) are ext4.
            let fs = if incompat & !0x1F != 0 || ro_compat & !0x07 != 0 {
                FsType::Ext4
            } else if compat & 0x4 != 0 {
                FsType::Ext3
            } else {
                FsType::Ext2
            };
            return Some(Detected {
                fs,
                label: sb.get(120..136).and_then(cstr_label),
            });
        }
    }
    // Linux swap: the signature ends the first page; try the usual sizes.
    for page in [4096u64, 8192, 16384, 65536] {
        if let Ok(b) = read_some(s, page - 10, 10) {
            if b == b"SWAPSPACE2" || b == b"SWAP-SPACE" {
                return Some(Detected {
                    fs: FsType::Swap,
                    label: head.get(1052..1068).and_then(cstr_label),
                });
            }
        }
    }
    // Btrfs: superblock at 64 KiB, magic at +0x40, label at +0x12B.
    if let Ok(sb) = read_some(s, 0x10000, 0x22B) {
        if sb.get(0x40..0x48) == Some(b"_BHRfS_M".as_slice()) {
            return Some(Detected {
                fs: FsType::Btrfs,
                label: sb.get(0x12B..0x22B).and_then(cstr_label),
            });
        }
    }
    None
}

/// The NTFS volume label: the `$VOLUME_NAME` attribute of MFT record 3.
fn ntfs_label(s: &mut DiskSlice, boot: &[u8]) -> Option<String> {
    let bps = le16(boot, 11);
    if !matches!(bps, 512 | 1024 | 2048 | 4096) {
        return None;
    }
    let spc_raw = *boot.get(13)? as u64;
    let cluster = if spc_raw <= 0x80 {
        spc_raw * bps
    } else {
        // Large clusters: the byte is a negative power of two.
        1u64.checked_shl((256 - spc_raw) as u32)?.checked_mul(bps)?
    };
    if cluster == 0 {
        return None;
    }
    let rec_raw = *boot.get(0x40)? as i8;
    let rec_size = if rec_raw < 0 {
        1u64.checked_shl((-(rec_raw as i32)) as u32)?
    } else {
        rec_raw as u64 * cluster
    };
    if !(256..=65536).contains(&rec_size) {
        return None;
    }
    let mft = le64(boot, 0x30).checked_mul(cluster)?;
    let mut rec = read_some(s, mft.checked_add(3 * rec_size)?, rec_size as usize).ok()?;
    if rec.len() as u64 != rec_size || rec.get(0..4) != Some(b"FILE".as_slice()) {
        return None;
    }
    // Undo the update sequence: the last two bytes of each 512-byte
    // stride were replaced by the sequence number on write.
    let usa_off = le16(&rec, 4) as usize;
    let usa_count = le16(&rec, 6) as usize;
    for i in 1..usa_count {
        let end = i * 512;
        let orig = rec.get(usa_off + 2 * i..usa_off + 2 * i + 2)?.to_vec();
        rec.get_mut(end - 2..end)?.copy_from_slice(&orig);
    }
    let mut a = le16(&rec, 0x14) as usize;
    // Each attribute is at least 16 bytes long, so this ends.
    while a + 16 <= rec.len() {
        let ty = le32(&rec, a);
        let alen = le32(&rec, a + 4) as usize;
        if ty == 0xFFFF_FFFF || alen < 16 {
            return None;
        }
        if ty == 0x60 && rec.get(a + 8) == Some(&0) {
            let vlen = le32(&rec, a + 0x10) as usize;
            let voff = le16(&rec, a + 0x14) as usize;
            let v = rec.get(a + voff..a + voff + vlen)?;
            let units: Vec<u16> = v
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            let l = String::from_utf16_lossy(&units);
            return (!l.is_empty()).then_some(l);
        }
        a += alen;
    }
    None
}

/// The exFAT label: entry type 0x83 in the root directory's first cluster.
fn exfat_label(s: &mut DiskSlice, boot: &[u8]) -> Option<String> {
    let bps_shift = *boot.get(108)? as u32;
    let spc_shift = *boot.get(109)? as u32;
    if !(9..=12).contains(&bps_shift) || bps_shift + spc_shift > 25 {
        return None;
    }
    let bps = 1u64 << bps_shift;
    let csize = bps << spc_shift;
    let heap = le32(boot, 88) * bps;
    let root = le32(boot, 96);
    if root < 2 {
        return None;
    }
    let off = heap.checked_add((root - 2).checked_mul(csize)?)?;
    let dir = read_some(s, off, csize.min(65536) as usize).ok()?;
    for e in dir.chunks_exact(32) {
        match e[0] {
            0x00 => return None,
            0x83 => {
                let n = (e[1] as usize).min(11);
                let units: Vec<u16> = (0..n).map(|k| le16(e, 2 + 2 * k) as u16).collect();
                return Some(String::from_utf16_lossy(&units));
            }
            _ => {}
        }
    }
    None
}
