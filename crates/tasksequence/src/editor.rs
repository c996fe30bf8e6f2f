//! Editing a sequence the way the task sequence editor does: add, remove and
//! move entries, enable/disable, set properties or variables, add and remove
//! conditions, rename.
//!
//! Entries are addressed by a path of names (`Build the Reference
//! Machine/Apply Operating System`; a name may itself contain `/`, the longest
//! matching name wins, names compare case-insensitively) or by 1-based indexes
//! (`1.4`: fourth entry of the first group). Every edit checks what it
//! changes, so the sequence stays valid: names are non-empty, at most 50
//! characters and unique in their group; typed values parse; read-only
//! variables are not set.

use crate::condition::{CmpOp, CondNode, Condition, Expression};
use crate::model::{parse_bool, Group, Item, RunIn, Sequence, Spelled, Step};
use crate::steps::{self, StepKind};
use crate::variables;

/// Longest step or group name the console accepts.
pub const MAX_NAME: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("no entry at \"{0}\"")]
    NotFound(String),
    #[error("\"{0}\" is a step; only a group can hold entries")]
    NotAGroup(String),
    #[error("{0}")]
    Invalid(String),
}

/// Where to put an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    After(String),
    Before(String),
    /// At the end of a group.
    Into(String),
    /// At the end of the sequence.
    End,
}

/// An address: indexes into the `items` vectors, outermost first.
pub type Address = Vec<usize>;

fn entries(items: &[Item]) -> impl Iterator<Item = (usize, &Item)> {
    items.iter().enumerate().filter(|(_, i)| i.is_entry())
}

/// Resolves a name path or an index path.
pub fn resolve(seq: &Sequence, path: &str) -> Result<Address, EditError> {
    let nf = || EditError::NotFound(path.to_string());
    let p = path.trim().trim_matches('/');
    if p.is_empty() {
        return Err(nf());
    }
    // Index form: digits separated by dots.
    if p.split('.')
        .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
    {
        let mut addr = Vec::new();
        let mut items: &[Item] = &seq.items;
        for part in p.split('.') {
            let n: usize = part.parse().map_err(|_| nf())?;
            let (raw, item) = entries(items)
                .nth(n.checked_sub(1).ok_or_else(nf)?)
                .ok_or_else(nf)?;
            addr.push(raw);
            items = match item {
                Item::Group(g) => &g.items,
                _ => &[],
            };
        }
        return Ok(addr);
    }
    let mut addr = Vec::new();
    let mut items: &[Item] = &seq.items;
    let mut rest = p;
    loop {
        // The longest child name that the rest of the path starts with.
        let mut best: Option<(usize, usize)> = None;
        for (raw, it) in entries(items) {
            let name = it.name().unwrap_or("");
            let len = name.len();
            let fits = rest.len() >= len
                && rest.is_char_boundary(len)
                && rest[..len].eq_ignore_ascii_case(name)
                && (rest.len() == len || rest.as_bytes()[len] == b'/');
            if fits && best.is_none_or(|(_, l)| len > l) {
                best = Some((raw, len));
            }
        }
        let (raw, len) = best.ok_or_else(nf)?;
        addr.push(raw);
        if rest.len() == len {
            return Ok(addr);
        }
        rest = &rest[len + 1..];
        items = match &items[raw] {
            Item::Group(g) => &g.items,
            _ => return Err(nf()),
        };
    }
}

fn container<'a>(seq: &'a mut Sequence, addr: &[usize]) -> Option<&'a mut Vec<Item>> {
    let mut items = &mut seq.items;
    for &i in addr {
        items = match items.get_mut(i)? {
            Item::Group(g) => &mut g.items,
            _ => return None,
        };
    }
    Some(items)
}

fn item_mut<'a>(seq: &'a mut Sequence, addr: &[usize]) -> Option<&'a mut Item> {
    let (last, parent) = addr.split_last()?;
    container(seq, parent)?.get_mut(*last)
}

pub fn item<'a>(seq: &'a Sequence, addr: &[usize]) -> Option<&'a Item> {
    let (last, parent) = addr.split_last()?;
    let mut items = &seq.items;
    for &i in parent {
        items = match items.get(i)? {
            Item::Group(g) => &g.items,
            _ => return None,
        };
    }
    items.get(*last)
}

fn check_name(name: &str) -> Result<(), EditError> {
    if name.trim().is_empty() {
        return Err(EditError::Invalid("a name cannot be empty".into()));
    }
    if name.chars().count() > MAX_NAME {
        return Err(EditError::Invalid(format!(
            "\"{name}\" is longer than {MAX_NAME} characters"
        )));
    }
    Ok(())
}

