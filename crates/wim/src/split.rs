//! Split WIMs (.swm): `split` cuts a WIM into parts of a given size, each a
//! WIM of its own with the same GUID, its part number and the SPANNED flag;
//! part 1 holds the image metadata, every part its own blob table (the
//! blobs stored in it) and a copy of the XML data, as wimlib and WIMGAPI
//! write them. Stored resources are copied byte for byte; a blob is never
//! divided, so a part can exceed the size asked for. Parts are named like
//! wimlib's: `foo.swm`, `foo2.swm`, `foo3.swm`...
//!
//! Reading a split set is [`Wim::open_with_refs`]; `join` copies every
//! image of an opened set into one WIM.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::blob_table::{serialize_blob_table, BlobEntry};
use crate::error::{IoContext, Result, WimError};
use crate::header::{HDR_FLAG_SPANNED, HDR_FLAG_WRITE_IN_PROGRESS, HEADER_SIZE};
use crate::integrity::build_integrity_table;
use crate::reader::Wim;
use crate::reshdr::{ResHdr, RESHDR_FLAG_METADATA};
use crate::writer::{
    persist_temp, random_guid, temp_beside, ImageOptions, WimWriter, WriteOptions,
};

/// The name of part `n` (1-based) for a split named `first` (wimlib's
/// rule: the number goes before the last extension of the file name).
pub fn part_name(first: &Path, n: u16) -> PathBuf {
    if n == 1 {
        return first.to_path_buf();
    }
    let file = first
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match file.rfind('.') {
        Some(dot) => format!("{}{n}{}", &file[..dot], &file[dot..]),
        None => format!("{file}{n}"),
    };
    first.with_file_name(name)
}

/// Which blobs go to which part: metadata (always part 1) first, then the
/// blobs in file order, a new part starting when the next blob would reach
/// `part_size` (unless the part is still empty).
fn plan_parts(wim: &Wim, part_size: u64) -> Vec<Vec<&BlobEntry>> {
    let mut parts: Vec<Vec<&BlobEntry>> = vec![Vec::new()];
    let mut cur = 0u64;
    for m in &wim.metadata {
        cur += m.reshdr.size_in_wim;
    }
    let mut blobs: Vec<&BlobEntry> = wim.blobs.iter().collect();
    blobs.sort_by_key(|b| b.read_order());
    for b in blobs {
        let sz = b.reshdr.size_in_wim;
        if cur > 0 && cur.saturating_add(sz) >= part_size {
            parts.push(Vec::new());
            cur = 0;
        }
        cur += sz;
        if let Some(p) = parts.last_mut() {
            p.push(b);
        }
    }
    parts
}

/// Copies `size` stored bytes from `src` at `from` to `out` at `to`.
#[allow(clippy::too_many_arguments)] // one call shape, two callers
fn copy_range(
    wim: &Wim,
    part: u16,
    from: u64,
    size: u64,
    out: &File,
    to: u64,
    buf: &mut [u8],
    what: &str,
) -> Result<()> {
    let mut pos = 0u64;
    while pos < size {
        let k = ((size - pos) as usize).min(buf.len());
        let b = buf.get_mut(..k).unwrap_or_default();
        wim.read_raw(part, from + pos, b, what)?;
        out.write_all_at(b, to + pos)
            .ctx(|| format!("writing {what}"))?;
        pos += k as u64;
    }
    Ok(())
}

/// Splits `wim` into parts of about `part_size` bytes named after
/// `first` (see [`part_name`]); returns the paths written. Each part is
/// written to a temporary file and renamed into place when complete.
pub fn split(wim: &Wim, first: &Path, part_size: u64, integrity: bool) -> Result<Vec<PathBuf>> {
    if part_size == 0 {
        return Err(WimError::InvalidArgument("part size must be > 0".into()));
    }
    if wim.header.total_parts > 1 {
        return Err(WimError::Unsupported(
            "the WIM is already split (join it first)".into(),
        ));
    }
    if wim.has_solid() {
        return Err(WimError::Unsupported(
            "splitting a WIM with solid resources (export it without --solid first; wimlib refuses too)"
                .into(),
        ));
    }
    let plan = plan_parts(wim, part_size);
    let total = u16::try_from(plan.len())
        .map_err(|_| WimError::InvalidArgument("more than 65535 parts".into()))?;
    let guid = random_guid();
    let xml = wim.header.xml_data;
    let mut buf = vec![0u8; 1 << 20];
    let mut written = Vec::new();
    for (i, blobs) in plan.iter().enumerate() {
        let k = i as u16 + 1;
        let dest = part_name(first, k);
        let (file, temp) = temp_beside(&dest)?;
        write_part(wim, &file, k, total, guid, blobs, xml, integrity, &mut buf)?;
        file.sync_all()
            .ctx(|| format!("syncing {}", temp.display()))?;
        // On any error above, dropping `temp` removes the partial part.
        persist_temp(temp, &dest)?;
        written.push(dest);
    }
    Ok(written)
}

