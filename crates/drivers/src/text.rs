//! INF bytes → text. Windows reads an INF as UTF-16 when it starts with a
//! byte order mark (`FF FE` little-endian, `FE FF` big-endian), as UTF-8 after
//! `EF BB BF`, and otherwise in the system's ANSI code page. Here ANSI means
//! Windows-1252 (the code page of the en-US images this engine builds), with
//! one concession: a BOM-less file that is valid UTF-8 is read as UTF-8,
//! since plain ASCII (nearly every INF) reads the same either way and
//! non-ASCII valid UTF-8 is far likelier than the same bytes meant as 1252.
//!
//! Errors carry the 1-based line where decoding failed, so the caller can
//! name the file and line.

/// What kind of text the bytes held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf16Le,
    Utf16Be,
    Utf8Bom,
    Utf8,
    Windows1252,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// 1-based line of the bad bytes.
    pub line: usize,
    pub reason: String,
}

/// Decodes a whole INF. Line ends are kept as they are.
pub fn decode(bytes: &[u8]) -> Result<(String, Encoding), DecodeError> {
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, u16::from_le_bytes).map(|s| (s, Encoding::Utf16Le));
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, u16::from_be_bytes).map(|s| (s, Encoding::Utf16Be));
    }
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return match std::str::from_utf8(rest) {
            Ok(s) => no_nul(s).map(|s| (s, Encoding::Utf8Bom)),
            Err(e) => Err(DecodeError {
                line: line_of(rest, e.valid_up_to()),
                reason: "invalid UTF-8 after a UTF-8 byte order mark".into(),
            }),
        };
    }
    if let Some(pos) = bytes.iter().position(|&b| b == 0) {
        return Err(DecodeError {
            line: line_of(bytes, pos),
            reason: "NUL byte in an ANSI file (UTF-16 without a byte order mark?)".into(),
        });
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok((s.to_string(), Encoding::Utf8)),
        Err(_) => Ok((
            bytes.iter().map(|&b| cp1252(b)).collect(),
            Encoding::Windows1252,
        )),
    }
}

fn no_nul(s: &str) -> Result<String, DecodeError> {
    match s.find('\0') {
        Some(pos) => Err(DecodeError {
            line: line_of(s.as_bytes(), pos),
            reason: "NUL character in the text".into(),
        }),
        None => Ok(s.to_string()),
    }
}

/// 1-based line number of byte offset `pos` in single-byte text.
fn line_of(bytes: &[u8], pos: usize) -> usize {
    1 + bytes
        .get(..pos)
        .unwrap_or(bytes)
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Result<String, DecodeError> {
    let units = bytes.chunks_exact(2).map(|c| unit([c[0], c[1]]));
    let mut out = String::with_capacity(bytes.len() / 2);
    let mut line = 1;
    for ch in char::decode_utf16(units) {
        match ch {
            Ok('\0') => {
                return Err(DecodeError {
                    line,
                    reason: "NUL character in the text".into(),
                })
            }
            Ok(c) => {
                if c == '\n' {
                    line += 1;
                }
                out.push(c);
            }
            Err(e) => {
                return Err(DecodeError {
                    line,
                    reason: format!("unpaired UTF-16 surrogate {:#06x}", e.unpaired_surrogate()),
                })
            }
        }
    }
    if bytes.len() % 2 == 1 {
        return Err(DecodeError {
            line,
            reason: "odd number of bytes in a UTF-16 file (truncated?)".into(),
        });
    }
    Ok(out)
}

/// Windows-1252: Latin-1 except 0x80–0x9F; the five unassigned bytes map to
/// the C1 control of the same value (as Windows' MultiByteToWideChar does).
fn cp1252(b: u8) -> char {
    const HIGH: [u16; 32] = [
        0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
        0x2039, 0x0152, 0x8D, 0x017D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013,
        0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
    ];
    match b {
        0x80..=0x9F => HIGH
            .get(usize::from(b - 0x80))
            .and_then(|&u| char::from_u32(u32::from(u)))
            .unwrap_or('\u{FFFD}'),
        _ => char::from(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le(s: &str) -> Vec<u8> {
        let mut v = vec![0xFF, 0xFE];
        for u in s.encode_utf16() {
            v.extend_from_slice(&u.to_le_bytes());
        }
        v
    }

    #[test]
    fn boms_pick_the_encoding() {
        let (s, e) = decode(&utf16le("[Version]\r\nÄ=1")).unwrap();
        assert_eq!((s.as_str(), e), ("[Version]\r\nÄ=1", Encoding::Utf16Le));
        let mut be = vec![0xFE, 0xFF];
        for u in "[X]".encode_utf16() {
            be.extend_from_slice(&u.to_be_bytes());
        }
        assert_eq!(decode(&be).unwrap(), ("[X]".to_string(), Encoding::Utf16Be));
        let (s, e) = decode(b"\xEF\xBB\xBF[V]\n\xC3\xA4").unwrap();
        assert_eq!((s.as_str(), e), ("[V]\nä", Encoding::Utf8Bom));
        // ANSI: 0xE4 is ä and 0x80 the euro sign in Windows-1252.
        let (s, e) = decode(b"a=\xE4\x80").unwrap();
        assert_eq!((s.as_str(), e), ("a=ä€", Encoding::Windows1252));
    }

    #[test]
    fn bad_bytes_name_their_line() {
        // Unpaired high surrogate on line 3.
        let mut v = utf16le("a\nb\n");
        v.extend_from_slice(&0xD800u16.to_le_bytes());
        v.extend_from_slice(&u16::from(b'x').to_le_bytes());
        let e = decode(&v).unwrap_err();
        assert_eq!(e.line, 3, "{e:?}");
        assert!(e.reason.contains("surrogate"));
        let mut odd = utf16le("a\n");
        odd.push(b'x');
        assert_eq!(decode(&odd).unwrap_err().line, 2);
        let e = decode(b"\xEF\xBB\xBFa\nb\n\xFF").unwrap_err();
        assert_eq!(e.line, 3);
        // UTF-16 without a BOM looks like NULs in ANSI.
        let e = decode(b"[\0V\0]\0").unwrap_err();
        assert!(e.reason.contains("NUL"), "{e:?}");
    }
}
