//! Evaluating conditions against the target computer.
//!
//! The engine implements `Target` (variables, files, folders, registry,
//! installed MSI products, WMI inventory); this module applies ConfigMgr's
//! operator semantics:
//! - variable comparisons are case-insensitive, and numeric when both sides
//!   are numbers; `like` takes `%` and `*` as "any run of characters";
//!   a variable that is absent or empty does not exist (setting a TS variable
//!   to "" deletes it) and compares as "";
//! - the children of `<condition>` and of `and` are ANDed, `or` ORs them,
//!   `not` negates their AND; an operator with no children (seen in real
//!   exports as `<operator type="or"/>` before sibling expressions) has no
//!   effect: it is skipped;
//! - file versions compare part by part as numbers, dates as instants (UTC);
//! - registry `exists`/`nonExists` check the value (or the key when no value
//!   name is given) and the type when one is given; other operators compare
//!   the data;
//! - software: `AnyVersion` matches the upgrade code (else the product code),
//!   `ThisVersion` the product code and, when given, the version;
//! - WMI: the query is parsed and run over the inventory; true when at least
//!   one instance matches. An unsupported namespace, class or syntax is an error.
//!
//! Every error names the step (or group) whose condition failed to evaluate.

use std::cmp::Ordering;

use crate::condition::{CmpOp, CondNode, Condition, ExprKind, OpKind, SoftwareOp};
use crate::variables::expand;
use crate::wql;

/// A file seen on the target.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileInfo {
    /// File version resource (`10.0.19041.1`), if any.
    pub version: Option<String>,
    /// Last write time, seconds since 1970-01-01 UTC.
    pub modified: Option<i64>,
}

/// A registry lookup result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryLookup {
    KeyMissing,
    /// The key exists; the value does not.
    ValueMissing,
    /// The value (or, for an empty value name, the key's default value) exists.
    Value {
        value_type: String,
        data: String,
    },
}

/// An installed MSI product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub product_code: String,
    pub upgrade_code: String,
    pub name: String,
    pub version: String,
}

