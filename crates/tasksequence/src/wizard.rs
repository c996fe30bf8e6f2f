//! The "Create Task Sequence" wizard as data: its answers (one TOML table per
//! wizard page, mission.md §3), every check the console makes on them, and the
//! sequence they produce. Each problem names the field (`install_windows.product_key`).
//! The terminal prompts live in the CLI; they fill the same `Answers`.

use serde::{Deserialize, Serialize};

use crate::steps::{
    ApplyNetworkSettings, ApplyOsImage, ApplyWindowsSettings, CaptureOsImage, InstallApplication,
    NetworkJoin, ServerLicense, SetupWindows, UpdateTarget,
};
use crate::templates::{self, BuildAndCapture, PackageInfo};
use crate::wiminfo::{Arch, WimImage};
use crate::Sequence;

/// Which template the answers are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Template {
    #[default]
    BuildAndCapture,
    Custom,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Answers {
    #[serde(default)]
    pub template: Template,
    #[serde(default)]
    pub task_sequence: TaskSequencePage,
    #[serde(default)]
    pub install_windows: InstallWindowsPage,
    #[serde(default)]
    pub configure_network: NetworkPage,
    #[serde(default)]
    pub install_configmgr: ConfigMgrPage,
    #[serde(default)]
    pub include_updates: UpdatesPage,
    #[serde(default)]
    pub install_applications: ApplicationsPage,
    /// Shown by the wizard but no longer used: nothing to set.
    #[serde(default)]
    pub system_preparation: SystemPreparationPage,
    #[serde(default)]
    pub image_properties: ImagePropertiesPage,
    #[serde(default)]
    pub capture_image: CapturePage,
}

