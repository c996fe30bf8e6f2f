//! Reading chunked resources. A compressed (non-solid) resource is a chunk
//! table — one offset per chunk after the first, relative to the end of the
//! table, 4 bytes wide (8 when the resource is 4 GiB or more) — followed by
//! independently compressed chunks; a chunk whose stored size equals its
//! uncompressed size is stored raw.
//!
//! Pipable WIMs (wimlib's `WLPWM` extension) store the same table at the
//! *end* of the resource and put a 4-byte compressed-size prefix before
//! every chunk; the table's offsets ignore those prefixes.

use std::fs::File;
use std::os::unix::fs::FileExt;

use tasq_codecs::{new_decompressor, CompressionFormat, Decompressor};

use crate::error::{Result, WimError};
use crate::reshdr::ResHdr;

/// Reads exactly `buf.len()` bytes at `offset`, naming `what` on error.
/// `what` is formatted only on error (it is often a blob's hash).
pub fn read_exact_at(
    file: &File,
    buf: &mut [u8],
    offset: u64,
    what: &dyn std::fmt::Display,
) -> Result<()> {
    file.read_exact_at(buf, offset).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            WimError::resource(
                what.to_string(),
                format!("unexpected end of file at offset {offset} (truncated WIM?)"),
            )
        } else {
            WimError::io(format!("reading {what} at offset {offset}"), e)
        }
    })
}

/// Location of one chunk of a resource.
#[derive(Debug, Clone, Copy)]
pub struct ChunkLoc {
    /// Absolute file offset of the stored chunk.
    pub offset: u64,
    pub stored_size: u32,
    pub uncompressed_size: u32,
}

impl ChunkLoc {
    pub fn is_raw(&self) -> bool {
        self.stored_size == self.uncompressed_size
    }
}

/// Size of the compressed-size prefix of each chunk in a pipable resource.
pub const PWM_CHUNK_HDR_SIZE: u64 = 4;

/// Reads and validates the chunk table of a compressed resource (`pipable`:
/// the resource is in a pipable WIM, with the table at its end). `what`
/// is formatted only on error.
pub fn chunk_locations(
    file: &File,
    rh: &ResHdr,
    chunk_size: u32,
    pipable: bool,
    what: &dyn std::fmt::Display,
) -> Result<Vec<ChunkLoc>> {
    let cs = chunk_size as u64;
    if cs == 0 {
        return Err(WimError::resource(
            what.to_string(),
            "compressed resource in a WIM with chunk size 0",
        ));
    }
    let usize = rh.uncompressed_size;
    if usize == 0 {
        return Ok(Vec::new());
    }
    let n = usize.div_ceil(cs);
    let entry = if usize > u32::MAX as u64 { 8u64 } else { 4u64 };
    let table_len = (n - 1)
        .checked_mul(entry)
        .ok_or_else(|| WimError::resource(what.to_string(), "chunk table size overflows"))?;
    if table_len > rh.size_in_wim {
        return Err(WimError::resource(
            what.to_string(),
            format!(
                "chunk table of {n} chunks does not fit in the stored size {}",
                rh.size_in_wim
            ),
        ));
    }
    // Pipable: chunks (each after its prefix) first, then the table.
    let prefixes = if pipable { n * PWM_CHUNK_HDR_SIZE } else { 0 };
    if table_len + prefixes > rh.size_in_wim {
        return Err(WimError::resource(
            what.to_string(),
            format!(
                "{n} chunk headers and the chunk table do not fit in the stored size {}",
                rh.size_in_wim
            ),
        ));
    }
    let (table_at, data_start) = if pipable {
        (
            rh.offset_in_wim + rh.size_in_wim - table_len,
            rh.offset_in_wim,
        )
    } else {
        (rh.offset_in_wim, rh.offset_in_wim + table_len)
    };
    let mut table = vec![0u8; table_len as usize];
    read_exact_at(file, &mut table, table_at, what)?;
    let data_len = rh.size_in_wim - table_len - prefixes;
    let mut offs: Vec<u64> = Vec::with_capacity(n as usize + 1);
    offs.push(0);
    for e in table.chunks_exact(entry as usize) {
        let v = if entry == 4 {
            u32::from_le_bytes([e[0], e[1], e[2], e[3]]) as u64
        } else {
            let mut a = [0u8; 8];
            a.copy_from_slice(e);
            u64::from_le_bytes(a)
        };
        offs.push(v);
    }
    offs.push(data_len);
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n as usize {
        let (a, b) = (offs[i], offs[i + 1]);
        let usz = if i as u64 == n - 1 {
            usize - cs * (n - 1)
        } else {
            cs
        };
        if b < a || b - a > usz || b > data_len {
            return Err(WimError::resource(
                what.to_string(),
                format!("chunk {i} has invalid bounds {a}..{b} (uncompressed {usz}, stored data {data_len})"),
            ));
        }
        if b == a && usz > 0 {
            return Err(WimError::resource(
                what.to_string(),
                format!("chunk {i} is empty"),
            ));
        }
        // In a pipable resource, chunk i follows i + 1 size prefixes.
        let skip = if pipable {
            (i as u64 + 1) * PWM_CHUNK_HDR_SIZE
        } else {
            0
        };
        out.push(ChunkLoc {
            offset: data_start + a + skip,
            stored_size: (b - a) as u32,
            uncompressed_size: usz as u32,
        });
    }
    Ok(out)
}

