//! ConfigMgr task sequence XML (`<sequence version="3.00|3.10">`) to and from the
//! model. MDT `ts.xml` has the same grammar plus attributes of its own (`expand`,
//! `startIn`, `name` on the sequence, …); they are kept as data, so the same
//! reader serves both.
//!
//! Import checks the values it types (booleans, `runIn`, numbers, condition
//! operators) and reports the element's line and column when one is wrong.
//! Export writes attributes in the order they were read (canonical ConfigMgr
//! order for new ones) and children in their original order.

use crate::condition::{condition_from_el, condition_to_el};
use crate::error::Error;
use crate::model::{
    parse_bool, Group, HeaderPart, Item, Reference, RunIn, Sequence, Spelled, Step, StepElement,
    StepPart, Variable,
};
use crate::secrets;
use crate::xml::{self, Element, Layout, Node};

/// Export choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportOptions {
    /// Keep passwords and product keys (like `SaveToXml`); the default blanks
    /// them as ConfigMgr's `ExportXml` does.
    pub keep_secrets: bool,
    pub layout: Layout,
}

/// Reads a ConfigMgr or MDT task sequence from XML text.
pub fn import_str(text: &str) -> Result<Sequence, Error> {
    let root = xml::parse(text)?;
    sequence_from_el(&root)
}

/// Reads a task sequence from bytes: XML (UTF-8/UTF-16) or a console export zip.
pub fn import_bytes(bytes: &[u8]) -> Result<Sequence, Error> {
    if bytes.starts_with(b"PK\x03\x04") {
        return crate::package::read_package(bytes).map(|p| p.sequence);
    }
    import_str(&xml::decode_bytes(bytes)?)
}

/// Writes the sequence as ConfigMgr task sequence XML.
pub fn export(seq: &Sequence, opts: ExportOptions) -> String {
    let el = if opts.keep_secrets {
        sequence_to_el(seq)
    } else {
        let mut clean = seq.clone();
        secrets::blank_secrets(&mut clean);
        sequence_to_el(&clean)
    };
    xml::write(&el, opts.layout)
}

// ---- helpers shared with condition.rs ----

/// Orders attributes for writing: known ones (`Some` values) and extras, in the
/// source order when there was one, else known first in the given order.
pub(crate) fn order_attrs(
    known: Vec<(&str, Option<String>)>,
    extra: &[(String, String)],
    order: &[String],
) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = known
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
        .collect();
    all.extend(extra.iter().cloned());
    // Stable sort: attributes not in the source order go after those that were.
    all.sort_by_key(|(k, _)| order.iter().position(|o| o == k).unwrap_or(usize::MAX));
    all
}

fn bool_attr(el: &Element, name: &str) -> Result<Option<Spelled<bool>>, Error> {
    match el.attr(name) {
        None => Ok(None),
        Some(raw) => match parse_bool(raw) {
            Some(value) => Ok(Some(Spelled {
                value,
                raw: raw.to_string(),
            })),
            None => Err(Error::invalid(
                el.pos,
                format!(
                    "<{}> attribute {name}=\"{raw}\" is not true or false",
                    el.name
                ),
            )),
        },
    }
}

fn u32_attr(el: &Element, name: &str) -> Result<Option<Spelled<u32>>, Error> {
    match el.attr(name) {
        None => Ok(None),
        Some(raw) => match raw.trim().parse::<u32>() {
            Ok(value) => Ok(Some(Spelled {
                value,
                raw: raw.to_string(),
            })),
            Err(_) => Err(Error::invalid(
                el.pos,
                format!(
                    "<{}> attribute {name}=\"{raw}\" is not a whole number",
                    el.name
                ),
            )),
        },
    }
}

fn extras(el: &Element, known: &[&str]) -> Vec<(String, String)> {
    el.attrs
        .iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .cloned()
        .collect()
}

fn attr_order(el: &Element) -> Vec<String> {
    el.attrs.iter().map(|(k, _)| k.clone()).collect()
}

fn spelled_raw<T>(s: &Option<Spelled<T>>) -> Option<String> {
    s.as_ref().map(|s| s.raw.clone())
}

