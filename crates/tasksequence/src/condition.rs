//! Conditions of groups and steps: the `<condition>` tree as data, its typed
//! view (what each expression means), and its XML form.
//!
//! Several children directly under `<condition>` are ANDed. Real exports carry
//! odd forms: an empty `<operator type="or"/>` followed by sibling expressions;
//! upper-case operator values. Both are accepted and written back as they were.
//! Evaluation lives in `eval.rs`.

use std::fmt;

use crate::configmgr::{order_attrs, variable_from_el, variable_to_el};
use crate::error::{Error, Pos};
use crate::model::{Canonical, Spelled, Variable};
use crate::xml::{Element, Node};

pub const VARIABLE_EXPR: &str = "SMS_TaskSequence_VariableConditionExpression";
pub const WMI_EXPR: &str = "SMS_TaskSequence_WMIConditionExpression";
pub const FILE_EXPR: &str = "SMS_TaskSequence_FileConditionExpression";
pub const FOLDER_EXPR: &str = "SMS_TaskSequence_FolderConditionExpression";
pub const REGISTRY_EXPR: &str = "SMS_TaskSequence_RegistryConditionExpression";
pub const SOFTWARE_EXPR: &str = "SMS_TaskSequence_SoftwareConditionExpression";

/// A `<condition>`: its children are ANDed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Condition {
    pub items: Vec<CondNode>,
    pub extra_attrs: Vec<(String, String)>,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CondNode {
    Expr(Expression),
    Op(Operator),
    /// An element the model does not know; evaluation refuses it.
    Unknown(Element),
}

/// `and`, `or`, `not`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    And,
    Or,
    Not,
}

impl OpKind {
    pub fn parse(s: &str) -> Option<OpKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "and" => Some(OpKind::And),
            "or" => Some(OpKind::Or),
            "not" => Some(OpKind::Not),
            _ => None,
        }
    }
}

impl Canonical for OpKind {
    fn canonical(&self) -> String {
        match self {
            OpKind::And => "and",
            OpKind::Or => "or",
            OpKind::Not => "not",
        }
        .to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub op: Spelled<OpKind>,
    pub items: Vec<CondNode>,
    pub extra_attrs: Vec<(String, String)>,
    pub attr_order: Vec<String>,
    pub pos: Pos,
}

/// An `<expression type="…">` with its `<variable name="…">` children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expression {
    pub expr_type: String,
    pub children: Vec<ExprChild>,
    pub extra_attrs: Vec<(String, String)>,
    pub attr_order: Vec<String>,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExprChild {
    Var(Variable),
    Other(Element),
}

/// Comparison operators of variable, file, folder and registry expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Exists,
    NotExists,
    Equals,
    NotEquals,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
    Like,
}

impl CmpOp {
    /// Parses ConfigMgr's spellings, case-insensitively; `nonExists` is the
    /// registry expression's spelling of `notExists`.
    pub fn parse(s: &str) -> Option<CmpOp> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "exists" => CmpOp::Exists,
            "notexists" | "nonexists" => CmpOp::NotExists,
            "equals" => CmpOp::Equals,
            "notequals" => CmpOp::NotEquals,
            "less" => CmpOp::Less,
            "lessequal" => CmpOp::LessEqual,
            "greater" => CmpOp::Greater,
            "greaterequal" => CmpOp::GreaterEqual,
            "like" => CmpOp::Like,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Exists => "exists",
            CmpOp::NotExists => "notExists",
            CmpOp::Equals => "equals",
            CmpOp::NotEquals => "notEquals",
            CmpOp::Less => "less",
            CmpOp::LessEqual => "lessEqual",
            CmpOp::Greater => "greater",
            CmpOp::GreaterEqual => "greaterEqual",
            CmpOp::Like => "like",
        }
    }
    fn is_ordering(self) -> bool {
        !matches!(self, CmpOp::Exists | CmpOp::NotExists | CmpOp::Like)
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Installed-software expression operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoftwareOp {
    AnyVersion,
    ThisVersion,
}

/// What an expression means, read from its variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExprKind {
    Variable {
        variable: String,
        op: CmpOp,
        value: String,
    },
    Wmi {
        namespace: String,
        query: String,
    },
    File {
        path: String,
        version: Option<(CmpOp, String)>,
        date_time: Option<(CmpOp, String)>,
    },
    Folder {
        path: String,
        date_time: Option<(CmpOp, String)>,
    },
    Registry {
        key_path: String,
        value_name: String,
        value_type: String,
        data: String,
        op: CmpOp,
    },
    Software {
        op: SoftwareOp,
        product_code: String,
        upgrade_code: String,
        product_name: String,
        version: String,
    },
    /// An expression type this crate does not evaluate (kept as data).
    Other(String),
}

