//! Where a capture goes and as whom: the destination forms ConfigMgr's
//! capture step and Connect to Network Folder accept (`\\server\share\dir`,
//! `smb://server[:port]/share/dir`, a drive letter mapped by Connect to
//! Network Folder, or, here, a local path) and the account forms
//! (`DOMAIN\user` or `user`). Everything is checked before any work, and
//! the error says what is wrong without ever echoing a password.

use std::fmt;
use std::path::PathBuf;

/// A file or folder on an SMB share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmbLocation {
    pub server: String,
    pub port: Option<u16>,
    pub share: String,
    /// Path components inside the share.
    pub path: Vec<String>,
}

/// Characters Windows refuses in a file, folder or share name.
fn bad_name_char(c: char) -> bool {
    c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|')
}

fn check_component(what: &str, s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if s == "." || s == ".." {
        return Err(format!("{what} {s:?} is not allowed"));
    }
    if let Some(c) = s.chars().find(|&c| bad_name_char(c)) {
        return Err(format!("{what} {s:?} contains the character {c:?}"));
    }
    if s.ends_with(' ') || s.ends_with('.') {
        return Err(format!("{what} {s:?} ends with a space or a dot"));
    }
    Ok(())
}

fn check_server(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "server name {s:?} is not a host name or IPv4 address"
        ))
    }
}

/// `server` or `server:port`. A port in a UNC path (`\\server:port\share`)
/// is tasq's extension for servers off port 445; Windows has no such form.
fn host_port(host: &str, whole: &str) -> Result<(String, Option<u16>), String> {
    let (server, port) = match host.rsplit_once(':') {
        Some((h, p)) => {
            let port = p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("port {p:?} in {whole:?} is not a port number"))?;
            (h, Some(port))
        }
        None => (host, None),
    };
    check_server(server)?;
    Ok((server.to_string(), port))
}

impl SmbLocation {
    /// `\\server\share[\dir...]`.
    pub fn parse_unc(s: &str) -> Result<SmbLocation, String> {
        let rest = s
            .strip_prefix("\\\\")
            .ok_or_else(|| format!("{s:?} does not start with \\\\server\\share"))?;
        let mut parts = rest.split('\\');
        let (server, port) = host_port(parts.next().unwrap_or(""), s)?;
        Self::from_parts(server, port, parts, s)
    }

    /// `smb://server[:port]/share[/dir...]`.
    pub fn parse_url(s: &str) -> Result<SmbLocation, String> {
        let rest = s
            .get(..6)
            .filter(|p| p.eq_ignore_ascii_case("smb://"))
            .and_then(|_| s.get(6..))
            .ok_or_else(|| format!("{s:?} does not start with smb://"))?;
        if rest.contains('@') || rest.contains(';') {
            return Err(
                "credentials do not belong in the smb:// address; use the account setting".into(),
            );
        }
        let mut parts = rest.split('/');
        let (server, port) = host_port(parts.next().unwrap_or(""), s)?;
        Self::from_parts(server, port, parts, s)
    }

    fn from_parts<'a>(
        server: String,
        port: Option<u16>,
        mut parts: impl Iterator<Item = &'a str>,
        whole: &str,
    ) -> Result<SmbLocation, String> {
        let share = parts.next().unwrap_or("");
        check_component("share name", share).map_err(|e| format!("{whole:?}: {e}"))?;
        let mut path = Vec::new();
        for p in parts {
            // A trailing separator (`\\srv\share\dir\`) names the same folder.
            if p.is_empty() {
                continue;
            }
            check_component("name", p).map_err(|e| format!("{whole:?}: {e}"))?;
            path.push(p.to_string());
        }
        Ok(SmbLocation {
            server,
            port,
            share: share.to_string(),
            path,
        })
    }

    /// Either form.
    pub fn parse(s: &str) -> Result<SmbLocation, String> {
        if s.starts_with("\\\\") {
            Self::parse_unc(s)
        } else {
            Self::parse_url(s)
        }
    }

    pub fn join(&self, more: &[String]) -> SmbLocation {
        let mut l = self.clone();
        l.path.extend(more.iter().cloned());
        l
    }

    /// The share root (no path).
    pub fn share_root(&self) -> SmbLocation {
        SmbLocation {
            path: Vec::new(),
            ..self.clone()
        }
    }

    /// `smb://server[:port]/share/a/b`, the form kept in variables.
    pub fn to_url(&self) -> String {
        let mut s = format!("smb://{}", self.server);
        if let Some(p) = self.port {
            s.push_str(&format!(":{p}"));
        }
        s.push('/');
        s.push_str(&self.share);
        for c in &self.path {
            s.push('/');
            s.push_str(c);
        }
        s
    }
}

