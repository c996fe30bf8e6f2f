//! A disk: a raw image file or a block device, opened without root and
//! without loop devices. Everything else in the crate reads and writes a
//! disk through [`Disk`] (whole-disk access by offset) or a [`DiskSlice`]
//! (one partition as a `Read + Write + Seek` stream, with a small block
//! cache because file-system code such as `fatfs` does many 32-byte I/Os).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::{Path, PathBuf};

use crate::error::{DiskError, Result};

/// Logical sector size assumed for image files (and used by every layout).
pub const SECTOR_SIZE: u64 = 512;

/// What backs a disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskKind {
    ImageFile,
    BlockDevice,
}

/// Whether a disk is USB or removable, and how that was decided.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Removability {
    pub usb: bool,
    pub removable: bool,
    /// "sysfs", "profile flag" or "image file (no flag)".
    pub source: String,
}

/// An open disk.
#[derive(Debug)]
pub struct Disk {
    path: PathBuf,
    file: File,
    size: u64,
    kind: DiskKind,
    writable: bool,
    removability: Removability,
}

impl Disk {
    /// Creates a sparse image file of `size` bytes (a multiple of 512).
    /// Refuses to overwrite an existing file.
    pub fn create(path: impl AsRef<Path>, size: u64) -> Result<Disk> {
        let path = path.as_ref();
        let name = path.display().to_string();
        if size == 0 || size % SECTOR_SIZE != 0 {
            return Err(DiskError::InvalidArgument(format!(
                "{name}: size {size} is not a positive multiple of {SECTOR_SIZE} bytes"
            )));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| DiskError::io(&name, "create the image file", e))?;
        // set_len makes a hole of the whole size: no block is allocated.
        file.set_len(size)
            .map_err(|e| DiskError::io(&name, "set the image size", e))?;
        drop(file);
        Disk::open(path, true)
    }

    /// Opens an image file or a block device.
    pub fn open(path: impl AsRef<Path>, writable: bool) -> Result<Disk> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let mut file = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
            .map_err(|e| DiskError::io(&name, "open", e))?;
        let meta = file
            .metadata()
            .map_err(|e| DiskError::io(&name, "stat", e))?;
        let kind = if meta.file_type().is_block_device() {
            DiskKind::BlockDevice
        } else if meta.is_file() {
            DiskKind::ImageFile
        } else {
            return Err(DiskError::InvalidArgument(format!(
                "{name}: neither an image file nor a block device"
            )));
        };
        // A block device reports no length in its metadata; seeking to the
        // end gives its size for both kinds.
        let size = file
            .seek(SeekFrom::End(0))
            .map_err(|e| DiskError::io(&name, "find the size", e))?;
        if kind == DiskKind::BlockDevice {
            let lbs = sysfs_logical_block_size(path);
            if lbs.is_some_and(|n| n != SECTOR_SIZE) {
                return Err(DiskError::InvalidArgument(format!(
                    "{name}: logical sector size {} is not supported (only {SECTOR_SIZE})",
                    lbs.unwrap_or(0)
                )));
            }
        }
        let removability = match kind {
            DiskKind::BlockDevice => sysfs_removability(path),
            DiskKind::ImageFile => Removability {
                usb: false,
                removable: false,
                source: "image file (no flag)".into(),
            },
        };
        Ok(Disk {
            path: path.to_path_buf(),
            file,
            size,
            kind,
            writable,
            removability,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The disk's name in messages.
    pub fn name(&self) -> String {
        self.path.display().to_string()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn sectors(&self) -> u64 {
        self.size / SECTOR_SIZE
    }

    pub fn kind(&self) -> DiskKind {
        self.kind
    }

    pub fn is_writable(&self) -> bool {
        self.writable
    }

    pub fn removability(&self) -> &Removability {
        &self.removability
    }

    /// Marks an image file as standing for a USB (removable) disk, as a
    /// computer profile can say. Block devices keep what sysfs reported.
    pub fn set_usb_flag(&mut self, usb: bool) {
        if self.kind == DiskKind::ImageFile {
            self.removability = Removability {
                usb,
                removable: usb,
                source: "profile flag".into(),
            };
        }
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Reads exactly `buf.len()` bytes at `offset`; reading past the end
    /// of the disk (a truncated image) is an error, never zeros.
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.size) {
            return Err(DiskError::io(
                self.name(),
                format!("read {} bytes at offset {offset}", buf.len()),
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("past the end of the disk ({} bytes)", self.size),
                ),
            ));
        }
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| DiskError::io(self.name(), format!("read at offset {offset}"), e))
    }

