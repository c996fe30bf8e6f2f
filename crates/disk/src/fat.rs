//! Raw FAT structures: the BIOS parameter block, cluster chains and
//! directory entries, read and patched without the `fatfs` crate.
//!
//! Formatting, files and long names go through `fatfs`; this module does
//! what `fatfs` 0.3 cannot: read the volume label from the root directory,
//! set the hidden-sectors field, and set a directory entry's attributes and
//! all three of its times after the fact (fatfs has no call for either).
//! Everything read is bounded by the geometry, and cluster chains are
//! followed at most once per cluster, so a damaged volume gives an error,
//! never a loop or a panic.

use std::io::{Read, Seek, SeekFrom, Write};

pub const ATTR_READONLY: u8 = 0x01;
pub const ATTR_HIDDEN: u8 = 0x02;
pub const ATTR_SYSTEM: u8 = 0x04;
pub const ATTR_VOLUME_ID: u8 = 0x08;
pub const ATTR_DIRECTORY: u8 = 0x10;
pub const ATTR_ARCHIVE: u8 = 0x20;
const ATTR_LFN: u8 = 0x0F;

/// FAT12, FAT16 or FAT32, decided by the cluster count as the
/// specification says (never by the label in the boot sector).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatBits {
    Fat12,
    Fat16,
    Fat32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub bits: FatBits,
    pub bytes_per_sector: u64,
    pub sectors_per_cluster: u64,
    pub reserved_sectors: u64,
    pub fats: u64,
    pub fat_sectors: u64,
    pub root_entries: u64,
    pub total_sectors: u64,
    pub root_cluster: u32,
    pub first_data_sector: u64,
    pub cluster_count: u64,
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

/// Parses a FAT boot sector; Err says what is wrong.
pub fn parse_boot_sector(b: &[u8]) -> Result<Geometry, String> {
    if b.len() < 512 || b[510] != 0x55 || b[511] != 0xAA {
        return Err("no boot-sector signature".into());
    }
    let bps = le16(b, 11);
    if !matches!(bps, 512 | 1024 | 2048 | 4096) {
        return Err(format!("{bps} bytes per sector"));
    }
    let spc = b[13] as u64;
    if spc == 0 || !spc.is_power_of_two() {
        return Err(format!("{spc} sectors per cluster"));
    }
    let reserved = le16(b, 14);
    let fats = b[16] as u64;
    let root_entries = le16(b, 17);
    let total16 = le16(b, 19);
    let fat16 = le16(b, 22);
    let total32 = le32(b, 32);
    let fat32 = le32(b, 36);
    if reserved == 0 || fats == 0 {
        return Err("no reserved sectors or no FAT".into());
    }
    let fat_sectors = if fat16 != 0 { fat16 } else { fat32 };
    let total = if total16 != 0 { total16 } else { total32 };
    if fat_sectors == 0 || total == 0 {
        return Err("FAT size or sector count is zero".into());
    }
    let root_dir_sectors = (root_entries * 32).div_ceil(bps);
    let first_data = reserved + fats * fat_sectors + root_dir_sectors;
    if first_data >= total {
        return Err("the FAT area is larger than the volume".into());
    }
    let cluster_count = (total - first_data) / spc;
    let bits = if cluster_count < 4085 {
        FatBits::Fat12
    } else if cluster_count < 65525 {
        FatBits::Fat16
    } else {
        FatBits::Fat32
    };
    // The FAT must be able to describe every cluster.
    let fat_bytes = fat_sectors * bps;
    let need = match bits {
        FatBits::Fat12 => (cluster_count + 2) * 3 / 2,
        FatBits::Fat16 => (cluster_count + 2) * 2,
        FatBits::Fat32 => (cluster_count + 2) * 4,
    };
    if fat_bytes < need {
        return Err(format!(
            "the FAT ({fat_bytes} bytes) is too small for {cluster_count} clusters"
        ));
    }
    Ok(Geometry {
        bits,
        bytes_per_sector: bps,
        sectors_per_cluster: spc,
        reserved_sectors: reserved,
        fats,
        fat_sectors,
        root_entries,
        total_sectors: total,
        root_cluster: if bits == FatBits::Fat32 {
            le32(b, 44) as u32
        } else {
            0
        },
        first_data_sector: first_data,
        cluster_count,
    })
}

