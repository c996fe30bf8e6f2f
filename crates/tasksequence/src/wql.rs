//! WQL, the subset that task sequence conditions use: `SELECT * | props FROM
//! class [WHERE …]` with `=`, `<>`/`!=`, `<`, `>`, `<=`, `>=`, `LIKE`, `AND`,
//! `OR`, `NOT`, `IS [NOT] NULL` and parentheses, evaluated over an inventory of
//! the target computer (the classes in `SUPPORTED_CLASSES`).
//!
//! A query this module does not understand, or a class outside the inventory,
//! is an error: a condition that cannot be evaluated must not quietly be false.
//! Keywords and identifiers are case-insensitive, so are string comparisons
//! (WMI's default collation).

use std::collections::BTreeMap;
use std::fmt;

/// The classes the inventory provides.
pub const SUPPORTED_CLASSES: [&str; 9] = [
    "Win32_ComputerSystem",
    "Win32_BIOS",
    "Win32_BaseBoard",
    "Win32_Processor",
    "Win32_OperatingSystem",
    "Win32_DiskDrive",
    "Win32_NetworkAdapter",
    "Win32_SystemEnclosure",
    "Win32_ComputerSystemProduct",
];

/// Longest query accepted (ConfigMgr allows 16384 characters).
pub const MAX_QUERY: usize = 16384;
/// Deepest nesting of parentheses and NOTs accepted.
const MAX_NESTING: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("WQL: {message} (at character {offset})")]
pub struct WqlError {
    pub message: String,
    /// 0-based character offset into the query.
    pub offset: usize,
}

/// A property value of an inventory instance.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Real(f64),
    Str(String),
    /// Array properties (e.g. `Win32_SystemEnclosure.ChassisTypes`): a
    /// comparison matches when any element matches.
    Array(Vec<Value>),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

/// One instance: property name → value. Names compare case-insensitively.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Instance {
    props: BTreeMap<String, Value>,
}

impl Instance {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with(mut self, name: &str, v: impl Into<Value>) -> Self {
        self.set(name, v.into());
        self
    }
    pub fn set(&mut self, name: &str, v: Value) {
        self.props.insert(name.to_ascii_lowercase(), v);
    }
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.props.get(&name.to_ascii_lowercase())
    }
}

/// The target's hardware/OS inventory, by class.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Inventory {
    classes: BTreeMap<String, Vec<Instance>>,
}

