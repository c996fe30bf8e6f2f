//! The 208-byte WIM header at offset 0.

use crate::error::{Result, WimError};
use crate::reshdr::{le16, le32, ResHdr, RESHDR_SIZE};
use tasq_codecs::CompressionFormat;

pub const HEADER_SIZE: usize = 208;
pub const WIM_MAGIC: [u8; 8] = *b"MSWIM\0\0\0";
pub const PWM_MAGIC: [u8; 8] = *b"WLPWM\0\0\0";
/// The default version, written by DISM and wimlib for non-solid WIMs.
pub const WIM_VERSION_DEFAULT: u32 = 0x10D00;
/// The version required for solid resources and LZMS ("ESD").
pub const WIM_VERSION_SOLID: u32 = 0xE00;

pub const HDR_FLAG_RESERVED: u32 = 0x0000_0001;
pub const HDR_FLAG_COMPRESSION: u32 = 0x0000_0002;
pub const HDR_FLAG_READONLY: u32 = 0x0000_0004;
pub const HDR_FLAG_SPANNED: u32 = 0x0000_0008;
pub const HDR_FLAG_RESOURCE_ONLY: u32 = 0x0000_0010;
pub const HDR_FLAG_METADATA_ONLY: u32 = 0x0000_0020;
pub const HDR_FLAG_WRITE_IN_PROGRESS: u32 = 0x0000_0040;
pub const HDR_FLAG_RP_FIX: u32 = 0x0000_0080;
pub const HDR_FLAG_COMPRESS_RESERVED: u32 = 0x0001_0000;
pub const HDR_FLAG_COMPRESS_XPRESS: u32 = 0x0002_0000;
pub const HDR_FLAG_COMPRESS_LZX: u32 = 0x0004_0000;
pub const HDR_FLAG_COMPRESS_LZMS: u32 = 0x0008_0000;
pub const HDR_FLAG_COMPRESS_XPRESS2: u32 = 0x0020_0000;

const COMPRESS_MASK: u32 = HDR_FLAG_COMPRESS_XPRESS
    | HDR_FLAG_COMPRESS_LZX
    | HDR_FLAG_COMPRESS_LZMS
    | HDR_FLAG_COMPRESS_XPRESS2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub pipable: bool,
    pub version: u32,
    pub flags: u32,
    pub chunk_size: u32,
    pub guid: [u8; 16],
    pub part_number: u16,
    pub total_parts: u16,
    pub image_count: u32,
    pub blob_table: ResHdr,
    pub xml_data: ResHdr,
    pub boot_metadata: ResHdr,
    pub boot_index: u32,
    pub integrity: ResHdr,
}

impl Header {
    /// A header for a new, empty, single-part WIM.
    pub fn new(compression: CompressionFormat, chunk_size: u32, guid: [u8; 16]) -> Header {
        let mut h = Header {
            pipable: false,
            version: WIM_VERSION_DEFAULT,
            flags: 0,
            chunk_size: 0,
            guid,
            part_number: 1,
            total_parts: 1,
            image_count: 0,
            blob_table: ResHdr::default(),
            xml_data: ResHdr::default(),
            boot_metadata: ResHdr::default(),
            boot_index: 0,
            integrity: ResHdr::default(),
        };
        h.set_compression(compression, chunk_size);
        h
    }

    pub fn set_compression(&mut self, compression: CompressionFormat, chunk_size: u32) {
        self.flags &= !(COMPRESS_MASK | HDR_FLAG_COMPRESSION);
        let f = match compression {
            CompressionFormat::None => 0,
            CompressionFormat::Xpress => HDR_FLAG_COMPRESS_XPRESS,
            CompressionFormat::Lzx => HDR_FLAG_COMPRESS_LZX,
            CompressionFormat::Lzms => HDR_FLAG_COMPRESS_LZMS,
        };
        if f != 0 {
            self.flags |= HDR_FLAG_COMPRESSION | f;
            self.chunk_size = chunk_size;
        } else {
            self.chunk_size = 0;
        }
        if compression == CompressionFormat::Lzms {
            self.version = WIM_VERSION_SOLID;
        }
    }

    /// The compression format of non-solid resources.
    pub fn compression(&self) -> CompressionFormat {
        if self.flags & HDR_FLAG_COMPRESSION == 0 {
            CompressionFormat::None
        } else if self.flags & HDR_FLAG_COMPRESS_LZX != 0 {
            CompressionFormat::Lzx
        } else if self.flags & (HDR_FLAG_COMPRESS_XPRESS | HDR_FLAG_COMPRESS_XPRESS2) != 0 {
            CompressionFormat::Xpress
        } else if self.flags & HDR_FLAG_COMPRESS_LZMS != 0 {
            CompressionFormat::Lzms
        } else {
            CompressionFormat::None
        }
    }