/// The boot-sector label (FAT32 at 0x47, FAT12/16 at 0x2B), if the
/// extended signature 0x29 is there and the label is not `NO NAME`.
pub fn boot_sector_label(b: &[u8], bits: FatBits) -> Option<String> {
    let (sig, lab) = match bits {
        FatBits::Fat32 => (0x42, 0x47),
        _ => (0x26, 0x2B),
    };
    if b.get(sig) != Some(&0x29) {
        return None;
    }
    let l = b.get(lab..lab + 11)?;
    let s: String = l.iter().map(|&c| c as char).collect();
    let s = s.trim_end().to_string();
    (!s.is_empty() && s != "NO NAME").then_some(s)
}

/// One directory entry as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// The long name, or the short name when there is none.
    pub name: String,
    pub short_name: String,
    pub has_long_name: bool,
    pub attributes: u8,
    pub first_cluster: u32,
    pub size: u32,
    /// Byte offset of the 32-byte short entry within the volume.
    pub entry_offset: u64,
    pub create_tenths: u8,
    pub create_time: u16,
    pub create_date: u16,
    pub access_date: u16,
    pub write_time: u16,
    pub write_date: u16,
}

/// A volume's raw I/O with its geometry.
pub struct RawFat<'a, D: Read + Write + Seek> {
    pub geo: Geometry,
    io: &'a mut D,
}

fn ioerr(e: std::io::Error) -> String {
    e.to_string()
}

impl<'a, D: Read + Write + Seek> RawFat<'a, D> {
    pub fn open(io: &'a mut D) -> Result<Self, String> {
        let mut b = [0u8; 512];
        io.seek(SeekFrom::Start(0)).map_err(ioerr)?;
        io.read_exact(&mut b).map_err(ioerr)?;
        let geo = parse_boot_sector(&b)?;
        Ok(RawFat { geo, io })
    }

    fn read_at(&mut self, off: u64, buf: &mut [u8]) -> Result<(), String> {
        self.io.seek(SeekFrom::Start(off)).map_err(ioerr)?;
        self.io.read_exact(buf).map_err(ioerr)
    }

    fn write_at(&mut self, off: u64, buf: &[u8]) -> Result<(), String> {
        self.io.seek(SeekFrom::Start(off)).map_err(ioerr)?;
        self.io.write_all(buf).map_err(ioerr)
    }

    fn fat_entry(&mut self, cluster: u32) -> Result<u32, String> {
        let g = self.geo;
        let base = g.reserved_sectors * g.bytes_per_sector;
        let c = cluster as u64;
        Ok(match g.bits {
            FatBits::Fat32 => {
                let mut b = [0u8; 4];
                self.read_at(base + c * 4, &mut b)?;
                u32::from_le_bytes(b) & 0x0FFF_FFFF
            }
            FatBits::Fat16 => {
                let mut b = [0u8; 2];
                self.read_at(base + c * 2, &mut b)?;
                u16::from_le_bytes(b) as u32
            }
            FatBits::Fat12 => {
                let mut b = [0u8; 2];
                self.read_at(base + c * 3 / 2, &mut b)?;
                let v = u16::from_le_bytes(b) as u32;
                if c % 2 == 1 {
                    v >> 4
                } else {
                    v & 0xFFF
                }
            }
        })
    }

    fn is_end(&self, v: u32) -> bool {
        match self.geo.bits {
            FatBits::Fat12 => v >= 0xFF8,
            FatBits::Fat16 => v >= 0xFFF8,
            FatBits::Fat32 => v >= 0x0FFF_FFF8,
        }
    }

    /// The clusters of a chain starting at `start`, in order, up to its
    /// end marker; a chain longer than `limit` clusters (which is how a
    /// loop shows) is an error.
    pub fn chain(&mut self, start: u32, limit: u64) -> Result<Vec<u32>, String> {
        self.chain_inner(start, limit, false)
    }