pub(crate) fn variable_from_el(el: &Element) -> Result<Variable, Error> {
    let name = el
        .attr("name")
        .ok_or_else(|| Error::invalid(el.pos, "<variable> without a name attribute"))?;
    if let Some(child) = el.elements().next() {
        return Err(Error::invalid(
            child.pos,
            format!(
                "<variable name=\"{name}\"> holds an element <{}>; only text is allowed",
                child.name
            ),
        ));
    }
    Ok(Variable {
        name: name.to_string(),
        property: el.attr("property").map(str::to_string),
        hidden: bool_attr(el, "hidden")?,
        value: el.text(),
        extra_attrs: extras(el, &["name", "property", "hidden"]),
        attr_order: attr_order(el),
        pos: el.pos,
    })
}

pub(crate) fn variable_to_el(v: &Variable) -> Element {
    let mut el = Element::new("variable");
    el.attrs = order_attrs(
        vec![
            ("name", Some(v.name.clone())),
            ("property", v.property.clone()),
            ("hidden", spelled_raw(&v.hidden)),
        ],
        &v.extra_attrs,
        &v.attr_order,
    );
    el.with_text(v.value.clone())
}

fn variables_from_el(el: &Element) -> Result<Vec<Variable>, Error> {
    el.elements()
        .map(|c| {
            if c.name == "variable" {
                variable_from_el(c)
            } else {
                Err(Error::invalid(
                    c.pos,
                    format!(
                        "<{}> holds <{}>; only <variable> is allowed",
                        el.name, c.name
                    ),
                ))
            }
        })
        .collect()
}

fn variables_to_el(name: &str, vars: &[Variable]) -> Element {
    let mut el = Element::new(name);
    for v in vars {
        el.push(variable_to_el(v));
    }
    el
}

// ---- import ----

pub(crate) fn sequence_from_el(root: &Element) -> Result<Sequence, Error> {
    if root.name != "sequence" {
        return Err(Error::invalid(
            root.pos,
            format!("root element is <{}>, expected <sequence>", root.name),
        ));
    }
    let mut seq = Sequence {
        version: root.attr("version").map(str::to_string),
        name: root.attr("name").map(str::to_string),
        description: root.attr("description").map(str::to_string),
        references: None,
        global_variables: None,
        items: Vec::new(),
        extra_attrs: extras(root, &["version", "name", "description"]),
        attr_order: attr_order(root),
        header_layout: Vec::new(),
    };
    for c in root.elements() {
        match c.name.as_str() {
            "referenceList" => {
                if seq.references.is_some() {
                    return Err(Error::invalid(c.pos, "second <referenceList>"));
                }
                let mut refs = Vec::new();
                for r in c.elements() {
                    if r.name != "reference" {
                        return Err(Error::invalid(
                            r.pos,
                            format!(
                                "<referenceList> holds <{}>; only <reference> is allowed",
                                r.name
                            ),
                        ));
                    }
                    refs.push(Reference {
                        attrs: r.attrs.clone(),
                    });
                }
                seq.references = Some(refs);
                seq.header_layout
                    .push(HeaderPart::References(seq.items.len()));
            }
            "globalVarList" => {
                if seq.global_variables.is_some() {
                    return Err(Error::invalid(c.pos, "second <globalVarList>"));
                }
                seq.global_variables = Some(variables_from_el(c)?);
                seq.header_layout
                    .push(HeaderPart::GlobalVariables(seq.items.len()));
            }
            _ => seq.items.push(item_from_el(c)?),
        }
    }
    Ok(seq)
}

fn item_from_el(el: &Element) -> Result<Item, Error> {
    Ok(match el.name.as_str() {
        "group" => Item::Group(group_from_el(el)?),
        "step" | "subtasksequence" => Item::Step(step_from_el(el)?),
        _ => Item::Unknown(el.clone()),
    })
}

fn required_name(el: &Element) -> Result<String, Error> {
    el.attr("name")
        .map(str::to_string)
        .ok_or_else(|| Error::invalid(el.pos, format!("<{}> without a name attribute", el.name)))
}