    pub fn write_all_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.size) {
            return Err(DiskError::io(
                self.name(),
                format!("write {} bytes at offset {offset}", buf.len()),
                io::Error::new(io::ErrorKind::WriteZero, "past the end of the disk"),
            ));
        }
        self.file
            .write_all_at(buf, offset)
            .map_err(|e| DiskError::io(self.name(), format!("write at offset {offset}"), e))
    }

    pub fn sync(&self) -> Result<()> {
        self.file
            .sync_all()
            .map_err(|e| DiskError::io(self.name(), "flush", e))
    }

    /// A stream over `len` bytes at `offset` (one partition).
    pub fn slice(&self, offset: u64, len: u64) -> Result<DiskSlice> {
        if offset.checked_add(len).is_none_or(|e| e > self.size) {
            return Err(DiskError::InvalidArgument(format!(
                "{}: range {offset}+{len} is past the end of the disk ({} bytes)",
                self.name(),
                self.size
            )));
        }
        let file = self
            .file
            .try_clone()
            .map_err(|e| DiskError::io(self.name(), "duplicate the handle", e))?;
        Ok(DiskSlice::new(file, offset, len))
    }
}

/// Parses a size such as `8G`, `512M`, `1048576`, `2GiB` (binary units).
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let digits = t.bytes().take_while(|b| b.is_ascii_digit()).count();
    let (num, unit) = t.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| DiskError::InvalidArgument(format!("size {s:?}: no number")))?;
    let mult: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        u => {
            return Err(DiskError::InvalidArgument(format!(
                "size {s:?}: unknown unit {u:?}"
            )))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| DiskError::InvalidArgument(format!("size {s:?} is too large")))
}

/// USB/removable state of a block device from sysfs: the `removable`
/// attribute of the whole disk, and whether the device's sysfs path runs
/// through a USB bus node.
fn sysfs_removability(dev: &Path) -> Removability {
    let canon = std::fs::canonicalize(dev).unwrap_or_else(|_| dev.to_path_buf());
    let name = canon
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    sysfs_removability_in(Path::new("/sys/class/block"), &name)
}

/// The logical sector size sysfs gives for a block device (a partition
/// reports its disk's), if it can be read.
fn sysfs_logical_block_size(dev: &Path) -> Option<u64> {
    let canon = std::fs::canonicalize(dev).ok()?;
    let name = canon.file_name()?.to_string_lossy().into_owned();
    logical_block_size_in(Path::new("/sys/class/block"), &name)
}

/// The same, with the sysfs root given.
pub fn logical_block_size_in(class_block: &Path, name: &str) -> Option<u64> {
    let node = class_block.join(name);
    let real = std::fs::canonicalize(&node).ok()?;
    let disk_dir = if node.join("partition").exists() {
        real.parent()?.to_path_buf()
    } else {
        real
    };
    std::fs::read_to_string(disk_dir.join("queue/logical_block_size"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The same, with the sysfs root given (tests point it at a fake tree).
pub fn sysfs_removability_in(class_block: &Path, name: &str) -> Removability {
    let node = class_block.join(name);
    // A partition (sdb1) has a `partition` file; its disk is the parent
    // directory of its resolved sysfs path.
    let real = std::fs::canonicalize(&node).unwrap_or(node.clone());
    let disk_dir = if node.join("partition").exists() {
        real.parent().map(Path::to_path_buf).unwrap_or(real.clone())
    } else {
        real.clone()
    };
    let removable = std::fs::read_to_string(disk_dir.join("removable"))
        .map(|s| s.trim() == "1")
        .unwrap_or(false);
    let usb = disk_dir
        .components()
        .any(|c| c.as_os_str().to_string_lossy().starts_with("usb"));
    Removability {
        usb,
        removable,
        source: "sysfs".into(),
    }
}

const BLOCK: u64 = 32 * 1024;
const MAX_BLOCKS: usize = 512;

struct CacheBlock {
    data: Vec<u8>,
    dirty: bool,
}

/// A `Read + Write + Seek` view of `len` bytes at `offset` of a disk, with
/// a write-back cache of 32 KiB blocks (16 MiB at most). Call `flush`
/// before dropping to see write errors; `Drop` flushes too but can only
/// ignore them.
pub struct DiskSlice {
    file: File,
    offset: u64,
    len: u64,
    pos: u64,
    cache: HashMap<u64, CacheBlock>,
}

impl std::fmt::Debug for DiskSlice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskSlice")
            .field("offset", &self.offset)
            .field("len", &self.len)
            .field("pos", &self.pos)
            .finish()
    }
}

impl DiskSlice {
    fn new(file: File, offset: u64, len: u64) -> DiskSlice {
        DiskSlice {
            file,
            offset,
            len,
            pos: 0,
            cache: HashMap::new(),
        }
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A second view of the same range with its own (empty) cache. Flush
    /// this one first if it holds writes the other must see.
    pub fn reopen(&self) -> io::Result<DiskSlice> {
        Ok(DiskSlice::new(
            self.file.try_clone()?,
            self.offset,
            self.len,
        ))
    }

    /// Reads at `off` straight from the disk, bypassing the cache (for
    /// bulk file data; only coherent when this slice holds no unflushed
    /// writes to the range).
    pub fn read_uncached_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        if off
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.len)
        {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of the partition",
            ));
        }
        self.file.read_exact_at(buf, self.offset + off)
    }

    fn block(&mut self, b: u64) -> io::Result<&mut CacheBlock> {
        if !self.cache.contains_key(&b) {
            if self.cache.len() >= MAX_BLOCKS {
                self.flush_dirty()?;
                self.cache.clear();
            }
            let start = b * BLOCK;
            let n = BLOCK.min(self.len - start) as usize;
            let mut data = vec![0u8; n];
            self.file.read_exact_at(&mut data, self.offset + start)?;
            self.cache.insert(b, CacheBlock { data, dirty: false });
        }
        self.cache
            .get_mut(&b)
            .ok_or_else(|| io::Error::other("cache block vanished"))
    }

    fn flush_dirty(&mut self) -> io::Result<()> {
        for (b, blk) in self.cache.iter_mut() {
            if blk.dirty {
                self.file.write_all_at(&blk.data, self.offset + b * BLOCK)?;
                blk.dirty = false;
            }
        }
        Ok(())
    }
}

