//! Just enough of a WIM file to check the wizard's answers: where the XML
//! description sits (from the 208-byte header) and the images it lists (index,
//! name, edition, architecture). The caller reads the bytes; nothing here
//! touches a file. The full format lives in the `wim` crate.

use crate::xml;

/// Size of a WIM header.
pub const HEADER_LEN: usize = 208;
/// Largest XML description accepted.
pub const MAX_XML: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WimInfoError {
    #[error("not a WIM file (bad magic)")]
    NotWim,
    #[error("WIM header is truncated")]
    Truncated,
    #[error("WIM XML description is compressed or too large ({0} bytes)")]
    UnsupportedXml(u64),
    #[error("WIM XML description: {0}")]
    Xml(String),
}

/// Where the XML description is, as the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XmlLocation {
    pub offset: u64,
    pub size: u64,
}

/// Processor architecture of an image (Windows `PROCESSOR_ARCHITECTURE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    X86,
    X64,
    Arm,
    Arm64,
    Ia64,
}

impl Arch {
    pub fn from_wim(code: u32) -> Option<Arch> {
        match code {
            0 => Some(Arch::X86),
            5 => Some(Arch::Arm),
            6 => Some(Arch::Ia64),
            9 => Some(Arch::X64),
            12 => Some(Arch::Arm64),
            _ => None,
        }
    }
    /// Parses the names admins write: x86, x64/amd64, arm64, arm, ia64.
    pub fn parse(s: &str) -> Option<Arch> {
        match s.trim().to_ascii_lowercase().as_str() {
            "x86" | "i386" | "i686" => Some(Arch::X86),
            "x64" | "amd64" | "x86_64" | "x86-64" => Some(Arch::X64),
            "arm64" | "aarch64" => Some(Arch::Arm64),
            "arm" => Some(Arch::Arm),
            "ia64" => Some(Arch::Ia64),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86 => "x86",
            Arch::X64 => "x64",
            Arch::Arm => "arm",
            Arch::Arm64 => "arm64",
            Arch::Ia64 => "ia64",
        }
    }
}

/// One image of a WIM, from its XML description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WimImage {
    pub index: u32,
    pub name: String,
    pub edition: String,
    pub arch: Option<Arch>,
}

/// Reads the XML location from the header bytes (at least 208).
pub fn xml_location(header: &[u8]) -> Result<XmlLocation, WimInfoError> {
    if header.len() < HEADER_LEN {
        return Err(WimInfoError::Truncated);
    }
    let magic = header.get(..8).ok_or(WimInfoError::Truncated)?;
    if magic != b"MSWIM\0\0\0" && magic != b"WLPWM\0\0\0" {
        return Err(WimInfoError::NotWim);
    }
    let r = header.get(0x48..0x48 + 24).ok_or(WimInfoError::Truncated)?;
    let mut size7 = [0u8; 8];
    size7[..7].copy_from_slice(&r[..7]);
    let stored = u64::from_le_bytes(size7);
    let flags = r[7];
    let mut off = [0u8; 8];
    off.copy_from_slice(&r[8..16]);
    let mut orig = [0u8; 8];
    orig.copy_from_slice(&r[16..24]);
    let original = u64::from_le_bytes(orig);
    // 0x04 = compressed: Windows never compresses the XML; we do not inflate it here.
    if flags & 0x04 != 0 || stored != original || stored > MAX_XML {
        return Err(WimInfoError::UnsupportedXml(stored));
    }
    Ok(XmlLocation {
        offset: u64::from_le_bytes(off),
        size: stored,
    })
}

/// Parses the XML description (UTF-16LE, as stored in the file).
pub fn parse_xml(bytes: &[u8]) -> Result<Vec<WimImage>, WimInfoError> {
    let text = if bytes.starts_with(&[0xFF, 0xFE])
        || bytes.starts_with(&[0xFE, 0xFF])
        || bytes.starts_with(&[0xEF, 0xBB, 0xBF])
    {
        xml::decode_bytes(bytes).map_err(|e| WimInfoError::Xml(e.to_string()))?
    } else {
        // No BOM: UTF-16LE is what WIMs hold.
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16(&units).map_err(|_| WimInfoError::Xml("invalid UTF-16".into()))?
    };
    let root = xml::parse(&text).map_err(|e| WimInfoError::Xml(e.to_string()))?;
    if root.name != "WIM" {
        return Err(WimInfoError::Xml(format!(
            "root element is <{}>, expected <WIM>",
            root.name
        )));
    }
    let mut out = Vec::new();
    for img in root.elements().filter(|e| e.name == "IMAGE") {
        let index = img
            .attr("INDEX")
            .and_then(|i| i.trim().parse::<u32>().ok())
            .ok_or_else(|| WimInfoError::Xml("<IMAGE> without a numeric INDEX".into()))?;
        let child =
            |e: &xml::Element, n: &str| e.elements().find(|c| c.name == n).map(|c| c.text());
        let windows = img.elements().find(|c| c.name == "WINDOWS");
        out.push(WimImage {
            index,
            name: child(img, "NAME").unwrap_or_default(),
            edition: windows
                .and_then(|w| child(w, "EDITIONID"))
                .unwrap_or_default(),
            arch: windows
                .and_then(|w| child(w, "ARCH"))
                .and_then(|a| a.trim().parse::<u32>().ok())
                .and_then(Arch::from_wim),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(s: &str) -> Vec<u8> {
        [0xFF, 0xFE]
            .into_iter()
            .chain(s.encode_utf16().flat_map(u16::to_le_bytes))
            .collect()
    }

    #[test]
    fn parses_images() {
        let x = utf16("<WIM><TOTALBYTES>1</TOTALBYTES><IMAGE INDEX=\"1\"><NAME>Windows 11 Pro</NAME><WINDOWS><ARCH>9</ARCH><EDITIONID>Professional</EDITIONID></WINDOWS></IMAGE><IMAGE INDEX=\"2\"><NAME>data</NAME></IMAGE></WIM>");
        let imgs = parse_xml(&x).unwrap();
        assert_eq!(imgs.len(), 2);
        assert_eq!(imgs[0].arch, Some(Arch::X64));
        assert_eq!(imgs[0].edition, "Professional");
        assert_eq!(imgs[1].arch, None);
        assert!(parse_xml(&utf16("<WIM><IMAGE/></WIM>")).is_err());
        assert!(parse_xml(&utf16("<NOTWIM/>")).is_err());
    }

    #[test]
    fn header_fields() {
        let mut h = vec![0u8; HEADER_LEN];
        h[..8].copy_from_slice(b"MSWIM\0\0\0");
        h[0x48..0x48 + 7].copy_from_slice(&[0x26, 3, 0, 0, 0, 0, 0]);
        h[0x48 + 8..0x48 + 16].copy_from_slice(&0x2c3_88d6u64.to_le_bytes());
        h[0x48 + 16..0x48 + 24].copy_from_slice(&0x326u64.to_le_bytes());
        assert_eq!(
            xml_location(&h),
            Ok(XmlLocation {
                offset: 0x2c3_88d6,
                size: 0x326
            })
        );
        h[0x48 + 7] = 0x04;
        assert!(xml_location(&h).is_err());
        assert_eq!(xml_location(&h[..100]), Err(WimInfoError::Truncated));
        let mut zip = vec![0u8; HEADER_LEN];
        zip[..4].copy_from_slice(b"PK\x03\x04");
        assert_eq!(xml_location(&zip), Err(WimInfoError::NotWim));
    }
}