fn group_from_el(el: &Element) -> Result<Group, Error> {
    let mut g = Group {
        name: required_name(el)?,
        description: el.attr("description").map(str::to_string),
        disable: bool_attr(el, "disable")?,
        continue_on_error: bool_attr(el, "continueOnError")?,
        expand: bool_attr(el, "expand")?,
        condition: None,
        condition_index: 0,
        items: Vec::new(),
        extra_attrs: extras(
            el,
            &[
                "name",
                "description",
                "disable",
                "continueOnError",
                "expand",
            ],
        ),
        attr_order: attr_order(el),
        pos: el.pos,
    };
    for c in el.elements() {
        if c.name == "condition" {
            if g.condition.is_some() {
                return Err(Error::invalid(
                    c.pos,
                    format!("group \"{}\" has a second <condition>", g.name),
                ));
            }
            g.condition = Some(condition_from_el(c)?);
            g.condition_index = g.items.len();
        } else {
            g.items.push(item_from_el(c)?);
        }
    }
    Ok(g)
}

const STEP_ATTRS: [&str; 10] = [
    "type",
    "name",
    "description",
    "disable",
    "continueOnError",
    "timeout",
    "runIn",
    "successCodeList",
    "retryCount",
    "runFromNet",
];

fn step_from_el(el: &Element) -> Result<Step, Error> {
    let name = required_name(el)?;
    let run_in = match el.attr("runIn") {
        None => None,
        Some(raw) => Some(Spelled {
            value: RunIn::parse(raw).ok_or_else(|| {
                Error::invalid(
                    el.pos,
                    format!(
                        "step \"{name}\": runIn=\"{raw}\" is not WinPE, FullOS or WinPEandFullOS"
                    ),
                )
            })?,
            raw: raw.to_string(),
        }),
    };
    let success_codes = match el.attr("successCodeList") {
        None => None,
        Some(raw) => {
            let codes: Result<Vec<i64>, _> =
                raw.split_whitespace().map(str::parse::<i64>).collect();
            Some(Spelled {
                value: codes.map_err(|_| {
                    Error::invalid(
                        el.pos,
                        format!(
                            "step \"{name}\": successCodeList=\"{raw}\" is not a list of numbers"
                        ),
                    )
                })?,
                raw: raw.to_string(),
            })
        }
    };
    let mut s = Step {
        element: if el.name == "subtasksequence" {
            StepElement::SubTaskSequence
        } else {
            StepElement::Step
        },
        step_type: el.attr("type").map(str::to_string),
        name,
        description: el.attr("description").map(str::to_string),
        disable: bool_attr(el, "disable")?,
        continue_on_error: bool_attr(el, "continueOnError")?,
        run_in,
        success_codes,
        retry_count: u32_attr(el, "retryCount")?,
        timeout: u32_attr(el, "timeout")?,
        run_from_net: bool_attr(el, "runFromNet")?,
        action: None,
        variables: None,
        condition: None,
        extra_attrs: extras(el, &STEP_ATTRS),
        extra_elements: Vec::new(),
        attr_order: attr_order(el),
        layout: Vec::new(),
        pos: el.pos,
    };
    for c in el.elements() {
        let dup = || {
            Error::invalid(
                c.pos,
                format!("step \"{}\" has a second <{}>", s.name, c.name),
            )
        };
        match c.name.as_str() {
            "condition" => {
                if s.condition.is_some() {
                    return Err(dup());
                }
                s.condition = Some(condition_from_el(c)?);
                s.layout.push(StepPart::Condition);
            }
            "action" => {
                if s.action.is_some() {
                    return Err(dup());
                }
                if let Some(inner) = c.elements().next() {
                    return Err(Error::invalid(
                        inner.pos,
                        "<action> holds an element; only text is allowed",
                    ));
                }
                s.action = Some(c.text());
                s.layout.push(StepPart::Action);
            }
            "defaultVarList" => {
                if s.variables.is_some() {
                    return Err(dup());
                }
                s.variables = Some(variables_from_el(c)?);
                s.layout.push(StepPart::Variables);
            }
            _ => {
                s.layout.push(StepPart::Extra(s.extra_elements.len()));
                s.extra_elements.push(c.clone());
            }
        }
    }
    Ok(s)
}

// ---- export ----