/// Decompresses one chunk into `out` (exactly `out.len()` bytes).
pub fn decode_chunk(
    dec: &mut Option<Box<dyn Decompressor>>,
    raw: &[u8],
    out: &mut [u8],
    what: &str,
) -> Result<()> {
    if raw.len() == out.len() {
        out.copy_from_slice(raw);
        return Ok(());
    }
    match dec {
        Some(d) => d.decompress(raw, out).map_err(|e| WimError::Decompress {
            what: what.to_string(),
            source: e,
        }),
        None => Err(WimError::resource(
            what,
            "compressed chunk but no decompressor for this format",
        )),
    }
}

/// Reads a whole resource into memory. Callers bound `uncompressed_size`
/// before calling (metadata, XML and blob tables are checked against the
/// file size).
pub fn read_resource(
    file: &File,
    rh: &ResHdr,
    format: CompressionFormat,
    chunk_size: u32,
    pipable: bool,
    what: &str,
) -> Result<Vec<u8>> {
    if rh.is_solid() {
        return Err(WimError::Unsupported(format!(
            "{what} is in a solid resource (not supported yet)"
        )));
    }
    if !rh.is_compressed() {
        if rh.size_in_wim != rh.uncompressed_size {
            return Err(WimError::resource(
                what,
                "uncompressed resource with mismatched sizes",
            ));
        }
        let mut buf = vec![0u8; rh.uncompressed_size as usize];
        read_exact_at(file, &mut buf, rh.offset_in_wim, &what)?;
        return Ok(buf);
    }
    let chunks = chunk_locations(file, rh, chunk_size, pipable, &what)?;
    let mut dec = new_decompressor(format, chunk_size as usize);
    // Grown chunk by chunk, not reserved from the header's claim: a few
    // KiB of file can claim a GiB in 512 chunks of 2 MiB, and the claim is
    // only believed as far as chunks actually decompress.
    let mut out = Vec::with_capacity((rh.uncompressed_size as usize).min(1 << 20));
    let mut raw = Vec::new();
    for c in chunks {
        raw.resize(c.stored_size as usize, 0);
        read_exact_at(file, &mut raw, c.offset, &what)?;
        let pos = out.len();
        out.resize(pos + c.uncompressed_size as usize, 0);
        decode_chunk(&mut dec, &raw, &mut out[pos..], what)?;
    }
    Ok(out)
}

/// Size of the header at the start of a solid resource: uncompressed size
/// (u64), chunk size (u32), compression format (u32).
pub const SOLID_HEADER_SIZE: u64 = 16;

/// `uncompressed_size` of a blob table entry that describes a solid
/// resource rather than a blob.
pub const SOLID_RESOURCE_MAGIC: u64 = 0x1_0000_0000;

/// The compression format numbers of solid resource headers.
pub fn solid_format_from_u32(v: u32) -> Option<CompressionFormat> {
    Some(match v {
        0 => CompressionFormat::None,
        1 => CompressionFormat::Xpress,
        2 => CompressionFormat::Lzx,
        3 => CompressionFormat::Lzms,
        _ => return None,
    })
}

pub fn solid_format_to_u32(f: CompressionFormat) -> u32 {
    match f {
        CompressionFormat::None => 0,
        CompressionFormat::Xpress => 1,
        CompressionFormat::Lzx => 2,
        CompressionFormat::Lzms => 3,
    }
}