impl Expression {
    pub fn new(expr_type: &str, vars: &[(&str, &str)]) -> Self {
        Expression {
            expr_type: expr_type.to_string(),
            children: vars
                .iter()
                .map(|(n, v)| ExprChild::Var(Variable::new(n, None, v)))
                .collect(),
            extra_attrs: Vec::new(),
            attr_order: Vec::new(),
            pos: Pos::default(),
        }
    }

    /// A variable expression (`_SMSTSInWinPE equals false`).
    pub fn variable(variable: &str, op: CmpOp, value: &str) -> Self {
        // ConfigMgr writes Operator, Value, Variable in that order.
        if matches!(op, CmpOp::Exists | CmpOp::NotExists) {
            Expression::new(
                VARIABLE_EXPR,
                &[("Operator", op.as_str()), ("Variable", variable)],
            )
        } else {
            Expression::new(
                VARIABLE_EXPR,
                &[
                    ("Operator", op.as_str()),
                    ("Value", value),
                    ("Variable", variable),
                ],
            )
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.children.iter().find_map(|c| match c {
            ExprChild::Var(v) if v.name.eq_ignore_ascii_case(name) => Some(v.value.as_str()),
            _ => None,
        })
    }

    fn var_pos(&self, name: &str) -> Pos {
        self.children
            .iter()
            .find_map(|c| match c {
                ExprChild::Var(v) if v.name.eq_ignore_ascii_case(name) => Some(v.pos),
                _ => None,
            })
            .unwrap_or(self.pos)
    }

    /// The typed meaning. Errors name the field and where it is.
    pub fn kind(&self) -> Result<ExprKind, Error> {
        let s = |n: &str| self.get(n).unwrap_or("").to_string();
        let cmp = |n: &str, allow: &dyn Fn(CmpOp) -> bool| -> Result<CmpOp, Error> {
            let raw = self.get(n).unwrap_or("");
            match CmpOp::parse(raw) {
                Some(op) if allow(op) => Ok(op),
                _ => Err(Error::invalid(
                    self.var_pos(n),
                    format!("{}: {n} \"{raw}\" is not a valid operator", self.expr_type),
                )),
            }
        };
        let optional_cmp =
            |op_name: &str, val_name: &str| -> Result<Option<(CmpOp, String)>, Error> {
                let val = s(val_name);
                let raw = s(op_name);
                if val.is_empty() && raw.is_empty() {
                    return Ok(None);
                }
                Ok(Some((cmp(op_name, &|o: CmpOp| o.is_ordering())?, val)))
            };
        let t = self.expr_type.as_str();
        Ok(if t.eq_ignore_ascii_case(VARIABLE_EXPR) {
            ExprKind::Variable {
                variable: s("Variable"),
                op: cmp("Operator", &|_| true)?,
                value: s("Value"),
            }
        } else if t.eq_ignore_ascii_case(WMI_EXPR) {
            ExprKind::Wmi {
                namespace: s("Namespace"),
                query: s("Query"),
            }
        } else if t.eq_ignore_ascii_case(FILE_EXPR) {
            ExprKind::File {
                path: s("Path"),
                version: optional_cmp("VersionOperator", "Version")?,
                date_time: optional_cmp("DateTimeOperator", "DateTime")?,
            }
        } else if t.eq_ignore_ascii_case(FOLDER_EXPR) {
            ExprKind::Folder {
                path: s("Path"),
                date_time: optional_cmp("DateTimeOperator", "DateTime")?,
            }
        } else if t.eq_ignore_ascii_case(REGISTRY_EXPR) {
            ExprKind::Registry {
                key_path: s("KeyPath"),
                value_name: s("Value"),
                value_type: s("Type"),
                data: s("Data"),
                op: cmp("Operator", &|o| o != CmpOp::Like)?,
            }
        } else if t.eq_ignore_ascii_case(SOFTWARE_EXPR) {
            let raw = s("Operator");
            let op = match raw.trim().to_ascii_lowercase().as_str() {
                "anyversion" => SoftwareOp::AnyVersion,
                "thisversion" => SoftwareOp::ThisVersion,
                _ => {
                    return Err(Error::invalid(
                        self.var_pos("Operator"),
                        format!("{t}: Operator \"{raw}\" is not AnyVersion or ThisVersion"),
                    ))
                }
            };
            ExprKind::Software {
                op,
                product_code: s("ProductCode"),
                upgrade_code: s("UpgradeCode"),
                product_name: s("ProductName"),
                version: s("Version"),
            }
        } else {
            ExprKind::Other(self.expr_type.clone())
        })
    }
}

impl Condition {
    /// A condition that ANDs the given expressions.
    pub fn all(exprs: Vec<Expression>) -> Self {
        Condition {
            items: exprs.into_iter().map(CondNode::Expr).collect(),
            extra_attrs: Vec::new(),
            pos: Pos::default(),
        }
    }

