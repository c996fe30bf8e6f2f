//! `tasq ts validate`: problems a sequence would hit when it runs.
//!
//! Rules (each has a failing and a passing test below):
//! - `run-in`: a WinPE-only step where only the full OS can be running, or a
//!   full-OS-only step where only Windows PE can be. The phase is followed
//!   through the sequence: Restart Computer switches to its target, Setup
//!   Windows and ConfigMgr ends in the full OS, Prepare Windows for Capture in
//!   Windows PE; a condition on `_SMSTSInWinPE` limits the phases a step runs in.
//!   The start is either phase.
//! - `domain-before-capture`: Prepare Windows for Capture after a step that
//!   joins a domain (Sysprep fails on a domain member).
//! - `missing-content`: a referenced package or application not in the
//!   content library (when one is given).
//! - `duplicate-name`: two entries with the same name in one group.
//! - `read-only-variable`: Set Task Sequence Variable on a `_` variable.
//! - `step-values`: a known step whose variables do not read (bad number, …).
//! - `unknown-variable` (warning): a condition on a variable nothing defines.
//! - `wmi-query` (warning): a WMI condition the inventory cannot answer.

use std::collections::BTreeSet;
use std::fmt;

use crate::condition::{CmpOp, CondNode, Condition, ExprKind};
use crate::model::{parse_bool, Group, Item, Reference, RunIn, Sequence, Step};
use crate::steps::{self, StepKind};
use crate::variables;
use crate::wql;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    /// Short rule name (`run-in`, `duplicate-name`, …).
    pub rule: &'static str,
    /// Path of the entry (`Group/Step`), empty for the sequence.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.path.is_empty() {
            write!(f, "{sev}[{}]: {}", self.rule, self.message)
        } else {
            write!(f, "{sev}[{}]: {}: {}", self.rule, self.path, self.message)
        }
    }
}

/// What the checks may know beyond the sequence itself.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Content IDs present in the content library; `None` skips `missing-content`.
    pub content: Option<BTreeSet<String>>,
    /// The sequence's boot image package (a package property), if known.
    pub boot_image_id: Option<String>,
    /// Variables defined outside the sequence (collection, device, media).
    pub extra_variables: Vec<String>,
}

/// Is a content ID present? Applications (`ScopeId_…/Application_…`) may be
/// listed whole or by their last segment.
fn has_content(lib: &BTreeSet<String>, id: &str) -> bool {
    let up = |s: &str| s.to_ascii_uppercase();
    lib.contains(&up(id))
        || id
            .rsplit('/')
            .next()
            .is_some_and(|last| lib.contains(&up(last)))
}

/// Runs every rule.
pub fn validate(seq: &Sequence, ctx: &Context) -> Vec<Problem> {
    let mut v = Validator {
        out: Vec::new(),
        defined: variables::defined_names(seq),
        joined_domain: None,
    };
    for n in &ctx.extra_variables {
        v.defined.insert(n.to_ascii_lowercase());
    }
    v.duplicates(&seq.items, "");
    let start = Phases { pe: true, os: true };
    v.items(&seq.items, "", start);
    if let Some(lib) = &ctx.content {
        for (where_, id) in referenced_content(seq, ctx) {
            if !has_content(lib, &id) {
                v.push(
                    Severity::Error,
                    "missing-content",
                    &where_,
                    format!("content {id} is not in the content library"),
                );
            }
        }
    }
    v.out.sort_by_key(|p| std::cmp::Reverse(p.severity));
    v.out
}

/// Every content ID the sequence needs, with where it is used.
pub fn referenced_content(seq: &Sequence, ctx: &Context) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut push = |w: String, id: &str| {
        let id = id.trim();
        if !id.is_empty() && seen.insert(id.to_ascii_uppercase()) {
            out.push((w, id.to_string()));
        }
    };
    if let Some(b) = &ctx.boot_image_id {
        push("boot image".into(), b);
    }
    for r in seq.references.iter().flatten() {
        if let Some(id) = Reference::content_id(r) {
            push("referenceList".into(), id);
        }
    }
    for (groups, s) in seq.walk_steps() {
        let path = join_path(&groups, &s.name);
        for var in [
            "ImagePackageID",
            "_SMSClientPackageID",
            "OSDApplyDriverDriverPackageID",
            "PackageID",
            "OSDSubTasksequencePackageID",
        ] {
            if let Some(id) = s.var(var) {
                push(path.clone(), id);
            }
        }
        if let Some(apps) = s.var("ApplicationName") {
            for a in apps.split(',') {
                push(path.clone(), a);
            }
        }
    }
    out
}

