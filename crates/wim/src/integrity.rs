//! The optional integrity table: SHA-1 digests of consecutive 10 MiB
//! pieces of the raw file from the end of the header to the end of the
//! blob table, so that `verify` can detect any damage to stored bytes.

use std::fs::File;

use crate::error::{Result, WimError};
use crate::hash::{Sha1Hash, Sha1Hasher};
use crate::header::HEADER_SIZE;
use crate::resource::read_exact_at;

pub const INTEGRITY_CHUNK_SIZE: u32 = 10 * 1024 * 1024;

fn hash_range(file: &File, start: u64, end: u64, chunk: u32) -> Result<Vec<Sha1Hash>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; (1 << 20).min(chunk as usize)];
    let mut pos = start;
    while pos < end {
        let stop = (pos + chunk as u64).min(end);
        let mut h = Sha1Hasher::new();
        while pos < stop {
            let n = ((stop - pos) as usize).min(buf.len());
            read_exact_at(
                file,
                &mut buf[..n],
                pos,
                &"data covered by the integrity table",
            )?;
            h.update(&buf[..n]);
            pos += n as u64;
        }
        out.push(h.finish());
    }
    Ok(out)
}

/// Builds the integrity table for bytes [208, end_of_blob_table).
pub fn build_integrity_table(file: &File, end_of_blob_table: u64) -> Result<Vec<u8>> {
    let hashes = hash_range(
        file,
        HEADER_SIZE as u64,
        end_of_blob_table,
        INTEGRITY_CHUNK_SIZE,
    )?;
    let size = 12 + hashes.len() * 20;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(size as u32).to_le_bytes());
    out.extend_from_slice(&(hashes.len() as u32).to_le_bytes());
    out.extend_from_slice(&INTEGRITY_CHUNK_SIZE.to_le_bytes());
    for h in hashes {
        out.extend_from_slice(&h.0);
    }
    Ok(out)
}

/// Checks the file against its integrity table. Returns the number of
/// pieces checked.
pub fn check_integrity(file: &File, table: &[u8], end_of_blob_table: u64) -> Result<usize> {
    if table.len() < 12 {
        return Err(WimError::Integrity("table shorter than its header".into()));
    }
    let n = u32::from_le_bytes([table[4], table[5], table[6], table[7]]) as usize;
    let chunk = u32::from_le_bytes([table[8], table[9], table[10], table[11]]);
    let checked = end_of_blob_table.saturating_sub(HEADER_SIZE as u64);
    if chunk == 0 || (n as u64) != checked.div_ceil(chunk as u64) || table.len() < 12 + n * 20 {
        return Err(WimError::Integrity(format!(
            "table has {n} entries of {chunk} bytes, which does not cover {checked} bytes"
        )));
    }
    let actual = hash_range(file, HEADER_SIZE as u64, end_of_blob_table, chunk)?;
    for (i, h) in actual.iter().enumerate() {
        let want = &table[12 + i * 20..12 + i * 20 + 20];
        if h.0 != want {
            let start = HEADER_SIZE as u64 + i as u64 * chunk as u64;
            return Err(WimError::Integrity(format!(
                "bytes {start}..{} of the file are damaged (SHA-1 mismatch)",
                (start + chunk as u64).min(end_of_blob_table)
            )));
        }
    }
    Ok(n)
}