    /// Every expression in the tree, depth first.
    pub fn expressions(&self) -> Vec<&Expression> {
        fn go<'a>(items: &'a [CondNode], out: &mut Vec<&'a Expression>) {
            for n in items {
                match n {
                    CondNode::Expr(e) => out.push(e),
                    CondNode::Op(o) => go(&o.items, out),
                    CondNode::Unknown(_) => {}
                }
            }
        }
        let mut out = Vec::new();
        go(&self.items, &mut out);
        out
    }

    /// Checks every expression's typed meaning (used at import).
    pub fn check(&self) -> Result<(), Error> {
        for e in self.expressions() {
            e.kind()?;
        }
        Ok(())
    }
}

impl fmt::Display for Condition {
    /// A one-line rendering for `tasq ts show`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn node(n: &CondNode, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match n {
                CondNode::Expr(e) => match e.kind() {
                    Ok(ExprKind::Variable {
                        variable,
                        op,
                        value,
                    }) => {
                        if matches!(op, CmpOp::Exists | CmpOp::NotExists) {
                            write!(f, "{variable} {op}")
                        } else {
                            write!(f, "{variable} {op} \"{value}\"")
                        }
                    }
                    Ok(ExprKind::Wmi { query, .. }) => write!(f, "WMI \"{query}\""),
                    Ok(ExprKind::File { path, .. }) => write!(f, "file \"{path}\""),
                    Ok(ExprKind::Folder { path, .. }) => write!(f, "folder \"{path}\""),
                    Ok(ExprKind::Registry {
                        key_path,
                        value_name,
                        op,
                        data,
                        ..
                    }) => {
                        write!(f, "registry \"{key_path}\\{value_name}\" {op} \"{data}\"")
                    }
                    Ok(ExprKind::Software {
                        product_code,
                        upgrade_code,
                        ..
                    }) => {
                        write!(f, "software {product_code}{upgrade_code}")
                    }
                    Ok(ExprKind::Other(t)) => write!(f, "{t}"),
                    Err(_) => write!(f, "{}(invalid)", e.expr_type),
                },
                CondNode::Op(o) => {
                    let (word, sep) = match o.op.value {
                        OpKind::And => ("", " and "),
                        OpKind::Or => ("", " or "),
                        OpKind::Not => ("not ", " and "),
                    };
                    write!(f, "{word}(")?;
                    for (i, c) in o.items.iter().enumerate() {
                        if i > 0 {
                            f.write_str(sep)?;
                        }
                        node(c, f)?;
                    }
                    f.write_str(")")
                }
                CondNode::Unknown(e) => write!(f, "<{}>", e.name),
            }
        }
        for (i, n) in self.items.iter().enumerate() {
            if i > 0 {
                f.write_str(" and ")?;
            }
            node(n, f)?;
        }
        Ok(())
    }
}

// ---- XML form ----

pub(crate) fn condition_from_el(el: &Element) -> Result<Condition, Error> {
    let items = nodes_from_children(el)?;
    let cond = Condition {
        items,
        extra_attrs: el.attrs.clone(),
        pos: el.pos,
    };
    cond.check()?;
    Ok(cond)
}

fn nodes_from_children(el: &Element) -> Result<Vec<CondNode>, Error> {
    let mut out = Vec::new();
    for c in el.elements() {
        out.push(match c.name.as_str() {
            "expression" => CondNode::Expr(expression_from_el(c)?),
            "operator" => {
                let raw = c
                    .attr("type")
                    .ok_or_else(|| Error::invalid(c.pos, "<operator> without a type attribute"))?;
                let op = OpKind::parse(raw).ok_or_else(|| {
                    Error::invalid(
                        c.pos,
                        format!("operator type \"{raw}\" is not and, or or not"),
                    )
                })?;
                CondNode::Op(Operator {
                    op: Spelled {
                        value: op,
                        raw: raw.to_string(),
                    },
                    items: nodes_from_children(c)?,
                    extra_attrs: c
                        .attrs
                        .iter()
                        .filter(|(k, _)| k != "type")
                        .cloned()
                        .collect(),
                    attr_order: c.attrs.iter().map(|(k, _)| k.clone()).collect(),
                    pos: c.pos,
                })
            }
            _ => CondNode::Unknown(c.clone()),
        });
    }
    Ok(out)
}

