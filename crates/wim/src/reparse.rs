//! Symbolic link and junction reparse data, in the layout Windows uses and
//! the way wimlib maps UNIX symlinks onto it, so that a link captured here
//! applies as the same link with wimlib or on Windows.
//!
//! The reparse *stream* stored in a WIM holds only the data after the
//! 8-byte {tag, length, reserved} header; the tag lives in the dentry.

use crate::error::{Result, WimError};
use crate::image::{IO_REPARSE_TAG_MOUNT_POINT, IO_REPARSE_TAG_SYMLINK};
use crate::reshdr::{le16, le32};

/// Largest reparse buffer Windows allows, header included.
pub const REPARSE_POINT_MAX_SIZE: usize = 16 * 1024;
const SYMLINK_FLAG_RELATIVE: u32 = 1;

/// A symlink or junction decoded from reparse data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkReparse {
    pub tag: u32,
    pub substitute_name: String,
    pub print_name: String,
    /// Symlink with SYMBOLIC_LINK_RELATIVE set.
    pub relative: bool,
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|c| c.to_le_bytes()).collect()
}

fn from_utf16le(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

/// Reparse data (without the 8-byte header) for a UNIX symlink target, as
/// wimlib stores it: `/` and `\` swapped; an absolute target gets the dummy
/// NT prefix `\??\C:` and a print name without `\??\`; a relative one sets
/// SYMBOLIC_LINK_RELATIVE.
pub fn symlink_reparse_from_unix(target: &str) -> Result<Vec<u8>> {
    let swapped: String = target
        .chars()
        .map(|c| match c {
            '/' => '\\',
            '\\' => '/',
            c => c,
        })
        .collect();
    let absolute = swapped.starts_with('\\') || swapped.is_empty();
    let (subst, print, flags) = if absolute {
        let s = format!("\\??\\C:{swapped}");
        let p = s[4..].to_string();
        (s, p, 0)
    } else {
        (swapped.clone(), swapped, SYMLINK_FLAG_RELATIVE)
    };
    let sb = utf16le(&subst);
    let pb = utf16le(&print);
    if 20 + sb.len() + pb.len() + 4 > REPARSE_POINT_MAX_SIZE {
        return Err(WimError::InvalidArgument(format!(
            "symlink target too long: {target}"
        )));
    }
    let mut out = Vec::with_capacity(12 + sb.len() + pb.len() + 4);
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(sb.len() as u16).to_le_bytes());
    out.extend_from_slice(&((sb.len() + 2) as u16).to_le_bytes());
    out.extend_from_slice(&(pb.len() as u16).to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&sb);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&pb);
    out.extend_from_slice(&[0, 0]);
    Ok(out)
}

/// Decodes symlink or junction reparse data (without the 8-byte header).
pub fn parse_link_reparse(tag: u32, data: &[u8]) -> Result<LinkReparse> {
    let bad = |r: &str| WimError::InvalidArgument(format!("invalid link reparse data: {r}"));
    let names_at = match tag {
        IO_REPARSE_TAG_SYMLINK => 12,
        IO_REPARSE_TAG_MOUNT_POINT => 8,
        _ => return Err(bad("not a symlink or junction")),
    };
    if data.len() < names_at {
        return Err(bad("too short"));
    }
    let so = le16(&data[0..]) as usize;
    let sl = le16(&data[2..]) as usize;
    let po = le16(&data[4..]) as usize;
    let pl = le16(&data[6..]) as usize;
    if (so | sl | po | pl) & 1 != 0 {
        return Err(bad("misaligned names"));
    }
    let names = &data[names_at..];
    if so + sl > names.len() || po + pl > names.len() {
        return Err(bad("names overrun the buffer"));
    }
    let relative = tag == IO_REPARSE_TAG_SYMLINK && le32(&data[8..]) & SYMLINK_FLAG_RELATIVE != 0;
    Ok(LinkReparse {
        tag,
        substitute_name: from_utf16le(&names[so..so + sl]),
        print_name: from_utf16le(&names[po..po + pl]),
        relative,
    })
}

/// The UNIX symlink target for a link, as wimlib computes it when applying
/// on UNIX without reparse-point fixups: an NT device prefix such as
/// `\??\C:` is stripped from absolute targets, then `\` and `/` swap back.
pub fn unix_target_from_link(link: &LinkReparse) -> String {
    let t = stored_target(link);
    if t.is_empty() {
        return "/".into();
    }
    t.chars()
        .map(|c| match c {
            '\\' => '/',
            '/' => '\\',
            c => c,
        })
        .collect()
}

