//! The task sequence model: a sequence holds groups and steps (and Run Task
//! Sequence `subtasksequence` steps), each with the attributes ConfigMgr knows,
//! its `<action>` command line, its default variables and its condition.
//!
//! The model is lossless: values keep their spelling (`Spelled`), attribute order
//! and child element order are remembered, and anything the model does not know
//! (attributes, elements) is kept as raw XML and written back in place.

use std::fmt;

use crate::condition::Condition;
use crate::error::Pos;
use crate::xml::Element;

/// A typed value together with the exact text it was read from, so that export
/// writes `TRUE` back as `TRUE` while code reads a `bool`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spelled<T> {
    pub value: T,
    pub raw: String,
}

impl<T: Canonical> Spelled<T> {
    /// A value in its canonical spelling.
    pub fn new(value: T) -> Self {
        let raw = value.canonical();
        Spelled { value, raw }
    }
}

/// How a typed attribute value is written when the program sets it.
pub trait Canonical {
    fn canonical(&self) -> String;
}

impl Canonical for bool {
    fn canonical(&self) -> String {
        if *self { "true" } else { "false" }.to_string()
    }
}

impl Canonical for u32 {
    fn canonical(&self) -> String {
        self.to_string()
    }
}

impl Canonical for Vec<i64> {
    fn canonical(&self) -> String {
        self.iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Where a step may run (`runIn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunIn {
    WinPE,
    FullOS,
    WinPEandFullOS,
}

impl RunIn {
    pub fn parse(s: &str) -> Option<RunIn> {
        match s.trim().to_ascii_lowercase().as_str() {
            "winpe" => Some(RunIn::WinPE),
            "fullos" => Some(RunIn::FullOS),
            "winpeandfullos" => Some(RunIn::WinPEandFullOS),
            _ => None,
        }
    }
    pub fn allows_winpe(self) -> bool {
        matches!(self, RunIn::WinPE | RunIn::WinPEandFullOS)
    }
    pub fn allows_full_os(self) -> bool {
        matches!(self, RunIn::FullOS | RunIn::WinPEandFullOS)
    }
}

impl fmt::Display for RunIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RunIn::WinPE => "WinPE",
            RunIn::FullOS => "FullOS",
            RunIn::WinPEandFullOS => "WinPEandFullOS",
        })
    }
}

impl Canonical for RunIn {
    fn canonical(&self) -> String {
        self.to_string()
    }
}

/// Parses the boolean spellings found in real files (`true`, `True`, `TRUE`, `1`).
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// A `<variable>` of a `defaultVarList`, a `globalVarList` or a condition expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// The task sequence variable name (`OSDComputerName`).
    pub name: String,
    /// The WMI property of the action (`ComputerName`); absent in conditions.
    pub property: Option<String>,
    /// `hidden="true"`: a command-line argument property, not a real TS variable.
    pub hidden: Option<Spelled<bool>>,
    pub value: String,
    /// Attributes the model does not know, in order.
    pub extra_attrs: Vec<(String, String)>,
    /// The order the attributes had in the source (empty for built variables).
    pub attr_order: Vec<String>,
    pub pos: Pos,
}

impl Variable {
    pub fn new(name: &str, property: Option<&str>, value: &str) -> Self {
        Variable {
            name: name.to_string(),
            property: property.map(str::to_string),
            hidden: None,
            value: value.to_string(),
            extra_attrs: Vec::new(),
            attr_order: Vec::new(),
            pos: Pos::default(),
        }
    }
    pub fn hidden(mut self) -> Self {
        self.hidden = Some(Spelled::new(true));
        self
    }
    pub fn is_hidden(&self) -> bool {
        self.hidden.as_ref().is_some_and(|h| h.value)
    }
}

/// An entry of `<referenceList>`: content the sequence needs on a distribution point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The attributes in order (`package`, `program`, `application`, or others).
    pub attrs: Vec<(String, String)>,
}

impl Reference {
    pub fn package(id: &str) -> Self {
        Reference {
            attrs: vec![("package".into(), id.into())],
        }
    }
    pub fn application(id: &str) -> Self {
        Reference {
            attrs: vec![("application".into(), id.into())],
        }
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
    pub fn package_id(&self) -> Option<&str> {
        self.get("package")
    }
    pub fn program(&self) -> Option<&str> {
        self.get("program")
    }
    pub fn application_id(&self) -> Option<&str> {
        self.get("application")
    }
    /// The content identifier, whichever kind it is.
    pub fn content_id(&self) -> Option<&str> {
        self.package_id().or_else(|| self.application_id())
    }
}

/// The whole task sequence (`<sequence>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence {
    /// `version` attribute: "3.00" or "3.10" (other values kept as written).
    pub version: Option<String>,
    /// MDT writes the name and description on the sequence element.
    pub name: Option<String>,
    pub description: Option<String>,
    pub references: Option<Vec<Reference>>,
    pub global_variables: Option<Vec<Variable>>,
    pub items: Vec<Item>,
    pub extra_attrs: Vec<(String, String)>,
    pub attr_order: Vec<String>,
    /// Where `referenceList`/`globalVarList` stood among the items (index of the
    /// item they preceded); `None` means "before every item", ConfigMgr's order.
    pub header_layout: Vec<HeaderPart>,
}

/// A header element of the sequence and how many items preceded it in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderPart {
    References(usize),
    GlobalVariables(usize),
}

impl Default for Sequence {
    fn default() -> Self {
        Sequence {
            version: Some("3.10".into()),
            name: None,
            description: None,
            references: None,
            global_variables: None,
            items: Vec::new(),
            extra_attrs: Vec::new(),
            attr_order: Vec::new(),
            header_layout: Vec::new(),
        }
    }
}

/// A child of the sequence or of a group.
// Steps dominate real sequences, so boxing them would only add indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Group(Group),
    Step(Step),
    /// An element the model does not know (MDT's empty `<action/>` in groups, …).
    Unknown(Element),
}

impl Item {
    pub fn name(&self) -> Option<&str> {
        match self {
            Item::Group(g) => Some(&g.name),
            Item::Step(s) => Some(&s.name),
            Item::Unknown(_) => None,
        }
    }
    pub fn is_entry(&self) -> bool {
        !matches!(self, Item::Unknown(_))
    }
}

/// A `<group>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub description: Option<String>,
    pub disable: Option<Spelled<bool>>,
    pub continue_on_error: Option<Spelled<bool>>,
    /// MDT/editor UI state (`expand`).
    pub expand: Option<Spelled<bool>>,
    pub condition: Option<Condition>,
    /// How many items preceded the `<condition>` in the source (0 in ConfigMgr exports).
    pub condition_index: usize,
    pub items: Vec<Item>,
    pub extra_attrs: Vec<(String, String)>,
    pub attr_order: Vec<String>,
    pub pos: Pos,
}