fn check_unique(items: &[Item], name: &str, except: Option<usize>) -> Result<(), EditError> {
    if entries(items)
        .any(|(i, it)| Some(i) != except && it.name().is_some_and(|n| n.eq_ignore_ascii_case(name)))
    {
        return Err(EditError::Invalid(format!(
            "an entry named \"{name}\" is already there"
        )));
    }
    Ok(())
}

/// Inserts an entry at a position, checking its name.
pub fn insert(seq: &mut Sequence, entry: Item, pos: &Position) -> Result<Address, EditError> {
    let name = entry.name().unwrap_or("").to_string();
    check_name(&name)?;
    let (parent, index) = match pos {
        Position::End => (Vec::new(), seq.items.len()),
        Position::After(p) | Position::Before(p) => {
            let a = resolve(seq, p)?;
            let (last, parent) = a
                .split_last()
                .ok_or_else(|| EditError::NotFound(p.clone()))?;
            (
                parent.to_vec(),
                if matches!(pos, Position::After(_)) {
                    last + 1
                } else {
                    *last
                },
            )
        }
        Position::Into(p) => {
            let a = resolve(seq, p)?;
            match item(seq, &a) {
                Some(Item::Group(g)) => {
                    let n = g.items.len();
                    (a, n)
                }
                _ => return Err(EditError::NotAGroup(p.clone())),
            }
        }
    };
    let items =
        container(seq, &parent).ok_or_else(|| EditError::NotFound(format!("{parent:?}")))?;
    check_unique(items, &name, None)?;
    items.insert(index.min(items.len()), entry);
    let mut addr = parent;
    addr.push(index.min(items.len() - 1));
    Ok(addr)
}

/// Adds a step of a known kind (by type, editor name or CLI name), or of any
/// other type as an untyped step.
pub fn add_step(
    seq: &mut Sequence,
    kind: &str,
    name: Option<&str>,
    pos: &Position,
) -> Result<Address, EditError> {
    let step = match StepKind::find(kind) {
        Some(k) => k.new_step(name.unwrap_or(k.editor_name())),
        None if kind.contains('_') && !kind.contains(char::is_whitespace) => {
            let mut s = Step::new(kind, name.unwrap_or(kind));
            s.run_in = Some(Spelled::new(RunIn::WinPEandFullOS));
            s
        }
        None => {
            let known: Vec<String> = StepKind::ALL.iter().map(|k| k.cli_name()).collect();
            return Err(EditError::Invalid(format!(
                "unknown step type \"{kind}\"; known: {}",
                known.join(", ")
            )));
        }
    };
    insert(seq, Item::Step(step), pos)
}

pub fn add_group(seq: &mut Sequence, name: &str, pos: &Position) -> Result<Address, EditError> {
    insert(seq, Item::Group(Group::new(name)), pos)
}

/// Removes an entry (a group with everything in it).
pub fn remove(seq: &mut Sequence, path: &str) -> Result<Item, EditError> {
    let a = resolve(seq, path)?;
    let (last, parent) = a
        .split_last()
        .ok_or_else(|| EditError::NotFound(path.into()))?;
    let items = container(seq, parent).ok_or_else(|| EditError::NotFound(path.into()))?;
    Ok(items.remove(*last))
}

/// Moves an entry. A group cannot move into itself.
pub fn move_to(seq: &mut Sequence, path: &str, pos: &Position) -> Result<Address, EditError> {
    let from = resolve(seq, path)?;
    if let Position::After(t) | Position::Before(t) | Position::Into(t) = pos {
        let to = resolve(seq, t)?;
        if (to != from || matches!(pos, Position::Into(_))) && to.starts_with(&from) {
            return Err(EditError::Invalid(format!(
                "cannot move \"{path}\" into itself"
            )));
        }
        if to == from {
            return Ok(from);
        }
    }
    let backup = seq.clone();
    let entry = remove(seq, path)?;
    match insert(seq, entry, pos) {
        Ok(a) => Ok(a),
        Err(e) => {
            *seq = backup;
            Err(e)
        }
    }
}