pub(crate) fn sequence_to_el(seq: &Sequence) -> Element {
    let mut el = Element::new("sequence");
    el.attrs = order_attrs(
        vec![
            ("version", seq.version.clone()),
            ("name", seq.name.clone()),
            ("description", seq.description.clone()),
        ],
        &seq.extra_attrs,
        &seq.attr_order,
    );
    let refs = seq.references.as_ref().map(|refs| {
        let mut r = Element::new("referenceList");
        for x in refs {
            let mut e = Element::new("reference");
            e.attrs = x.attrs.clone();
            r.push(e);
        }
        r
    });
    let globals = seq
        .global_variables
        .as_ref()
        .map(|g| variables_to_el("globalVarList", g));
    let at = |kind: fn(&HeaderPart) -> Option<usize>, default: usize| {
        seq.header_layout.iter().find_map(kind).unwrap_or(default)
    };
    let refs_at = at(
        |h| match h {
            HeaderPart::References(i) => Some(*i),
            _ => None,
        },
        0,
    );
    let globals_at = at(
        |h| match h {
            HeaderPart::GlobalVariables(i) => Some(*i),
            _ => None,
        },
        0,
    );
    let mut refs = refs;
    let mut globals = globals;
    for i in 0..=seq.items.len() {
        // Header elements go before the item they preceded in the source;
        // referenceList before globalVarList when both sit at the same place.
        if refs_at.min(seq.items.len()) == i {
            if let Some(r) = refs.take() {
                el.push(r);
            }
        }
        if globals_at.min(seq.items.len()) == i {
            if let Some(g) = globals.take() {
                el.push(g);
            }
        }
        if let Some(item) = seq.items.get(i) {
            el.push(item_to_el(item));
        }
    }
    el
}

fn item_to_el(item: &Item) -> Element {
    match item {
        Item::Group(g) => group_to_el(g),
        Item::Step(s) => step_to_el(s),
        Item::Unknown(e) => e.clone(),
    }
}

fn group_to_el(g: &Group) -> Element {
    let mut el = Element::new("group");
    el.attrs = order_attrs(
        vec![
            ("name", Some(g.name.clone())),
            ("description", g.description.clone()),
            ("disable", spelled_raw(&g.disable)),
            ("continueOnError", spelled_raw(&g.continue_on_error)),
            ("expand", spelled_raw(&g.expand)),
        ],
        &g.extra_attrs,
        &g.attr_order,
    );
    let cond_at = g.condition_index.min(g.items.len());
    for (i, item) in g.items.iter().enumerate() {
        if i == cond_at {
            if let Some(c) = &g.condition {
                el.push(condition_to_el(c));
            }
        }
        el.push(item_to_el(item));
    }
    if cond_at >= g.items.len() {
        if let Some(c) = &g.condition {
            el.push(condition_to_el(c));
        }
    }
    el
}

