//! The WIM XML resource: per-image names, descriptions, counts, timestamps
//! and Windows version information.
//!
//! Every WIM carries one XML document (UTF-16LE with a byte order mark, no
//! XML declaration) with a `<WIM>` root, one `<IMAGE INDEX="n">` element per
//! image and a top-level `<TOTALBYTES>`. This module maps that document to
//! typed structs ([`WimInfo`], [`ImageInfo`], [`WindowsInfo`]) and back.
//! Elements we do not know are kept verbatim as [`XmlNode`]s so that rewriting
//! a WIM made by another tool does not lose its information.
//!
//! Reading is lenient where wimlib is lenient (a malformed count reads as 0)
//! and strict where a mistake would misnumber images (the INDEX attributes
//! must be exactly 1..=n).

mod parser;
mod writer;

pub use parser::{MAX_DEPTH, MAX_NODES};

/// Largest XML resource [`WimInfo::parse`] accepts, in bytes. Readers should
/// check the resource header against this before reading the resource.
pub const MAX_XML_SIZE: usize = 64 << 20;

use serde::Serialize;

/// Errors reading a WIM XML document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// The bytes are not valid UTF-16LE (or UTF-8, for a UTF-8 document).
    #[error("WIM XML is not valid {encoding} at byte offset {offset}: {reason}")]
    Encoding {
        encoding: &'static str,
        offset: usize,
        reason: &'static str,
    },
    /// The text is not well-formed XML (or uses XML we do not accept).
    #[error("WIM XML syntax error at line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// Elements are nested deeper than [`MAX_DEPTH`].
    #[error("WIM XML nests elements deeper than {limit} levels (at line {line})")]
    TooDeep { line: usize, limit: usize },
    /// The input is larger than [`MAX_XML_SIZE`].
    #[error("WIM XML is {size} bytes, more than the {limit} bytes accepted")]
    TooLarge { size: usize, limit: usize },
    /// The document has more than [`MAX_NODES`] elements.
    #[error("WIM XML has more than {limit} elements")]
    TooManyElements { limit: usize },
    /// The root element is not `<WIM>`.
    #[error("WIM XML root element is <{found}>, expected <WIM>")]
    WrongRoot { found: String },
    /// An `<IMAGE>` element has no usable INDEX attribute.
    #[error("WIM XML <IMAGE> element number {position} has {problem}")]
    BadIndex {
        /// 1-based position of the IMAGE element in the document.
        position: usize,
        problem: String,
    },
    /// Two `<IMAGE>` elements claim the same INDEX.
    #[error("WIM XML has more than one <IMAGE INDEX=\"{index}\">")]
    DuplicateIndex { index: u32 },
    /// The INDEX attributes are not 1..=n: `index` is missing.
    #[error("WIM XML has {count} <IMAGE> elements but none with INDEX=\"{index}\"")]
    MissingIndex { index: u32, count: usize },
}

/// The whole XML document of a WIM file.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WimInfo {
    /// Images in index order: `images[0]` is image 1.
    pub images: Vec<ImageInfo>,
    /// Top-level `<TOTALBYTES>`. wimlib sets it to the file offset of the XML
    /// resource (the size of everything before it).
    pub total_bytes: Option<u64>,
    /// Unknown top-level elements (e.g. an ESD's `<ESD>`), preserved in order.
    pub extra: Vec<XmlNode>,
}

/// One `<IMAGE>` element.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImageInfo {
    pub name: Option<String>,
    pub description: Option<String>,
    pub display_name: Option<String>,
    pub display_description: Option<String>,
    /// Edition ID, e.g. "Professional".
    pub flags: Option<String>,
    pub dir_count: u64,
    pub file_count: u64,
    pub total_bytes: u64,
    pub hard_link_bytes: u64,
    /// FILETIME (100 ns ticks since 1601-01-01 UTC).
    pub creation_time: u64,
    /// FILETIME (100 ns ticks since 1601-01-01 UTC).
    pub last_modification_time: u64,
    pub wimboot: bool,
    pub windows: Option<WindowsInfo>,
    /// Unknown child elements, preserved verbatim and in order. Also holds a
    /// second occurrence of a known element.
    pub extra: Vec<XmlNode>,
}