    /// `stop_at_limit`: return the first `limit` clusters without needing
    /// the end marker (a file needs only as many as its size).
    fn chain_inner(
        &mut self,
        start: u32,
        limit: u64,
        stop_at_limit: bool,
    ) -> Result<Vec<u32>, String> {
        let max = self.geo.cluster_count + 2;
        let limit = limit.min(self.geo.cluster_count);
        let mut out = Vec::new();
        let mut c = start;
        loop {
            if (c as u64) < 2 || (c as u64) >= max {
                return Err(format!(
                    "cluster chain from {start} reaches invalid cluster {c}"
                ));
            }
            if out.len() as u64 >= limit {
                return Err(format!(
                    "cluster chain from {start} loops or runs past {limit} clusters"
                ));
            }
            out.push(c);
            if stop_at_limit && out.len() as u64 == limit {
                return Ok(out);
            }
            let next = self.fat_entry(c)?;
            if self.is_end(next) {
                return Ok(out);
            }
            c = next;
        }
    }

    /// Where a file's bytes lie: (offset, length) runs of contiguous
    /// clusters covering exactly `size` bytes. A chain shorter than the
    /// size is an error.
    pub fn file_runs(&mut self, first_cluster: u32, size: u64) -> Result<Vec<(u64, u64)>, String> {
        if size == 0 {
            return Ok(Vec::new());
        }
        let csize = self.geo.sectors_per_cluster * self.geo.bytes_per_sector;
        let need = size.div_ceil(csize);
        let chain = self.chain_inner(first_cluster, need, true)?;
        if (chain.len() as u64).saturating_mul(csize) < size {
            return Err(format!(
                "{} clusters cannot hold the recorded size of {size} bytes",
                chain.len()
            ));
        }
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let mut left = size;
        for c in chain {
            if left == 0 {
                break;
            }
            let n = csize.min(left);
            let off = self.cluster_offset(c);
            match runs.last_mut() {
                Some(r) if r.0 + r.1 == off => r.1 += n,
                _ => runs.push((off, n)),
            }
            left -= n;
        }
        Ok(runs)
    }

    fn cluster_offset(&self, c: u32) -> u64 {
        let g = self.geo;
        (g.first_data_sector + (c as u64 - 2) * g.sectors_per_cluster) * g.bytes_per_sector
    }

    /// Byte ranges holding a directory: the fixed FAT12/16 root
    /// (`cluster` 0) or a chain of clusters.
    fn dir_ranges(&mut self, cluster: u32) -> Result<Vec<(u64, u64)>, String> {
        let g = self.geo;
        if cluster == 0 && g.bits != FatBits::Fat32 {
            let off = (g.reserved_sectors + g.fats * g.fat_sectors) * g.bytes_per_sector;
            return Ok(vec![(off, g.root_entries * 32)]);
        }
        let start = if cluster == 0 {
            g.root_cluster
        } else {
            cluster
        };
        let csize = g.sectors_per_cluster * g.bytes_per_sector;
        // A directory holds at most 65536 entries of 32 bytes.
        let limit = (65536 * 32u64).div_ceil(csize);
        Ok(self
            .chain(start, limit)?
            .into_iter()
            .map(|c| (self.cluster_offset(c), csize))
            .collect())
    }

    /// The entries of the directory starting at `cluster` (0: the root),
    /// without `.`, `..`, deleted entries and the volume label.
    pub fn read_dir(&mut self, cluster: u32) -> Result<Vec<RawEntry>, String> {
        let mut out = Vec::new();
        let mut lfn: Vec<(u8, [u16; 13])> = Vec::new();
        let mut lfn_sum = 0u8;
        for (off, len) in self.dir_ranges(cluster)? {
            let mut buf = vec![0u8; len as usize];
            self.read_at(off, &mut buf)?;
            for (i, e) in buf.chunks_exact(32).enumerate() {
                match e[0] {
                    0x00 => return Ok(out),
                    0xE5 => {
                        lfn.clear();
                        continue;
                    }
                    _ => {}
                }
                let attr = e[11];
                if attr & 0x3F == ATTR_LFN {
                    let mut units = [0u16; 13];
                    for (k, o) in [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30]
                        .into_iter()
                        .enumerate()
                    {
                        units[k] = le16(e, o) as u16;
                    }
                    if e[0] & 0x40 != 0 {
                        lfn.clear();
                    }
                    lfn_sum = e[13];
                    lfn.push((e[0] & 0x1F, units));
                    continue;
                }
                if attr & ATTR_VOLUME_ID != 0 || e[0] == b'.' {
                    lfn.clear();
                    continue;
                }
                let mut short = [0u8; 11];
                short.copy_from_slice(&e[0..11]);
                if short[0] == 0x05 {
                    short[0] = 0xE5;
                }
                let short_name = short_name_string(&short, e[12]);
                let long = if !lfn.is_empty() && lfn_sum == lfn_checksum(&e[0..11]) {
                    let mut parts = lfn.clone();
                    parts.sort_by_key(|p| p.0);
                    let units: Vec<u16> = parts
                        .iter()
                        .flat_map(|p| p.1)
                        .take_while(|&u| u != 0)
                        .collect();
                    Some(String::from_utf16_lossy(&units))
                } else {
                    None
                };
                lfn.clear();
                let hi = if self.geo.bits == FatBits::Fat32 {
                    le16(e, 20) << 16
                } else {
                    0
                };
                out.push(RawEntry {
                    has_long_name: long.is_some(),
                    name: long.unwrap_or_else(|| short_name.clone()),
                    short_name,
                    attributes: attr,
                    first_cluster: (hi | le16(e, 26)) as u32,
                    size: le32(e, 28) as u32,
                    entry_offset: off + i as u64 * 32,
                    create_tenths: e[13],
                    create_time: le16(e, 14) as u16,
                    create_date: le16(e, 16) as u16,
                    access_date: le16(e, 18) as u16,
                    write_time: le16(e, 22) as u16,
                    write_date: le16(e, 24) as u16,
                });
            }
        }
        Ok(out)
    }

