//! The task sequence environment: variables (case-insensitive names, a value
//! set to "" deletes the variable, as in ConfigMgr), which of them are
//! secrets, and the condition target that joins them with the computer.

use crate::computer::Computer;
use crate::volumes::Drives;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use tasq_tasksequence::eval::{FileInfo, Target};
use tasq_tasksequence::wql::{Instance, Inventory};
use tasq_volume::fs::{EntryKind, VolPath};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Var {
    /// The name as first set (lookups ignore case).
    pub name: String,
    pub value: String,
    pub secret: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    vars: BTreeMap<String, Var>,
}

impl Environment {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(&name.to_ascii_lowercase())
            .map(|v| v.value.as_str())
    }
    /// Sets a variable; "" deletes it. A name that is a secret by
    /// `tasq_tasksequence::secrets::is_secret` is always marked secret.
    pub fn set(&mut self, name: &str, value: &str) {
        self.set_with(name, value, false)
    }
    pub fn set_with(&mut self, name: &str, value: &str, secret: bool) {
        let key = name.to_ascii_lowercase();
        if value.is_empty() {
            self.vars.remove(&key);
            return;
        }
        let secret = secret
            || tasq_tasksequence::secrets::is_secret(name, None)
            || self.vars.get(&key).is_some_and(|v| v.secret);
        let n = self
            .vars
            .get(&key)
            .map(|v| v.name.clone())
            .unwrap_or_else(|| name.to_string());
        self.vars.insert(
            key,
            Var {
                name: n,
                value: value.to_string(),
                secret,
            },
        );
    }
    pub fn is_set(&self, name: &str) -> bool {
        self.vars.contains_key(&name.to_ascii_lowercase())
    }
    pub fn iter(&self) -> impl Iterator<Item = &Var> {
        self.vars.values()
    }
    /// The values to mask in logs and output.
    pub fn secret_values(&self) -> Vec<String> {
        self.vars
            .values()
            .filter(|v| v.secret && !v.value.is_empty())
            .map(|v| v.value.clone())
            .collect()
    }
    /// `%VAR%` expansion; unknown names stay as written.
    pub fn expand(&self, s: &str) -> String {
        tasq_tasksequence::variables::expand(s, &|n| self.get(n).map(str::to_string))
    }
    /// Name → value, for tests and reports (secrets included: callers mask).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.vars
            .values()
            .map(|v| (v.name.clone(), v.value.clone()))
            .collect()
    }
    pub fn from_vars(vars: Vec<Var>) -> Self {
        let mut e = Environment::new();
        for v in vars {
            e.set_with(&v.name, &v.value, v.secret);
        }
        e
    }
}

/// Collection/computer variables from a file: TOML `NAME = "value"` pairs, or
/// a `[secret]` table for values to treat as secrets.
pub fn load_variables_file(text: &str) -> Result<Vec<(String, String, bool)>, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (k, v) in table {
        match v {
            toml::Value::Table(t) if k.eq_ignore_ascii_case("secret") => {
                for (k, v) in t {
                    out.push((k.clone(), scalar(&k, &v)?, true));
                }
            }
            other => out.push((k.clone(), scalar(&k, &other)?, false)),
        }
    }
    for (n, _, _) in &out {
        tasq_tasksequence::variables::check_settable(n).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

fn scalar(k: &str, v: &toml::Value) -> Result<String, String> {
    match v {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Boolean(b) => Ok(if *b { "true" } else { "false" }.into()),
        _ => Err(format!("variable {k}: only strings, integers and booleans")),
    }
}

/// What conditions see: the variables, the computer's inventory, and files
/// and folders on the target volumes (drive letters resolved through the
/// run's drive map; paths without a drive letter are host paths).
pub struct EngineTarget<'a> {
    pub env: &'a Environment,
    pub inventory: &'a Inventory,
    pub drives: &'a Drives,
    pub computer: Option<&'a Computer>,
}

/// What a path names: a host path, or a path on a volume of the drive map.
enum Located {
    Host(PathBuf),
    Volume(char, String),
}

impl EngineTarget<'_> {
    fn locate(&self, p: &str) -> Located {
        let p = self.env.expand(p);
        match crate::volumes::split_drive_path(&p) {
            Some((l, rest)) => Located::Volume(l, rest.to_string()),
            None => Located::Host(PathBuf::from(p)),
        }
    }

    /// Kind and size of an entry on a volume; `None` when the letter is
    /// unknown or nothing is there.
    fn on_volume(&self, letter: char, rest: &str) -> Result<Option<EntryKind>, String> {
        let (Some(vol), Some(c)) = (self.drives.get(&letter), self.computer) else {
            return Ok(None);
        };
        let path = VolPath::parse(rest).map_err(|e| format!("{letter}:{rest}: {e}"))?;
        let mut fs = vol.open(c, false).map_err(|e| e.to_string())?;
        Ok(fs
            .metadata(&path)
            .map_err(|e| e.to_string())?
            .map(|e| e.kind))
    }
}

fn mtime(m: &std::fs::Metadata) -> Option<i64> {
    m.modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs() as i64)
}