pub fn set_enabled(seq: &mut Sequence, path: &str, enabled: bool) -> Result<(), EditError> {
    let a = resolve(seq, path)?;
    let flag = if enabled {
        None
    } else {
        Some(Spelled::new(true))
    };
    match item_mut(seq, &a) {
        // Enabling removes the attribute, as the console's export does.
        Some(Item::Group(g)) => g.disable = keep_style(&g.disable, flag),
        Some(Item::Step(s)) => s.disable = keep_style(&s.disable, flag),
        _ => return Err(EditError::NotFound(path.into())),
    }
    Ok(())
}

fn keep_style(old: &Option<Spelled<bool>>, new: Option<Spelled<bool>>) -> Option<Spelled<bool>> {
    match (old, new) {
        // Already enabled and spelled out (MDT writes disable="false"): keep it.
        (Some(o), None) if !o.value => Some(o.clone()),
        (_, n) => n,
    }
}

pub fn rename(seq: &mut Sequence, path: &str, new_name: &str) -> Result<(), EditError> {
    check_name(new_name)?;
    let a = resolve(seq, path)?;
    let (last, parent) = a
        .split_last()
        .ok_or_else(|| EditError::NotFound(path.into()))?;
    let items = container(seq, parent).ok_or_else(|| EditError::NotFound(path.into()))?;
    check_unique(items, new_name, Some(*last))?;
    match items.get_mut(*last) {
        Some(Item::Group(g)) => g.name = new_name.to_string(),
        Some(Item::Step(s)) => s.name = new_name.to_string(),
        _ => return Err(EditError::NotFound(path.into())),
    }
    Ok(())
}

fn bool_value(key: &str, v: &str) -> Result<Spelled<bool>, EditError> {
    parse_bool(v)
        .map(Spelled::new)
        .ok_or_else(|| EditError::Invalid(format!("{key}: \"{v}\" is not true or false")))
}

fn u32_value(key: &str, v: &str) -> Result<Spelled<u32>, EditError> {
    v.trim()
        .parse()
        .map(Spelled::new)
        .map_err(|_| EditError::Invalid(format!("{key}: \"{v}\" is not a whole number")))
}

/// Sets an attribute (`description`, `continueOnError`, `runIn`, `timeout`,
/// `retryCount`, `successCodeList`, `runFromNet`) or, for any other key, a
/// step variable. A known step's command line follows its variables.
pub fn set(seq: &mut Sequence, path: &str, key: &str, value: &str) -> Result<(), EditError> {
    let a = resolve(seq, path)?;
    let entry = item_mut(seq, &a).ok_or_else(|| EditError::NotFound(path.into()))?;
    let k = key.to_ascii_lowercase();
    match entry {
        Item::Group(g) => match k.as_str() {
            "description" => g.description = Some(value.to_string()),
            "continueonerror" => g.continue_on_error = Some(bool_value(key, value)?),
            "disable" => g.disable = Some(bool_value(key, value)?),
            "name" => return Err(EditError::Invalid("use rename to change a name".into())),
            _ => {
                return Err(EditError::Invalid(format!(
                    "a group has no property {key} (description, continueOnError, disable)"
                )))
            }
        },
        Item::Step(s) => match k.as_str() {
            "description" => s.description = Some(value.to_string()),
            "continueonerror" => s.continue_on_error = Some(bool_value(key, value)?),
            "disable" => s.disable = Some(bool_value(key, value)?),
            "runfromnet" => s.run_from_net = Some(bool_value(key, value)?),
            "retrycount" => s.retry_count = Some(u32_value(key, value)?),
            "timeout" => {
                s.timeout = if value.trim().is_empty() {
                    None
                } else {
                    Some(u32_value(key, value)?)
                };
            }
            "runin" => {
                let r = RunIn::parse(value).ok_or_else(|| {
                    EditError::Invalid(format!(
                        "runIn: \"{value}\" is not WinPE, FullOS or WinPEandFullOS"
                    ))
                })?;
                s.run_in = Some(Spelled::new(r));
            }
            "successcodelist" => {
                let codes: Result<Vec<i64>, _> = value.split_whitespace().map(str::parse).collect();
                let codes = codes.map_err(|_| {
                    EditError::Invalid(format!(
                        "successCodeList: \"{value}\" is not a list of numbers"
                    ))
                })?;
                s.success_codes = Some(Spelled::new(codes));
            }
            "name" => return Err(EditError::Invalid("use rename to change a name".into())),
            "type" => {
                return Err(EditError::Invalid(
                    "the type of a step cannot change; add a new step".into(),
                ))
            }
            _ => set_variable(s, key, value)?,
        },
        Item::Unknown(_) => return Err(EditError::NotFound(path.into())),
    }
    Ok(())
}