/// What the engine knows about the computer the sequence runs on. Methods
/// the environment cannot answer return `Err` with a reason; the default
/// implementations do, so a variables-only environment is one method.
pub trait Target {
    /// The value of a task sequence variable, if set. Names are case-insensitive.
    fn variable(&self, name: &str) -> Option<String>;
    fn file(&self, path: &str) -> Result<Option<FileInfo>, String> {
        let _ = path;
        Err("file checks are not available here".into())
    }
    /// Some(last write time) when the folder exists.
    fn folder(&self, path: &str) -> Result<Option<Option<i64>>, String> {
        let _ = path;
        Err("folder checks are not available here".into())
    }
    fn registry(&self, key_path: &str, value_name: &str) -> Result<RegistryLookup, String> {
        let _ = (key_path, value_name);
        Err("registry checks are not available here".into())
    }
    fn installed_products(&self) -> Result<Vec<Product>, String> {
        Err("installed software checks are not available here".into())
    }
    /// Instances of a WMI class from the target's inventory.
    fn wmi_instances(&self, class: &str) -> Result<Vec<wql::Instance>, String> {
        let _ = class;
        Err("no WMI inventory here".into())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("condition of \"{context}\": {message}")]
pub struct EvalError {
    /// The step or group whose condition this is.
    pub context: String,
    pub message: String,
}

/// Evaluates a condition; `context` (the step or group name) goes into errors.
pub fn evaluate(cond: &Condition, target: &dyn Target, context: &str) -> Result<bool, EvalError> {
    let err = |m: String| EvalError {
        context: context.to_string(),
        message: m,
    };
    all(&cond.items, target, &err)
}

type ErrFn<'a> = dyn Fn(String) -> EvalError + 'a;

fn all(items: &[CondNode], t: &dyn Target, err: &ErrFn) -> Result<bool, EvalError> {
    for n in items {
        if let Some(false) = node(n, t, err)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `None` for an operator without children: it takes no part.
fn node(n: &CondNode, t: &dyn Target, err: &ErrFn) -> Result<Option<bool>, EvalError> {
    match n {
        CondNode::Op(o) if o.items.is_empty() => Ok(None),
        CondNode::Op(o) => Ok(Some(match o.op.value {
            OpKind::And => all(&o.items, t, err)?,
            OpKind::Not => !all(&o.items, t, err)?,
            OpKind::Or => {
                let mut any = false;
                let mut voting = false;
                for c in &o.items {
                    match node(c, t, err)? {
                        Some(true) => {
                            any = true;
                            break;
                        }
                        Some(false) => voting = true,
                        None => {}
                    }
                }
                // An `or` whose children are all empty operators is vacuous (true).
                any || !voting
            }
        })),
        CondNode::Expr(e) => {
            let kind = e.kind().map_err(|x| err(x.to_string()))?;
            expression(&kind, t, err).map(Some)
        }
        CondNode::Unknown(el) => Err(err(format!("unknown condition element <{}>", el.name))),
    }
}

fn lookup_fn(t: &dyn Target) -> impl Fn(&str) -> Option<String> + '_ {
    move |n: &str| t.variable(n)
}

fn expression(k: &ExprKind, t: &dyn Target, err: &ErrFn) -> Result<bool, EvalError> {
    let look = lookup_fn(t);
    match k {
        ExprKind::Variable {
            variable,
            op,
            value,
        } => {
            let actual = t.variable(variable).filter(|v| !v.is_empty());
            Ok(match op {
                CmpOp::Exists => actual.is_some(),
                CmpOp::NotExists => actual.is_none(),
                CmpOp::Like => wildcard(actual.as_deref().unwrap_or(""), value),
                _ => compare(actual.as_deref().unwrap_or(""), *op, value),
            })
        }
        ExprKind::File {
            path,
            version,
            date_time,
        } => {
            let path = expand(path, &look);
            let Some(info) = t
                .file(&path)
                .map_err(|m| err(format!("file {path}: {m}")))?
            else {
                return Ok(false);
            };
            if let Some((op, want)) = version {
                let Some(have) = &info.version else {
                    return Ok(false);
                };
                let o = compare_versions(have, want).ok_or_else(|| {
                    err(format!(
                        "file version \"{want}\" or \"{have}\" is not a version"
                    ))
                })?;
                if !ordering_matches(o, *op) {
                    return Ok(false);
                }
            }
            if let Some((op, want)) = date_time {
                if !date_matches(info.modified, *op, want, err)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        ExprKind::Folder { path, date_time } => {
            let path = expand(path, &look);
            let Some(modified) = t
                .folder(&path)
                .map_err(|m| err(format!("folder {path}: {m}")))?
            else {
                return Ok(false);
            };
            match date_time {
                Some((op, want)) => date_matches(modified, *op, want, err),
                None => Ok(true),
            }
        }
        ExprKind::Registry {
            key_path,
            value_name,
            value_type,
            data,
            op,
        } => {
            let key = expand(key_path, &look);
            let found = t
                .registry(&key, value_name)
                .map_err(|m| err(format!("registry {key}: {m}")))?;
            let exists = match &found {
                RegistryLookup::KeyMissing => false,
                RegistryLookup::ValueMissing => value_name.is_empty(),
                RegistryLookup::Value { value_type: vt, .. } => {
                    value_type.is_empty() || vt.eq_ignore_ascii_case(value_type)
                }
            };
            Ok(match op {
                CmpOp::Exists => exists,
                CmpOp::NotExists => !exists,
                _ => match &found {
                    RegistryLookup::Value { data: have, .. } => compare(have, *op, data),
                    _ => false,
                },
            })
        }
        ExprKind::Software {
            op,
            product_code,
            upgrade_code,
            version,
            ..
        } => {
            let products = t
                .installed_products()
                .map_err(|m| err(format!("installed software: {m}")))?;
            let same = |a: &str, b: &str| {
                !b.is_empty()
                    && a.trim_matches(['{', '}'])
                        .eq_ignore_ascii_case(b.trim_matches(['{', '}']))
            };
            Ok(products.iter().any(|p| match op {
                SoftwareOp::AnyVersion if !upgrade_code.is_empty() => {
                    same(&p.upgrade_code, upgrade_code)
                }
                SoftwareOp::AnyVersion => same(&p.product_code, product_code),
                SoftwareOp::ThisVersion => {
                    same(&p.product_code, product_code)
                        && (version.is_empty()
                            || compare_versions(&p.version, version) == Some(Ordering::Equal))
                }
            }))
        }
        ExprKind::Wmi { namespace, query } => {
            let ns = namespace
                .trim()
                .trim_start_matches("\\\\.\\")
                .to_ascii_lowercase();
            if !(ns.is_empty() || ns == "root\\cimv2") {
                return Err(err(format!(
                    "WMI namespace {namespace} is not supported (only root\\cimv2 is in the inventory)"
                )));
            }
            let q = wql::parse(query).map_err(|e| err(format!("{e} in \"{query}\"")))?;
            let inst = t
                .wmi_instances(&q.class)
                .map_err(|m| err(format!("WMI {}: {m}", q.class)))?;
            Ok(!wql::run(&q, &inst).is_empty())
        }
        ExprKind::Other(ty) => Err(err(format!("condition type {ty} cannot be evaluated"))),
    }
}

fn number(s: &str) -> Option<f64> {
    let t = s.trim();
    // Only plain decimal numbers: "1e3", "inf" or "0x10" stay strings.
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if digits.is_empty()
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        || digits.matches('.').count() > 1
        || digits == "."
    {
        return None;
    }
    t.parse().ok()
}

fn ordering_matches(o: Ordering, op: CmpOp) -> bool {
    match op {
        CmpOp::Equals => o == Ordering::Equal,
        CmpOp::NotEquals => o != Ordering::Equal,
        CmpOp::Less => o == Ordering::Less,
        CmpOp::LessEqual => o != Ordering::Greater,
        CmpOp::Greater => o == Ordering::Greater,
        CmpOp::GreaterEqual => o != Ordering::Less,
        CmpOp::Exists | CmpOp::NotExists | CmpOp::Like => false,
    }
}

/// ConfigMgr's variable comparison: numeric when both sides are numbers,
/// otherwise case-insensitive text.
pub fn compare(actual: &str, op: CmpOp, expected: &str) -> bool {
    let o = match (number(actual), number(expected)) {
        (Some(a), Some(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
        _ => actual.to_lowercase().cmp(&expected.to_lowercase()),
    };
    if op == CmpOp::Like {
        return wildcard(actual, expected);
    }
    ordering_matches(o, op)
}

/// `like`: `%` and `*` match any run of characters; case-insensitive.
pub fn wildcard(text: &str, pattern: &str) -> bool {
    // Map both wildcards to WQL's `%`, escaping WQL's other specials so they are literal.
    let mut p = String::new();
    for c in pattern.chars() {
        match c {
            '*' | '%' => p.push('%'),
            '_' => p.push_str("[_]"),
            '[' => p.push_str("[[]"),
            c => p.push(c),
        }
    }
    wql::like(text, &p)
}

/// Compares dotted versions part by part as numbers (`10.0.9` < `10.0.10`);
/// missing parts count as 0.
pub fn compare_versions(a: &str, b: &str) -> Option<Ordering> {
    let parse = |s: &str| -> Option<Vec<u64>> {
        s.trim()
            .split(['.', ','])
            .map(|p| p.trim().parse::<u64>().ok())
            .collect()
    };
    let (x, y) = (parse(a)?, parse(b)?);
    let n = x.len().max(y.len());
    for i in 0..n {
        let o = x.get(i).unwrap_or(&0).cmp(y.get(i).unwrap_or(&0));
        if o != Ordering::Equal {
            return Some(o);
        }
    }
    Some(Ordering::Equal)
}

fn date_matches(have: Option<i64>, op: CmpOp, want: &str, err: &ErrFn) -> Result<bool, EvalError> {
    let w = parse_wmi_datetime(want).ok_or_else(|| {
        err(format!(
            "\"{want}\" is not a WMI date-time (yyyymmddHHMMSS.mmmmmm+UUU)"
        ))
    })?;
    Ok(match have {
        Some(h) => ordering_matches(h.cmp(&w), op),
        None => false,
    })
}

/// Parses a CIM date-time `yyyymmddHHMMSS.mmmmmmsUUU` (UUU = minutes from UTC)
/// to seconds since 1970-01-01 UTC. Fractions are ignored.
pub fn parse_wmi_datetime(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 14 || !b[..14].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(8..10)?, num(10..12)?, num(12..14)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut offset_min = 0i64;
    if let Some(sign_at) = s.get(14..).and_then(|r| r.find(['+', '-'])).map(|i| i + 14) {
        let sign = if b[sign_at] == b'-' { -1 } else { 1 };
        offset_min = sign * s.get(sign_at + 1..)?.trim().parse::<i64>().ok()?;
    }
    // Days from civil (proleptic Gregorian), Howard Hinnant's algorithm.
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se - offset_min * 60)
}

/// A simple `Target` for tests and tools: maps for every kind of fact.
#[derive(Debug, Clone, Default)]
pub struct MemoryTarget {
    pub variables: std::collections::BTreeMap<String, String>,
    pub files: std::collections::BTreeMap<String, FileInfo>,
    pub folders: std::collections::BTreeMap<String, Option<i64>>,
    /// (key path, value name) lower-cased → (type, data); keys listed with an empty value name.
    pub registry: std::collections::BTreeMap<(String, String), (String, String)>,
    pub products: Vec<Product>,
    pub inventory: wql::Inventory,
}

impl MemoryTarget {
    pub fn set(&mut self, name: &str, value: &str) {
        self.variables
            .insert(name.to_ascii_lowercase(), value.to_string());
    }
}

impl Target for MemoryTarget {
    fn variable(&self, name: &str) -> Option<String> {
        self.variables.get(&name.to_ascii_lowercase()).cloned()
    }
    fn file(&self, path: &str) -> Result<Option<FileInfo>, String> {
        Ok(self.files.get(&path.to_ascii_lowercase()).cloned())
    }
    fn folder(&self, path: &str) -> Result<Option<Option<i64>>, String> {
        Ok(self.folders.get(&path.to_ascii_lowercase()).copied())
    }
    fn registry(&self, key_path: &str, value_name: &str) -> Result<RegistryLookup, String> {
        let k = key_path.to_ascii_lowercase();
        if let Some((t, d)) = self
            .registry
            .get(&(k.clone(), value_name.to_ascii_lowercase()))
        {
            return Ok(RegistryLookup::Value {
                value_type: t.clone(),
                data: d.clone(),
            });
        }
        Ok(if self.registry.keys().any(|(kk, _)| *kk == k) {
            RegistryLookup::ValueMissing
        } else {
            RegistryLookup::KeyMissing
        })
    }
    fn installed_products(&self) -> Result<Vec<Product>, String> {
        Ok(self.products.clone())
    }
    fn wmi_instances(&self, class: &str) -> Result<Vec<wql::Instance>, String> {
        Ok(self.inventory.instances(class).to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condition::{
        Expression, FILE_EXPR, FOLDER_EXPR, REGISTRY_EXPR, SOFTWARE_EXPR, WMI_EXPR,
    };
    use crate::configmgr::import_str;

    fn var(v: &str, op: CmpOp, val: &str) -> Condition {
        Condition::all(vec![Expression::variable(v, op, val)])
    }

    fn eval(c: &Condition, t: &MemoryTarget) -> bool {
        evaluate(c, t, "step").unwrap()
    }

    #[test]
    fn variable_operators() {
        let mut t = MemoryTarget::default();
        t.set("_SMSTSInWinPE", "FALSE");
        t.set("Num", "10");
        t.set("Model", "Latitude 7490");
        t.set("Empty", "");
        assert!(eval(&var("_smstsinwinpe", CmpOp::Equals, "false"), &t));
        assert!(!eval(&var("_SMSTSInWinPE", CmpOp::NotEquals, "False"), &t));
        assert!(eval(&var("Num", CmpOp::Greater, "9"), &t)); // numeric, not "10" < "9"
        assert!(eval(&var("Num", CmpOp::LessEqual, "10.0"), &t));
        assert!(eval(&var("Num", CmpOp::GreaterEqual, "10"), &t));
        assert!(!eval(&var("Num", CmpOp::Less, "10"), &t));
        assert!(eval(&var("Model", CmpOp::Less, "m"), &t)); // text, case-insensitive
        assert!(eval(&var("Model", CmpOp::Like, "lat*"), &t));
        assert!(eval(&var("Model", CmpOp::Like, "%7490"), &t));
        assert!(!eval(&var("Model", CmpOp::Like, "Lat"), &t));
        assert!(eval(&var("Model", CmpOp::Exists, ""), &t));
        assert!(eval(&var("Missing", CmpOp::NotExists, ""), &t));
        assert!(eval(&var("Empty", CmpOp::NotExists, ""), &t));
        assert!(eval(&var("Missing", CmpOp::Equals, ""), &t));
        assert!(!eval(&var("Missing", CmpOp::Equals, "x"), &t));
    }

    #[test]
    fn operators_implicit_and_and_empty_operator() {
        let x = r#"<sequence><step name="s"><condition><operator type="or"/><expression type="SMS_TaskSequence_VariableConditionExpression"><variable name="Operator">equals</variable><variable name="Value">HP</variable><variable name="Variable">Make</variable></expression><operator type="not"><expression type="SMS_TaskSequence_VariableConditionExpression"><variable name="Operator">exists</variable><variable name="Variable">Skip</variable></expression></operator></condition></step></sequence>"#;
        let seq = import_str(x).unwrap();
        let c = seq.walk_steps()[0].1.condition.clone().unwrap();
        let mut t = MemoryTarget::default();
        t.set("Make", "hp");
        assert!(eval(&c, &t));
        t.set("Skip", "1");
        assert!(!eval(&c, &t)); // the implicit AND with the `not`
        t = MemoryTarget::default();
        t.set("Make", "Dell");
        assert!(!eval(&c, &t));

        let or = r#"<sequence><step name="s"><condition><operator type="OR"><expression type="SMS_TaskSequence_VariableConditionExpression"><variable name="Operator">equals</variable><variable name="Value">1</variable><variable name="Variable">A</variable></expression><expression type="SMS_TaskSequence_VariableConditionExpression"><variable name="Operator">equals</variable><variable name="Value">1</variable><variable name="Variable">B</variable></expression></operator></condition></step></sequence>"#;
        let c = import_str(or).unwrap().walk_steps()[0]
            .1
            .condition
            .clone()
            .unwrap();
        let mut t = MemoryTarget::default();
        assert!(!eval(&c, &t));
        t.set("B", "01");
        assert!(eval(&c, &t));
    }

    #[test]
    fn file_folder_registry_software() {
        let mut t = MemoryTarget::default();
        t.set("WinDir", "C:\\Windows");
        t.files.insert(
            "c:\\windows\\system32\\ntoskrnl.exe".into(),
            FileInfo {
                version: Some("10.0.19041.1".into()),
                modified: parse_wmi_datetime("20200101000000.000000+000"),
            },
        );
        t.folders.insert("c:\\windows".into(), Some(0));
        t.registry.insert(
            ("hkey_local_machine\\software\\x".into(), "ver".into()),
            ("REG_DWORD".into(), "7".into()),
        );
        t.products.push(Product {
            product_code: "{AAA}".into(),
            upgrade_code: "{BBB}".into(),
            name: "App".into(),
            version: "1.2.3".into(),
        });
        let file = |vo: &str, v: &str, dop: &str, d: &str| {
            Condition::all(vec![Expression::new(
                FILE_EXPR,
                &[
                    ("Path", "%WinDir%\\System32\\ntoskrnl.exe"),
                    ("VersionOperator", vo),
                    ("Version", v),
                    ("DateTimeOperator", dop),
                    ("DateTime", d),
                ],
            )])
        };
        assert!(eval(&file("", "", "", ""), &t));
        assert!(eval(&file("greater", "10.0.9200", "", ""), &t));
        assert!(!eval(&file("less", "10.0.9200", "", ""), &t));
        assert!(eval(
            &file(
                "equals",
                "10.0.19041.1",
                "greaterEqual",
                "20191231230000.000000-060"
            ),
            &t
        ));
        assert!(!eval(
            &file("", "", "greater", "20200101000000.000000+000"),
            &t
        ));
        let missing = Condition::all(vec![Expression::new(FILE_EXPR, &[("Path", "C:\\nope")])]);
        assert!(!eval(&missing, &t));
        let folder = Condition::all(vec![Expression::new(FOLDER_EXPR, &[("Path", "%WINDIR%")])]);
        assert!(eval(&folder, &t));

        let reg = |op: &str, name: &str, ty: &str, data: &str| {
            Condition::all(vec![Expression::new(
                REGISTRY_EXPR,
                &[
                    ("KeyPath", "HKEY_LOCAL_MACHINE\\SOFTWARE\\X"),
                    ("Operator", op),
                    ("Value", name),
                    ("Type", ty),
                    ("Data", data),
                ],
            )])
        };
        assert!(eval(&reg("exists", "Ver", "REG_DWORD", ""), &t));
        assert!(!eval(&reg("exists", "Ver", "REG_SZ", ""), &t));
        assert!(eval(&reg("nonExists", "Other", "", ""), &t));
        assert!(eval(&reg("exists", "", "", ""), &t)); // the key itself
        assert!(eval(&reg("greater", "Ver", "REG_DWORD", "6"), &t));
        assert!(!eval(&reg("equals", "Other", "", "7"), &t));

        let sw = |op: &str, pc: &str, uc: &str, v: &str| {
            Condition::all(vec![Expression::new(
                SOFTWARE_EXPR,
                &[
                    ("Operator", op),
                    ("ProductCode", pc),
                    ("UpgradeCode", uc),
                    ("Version", v),
                ],
            )])
        };
        assert!(eval(&sw("AnyVersion", "", "{bbb}", ""), &t));
        assert!(eval(&sw("ThisVersion", "{AAA}", "", "1.2.3"), &t));
        assert!(!eval(&sw("ThisVersion", "{AAA}", "", "1.2.4"), &t));
        assert!(!eval(&sw("AnyVersion", "", "{CCC}", ""), &t));
    }

    #[test]
    fn wmi_over_inventory_and_errors_name_the_step() {
        let mut t = MemoryTarget::default();
        t.inventory.add(
            "Win32_ComputerSystem",
            wql::Instance::new().with("Manufacturer", "HP"),
        );
        let wmi = |ns: &str, q: &str| {
            Condition::all(vec![Expression::new(
                WMI_EXPR,
                &[("Namespace", ns), ("Query", q)],
            )])
        };
        assert!(eval(
            &wmi(
                "root\\cimv2",
                "SELECT * FROM Win32_ComputerSystem WHERE Manufacturer = \"HP\""
            ),
            &t
        ));
        assert!(!eval(&wmi("root\\CIMV2", "SELECT * FROM Win32_BIOS"), &t));
        let e = evaluate(
            &wmi(
                "root\\cimv2\\Security\\MicrosoftTpm",
                "SELECT * FROM Win32_Tpm",
            ),
            &t,
            "Check TPM",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("\"Check TPM\"") && e.message.contains("namespace"),
            "{e}"
        );
        let e = evaluate(
            &wmi("root\\cimv2", "SELECT * FROM Win32_Tpm"),
            &t,
            "Check TPM",
        )
        .unwrap_err();
        assert!(e.message.contains("Win32_Tpm"), "{e}");
        let e = evaluate(
            &wmi("root\\cimv2", "SELECT * FROM Win32_BIOS WHERE"),
            &t,
            "S",
        )
        .unwrap_err();
        assert!(e.message.contains("WQL"), "{e}");
        // An environment that cannot answer is an error, not "false".
        struct VarsOnly;
        impl Target for VarsOnly {
            fn variable(&self, _: &str) -> Option<String> {
                None
            }
        }
        assert!(evaluate(
            &wmi("root\\cimv2", "SELECT * FROM Win32_BIOS"),
            &VarsOnly,
            "S"
        )
        .is_err());
    }

    #[test]
    fn helpers() {
        assert_eq!(compare_versions("10.0.9", "10.0.10"), Some(Ordering::Less));
        assert_eq!(compare_versions("1.2", "1.2.0.0"), Some(Ordering::Equal));
        assert_eq!(compare_versions("1.x", "1"), None);
        assert_eq!(parse_wmi_datetime("19700101000000.000000+000"), Some(0));
        assert_eq!(parse_wmi_datetime("19700101010000.000000+060"), Some(0));
        assert_eq!(parse_wmi_datetime("20000301000000"), Some(951_868_800));
        assert_eq!(parse_wmi_datetime("2000"), None);
        assert!(wildcard("a_b", "a_b") && !wildcard("axb", "a_b"));
        assert!(compare("1e3", CmpOp::NotEquals, "1000"));
    }
}