/// The chunk sizes a format allows (powers of two in this range), as
/// wimlib and WIMGAPI accept them; `None` (stored) solid resources take
/// any power of two up to LZMS's limit.
pub fn chunk_size_range(f: CompressionFormat) -> (u32, u32) {
    match f {
        CompressionFormat::None => (4096, 1 << 30),
        CompressionFormat::Xpress => (4096, 65536),
        CompressionFormat::Lzx => (32768, 2_097_152),
        CompressionFormat::Lzms => (32768, 1 << 30),
    }
}

/// A solid resource: many blobs concatenated and compressed as one stream,
/// cut into chunks that are compressed independently (so any chunk can be
/// decompressed alone, and chunks in parallel).
#[derive(Debug, Clone)]
pub struct SolidResource {
    /// Part (of a split WIM) holding it; 1 for a single WIM.
    pub part: u16,
    /// File offset of the resource (its 16-byte header).
    pub offset_in_wim: u64,
    pub size_in_wim: u64,
    pub uncompressed_size: u64,
    pub chunk_size: u32,
    pub format: CompressionFormat,
    pub chunks: Vec<ChunkLoc>,
}

impl SolidResource {
    /// Reads and checks the header and chunk table of the solid resource
    /// stored at `rh` (offset and stored size; the entry's uncompressed
    /// size is the magic number). Nothing is allocated beyond what the
    /// stored size, already checked against the file, can hold.
    pub fn read(file: &File, rh: &ResHdr, part: u16, what: &str) -> Result<SolidResource> {
        if rh.size_in_wim < SOLID_HEADER_SIZE {
            return Err(WimError::resource(
                what,
                format!(
                    "solid resource of {} bytes, shorter than its header",
                    rh.size_in_wim
                ),
            ));
        }
        let mut h = [0u8; SOLID_HEADER_SIZE as usize];
        read_exact_at(file, &mut h, rh.offset_in_wim, &what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(&h[..8]);
        let usize = u64::from_le_bytes(a);
        let chunk_size = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
        let fnum = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
        let format = solid_format_from_u32(fnum).ok_or_else(|| {
            WimError::resource(what, format!("unknown compression format {fnum}"))
        })?;
        let (min, max) = chunk_size_range(format);
        if !chunk_size.is_power_of_two() || chunk_size < min || chunk_size > max {
            return Err(WimError::resource(
                what,
                format!("invalid chunk size {chunk_size} for {format}"),
            ));
        }
        let cs = chunk_size as u64;
        let n = usize.div_ceil(cs);
        // Every chunk costs 4 bytes of table and at least 1 byte of data:
        // a declared size the stored bytes cannot hold is rejected before
        // the table is allocated.
        let room = rh.size_in_wim - SOLID_HEADER_SIZE;
        if n.checked_mul(5).is_none_or(|need| need > room) {
            return Err(WimError::resource(
                what,
                format!(
                    "solid resource claims {usize} bytes ({n} chunks), more than its {} stored bytes can hold",
                    rh.size_in_wim
                ),
            ));
        }
        let table_len = n * 4;
        let mut table = vec![0u8; table_len as usize];
        read_exact_at(
            file,
            &mut table,
            rh.offset_in_wim + SOLID_HEADER_SIZE,
            &what,
        )?;
        let data_len = room - table_len;
        let mut pos = 0u64;
        let mut chunks = Vec::with_capacity(n as usize);
        for (i, e) in table.chunks_exact(4).enumerate() {
            let stored = u32::from_le_bytes([e[0], e[1], e[2], e[3]]) as u64;
            let usz = (usize - cs * i as u64).min(cs);
            if stored == 0 || stored > usz || pos + stored > data_len {
                return Err(WimError::resource(
                    what,
                    format!(
                        "solid chunk {i} has invalid stored size {stored} (uncompressed {usz}, {} stored bytes left)",
                        data_len - pos
                    ),
                ));
            }
            chunks.push(ChunkLoc {
                offset: rh.offset_in_wim + SOLID_HEADER_SIZE + table_len + pos,
                stored_size: stored as u32,
                uncompressed_size: usz as u32,
            });
            pos += stored;
        }
        Ok(SolidResource {
            part,
            offset_in_wim: rh.offset_in_wim,
            size_in_wim: rh.size_in_wim,
            uncompressed_size: usize,
            chunk_size,
            format,
            chunks,
        })
    }

    /// Index range of the chunks holding bytes `start..end` of the
    /// uncompressed data (`start < end <= uncompressed_size`).
    pub fn chunk_span(&self, start: u64, end: u64) -> std::ops::RangeInclusive<usize> {
        let cs = self.chunk_size as u64;
        (start / cs) as usize..=((end - 1) / cs) as usize
    }
}
