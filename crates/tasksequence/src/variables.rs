//! Task sequence variables: valid names, the read-only `_` rule, array
//! variables (`OSDPartitions0Type`), `%VAR%` expansion and the names the
//! engine and the documented actions define (for "unknown variable" warnings).

use crate::model::{Item, Sequence};
use crate::steps::{StepKind, SET_VARIABLE};

/// Longest variable name ConfigMgr accepts (Set Task Sequence Variable).
pub const MAX_NAME: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("variable name is empty")]
    Empty,
    #[error("variable name \"{0}\" is longer than {MAX_NAME} characters")]
    TooLong(String),
    #[error("variable name \"{0}\" contains '{1}', which cannot be used in a name")]
    BadChar(String, char),
    #[error("variable \"{0}\" is read-only: names starting with '_' are set by the engine")]
    ReadOnly(String),
}

/// Read-only variables are those whose name starts with `_`.
pub fn is_read_only(name: &str) -> bool {
    name.starts_with('_')
}

/// Checks a name as a place to *read* from (any valid name).
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.chars().count() > MAX_NAME {
        return Err(NameError::TooLong(name.to_string()));
    }
    // `%` would break expansion, `=` the tsenv NAME=VALUE form, quotes the command line.
    if let Some(c) = name
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '%' | '=' | '"'))
    {
        return Err(NameError::BadChar(name.to_string(), c));
    }
    Ok(())
}

/// Checks a name that a step or the user wants to *set*.
pub fn check_settable(name: &str) -> Result<(), NameError> {
    check_name(name)?;
    if is_read_only(name) {
        return Err(NameError::ReadOnly(name.to_string()));
    }
    Ok(())
}

/// `OSDPartitions` + 0 + `Type` → `OSDPartitions0Type`.
pub fn array_element(base: &str, index: usize, property: &str) -> String {
    format!("{base}{index}{property}")
}

