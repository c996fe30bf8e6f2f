//! The Windows Setup answer file (`unattend.xml`) that Apply Windows
//! Settings, Apply Network Settings and Setup Windows and ConfigMgr write to
//! `Windows\Panther\Unattend\unattend.xml` on the target volume.
//!
//! Everything comes from the task sequence variables (`Settings::from_env`),
//! so each step regenerates the whole file and a later step's file holds an
//! earlier step's settings. Values are checked here and every error names
//! the variable. The layout (namespaces, passes, component attributes,
//! `wcm:action`/`wcm:keyValue` list items) is that of real answer files
//! (`shared/samples/unattend/`); `parse` reads such files back into the same
//! element tree for checks.
//!
//! Passwords: the administrator password is stored the way Windows System
//! Image Manager hides it (base64 of UTF-16LE of the password followed by
//! the field name, `PlainText` false). The domain-join password has no
//! hidden form in the unattend schema, so it is written as given (Windows
//! Setup blanks it after use); neither ever goes to the log.

use crate::env::Environment;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use std::fmt;

pub const NS_UNATTEND: &str = "urn:schemas-microsoft-com:unattend";
pub const NS_WCM: &str = "http://schemas.microsoft.com/WMIConfig/2002/State";
pub const NS_XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
pub const PUBLIC_KEY_TOKEN: &str = "31bf3856ad364e35";

/// Engine variable: the driver folders (semicolon-separated) that the
/// driver steps staged; listed in the `offlineServicing` pass.
pub const VAR_DRIVER_PATHS: &str = "_TSQDriverPaths";
/// Engine variable: the applied image's architecture (`amd64`, `x86`,
/// `arm64`), when the Apply Operating System step knows it; otherwise the
/// computer's architecture is used.
pub const VAR_IMAGE_ARCH: &str = "_TSQImageArchitecture";
/// Engine variable (secret): the generated administrator password, kept so
/// that regenerating the file does not change it.
pub const VAR_RANDOM_ADMIN_PASSWORD: &str = "_TSQRandomAdminPassword";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct UnattendError {
    /// The variable at fault, when there is one.
    pub variable: Option<String>,
    pub message: String,
}

impl fmt::Display for UnattendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.variable {
            Some(v) => write!(f, "{v}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

fn bad(var: &str, message: impl Into<String>) -> UnattendError {
    UnattendError {
        variable: Some(var.to_string()),
        message: message.into(),
    }
}

// ---- element tree ----

/// An XML element: qualified name (`wcm:action` style prefixes kept as
/// written), attributes in order, text, children.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn new(name: &str) -> Element {
        Element {
            name: name.to_string(),
            ..Element::default()
        }
    }
    pub fn attr(mut self, name: &str, value: &str) -> Element {
        self.attrs.push((name.to_string(), value.to_string()));
        self
    }
    pub fn text(name: &str, text: &str) -> Element {
        Element {
            name: name.to_string(),
            text: text.to_string(),
            ..Element::default()
        }
    }
    pub fn child(mut self, c: Element) -> Element {
        self.children.push(c);
        self
    }
    pub fn push(&mut self, c: Element) {
        self.children.push(c);
    }
    pub fn get_attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    /// The first child named `name`.
    pub fn find(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
    /// Follows a `/`-separated path of child names.
    pub fn path(&self, path: &str) -> Option<&Element> {
        path.split('/')
            .filter(|s| !s.is_empty())
            .try_fold(self, |e, n| e.find(n))
    }
}

/// Writes the tree as an XML document (UTF-8, declaration, 4-space indent
/// as in the samples).
pub fn to_xml(root: &Element) -> String {
    let mut w = quick_xml::Writer::new_with_indent(Vec::new(), b' ', 4);
    // Writing into a Vec cannot fail; errors are still passed up rather
    // than unwrapped.
    let _ = write_doc(&mut w, root);
    String::from_utf8_lossy(&w.into_inner()).into_owned()
}

fn write_doc(w: &mut quick_xml::Writer<Vec<u8>>, root: &Element) -> std::io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))?;
    write_el(w, root)
}

fn write_el(w: &mut quick_xml::Writer<Vec<u8>>, e: &Element) -> std::io::Result<()> {
    let mut start = BytesStart::new(e.name.as_str());
    for (n, v) in &e.attrs {
        start.push_attribute((n.as_str(), v.as_str()));
    }
    if e.children.is_empty() && e.text.is_empty() {
        return w.write_event(Event::Empty(start));
    }
    w.write_event(Event::Start(start))?;
    if !e.text.is_empty() {
        w.write_event(Event::Text(BytesText::new(&e.text)))?;
    }
    for c in &e.children {
        write_el(w, c)?;
    }
    w.write_event(Event::End(BytesEnd::new(e.name.as_str())))
}

/// Reads an answer file into the element tree. Element names keep their
/// prefix only for the `wcm` namespace (as in `wcm:action`); namespace
/// declarations are kept as `xmlns`/`xmlns:x` attributes.
pub fn parse(text: &str) -> Result<Element, UnattendError> {
    // A BOM before the declaration is common in hand-edited files.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let doc = roxmltree::Document::parse(text).map_err(|e| UnattendError {
        variable: None,
        message: format!("not well-formed XML: {e}"),
    })?;
    let root = doc.root_element();
    if root.tag_name().name() != "unattend" || root.tag_name().namespace() != Some(NS_UNATTEND) {
        return Err(UnattendError {
            variable: None,
            message: format!(
                "the root element is {:?}, not unattend in {NS_UNATTEND}",
                root.tag_name().name()
            ),
        });
    }
    Ok(read_node(root))
}

fn qualified(ns: Option<&str>, local: &str) -> String {
    match ns {
        Some(NS_WCM) => format!("wcm:{local}"),
        Some("urn:schemas-microsoft-com:cpi") => format!("cpi:{local}"),
        _ => local.to_string(),
    }
}