fn set_variable(s: &mut Step, name: &str, value: &str) -> Result<(), EditError> {
    variables::check_name(name).map_err(|e| EditError::Invalid(e.to_string()))?;
    let kind = StepKind::of(s);
    // The property comes from the variable already there, else from the
    // editor's defaults for this kind, else it is the name itself.
    let property = s
        .variable(name)
        .and_then(|v| v.property.clone())
        .or_else(|| {
            kind.and_then(|k| {
                k.new_step("x")
                    .variable(name)
                    .and_then(|v| v.property.clone())
            })
        })
        .unwrap_or_else(|| name.to_string());
    let before = s.clone();
    s.set_var(name, Some(&property), value);
    // Re-derive the command line; a value the typed view refuses is an error.
    let r: Result<(), crate::Error> = match kind {
        Some(StepKind::RestartComputer) => steps::RestartComputer::read(s).map(|t| t.write(s)),
        Some(StepKind::FormatAndPartitionDisk) => steps::PartitionDisk::read(s).map(drop),
        Some(StepKind::ApplyOperatingSystemImage) => {
            steps::ApplyOsImage::read(s).map(|t| t.write(s))
        }
        Some(StepKind::ApplyWindowsSettings) => steps::ApplyWindowsSettings::read(s).map(drop),
        Some(StepKind::ApplyNetworkSettings) => steps::ApplyNetworkSettings::read(s).map(drop),
        Some(StepKind::AutoApplyDrivers) => steps::AutoApplyDrivers::read(s).map(drop),
        Some(StepKind::ApplyDriverPackage) => {
            steps::ApplyDriverPackage::read(s).map(|t| t.write(s))
        }
        Some(StepKind::SetupWindowsAndConfigMgr) => steps::SetupWindows::read(s).map(drop),
        Some(StepKind::InstallSoftwareUpdates) => steps::InstallUpdates::read(s).map(drop),
        Some(StepKind::InstallApplication) => {
            steps::InstallApplication::read(s).map(|t| t.write(s))
        }
        Some(StepKind::PrepareWindowsForCapture) => steps::PrepareWindows::read(s).map(drop),
        Some(StepKind::CaptureOperatingSystemImage) => steps::CaptureOsImage::read(s).map(drop),
        Some(StepKind::RunCommandLine) => steps::RunCommandLine::read(s).map(|t| t.write(s)),
        Some(StepKind::SetTaskSequenceVariable) => match steps::SetVariable::read(s) {
            Ok(t) => match variables::check_settable(&t.name) {
                Ok(()) => {
                    t.write(s);
                    Ok(())
                }
                Err(e) => {
                    *s = before;
                    return Err(EditError::Invalid(e.to_string()));
                }
            },
            Err(e) => Err(e),
        },
        Some(StepKind::PrepareConfigMgrClientForCapture) | None => Ok(()),
    };
    if let Err(e) = r {
        *s = before;
        return Err(EditError::Invalid(e.to_string()));
    }
    Ok(())
}

/// Parses `VARIABLE OPERATOR [VALUE]` (`_SMSTSInWinPE equals false`).
pub fn parse_variable_expression(words: &[String]) -> Result<Expression, EditError> {
    let usage = || {
        EditError::Invalid("a variable condition is: VARIABLE OPERATOR [VALUE] (operators: exists, notExists, equals, notEquals, less, lessEqual, greater, greaterEqual, like)".into())
    };
    let (var, op) = match words {
        [v, o, ..] => (v, o),
        _ => return Err(usage()),
    };
    variables::check_name(var).map_err(|e| EditError::Invalid(e.to_string()))?;
    let op = CmpOp::parse(op).ok_or_else(usage)?;
    let value = words[2..].join(" ");
    if matches!(op, CmpOp::Exists | CmpOp::NotExists) != value.is_empty() {
        return Err(usage());
    }
    Ok(Expression::variable(var, op, &value))
}

fn condition_of<'a>(
    seq: &'a mut Sequence,
    path: &str,
) -> Result<&'a mut Option<Condition>, EditError> {
    let a = resolve(seq, path)?;
    match item_mut(seq, &a) {
        Some(Item::Group(g)) => Ok(&mut g.condition),
        Some(Item::Step(s)) => Ok(&mut s.condition),
        _ => Err(EditError::NotFound(path.into())),
    }
}