fn join_path(groups: &[&str], name: &str) -> String {
    let mut p = groups.join("/");
    if !p.is_empty() {
        p.push('/');
    }
    p.push_str(name);
    p
}

/// The phases the engine may be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Phases {
    pe: bool,
    os: bool,
}

impl Phases {
    fn none(self) -> bool {
        !self.pe && !self.os
    }
    fn union(self, o: Phases) -> Phases {
        Phases {
            pe: self.pe || o.pe,
            os: self.os || o.os,
        }
    }
    fn describe(self) -> &'static str {
        match (self.pe, self.os) {
            (true, false) => "only Windows PE",
            (false, true) => "only the full OS",
            _ => "either",
        }
    }
}

/// The phases in which a condition can be true, judged only by `_SMSTSInWinPE`,
/// and the phases in which the entry can be skipped: when the condition tests
/// nothing else, only the phases it excludes; otherwise any.
fn condition_phases(c: &Option<Condition>, p: Phases) -> (Phases, Phases) {
    let Some(c) = c else {
        return (
            p,
            Phases {
                pe: false,
                os: false,
            },
        );
    };
    let mut runs = p;
    let mut only_phase = true;
    for n in &c.items {
        let CondNode::Expr(e) = n else {
            only_phase = false;
            continue;
        };
        match e.kind() {
            Ok(ExprKind::Variable {
                variable,
                op,
                value,
            }) if variable.eq_ignore_ascii_case("_SMSTSInWinPE") => {
                let (pe_ok, os_ok) = match (op, parse_bool(&value)) {
                    (CmpOp::Equals, Some(true)) | (CmpOp::NotEquals, Some(false)) => (true, false),
                    (CmpOp::Equals, Some(false)) | (CmpOp::NotEquals, Some(true)) => (false, true),
                    _ => (true, true),
                };
                runs.pe &= pe_ok;
                runs.os &= os_ok;
            }
            _ => only_phase = false,
        }
    }
    let skipped = if only_phase {
        Phases {
            pe: p.pe && !runs.pe,
            os: p.os && !runs.os,
        }
    } else {
        p
    };
    (runs, skipped)
}

struct Validator {
    out: Vec<Problem>,
    defined: BTreeSet<String>,
    /// The path of the first step that joins a domain, once seen.
    joined_domain: Option<String>,
}

impl Validator {
    fn push(&mut self, severity: Severity, rule: &'static str, path: &str, message: String) {
        self.out.push(Problem {
            severity,
            rule,
            path: path.to_string(),
            message,
        });
    }