/// `\\server\share\dir\file` (with `:port` after the server when not 445),
/// for messages; never holds credentials.
impl fmt::Display for SmbLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\\\\{}", self.server)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "\\{}", self.share)?;
        for c in &self.path {
            write!(f, "\\{c}")?;
        }
        Ok(())
    }
}

/// A capture account: `DOMAIN\user` or `user`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub domain: Option<String>,
    pub user: String,
}

impl Account {
    pub fn parse(s: &str) -> Result<Account, String> {
        let (domain, user) = match s.split_once('\\') {
            Some((d, u)) => (Some(d), u),
            None => (None, s),
        };
        let name_ok = |x: &str| {
            !x.is_empty()
                && x.len() <= 104
                && !x.chars().any(|c| {
                    c.is_control()
                        || matches!(
                            c,
                            '\\' | '/'
                                | '"'
                                | '['
                                | ']'
                                | ':'
                                | '|'
                                | '<'
                                | '>'
                                | '+'
                                | '='
                                | ';'
                                | ','
                                | '?'
                                | '*'
                                | '@'
                        )
                })
        };
        if let Some(d) = domain {
            if !name_ok(d) {
                return Err(format!("{s:?} is not DOMAIN\\user: bad domain part"));
            }
        }
        if !name_ok(user) {
            return Err(format!("{s:?} is not DOMAIN\\user or user"));
        }
        Ok(Account {
            domain: domain.map(str::to_string),
            user: user.to_string(),
        })
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.domain {
            Some(d) => write!(f, "{d}\\{}", self.user),
            None => f.write_str(&self.user),
        }
    }
}

/// Where the WIM goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Local(PathBuf),
    Smb(SmbLocation),
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Local(p) => write!(f, "{}", p.display()),
            Destination::Smb(l) => l.fmt(f),
        }
    }
}

/// What a drive letter resolves to for a capture destination.
pub enum DriveTarget {
    /// Mapped by Connect to Network Folder.
    Network(SmbLocation),
    /// A host directory (full-OS drive).
    HostDir(PathBuf),
}