    /// The label kept in the root directory's volume entry, if any.
    pub fn root_label(&mut self) -> Result<Option<String>, String> {
        for (off, len) in self.dir_ranges(0)? {
            let mut buf = vec![0u8; len as usize];
            self.read_at(off, &mut buf)?;
            for e in buf.chunks_exact(32) {
                if e[0] == 0 {
                    return Ok(None);
                }
                if e[0] != 0xE5 && e[11] & 0x3F != ATTR_LFN && e[11] & ATTR_VOLUME_ID != 0 {
                    let s: String = e[0..11].iter().map(|&c| c as char).collect();
                    return Ok(Some(s.trim_end().to_string()));
                }
            }
        }
        Ok(None)
    }

    /// Finds the entry at `path` (components from the root), matching long
    /// names first exactly and then without regard to ASCII case.
    pub fn lookup(&mut self, path: &[String]) -> Result<RawEntry, String> {
        let mut dir = 0u32;
        let mut found = None;
        for (i, comp) in path.iter().enumerate() {
            let entries = self.read_dir(dir)?;
            let e = entries
                .iter()
                .find(|e| &e.name == comp)
                .or_else(|| entries.iter().find(|e| e.name.eq_ignore_ascii_case(comp)))
                .cloned()
                .ok_or_else(|| format!("{comp:?} not found"))?;
            if i + 1 < path.len() {
                if e.attributes & ATTR_DIRECTORY == 0 {
                    return Err(format!("{comp:?} is not a directory"));
                }
                dir = e.first_cluster;
            }
            found = Some(e);
        }
        found.ok_or_else(|| "the root has no directory entry".into())
    }

    /// Rewrites the attributes (keeping the directory bit as it is) and
    /// the times of the entry at `entry_offset`.
    pub fn patch_entry(
        &mut self,
        entry_offset: u64,
        attributes: u8,
        times: &FatTimes,
    ) -> Result<(), String> {
        let mut e = [0u8; 32];
        self.read_at(entry_offset, &mut e)?;
        e[11] = (e[11] & (ATTR_DIRECTORY | ATTR_VOLUME_ID))
            | (attributes & (ATTR_READONLY | ATTR_HIDDEN | ATTR_SYSTEM | ATTR_ARCHIVE));
        e[13] = times.create_tenths;
        e[14..16].copy_from_slice(&times.create_time.to_le_bytes());
        e[16..18].copy_from_slice(&times.create_date.to_le_bytes());
        e[18..20].copy_from_slice(&times.access_date.to_le_bytes());
        e[22..24].copy_from_slice(&times.write_time.to_le_bytes());
        e[24..26].copy_from_slice(&times.write_date.to_le_bytes());
        self.write_at(entry_offset, &e)
    }
}

