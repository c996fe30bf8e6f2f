//! Reading chunked resources. A compressed (non-solid) resource is a chunk
//! table — one offset per chunk after the first, relative to the end of the
//! table, 4 bytes wide (8 when the resource is 4 GiB or more) — followed by
//! independently compressed chunks; a chunk whose stored size equals its
//! uncompressed size is stored raw.

use std::fs::File;
use std::os::unix::fs::FileExt;

use tasq_codecs::{new_decompressor, CompressionFormat, Decompressor};

use crate::error::{Result, WimError};
use crate::reshdr::ResHdr;

/// Reads exactly `buf.len()` bytes at `offset`, naming `what` on error.
pub fn read_exact_at(file: &File, buf: &mut [u8], offset: u64, what: &str) -> Result<()> {
    file.read_exact_at(buf, offset).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            WimError::resource(
                what,
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

/// Reads and validates the chunk table of a compressed resource.
pub fn chunk_locations(
    file: &File,
    rh: &ResHdr,
    chunk_size: u32,
    what: &str,
) -> Result<Vec<ChunkLoc>> {
    let cs = chunk_size as u64;
    if cs == 0 {
        return Err(WimError::resource(
            what,
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
        .ok_or_else(|| WimError::resource(what, "chunk table size overflows"))?;
    if table_len > rh.size_in_wim {
        return Err(WimError::resource(
            what,
            format!(
                "chunk table of {n} chunks does not fit in the stored size {}",
                rh.size_in_wim
            ),
        ));
    }
    let mut table = vec![0u8; table_len as usize];
    read_exact_at(file, &mut table, rh.offset_in_wim, what)?;
    let data_start = rh.offset_in_wim + table_len;
    let data_len = rh.size_in_wim - table_len;
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
                what,
                format!("chunk {i} has invalid bounds {a}..{b} (uncompressed {usz}, stored data {data_len})"),
            ));
        }
        if b == a && usz > 0 {
            return Err(WimError::resource(what, format!("chunk {i} is empty")));
        }
        out.push(ChunkLoc {
            offset: data_start + a,
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
        read_exact_at(file, &mut buf, rh.offset_in_wim, what)?;
        return Ok(buf);
    }
    let chunks = chunk_locations(file, rh, chunk_size, what)?;
    let mut dec = new_decompressor(format, chunk_size as usize);
    // Grown chunk by chunk, not reserved from the header's claim: a few
    // KiB of file can claim a GiB in 512 chunks of 2 MiB, and the claim is
    // only believed as far as chunks actually decompress.
    let mut out = Vec::with_capacity((rh.uncompressed_size as usize).min(1 << 20));
    let mut raw = Vec::new();
    for c in chunks {
        raw.resize(c.stored_size as usize, 0);
        read_exact_at(file, &mut raw, c.offset, what)?;
        let pos = out.len();
        out.resize(pos + c.uncompressed_size as usize, 0);
        decode_chunk(&mut dec, &raw, &mut out[pos..], what)?;
    }
    Ok(out)
}
