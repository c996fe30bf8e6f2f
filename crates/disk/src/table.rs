//! Reading partition tables (MBR with its extended chain, and GPT).
//!
//! Tables are *written* with the `mbrman` and `gpt` crates (see
//! [`crate::partition`]); they are *read* here with a parser of our own
//! because a table on a disk handed to us is untrusted: every count and
//! offset is bounded before use, nothing allocates by a value read from
//! disk beyond a fixed cap, and every fault is an error naming the disk
//! and, where it applies, the partition.

use crate::disk::{Disk, SECTOR_SIZE};
use crate::error::{DiskError, Result};

/// The partitioning scheme found on a disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PartitionStyle {
    Mbr,
    Gpt,
    /// A file system on the whole disk (a "superfloppy"): one volume, index 0.
    Whole,
    /// No table and no file system on the whole disk.
    None,
}

/// The type of one partition as its table records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "scheme", rename_all = "lowercase")]
pub enum PartitionType {
    Mbr {
        sys: u8,
        active: bool,
    },
    Gpt {
        /// Upper-case canonical form (`C12A7328-F81F-11D2-BA4B-00A0C93EC93B`).
        type_guid: String,
        guid: String,
        attributes: u64,
        name: String,
    },
    Whole,
}

impl PartitionType {
    /// A short human name of the type ("EFI system", "0x07", ...).
    pub fn describe(&self) -> String {
        match self {
            PartitionType::Mbr { sys, .. } => {
                let n = match sys {
                    0x07 => "NTFS/exFAT",
                    0x0b | 0x0c => "FAT32",
                    0x01 | 0x04 | 0x06 | 0x0e => "FAT",
                    0x27 => "recovery",
                    0x82 => "Linux swap",
                    0x83 => "Linux",
                    0xef => "EFI system",
                    _ => "",
                };
                if n.is_empty() {
                    format!("0x{sys:02x}")
                } else {
                    format!("0x{sys:02x} {n}")
                }
            }
            PartitionType::Gpt { type_guid, .. } => match type_guid.as_str() {
                crate::layout::GUID_EFI_SYSTEM => "EFI system".into(),
                crate::layout::GUID_MSR => "Microsoft reserved".into(),
                crate::layout::GUID_BASIC_DATA => "basic data".into(),
                crate::layout::GUID_WINDOWS_RECOVERY => "Windows recovery".into(),
                "0FC63DAF-8483-4772-8E79-3D69D8477DE4" => "Linux data".into(),
                "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F" => "Linux swap".into(),
                g => g.to_string(),
            },
            PartitionType::Whole => "whole disk".into(),
        }
    }

    /// An MSR or an extended-partition container: holds no file system.
    pub fn holds_no_file_system(&self) -> bool {
        match self {
            PartitionType::Gpt { type_guid, .. } => type_guid == crate::layout::GUID_MSR,
            _ => false,
        }
    }
}

/// One partition: 1-based index (MBR: 1–4 primary, 5+ logical; GPT: the
/// entry number), start and length in 512-byte sectors.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionEntry {
    pub index: u32,
    pub start_lba: u64,
    pub sectors: u64,
    pub ptype: PartitionType,
}