impl Group {
    pub fn new(name: &str) -> Self {
        Group {
            name: name.to_string(),
            description: Some(String::new()),
            disable: None,
            continue_on_error: None,
            expand: None,
            condition: None,
            condition_index: 0,
            items: Vec::new(),
            extra_attrs: Vec::new(),
            attr_order: Vec::new(),
            pos: Pos::default(),
        }
    }
    pub fn is_disabled(&self) -> bool {
        self.disable.as_ref().is_some_and(|d| d.value)
    }
    pub fn continues_on_error(&self) -> bool {
        self.continue_on_error.as_ref().is_some_and(|d| d.value)
    }
}

/// Which element a step was written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepElement {
    /// `<step>`
    Step,
    /// `<subtasksequence>` (Run Task Sequence)
    SubTaskSequence,
}

/// The children of a step in their source order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepPart {
    Condition,
    Action,
    Variables,
    /// Index into `Step::extra_elements`.
    Extra(usize),
}

/// A `<step>` (or `<subtasksequence>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub element: StepElement,
    /// The action class (`SMS_TaskSequence_RebootAction`); MDT may leave it out.
    pub step_type: Option<String>,
    pub name: String,
    pub description: Option<String>,
    pub disable: Option<Spelled<bool>>,
    pub continue_on_error: Option<Spelled<bool>>,
    pub run_in: Option<Spelled<RunIn>>,
    pub success_codes: Option<Spelled<Vec<i64>>>,
    pub retry_count: Option<Spelled<u32>>,
    /// Seconds; present only when the step's time-out is enabled.
    pub timeout: Option<Spelled<u32>>,
    pub run_from_net: Option<Spelled<bool>>,
    /// The command line the engine runs (`<action>`).
    pub action: Option<String>,
    /// `<defaultVarList>`; `None` when the element is absent.
    pub variables: Option<Vec<Variable>>,
    pub condition: Option<Condition>,
    pub extra_attrs: Vec<(String, String)>,
    pub extra_elements: Vec<Element>,
    pub attr_order: Vec<String>,
    pub layout: Vec<StepPart>,
    pub pos: Pos,
}