fn expression_from_el(el: &Element) -> Result<Expression, Error> {
    let t = el
        .attr("type")
        .ok_or_else(|| Error::invalid(el.pos, "<expression> without a type attribute"))?;
    let mut children = Vec::new();
    for c in el.elements() {
        if c.name == "variable" {
            children.push(ExprChild::Var(variable_from_el(c)?));
        } else {
            children.push(ExprChild::Other(c.clone()));
        }
    }
    Ok(Expression {
        expr_type: t.to_string(),
        children,
        extra_attrs: el
            .attrs
            .iter()
            .filter(|(k, _)| k != "type")
            .cloned()
            .collect(),
        attr_order: el.attrs.iter().map(|(k, _)| k.clone()).collect(),
        pos: el.pos,
    })
}

pub(crate) fn condition_to_el(c: &Condition) -> Element {
    let mut el = Element::new("condition");
    el.attrs = c.extra_attrs.clone();
    for n in &c.items {
        el.children.push(Node::Element(node_to_el(n)));
    }
    el
}

fn node_to_el(n: &CondNode) -> Element {
    match n {
        CondNode::Expr(e) => {
            let mut el = Element::new("expression");
            el.attrs = order_attrs(
                vec![("type", Some(e.expr_type.clone()))],
                &e.extra_attrs,
                &e.attr_order,
            );
            for c in &e.children {
                el.push(match c {
                    ExprChild::Var(v) => variable_to_el(v),
                    ExprChild::Other(o) => o.clone(),
                });
            }
            el
        }
        CondNode::Op(o) => {
            let mut el = Element::new("operator");
            el.attrs = order_attrs(
                vec![("type", Some(o.op.raw.clone()))],
                &o.extra_attrs,
                &o.attr_order,
            );
            for c in &o.items {
                el.push(node_to_el(c));
            }
            el
        }
        CondNode::Unknown(e) => e.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    fn cond(s: &str) -> Result<Condition, Error> {
        condition_from_el(&parse(s)?)
    }

    #[test]
    fn reads_expressions_and_operators() {
        let c = cond(
            r#"<condition><operator type="OR"><expression type="SMS_TaskSequence_VariableConditionExpression"><variable name="Operator">EQUALS</variable><variable name="Value">x</variable><variable name="Variable">V</variable></expression></operator></condition>"#,
        )
        .unwrap();
        let CondNode::Op(o) = &c.items[0] else {
            panic!()
        };
        assert_eq!(o.op.value, OpKind::Or);
        assert_eq!(o.op.raw, "OR");
        assert_eq!(
            c.expressions()[0].kind().unwrap(),
            ExprKind::Variable {
                variable: "V".into(),
                op: CmpOp::Equals,
                value: "x".into()
            }
        );
        // Written back with the original spelling.
        let back = crate::xml::write(&condition_to_el(&c), crate::xml::Layout::Compact);
        assert!(
            back.contains(r#"type="OR""#) && back.contains(">EQUALS<"),
            "{back}"
        );
    }

    #[test]
    fn wrong_operator_is_an_error_with_position() {
        let err = cond(
            "<condition>\n<expression type=\"SMS_TaskSequence_VariableConditionExpression\">\n<variable name=\"Operator\">sortof</variable></expression></condition>",
        )
        .unwrap_err();
        assert_eq!(err.pos().map(|p| p.line), Some(3), "{err}");
        let err = cond("<condition><operator type=\"xor\"/></condition>").unwrap_err();
        assert!(err.to_string().contains("xor"));
        let err = cond("<condition><expression/></condition>").unwrap_err();
        assert!(err.to_string().contains("type"));
    }

    #[test]
    fn registry_accepts_nonexists_and_software_checks_operator() {
        let c = cond(&format!(
            r#"<condition><expression type="{REGISTRY_EXPR}"><variable name="KeyPath">HKEY_LOCAL_MACHINE\X</variable><variable name="Operator">nonExists</variable><variable name="Value">v</variable></expression></condition>"#
        ))
        .unwrap();
        assert!(matches!(
            c.expressions()[0].kind().unwrap(),
            ExprKind::Registry {
                op: CmpOp::NotExists,
                ..
            }
        ));
        assert!(cond(&format!(
            r#"<condition><expression type="{SOFTWARE_EXPR}"><variable name="Operator">Some</variable></expression></condition>"#
        ))
        .is_err());
    }

    #[test]
    fn display_is_readable() {
        let c = Condition::all(vec![
            Expression::variable("_SMSTSClientCache", CmpOp::NotExists, ""),
            Expression::variable("_SMSTSBootUEFI", CmpOp::Equals, "true"),
        ]);
        assert_eq!(
            c.to_string(),
            "_SMSTSClientCache notExists and _SMSTSBootUEFI equals \"true\""
        );
    }
}