fn read_node(n: roxmltree::Node) -> Element {
    let mut e = Element::new(&qualified(n.tag_name().namespace(), n.tag_name().name()));
    // Only declarations written on this element (roxmltree lists the
    // inherited ones too).
    for x in n.namespaces() {
        let key = (x.name().map(str::to_string), x.uri().to_string());
        if declared_here(n, &key) {
            let name = match x.name() {
                Some(p) => format!("xmlns:{p}"),
                None => "xmlns".to_string(),
            };
            e.attrs.push((name, x.uri().to_string()));
        }
    }
    for a in n.attributes() {
        e.attrs
            .push((qualified(a.namespace(), a.name()), a.value().to_string()));
    }
    for c in n.children() {
        if c.is_element() {
            e.children.push(read_node(c));
        } else if c.is_text() {
            e.text.push_str(c.text().unwrap_or(""));
        }
    }
    // Leaf text is a value and stays as written; between child elements
    // it is only indentation.
    if !e.children.is_empty() {
        e.text = e.text.trim().to_string();
    }
    e
}

/// roxmltree reports inherited namespaces too; a redeclaration of the same
/// binding (as the samples do on `<settings>`) still counts as declared here.
fn declared_here(n: roxmltree::Node, key: &(Option<String>, String)) -> bool {
    let src = n.document().input_text();
    let r = n.range();
    let head_end = src
        .get(r.start..r.end)
        .and_then(|s| s.find('>'))
        .map(|i| r.start + i)
        .unwrap_or(r.start);
    let head = src.get(r.start..head_end).unwrap_or("");
    let name = match &key.0 {
        Some(p) => format!("xmlns:{p}"),
        None => "xmlns".to_string(),
    };
    ['"', '\''].iter().any(|q| {
        head.contains(&format!("{name}={q}{}{q}", key.1))
            || head.contains(&format!("{name} = {q}{}{q}", key.1))
    })
}

// ---- passwords ----

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for chunk in s.as_bytes().chunks(4) {
        let mut n = 0u32;
        let mut pad = 0;
        for (i, &c) in chunk.iter().enumerate() {
            let v = match c {
                b'=' if i >= 2 => {
                    pad += 1;
                    0
                }
                _ if pad > 0 => return None,
                _ => B64.iter().position(|&x| x == c)? as u32,
            };
            n = (n << 6) | v;
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(bytes.get(..3 - pad)?);
    }
    Some(out)
}

/// The hidden form of a password in an answer file: base64 of the UTF-16LE
/// of the password followed by the element name (`AdministratorPassword`,
/// `Password`).
pub fn encode_password(password: &str, field: &str) -> String {
    let bytes: Vec<u8> = password
        .encode_utf16()
        .chain(field.encode_utf16())
        .flat_map(u16::to_le_bytes)
        .collect();
    base64_encode(&bytes)
}

/// Reverses `encode_password`; `None` when the value is not that form.
pub fn decode_password(value: &str, field: &str) -> Option<String> {
    let bytes = base64_decode(value)?;
    if bytes.len() % 2 != 0 {
        return None;
    }
    let units: Vec<u16> = bytes
        .chunks(2)
        .map(|c| {
            u16::from_le_bytes([
                c.first().copied().unwrap_or(0),
                c.get(1).copied().unwrap_or(0),
            ])
        })
        .collect();
    let s = String::from_utf16(&units).ok()?;
    s.strip_suffix(field).map(str::to_string)
}

/// A random administrator password that meets Windows complexity rules
/// (upper, lower, digit, symbol; 24 characters).
pub fn random_password() -> Result<String, UnattendError> {
    const CLASSES: [&[u8]; 4] = [
        b"ABCDEFGHJKLMNPQRSTUVWXYZ",
        b"abcdefghijkmnopqrstuvwxyz",
        b"23456789",
        b"!#$%*+-=?@^_",
    ];
    let mut raw = [0u8; 24];
    getrandom::getrandom(&mut raw).map_err(|e| UnattendError {
        variable: None,
        message: format!("no random numbers for the administrator password: {e}"),
    })?;
    Ok(raw
        .iter()
        .enumerate()
        .map(|(i, &r)| {
            // The first four characters take one of each class.
            let class = CLASSES[if i < 4 { i } else { usize::from(r >> 6) }];
            char::from(class[usize::from(r) % class.len()])
        })
        .collect())
}

// ---- value checks ----

/// A NetBIOS/DNS computer name: 1–15 letters, digits and hyphens, not all
/// digits, no leading or trailing hyphen.
pub fn check_computer_name(var: &str, name: &str) -> Result<(), UnattendError> {
    if name.is_empty() || name.chars().count() > 15 {
        return Err(bad(
            var,
            format!("{name:?} must be 1 to 15 characters long"),
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Err(bad(
            var,
            format!("{name:?} contains {c:?}; only letters, digits and hyphens are allowed"),
        ));
    }
    if name.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad(var, format!("{name:?} must not be only digits")));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(bad(
            var,
            format!("{name:?} must not start or end with a hyphen"),
        ));
    }
    Ok(())
}