impl<'a, D: Read + Write + Seek> RawFat<'a, D> {
    /// Puts a directory's `.` and `..` entries where the specification
    /// wants them: the first two slots, with `..` naming cluster 0 when the
    /// parent is the root. fatfs 0.3 writes a long-name entry before each
    /// of them (so `.` lands in slot 1) and gives `..` the root's cluster
    /// number; fsck.fat then "repairs" the directory. The long-name slots
    /// are marked deleted.
    pub fn fix_dot_entries(&mut self, dir_cluster: u32, parent_cluster: u32) -> Result<(), String> {
        if (dir_cluster as u64) < 2 || (dir_cluster as u64) >= self.geo.cluster_count + 2 {
            return Err(format!("directory cluster {dir_cluster} is invalid"));
        }
        let off = self.cluster_offset(dir_cluster);
        let mut head = [0u8; 128];
        self.read_at(off, &mut head)?;
        let slot = |name: &[u8; 11], head: &[u8; 128]| {
            (0..4).find(|&i| {
                &head[i * 32..i * 32 + 11] == name && head[i * 32 + 11] & ATTR_DIRECTORY != 0
            })
        };
        let (Some(dot), Some(dotdot)) = (slot(b".          ", &head), slot(b"..         ", &head))
        else {
            return Err("no '.' and '..' entries in the first slots".into());
        };
        let mut out = head;
        out[0..32].copy_from_slice(&head[dot * 32..dot * 32 + 32]);
        out[32..64].copy_from_slice(&head[dotdot * 32..dotdot * 32 + 32]);
        for i in 2..4 {
            if i == dot.max(dotdot) + 1 {
                break;
            }
            out[i * 32] = 0xE5;
        }
        let root = if self.geo.bits == FatBits::Fat32 {
            self.geo.root_cluster
        } else {
            0
        };
        let parent = if parent_cluster == root {
            0
        } else {
            parent_cluster
        };
        out[32 + 20..32 + 22].copy_from_slice(&((parent >> 16) as u16).to_le_bytes());
        out[32 + 26..32 + 28].copy_from_slice(&(parent as u16).to_le_bytes());
        if out != head {
            self.write_at(off, &out)?;
        }
        Ok(())
    }
}

/// Sets the BPB hidden-sectors field (the partition's start sector, which
/// Windows' boot code needs) in the boot sector and, on FAT32, in the
/// backup boot sector.
pub fn set_hidden_sectors<D: Read + Write + Seek>(io: &mut D, hidden: u32) -> Result<(), String> {
    let mut b = [0u8; 512];
    io.seek(SeekFrom::Start(0)).map_err(ioerr)?;
    io.read_exact(&mut b).map_err(ioerr)?;
    let geo = parse_boot_sector(&b)?;
    let mut at = vec![0u64];
    if geo.bits == FatBits::Fat32 {
        let backup = le16(&b, 50);
        if backup != 0 && backup < geo.reserved_sectors {
            at.push(backup * geo.bytes_per_sector);
        }
    }
    for off in at {
        io.seek(SeekFrom::Start(off + 0x1C)).map_err(ioerr)?;
        io.write_all(&hidden.to_le_bytes()).map_err(ioerr)?;
    }
    Ok(())
}

/// The short-name checksum that ties long-name entries to their entry.
fn lfn_checksum(short: &[u8]) -> u8 {
    short
        .iter()
        .fold(0u8, |s, &c| (s >> 1 | (s & 1) << 7).wrapping_add(c))
}

/// "NAME.EXT" from the 11-byte form, honouring the NT lower-case flags.
fn short_name_string(s: &[u8; 11], nt_flags: u8) -> String {
    let conv = |b: &[u8], lower: bool| -> String {
        let t: String = b
            .iter()
            .map(|&c| {
                let ch = c as char;
                if lower {
                    ch.to_ascii_lowercase()
                } else {
                    ch
                }
            })
            .collect();
        t.trim_end().to_string()
    };
    let base = conv(&s[0..8], nt_flags & 0x08 != 0);
    let ext = conv(&s[8..11], nt_flags & 0x10 != 0);
    if ext.is_empty() {
        base
    } else {
        format!("{base}.{ext}")
    }
}

/// A FAT entry's times in their on-disk encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FatTimes {
    pub create_tenths: u8,
    pub create_time: u16,
    pub create_date: u16,
    pub access_date: u16,
    pub write_time: u16,
    pub write_date: u16,
}