impl PartitionEntry {
    pub fn offset(&self) -> u64 {
        self.start_lba * SECTOR_SIZE
    }
    pub fn size(&self) -> u64 {
        self.sectors * SECTOR_SIZE
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionTable {
    pub style: PartitionStyle,
    pub entries: Vec<PartitionEntry>,
}

/// Most GPT entries we accept (the usual table has 128).
const MAX_GPT_ENTRIES: u32 = 4096;
/// Most logical partitions followed in an extended chain.
const MAX_LOGICAL: u32 = 128;

fn le16(b: &[u8], o: usize) -> u16 {
    b.get(o..o + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .unwrap_or(0)
}
fn le32(b: &[u8], o: usize) -> u32 {
    b.get(o..o + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .unwrap_or(0)
}
fn le64(b: &[u8], o: usize) -> u64 {
    let lo = le32(b, o) as u64;
    let hi = le32(b, o + 4) as u64;
    lo | (hi << 32)
}

/// Formats a GUID stored in the mixed-endian on-disk form.
pub fn guid_to_string(g: &[u8]) -> String {
    if g.len() < 16 {
        return String::new();
    }
    format!(
        "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
        le32(g, 0),
        le16(g, 4),
        le16(g, 6),
        g[8],
        g[9],
        g[10],
        g[11],
        g[12],
        g[13],
        g[14],
        g[15]
    )
}

/// Whether a sector 0 is the boot sector of a file system on the whole
/// disk rather than an MBR (both end in 55 AA).
fn is_volume_boot_sector(s: &[u8]) -> bool {
    let oem = s.get(3..11).unwrap_or(&[]);
    oem == b"NTFS    "
        || oem == b"EXFAT   "
        || s.get(0x52..0x5a) == Some(b"FAT32   ".as_slice())
        || s.get(0x36..0x3b) == Some(b"FAT12".as_slice())
        || s.get(0x36..0x3b) == Some(b"FAT16".as_slice())
}

/// Reads the partition table of `disk`.
pub fn read_table(disk: &Disk) -> Result<PartitionTable> {
    let name = disk.name();
    if disk.size() < SECTOR_SIZE {
        return Err(DiskError::BadTable {
            disk: name,
            reason: format!("the disk is only {} bytes long", disk.size()),
        });
    }
    let mut s0 = [0u8; 512];
    disk.read_exact_at(&mut s0, 0)?;
    if s0[510] != 0x55 || s0[511] != 0xAA {
        return Ok(PartitionTable {
            style: PartitionStyle::None,
            entries: Vec::new(),
        });
    }
    if is_volume_boot_sector(&s0) {
        return Ok(PartitionTable {
            style: PartitionStyle::Whole,
            entries: vec![PartitionEntry {
                index: 0,
                start_lba: 0,
                sectors: disk.sectors(),
                ptype: PartitionType::Whole,
            }],
        });
    }
    let primary = parse_mbr_entries(&s0, &name)?;
    if primary.iter().any(|e| e.1 == 0xEE) {
        let entries = read_gpt(disk)?;
        check_entries(disk, &entries)?;
        return Ok(PartitionTable {
            style: PartitionStyle::Gpt,
            entries,
        });
    }
    let mut entries = Vec::new();
    for (i, sys, active, start, count) in primary.iter().copied() {
        if matches!(sys, 0x05 | 0x0f | 0x85) {
            read_logical(disk, i, start, count, &mut entries)?;
            continue;
        }
        entries.push(PartitionEntry {
            index: i,
            start_lba: start,
            sectors: count,
            ptype: PartitionType::Mbr { sys, active },
        });
    }
    entries.sort_by_key(|e| e.index);
    check_entries(disk, &entries)?;
    Ok(PartitionTable {
        style: PartitionStyle::Mbr,
        entries,
    })
}

/// The used entries of an MBR/EBR sector: (index, type, active, start, sectors).
/// One used MBR/EBR slot: (index, type, active, start, sectors).
type MbrSlot = (u32, u8, bool, u64, u64);

fn parse_mbr_entries(s: &[u8], disk: &str) -> Result<Vec<MbrSlot>> {
    let mut out = Vec::new();
    for i in 0..4u32 {
        let o = 446 + 16 * i as usize;
        let e = s.get(o..o + 16).unwrap_or(&[]);
        let (Some(&boot), Some(&sys)) = (e.first(), e.get(4)) else {
            continue;
        };
        let start = le32(e, 8) as u64;
        let count = le32(e, 12) as u64;
        if sys == 0 || count == 0 {
            continue;
        }
        if boot != 0 && boot != 0x80 {
            return Err(DiskError::BadTable {
                disk: disk.into(),
                reason: format!(
                    "MBR entry {} has boot flag 0x{boot:02x} (only 0x00 and 0x80 are valid)",
                    i + 1
                ),
            });
        }
        out.push((i + 1, sys, boot == 0x80, start, count));
    }
    Ok(out)
}

/// Follows an extended partition's chain of EBRs, adding logical
/// partitions numbered from 5.
fn read_logical(
    disk: &Disk,
    ext_index: u32,
    ext_start: u64,
    ext_len: u64,
    out: &mut Vec<PartitionEntry>,
) -> Result<()> {
    let name = disk.name();
    let mut ebr = ext_start;
    let mut next_index = 5u32;
    let mut seen = std::collections::HashSet::new();
    loop {
        if !seen.insert(ebr) || next_index > 4 + MAX_LOGICAL {
            return Err(DiskError::BadPartition {
                disk: name,
                index: ext_index,
                reason: "the extended partition's chain loops or is too long".into(),
            });
        }
        if ebr >= disk.sectors() {
            return Err(DiskError::BadPartition {
                disk: name,
                index: next_index,
                reason: format!(
                    "extended boot record at sector {ebr} is beyond the disk end ({} sectors)",
                    disk.sectors()
                ),
            });
        }
        let mut s = [0u8; 512];
        disk.read_exact_at(&mut s, ebr * SECTOR_SIZE)?;
        if s[510] != 0x55 || s[511] != 0xAA {
            return Err(DiskError::BadPartition {
                disk: name,
                index: next_index,
                reason: format!("extended boot record at sector {ebr} has no signature"),
            });
        }
        let ents = parse_mbr_entries(&s, &name)?;
        let mut link = None;
        for (_, sys, active, start, count) in ents {
            if matches!(sys, 0x05 | 0x0f | 0x85) {
                link = Some(ext_start.saturating_add(start));
            } else if link.is_none() || out.iter().all(|e| e.index != next_index) {
                out.push(PartitionEntry {
                    index: next_index,
                    start_lba: ebr.saturating_add(start),
                    sectors: count,
                    ptype: PartitionType::Mbr { sys, active },
                });
            }
        }
        next_index += 1;
        match link {
            Some(l) if l < ext_start.saturating_add(ext_len) => ebr = l,
            Some(l) => {
                return Err(DiskError::BadPartition {
                    disk: name,
                    index: ext_index,
                    reason: format!(
                        "extended chain points outside the extended partition (sector {l})"
                    ),
                })
            }
            None => return Ok(()),
        }
    }
}

/// Reads the primary GPT, falling back to the backup at the last sector.
fn read_gpt(disk: &Disk) -> Result<Vec<PartitionEntry>> {
    let primary = read_gpt_at(disk, 1);
    match primary {
        Ok(e) => Ok(e),
        Err(perr) => {
            let last = disk.sectors().saturating_sub(1);
            read_gpt_at(disk, last).map_err(|_| DiskError::BadTable {
                disk: disk.name(),
                reason: format!("{perr}; the backup GPT header is unusable too"),
            })
        }
    }
}

fn read_gpt_at(disk: &Disk, lba: u64) -> std::result::Result<Vec<PartitionEntry>, String> {
    let mut h = [0u8; 512];
    disk.read_exact_at(&mut h, lba * SECTOR_SIZE)
        .map_err(|e| format!("GPT header at sector {lba}: {e}"))?;
    let entries_bytes = {
        let (entry_lba, count, esize) = check_gpt_header(&h, lba, disk.sectors())?;
        let len = count as u64 * esize as u64;
        let mut buf = vec![0u8; len as usize];
        disk.read_exact_at(&mut buf, entry_lba * SECTOR_SIZE)
            .map_err(|e| format!("GPT entries at sector {entry_lba}: {e}"))?;
        if crc32fast::hash(&buf) != le32(&h, 88) {
            return Err(format!(
                "GPT partition entries (header at sector {lba}) fail their CRC-32 check"
            ));
        }
        (buf, esize)
    };
    Ok(parse_gpt_entries(
        &entries_bytes.0,
        entries_bytes.1 as usize,
    ))
}

/// Checks a GPT header; returns (entry LBA, entry count, entry size).
pub(crate) fn check_gpt_header(
    h: &[u8],
    lba: u64,
    disk_sectors: u64,
) -> std::result::Result<(u64, u32, u32), String> {
    if h.get(0..8) != Some(b"EFI PART".as_slice()) {
        return Err(format!("no GPT signature at sector {lba}"));
    }
    let hsize = le32(h, 12) as usize;
    if !(92..=512).contains(&hsize) || hsize > h.len() {
        return Err(format!("GPT header at sector {lba} has size {hsize}"));
    }
    let mut copy = h[..hsize].to_vec();
    copy[16..20].fill(0);
    if crc32fast::hash(&copy) != le32(h, 16) {
        return Err(format!("GPT header at sector {lba} fails its CRC-32 check"));
    }
    let entry_lba = le64(h, 72);
    let count = le32(h, 80);
    let esize = le32(h, 84);
    if count > MAX_GPT_ENTRIES {
        return Err(format!(
            "GPT header claims {count} entries (at most {MAX_GPT_ENTRIES})"
        ));
    }
    if !(128..=4096).contains(&esize) || !esize.is_power_of_two() {
        return Err(format!("GPT entry size {esize} is invalid"));
    }
    let sectors = (count as u64 * esize as u64).div_ceil(SECTOR_SIZE);
    if entry_lba == 0 || entry_lba.saturating_add(sectors) > disk_sectors {
        return Err(format!(
            "GPT entries at sector {entry_lba} ({sectors} sectors) lie beyond the disk end ({disk_sectors} sectors)"
        ));
    }
    Ok((entry_lba, count, esize))
}

/// The used entries of a GPT entry array.
pub(crate) fn parse_gpt_entries(buf: &[u8], esize: usize) -> Vec<PartitionEntry> {
    let mut out = Vec::new();
    if esize < 128 {
        return out;
    }
    for (i, e) in buf.chunks_exact(esize).enumerate() {
        if e[0..16].iter().all(|&b| b == 0) {
            continue;
        }
        let first = le64(e, 32);
        let last = le64(e, 40);
        let name_units: Vec<u16> = (0..36)
            .map(|k| le16(e, 56 + 2 * k))
            .take_while(|&u| u != 0)
            .collect();
        out.push(PartitionEntry {
            index: i as u32 + 1,
            start_lba: first,
            // last < first is caught by check_entries; keep 0 here.
            sectors: if last >= first { last - first + 1 } else { 0 },
            ptype: PartitionType::Gpt {
                type_guid: guid_to_string(&e[0..16]),
                guid: guid_to_string(&e[16..32]),
                attributes: le64(e, 48),
                name: String::from_utf16_lossy(&name_units),
            },
        });
    }
    out
}

/// Every partition lies inside the disk and none overlaps another.
fn check_entries(disk: &Disk, entries: &[PartitionEntry]) -> Result<()> {
    let n = disk.sectors();
    for e in entries {
        if e.sectors == 0 {
            return Err(DiskError::BadPartition {
                disk: disk.name(),
                index: e.index,
                reason: "ends before it starts".into(),
            });
        }
        let end = e.start_lba.saturating_add(e.sectors);
        if e.start_lba == 0 || end > n {
            return Err(DiskError::BadPartition {
                disk: disk.name(),
                index: e.index,
                reason: format!(
                    "sectors {}..{} lie outside the disk ({n} sectors{})",
                    e.start_lba,
                    end,
                    if end > n {
                        "; the image may be truncated"
                    } else {
                        ""
                    }
                ),
            });
        }
    }
    for (i, a) in entries.iter().enumerate() {
        for b in entries.iter().skip(i + 1) {
            if a.start_lba < b.start_lba + b.sectors && b.start_lba < a.start_lba + a.sectors {
                return Err(DiskError::BadPartition {
                    disk: disk.name(),
                    index: b.index,
                    reason: format!("overlaps partition {}", a.index),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn guid_formatting_is_mixed_endian() {
        // The EFI system partition type as stored on disk.
        let b = [
            0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E,
            0xC9, 0x3B,
        ];
        assert_eq!(guid_to_string(&b), "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
    }

    proptest! {
        #[test]
        fn gpt_parsers_never_panic(h in proptest::collection::vec(any::<u8>(), 0..600),
                                   sectors in any::<u64>()) {
            let _ = check_gpt_header(&h, 1, sectors);
            let _ = parse_gpt_entries(&h, 128);
            let _ = parse_mbr_entries(&h, "x");
        }
    }
}