/// Five groups of five letters or digits separated by hyphens.
pub fn check_product_key(var: &str, key: &str) -> Result<(), UnattendError> {
    let groups: Vec<&str> = key.split('-').collect();
    let ok = groups.len() == 5
        && groups
            .iter()
            .all(|g| g.len() == 5 && g.chars().all(|c| c.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        // The key itself is never echoed.
        Err(bad(
            var,
            "is not a product key of the form XXXXX-XXXXX-XXXXX-XXXXX-XXXXX",
        ))
    }
}

/// Windows time zone IDs (`tzutil /l`).
pub const TIME_ZONES: &[&str] = &[
    "Dateline Standard Time",
    "UTC-11",
    "Aleutian Standard Time",
    "Hawaiian Standard Time",
    "Marquesas Standard Time",
    "Alaskan Standard Time",
    "UTC-09",
    "Pacific Standard Time (Mexico)",
    "UTC-08",
    "Pacific Standard Time",
    "US Mountain Standard Time",
    "Mountain Standard Time (Mexico)",
    "Mountain Standard Time",
    "Yukon Standard Time",
    "Central America Standard Time",
    "Central Standard Time",
    "Easter Island Standard Time",
    "Central Standard Time (Mexico)",
    "Canada Central Standard Time",
    "SA Pacific Standard Time",
    "Eastern Standard Time (Mexico)",
    "Eastern Standard Time",
    "Haiti Standard Time",
    "Cuba Standard Time",
    "US Eastern Standard Time",
    "Turks And Caicos Standard Time",
    "Paraguay Standard Time",
    "Atlantic Standard Time",
    "Venezuela Standard Time",
    "Central Brazilian Standard Time",
    "SA Western Standard Time",
    "Pacific SA Standard Time",
    "Newfoundland Standard Time",
    "Tocantins Standard Time",
    "E. South America Standard Time",
    "SA Eastern Standard Time",
    "Argentina Standard Time",
    "Greenland Standard Time",
    "Montevideo Standard Time",
    "Magallanes Standard Time",
    "Saint Pierre Standard Time",
    "Bahia Standard Time",
    "UTC-02",
    "Mid-Atlantic Standard Time",
    "Azores Standard Time",
    "Cape Verde Standard Time",
    "UTC",
    "GMT Standard Time",
    "Greenwich Standard Time",
    "Sao Tome Standard Time",
    "Morocco Standard Time",
    "W. Europe Standard Time",
    "Central Europe Standard Time",
    "Romance Standard Time",
    "Central European Standard Time",
    "W. Central Africa Standard Time",
    "Jordan Standard Time",
    "GTB Standard Time",
    "Middle East Standard Time",
    "Egypt Standard Time",
    "E. Europe Standard Time",
    "Syria Standard Time",
    "West Bank Standard Time",
    "South Africa Standard Time",
    "FLE Standard Time",
    "Israel Standard Time",
    "South Sudan Standard Time",
    "Kaliningrad Standard Time",
    "Sudan Standard Time",
    "Libya Standard Time",
    "Namibia Standard Time",
    "Arabic Standard Time",
    "Turkey Standard Time",
    "Arab Standard Time",
    "Belarus Standard Time",
    "Russian Standard Time",
    "E. Africa Standard Time",
    "Volgograd Standard Time",
    "Iran Standard Time",
    "Arabian Standard Time",
    "Astrakhan Standard Time",
    "Azerbaijan Standard Time",
    "Russia Time Zone 3",
    "Mauritius Standard Time",
    "Saratov Standard Time",
    "Georgian Standard Time",
    "Caucasus Standard Time",
    "Afghanistan Standard Time",
    "West Asia Standard Time",
    "Qyzylorda Standard Time",
    "Ekaterinburg Standard Time",
    "Pakistan Standard Time",
    "India Standard Time",
    "Sri Lanka Standard Time",
    "Nepal Standard Time",
    "Central Asia Standard Time",
    "Bangladesh Standard Time",
    "Omsk Standard Time",
    "Myanmar Standard Time",
    "SE Asia Standard Time",
    "Altai Standard Time",
    "W. Mongolia Standard Time",
    "North Asia Standard Time",
    "N. Central Asia Standard Time",
    "Tomsk Standard Time",
    "China Standard Time",
    "North Asia East Standard Time",
    "Singapore Standard Time",
    "W. Australia Standard Time",
    "Taipei Standard Time",
    "Ulaanbaatar Standard Time",
    "Aus Central W. Standard Time",
    "Transbaikal Standard Time",
    "Tokyo Standard Time",
    "North Korea Standard Time",
    "Korea Standard Time",
    "Yakutsk Standard Time",
    "Cen. Australia Standard Time",
    "AUS Central Standard Time",
    "E. Australia Standard Time",
    "AUS Eastern Standard Time",
    "West Pacific Standard Time",
    "Tasmania Standard Time",
    "Vladivostok Standard Time",
    "Lord Howe Standard Time",
    "Bougainville Standard Time",
    "Russia Time Zone 10",
    "Magadan Standard Time",
    "Norfolk Standard Time",
    "Sakhalin Standard Time",
    "Central Pacific Standard Time",
    "Russia Time Zone 11",
    "New Zealand Standard Time",
    "UTC+12",
    "Fiji Standard Time",
    "Kamchatka Standard Time",
    "Chatham Islands Standard Time",
    "UTC+13",
    "Tonga Standard Time",
    "Samoa Standard Time",
    "Line Islands Standard Time",
];

/// The time zone ID as Windows spells it, or an error naming the variable.
pub fn check_time_zone(var: &str, tz: &str) -> Result<&'static str, UnattendError> {
    TIME_ZONES
        .iter()
        .find(|z| z.eq_ignore_ascii_case(tz.trim()))
        .copied()
        .ok_or_else(|| {
            bad(
                var,
                format!(
                    "{tz:?} is not a Windows time zone ID (such as \"W. Europe Standard Time\")"
                ),
            )
        })
}

/// A language tag such as `en-US`, `zh-Hans-CN`, `sr-Latn-RS`.
pub fn check_language(var: &str, tag: &str) -> Result<(), UnattendError> {
    let parts: Vec<&str> = tag.split('-').collect();
    let first_ok = parts
        .first()
        .is_some_and(|p| (2..=3).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphabetic()));
    let rest_ok = parts
        .iter()
        .skip(1)
        .all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err(bad(
            var,
            format!("{tag:?} is not a language tag such as en-US"),
        ))
    }
}

/// Input locales: `;`-separated language tags or `LLLL:KKKKKKKK` keyboard
/// codes (`0409:00000409`).
pub fn check_input_locale(var: &str, value: &str) -> Result<(), UnattendError> {
    for item in value.split(';').map(str::trim) {
        let code = item.split_once(':').is_some_and(|(l, k)| {
            l.len() == 4
                && k.len() == 8
                && l.chars().all(|c| c.is_ascii_hexdigit())
                && k.chars().all(|c| c.is_ascii_hexdigit())
        });
        if !code {
            check_language(var, item).map_err(|_| {
                bad(
                    var,
                    format!("{item:?} is not an input locale such as 0409:00000409 or en-US"),
                )
            })?;
        }
    }
    Ok(())
}