    fn duplicates(&mut self, items: &[Item], prefix: &str) {
        // Names compare case-insensitively; a set keeps big groups linear.
        let mut seen = std::collections::HashSet::new();
        for it in items {
            let Some(name) = it.name() else { continue };
            let path = if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}/{name}")
            };
            if !seen.insert(name.to_lowercase()) {
                let level = if prefix.is_empty() {
                    "the top level".to_string()
                } else {
                    format!("group {prefix}")
                };
                self.push(
                    Severity::Error,
                    "duplicate-name",
                    &path,
                    format!("another entry in {level} has the name \"{name}\""),
                );
            }
            if let Item::Group(g) = it {
                self.duplicates(&g.items, &path);
            }
        }
    }

    fn conditions(&mut self, c: &Option<Condition>, path: &str) {
        let Some(c) = c else { return };
        for e in c.expressions() {
            match e.kind() {
                Ok(ExprKind::Variable { variable, .. }) => {
                    if !self.defined.contains(&variable.to_ascii_lowercase()) {
                        self.push(
                            Severity::Warning,
                            "unknown-variable",
                            path,
                            format!("the condition reads {variable}, which no step, built-in or known variable defines"),
                        );
                    }
                }
                Ok(ExprKind::Wmi { namespace, query }) => {
                    let ns = namespace
                        .trim()
                        .trim_start_matches("\\\\.\\")
                        .to_ascii_lowercase();
                    if !(ns.is_empty() || ns == "root\\cimv2") {
                        self.push(
                            Severity::Warning,
                            "wmi-query",
                            path,
                            format!("namespace {namespace} is not in the inventory"),
                        );
                    } else if let Err(e) = wql::parse(&query) {
                        self.push(
                            Severity::Warning,
                            "wmi-query",
                            path,
                            format!("{e} in \"{query}\""),
                        );
                    }
                }
                Ok(_) => {}
                Err(e) => self.push(Severity::Error, "step-values", path, e.to_string()),
            }
        }
    }

    /// Walks the items in order; returns the phases after them.
    fn items(&mut self, items: &[Item], prefix: &str, mut p: Phases) -> Phases {
        for it in items {
            let Some(name) = it.name() else { continue };
            let path = if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}/{name}")
            };
            p = match it {
                Item::Group(g) => self.group(g, &path, p),
                Item::Step(s) => self.step(s, &path, p),
                Item::Unknown(_) => p,
            };
        }
        p
    }

    fn group(&mut self, g: &Group, path: &str, p: Phases) -> Phases {
        self.conditions(&g.condition, path);
        if g.is_disabled() {
            return p;
        }
        let (runs, skipped) = condition_phases(&g.condition, p);
        if runs.none() {
            return p;
        }
        self.items(&g.items, path, runs).union(skipped)
    }

    fn step(&mut self, s: &Step, path: &str, p: Phases) -> Phases {
        self.conditions(&s.condition, path);
        let kind = StepKind::of(s);
        self.step_values(s, kind, path);
        if s.is_disabled() {
            return p;
        }
        let (runs, skipped) = condition_phases(&s.condition, p);
        if runs.none() {
            return p;
        }
        let run_in = s.run_in().or(kind.map(StepKind::run_in));
        if let Some(r) = run_in {
            let ok = (runs.pe && r.allows_winpe()) || (runs.os && r.allows_full_os());
            if !ok {
                let what = match r {
                    RunIn::WinPE => "a Windows PE step",
                    RunIn::FullOS => "a full-OS step",
                    RunIn::WinPEandFullOS => "a step",
                };
                self.push(
                    Severity::Error,
                    "run-in",
                    path,
                    format!("{what} where {} can be running", runs.describe()),
                );
            }
        }
        let after = match kind {
            Some(StepKind::RestartComputer) => match steps::RestartComputer::read(s) {
                Ok(r) if r.target == steps::RebootTarget::WinPE => Phases {
                    pe: true,
                    os: false,
                },
                Ok(_) => Phases {
                    pe: false,
                    os: true,
                },
                Err(_) => Phases { pe: true, os: true },
            },
            Some(StepKind::SetupWindowsAndConfigMgr) => Phases {
                pe: false,
                os: true,
            },
            Some(StepKind::PrepareWindowsForCapture) => Phases {
                pe: true,
                os: false,
            },
            _ => runs,
        };
        // Domain joins and the capture preparation that they break.
        let joins = match kind {
            Some(StepKind::ApplyNetworkSettings) => {
                s.var("OSDNetworkJoinType").map(str::trim) == Some("0")
            }
            None if s.type_name().eq_ignore_ascii_case(steps::JOIN_DOMAIN) => {
                s.var("OSDJoinType").map(str::trim) == Some("0")
            }
            _ => false,
        };
        if joins && self.joined_domain.is_none() {
            self.joined_domain = Some(path.to_string());
        }
        if kind == Some(StepKind::PrepareWindowsForCapture) {
            if let Some(j) = self.joined_domain.clone() {
                self.push(
                    Severity::Error,
                    "domain-before-capture",
                    path,
                    format!("Sysprep fails on a domain member, and \"{j}\" joins a domain first; join a workgroup instead"),
                );
            }
        }
        after.union(skipped)
    }

    fn step_values(&mut self, s: &Step, kind: Option<StepKind>, path: &str) {
        let r: Result<(), crate::Error> = match kind {
            Some(StepKind::RestartComputer) => steps::RestartComputer::read(s).map(drop),
            Some(StepKind::FormatAndPartitionDisk) => steps::PartitionDisk::read(s).map(drop),
            Some(StepKind::ApplyOperatingSystemImage) => steps::ApplyOsImage::read(s).map(drop),
            Some(StepKind::ApplyWindowsSettings) => steps::ApplyWindowsSettings::read(s).map(drop),
            Some(StepKind::ApplyNetworkSettings) => steps::ApplyNetworkSettings::read(s).map(drop),
            Some(StepKind::AutoApplyDrivers) => steps::AutoApplyDrivers::read(s).map(drop),
            Some(StepKind::ApplyDriverPackage) => steps::ApplyDriverPackage::read(s).map(drop),
            Some(StepKind::SetupWindowsAndConfigMgr) => steps::SetupWindows::read(s).map(drop),
            Some(StepKind::InstallSoftwareUpdates) => steps::InstallUpdates::read(s).map(drop),
            Some(StepKind::InstallApplication) => steps::InstallApplication::read(s).map(drop),
            Some(StepKind::PrepareWindowsForCapture) => steps::PrepareWindows::read(s).map(drop),
            Some(StepKind::CaptureOperatingSystemImage) => steps::CaptureOsImage::read(s).map(drop),
            Some(StepKind::RunCommandLine) => steps::RunCommandLine::read(s).map(drop),
            Some(StepKind::SetTaskSequenceVariable) => match steps::SetVariable::read(s) {
                Ok(v) => {
                    if let Err(e) = variables::check_settable(&v.name) {
                        self.push(Severity::Error, "read-only-variable", path, e.to_string());
                    }
                    Ok(())
                }
                Err(e) => Err(e),
            },
            Some(StepKind::PrepareConfigMgrClientForCapture) | None => Ok(()),
        };
        if let Err(e) = r {
            self.push(Severity::Error, "step-values", path, e.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condition::Expression;
    use crate::steps::{ApplyNetworkSettings, NetworkJoin, SetVariable};

    fn seq(items: Vec<Item>) -> Sequence {
        Sequence {
            items,
            ..Sequence::default()
        }
    }
    fn step(k: StepKind, name: &str) -> Item {
        Item::Step(k.new_step(name))
    }
    fn rules(p: &[Problem]) -> Vec<&'static str> {
        p.iter().map(|x| x.rule).collect()
    }
    fn restart(target: steps::RebootTarget, name: &str) -> Item {
        let mut s = StepKind::RestartComputer.new_step(name);
        steps::RestartComputer {
            target,
            ..Default::default()
        }
        .write(&mut s);
        Item::Step(s)
    }

    #[test]
    fn run_in_rule() {
        // WinPE step after Setup Windows (full OS): error.
        let bad = seq(vec![
            step(StepKind::SetupWindowsAndConfigMgr, "Setup"),
            step(StepKind::CaptureOperatingSystemImage, "Capture"),
        ]);
        let p = validate(&bad, &Context::default());
        assert_eq!(rules(&p), vec!["run-in"], "{p:?}");
        assert_eq!(p[0].path, "Capture");
        // Full-OS step right after a restart into Windows PE: error.
        let bad = seq(vec![
            restart(steps::RebootTarget::WinPE, "R"),
            step(StepKind::InstallApplication, "Apps"),
        ]);
        assert_eq!(rules(&validate(&bad, &Context::default())), vec!["run-in"]);
        // With Prepare Windows for Capture in between, the capture is in Windows PE: fine.
        let good = seq(vec![
            step(StepKind::SetupWindowsAndConfigMgr, "Setup"),
            step(StepKind::PrepareWindowsForCapture, "Prep"),
            step(StepKind::CaptureOperatingSystemImage, "Capture"),
        ]);
        assert!(validate(&good, &Context::default()).is_empty());
        // Unknown start: either phase is possible, so no error.
        assert!(validate(
            &seq(vec![step(StepKind::InstallApplication, "Apps")]),
            &Context::default()
        )
        .is_empty());
        // A disabled misplaced step does not run.
        let mut s = StepKind::CaptureOperatingSystemImage.new_step("Capture");
        s.disable = Some(crate::Spelled::new(true));
        let ok = seq(vec![
            step(StepKind::SetupWindowsAndConfigMgr, "Setup"),
            Item::Step(s),
        ]);
        assert!(validate(&ok, &Context::default()).is_empty());
        // The wizard's restart condition: runs only in the full OS, so Windows PE afterwards.
        let mut r = StepKind::RestartComputer.new_step("Restart in Windows PE");
        steps::RestartComputer {
            target: steps::RebootTarget::WinPE,
            ..Default::default()
        }
        .write(&mut r);
        r.condition = Some(Condition::all(vec![Expression::variable(
            "_SMSTSInWinPE",
            CmpOp::Equals,
            "false",
        )]));
        let ok = seq(vec![
            Item::Step(r.clone()),
            step(StepKind::FormatAndPartitionDisk, "P"),
        ]);
        assert!(validate(&ok, &Context::default()).is_empty());
        let bad = seq(vec![
            Item::Step(r),
            step(StepKind::InstallSoftwareUpdates, "U"),
        ]);
        assert_eq!(rules(&validate(&bad, &Context::default())), vec!["run-in"]);
    }

    #[test]
    fn domain_before_capture_rule() {
        let mut net = StepKind::ApplyNetworkSettings.new_step("Net");
        ApplyNetworkSettings {
            join: NetworkJoin::Domain {
                domain: "corp".into(),
                ou: String::new(),
                account: "C\\j".into(),
                password: "p".into(),
            },
        }
        .write(&mut net);
        let bad = seq(vec![
            Item::Step(net),
            step(StepKind::SetupWindowsAndConfigMgr, "Setup"),
            step(StepKind::PrepareWindowsForCapture, "Prep"),
        ]);
        let p = validate(&bad, &Context::default());
        assert_eq!(rules(&p), vec!["domain-before-capture"], "{p:?}");
        let good = seq(vec![
            step(StepKind::ApplyNetworkSettings, "Net"),
            step(StepKind::SetupWindowsAndConfigMgr, "Setup"),
            step(StepKind::PrepareWindowsForCapture, "Prep"),
        ]);
        assert!(validate(&good, &Context::default()).is_empty());
    }

    #[test]
    fn missing_content_rule() {
        let mut os = StepKind::ApplyOperatingSystemImage.new_step("OS");
        steps::ApplyOsImage {
            image_package_id: "PS100010".into(),
            image_index: 1,
            run_from_net: false,
        }
        .write(&mut os);
        let mut apps = StepKind::InstallApplication.new_step("Apps");
        steps::InstallApplication {
            applications: vec!["ScopeId_1/Application_2".into()],
            ..Default::default()
        }
        .write(&mut apps);
        let s = seq(vec![Item::Step(os), Item::Step(apps)]);
        let mut ctx = Context {
            content: Some(BTreeSet::from(["PS100010".to_string()])),
            boot_image_id: Some("PS100005".into()),
            ..Default::default()
        };
        let p = validate(&s, &ctx);
        let msgs: Vec<&str> = p.iter().map(|x| x.message.as_str()).collect();
        assert_eq!(
            rules(&p),
            vec!["missing-content", "missing-content"],
            "{msgs:?}"
        );
        assert!(msgs[0].contains("PS100005") && msgs[1].contains("Application_2"));
        ctx.content = Some(BTreeSet::from([
            "PS100010".to_string(),
            "PS100005".to_string(),
            "APPLICATION_2".to_string(),
        ]));
        assert!(validate(&s, &ctx).is_empty());
    }

    #[test]
    fn duplicate_name_rule() {
        let mut g = Group::new("G");
        g.items = vec![
            step(StepKind::RunCommandLine, "A"),
            step(StepKind::RunCommandLine, "a"),
        ];
        let p = validate(&seq(vec![Item::Group(g.clone())]), &Context::default());
        assert_eq!(rules(&p), vec!["duplicate-name"]);
        assert_eq!(p[0].path, "G/a");
        g.items = vec![
            step(StepKind::RunCommandLine, "A"),
            step(StepKind::RunCommandLine, "B"),
        ];
        // The same name in different groups is fine.
        let mut h = Group::new("H");
        h.items = vec![step(StepKind::RunCommandLine, "A")];
        assert!(validate(
            &seq(vec![Item::Group(g), Item::Group(h)]),
            &Context::default()
        )
        .is_empty());
    }

    #[test]
    fn read_only_variable_rule() {
        let mut s = StepKind::SetTaskSequenceVariable.new_step("Set");
        SetVariable {
            name: "_SMSTSMediaType".into(),
            value: "x".into(),
            hide_value: false,
        }
        .write(&mut s);
        assert_eq!(
            rules(&validate(
                &seq(vec![Item::Step(s.clone())]),
                &Context::default()
            )),
            vec!["read-only-variable"]
        );
        SetVariable {
            name: "OSDComputerName".into(),
            value: "x".into(),
            hide_value: false,
        }
        .write(&mut s);
        assert!(validate(&seq(vec![Item::Step(s)]), &Context::default()).is_empty());
    }

    #[test]
    fn step_values_rule() {
        let mut s = StepKind::ApplyOperatingSystemImage.new_step("OS");
        s.set_var("OSDImageIndex", Some("ImageIndex"), "first");
        assert_eq!(
            rules(&validate(
                &seq(vec![Item::Step(s.clone())]),
                &Context::default()
            )),
            vec!["step-values"]
        );
        s.set_var("OSDImageIndex", Some("ImageIndex"), "2");
        assert!(validate(&seq(vec![Item::Step(s)]), &Context::default()).is_empty());
    }

    #[test]
    fn unknown_variable_and_wmi_warnings() {
        let mut s = StepKind::RunCommandLine.new_step("Run");
        s.condition = Some(Condition::all(vec![Expression::variable(
            "MyFlag",
            CmpOp::Equals,
            "1",
        )]));
        let one = seq(vec![Item::Step(s.clone())]);
        let p = validate(&one, &Context::default());
        assert_eq!(rules(&p), vec!["unknown-variable"]);
        assert_eq!(p[0].severity, Severity::Warning);
        // Defined by a collection variable, or by an earlier Set Task Sequence Variable: fine.
        assert!(validate(
            &one,
            &Context {
                extra_variables: vec!["myflag".into()],
                ..Default::default()
            }
        )
        .is_empty());
        let mut set = StepKind::SetTaskSequenceVariable.new_step("Set");
        SetVariable {
            name: "MyFlag".into(),
            value: "1".into(),
            hide_value: false,
        }
        .write(&mut set);
        assert!(validate(
            &seq(vec![Item::Step(set), Item::Step(s.clone())]),
            &Context::default()
        )
        .is_empty());
        // Built-ins are known.
        s.condition = Some(Condition::all(vec![Expression::variable(
            "_SMSTSMediaType",
            CmpOp::NotEquals,
            "FullMedia",
        )]));
        assert!(validate(&seq(vec![Item::Step(s.clone())]), &Context::default()).is_empty());
        s.condition = Some(Condition::all(vec![Expression::new(
            crate::condition::WMI_EXPR,
            &[
                ("Namespace", "root\\cimv2"),
                ("Query", "SELECT * FROM Win32_Tpm"),
            ],
        )]));
        assert_eq!(
            rules(&validate(
                &seq(vec![Item::Step(s.clone())]),
                &Context::default()
            )),
            vec!["wmi-query"]
        );
        s.condition = Some(Condition::all(vec![Expression::new(
            crate::condition::WMI_EXPR,
            &[
                ("Namespace", "root\\cimv2"),
                ("Query", "SELECT * FROM Win32_BIOS"),
            ],
        )]));
        assert!(validate(&seq(vec![Item::Step(s)]), &Context::default()).is_empty());
    }
}