/// Parses a capture destination. `drive` resolves `Z:` to what the letter
/// points at (`None`: not a letter the capture can write to).
pub fn parse_destination(
    raw: &str,
    drive: &dyn Fn(char) -> Option<DriveTarget>,
) -> Result<Destination, String> {
    let s = raw.trim();
    if s.is_empty() || s.len() > 255 {
        return Err("must be 1 to 255 characters".into());
    }
    let dest = if s.starts_with("\\\\")
        || s.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("smb://"))
    {
        Destination::Smb(SmbLocation::parse(s)?)
    } else if let Some((letter, rest)) = crate::volumes::split_drive_path(s) {
        let comps: Vec<String> = rest
            .split('\\')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        for c in &comps {
            check_component("name", c).map_err(|e| format!("{s:?}: {e}"))?;
        }
        match drive(letter) {
            Some(DriveTarget::Network(l)) => Destination::Smb(l.join(&comps)),
            Some(DriveTarget::HostDir(p)) => {
                Destination::Local(comps.iter().fold(p, |acc, c| acc.join(c)))
            }
            None => {
                return Err(format!(
                    "drive {letter}: is not a network folder (connect it with Connect to Network Folder first) nor a host directory; a capture cannot be written onto a volume of the computer being captured"
                ))
            }
        }
    } else if s.starts_with('/') {
        let p = PathBuf::from(s);
        if p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(format!("{s:?} contains \"..\""));
        }
        Destination::Local(p)
    } else {
        return Err(format!(
            "{s:?} is not \\\\server\\share\\dir\\file.wim, smb://server/share/dir/file.wim, a drive path or an absolute local path"
        ));
    };
    let file = match &dest {
        Destination::Local(p) => p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        Destination::Smb(l) => l.path.last().cloned().unwrap_or_default(),
    };
    let is_wim = file.len() > 4
        && file
            .get(file.len() - 4..)
            .is_some_and(|e| e.eq_ignore_ascii_case(".wim"));
    if !is_wim {
        return Err(format!("{s:?} does not name a .wim file"));
    }
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: char) -> Option<DriveTarget> {
        None
    }

    #[test]
    fn unc_and_url_forms() {
        let a = SmbLocation::parse("\\\\fs01\\images\\ref\\w11.wim").unwrap();
        assert_eq!(a.server, "fs01");
        assert_eq!(a.port, None);
        assert_eq!(a.share, "images");
        assert_eq!(a.path, ["ref", "w11.wim"]);
        assert_eq!(a.to_string(), "\\\\fs01\\images\\ref\\w11.wim");
        let b = SmbLocation::parse("smb://127.0.0.1:4455/images/ref/w11.wim").unwrap();
        assert_eq!(b.port, Some(4455));
        assert_eq!(b.to_string(), "\\\\127.0.0.1:4455\\images\\ref\\w11.wim");
        assert_eq!(SmbLocation::parse(&b.to_url()).unwrap(), b);
        assert_eq!(SmbLocation::parse(&b.to_string()).unwrap(), b);
        for bad in [
            "\\\\\\share\\x.wim",
            "\\\\srv",
            "\\\\srv\\",
            "\\\\srv\\sh\\..\\x.wim",
            "\\\\srv\\sh\\a*b.wim",
            "smb://srv:0/s/x.wim",
            "smb://srv:99999/s/x.wim",
            "smb://user:pw@srv/s/x.wim",
            "\\\\sr v\\s\\x.wim",
        ] {
            assert!(SmbLocation::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn destinations() {
        assert_eq!(
            parse_destination("/srv/out/ref.WIM", &none).unwrap(),
            Destination::Local(PathBuf::from("/srv/out/ref.WIM"))
        );
        assert!(parse_destination("/srv/../etc/x.wim", &none).is_err());
        assert!(parse_destination("\\\\srv\\share\\ref.txt", &none)
            .unwrap_err()
            .contains(".wim"));
        assert!(parse_destination("relative\\x.wim", &none).is_err());
        assert!(parse_destination("", &none).is_err());
        assert!(parse_destination(&format!("/{}.wim", "a".repeat(300)), &none).is_err());
        let z = |c: char| {
            (c == 'Z')
                .then(|| DriveTarget::Network(SmbLocation::parse("\\\\srv\\share\\base").unwrap()))
        };
        assert_eq!(
            parse_destination("Z:\\caps\\ref.wim", &z).unwrap(),
            Destination::Smb(SmbLocation::parse("\\\\srv\\share\\base\\caps\\ref.wim").unwrap())
        );
        let e = parse_destination("C:\\ref.wim", &z).unwrap_err();
        assert!(e.contains("drive C:"), "{e}");
    }

    #[test]
    fn accounts() {
        let a = Account::parse("CONTOSO\\svc_cap").unwrap();
        assert_eq!(a.domain.as_deref(), Some("CONTOSO"));
        assert_eq!(a.user, "svc_cap");
        assert_eq!(a.to_string(), "CONTOSO\\svc_cap");
        assert_eq!(Account::parse("bob").unwrap().domain, None);
        for bad in ["", "\\bob", "DOM\\", "a\\b\\c", "bo b@x", "x\u{7}"] {
            assert!(Account::parse(bad).is_err(), "{bad:?}");
        }
    }
}