    pub fn parse(b: &[u8]) -> Result<Header> {
        if b.len() < HEADER_SIZE {
            return Err(WimError::InvalidHeader(format!(
                "file is {} bytes, shorter than the {HEADER_SIZE}-byte header",
                b.len()
            )));
        }
        let pipable = if b[..8] == WIM_MAGIC {
            false
        } else if b[..8] == PWM_MAGIC {
            true
        } else {
            return Err(WimError::InvalidHeader(
                "bad magic (expected \"MSWIM\")".into(),
            ));
        };
        let hdr_size = le32(&b[8..]);
        if hdr_size as usize != HEADER_SIZE {
            return Err(WimError::InvalidHeader(format!(
                "header size field is {hdr_size}, expected {HEADER_SIZE}"
            )));
        }
        let rh = |off: usize| -> ResHdr {
            let mut a = [0u8; RESHDR_SIZE];
            a.copy_from_slice(&b[off..off + RESHDR_SIZE]);
            ResHdr::parse(&a)
        };
        let mut guid = [0u8; 16];
        guid.copy_from_slice(&b[0x18..0x28]);
        let h = Header {
            pipable,
            version: le32(&b[0x0C..]),
            flags: le32(&b[0x10..]),
            chunk_size: le32(&b[0x14..]),
            guid,
            part_number: le16(&b[0x28..]),
            total_parts: le16(&b[0x2A..]),
            image_count: le32(&b[0x2C..]),
            blob_table: rh(0x30),
            xml_data: rh(0x48),
            boot_metadata: rh(0x60),
            boot_index: le32(&b[0x78..]),
            integrity: rh(0x7C),
        };
        if h.version != WIM_VERSION_DEFAULT && h.version != WIM_VERSION_SOLID {
            return Err(WimError::InvalidHeader(format!(
                "unsupported WIM version {:#x}",
                h.version
            )));
        }
        if h.flags & HDR_FLAG_COMPRESSION != 0 {
            let n = (h.flags & COMPRESS_MASK).count_ones();
            if n != 1 {
                return Err(WimError::InvalidHeader(format!(
                    "compression flag set with {n} compression types (flags {:#x})",
                    h.flags
                )));
            }
            let cs = h.chunk_size;
            let (min, max) = match h.compression() {
                CompressionFormat::Xpress => (4096, 65536),
                CompressionFormat::Lzx => (32768, 2_097_152),
                CompressionFormat::Lzms => (32768, 1 << 30),
                CompressionFormat::None => (0, 0),
            };
            if !cs.is_power_of_two() || cs < min || cs > max {
                return Err(WimError::InvalidHeader(format!(
                    "invalid chunk size {cs} for {}",
                    h.compression()
                )));
            }
        }
        if h.part_number == 0 || h.total_parts == 0 || h.part_number > h.total_parts {
            return Err(WimError::InvalidHeader(format!(
                "invalid part number {} of {}",
                h.part_number, h.total_parts
            )));
        }
        if h.boot_index > h.image_count {
            return Err(WimError::InvalidHeader(format!(
                "boot index {} but only {} images",
                h.boot_index, h.image_count
            )));
        }
        Ok(h)
    }

    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[..8].copy_from_slice(if self.pipable { &PWM_MAGIC } else { &WIM_MAGIC });
        b[8..12].copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
        b[0x0C..0x10].copy_from_slice(&self.version.to_le_bytes());
        b[0x10..0x14].copy_from_slice(&self.flags.to_le_bytes());
        b[0x14..0x18].copy_from_slice(&self.chunk_size.to_le_bytes());
        b[0x18..0x28].copy_from_slice(&self.guid);
        b[0x28..0x2A].copy_from_slice(&self.part_number.to_le_bytes());
        b[0x2A..0x2C].copy_from_slice(&self.total_parts.to_le_bytes());
        b[0x2C..0x30].copy_from_slice(&self.image_count.to_le_bytes());
        b[0x30..0x48].copy_from_slice(&self.blob_table.to_bytes());
        b[0x48..0x60].copy_from_slice(&self.xml_data.to_bytes());
        b[0x60..0x78].copy_from_slice(&self.boot_metadata.to_bytes());
        b[0x78..0x7C].copy_from_slice(&self.boot_index.to_le_bytes());
        b[0x7C..0x94].copy_from_slice(&self.integrity.to_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_compression() {
        let mut h = Header::new(CompressionFormat::Lzx, 32768, [7; 16]);
        h.image_count = 2;
        h.boot_index = 2;
        h.blob_table = ResHdr {
            size_in_wim: 50,
            flags: 2,
            offset_in_wim: 1000,
            uncompressed_size: 50,
        };
        let b = h.to_bytes();
        assert_eq!(&b[..8], b"MSWIM\0\0\0");
        assert_eq!(le32(&b[0x10..]), 0x40002);
        let p = Header::parse(&b).unwrap();
        assert_eq!(p, h);
        assert_eq!(p.compression(), CompressionFormat::Lzx);
    }

    #[test]
    fn rejects_bad_headers() {
        let h = Header::new(CompressionFormat::Xpress, 32768, [0; 16]);
        let good = h.to_bytes();
        assert!(Header::parse(&good[..100]).is_err());
        let mut b = good;
        b[0] = b'X';
        assert!(Header::parse(&b).is_err());
        let mut b = good;
        b[0x14..0x18].copy_from_slice(&1000u32.to_le_bytes());
        assert!(Header::parse(&b)
            .unwrap_err()
            .to_string()
            .contains("chunk size"));
        let mut b = good;
        b[0x78..0x7C].copy_from_slice(&5u32.to_le_bytes());
        assert!(Header::parse(&b).is_err());
        let mut b = good;
        b[0x0C..0x10].copy_from_slice(&0x10900u32.to_le_bytes());
        assert!(Header::parse(&b).is_err());
    }
}