impl Read for DiskSlice {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let b = self.pos / BLOCK;
        let within = (self.pos % BLOCK) as usize;
        let blk = self.block(b)?;
        let avail = blk.data.len().saturating_sub(within);
        let n = avail.min(buf.len());
        buf[..n].copy_from_slice(&blk.data[within..within + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for DiskSlice {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.pos >= self.len {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write past the end of the partition",
            ));
        }
        let b = self.pos / BLOCK;
        let within = (self.pos % BLOCK) as usize;
        let blk = self.block(b)?;
        let avail = blk.data.len().saturating_sub(within);
        let n = avail.min(buf.len());
        blk.data[within..within + n].copy_from_slice(&buf[..n]);
        blk.dirty = true;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_dirty()
    }
}

impl Seek for DiskSlice {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let new = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match new {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the partition",
            )),
        }
    }
}

impl Drop for DiskSlice {
    fn drop(&mut self) {
        // Errors were reported to whoever called flush; nothing to do here.
        let _ = self.flush_dirty();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("8G").unwrap(), 8 << 30);
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("G").is_err());
        assert!(parse_size("8Q").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn slice_reads_and_writes_through_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.img");
        let d = Disk::create(&p, 1 << 20).unwrap();
        assert!(Disk::create(&p, 1 << 20).is_err(), "no overwrite");
        let mut s = d.slice(4096, 100_000).unwrap();
        s.seek(SeekFrom::Start(32_000)).unwrap();
        let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        s.write_all(&data).unwrap();
        s.flush().unwrap();
        let mut back = vec![0u8; 5000];
        d.read_exact_at(&mut back, 4096 + 32_000).unwrap();
        assert_eq!(back, data);
        s.seek(SeekFrom::Start(99_990)).unwrap();
        let mut tail = [0u8; 64];
        assert_eq!(s.read(&mut tail).unwrap(), 10, "reads stop at the end");
        s.seek(SeekFrom::Start(99_999)).unwrap();
        assert_eq!(s.write(&[1, 2]).unwrap(), 1, "writes stop at the end");
        assert!(s.write(&[1]).is_err(), "no write past the end");
        assert!(d.slice(1 << 20, 1).is_err());
        let mut big = vec![0u8; 16];
        assert!(d.read_exact_at(&mut big, (1 << 20) - 8).is_err());
    }

    #[test]
    fn sysfs_usb_detection_on_a_fake_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let usbdisk = root.join("devices/pci0000:00/0000:00:14.0/usb2/2-1/host6/block/sdb");
        std::fs::create_dir_all(usbdisk.join("sdb1")).unwrap();
        std::fs::write(usbdisk.join("removable"), "1\n").unwrap();
        std::fs::write(usbdisk.join("sdb1/partition"), "1\n").unwrap();
        let satadisk = root.join("devices/pci0000:00/ata1/host0/block/sda");
        std::fs::create_dir_all(&satadisk).unwrap();
        std::fs::write(satadisk.join("removable"), "0\n").unwrap();
        let class = root.join("class/block");
        std::fs::create_dir_all(&class).unwrap();
        std::os::unix::fs::symlink(&usbdisk, class.join("sdb")).unwrap();
        std::os::unix::fs::symlink(usbdisk.join("sdb1"), class.join("sdb1")).unwrap();
        std::os::unix::fs::symlink(&satadisk, class.join("sda")).unwrap();
        let r = sysfs_removability_in(&class, "sdb1");
        assert!(r.usb && r.removable, "{r:?}");
        let r = sysfs_removability_in(&class, "sdb");
        assert!(r.usb && r.removable);
        let r = sysfs_removability_in(&class, "sda");
        assert!(!r.usb && !r.removable);
        std::fs::create_dir_all(usbdisk.join("queue")).unwrap();
        std::fs::write(usbdisk.join("queue/logical_block_size"), "4096\n").unwrap();
        assert_eq!(logical_block_size_in(&class, "sdb1"), Some(4096));
        assert_eq!(logical_block_size_in(&class, "sda"), None);
    }
}