/// `<IMAGE><WINDOWS>`: what the captured Windows installation is.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WindowsInfo {
    /// `PROCESSOR_ARCHITECTURE_*`: 0 x86, 5 ARM, 6 IA64, 9 x64, 12 ARM64.
    pub arch: Option<u32>,
    pub product_name: Option<String>,
    pub edition_id: Option<String>,
    pub installation_type: Option<String>,
    pub hal: Option<String>,
    pub product_type: Option<String>,
    pub product_suite: Option<String>,
    /// `<LANGUAGES><LANGUAGE>` values, in order.
    pub languages: Vec<String>,
    /// `<LANGUAGES><DEFAULT>`.
    pub default_language: Option<String>,
    /// Unknown children of `<LANGUAGES>` (Windows writes `<FALLBACK>` there).
    pub languages_extra: Vec<XmlNode>,
    pub version: Option<WindowsVersion>,
    pub system_root: Option<String>,
    /// Unknown children of `<WINDOWS>` (e.g. `<SERVICINGDATA>`), in order.
    pub extra: Vec<XmlNode>,
}

/// `<WINDOWS><VERSION>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WindowsVersion {
    pub major: Option<u64>,
    pub minor: Option<u64>,
    pub build: Option<u64>,
    pub spbuild: Option<u64>,
    pub splevel: Option<u64>,
    pub branch: Option<String>,
    /// Unknown children (and values that are not numbers), in order.
    pub extra: Vec<XmlNode>,
}

/// A generic element kept as is.
///
/// Mixed content is simplified: an element's text is all of its character data
/// joined together and is written before its children. Text that is only
/// whitespace is dropped from elements that have children (it is layout).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct XmlNode {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub children: Vec<XmlNode>,
    pub text: Option<String>,
}

impl XmlNode {
    fn child(&self, name: &str) -> Option<&XmlNode> {
        self.children.iter().find(|c| c.name == name)
    }

    /// An element that only groups others: no attributes and no text, so
    /// mapping it to a struct loses nothing.
    fn is_plain_container(&self) -> bool {
        self.attributes.is_empty() && self.text.is_none()
    }

    /// The text of an element that is a plain value: no attributes and no
    /// children. An empty element is the empty string.
    fn simple_text(&self) -> Option<&str> {
        if self.attributes.is_empty() && self.children.is_empty() {
            Some(self.text.as_deref().unwrap_or(""))
        } else {
            None
        }
    }
}

impl WimInfo {
    /// Parses the XML resource of a WIM file.
    ///
    /// The resource is normally UTF-16LE with a byte order mark; UTF-16LE
    /// without one is accepted (recognised by its zero second byte), and so
    /// is UTF-8. Inputs over [`MAX_XML_SIZE`] are refused; otherwise
    /// parsing allocates a bounded multiple of the input size, and nesting
    /// deeper than [`MAX_DEPTH`] or more than [`MAX_NODES`] elements are
    /// errors.
    pub fn parse(bytes: &[u8]) -> Result<WimInfo, XmlError> {
        if bytes.len() > MAX_XML_SIZE {
            return Err(XmlError::TooLarge {
                size: bytes.len(),
                limit: MAX_XML_SIZE,
            });
        }
        let text = decode(bytes)?;
        let root = parser::parse_document(&text)?;
        from_root(root)
    }

    /// The XML resource as stored in a WIM: UTF-16LE with a BOM.
    pub fn to_bytes(&self) -> Vec<u8> {
        let text = self.to_xml_string();
        let mut out = Vec::with_capacity(2 + text.len() * 2);
        out.extend_from_slice(&[0xFF, 0xFE]);
        for unit in text.encode_utf16() {
            out.extend_from_slice(&unit.to_le_bytes());
        }
        out
    }

    /// The same document as [`WimInfo::to_bytes`], as text without the BOM.
    pub fn to_xml_string(&self) -> String {
        writer::write_document(self)
    }

    /// True if the document marks the WIM as an encrypted ESD
    /// (`<ESD><ENCRYPTED>`), whose resources cannot be read without a key.
    pub fn is_encrypted_esd(&self) -> bool {
        self.extra
            .iter()
            .any(|n| n.name == "ESD" && n.child("ENCRYPTED").is_some())
    }
}

/// The current time as a FILETIME (100 ns ticks since 1601-01-01 UTC).
pub fn filetime_now() -> u64 {
    // Seconds between 1601-01-01 and 1970-01-01, in 100 ns ticks.
    const UNIX_EPOCH_AS_FILETIME: u64 = 116_444_736_000_000_000;
    let since_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let ticks = since_unix.as_nanos() / 100;
    UNIX_EPOCH_AS_FILETIME.saturating_add(u64::try_from(ticks).unwrap_or(u64::MAX))
}

/// Picks the encoding and decodes. Unpaired surrogates are errors rather
/// than replaced: a name silently changed would not match the one in the
/// file, and wimlib rejects them too.
fn decode(bytes: &[u8]) -> Result<String, XmlError> {
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return decode_utf16le(rest, 2);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return decode_utf8(rest, 3);
    }
    // Without a BOM: a document starts with '<' or whitespace, both ASCII,
    // so UTF-16LE shows a zero second byte and UTF-8 does not.
    match bytes {
        [_, 0, ..] => decode_utf16le(bytes, 0),
        _ => decode_utf8(bytes, 0),
    }
}

