//! The blob table (Microsoft's "lookup table"): one 50-byte entry per stored
//! resource, mapping a blob's SHA-1 to where it lives in the file.

use crate::error::{Result, WimError};
use crate::hash::Sha1Hash;
use crate::reshdr::{le16, le32, ResHdr, RESHDR_SIZE};

pub const BLOB_ENTRY_SIZE: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobEntry {
    pub reshdr: ResHdr,
    pub part_number: u16,
    pub refcnt: u32,
    pub hash: Sha1Hash,
    /// Set (by the reader) for a blob inside a solid resource; its
    /// `reshdr` is then normalised: `offset_in_wim` is the solid resource's
    /// file offset and both sizes are the blob's size, so code that only
    /// wants a blob's size or file order need not care.
    pub solid: Option<SolidLoc>,
}

/// Where a blob lies inside a solid resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SolidLoc {
    /// Index into the reader's list of solid resources.
    pub resource: usize,
    /// Offset of the blob in the resource's uncompressed data.
    pub offset: u64,
}

impl BlobEntry {
    /// Sort key that visits blobs in the order they lie in the (possibly
    /// split) WIM: part, file offset, then offset inside a solid resource.
    pub fn read_order(&self) -> (u16, u64, u64) {
        (
            self.part_number,
            self.reshdr.offset_in_wim,
            self.solid.map_or(0, |s| s.offset),
        )
    }

    pub fn to_bytes(&self) -> [u8; BLOB_ENTRY_SIZE] {
        let mut b = [0u8; BLOB_ENTRY_SIZE];
        b[..RESHDR_SIZE].copy_from_slice(&self.reshdr.to_bytes());
        b[24..26].copy_from_slice(&self.part_number.to_le_bytes());
        b[26..30].copy_from_slice(&self.refcnt.to_le_bytes());
        b[30..50].copy_from_slice(&self.hash.0);
        b
    }
}

/// Parses the (uncompressed) blob table resource.
pub fn parse_blob_table(data: &[u8]) -> Result<Vec<BlobEntry>> {
    if data.len() % BLOB_ENTRY_SIZE != 0 {
        return Err(WimError::InvalidBlobTable(format!(
            "size {} is not a multiple of {BLOB_ENTRY_SIZE}",
            data.len()
        )));
    }
    let mut out = Vec::with_capacity(data.len() / BLOB_ENTRY_SIZE);
    for e in data.chunks_exact(BLOB_ENTRY_SIZE) {
        let mut rh = [0u8; RESHDR_SIZE];
        rh.copy_from_slice(&e[..RESHDR_SIZE]);
        let mut hash = [0u8; 20];
        hash.copy_from_slice(&e[30..50]);
        out.push(BlobEntry {
            reshdr: ResHdr::parse(&rh),
            part_number: le16(&e[24..]),
            refcnt: le32(&e[26..]),
            hash: Sha1Hash(hash),
            solid: None,
        });
    }
    Ok(out)
}

pub fn serialize_blob_table(entries: &[BlobEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * BLOB_ENTRY_SIZE);
    for e in entries {
        out.extend_from_slice(&e.to_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let e = BlobEntry {
            reshdr: ResHdr {
                size_in_wim: 10,
                flags: 4,
                offset_in_wim: 300,
                uncompressed_size: 40000,
            },
            part_number: 1,
            refcnt: 3,
            hash: Sha1Hash([9; 20]),
            solid: None,
        };
        let bytes = serialize_blob_table(&[e.clone(), e.clone()]);
        assert_eq!(bytes.len(), 100);
        assert_eq!(parse_blob_table(&bytes).unwrap(), vec![e.clone(), e]);
        assert!(parse_blob_table(&bytes[..99]).is_err());
    }
}