/// A workgroup (NetBIOS) name: 1–15 characters without `\/:*?"<>|`.
pub fn check_workgroup(var: &str, name: &str) -> Result<(), UnattendError> {
    if name.is_empty() || name.chars().count() > 15 {
        return Err(bad(
            var,
            format!("{name:?} must be 1 to 15 characters long"),
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| "\\/:*?\"<>|".contains(*c) || c.is_control())
    {
        return Err(bad(var, format!("{name:?} contains {c:?}")));
    }
    Ok(())
}

/// An Active Directory domain: a DNS name or a NetBIOS name.
pub fn check_domain(var: &str, name: &str) -> Result<(), UnattendError> {
    let labels_ok = !name.is_empty()
        && name.len() <= 255
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if labels_ok {
        Ok(())
    } else {
        Err(bad(var, format!("{name:?} is not a domain name")))
    }
}

/// `DOMAIN\user` → (`DOMAIN`, `user`); `user@dns.domain` → (`dns.domain`,
/// `user`); a bare `user` takes `default_domain`.
pub fn split_account(
    var: &str,
    account: &str,
    default_domain: &str,
) -> Result<(String, String), UnattendError> {
    let (d, u) = if let Some((d, u)) = account.split_once('\\') {
        (d.to_string(), u.to_string())
    } else if let Some((u, d)) = account.rsplit_once('@') {
        (d.to_string(), u.to_string())
    } else {
        (default_domain.to_string(), account.to_string())
    };
    if d.trim().is_empty() || u.trim().is_empty() || u.contains('\\') {
        return Err(bad(
            var,
            format!("{account:?} is not an account of the form DOMAIN\\user"),
        ));
    }
    Ok((d, u))
}

/// `LDAP://OU=Servers,DC=contoso,DC=com` → `OU=Servers,DC=contoso,DC=com`.
pub fn check_ou(var: &str, ou: &str) -> Result<String, UnattendError> {
    let t = ou.trim();
    let dn = if t.len() >= 7
        && t.get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("LDAP://"))
    {
        t.get(7..).unwrap_or("")
    } else {
        t
    };
    let ok = !dn.is_empty()
        && dn.split(',').all(|rdn| {
            rdn.split_once('=')
                .is_some_and(|(k, v)| !k.trim().is_empty() && !v.trim().is_empty())
        });
    if ok {
        Ok(dn.to_string())
    } else {
        Err(bad(
            var,
            format!("{ou:?} is not an OU path such as LDAP://OU=Computers,DC=contoso,DC=com"),
        ))
    }
}

fn check_ipv4(var: &str, s: &str) -> Result<std::net::Ipv4Addr, UnattendError> {
    s.trim()
        .parse()
        .map_err(|_| bad(var, format!("{s:?} is not an IPv4 address")))
}

fn prefix_len(var: &str, mask: &str) -> Result<u32, UnattendError> {
    let m = u32::from(check_ipv4(var, mask)?);
    let len = m.leading_ones();
    if m.checked_shl(len).unwrap_or(0) != 0 {
        return Err(bad(var, format!("{mask:?} is not a subnet mask")));
    }
    Ok(len)
}

// ---- the settings ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageArch {
    Amd64,
    X86,
    Arm64,
}

impl ImageArch {
    /// `amd64`/`x64`/`9`, `x86`/`0`, `arm64`/`12` (WMI codes accepted).
    pub fn parse(s: &str) -> Option<ImageArch> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "amd64" | "x64" | "9" => ImageArch::Amd64,
            "x86" | "i386" | "0" => ImageArch::X86,
            "arm64" | "aarch64" | "12" => ImageArch::Arm64,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            ImageArch::Amd64 => "amd64",
            ImageArch::X86 => "x86",
            ImageArch::Arm64 => "arm64",
        }
    }
}