fn decode_utf8(bytes: &[u8], base: usize) -> Result<String, XmlError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|e| XmlError::Encoding {
            encoding: "UTF-8",
            offset: base + e.valid_up_to(),
            reason: "invalid byte sequence",
        })
}

fn decode_utf16le(bytes: &[u8], base: usize) -> Result<String, XmlError> {
    if bytes.len() % 2 != 0 {
        return Err(XmlError::Encoding {
            encoding: "UTF-16LE",
            offset: base + bytes.len() - 1,
            reason: "odd number of bytes",
        });
    }
    let units = bytes
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]));
    let mut out = String::with_capacity(bytes.len() / 2);
    let mut offset = base;
    for r in char::decode_utf16(units) {
        match r {
            Ok(c) => {
                out.push(c);
                offset += c.len_utf16() * 2;
            }
            Err(_) => {
                return Err(XmlError::Encoding {
                    encoding: "UTF-16LE",
                    offset,
                    reason: "unpaired surrogate",
                })
            }
        }
    }
    Ok(out)
}

fn from_root(root: XmlNode) -> Result<WimInfo, XmlError> {
    if root.name != "WIM" {
        return Err(XmlError::WrongRoot { found: root.name });
    }
    let mut info = WimInfo::default();
    let mut indexed: Vec<(u32, ImageInfo)> = Vec::new();
    for child in root.children {
        match child.name.as_str() {
            "IMAGE" => {
                let position = indexed.len() + 1;
                let index = image_index(&child, position)?;
                indexed.push((index, image_from(child)));
            }
            "TOTALBYTES" if info.total_bytes.is_none() => {
                match child.simple_text().and_then(parse_dec) {
                    Some(v) => info.total_bytes = Some(v),
                    None => info.extra.push(child),
                }
            }
            _ => info.extra.push(child),
        }
    }
    info.images = order_images(indexed)?;
    Ok(info)
}

fn image_index(node: &XmlNode, position: usize) -> Result<u32, XmlError> {
    let bad = |problem: String| XmlError::BadIndex { position, problem };
    let Some((_, value)) = node.attributes.iter().find(|(k, _)| k == "INDEX") else {
        return Err(bad("no INDEX attribute".into()));
    };
    match parse_dec(value).and_then(|v| u32::try_from(v).ok()) {
        Some(0) | None => Err(bad(format!("INDEX=\"{value}\", not a number from 1"))),
        Some(i) => Ok(i),
    }
}

/// Orders images by INDEX and checks the indices are exactly 1..=n.
fn order_images(mut indexed: Vec<(u32, ImageInfo)>) -> Result<Vec<ImageInfo>, XmlError> {
    indexed.sort_by_key(|(i, _)| *i);
    let count = indexed.len();
    let mut images = Vec::with_capacity(count);
    let mut expected: u32 = 1;
    for (index, image) in indexed {
        if index < expected {
            return Err(XmlError::DuplicateIndex { index });
        }
        if index > expected {
            return Err(XmlError::MissingIndex {
                index: expected,
                count,
            });
        }
        images.push(image);
        expected = expected.saturating_add(1);
    }
    Ok(images)
}