impl Target for EngineTarget<'_> {
    fn variable(&self, name: &str) -> Option<String> {
        self.env.get(name).map(str::to_string)
    }
    fn file(&self, path: &str) -> Result<Option<FileInfo>, String> {
        match self.locate(path) {
            Located::Volume(l, rest) => Ok(self
                .on_volume(l, &rest)?
                .filter(|k| *k == EntryKind::File)
                .map(|_| FileInfo {
                    version: None,
                    modified: None,
                })),
            Located::Host(p) => {
                Ok(std::fs::metadata(p)
                    .ok()
                    .filter(|m| m.is_file())
                    .map(|m| FileInfo {
                        version: None,
                        modified: mtime(&m),
                    }))
            }
        }
    }
    fn folder(&self, path: &str) -> Result<Option<Option<i64>>, String> {
        match self.locate(path) {
            Located::Volume(l, rest) => Ok(self
                .on_volume(l, &rest)?
                .filter(|k| *k == EntryKind::Dir)
                .map(|_| None)),
            Located::Host(p) => Ok(std::fs::metadata(p)
                .ok()
                .filter(|m| m.is_dir())
                .map(|m| mtime(&m))),
        }
    }
    fn wmi_instances(&self, class: &str) -> Result<Vec<Instance>, String> {
        Ok(self.inventory.instances(class).to_vec())
    }
}

/// Convenience for tests and `--what-if`.
pub fn target_for<'a>(
    env: &'a Environment,
    inventory: &'a Inventory,
    drives: &'a Drives,
) -> EngineTarget<'a> {
    EngineTarget {
        env,
        inventory,
        drives,
        computer: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::computer::Computer;
    use tasq_tasksequence::eval::evaluate;

    fn cond(xml_inner: &str) -> tasq_tasksequence::condition::Condition {
        let xml = format!(
            "<sequence version=\"3.10\"><step type=\"SMS_TaskSequence_SetVariableAction\" name=\"s\"><condition>{xml_inner}</condition></step></sequence>"
        );
        let seq = tasq_tasksequence::import_str(&xml).unwrap();
        seq.walk_steps()[0].1.condition.clone().unwrap()
    }

    fn wmi(q: &str) -> String {
        format!("<expression type=\"SMS_TaskSequence_WMIConditionExpression\"><variable name=\"Namespace\">root\\cimv2</variable><variable name=\"Query\">{q}</variable></expression>")
    }

    #[test]
    fn wmi_conditions_query_the_computer() {
        let c = Computer::from_toml(
            "name=\"REF\"\nmake=\"Contoso\"\nmodel=\"Virtual 9\"\nmemory_mb=4096\nmac_addresses=[\"00:15:5D:01:02:03\"]\nchassis_types=[3]\n[[disks]]\npath=\"/nonexistent\"\nsize=1000\nusb=true\n",
            std::path::Path::new("x"),
        )
        .unwrap();
        let inv = c.inventory();
        let env = Environment::new();
        let drives = Drives::new();
        let t = target_for(&env, &inv, &drives);
        let yes = [
            "SELECT * FROM Win32_ComputerSystem WHERE Model LIKE '%Virtual%'",
            "SELECT * FROM Win32_ComputerSystem WHERE TotalPhysicalMemory &gt;= 4000000000",
            "SELECT * FROM Win32_NetworkAdapter WHERE MACAddress = '00:15:5D:01:02:03'",
            "SELECT * FROM Win32_DiskDrive WHERE InterfaceType = 'USB'",
            "SELECT * FROM Win32_SystemEnclosure WHERE ChassisTypes = 3",
        ];
        for q in yes {
            assert!(evaluate(&cond(&wmi(q)), &t, "s").unwrap(), "{q}");
        }
        let no = [
            "SELECT * FROM Win32_ComputerSystem WHERE Manufacturer = 'Fabrikam'",
            "SELECT * FROM Win32_Processor WHERE Architecture = 12",
            "SELECT * FROM Win32_SystemEnclosure WHERE ChassisTypes = 10",
        ];
        for q in no {
            assert!(!evaluate(&cond(&wmi(q)), &t, "s").unwrap(), "{q}");
        }
    }

    #[test]
    fn variables_are_case_insensitive_and_empty_deletes() {
        let mut e = Environment::new();
        e.set("OSDComputerName", "A");
        assert_eq!(e.get("osdcomputername"), Some("A"));
        e.set("OSDCOMPUTERNAME", "B");
        assert_eq!(
            e.to_map().get("OSDComputerName").map(String::as_str),
            Some("B")
        );
        e.set("osdcomputername", "");
        assert!(!e.is_set("OSDComputerName"));
        e.set("OSDJoinPassword", "pw");
        assert_eq!(e.secret_values(), vec!["pw".to_string()]);
        assert_eq!(e.expand("x%OSDJoinPassword%y%NOPE%"), "xpwy%NOPE%");
    }

    #[test]
    fn variables_file_reads_plain_and_secret() {
        let v = load_variables_file("A = \"1\"\nB = 2\n[secret]\nAdminPw = \"s3\"\n").unwrap();
        assert!(v.contains(&("A".into(), "1".into(), false)));
        assert!(v.contains(&("B".into(), "2".into(), false)));
        assert!(v.contains(&("AdminPw".into(), "s3".into(), true)));
        assert!(load_variables_file("_SMSTSInWinPE = \"x\"").is_err());
        assert!(load_variables_file("A = [1]").is_err());
    }
}