fn step_to_el(s: &Step) -> Element {
    let mut el = Element::new(match s.element {
        StepElement::Step => "step",
        StepElement::SubTaskSequence => "subtasksequence",
    });
    el.attrs = order_attrs(
        vec![
            ("type", s.step_type.clone()),
            ("name", Some(s.name.clone())),
            ("description", s.description.clone()),
            ("disable", spelled_raw(&s.disable)),
            ("continueOnError", spelled_raw(&s.continue_on_error)),
            ("timeout", spelled_raw(&s.timeout)),
            ("runIn", spelled_raw(&s.run_in)),
            ("successCodeList", spelled_raw(&s.success_codes)),
            ("retryCount", spelled_raw(&s.retry_count)),
            ("runFromNet", spelled_raw(&s.run_from_net)),
        ],
        &s.extra_attrs,
        &s.attr_order,
    );
    // The source order of the children, then whatever was added since, in
    // ConfigMgr's order (condition, action, defaultVarList).
    let mut layout: Vec<StepPart> = s.layout.clone();
    for part in [StepPart::Condition, StepPart::Action, StepPart::Variables] {
        if !layout.contains(&part) {
            layout.push(part);
        }
    }
    for i in 0..s.extra_elements.len() {
        if !layout.contains(&StepPart::Extra(i)) {
            layout.push(StepPart::Extra(i));
        }
    }
    for part in layout {
        match part {
            StepPart::Condition => {
                if let Some(c) = &s.condition {
                    el.push(condition_to_el(c));
                }
            }
            StepPart::Action => {
                if let Some(a) = &s.action {
                    el.push(Element::new("action").with_text(a.clone()));
                }
            }
            StepPart::Variables => {
                if let Some(v) = &s.variables {
                    el.push(variables_to_el("defaultVarList", v));
                }
            }
            StepPart::Extra(i) => {
                if let Some(e) = s.extra_elements.get(i) {
                    el.children.push(Node::Element(e.clone()));
                }
            }
        }
    }
    el
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"<sequence version="3.10"><referenceList><reference package="PS100012"/></referenceList><group name="G" description=""><step type="SMS_TaskSequence_RebootAction" name="Restart" description="" runIn="WinPEandFullOS" successCodeList="0" retryCount="0" runFromNet="false"><condition><expression type="SMS_TaskSequence_VariableConditionExpression"><variable name="Operator">equals</variable><variable name="Value">false</variable><variable name="Variable">_SMSTSInWinPE</variable></expression></condition><action>smsboot.exe /target:WinPE</action><defaultVarList><variable name="SMSRebootMessage" property="Message">hi</variable><variable name="SMSRebootTarget" property="Target" hidden="true">WinPE</variable></defaultVarList></step></group></sequence>"#;

    #[test]
    fn small_sequence_round_trips_exactly() {
        let seq = import_str(SMALL).unwrap();
        assert_eq!(seq.walk_steps().len(), 1);
        let out = export(&seq, ExportOptions::default());
        assert_eq!(out, SMALL);
    }

    #[test]
    fn unknown_step_types_attributes_and_elements_are_kept() {
        let x = r#"<sequence version="3.00" custom="1"><step type="Vendor_Magic" name="M" foo="bar"><magic a="b"><deep/></magic><action>m.exe</action></step><widget/></sequence>"#;
        let seq = import_str(x).unwrap();
        assert_eq!(export(&seq, ExportOptions::default()), x);
    }

    #[test]
    fn wrong_values_are_errors_with_positions() {
        for (bad, what) in [
            (
                "<sequence>\n <step name=\"a\" runIn=\"Moon\"/></sequence>",
                "runIn",
            ),
            (
                "<sequence>\n <step name=\"a\" disable=\"perhaps\"/></sequence>",
                "disable",
            ),
            (
                "<sequence>\n <step name=\"a\" retryCount=\"-1\"/></sequence>",
                "retryCount",
            ),
            (
                "<sequence>\n <step name=\"a\" successCodeList=\"0 x\"/></sequence>",
                "successCodeList",
            ),
            ("<sequence>\n <step type=\"x\"/></sequence>", "name"),
            (
                "<sequence>\n <step name=\"a\"><action/><action/></step></sequence>",
                "second",
            ),
        ] {
            let err = import_str(bad).unwrap_err();
            assert_eq!(err.pos().map(|p| p.line), Some(2), "{bad}: {err}");
            assert!(err.to_string().contains(what), "{err}");
        }
        assert!(import_str("<notasequence/>").is_err());
    }

    #[test]
    fn upper_case_enum_values_are_read_and_kept() {
        let x = r#"<sequence version="3.10"><step type="T" name="a" disable="TRUE" runIn="WINPE"/></sequence>"#;
        let seq = import_str(x).unwrap();
        let (_, s) = seq.walk_steps()[0];
        assert!(s.is_disabled());
        assert_eq!(s.run_in(), Some(RunIn::WinPE));
        assert_eq!(export(&seq, ExportOptions::default()), x);
    }

    #[test]
    fn mdt_group_layout_is_kept() {
        let x = r#"<sequence version="3.00" name="N" description="D"><group expand="true" name="G" description="" disable="false" continueOnError="false"><action></action><step name="S" disable="false"><defaultVarList><variable name="a" property="a"></variable></defaultVarList><action>x</action></step><condition><expression type="SMS_TaskSequence_VariableConditionExpression"><variable name="Variable">PHASE</variable><variable name="Operator">exists</variable></expression></condition></group></sequence>"#;
        let seq = import_str(x).unwrap();
        assert_eq!(export(&seq, ExportOptions::default()), x);
    }
}