/// Decimal number as wimlib writes it; surrounding whitespace tolerated.
fn parse_dec(s: &str) -> Option<u64> {
    let s = s.trim_matches(|c: char| c.is_ascii_whitespace());
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `0x%08X` (the `0x` is optional, as with `strtoull(.., 16)`).
fn parse_hex32(s: &str) -> Option<u32> {
    let s = s.trim_matches(|c: char| c.is_ascii_whitespace());
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// A FILETIME split into HIGHPART and LOWPART; a missing or malformed half
/// reads as 0, as in wimlib.
fn parse_time(node: &XmlNode) -> u64 {
    let part = |name: &str| {
        node.child(name)
            .and_then(XmlNode::simple_text)
            .and_then(parse_hex32)
            .unwrap_or(0)
    };
    (u64::from(part("HIGHPART")) << 32) | u64::from(part("LOWPART"))
}

/// Sets `slot` from `node` if it is the first occurrence and holds a plain
/// value that `conv` accepts; otherwise hands the node back to be preserved.
fn take<T>(
    slot: &mut Option<T>,
    node: XmlNode,
    conv: impl FnOnce(&str) -> Option<T>,
) -> Option<XmlNode> {
    if slot.is_none() {
        if let Some(v) = node.simple_text().and_then(conv) {
            *slot = Some(v);
            return None;
        }
    }
    Some(node)
}

fn text(s: &str) -> Option<String> {
    Some(s.to_owned())
}

fn image_from(node: XmlNode) -> ImageInfo {
    let mut img = ImageInfo::default();
    // The counts are not optional in the struct, so remember which we have
    // seen to send a duplicate to `extra` instead of overwriting.
    let mut seen = [false; 6];
    for child in node.children {
        let leftover = match child.name.as_str() {
            "NAME" => take(&mut img.name, child, text),
            "DESCRIPTION" => take(&mut img.description, child, text),
            "DISPLAYNAME" => take(&mut img.display_name, child, text),
            "DISPLAYDESCRIPTION" => take(&mut img.display_description, child, text),
            "FLAGS" => take(&mut img.flags, child, text),
            "WINDOWS" if img.windows.is_none() && child.is_plain_container() => {
                img.windows = Some(windows_from(child));
                None
            }
            name => {
                let slot = match name {
                    "DIRCOUNT" => Some((0, &mut img.dir_count)),
                    "FILECOUNT" => Some((1, &mut img.file_count)),
                    "TOTALBYTES" => Some((2, &mut img.total_bytes)),
                    "HARDLINKBYTES" => Some((3, &mut img.hard_link_bytes)),
                    "CREATIONTIME" => Some((4, &mut img.creation_time)),
                    "LASTMODIFICATIONTIME" => Some((5, &mut img.last_modification_time)),
                    _ => None,
                };
                match slot {
                    Some((i, value)) if !seen[i] => {
                        seen[i] = true;
                        *value = if i >= 4 {
                            parse_time(&child)
                        } else {
                            // Malformed counts read as 0, as in wimlib; they
                            // are recomputed whenever an image is written.
                            child.simple_text().and_then(parse_dec).unwrap_or(0)
                        };
                        None
                    }
                    Some(_) => Some(child),
                    // Every WIMBOOT element is consumed: a flag has no
                    // value to preserve beyond "set by any of them".
                    None if name == "WIMBOOT" => {
                        img.wimboot |= child
                            .simple_text()
                            .and_then(parse_dec)
                            .is_some_and(|v| v != 0);
                        None
                    }
                    None => Some(child),
                }
            }
        };
        img.extra.extend(leftover);
    }
    img
}

fn windows_from(node: XmlNode) -> WindowsInfo {
    let mut w = WindowsInfo::default();
    for child in node.children {
        let leftover = match child.name.as_str() {
            "ARCH" => take(&mut w.arch, child, |s| {
                parse_dec(s).and_then(|v| u32::try_from(v).ok())
            }),
            "PRODUCTNAME" => take(&mut w.product_name, child, text),
            "EDITIONID" => take(&mut w.edition_id, child, text),
            "INSTALLATIONTYPE" => take(&mut w.installation_type, child, text),
            "HAL" => take(&mut w.hal, child, text),
            "PRODUCTTYPE" => take(&mut w.product_type, child, text),
            "PRODUCTSUITE" => take(&mut w.product_suite, child, text),
            "SYSTEMROOT" => take(&mut w.system_root, child, text),
            // Several LANGUAGES elements are merged into one: they would be
            // written back as one anyway.
            "LANGUAGES" if child.is_plain_container() => {
                for lang in child.children {
                    let leftover = match lang.name.as_str() {
                        "LANGUAGE" => match lang.simple_text() {
                            Some(t) => {
                                w.languages.push(t.to_owned());
                                None
                            }
                            None => Some(lang),
                        },
                        "DEFAULT" => take(&mut w.default_language, lang, text),
                        _ => Some(lang),
                    };
                    w.languages_extra.extend(leftover);
                }
                None
            }
            "VERSION" if w.version.is_none() && child.is_plain_container() => {
                w.version = Some(version_from(child));
                None
            }
            _ => Some(child),
        };
        w.extra.extend(leftover);
    }
    w
}

fn version_from(node: XmlNode) -> WindowsVersion {
    let mut v = WindowsVersion::default();
    for child in node.children {
        let leftover = match child.name.as_str() {
            "MAJOR" => take(&mut v.major, child, parse_dec),
            "MINOR" => take(&mut v.minor, child, parse_dec),
            "BUILD" => take(&mut v.build, child, parse_dec),
            "SPBUILD" => take(&mut v.spbuild, child, parse_dec),
            "SPLEVEL" => take(&mut v.splevel, child, parse_dec),
            "BRANCH" => take(&mut v.branch, child, text),
            _ => Some(child),
        };
        v.extra.extend(leftover);
    }
    v
}

#[cfg(test)]
mod tests;
