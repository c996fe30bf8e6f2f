//! Secrets in a sequence: passwords ("secret") and product keys ("quasi-secret").
//!
//! ConfigMgr's `ExportXml` strips both so that an exported sequence never carries
//! them in clear; export here does the same unless the caller asks to keep them.
//! The rule is by variable name, because the same property appears under
//! several actions: a name ending in `Password` is a secret, except the two
//! settings that merely *choose* a password policy; product keys and the
//! BitLocker PIN are listed by name. A Set Task Sequence Variable step whose
//! value is marked "do not display" is treated as secret too.

use crate::model::{Sequence, Step, Variable};

/// Names (and WMI properties) that end in "Password" but hold a setting, not a secret.
const NOT_SECRET: [&str; 5] = [
    "OSDRandomAdminPassword",
    "OSDBitLockerCreateRecoveryPassword",
    "RandomAdminPassword",
    "CreateRecoveryPassword",
    "BdeRecoveryPassword",
];

/// Secrets whose names do not end in "Password" or "ProductKey".
const NAMED_SECRETS: [&str; 1] = ["OSDBitLockerPIN"];

fn looks_secret(n: &str) -> bool {
    let lower = n.to_ascii_lowercase();
    !NOT_SECRET.iter().any(|s| s.eq_ignore_ascii_case(n))
        && (NAMED_SECRETS.iter().any(|s| s.eq_ignore_ascii_case(n))
            || lower.ends_with("password")
            || lower.ends_with("productkey"))
}

/// True when the variable (by name, or by WMI property for MDT's own names) holds a secret.
pub fn is_secret(name: &str, property: Option<&str>) -> bool {
    if NOT_SECRET.iter().any(|s| s.eq_ignore_ascii_case(name)) {
        return false;
    }
    looks_secret(name) || property.is_some_and(looks_secret)
}

fn blank_vars(vars: &mut [Variable]) {
    for v in vars {
        if is_secret(&v.name, v.property.as_deref()) {
            v.value.clear();
        }
    }
}

fn blank_step(s: &mut Step) {
    if let Some(vars) = s.variables.as_mut() {
        blank_vars(vars);
    }
    let hidden_value = s
        .var("DoNotShowVariableValue")
        .and_then(crate::model::parse_bool)
        .unwrap_or(false);
    if s.type_name() == crate::steps::SET_VARIABLE && hidden_value {
        let name = s.var("VariableName").unwrap_or("").to_string();
        s.set_var("VariableValue", Some("VariableValue"), "");
        s.action = Some(crate::steps::set_variable_command(&name, "", true));
    }
}

/// Blanks every secret value in place.
pub fn blank_secrets(seq: &mut Sequence) {
    if let Some(g) = seq.global_variables.as_mut() {
        blank_vars(g);
    }
    seq.for_each_step_mut(&mut blank_step);
}

/// The secret values present (non-empty), as (step name, variable name).
pub fn secrets_present(seq: &Sequence) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (_, s) in seq.walk_steps() {
        for v in s.variables.iter().flatten() {
            if !v.value.is_empty() && is_secret(&v.name, v.property.as_deref()) {
                out.push((s.name.clone(), v.name.clone()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names() {
        for n in [
            "OSDJoinPassword",
            "OSDLocalAdminPassword",
            "OSDCaptureAccountPassword",
            "SMSConnectNetworkFolderPassword",
            "OSDRegisteredUserPassword",
            "SMSTSRunCommandLineUserPassword",
            "OSDProductKey",
            "SafeModeAdminPassword",
        ] {
            assert!(is_secret(n, None), "{n}");
        }
        for n in [
            "OSDRandomAdminPassword",
            "OSDBitLockerCreateRecoveryPassword",
            "OSDComputerName",
            "OSDJoinAccount",
        ] {
            assert!(!is_secret(n, None), "{n}");
        }
        assert!(!is_secret(
            "OSDBitLockerCreateRecoveryPassword",
            Some("BdeRecoveryPassword")
        ));
        assert!(is_secret("RunAsPwd", Some("UserPassword")));
    }
}