#[allow(clippy::too_many_arguments)]
fn write_part(
    wim: &Wim,
    file: &File,
    k: u16,
    total: u16,
    guid: [u8; 16],
    blobs: &[&BlobEntry],
    xml: ResHdr,
    integrity: bool,
    buf: &mut [u8],
) -> Result<()> {
    let mut pos = HEADER_SIZE as u64;
    let mut entries = Vec::new();
    let mut header = wim.header.clone();
    let mut copy = |e: &BlobEntry, what: &str, pos: &mut u64| -> Result<BlobEntry> {
        copy_range(
            wim,
            e.part_number,
            e.reshdr.offset_in_wim,
            e.reshdr.size_in_wim,
            file,
            *pos,
            buf,
            what,
        )?;
        let mut n = e.clone();
        n.reshdr.offset_in_wim = *pos;
        n.part_number = k;
        *pos += e.reshdr.size_in_wim;
        Ok(n)
    };
    header.boot_metadata = ResHdr::default();
    if k == 1 {
        for (i, m) in wim.metadata.iter().enumerate() {
            let n = copy(
                m,
                &format!("metadata resource of image {}", i + 1),
                &mut pos,
            )?;
            if header.boot_index as usize == i + 1 {
                header.boot_metadata = n.reshdr;
            }
            entries.push(n);
        }
    }
    for b in blobs {
        let n = copy(b, &format!("blob {}", b.hash), &mut pos)?;
        entries.push(n);
    }
    let table = serialize_blob_table(&entries);
    file.write_all_at(&table, pos)
        .ctx(|| "writing blob table".to_string())?;
    header.blob_table = ResHdr {
        size_in_wim: table.len() as u64,
        flags: RESHDR_FLAG_METADATA,
        offset_in_wim: pos,
        uncompressed_size: table.len() as u64,
    };
    pos += table.len() as u64;
    // The XML data is copied as it is (wimlib keeps the original
    // TOTALBYTES too).
    header.xml_data = ResHdr::default();
    if !xml.is_empty() {
        copy_range(
            wim,
            1,
            xml.offset_in_wim,
            xml.size_in_wim,
            file,
            pos,
            buf,
            "XML data",
        )?;
        header.xml_data = ResHdr {
            offset_in_wim: pos,
            ..xml
        };
        pos += xml.size_in_wim;
    }
    header.integrity = ResHdr::default();
    if integrity {
        let t = build_integrity_table(file, header.blob_table.offset_in_wim + table.len() as u64)?;
        file.write_all_at(&t, pos)
            .ctx(|| "writing integrity table".to_string())?;
        header.integrity = ResHdr {
            size_in_wim: t.len() as u64,
            flags: 0,
            offset_in_wim: pos,
            uncompressed_size: t.len() as u64,
        };
    }
    header.flags = (header.flags | HDR_FLAG_SPANNED) & !HDR_FLAG_WRITE_IN_PROGRESS;
    header.guid = guid;
    header.part_number = k;
    header.total_parts = total;
    file.write_all_at(&header.to_bytes(), 0)
        .ctx(|| "writing header".to_string())
}

/// Joins an opened split set (or copies any WIM) into one WIM at `dest`,
/// keeping the compression, chunk size and boot image.
pub fn join(wim: &Wim, dest: &Path, threads: usize, integrity: bool) -> Result<()> {
    let opts = WriteOptions {
        compression: wim.compression(),
        chunk_size: if wim.header.chunk_size == 0 {
            32768
        } else {
            wim.header.chunk_size
        },
        threads,
        integrity,
        ..Default::default()
    };
    let mut w = WimWriter::create(dest, opts)?;
    let mut boot = 0;
    for n in 1..=wim.image_count() {
        let k = w.add_image_from(wim, n, &ImageOptions::default())?;
        if wim.header.boot_index == n {
            boot = k;
        }
    }
    w.set_boot_index(boot)?;
    w.finish()
}