/// Task sequence information.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TaskSequencePage {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Boot image package ID.
    #[serde(default)]
    pub boot_image: String,
    /// x86, x64 or arm64.
    #[serde(default)]
    pub boot_image_architecture: String,
    /// The reference hardware's architecture; defaults to the OS image's.
    #[serde(default)]
    pub target_architecture: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct InstallWindowsPage {
    /// OS image package ID.
    #[serde(default)]
    pub image_package: String,
    /// A local copy of the package's WIM, to check the index (read by the CLI).
    #[serde(default)]
    pub image_file: String,
    #[serde(default)]
    pub image_index: u32,
    #[serde(default)]
    pub product_key: String,
    /// none, per-seat or per-server.
    #[serde(default)]
    pub server_licensing: String,
    #[serde(default)]
    pub max_server_connections: Option<i64>,
    /// random (disable the account) or specify.
    #[serde(default)]
    pub local_admin: String,
    #[serde(default)]
    pub admin_password: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NetworkPage {
    /// workgroup or domain.
    #[serde(default)]
    pub join: String,
    #[serde(default)]
    pub workgroup: String,
    #[serde(default)]
    pub domain: String,
    #[serde(default)]
    pub domain_ou: String,
    #[serde(default)]
    pub domain_account: String,
    #[serde(default)]
    pub domain_password: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ConfigMgrPage {
    #[serde(default)]
    pub client_package: String,
    #[serde(default)]
    pub installation_properties: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdatesPage {
    /// required, all or none.
    #[serde(default)]
    pub mode: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ApplicationsPage {
    #[serde(default)]
    pub applications: Vec<String>,
    #[serde(default)]
    pub continue_on_error: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SystemPreparationPage {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ImagePropertiesPage {
    #[serde(default)]
    pub created_by: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CapturePage {
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub password: String,
}

/// One problem with one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// `page.field`, as in the answers file.
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AnswersError {
    #[error("answers file: {0}")]
    Toml(String),
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<FieldError>),
}

impl Answers {
    /// Reads an answers file. Unknown keys are errors (a typo must not be ignored).
    pub fn from_toml(text: &str) -> Result<Answers, AnswersError> {
        toml::from_str(text).map_err(|e| AnswersError::Toml(e.to_string()))
    }
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// One answer as text, by its `page.field` name (lists comma-separated);
    /// empty when unset or unknown.
    pub fn get_field(&self, key: &str) -> String {
        let doc = toml::Value::try_from(self).ok();
        let mut v = doc.as_ref();
        for part in key.split('.') {
            let name = part.split('[').next().unwrap_or(part);
            v = v.and_then(|x| x.get(name));
        }
        match v {
            Some(toml::Value::String(s)) => s.clone(),
            Some(toml::Value::Array(items)) => items
                .iter()
                .filter_map(|i| i.as_str())
                .collect::<Vec<_>>()
                .join(","),
            Some(other) => other.to_string(),
            None => String::new(),
        }
    }

    /// Sets one answer by its `page.field` name from text, as `--set` and the
    /// terminal prompts do. The text is read as the field's type (number,
    /// true/false, comma-separated list).
    pub fn set_field(&mut self, key: &str, value: &str) -> Result<(), AnswersError> {
        let bad = |m: String| {
            AnswersError::Invalid(vec![FieldError {
                field: key.to_string(),
                message: m,
            }])
        };
        let mut doc =
            toml::Value::try_from(&*self).map_err(|e| AnswersError::Toml(e.to_string()))?;
        let root = doc
            .as_table_mut()
            .ok_or_else(|| bad("answers are not a table".into()))?;
        let number = || {
            value
                .trim()
                .parse::<i64>()
                .map(toml::Value::Integer)
                .map_err(|_| bad(format!("\"{value}\" is not a whole number")))
        };
        if key == "template" {
            root.insert(
                "template".into(),
                toml::Value::String(value.trim().to_string()),
            );
        } else {
            let (page, field) = key.split_once('.').ok_or_else(|| {
                bad("is not an answer (use page.field, e.g. install_windows.image_index)".into())
            })?;
            let kind = field_kind(page, field)
                .ok_or_else(|| bad("is not an answer of the wizard".into()))?;
            let parsed = match kind {
                FieldKind::OptionalNumber if value.trim().is_empty() => None,
                FieldKind::Number | FieldKind::OptionalNumber => Some(number()?),
                FieldKind::Text => Some(toml::Value::String(value.to_string())),
                FieldKind::Bool => Some(toml::Value::Boolean(
                    crate::model::parse_bool(value)
                        .ok_or_else(|| bad(format!("\"{value}\" is not true or false")))?,
                )),
                FieldKind::List => Some(toml::Value::Array(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| toml::Value::String(s.to_string()))
                        .collect(),
                )),
            };
            let table = root
                .entry(page)
                .or_insert_with(|| toml::Value::Table(Default::default()))
                .as_table_mut()
                .ok_or_else(|| bad(format!("{page} is not a page")))?;
            match parsed {
                Some(v) => table.insert(field.to_string(), v),
                None => table.remove(field),
            };
        }
        *self = doc
            .try_into()
            .map_err(|e: toml::de::Error| bad(e.to_string()))?;
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    Text,
    Number,
    OptionalNumber,
    Bool,
    List,
}

fn field_kind(page: &str, field: &str) -> Option<FieldKind> {
    use FieldKind::*;
    Some(match (page, field) {
        (
            "task_sequence",
            "name"
            | "description"
            | "boot_image"
            | "boot_image_architecture"
            | "target_architecture",
        ) => Text,
        (
            "install_windows",
            "image_package" | "image_file" | "product_key" | "server_licensing" | "local_admin"
            | "admin_password",
        ) => Text,
        ("install_windows", "image_index") => Number,
        ("install_windows", "max_server_connections") => OptionalNumber,
        (
            "configure_network",
            "join" | "workgroup" | "domain" | "domain_ou" | "domain_account" | "domain_password",
        ) => Text,
        ("install_configmgr", "client_package" | "installation_properties") => Text,
        ("include_updates", "mode") => Text,
        ("install_applications", "applications") => List,
        ("install_applications", "continue_on_error") => Bool,
        ("image_properties", "created_by" | "version" | "description") => Text,
        ("capture_image", "path" | "account" | "password") => Text,
        _ => return None,
    })
}

/// The characters of a product key (no vowels but N, no 0/1/5: no look-alikes).
pub const PRODUCT_KEY_CHARS: &str = "BCDFGHJKMNPQRTVWXY2346789";

/// Checks `XXXXX-XXXXX-XXXXX-XXXXX-XXXXX` with the allowed characters.
pub fn check_product_key(key: &str) -> Result<String, String> {
    let k = key.trim().to_ascii_uppercase();
    let groups: Vec<&str> = k.split('-').collect();
    if groups.len() != 5 || groups.iter().any(|g| g.chars().count() != 5) {
        return Err(format!(
            "\"{key}\" is not five groups of five characters separated by dashes (XXXXX-XXXXX-XXXXX-XXXXX-XXXXX)"
        ));
    }
    if let Some(c) = k
        .chars()
        .find(|&c| c != '-' && !PRODUCT_KEY_CHARS.contains(c))
    {
        return Err(format!(
            "\"{key}\" contains '{c}'; a product key uses only {PRODUCT_KEY_CHARS}"
        ));
    }
    Ok(k)
}

/// `domain\user` (both parts present) or a `%variable%`.
pub fn check_account(account: &str) -> Result<(), String> {
    let a = account.trim();
    if a.len() > 2 && a.starts_with('%') && a.ends_with('%') && !a[1..a.len() - 1].contains('%') {
        return crate::variables::check_name(&a[1..a.len() - 1]).map_err(|e| e.to_string());
    }
    match a.split_once('\\') {
        Some((d, u))
            if !d.is_empty()
                && !u.is_empty()
                && !u.contains('\\')
                && !a.contains(char::is_whitespace) =>
        {
            Ok(())
        }
        _ => Err(format!("\"{account}\" is not domain\\user or a %variable%")),
    }
}

/// An LDAP X.500 distinguished name, optionally prefixed `LDAP://`:
/// `OU=Reference,OU=Computers,DC=corp,DC=example`.
pub fn check_ldap_dn(dn: &str) -> Result<(), String> {
    let body = dn
        .strip_prefix("LDAP://")
        .or_else(|| dn.strip_prefix("ldap://"))
        .unwrap_or(dn);
    // An optional server part (`LDAP://dc01/OU=…`).
    let body = match body.split_once('/') {
        Some((server, rest)) if !server.contains('=') => rest,
        _ => body,
    };
    if body.trim().is_empty() {
        return Err(format!("\"{dn}\" is not an LDAP distinguished name"));
    }
    // Split on commas that are not escaped with a backslash.
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in body.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            cur.push(c);
            escaped = true;
        } else if c == ',' {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    for p in &parts {
        let Some((ty, val)) = p.split_once('=') else {
            return Err(format!("\"{dn}\": \"{p}\" is not TYPE=value"));
        };
        let ty = ty.trim();
        let ok_type = ty.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && ty.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok_type || val.trim().is_empty() {
            return Err(format!("\"{dn}\": \"{p}\" is not TYPE=value"));
        }
    }
    if !parts
        .iter()
        .any(|p| p.trim_start().to_ascii_uppercase().starts_with("DC="))
    {
        return Err(format!("\"{dn}\" names no domain component (DC=…)"));
    }
    Ok(())
}

/// A UNC path (`\\server\share\…\file.wim`) or an `smb://` / `file://` URL.
pub fn check_capture_path(path: &str) -> Result<(), String> {
    let p = path.trim();
    let ok_form = if let Some(rest) = p.strip_prefix("\\\\") {
        let mut it = rest.split('\\');
        matches!((it.next(), it.next()), (Some(s), Some(sh)) if !s.is_empty() && !sh.is_empty())
            && rest.split('\\').count() >= 3
    } else if let Some(rest) = p.strip_prefix("smb://") {
        let mut it = rest.split('/');
        matches!((it.next(), it.next()), (Some(s), Some(sh)) if !s.is_empty() && !sh.is_empty())
            && rest.split('/').count() >= 3
    } else if let Some(rest) = p.strip_prefix("file://") {
        rest.starts_with('/') && rest.len() > 1
    } else {
        false
    };
    if !ok_form {
        return Err(format!(
            "\"{path}\" is not a UNC path (\\\\server\\share\\file.wim) or an smb:// or file:// URL"
        ));
    }
    if !p.to_ascii_lowercase().ends_with(".wim") {
        return Err(format!("\"{path}\" does not name a .wim file"));
    }
    if p.chars().count() > 255 {
        return Err(format!("\"{path}\" is longer than 255 characters"));
    }
    Ok(())
}

/// Whether a boot image of one architecture can start the target hardware:
/// the same architecture, or x86 Windows PE on x64 hardware (BIOS only).
pub fn boot_arch_compatible(boot: Arch, target: Arch) -> bool {
    boot == target || (boot == Arch::X86 && target == Arch::X64)
}

struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.to_string(),
            message: message.into(),
        });
    }
    fn required(&mut self, field: &str, v: &str) -> bool {
        if v.trim().is_empty() {
            self.fail(field, "is required");
            false
        } else {
            true
        }
    }
    fn max_len(&mut self, field: &str, v: &str, max: usize) {
        if v.chars().count() > max {
            self.fail(field, format!("is longer than {max} characters"));
        }
    }
    fn result(&mut self, field: &str, r: Result<(), String>) {
        if let Err(m) = r {
            self.fail(field, m);
        }
    }
}

/// Validates the answers and builds the sequence. `images` are the images of
/// the OS image's WIM when the caller could read them (then the index and the
/// architecture are checked against them).
pub fn build(
    a: &Answers,
    images: Option<&[WimImage]>,
) -> Result<(Sequence, PackageInfo), AnswersError> {
    let mut c = Checker { errors: Vec::new() };
    let ts = &a.task_sequence;
    c.required("task_sequence.name", &ts.name);
    c.max_len("task_sequence.name", &ts.name, 50);
    c.max_len("task_sequence.description", &ts.description, 256);
    let package = PackageInfo {
        name: ts.name.trim().to_string(),
        description: ts.description.clone(),
        boot_image_id: ts.boot_image.trim().to_string(),
    };
    let boot_arch = if c.required("task_sequence.boot_image", &ts.boot_image) {
        if !ts
            .boot_image
            .trim()
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric())
        {
            c.fail(
                "task_sequence.boot_image",
                format!("\"{}\" is not a package ID", ts.boot_image),
            );
        }
        match Arch::parse(&ts.boot_image_architecture) {
            Some(a) => Some(a),
            None => {
                c.fail(
                    "task_sequence.boot_image_architecture",
                    format!(
                        "\"{}\" is not x86, x64 or arm64",
                        ts.boot_image_architecture
                    ),
                );
                None
            }
        }
    } else {
        None
    };

    if a.template == Template::Custom {
        if c.errors.is_empty() {
            return Ok(templates::custom(&package));
        }
        return Err(AnswersError::Invalid(c.errors));
    }

    // Install Windows.
    let iw = &a.install_windows;
    c.required("install_windows.image_package", &iw.image_package);
    let mut image_arch = None;
    if iw.image_index == 0 {
        c.fail("install_windows.image_index", "is required (1 or more)");
    } else if let Some(imgs) = images {
        match imgs.iter().find(|i| i.index == iw.image_index) {
            Some(img) => image_arch = img.arch,
            None => {
                let have: Vec<String> = imgs
                    .iter()
                    .map(|i| format!("{} ({})", i.index, i.name))
                    .collect();
                c.fail(
                    "install_windows.image_index",
                    format!(
                        "image {} is not in the OS image; it has {}",
                        iw.image_index,
                        if have.is_empty() {
                            "no images".to_string()
                        } else {
                            have.join(", ")
                        }
                    ),
                );
            }
        }
    }
    let target_arch = if ts.target_architecture.trim().is_empty() {
        image_arch
    } else {
        match Arch::parse(&ts.target_architecture) {
            Some(t) => {
                if let Some(ia) = image_arch {
                    if ia != t {
                        c.fail(
                            "task_sequence.target_architecture",
                            format!(
                                "is {} but image {} is {}",
                                t.name(),
                                iw.image_index,
                                ia.name()
                            ),
                        );
                    }
                }
                Some(t)
            }
            None => {
                c.fail(
                    "task_sequence.target_architecture",
                    format!("\"{}\" is not x86, x64 or arm64", ts.target_architecture),
                );
                None
            }
        }
    };
    if let (Some(b), Some(t)) = (boot_arch, target_arch) {
        if !boot_arch_compatible(b, t) {
            c.fail(
                "task_sequence.boot_image_architecture",
                format!(
                    "a {} boot image cannot start {} hardware",
                    b.name(),
                    t.name()
                ),
            );
        }
    }
    let product_key = if iw.product_key.trim().is_empty() {
        String::new()
    } else {
        match check_product_key(&iw.product_key) {
            Ok(k) => k,
            Err(m) => {
                c.fail("install_windows.product_key", m);
                String::new()
            }
        }
    };
    let server_license = match iw.server_licensing.trim().to_ascii_lowercase().as_str() {
        "" | "none" => {
            if iw.max_server_connections.is_some() {
                c.fail(
                    "install_windows.max_server_connections",
                    "is only used with server_licensing = \"per-server\"",
                );
            }
            None
        }
        "per-seat" | "per-user" | "perseat" => Some(ServerLicense::PerSeat),
        "per-server" | "perserver" => match iw.max_server_connections {
            Some(n) if (5..=9999).contains(&n) => Some(ServerLicense::PerServer {
                max_connections: n as u32,
            }),
            Some(n) => {
                c.fail(
                    "install_windows.max_server_connections",
                    format!("{n} is not in 5..9999"),
                );
                None
            }
            None => {
                c.fail(
                    "install_windows.max_server_connections",
                    "is required with per-server licensing (5..9999)",
                );
                None
            }
        },
        other => {
            c.fail(
                "install_windows.server_licensing",
                format!("\"{other}\" is not none, per-seat or per-server"),
            );
            None
        }
    };
    let random_admin = match iw.local_admin.trim().to_ascii_lowercase().as_str() {
        "" | "random" | "disable" => {
            if !iw.admin_password.is_empty() {
                c.fail(
                    "install_windows.admin_password",
                    "is only used with local_admin = \"specify\"",
                );
            }
            true
        }
        "specify" | "enable" => {
            if c.required("install_windows.admin_password", &iw.admin_password) {
                c.max_len("install_windows.admin_password", &iw.admin_password, 255);
            }
            false
        }
        other => {
            c.fail(
                "install_windows.local_admin",
                format!("\"{other}\" is not random or specify"),
            );
            true
        }
    };

    // Configure Network.
    let n = &a.configure_network;
    let join = match n.join.trim().to_ascii_lowercase().as_str() {
        "" | "workgroup" => {
            let name = if n.workgroup.trim().is_empty() {
                "WORKGROUP"
            } else {
                n.workgroup.trim()
            };
            c.max_len("configure_network.workgroup", name, 15);
            if let Some(ch) = name.chars().find(|ch| "\\/:*?\"<>|,".contains(*ch)) {
                c.fail(
                    "configure_network.workgroup",
                    format!("contains '{ch}', which a workgroup name cannot hold"),
                );
            }
            NetworkJoin::Workgroup {
                name: name.to_string(),
            }
        }
        "domain" => {
            c.required("configure_network.domain", &n.domain);
            if !n.domain_ou.trim().is_empty() {
                c.result(
                    "configure_network.domain_ou",
                    check_ldap_dn(n.domain_ou.trim()),
                );
            }
            if c.required("configure_network.domain_account", &n.domain_account) {
                c.result(
                    "configure_network.domain_account",
                    check_account(&n.domain_account),
                );
            }
            c.required("configure_network.domain_password", &n.domain_password);
            NetworkJoin::Domain {
                domain: n.domain.trim().to_string(),
                ou: n.domain_ou.trim().to_string(),
                account: n.domain_account.trim().to_string(),
                password: n.domain_password.clone(),
            }
        }
        other => {
            c.fail(
                "configure_network.join",
                format!("\"{other}\" is not workgroup or domain"),
            );
            NetworkJoin::Workgroup {
                name: String::new(),
            }
        }
    };

    // Install Configuration Manager.
    c.required(
        "install_configmgr.client_package",
        &a.install_configmgr.client_package,
    );

    // Include Updates.
    let updates = match a.include_updates.mode.trim().to_ascii_lowercase().as_str() {
        "" | "required" | "mandatory" => Some(UpdateTarget::Mandatory),
        "all" => Some(UpdateTarget::All),
        "none" => None,
        other => {
            c.fail(
                "include_updates.mode",
                format!("\"{other}\" is not required, all or none"),
            );
            None
        }
    };

    // Install Applications.
    for (i, app) in a.install_applications.applications.iter().enumerate() {
        if app.trim().is_empty() || app.contains(',') {
            c.fail(
                &format!("install_applications.applications[{i}]"),
                format!("\"{app}\" is not an application ID"),
            );
        }
    }

    // Image Properties.
    c.max_len("image_properties.version", &a.image_properties.version, 32);
    c.max_len(
        "image_properties.created_by",
        &a.image_properties.created_by,
        255,
    );
    c.max_len(
        "image_properties.description",
        &a.image_properties.description,
        255,
    );

    // Capture Image.
    let cap = &a.capture_image;
    if c.required("capture_image.path", &cap.path) {
        c.result("capture_image.path", check_capture_path(&cap.path));
    }
    // A network share needs an account; a local file:// target does not.
    let local = cap.path.trim().starts_with("file://");
    if !local || !cap.account.trim().is_empty() {
        if c.required("capture_image.account", &cap.account) {
            c.result("capture_image.account", check_account(&cap.account));
        }
        c.required("capture_image.password", &cap.password);
    }

    if !c.errors.is_empty() {
        return Err(AnswersError::Invalid(c.errors));
    }
    let spec = BuildAndCapture {
        package,
        apply_os: ApplyOsImage {
            image_package_id: iw.image_package.trim().to_string(),
            image_index: iw.image_index,
            run_from_net: false,
        },
        windows: ApplyWindowsSettings {
            product_key,
            server_license,
            random_admin_password: random_admin,
            admin_password: if random_admin {
                String::new()
            } else {
                iw.admin_password.clone()
            },
            ..ApplyWindowsSettings::default()
        },
        network: ApplyNetworkSettings { join },
        client: SetupWindows {
            client_package_id: a.install_configmgr.client_package.trim().to_string(),
            install_properties: a
                .install_configmgr
                .installation_properties
                .trim()
                .to_string(),
        },
        updates,
        applications: InstallApplication {
            applications: a
                .install_applications
                .applications
                .iter()
                .map(|s| s.trim().to_string())
                .collect(),
            base_variable: String::new(),
            continue_on_install_error: a.install_applications.continue_on_error,
            clear_cache: false,
        },
        capture: CaptureOsImage {
            destination: cap.path.trim().to_string(),
            account: cap.account.trim().to_string(),
            password: cap.password.clone(),
            image_creator: a.image_properties.created_by.clone(),
            image_description: a.image_properties.description.clone(),
            image_version: a.image_properties.version.clone(),
        },
    };
    Ok(templates::build_and_capture(&spec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_keys() {
        assert!(check_product_key("VK7JG-NPHTM-C97JM-9MPGT-3V66T").is_ok());
        assert_eq!(
            check_product_key("vk7jg-nphtm-c97jm-9mpgt-3v66t").unwrap(),
            "VK7JG-NPHTM-C97JM-9MPGT-3V66T"
        );
        assert!(check_product_key("VK7JG-NPHTM-C97JM-9MPGT")
            .unwrap_err()
            .contains("five groups"));
        assert!(check_product_key("VK7JG-NPHTM-C97JM-9MPGT-3V66TT").is_err());
        assert!(check_product_key("VK7JG-NPHTM-C97JM-9MPGT-3V66A")
            .unwrap_err()
            .contains("'A'"));
        assert!(check_product_key("VK7JG-NPHTM-C97JM-9MPGT-3V660")
            .unwrap_err()
            .contains("'0'"));
    }

    #[test]
    fn accounts() {
        assert!(check_account("CORP\\joiner").is_ok());
        assert!(check_account("%JoinAccount%").is_ok());
        for bad in [
            "joiner",
            "\\joiner",
            "CORP\\",
            "a\\b\\c",
            "joiner@corp.example",
            "%%",
            "%a b%",
            "CORP\\jo iner",
        ] {
            assert!(check_account(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ldap_names() {
        assert!(check_ldap_dn("LDAP://OU=Reference,OU=Computers,DC=corp,DC=example").is_ok());
        assert!(check_ldap_dn("OU=Ref,DC=corp").is_ok());
        assert!(check_ldap_dn("LDAP://dc01.corp.example/OU=Ref,DC=corp").is_ok());
        assert!(check_ldap_dn("OU=A\\,B,DC=corp").is_ok());
        for bad in [
            "",
            "LDAP://",
            "Computers",
            "OU=Ref",
            "OU=,DC=corp",
            "OU=Ref;DC=corp",
            "1OU=x,DC=y",
            "corp.example/Computers",
        ] {
            assert!(check_ldap_dn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn capture_paths() {
        assert!(check_capture_path("\\\\fs01\\captures\\ref.wim").is_ok());
        assert!(check_capture_path("smb://fs01/captures/sub/ref.WIM").is_ok());
        assert!(check_capture_path("file:///srv/captures/ref.wim").is_ok());
        for bad in [
            "C:\\ref.wim",
            "\\\\fs01\\ref.wim",
            "\\\\fs01\\share\\ref.txt",
            "smb://fs01/ref.wim",
            "http://x/y/z.wim",
            "file://relative.wim",
            "/srv/ref.wim",
        ] {
            assert!(check_capture_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn set_field_by_name() {
        let mut a = Answers::default();
        a.set_field("template", "custom").unwrap();
        assert_eq!(a.template, Template::Custom);
        a.set_field("install_windows.image_index", "3").unwrap();
        assert_eq!(a.install_windows.image_index, 3);
        assert_eq!(a.get_field("install_windows.image_index"), "3");
        a.set_field("install_windows.max_server_connections", "10")
            .unwrap();
        assert_eq!(a.install_windows.max_server_connections, Some(10));
        a.set_field("install_windows.max_server_connections", "")
            .unwrap();
        assert_eq!(a.install_windows.max_server_connections, None);
        a.set_field("install_applications.applications", "A, B")
            .unwrap();
        assert_eq!(a.install_applications.applications, vec!["A", "B"]);
        assert_eq!(a.get_field("install_applications.applications"), "A,B");
        assert_eq!(a.get_field("install_applications.nope"), "");
        a.set_field("install_applications.continue_on_error", "true")
            .unwrap();
        assert!(a.install_applications.continue_on_error);
        a.set_field("capture_image.path", "\\\\fs\\c\\r.wim")
            .unwrap();
        assert_eq!(a.capture_image.path, "\\\\fs\\c\\r.wim");
        for (k, v) in [
            ("install_windows.image_index", "x"),
            ("install_windows.nope", "1"),
            ("nope", "1"),
            ("template", "other"),
            ("install_applications.continue_on_error", "perhaps"),
        ] {
            let e = a.set_field(k, v).unwrap_err();
            assert!(e.to_string().contains(k) || k == "template", "{k}: {e}");
        }
    }

    #[test]
    fn architectures() {
        assert!(boot_arch_compatible(Arch::X64, Arch::X64));
        assert!(boot_arch_compatible(Arch::X86, Arch::X64));
        assert!(!boot_arch_compatible(Arch::X64, Arch::X86));
        assert!(!boot_arch_compatible(Arch::X64, Arch::Arm64));
    }
}