const TICKS_PER_SEC: u64 = 10_000_000;
/// Days from 1601-01-01 to 1980-01-01.
const DAYS_1601_TO_1980: i64 = 138_426;

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

const DAYS_1601_TO_1970: i64 = 134_774;

/// A FAT date and time (with 10 ms units, 0–199) as a FILETIME. FAT keeps
/// no time zone; the times are taken as UTC. An invalid date gives 0.
pub fn fat_to_filetime(date: u16, time: u16, tenths: u8) -> u64 {
    let y = 1980 + (date >> 9) as i64;
    let m = ((date >> 5) & 0xF) as i64;
    let d = (date & 0x1F) as i64;
    if !(1..=12).contains(&m) || d == 0 {
        return 0;
    }
    let h = (time >> 11) as u64;
    let mi = ((time >> 5) & 0x3F) as u64;
    let s = (time & 0x1F) as u64 * 2;
    let days = days_from_civil(y, m, d) + DAYS_1601_TO_1970;
    let secs = days as u64 * 86_400 + h * 3600 + mi * 60 + s;
    secs * TICKS_PER_SEC + (tenths.min(199) as u64) * 100_000
}

/// A FILETIME as a FAT (date, time, 10 ms units). Instants before 1980
/// become 1980-01-01 00:00; after 2107 they saturate at the last day.
pub fn filetime_to_fat(ft: u64) -> (u16, u16, u8) {
    let secs = ft / TICKS_PER_SEC;
    let days = (secs / 86_400) as i64;
    if days < DAYS_1601_TO_1980 {
        return ((1 << 5) | 1, 0, 0);
    }
    let (y, m, d) = civil_from_days(days - DAYS_1601_TO_1970);
    if y > 2107 {
        return (
            (127 << 9) | (12 << 5) | 31,
            (23 << 11) | (59 << 5) | 29,
            199,
        );
    }
    let rem = secs % 86_400;
    let (h, mi, s) = (rem / 3600, rem / 60 % 60, rem % 60);
    let date = (((y - 1980) as u16) << 9) | ((m as u16) << 5) | d as u16;
    let time = ((h as u16) << 11) | ((mi as u16) << 5) | (s / 2) as u16;
    // The odd second and the hundredths go in the 10 ms field.
    let sub = (ft % TICKS_PER_SEC) / 100_000;
    let tenths = ((s % 2) * 100 + sub) as u8;
    (date, time, tenths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_dates() {
        // 1980-01-01 00:00:00 UTC is 119600064000000000 in FILETIME ticks.
        assert_eq!(fat_to_filetime((1 << 5) | 1, 0, 0), 119_600_064_000_000_000);
        // 2024-02-29 13:45:58.37
        let date = ((2024 - 1980) << 9) | (2 << 5) | 29;
        let time = (13 << 11) | (45 << 5) | 29;
        let ft = fat_to_filetime(date, time, 37);
        // Independent: 2024-02-29T13:45:58Z is UNIX 1709214358.
        assert_eq!(
            ft,
            (1_709_214_358 + 11_644_473_600) * TICKS_PER_SEC + 3_700_000
        );
        assert_eq!(filetime_to_fat(ft), (date, time, 37));
        assert_eq!(filetime_to_fat(0), ((1 << 5) | 1, 0, 0));
        assert_eq!(fat_to_filetime(0, 0, 0), 0, "month 0 is invalid");
    }

    proptest! {
        #[test]
        fn fat_times_round_trip(y in 0u16..128, m in 1u16..13, d in 1u16..29,
                                h in 0u16..24, mi in 0u16..60, s in 0u16..30, t in 0u8..200) {
            let date = (y << 9) | (m << 5) | d;
            let time = (h << 11) | (mi << 5) | s;
            prop_assert_eq!(filetime_to_fat(fat_to_filetime(date, time, t)), (date, time, t));
        }

        #[test]
        fn boot_sector_parser_never_panics(b in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_boot_sector(&b);
            let _ = boot_sector_label(&b, FatBits::Fat32);
            let _ = boot_sector_label(&b, FatBits::Fat12);
        }
    }

    #[test]
    fn short_names_honour_nt_case_flags() {
        assert_eq!(short_name_string(b"README  TXT", 0x08 | 0x10), "readme.txt");
    }
}