impl Inventory {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn add(&mut self, class: &str, inst: Instance) {
        self.classes
            .entry(class.to_ascii_lowercase())
            .or_default()
            .push(inst);
    }
    pub fn instances(&self, class: &str) -> &[Instance] {
        self.classes
            .get(&class.to_ascii_lowercase())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp(String, CmpOp, Literal),
    Like(String, String),
    IsNull(String, bool),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// `None` for `*`.
    pub properties: Option<Vec<String>>,
    pub class: String,
    pub filter: Option<Expr>,
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SELECT … FROM {}", self.class)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Star,
    Comma,
    LParen,
    RParen,
    Op(CmpOp),
}

fn lex(q: &str) -> Result<Vec<(Tok, usize)>, WqlError> {
    let chars: Vec<char> = q.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |m: &str, at: usize| WqlError {
        message: m.to_string(),
        offset: at,
    };
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '*' => {
                out.push((Tok::Star, start));
                i += 1;
            }
            ',' => {
                out.push((Tok::Comma, start));
                i += 1;
            }
            '(' => {
                out.push((Tok::LParen, start));
                i += 1;
            }
            ')' => {
                out.push((Tok::RParen, start));
                i += 1;
            }
            '=' => {
                out.push((Tok::Op(CmpOp::Eq), start));
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                out.push((Tok::Op(CmpOp::Ne), start));
                i += 2;
            }
            '<' | '>' => {
                let next = chars.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    ('<', Some('>')) => (CmpOp::Ne, 2),
                    ('<', Some('=')) => (CmpOp::Le, 2),
                    ('>', Some('=')) => (CmpOp::Ge, 2),
                    ('<', _) => (CmpOp::Lt, 1),
                    _ => (CmpOp::Gt, 1),
                };
                out.push((Tok::Op(op), start));
                i += len;
            }
            '\'' | '"' => {
                let quote = c;
                i += 1;
                let mut s = String::new();
                loop {
                    match chars.get(i) {
                        None => return Err(err("unterminated string", start)),
                        // Backslash escapes the quote or itself (WQL's rule).
                        Some('\\') if matches!(chars.get(i + 1), Some(&n) if n == quote || n == '\\') =>
                        {
                            if let Some(&n) = chars.get(i + 1) {
                                s.push(n);
                            }
                            i += 2;
                        }
                        Some(&ch) if ch == quote => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push((Tok::Str(s), start));
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let n: f64 = text.parse().map_err(|_| err("bad number", start))?;
                out.push((Tok::Num(n), start));
            }
            c if c.is_alphabetic() || c == '_' => {
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                out.push((Tok::Ident(chars[start..i].iter().collect()), start));
            }
            other => return Err(err(&format!("unexpected character '{other}'"), start)),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    at: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(t, _)| t)
    }
    fn offset(&self) -> usize {
        self.toks.get(self.at).map(|(_, o)| *o).unwrap_or(self.end)
    }
    fn err<T>(&self, m: impl Into<String>) -> Result<T, WqlError> {
        Err(WqlError {
            message: m.into(),
            offset: self.offset(),
        })
    }
    fn keyword(&mut self, k: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(k)) {
            self.at += 1;
            true
        } else {
            false
        }
    }
    fn expect_keyword(&mut self, k: &str) -> Result<(), WqlError> {
        if self.keyword(k) {
            Ok(())
        } else {
            self.err(format!("expected {k}"))
        }
    }
    fn ident(&mut self, what: &str) -> Result<String, WqlError> {
        match self.peek() {
            Some(Tok::Ident(s)) if !is_reserved(s) => {
                let s = s.clone();
                self.at += 1;
                Ok(s)
            }
            _ => self.err(format!("expected {what}")),
        }
    }

    fn or(&mut self, depth: usize) -> Result<Expr, WqlError> {
        let mut e = self.and(depth)?;
        while self.keyword("OR") {
            e = Expr::Or(Box::new(e), Box::new(self.and(depth)?));
        }
        Ok(e)
    }
    fn and(&mut self, depth: usize) -> Result<Expr, WqlError> {
        let mut e = self.not(depth)?;
        while self.keyword("AND") {
            e = Expr::And(Box::new(e), Box::new(self.not(depth)?));
        }
        Ok(e)
    }
    fn not(&mut self, depth: usize) -> Result<Expr, WqlError> {
        if depth > MAX_NESTING {
            return self.err("expression nested too deeply");
        }
        if self.keyword("NOT") {
            return Ok(Expr::Not(Box::new(self.not(depth + 1)?)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.at += 1;
            let e = self.or(depth + 1)?;
            if self.peek() != Some(&Tok::RParen) {
                return self.err("expected )");
            }
            self.at += 1;
            return Ok(e);
        }
        let prop = self.ident("a property name")?;
        if self.keyword("IS") {
            let negated = self.keyword("NOT");
            self.expect_keyword("NULL")?;
            return Ok(Expr::IsNull(prop, !negated));
        }
        let negated_like = self.keyword("NOT");
        if self.keyword("LIKE") {
            let pattern = match self.peek() {
                Some(Tok::Str(s)) => s.clone(),
                _ => return self.err("LIKE needs a string pattern"),
            };
            self.at += 1;
            let like = Expr::Like(prop, pattern);
            return Ok(if negated_like {
                Expr::Not(Box::new(like))
            } else {
                like
            });
        }
        if negated_like {
            return self.err("expected LIKE after NOT");
        }
        let op = match self.peek() {
            Some(Tok::Op(op)) => *op,
            _ => return self.err("expected a comparison operator (=, <>, <, >, <=, >=, LIKE, IS)"),
        };
        self.at += 1;
        let lit = match self.peek() {
            Some(Tok::Str(s)) => Literal::Str(s.clone()),
            Some(Tok::Num(n)) => Literal::Num(*n),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("TRUE") => Literal::Bool(true),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("FALSE") => Literal::Bool(false),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("NULL") => Literal::Null,
            _ => return self.err("expected a string, number, TRUE, FALSE or NULL"),
        };
        self.at += 1;
        Ok(Expr::Cmp(prop, op, lit))
    }
}

fn is_reserved(s: &str) -> bool {
    [
        "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "LIKE", "IS", "NULL", "TRUE", "FALSE",
    ]
    .iter()
    .any(|k| k.eq_ignore_ascii_case(s))
}

/// Parses a query; the class is checked against `SUPPORTED_CLASSES`.
pub fn parse(q: &str) -> Result<Query, WqlError> {
    if q.len() > MAX_QUERY {
        return Err(WqlError {
            message: format!("query longer than {MAX_QUERY} characters"),
            offset: 0,
        });
    }
    let toks = lex(q)?;
    let mut p = Parser {
        toks,
        at: 0,
        end: q.chars().count(),
    };
    p.expect_keyword("SELECT")?;
    let properties = if p.peek() == Some(&Tok::Star) {
        p.at += 1;
        None
    } else {
        let mut v = vec![p.ident("* or a property list")?];
        while p.peek() == Some(&Tok::Comma) {
            p.at += 1;
            v.push(p.ident("a property name")?);
        }
        Some(v)
    };
    p.expect_keyword("FROM")?;
    let class_at = p.offset();
    let class = p.ident("a class name")?;
    let Some(canonical) = SUPPORTED_CLASSES
        .iter()
        .find(|c| c.eq_ignore_ascii_case(&class))
    else {
        return Err(WqlError {
            message: format!(
                "class {class} is not in the inventory (supported: {})",
                SUPPORTED_CLASSES.join(", ")
            ),
            offset: class_at,
        });
    };
    let filter = if p.keyword("WHERE") {
        Some(p.or(0)?)
    } else {
        None
    };
    if p.peek().is_some() {
        return p
            .err("unexpected text after the query (only SELECT … FROM … WHERE … is supported)");
    }
    Ok(Query {
        properties,
        class: canonical.to_string(),
        filter,
    })
}

/// SQL LIKE: `%` any run, `_` one character, `[abc]`, `[a-z]`, `[^a]`; case-insensitive.
pub fn like(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    let p: Vec<char> = pattern.chars().flat_map(char::to_lowercase).collect();
    // Iterative matcher with backtracking to the last `%`: linear memory, no recursion.
    let (mut ti, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                '%' => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                '_' => {
                    ti += 1;
                    pi += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = class_match(&p, pi, t[ti]) {
                        if matched {
                            ti += 1;
                            pi = next;
                            continue;
                        }
                    } else if t[ti] == '[' {
                        ti += 1;
                        pi += 1;
                        continue;
                    }
                }
                c if c == t[ti] => {
                    ti += 1;
                    pi += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '%')
}

/// Matches a `[…]` set at `p[at]`; returns (matched, index after `]`), or None
/// when there is no closing bracket (then `[` is literal).
fn class_match(p: &[char], at: usize, c: char) -> Option<(bool, usize)> {
    let mut i = at + 1;
    let negate = p.get(i) == Some(&'^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            if p[i] <= c && c <= p[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(n) => Some(*n as f64),
        Value::Real(r) => Some(*r),
        Value::Str(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

fn cmp_values(v: &Value, op: CmpOp, lit: &Literal) -> bool {
    use std::cmp::Ordering;
    if let Value::Array(items) = v {
        return items.iter().any(|i| cmp_values(i, op, lit));
    }
    let ord: Option<Ordering> = match (v, lit) {
        (Value::Null, _) | (_, Literal::Null) => None,
        (Value::Bool(a), Literal::Bool(b)) => Some(a.cmp(b)),
        (Value::Str(a), Literal::Bool(b)) => match a.to_ascii_lowercase().as_str() {
            "true" => Some(true.cmp(b)),
            "false" => Some(false.cmp(b)),
            _ => None,
        },
        (_, Literal::Num(n)) => as_number(v).and_then(|a| a.partial_cmp(n)),
        (Value::Str(a), Literal::Str(b)) => Some(a.to_lowercase().cmp(&b.to_lowercase())),
        (Value::Int(_) | Value::Real(_), Literal::Str(b)) => {
            let bn = b.trim().parse::<f64>().ok();
            match (as_number(v), bn) {
                (Some(a), Some(b)) => a.partial_cmp(&b),
                _ => None,
            }
        }
        (Value::Bool(a), Literal::Str(b)) => match b.to_ascii_lowercase().as_str() {
            "true" => Some(a.cmp(&true)),
            "false" => Some(a.cmp(&false)),
            _ => None,
        },
        _ => None,
    };
    match ord {
        None => false,
        Some(o) => match op {
            CmpOp::Eq => o == Ordering::Equal,
            CmpOp::Ne => o != Ordering::Equal,
            CmpOp::Lt => o == Ordering::Less,
            CmpOp::Gt => o == Ordering::Greater,
            CmpOp::Le => o != Ordering::Greater,
            CmpOp::Ge => o != Ordering::Less,
        },
    }
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Null | Value::Array(_) => None,
        Value::Bool(b) => Some(if *b { "TRUE" } else { "FALSE" }.to_string()),
        Value::Int(n) => Some(n.to_string()),
        Value::Real(r) => Some(r.to_string()),
        Value::Str(s) => Some(s.clone()),
    }
}

/// Whether one instance satisfies the filter. Missing properties are NULL.
pub fn matches(e: &Expr, inst: &Instance) -> bool {
    let get = |p: &str| inst.get(p).cloned().unwrap_or(Value::Null);
    match e {
        Expr::And(a, b) => matches(a, inst) && matches(b, inst),
        Expr::Or(a, b) => matches(a, inst) || matches(b, inst),
        Expr::Not(a) => !matches(a, inst),
        Expr::Cmp(p, op, lit) => cmp_values(&get(p), *op, lit),
        Expr::Like(p, pat) => match get(p) {
            Value::Array(items) => items
                .iter()
                .any(|i| value_text(i).is_some_and(|t| like(&t, pat))),
            v => value_text(&v).is_some_and(|t| like(&t, pat)),
        },
        Expr::IsNull(p, want_null) => matches!(get(p), Value::Null) == *want_null,
    }
}

/// Runs the query over the inventory: the matching instances.
pub fn run<'a>(q: &Query, inv: &'a [Instance]) -> Vec<&'a Instance> {
    inv.iter()
        .filter(|i| q.filter.as_ref().is_none_or(|f| matches(f, i)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cs() -> Vec<Instance> {
        vec![Instance::new()
            .with("Manufacturer", "HP")
            .with("Model", "HP ProBook 445 G6")
            .with("TotalPhysicalMemory", 17_179_869_184i64)
            .with("PCSystemType", 2i64)]
    }

    fn hits(q: &str) -> usize {
        let q = parse(q).unwrap();
        run(&q, &cs()).len()
    }

    #[test]
    fn sample_queries_from_real_sequences() {
        assert_eq!(
            hits(r#"SELECT * FROM Win32_ComputerSystem WHERE Manufacturer = "HP""#),
            1
        );
        assert_eq!(
            hits(r#"SELECT * FROM Win32_ComputerSystem WHERE Manufacturer LIKE "HP%""#),
            1
        );
        assert_eq!(
            hits(r#"SELECT * FROM Win32_ComputerSystem WHERE Manufacturer LIKE "Hewlett%""#),
            0
        );
        assert_eq!(
            hits("SELECT * FROM Win32_ComputerSystem WHERE Model = 'HP ProBook 445 G6'"),
            1
        );
        assert_eq!(
            hits("select * from WIN32_computersystem where model = 'hp probook 445 g6'"),
            1
        );
    }

    #[test]
    fn operators_and_logic() {
        assert_eq!(hits("SELECT * FROM Win32_ComputerSystem WHERE TotalPhysicalMemory >= 8000000000 AND NOT Manufacturer <> 'hp'"), 1);
        assert_eq!(hits("SELECT * FROM Win32_ComputerSystem WHERE PCSystemType < 2 OR (Model LIKE '%G_' AND Model NOT LIKE '%G7')"), 1);
        assert_eq!(
            hits("SELECT * FROM Win32_ComputerSystem WHERE PCSystemType != 2"),
            0
        );
        assert_eq!(
            hits("SELECT * FROM Win32_ComputerSystem WHERE Vendor IS NULL"),
            1
        );
        assert_eq!(
            hits("SELECT * FROM Win32_ComputerSystem WHERE Model IS NOT NULL"),
            1
        );
        assert_eq!(
            hits("SELECT * FROM Win32_ComputerSystem WHERE Vendor = 'x'"),
            0
        );
        assert_eq!(hits("SELECT Name, Model FROM Win32_ComputerSystem"), 1);
        assert_eq!(
            hits("SELECT * FROM Win32_ComputerSystem WHERE Model > 'HP'"),
            1
        );
    }

    #[test]
    fn unsupported_classes_and_syntax_are_errors() {
        let e = parse("SELECT * FROM Win32_Tpm").unwrap_err();
        assert!(e.message.contains("Win32_Tpm") && e.offset == 14, "{e}");
        for bad in [
            "SELECT FROM Win32_BIOS",
            "SELECT * Win32_BIOS",
            "SELECT * FROM Win32_BIOS WHERE",
            "SELECT * FROM Win32_BIOS WHERE Name",
            "SELECT * FROM Win32_BIOS WHERE Name = ",
            "SELECT * FROM Win32_BIOS WHERE Name = 'x",
            "SELECT * FROM Win32_BIOS WHERE (Name = 'x'",
            "SELECT * FROM Win32_BIOS WHERE Name ISA 'x'",
            "SELECT * FROM Win32_BIOS GROUP BY Name",
            "ASSOCIATORS OF {Win32_BIOS}",
            "SELECT * FROM Win32_BIOS WHERE Name = 'a' ; DROP",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let deep = format!(
            "SELECT * FROM Win32_BIOS WHERE {}Name='x'",
            "NOT ".repeat(1000)
        );
        assert!(parse(&deep).is_err());
    }

    #[test]
    fn like_patterns() {
        assert!(like("Latitude 7490", "latitude%"));
        assert!(like("abc", "a_c"));
        assert!(like("abc", "%"));
        assert!(like("", "%"));
        assert!(!like("abc", "ab"));
        assert!(like("a1", "a[0-9]"));
        assert!(!like("ax", "a[0-9]"));
        assert!(like("ax", "a[^0-9]"));
        assert!(like("a[", "a["));
        assert!(like("xxaxxb", "%a%b"));
        assert!(!like("xxaxxc", "%a%b"));
    }

    #[test]
    fn arrays_match_any_element() {
        let inv = vec![Instance::new().with(
            "ChassisTypes",
            Value::Array(vec![Value::Int(3), Value::Int(10)]),
        )];
        let q = parse("SELECT * FROM Win32_SystemEnclosure WHERE ChassisTypes = 10").unwrap();
        assert_eq!(run(&q, &inv).len(), 1);
        let q = parse("SELECT * FROM Win32_SystemEnclosure WHERE ChassisTypes = 9").unwrap();
        assert_eq!(run(&q, &inv).len(), 0);
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,200}") {
            let _ = parse(&s);
        }
        #[test]
        fn like_never_panics_and_percent_matches_all(t in "\\PC{0,40}", p in "[a-c%_\\[\\]^-]{0,20}") {
            let _ = like(&t, &p);
            prop_assert!(like(&t, "%"));
        }
    }
}