/// Splits an array element name: `OSDPartitions12Size` with base
/// `OSDPartitions` → `(12, "Size")`. Case-insensitive on the base.
pub fn split_array_element<'a>(name: &'a str, base: &str) -> Option<(usize, &'a str)> {
    if name.len() <= base.len() || !name.is_char_boundary(base.len()) {
        return None;
    }
    if !name[..base.len()].eq_ignore_ascii_case(base) {
        return None;
    }
    let rest = &name[base.len()..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 9 {
        return None;
    }
    let index = rest[..digits].parse().ok()?;
    Some((index, &rest[digits..]))
}

/// Expands `%NAME%` references with `lookup`. Unknown names are left as they
/// are (`%FOO%` stays `%FOO%`), as the engine does; `%%` stays `%%`.
pub fn expand(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find('%') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('%') {
            Some(end) if end > 0 && check_name(&after[..end]).is_ok() => {
                let name = &after[..end];
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => {
                        out.push('%');
                        out.push_str(name);
                        out.push('%');
                    }
                }
                rest = &after[end + 1..];
            }
            _ => {
                // Not a reference: keep the `%` and go on after it.
                out.push('%');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The `%NAME%` references in a string.
pub fn references(s: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find('%') {
        let after = &rest[start + 1..];
        match after.find('%') {
            Some(end) if end > 0 && check_name(&after[..end]).is_ok() => {
                found.push(after[..end].to_string());
                rest = &after[end + 1..];
            }
            _ => rest = after,
        }
    }
    found
}

/// Read-only variables the engine sets (task-sequence-variables.md).
pub const BUILT_IN_READ_ONLY: &[&str] = &[
    "_OSDDetectedWinDir",
    "_OSDDetectedWinDrive",
    "_OSDMigrateUsmtPackageID",
    "_OSDMigrateUsmtRestorePackageID",
    "_SMSTSAdvertID",
    "_SMSTSAssetTag",
    "_SMSTSBootImageID",
    "_SMSTSBootUEFI",
    "_SMSTSClientCache",
    "_SMSTSClientGUID",
    "_SMSTSCurrentActionName",
    "_SMSTSDefaultGateways",
    "_SMSTSDownloadOnDemand",
    "_SMSTSInWinPE",
    "_SMSTSIPAddresses",
    "_SMSTSLastActionName",
    "_SMSTSLastActionRetCode",
    "_SMSTSLastActionSucceeded",
    "_SMSTSLastContentDownloadLocation",
    "_SMSTSLaunchMode",
    "_SMSTSLogPath",
    "_SMSTSMacAddresses",
    "_SMSTSMachineName",
    "_SMSTSMake",
    "_SMSTSMDataPath",
    "_SMSTSMediaType",
    "_SMSTSModel",
    "_SMSTSMP",
    "_SMSTSMPPort",
    "_SMSTSOrgName",
    "_SMSTSOSUpgradeActionReturnCode",
    "_SMSTSPackageID",
    "_SMSTSPackageName",
    "_SMSTSRunFromDP",
    "_SMSTSSerialNumber",
    "_SMSTSSetupRollback",
    "_SMSTSSiteCode",
    "_SMSTSTimezone",
    "_SMSTSType",
    "_SMSTSUseCRL",
    "_SMSTSUserStarted",
    "_SMSTSUseSSL",
    "_SMSTSUUID",
    "_SMSTSWTG",
    "_TS_CRMEMORY",
    "_TS_CRSPEED",
    "_TS_CRDISK",
    "_TS_CROSTYPE",
    "_TS_CRARCH",
    "_TS_CRMINOSVER",
    "_TS_CRMAXOSVER",
    "_TS_CRCLIENTMINVER",
    "_TS_CROSLANGUAGE",
    "_TS_CRACPOWER",
    "_TS_CRNETWORK",
    "_TS_CRWIRED",
    "_TSAppInstallStatus",
    "_TSSecureBoot",
];

/// Settable variables that change engine behaviour (not tied to one step).
pub const BUILT_IN_SETTABLE: &[&str] = &[
    "SMSTSRebootRequested",
    "SMSTSRetryRequested",
    "SMSTSRebootDelay",
    "SMSTSRebootDelayNext",
    "SMSTSRebootMessage",
    "SMSTSLocalDataDrive",
    "SMSTSPostAction",
    "SMSTSPreferredAdvertID",
    "SMSTSPersistContent",
    "SMSTSPreserveContent",
    "SMSTSErrorDialogTimeout",
    "SMSTSDisableStatusRetry",
    "SMSTSAssignUsersMode",
    "SMSTSUDAUsers",
    "SMSTSMP",
    "SMSTSSoftwareUpdateScanTimeout",
    "SMSTSWaitForSecondReboot",
    "SMSTSDownloadRetryCount",
    "SMSTSDownloadRetryDelay",
    "SMSTSPeerDownload",
    "SMSTSPeerRequestPort",
    "SMSTSLanguageFolder",
    "TSDebugMode",
    "TSDebugOnError",
    "TSDisableProgressUI",
    "TSErrorOnWarning",
    "TSProgressInfoLevel",
    "SetupCompletePause",
    "OSDComputerName",
    "OSDisk",
    "OSDTargetSystemDrive",
    "OSDTargetSystemRoot",
    "OSDDoNotLogCommand",
];

/// Every variable name a sequence can rely on: the built-ins, the variables
/// of every step and of the global list, Set Task Sequence Variable targets
/// and Run Command Line output variables. Lower-cased (names are case-insensitive).
pub fn defined_names(seq: &Sequence) -> std::collections::BTreeSet<String> {
    let mut out: std::collections::BTreeSet<String> = BUILT_IN_READ_ONLY
        .iter()
        .chain(BUILT_IN_SETTABLE)
        .map(|n| n.to_ascii_lowercase())
        .collect();
    for v in seq.global_variables.iter().flatten() {
        out.insert(v.name.to_ascii_lowercase());
    }
    // A typed step's editor defaults name all its variables, even unset ones.
    for k in StepKind::ALL {
        for v in k.new_step("x").variables.iter().flatten() {
            out.insert(v.name.to_ascii_lowercase());
        }
    }
    fn walk(items: &[Item], out: &mut std::collections::BTreeSet<String>) {
        for it in items {
            match it {
                Item::Group(g) => walk(&g.items, out),
                Item::Step(s) => {
                    for v in s.variables.iter().flatten() {
                        out.insert(v.name.to_ascii_lowercase());
                    }
                    if s.type_name().eq_ignore_ascii_case(SET_VARIABLE) {
                        if let Some(n) = s.var("VariableName") {
                            out.insert(n.to_ascii_lowercase());
                        }
                    }
                    for key in [
                        "SMSTSRunCommandLineOutputVariableName",
                        "OSDRunPowerShellScriptOutputVariableName",
                    ] {
                        if let Some(n) = s.var(key) {
                            if !n.is_empty() {
                                out.insert(n.to_ascii_lowercase());
                            }
                        }
                    }
                    // Set Dynamic Variables rules and MDT Gather define names
                    // this crate cannot see; callers add collection variables.
                }
                Item::Unknown(_) => {}
            }
        }
    }
    walk(&seq.items, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_read_only_rule() {
        assert!(check_settable("OSDComputerName").is_ok());
        assert_eq!(
            check_settable("_SMSTSInWinPE"),
            Err(NameError::ReadOnly("_SMSTSInWinPE".into()))
        );
        assert!(check_name("_SMSTSInWinPE").is_ok());
        assert_eq!(check_name(""), Err(NameError::Empty));
        assert!(matches!(check_name("a b"), Err(NameError::BadChar(_, ' '))));
        assert!(matches!(check_name("a=b"), Err(NameError::BadChar(_, '='))));
        assert!(matches!(
            check_name(&"x".repeat(257)),
            Err(NameError::TooLong(_))
        ));
        assert!(check_name(&"x".repeat(256)).is_ok());
        assert!(BUILT_IN_READ_ONLY.iter().all(|n| is_read_only(n)));
    }

    #[test]
    fn array_variables() {
        assert_eq!(
            array_element("OSDPartitions", 0, "Type"),
            "OSDPartitions0Type"
        );
        assert_eq!(
            split_array_element("OSDPartitions12Size", "OSDPartitions"),
            Some((12, "Size"))
        );
        assert_eq!(
            split_array_element("osdpartitions3", "OSDPartitions"),
            Some((3, ""))
        );
        assert_eq!(
            split_array_element("OSDPartitionStyle", "OSDPartitions"),
            None
        );
        assert_eq!(split_array_element("OSDPartitions", "OSDPartitions"), None);
        assert_eq!(
            split_array_element("OSDPartitions99999999999Size", "OSDPartitions"),
            None
        );
    }

    proptest::proptest! {
        #[test]
        fn expansion_never_panics_and_is_identity_without_values(s in "\\PC{0,60}") {
            proptest::prop_assert_eq!(expand(&s, &|_| None), s.clone());
            let _ = expand(&s, &|n| Some(n.to_uppercase()));
            let _ = references(&s);
            let _ = split_array_element(&s, "OSDPartitions");
        }
    }

    #[test]
    fn expansion() {
        let look = |n: &str| match n.to_ascii_lowercase().as_str() {
            "a" => Some("1".to_string()),
            "_smstsmachinename" => Some("REF".to_string()),
            _ => None,
        };
        assert_eq!(expand("x%A%y", &look), "x1y");
        assert_eq!(expand("%_SMSTSMachineName%-%a%", &look), "REF-1");
        assert_eq!(expand("%UNKNOWN% stays", &look), "%UNKNOWN% stays");
        assert_eq!(expand("100% sure", &look), "100% sure");
        assert_eq!(expand("%% and %", &look), "%% and %");
        assert_eq!(expand("50% of %A%", &look), "50% of 1");
        assert_eq!(
            references("%DeployRoot%\\x %B% 5%"),
            vec!["DeployRoot", "B"]
        );
    }
}