impl Step {
    pub fn new(step_type: &str, name: &str) -> Self {
        Step {
            element: if step_type == "SMS_TaskSequence_SubTasksequence" {
                StepElement::SubTaskSequence
            } else {
                StepElement::Step
            },
            step_type: Some(step_type.to_string()),
            name: name.to_string(),
            description: Some(String::new()),
            disable: None,
            continue_on_error: None,
            run_in: None,
            success_codes: None,
            retry_count: None,
            timeout: None,
            run_from_net: None,
            action: None,
            variables: Some(Vec::new()),
            condition: None,
            extra_attrs: Vec::new(),
            extra_elements: Vec::new(),
            attr_order: Vec::new(),
            layout: Vec::new(),
            pos: Pos::default(),
        }
    }
    pub fn type_name(&self) -> &str {
        self.step_type.as_deref().unwrap_or("")
    }
    pub fn is_disabled(&self) -> bool {
        self.disable.as_ref().is_some_and(|d| d.value)
    }
    pub fn continues_on_error(&self) -> bool {
        self.continue_on_error.as_ref().is_some_and(|d| d.value)
    }
    pub fn run_in(&self) -> Option<RunIn> {
        self.run_in.as_ref().map(|r| r.value)
    }
    pub fn variable(&self, name: &str) -> Option<&Variable> {
        self.variables
            .as_ref()?
            .iter()
            .find(|v| v.name.eq_ignore_ascii_case(name))
    }
    pub fn var(&self, name: &str) -> Option<&str> {
        self.variable(name).map(|v| v.value.as_str())
    }
    /// Sets (or adds) a default variable, keeping its place when it exists.
    pub fn set_var(&mut self, name: &str, property: Option<&str>, value: &str) {
        let vars = self.variables.get_or_insert_with(Vec::new);
        if let Some(v) = vars.iter_mut().find(|v| v.name.eq_ignore_ascii_case(name)) {
            v.value = value.to_string();
        } else {
            vars.push(Variable::new(name, property, value));
        }
    }
    /// Like `set_var` for a hidden (command-line argument) property.
    pub fn set_hidden_var(&mut self, name: &str, property: &str, value: &str) {
        self.set_var(name, Some(property), value);
        if let Some(v) = self
            .variables
            .as_mut()
            .and_then(|vs| vs.iter_mut().find(|v| v.name.eq_ignore_ascii_case(name)))
        {
            if !v.is_hidden() {
                v.hidden = Some(Spelled::new(true));
            }
        }
    }
    pub fn remove_var(&mut self, name: &str) -> bool {
        if let Some(vars) = self.variables.as_mut() {
            let before = vars.len();
            vars.retain(|v| !v.name.eq_ignore_ascii_case(name));
            return vars.len() != before;
        }
        false
    }
}

impl Sequence {
    /// Every step, depth first, with the names of the groups above it.
    pub fn walk_steps(&self) -> Vec<(Vec<&str>, &Step)> {
        fn go<'a>(
            items: &'a [Item],
            path: &mut Vec<&'a str>,
            out: &mut Vec<(Vec<&'a str>, &'a Step)>,
        ) {
            for it in items {
                match it {
                    Item::Step(s) => out.push((path.clone(), s)),
                    Item::Group(g) => {
                        path.push(&g.name);
                        go(&g.items, path, out);
                        path.pop();
                    }
                    Item::Unknown(_) => {}
                }
            }
        }
        let mut out = Vec::new();
        go(&self.items, &mut Vec::new(), &mut out);
        out
    }

    /// Every step, mutable, depth first.
    pub fn for_each_step_mut(&mut self, f: &mut dyn FnMut(&mut Step)) {
        fn go(items: &mut [Item], f: &mut dyn FnMut(&mut Step)) {
            for it in items {
                match it {
                    Item::Step(s) => f(s),
                    Item::Group(g) => go(&mut g.items, f),
                    Item::Unknown(_) => {}
                }
            }
        }
        go(&mut self.items, f)
    }
}