impl From<crate::computer::Architecture> for ImageArch {
    fn from(a: crate::computer::Architecture) -> Self {
        match a {
            crate::computer::Architecture::X64 => ImageArch::Amd64,
            crate::computer::Architecture::X86 => ImageArch::X86,
            crate::computer::Architecture::Arm64 => ImageArch::Arm64,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminPassword {
    /// Nothing set yet (Apply Windows Settings has not run).
    Unset,
    /// Random and the account disabled.
    Random(String),
    Given(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Join {
    Workgroup(String),
    Domain {
        domain: String,
        /// Distinguished name without `LDAP://`.
        ou: Option<String>,
        account_domain: String,
        user: String,
        password: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerLicense {
    PerSeat,
    PerServer(u32),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Locales {
    pub input: Option<String>,
    pub system: Option<String>,
    pub ui: Option<String>,
    pub ui_fallback: Option<String>,
    pub user: Option<String>,
}

/// One network adapter's static settings (`OSDAdapter<i>…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adapter {
    /// MAC address with hyphens (`00-15-5D-01-02-03`) or the connection name.
    pub identifier: String,
    pub dhcp: bool,
    /// `address/prefix` entries.
    pub addresses: Vec<String>,
    pub gateways: Vec<String>,
    pub dns_servers: Vec<String>,
    pub dns_domain: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub arch: ImageArch,
    pub computer_name: Option<String>,
    pub product_key: Option<String>,
    pub registered_owner: Option<String>,
    pub registered_org: Option<String>,
    pub time_zone: Option<&'static str>,
    pub admin: AdminPassword,
    pub server_license: Option<ServerLicense>,
    pub locales: Locales,
    pub join: Option<Join>,
    pub dns_domain: Option<String>,
    pub dns_suffix_search: Vec<String>,
    pub adapters: Vec<Adapter>,
    pub driver_paths: Vec<String>,
}

fn get(env: &Environment, name: &str) -> Option<String> {
    env.get(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn truthy(env: &Environment, name: &str, default: bool) -> Result<bool, UnattendError> {
    match get(env, name) {
        None => Ok(default),
        Some(v) => tasq_tasksequence::model::parse_bool(&v)
            .ok_or_else(|| bad(name, format!("{v:?} is not true or false"))),
    }
}

fn list(v: &str) -> Vec<String> {
    v.split([',', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

impl Settings {
    /// Everything the answer file needs, from the variables, checked.
    /// `default_arch` applies when `_TSQImageArchitecture` is not set.
    pub fn from_env(env: &Environment, default_arch: ImageArch) -> Result<Settings, UnattendError> {
        let arch = match get(env, VAR_IMAGE_ARCH) {
            Some(a) => ImageArch::parse(&a)
                .ok_or_else(|| bad(VAR_IMAGE_ARCH, format!("{a:?} is not amd64, x86 or arm64")))?,
            None => default_arch,
        };
        let computer_name = get(env, "OSDComputerName");
        if let Some(n) = &computer_name {
            check_computer_name("OSDComputerName", n)?;
        }
        let product_key = get(env, "OSDProductKey");
        if let Some(k) = &product_key {
            check_product_key("OSDProductKey", k)?;
        }
        for (var, max) in [
            ("OSDRegisteredUserName", 255),
            ("OSDRegisteredOrgName", 255),
        ] {
            if get(env, var).is_some_and(|v| v.chars().count() > max) {
                return Err(bad(var, format!("longer than {max} characters")));
            }
        }
        let time_zone = match get(env, "OSDTimeZone") {
            Some(t) => Some(check_time_zone("OSDTimeZone", &t)?),
            None => None,
        };
        let admin = Self::admin(env)?;
        let server_license = match get(env, "OSDServerLicenseMode") {
            None => None,
            Some(m) if m.eq_ignore_ascii_case("PerSeat") => Some(ServerLicense::PerSeat),
            Some(m) if m.eq_ignore_ascii_case("PerServer") => {
                let var = "OSDServerLicenseConnectionLimit";
                let raw = get(env, var).unwrap_or_else(|| "5".into());
                let n: u32 = raw
                    .parse()
                    .ok()
                    .filter(|n| (5..=9999).contains(n))
                    .ok_or_else(|| bad(var, format!("{raw:?} is not a number from 5 to 9999")))?;
                Some(ServerLicense::PerServer(n))
            }
            Some(m) => {
                return Err(bad(
                    "OSDServerLicenseMode",
                    format!("{m:?} is not PerSeat or PerServer"),
                ))
            }
        };
        let mut locales = Locales::default();
        for (var, slot) in [
            ("OSDWindowsSettingsSystemLocale", &mut locales.system),
            ("OSDWindowsSettingsUILanguage", &mut locales.ui),
            (
                "OSDWindowsSettingsUILanguageFallback",
                &mut locales.ui_fallback,
            ),
            ("OSDWindowsSettingsUserLocale", &mut locales.user),
        ] {
            if let Some(v) = get(env, var) {
                check_language(var, &v)?;
                *slot = Some(v);
            }
        }
        if let Some(v) = get(env, "OSDWindowsSettingsInputLocale") {
            check_input_locale("OSDWindowsSettingsInputLocale", &v)?;
            locales.input = Some(v);
        }
        let join = Self::join(env)?;
        let dns_domain = get(env, "OSDDNSDomain");
        if let Some(d) = &dns_domain {
            check_domain("OSDDNSDomain", d)?;
        }
        let dns_suffix_search = get(env, "OSDDNSSuffixSearchOrder")
            .map(|v| list(&v))
            .unwrap_or_default();
        for s in &dns_suffix_search {
            check_domain("OSDDNSSuffixSearchOrder", s)?;
        }
        let adapters = Self::adapters(env)?;
        let driver_paths = get(env, VAR_DRIVER_PATHS)
            .map(|v| {
                v.split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Settings {
            arch,
            computer_name,
            product_key,
            registered_owner: get(env, "OSDRegisteredUserName"),
            registered_org: get(env, "OSDRegisteredOrgName"),
            time_zone,
            admin,
            server_license,
            locales,
            join,
            dns_domain,
            dns_suffix_search,
            adapters,
            driver_paths,
        })
    }

    fn admin(env: &Environment) -> Result<AdminPassword, UnattendError> {
        if !env.is_set("OSDRandomAdminPassword") && !env.is_set("OSDLocalAdminPassword") {
            return Ok(AdminPassword::Unset);
        }
        if truthy(env, "OSDRandomAdminPassword", true)? {
            return Ok(match env.get(VAR_RANDOM_ADMIN_PASSWORD) {
                Some(p) if !p.is_empty() => AdminPassword::Random(p.to_string()),
                _ => AdminPassword::Random(random_password()?),
            });
        }
        let var = "OSDLocalAdminPassword";
        match env.get(var) {
            Some(p) if !p.is_empty() && p.chars().count() <= 255 => {
                Ok(AdminPassword::Given(p.to_string()))
            }
            Some(p) if !p.is_empty() => Err(bad(var, "longer than 255 characters")),
            _ => Err(bad(
                var,
                "must be set (1 to 255 characters) when OSDRandomAdminPassword is false",
            )),
        }
    }

    fn join(env: &Environment) -> Result<Option<Join>, UnattendError> {
        let var = "OSDNetworkJoinType";
        let Some(t) = get(env, var) else {
            return Ok(None);
        };
        match t.as_str() {
            "1" => {
                let v = "OSDWorkgroupName";
                let name = get(env, v).ok_or_else(|| bad(v, "must be set to join a workgroup"))?;
                check_workgroup(v, &name)?;
                Ok(Some(Join::Workgroup(name)))
            }
            "0" => {
                let domain = get(env, "OSDDomainName")
                    .ok_or_else(|| bad("OSDDomainName", "must be set to join a domain"))?;
                check_domain("OSDDomainName", &domain)?;
                let account = get(env, "OSDJoinAccount")
                    .ok_or_else(|| bad("OSDJoinAccount", "must be set to join a domain"))?;
                let (account_domain, user) = split_account("OSDJoinAccount", &account, &domain)?;
                let password = env
                    .get("OSDJoinPassword")
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| bad("OSDJoinPassword", "must be set to join a domain"))?
                    .to_string();
                let ou = match get(env, "OSDDomainOUName") {
                    Some(o) => Some(check_ou("OSDDomainOUName", &o)?),
                    None => None,
                };
                Ok(Some(Join::Domain {
                    domain,
                    ou,
                    account_domain,
                    user,
                    password,
                }))
            }
            other => Err(bad(
                var,
                format!("{other:?} is not 0 (domain) or 1 (workgroup)"),
            )),
        }
    }

    fn adapters(env: &Environment) -> Result<Vec<Adapter>, UnattendError> {
        let Some(raw) = get(env, "OSDAdapterCount") else {
            return Ok(Vec::new());
        };
        let count: usize = raw.parse().ok().filter(|n| *n <= 64).ok_or_else(|| {
            bad(
                "OSDAdapterCount",
                format!("{raw:?} is not a number from 0 to 64"),
            )
        })?;
        let mut out = Vec::new();
        for i in 0..count {
            let v = |p: &str| format!("OSDAdapter{i}{p}");
            let identifier = match (get(env, &v("MacAddress")), get(env, &v("Name"))) {
                (Some(mac), _) => {
                    let hex: String = mac.chars().filter(|c| c.is_ascii_hexdigit()).collect();
                    if hex.len() != 12
                        || mac.chars().any(|c| !(c.is_ascii_hexdigit() || c == ':' || c == '-'))
                    {
                        return Err(bad(&v("MacAddress"), format!("{mac:?} is not a MAC address")));
                    }
                    hex.as_bytes()
                        .chunks(2)
                        .map(|c| String::from_utf8_lossy(c).to_ascii_uppercase())
                        .collect::<Vec<_>>()
                        .join("-")
                }
                (None, Some(name)) => name,
                (None, None) => {
                    return Err(bad(
                        &v("MacAddress"),
                        "must be set (or the adapter's Name) to tell which adapter the settings are for",
                    ))
                }
            };
            let dhcp = truthy(env, &v("EnableDHCP"), true)?;
            let mut addresses = Vec::new();
            let mut gateways = Vec::new();
            if !dhcp {
                let ips = get(env, &v("IPAddressList"))
                    .map(|s| list(&s))
                    .unwrap_or_default();
                let masks = get(env, &v("SubnetMask"))
                    .map(|s| list(&s))
                    .unwrap_or_default();
                if ips.is_empty() {
                    return Err(bad(
                        &v("IPAddressList"),
                        "must be set when EnableDHCP is false",
                    ));
                }
                if masks.len() != ips.len() {
                    return Err(bad(
                        &v("SubnetMask"),
                        format!(
                            "needs one mask per address ({} addresses, {} masks)",
                            ips.len(),
                            masks.len()
                        ),
                    ));
                }
                for (ip, mask) in ips.iter().zip(&masks) {
                    let a = check_ipv4(&v("IPAddressList"), ip)?;
                    let p = prefix_len(&v("SubnetMask"), mask)?;
                    addresses.push(format!("{a}/{p}"));
                }
                for g in get(env, &v("Gateways"))
                    .map(|s| list(&s))
                    .unwrap_or_default()
                {
                    gateways.push(check_ipv4(&v("Gateways"), &g)?.to_string());
                }
            }
            let mut dns_servers = Vec::new();
            for s in get(env, &v("DNSServerList"))
                .map(|s| list(&s))
                .unwrap_or_default()
            {
                dns_servers.push(check_ipv4(&v("DNSServerList"), &s)?.to_string());
            }
            let dns_domain = get(env, &v("DNSDomain"));
            if let Some(d) = &dns_domain {
                check_domain(&v("DNSDomain"), d)?;
            }
            out.push(Adapter {
                identifier,
                dhcp,
                addresses,
                gateways,
                dns_servers,
                dns_domain,
            });
        }
        Ok(out)
    }

    /// A component element with the attributes every sample carries.
    fn component(&self, name: &str) -> Element {
        Element::new("component")
            .attr("name", name)
            .attr("processorArchitecture", self.arch.name())
            .attr("publicKeyToken", PUBLIC_KEY_TOKEN)
            .attr("language", "neutral")
            .attr("versionScope", "nonSxS")
            .attr("xmlns:wcm", NS_WCM)
            .attr("xmlns:xsi", NS_XSI)
    }

    /// The answer file as an element tree.
    pub fn to_element(&self) -> Element {
        let mut root = Element::new("unattend").attr("xmlns", NS_UNATTEND);
        let pass = |p: &str| Element::new("settings").attr("pass", p);

        if !self.driver_paths.is_empty() {
            let mut paths = Element::new("DriverPaths");
            for (i, p) in self.driver_paths.iter().enumerate() {
                paths.push(
                    Element::new("PathAndCredentials")
                        .attr("wcm:keyValue", &(i + 1).to_string())
                        .attr("wcm:action", "add")
                        .child(Element::text("Path", p)),
                );
            }
            root.push(
                pass("offlineServicing").child(
                    self.component("Microsoft-Windows-PnpCustomizationsNonWinPE")
                        .child(paths),
                ),
            );
        }

        let mut specialize = pass("specialize");
        let mut shell = self.component("Microsoft-Windows-Shell-Setup");
        let texts = [
            ("ComputerName", &self.computer_name),
            ("ProductKey", &self.product_key),
            ("RegisteredOrganization", &self.registered_org),
            ("RegisteredOwner", &self.registered_owner),
        ];
        for (el, v) in texts {
            if let Some(v) = v {
                shell.push(Element::text(el, v));
            }
        }
        if let Some(tz) = self.time_zone {
            shell.push(Element::text("TimeZone", tz));
        }
        if !shell.children.is_empty() {
            specialize.push(shell);
        }
        if let Some(j) = &self.join {
            let mut id = Element::new("Identification");
            match j {
                Join::Workgroup(w) => id.push(Element::text("JoinWorkgroup", w)),
                Join::Domain {
                    domain,
                    ou,
                    account_domain,
                    user,
                    password,
                } => {
                    id.push(
                        Element::new("Credentials")
                            .child(Element::text("Domain", account_domain))
                            .child(Element::text("Password", password))
                            .child(Element::text("Username", user)),
                    );
                    id.push(Element::text("JoinDomain", domain));
                    if let Some(ou) = ou {
                        id.push(Element::text("MachineObjectOU", ou));
                    }
                }
            }
            specialize.push(self.component("Microsoft-Windows-UnattendedJoin").child(id));
        }
        if let Some(tcpip) = self.tcpip() {
            specialize.push(tcpip);
        }
        if let Some(dns) = self.dns_client() {
            specialize.push(dns);
        }
        if let Some(l) = &self.server_license {
            // Per seat ≈ per device CALs (2); per server ≈ per concurrent
            // session (4). The connection limit has no answer-file setting.
            let mode = match l {
                ServerLicense::PerSeat => "2",
                ServerLicense::PerServer(_) => "4",
            };
            specialize.push(
                self.component("Microsoft-Windows-TerminalServices-RemoteConnectionManager")
                    .child(Element::text("LicensingMode", mode)),
            );
        }
        let active = match &self.admin {
            AdminPassword::Unset => None,
            AdminPassword::Random(_) => {
                Some(("DisableAdmin", "cmd /c net user Administrator /active:no"))
            }
            AdminPassword::Given(_) => {
                Some(("EnableAdmin", "cmd /c net user Administrator /active:yes"))
            }
        };
        if let Some((desc, cmd)) = active {
            specialize.push(
                self.component("Microsoft-Windows-Deployment").child(
                    Element::new("RunSynchronous").child(
                        Element::new("RunSynchronousCommand")
                            .attr("wcm:action", "add")
                            .child(Element::text("Description", desc))
                            .child(Element::text("Order", "1"))
                            .child(Element::text("Path", cmd)),
                    ),
                ),
            );
        }
        if !specialize.children.is_empty() {
            root.push(specialize);
        }

        let mut oobe = pass("oobeSystem");
        let mut intl = self.component("Microsoft-Windows-International-Core");
        let l = &self.locales;
        for (el, v) in [
            ("InputLocale", &l.input),
            ("SystemLocale", &l.system),
            ("UILanguage", &l.ui),
            ("UILanguageFallback", &l.ui_fallback),
            ("UserLocale", &l.user),
        ] {
            if let Some(v) = v {
                intl.push(Element::text(el, v));
            }
        }
        if !intl.children.is_empty() {
            oobe.push(intl);
        }
        let pw = match &self.admin {
            AdminPassword::Unset => None,
            AdminPassword::Random(p) | AdminPassword::Given(p) => Some(p),
        };
        if let Some(p) = pw {
            oobe.push(
                self.component("Microsoft-Windows-Shell-Setup").child(
                    Element::new("UserAccounts").child(
                        Element::new("AdministratorPassword")
                            .child(Element::text(
                                "Value",
                                &encode_password(p, "AdministratorPassword"),
                            ))
                            .child(Element::text("PlainText", "false")),
                    ),
                ),
            );
        }
        if !oobe.children.is_empty() {
            root.push(oobe);
        }
        root
    }

    fn tcpip(&self) -> Option<Element> {
        let statics: Vec<&Adapter> = self.adapters.iter().filter(|a| !a.dhcp).collect();
        if statics.is_empty() {
            return None;
        }
        let mut ifaces = Element::new("Interfaces");
        for a in statics {
            let mut ips = Element::new("UnicastIpAddresses");
            for (i, ip) in a.addresses.iter().enumerate() {
                ips.push(
                    Element::text("IpAddress", ip)
                        .attr("wcm:action", "add")
                        .attr("wcm:keyValue", &(i + 1).to_string()),
                );
            }
            let mut iface = Element::new("Interface")
                .attr("wcm:action", "add")
                .child(Element::new("Ipv4Settings").child(Element::text("DhcpEnabled", "false")))
                .child(Element::text("Identifier", &a.identifier))
                .child(ips);
            if !a.gateways.is_empty() {
                let mut routes = Element::new("Routes");
                for (i, g) in a.gateways.iter().enumerate() {
                    routes.push(
                        Element::new("Route")
                            .attr("wcm:action", "add")
                            .child(Element::text("Identifier", &(i + 1).to_string()))
                            .child(Element::text("NextHopAddress", g))
                            .child(Element::text("Prefix", "0.0.0.0/0")),
                    );
                }
                iface.push(routes);
            }
            ifaces.push(iface);
        }
        Some(self.component("Microsoft-Windows-TCPIP").child(ifaces))
    }

    fn dns_client(&self) -> Option<Element> {
        let mut c = self.component("Microsoft-Windows-DNS-Client");
        if let Some(d) = &self.dns_domain {
            c.push(Element::text("DNSDomain", d));
        }
        if !self.dns_suffix_search.is_empty() {
            let mut order = Element::new("DNSSuffixSearchOrder");
            for (i, s) in self.dns_suffix_search.iter().enumerate() {
                order.push(
                    Element::text("DomainName", s)
                        .attr("wcm:action", "add")
                        .attr("wcm:keyValue", &(i + 1).to_string()),
                );
            }
            c.push(order);
        }
        let with_dns: Vec<&Adapter> = self
            .adapters
            .iter()
            .filter(|a| !a.dns_servers.is_empty() || a.dns_domain.is_some())
            .collect();
        if !with_dns.is_empty() {
            let mut ifaces = Element::new("Interfaces");
            for a in with_dns {
                let mut iface = Element::new("Interface")
                    .attr("wcm:action", "add")
                    .child(Element::text("Identifier", &a.identifier));
                if let Some(d) = &a.dns_domain {
                    iface.push(Element::text("DNSDomain", d));
                }
                if !a.dns_servers.is_empty() {
                    let mut order = Element::new("DNSServerSearchOrder");
                    for (i, s) in a.dns_servers.iter().enumerate() {
                        order.push(
                            Element::text("IpAddress", s)
                                .attr("wcm:action", "add")
                                .attr("wcm:keyValue", &(i + 1).to_string()),
                        );
                    }
                    iface.push(order);
                }
                ifaces.push(iface);
            }
            c.push(ifaces);
        }
        (!c.children.is_empty()).then_some(c)
    }

    /// The answer file text.
    pub fn render(&self) -> String {
        to_xml(&self.to_element())
    }
}

/// The `<component>` named `component` in the `pass` settings of a parsed file.
pub fn component<'a>(root: &'a Element, pass: &str, component: &str) -> Option<&'a Element> {
    root.children
        .iter()
        .filter(|s| s.name == "settings" && s.get_attr("pass") == Some(pass))
        .flat_map(|s| s.children.iter())
        .find(|c| c.name == "component" && c.get_attr("name") == Some(component))
}

/// The text at `path` under a component, e.g.
/// `value(&doc, "specialize", "Microsoft-Windows-Shell-Setup", "ComputerName")`.
pub fn value<'a>(root: &'a Element, pass: &str, comp: &str, path: &str) -> Option<&'a str> {
    component(root, pass, comp)
        .and_then(|c| c.path(path))
        .map(|e| e.text.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_matches_known_vectors() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        for s in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
            assert_eq!(
                base64_decode(&base64_encode(s.as_bytes())).unwrap(),
                s.as_bytes()
            );
        }
        assert!(base64_decode("Zg=").is_none());
        assert!(base64_decode("Z=g=").is_none());
        assert!(base64_decode("Zg!=").is_none());
    }

    #[test]
    fn password_encoding_matches_the_samples() {
        // HydrationKit's MDT01 unattend: empty admin password and empty
        // autologon password in hidden form.
        assert_eq!(
            encode_password("", "AdministratorPassword"),
            "QQBkAG0AaQBuAGkAcwB0AHIAYQB0AG8AcgBQAGEAcwBzAHcAbwByAGQA"
        );
        assert_eq!(encode_password("", "Password"), "UABhAHMAcwB3AG8AcgBkAA==");
        let e = encode_password("P@ss wörd<&>", "AdministratorPassword");
        assert_eq!(
            decode_password(&e, "AdministratorPassword").as_deref(),
            Some("P@ss wörd<&>")
        );
        assert_eq!(decode_password(&e, "AutoLogonPassword"), None);
        assert_eq!(
            decode_password("not base64!", "AdministratorPassword"),
            None
        );
    }

    #[test]
    fn random_passwords_are_complex_and_differ() {
        let a = random_password().unwrap();
        let b = random_password().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
        assert!(a.chars().any(|c| c.is_ascii_uppercase()));
        assert!(a.chars().any(|c| c.is_ascii_lowercase()));
        assert!(a.chars().any(|c| c.is_ascii_digit()));
        assert!(a.chars().any(|c| !c.is_ascii_alphanumeric()));
    }

    #[test]
    fn value_checks_name_the_variable() {
        assert!(check_computer_name("V", "REF-01").is_ok());
        for bad_name in ["", "ABCDEFGHIJKLMNOP", "A_B", "12345", "-AB", "A B", "Ä"] {
            let e = check_computer_name("OSDComputerName", bad_name).unwrap_err();
            assert_eq!(e.variable.as_deref(), Some("OSDComputerName"), "{bad_name}");
        }
        assert!(check_product_key("K", "NPPR9-FWDCX-D2C8J-H872K-2YT43").is_ok());
        let e = check_product_key("OSDProductKey", "NPPR9-FWDCX-D2C8J-H872K-2YT4").unwrap_err();
        assert!(!e.to_string().contains("NPPR9"), "the key is not echoed");
        assert_eq!(
            check_time_zone("T", "w. europe standard time").unwrap(),
            "W. Europe Standard Time"
        );
        assert!(check_time_zone("T", "Europe/Berlin").is_err());
        assert!(check_language("L", "en-US").is_ok());
        assert!(check_language("L", "sr-Latn-RS").is_ok());
        assert!(check_language("L", "english").is_err());
        assert!(check_input_locale("I", "0409:00000409;de-DE").is_ok());
        assert!(check_input_locale("I", "0409-00000409").is_err());
        assert_eq!(
            split_account("A", "CONTOSO\\svc_join", "contoso.com").unwrap(),
            ("CONTOSO".into(), "svc_join".into())
        );
        assert_eq!(
            split_account("A", "svc@contoso.com", "x").unwrap(),
            ("contoso.com".into(), "svc".into())
        );
        assert_eq!(
            split_account("A", "svc", "contoso.com").unwrap(),
            ("contoso.com".into(), "svc".into())
        );
        assert!(split_account("A", "CONTOSO\\", "x").is_err());
        assert_eq!(
            check_ou("O", "LDAP://OU=Ref,DC=contoso,DC=com").unwrap(),
            "OU=Ref,DC=contoso,DC=com"
        );
        assert!(check_ou("O", "LDAP://nothing").is_err());
        assert!(check_workgroup("W", "WORKGROUP").is_ok());
        assert!(check_workgroup("W", "A*B").is_err());
        assert!(check_domain("D", "contoso.com").is_ok());
        assert!(check_domain("D", "con toso").is_err());
        assert_eq!(prefix_len("M", "255.255.255.0").unwrap(), 24);
        assert!(prefix_len("M", "255.0.255.0").is_err());
    }

    #[test]
    fn text_is_escaped_and_reads_back() {
        let mut env = Environment::new();
        env.set("OSDRegisteredOrgName", "A & B <C> \"D\"");
        let s = Settings::from_env(&env, ImageArch::Amd64).unwrap();
        let xml = s.render();
        assert!(xml.contains("A &amp; B &lt;C&gt;"));
        let doc = parse(&xml).unwrap();
        assert_eq!(
            value(
                &doc,
                "specialize",
                "Microsoft-Windows-Shell-Setup",
                "RegisteredOrganization"
            ),
            Some("A & B <C> \"D\"")
        );
    }

    #[test]
    fn parse_refuses_other_documents() {
        assert!(parse("<unattend>").is_err());
        assert!(parse("<x xmlns=\"urn:schemas-microsoft-com:unattend\"/>").is_err());
        assert!(parse("<unattend/>").is_err());
    }
}
