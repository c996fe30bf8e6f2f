//! Resource headers ("reshdr"): the 24-byte records that locate a stored
//! region of the WIM file (a blob, a metadata resource, the blob table, the
//! XML data or the integrity table).

use crate::error::{Result, WimError};

pub const RESHDR_SIZE: usize = 24;

/// Free space (ignored by readers).
pub const RESHDR_FLAG_FREE: u8 = 0x01;
/// Image metadata, blob table or XML data.
pub const RESHDR_FLAG_METADATA: u8 = 0x02;
/// Compressed with the WIM's compression type, in chunks.
pub const RESHDR_FLAG_COMPRESSED: u8 = 0x04;
pub const RESHDR_FLAG_SPANNED: u8 = 0x08;
/// Solid resource (version 0xE00 WIMs).
pub const RESHDR_FLAG_SOLID: u8 = 0x10;

/// The largest value of the 56-bit size field.
pub const MAX_SIZE_IN_WIM: u64 = (1 << 56) - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResHdr {
    /// Bytes stored in the file, including a chunk table (56 bits).
    pub size_in_wim: u64,
    pub flags: u8,
    /// Absolute offset in the file.
    pub offset_in_wim: u64,
    /// Size of the data once decompressed.
    pub uncompressed_size: u64,
}

impl ResHdr {
    pub fn parse(b: &[u8; RESHDR_SIZE]) -> ResHdr {
        let (size_in_wim, flags) = ResHdr::unpack_size_flags(le64(&b[..8]));
        ResHdr {
            size_in_wim,
            flags,
            offset_in_wim: le64(&b[8..16]),
            uncompressed_size: le64(&b[16..24]),
        }
    }

    pub fn to_bytes(&self) -> [u8; RESHDR_SIZE] {
        let mut b = [0u8; RESHDR_SIZE];
        b[..8].copy_from_slice(&self.size_flags().to_le_bytes());
        b[8..16].copy_from_slice(&self.offset_in_wim.to_le_bytes());
        b[16..24].copy_from_slice(&self.uncompressed_size.to_le_bytes());
        b
    }

    /// The record's first 8 bytes as one word, as the file stores them:
    /// the stored size in the low 56 bits, the flags in the top byte.
    pub fn size_flags(&self) -> u64 {
        self.size_in_wim & MAX_SIZE_IN_WIM | u64::from(self.flags) << 56
    }

    /// (stored size, flags) of a [`Self::size_flags`] word.
    pub fn unpack_size_flags(w: u64) -> (u64, u8) {
        (w & MAX_SIZE_IN_WIM, (w >> 56) as u8)
    }

    pub fn is_compressed(&self) -> bool {
        self.flags & RESHDR_FLAG_COMPRESSED != 0
    }

    pub fn is_solid(&self) -> bool {
        self.flags & RESHDR_FLAG_SOLID != 0
    }

    pub fn is_metadata(&self) -> bool {
        self.flags & RESHDR_FLAG_METADATA != 0
    }

    pub fn is_empty(&self) -> bool {
        self.size_in_wim == 0 && self.offset_in_wim == 0 && self.uncompressed_size == 0
    }

    /// Checks that the resource lies inside a file of `file_size` bytes and
    /// that its sizes are coherent, so later reads never allocate or seek
    /// past what the file can hold. `what` names the resource in errors
    /// (formatted only then: the blob table validates every entry).
    pub fn validate(&self, file_size: u64, what: &dyn std::fmt::Display) -> Result<()> {
        let end = self
            .offset_in_wim
            .checked_add(self.size_in_wim)
            .ok_or_else(|| WimError::resource(what.to_string(), "offset + size overflows"))?;
        if end > file_size {
            return Err(WimError::resource(
                what.to_string(),
                format!(
                    "extends to byte {end} but the file has only {file_size} bytes (truncated WIM?)"
                ),
            ));
        }
        if !self.is_compressed() && !self.is_solid() && self.size_in_wim != self.uncompressed_size {
            return Err(WimError::resource(
                what.to_string(),
                format!(
                    "uncompressed resource with stored size {} != size {}",
                    self.size_in_wim, self.uncompressed_size
                ),
            ));
        }
        Ok(())
    }
}

pub(crate) fn le16(b: &[u8]) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[..2]);
    u16::from_le_bytes(a)
}

pub(crate) fn le32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

pub(crate) fn le64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(size in 0u64..MAX_SIZE_IN_WIM, flags: u8, off: u64, us: u64) {
            let r = ResHdr { size_in_wim: size, flags, offset_in_wim: off, uncompressed_size: us };
            prop_assert_eq!(ResHdr::parse(&r.to_bytes()), r);
        }
    }

    #[test]
    fn validate_rejects_truncation_and_overflow() {
        let r = ResHdr {
            size_in_wim: 100,
            flags: RESHDR_FLAG_COMPRESSED,
            offset_in_wim: 208,
            uncompressed_size: 1000,
        };
        assert!(r.validate(308, &"x").is_ok());
        assert!(r.validate(307, &"x").is_err());
        let r = ResHdr {
            size_in_wim: 100,
            flags: 0,
            offset_in_wim: u64::MAX - 10,
            uncompressed_size: 100,
        };
        assert!(r.validate(u64::MAX, &"x").is_err());
        let r = ResHdr {
            size_in_wim: 100,
            flags: 0,
            offset_in_wim: 0,
            uncompressed_size: 101,
        };
        assert!(r.validate(1000, &"x").is_err());
    }
}