/// Reparse data for `link` with its absolute target re-rooted under
/// `root` (an absolute host path): wimlib's reparse-point fixup at apply.
/// A link captured with fixups holds a target relative to the image root
/// (`/lib/x` for `/usr/lib/x` captured from `/usr`); applied to `root` it
/// must point to `root/lib/x`. Relative links are returned unchanged
/// (`None`).
pub fn rerooted_link(link: &LinkReparse, root: &str) -> Result<Option<Vec<u8>>> {
    if link.relative || link.tag != IO_REPARSE_TAG_SYMLINK {
        return Ok(None);
    }
    let root = root.trim_end_matches('/');
    // An empty stored target (the link named the image root itself) is the
    // root; unix_target_from_link would make it "/".
    let target = if stored_target(link).is_empty() {
        if root.is_empty() {
            "/".to_string()
        } else {
            root.to_string()
        }
    } else {
        format!("{root}{}", unix_target_from_link(link))
    };
    symlink_reparse_from_unix(&target).map(Some)
}

/// The link's substitute name, for an absolute link without its NT device
/// prefix (`\\??\\C:`, `\\DosDevices\\X:`, `\\Device\\Name`).
fn stored_target(link: &LinkReparse) -> &str {
    let t: &str = &link.substitute_name;
    if link.relative {
        return t;
    }
    for prefix in ["\\??\\", "\\DosDevices\\", "\\Device\\"] {
        if let Some(rest) = t.strip_prefix(prefix) {
            let rest = rest.trim_start_matches('\\');
            let dev_end = rest.find('\\').unwrap_or(rest.len());
            return &rest[dev_end..];
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpfix_reroots_absolute_links_only() {
        let abs = symlink_reparse_from_unix("/lib/x").unwrap();
        let l = parse_link_reparse(IO_REPARSE_TAG_SYMLINK, &abs).unwrap();
        let fixed = rerooted_link(&l, "/mnt/target/").unwrap().unwrap();
        let f = parse_link_reparse(IO_REPARSE_TAG_SYMLINK, &fixed).unwrap();
        assert_eq!(unix_target_from_link(&f), "/mnt/target/lib/x");
        // The image root itself (stored as an empty target).
        let root = symlink_reparse_from_unix("").unwrap();
        let l = parse_link_reparse(IO_REPARSE_TAG_SYMLINK, &root).unwrap();
        let f = rerooted_link(&l, "/mnt/target").unwrap().unwrap();
        let f = parse_link_reparse(IO_REPARSE_TAG_SYMLINK, &f).unwrap();
        assert_eq!(unix_target_from_link(&f), "/mnt/target");
        let rel = symlink_reparse_from_unix("../a").unwrap();
        let l = parse_link_reparse(IO_REPARSE_TAG_SYMLINK, &rel).unwrap();
        assert_eq!(rerooted_link(&l, "/mnt/target").unwrap(), None);
    }

    #[test]
    fn unix_symlinks_round_trip() {
        for t in [
            "/usr/lib/x",
            "../a/b",
            "plain",
            "/",
            "with\\backslash",
            "dir/",
        ] {
            let data = symlink_reparse_from_unix(t).unwrap();
            let link = parse_link_reparse(IO_REPARSE_TAG_SYMLINK, &data).unwrap();
            assert_eq!(link.relative, !t.starts_with('/'));
            assert_eq!(unix_target_from_link(&link), t, "{t}");
        }
        let link = parse_link_reparse(
            IO_REPARSE_TAG_SYMLINK,
            &symlink_reparse_from_unix("/etc/x").unwrap(),
        )
        .unwrap();
        assert_eq!(link.substitute_name, "\\??\\C:\\etc\\x");
        assert_eq!(link.print_name, "C:\\etc\\x");
    }

    #[test]
    fn rejects_bad_data() {
        assert!(parse_link_reparse(IO_REPARSE_TAG_SYMLINK, &[0; 5]).is_err());
        assert!(parse_link_reparse(0x8000_0017, &[0; 40]).is_err());
        let mut d = symlink_reparse_from_unix("abc").unwrap();
        d[2] = 200; // substitute length beyond the buffer
        assert!(parse_link_reparse(IO_REPARSE_TAG_SYMLINK, &d).is_err());
    }
}