/// Adds an expression to an entry's condition (ANDed with what is there).
pub fn condition_add(seq: &mut Sequence, path: &str, expr: Expression) -> Result<(), EditError> {
    expr.kind().map_err(|e| EditError::Invalid(e.to_string()))?;
    let c = condition_of(seq, path)?;
    c.get_or_insert_with(Condition::default)
        .items
        .push(CondNode::Expr(expr));
    Ok(())
}

/// Removes the `index`-th (1-based) top-level part of the condition, or the
/// whole condition when `index` is `None`.
pub fn condition_remove(
    seq: &mut Sequence,
    path: &str,
    index: Option<usize>,
) -> Result<(), EditError> {
    let c = condition_of(seq, path)?;
    match index {
        None => {
            if c.take().is_none() {
                return Err(EditError::Invalid(format!("\"{path}\" has no condition")));
            }
        }
        Some(i) => {
            let cond = c
                .as_mut()
                .ok_or_else(|| EditError::Invalid(format!("\"{path}\" has no condition")))?;
            if i == 0 || i > cond.items.len() {
                return Err(EditError::Invalid(format!(
                    "the condition has {} parts; {i} is not one of them",
                    cond.items.len()
                )));
            }
            cond.items.remove(i - 1);
            if cond.items.is_empty() {
                *c = None;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{validate, Context};
    use crate::wizard::{build, Answers};

    fn bc() -> Sequence {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/build-and-capture.answers.toml"
        ))
        .unwrap();
        build(&Answers::from_toml(&text).unwrap(), None).unwrap().0
    }

    fn names(seq: &Sequence, group: usize) -> Vec<String> {
        match &seq.items[group] {
            Item::Group(g) => g
                .items
                .iter()
                .filter_map(|i| i.name().map(str::to_string))
                .collect(),
            _ => vec![],
        }
    }

    #[test]
    fn resolve_by_name_and_index() {
        let s = bc();
        assert_eq!(
            resolve(&s, "Build the Reference Machine/Apply Operating System").unwrap(),
            vec![0, 3]
        );
        assert_eq!(
            resolve(&s, "build the reference machine/apply operating system").unwrap(),
            vec![0, 3]
        );
        assert_eq!(resolve(&s, "1.4").unwrap(), vec![0, 3]);
        assert_eq!(resolve(&s, "2").unwrap(), vec![1]);
        assert!(resolve(&s, "1.99").is_err());
        assert!(resolve(&s, "0").is_err());
        assert!(resolve(&s, "Nope").is_err());
        assert!(resolve(&s, "Build the Reference Machine/Apply Operating System/x").is_err());
        // A name holding a slash.
        let mut t = Sequence::default();
        add_step(
            &mut t,
            "run-command-line",
            Some("Eject CD/ISO"),
            &Position::End,
        )
        .unwrap();
        assert_eq!(resolve(&t, "Eject CD/ISO").unwrap(), vec![0]);
    }

    #[test]
    fn add_move_remove_rename_keep_the_sequence_valid() {
        let mut s = bc();
        let a = add_step(
            &mut s,
            "run-command-line",
            Some("Tweak"),
            &Position::After("Build the Reference Machine/Install Applications".into()),
        )
        .unwrap();
        assert_eq!(a, vec![0, 10]);
        let err = add_step(
            &mut s,
            "run-command-line",
            Some("tweak"),
            &Position::Into("Build the Reference Machine".into()),
        )
        .unwrap_err();
        assert!(err.to_string().contains("already"), "{err}");
        assert!(add_step(&mut s, "bogus step", None, &Position::End).is_err());
        assert!(add_step(&mut s, "Vendor_CustomAction", None, &Position::End).is_ok());
        assert!(add_step(
            &mut s,
            "run-command-line",
            Some(&"n".repeat(51)),
            &Position::End
        )
        .is_err());
        assert!(add_step(
            &mut s,
            "run-command-line",
            Some("x"),
            &Position::Into("1.1".into())
        )
        .is_err()); // a step is not a group
        add_group(
            &mut s,
            "Extras",
            &Position::Before("Capture the Reference Machine".into()),
        )
        .unwrap();
        move_to(
            &mut s,
            "Build the Reference Machine/Tweak",
            &Position::Into("Extras".into()),
        )
        .unwrap();
        assert_eq!(names(&s, 1), vec!["Tweak"]);
        assert!(move_to(&mut s, "Extras", &Position::Into("Extras".into())).is_err());
        rename(&mut s, "Extras/Tweak", "Tune").unwrap();
        assert!(rename(&mut s, "Extras/Tune", "").is_err());
        assert!(rename(
            &mut s,
            "Capture the Reference Machine/Prepare OS",
            "Build the Reference Machine"
        )
        .is_ok()); // other level
        assert!(rename(&mut s, "2", "Capture the Reference Machine").is_err());
        let removed = remove(&mut s, "Extras").unwrap();
        assert_eq!(removed.name(), Some("Extras"));
        assert!(validate(&s, &Context::default())
            .iter()
            .all(|p| p.rule != "duplicate-name"));
    }

    #[test]
    fn enable_disable_set_and_conditions() {
        let mut s = bc();
        let p = "Build the Reference Machine/Apply Operating System";
        set_enabled(&mut s, p, false).unwrap();
        assert!(matches!(item(&s, &[0, 3]), Some(Item::Step(x)) if x.is_disabled()));
        set_enabled(&mut s, p, true).unwrap();
        assert!(
            matches!(item(&s, &[0, 3]), Some(Item::Step(x)) if !x.is_disabled() && x.disable.is_none())
        );

        set(&mut s, p, "OSDImageIndex", "2").unwrap();
        set(&mut s, p, "ImagePackageID", "PS100099").unwrap();
        let Some(Item::Step(st)) = item(&s, &[0, 3]) else {
            panic!()
        };
        assert_eq!(
            st.action.as_deref(),
            Some("OSDApplyOS.exe /image:PS100099,%OSDImageIndex% /runfromnet:False")
        );
        assert_eq!(
            st.variable("OSDImageIndex").unwrap().property.as_deref(),
            Some("ImageIndex")
        );
        let err = set(&mut s, p, "OSDImageIndex", "two").unwrap_err();
        assert!(err.to_string().contains("OSDImageIndex"));
        let Some(Item::Step(st)) = item(&s, &[0, 3]) else {
            panic!()
        };
        assert_eq!(
            st.var("OSDImageIndex"),
            Some("2"),
            "a refused edit changes nothing"
        );
        set(&mut s, p, "continueOnError", "true").unwrap();
        set(&mut s, p, "runIn", "winpe").unwrap();
        assert!(set(&mut s, p, "runIn", "anywhere").is_err());
        assert!(set(&mut s, p, "retryCount", "-1").is_err());
        assert!(set(&mut s, p, "successCodeList", "0 x").is_err());
        assert!(set(&mut s, "1", "runIn", "WinPE").is_err()); // groups have no runIn

        add_step(
            &mut s,
            "set-task-sequence-variable",
            Some("Set"),
            &Position::End,
        )
        .unwrap();
        assert!(set(&mut s, "Set", "VariableName", "_SMSTSMediaType").is_err());
        set(&mut s, "Set", "VariableName", "MyVar").unwrap();
        set(&mut s, "Set", "VariableValue", "1").unwrap();
        let Some(Item::Step(st)) = item(&s, &[2]) else {
            panic!()
        };
        assert_eq!(
            st.action.as_deref(),
            Some("tsenv.exe \"MyVar=1\" /hiddenflag:False")
        );

        let words = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        condition_add(
            &mut s,
            p,
            parse_variable_expression(&words("MyVar equals 1")).unwrap(),
        )
        .unwrap();
        condition_add(
            &mut s,
            p,
            parse_variable_expression(&words("_SMSTSBootUEFI exists")).unwrap(),
        )
        .unwrap();
        assert!(parse_variable_expression(&words("MyVar sortof 1")).is_err());
        assert!(parse_variable_expression(&words("MyVar exists 1")).is_err());
        assert!(parse_variable_expression(&words("MyVar equals")).is_err());
        let Some(Item::Step(st)) = item(&s, &[0, 3]) else {
            panic!()
        };
        assert_eq!(
            st.condition.as_ref().unwrap().to_string(),
            "MyVar equals \"1\" and _SMSTSBootUEFI exists"
        );
        condition_remove(&mut s, p, Some(1)).unwrap();
        assert!(condition_remove(&mut s, p, Some(5)).is_err());
        condition_remove(&mut s, p, None).unwrap();
        assert!(condition_remove(&mut s, p, None).is_err());
        // The edited sequence exports and reads back.
        let xml = crate::export(
            &s,
            crate::ExportOptions {
                keep_secrets: true,
                ..Default::default()
            },
        );
        assert_eq!(
            crate::import_str(&xml).unwrap().walk_steps().len(),
            s.walk_steps().len()
        );
    }
}
