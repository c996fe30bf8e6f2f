//! A small owned XML tree: the layer between quick-xml's event stream and the
//! task sequence model.
//!
//! The model needs positions (for errors with line and column), attribute order
//! and unknown elements kept verbatim, which is why it does not deserialize with
//! serde. Input is bounded: size, nesting depth and node count are capped so that
//! hostile input can neither overflow the stack nor allocate without limit. DTDs
//! are refused, so no entity expansion happens at all.

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::error::{Error, Pos};

/// Largest document accepted (bytes of text).
pub const MAX_INPUT: usize = 64 * 1024 * 1024;
/// Deepest element nesting accepted. Real sequences nest a handful of groups.
pub const MAX_DEPTH: usize = 256;
/// Most nodes (elements and text runs) accepted in one document.
pub const MAX_NODES: usize = 4_000_000;

/// One XML element with its attributes in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
    /// Where the start tag begins (1-based line and column); zero for built elements.
    pub pos: Pos,
}

/// A child of an element. Comments and processing instructions are not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    pub fn new(name: impl Into<String>) -> Self {
        Element {
            name: name.into(),
            attrs: Vec::new(),
            children: Vec::new(),
            pos: Pos::default(),
        }
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn with_attr(mut self, name: &str, value: impl Into<String>) -> Self {
        self.attrs.push((name.to_string(), value.into()));
        self
    }

    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        let t = text.into();
        if !t.is_empty() {
            self.children.push(Node::Text(t));
        }
        self
    }

    pub fn push(&mut self, child: Element) {
        self.children.push(Node::Element(child));
    }

    /// Child elements, skipping text.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// Concatenated text of the direct text children.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                s.push_str(t);
            }
        }
        s
    }

    /// True when the element holds non-whitespace text next to child elements,
    /// i.e. mixed content; such content is written back without reindenting.
    fn has_mixed_content(&self) -> bool {
        let has_elem = self.children.iter().any(|n| matches!(n, Node::Element(_)));
        has_elem
            && self
                .children
                .iter()
                .any(|n| matches!(n, Node::Text(t) if !t.trim().is_empty()))
    }
}

/// Decodes a byte buffer to text: UTF-8 (with or without BOM) or UTF-16 with BOM.
pub fn decode_bytes(bytes: &[u8]) -> Result<String, Error> {
    if bytes.len() > MAX_INPUT {
        return Err(Error::TooLarge {
            size: bytes.len() as u64,
            limit: MAX_INPUT as u64,
        });
    }
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return std::str::from_utf8(rest).map(str::to_owned).map_err(|e| {
            Error::Encoding(format!("invalid UTF-8 at byte {}", e.valid_up_to() + 3))
        });
    }
    let utf16 = |rest: &[u8], le: bool| -> Result<String, Error> {
        let units = rest.chunks_exact(2).map(|c| {
            let b = [c[0], c[1]];
            if le {
                u16::from_le_bytes(b)
            } else {
                u16::from_be_bytes(b)
            }
        });
        char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map_err(|_| Error::Encoding("invalid UTF-16".into()))
    };
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, true);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, false);
    }
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|e| Error::Encoding(format!("invalid UTF-8 at byte {}", e.valid_up_to())))
}

/// Line and column (1-based, column counted in characters) of a byte offset.
pub fn pos_of(text: &str, offset: usize) -> Pos {
    let offset = offset.min(text.len());
    // Back off to a char boundary so slicing cannot panic.
    let mut o = offset;
    while o > 0 && !text.is_char_boundary(o) {
        o -= 1;
    }
    let before = &text[..o];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    Pos {
        line: line as u32,
        column: column as u32,
    }
}

/// Line and column of increasing offsets in linear total time: the parser asks
/// for every element's position, and recounting from the start each time
/// made a large one-line document quadratic.
struct PosCursor<'a> {
    text: &'a str,
    offset: usize,
    pos: Pos,
}

impl<'a> PosCursor<'a> {
    fn new(text: &'a str) -> Self {
        PosCursor {
            text,
            offset: 0,
            pos: Pos { line: 1, column: 1 },
        }
    }

    fn at(&mut self, offset: usize) -> Pos {
        if offset < self.offset {
            return pos_of(self.text, offset);
        }
        let mut end = offset.min(self.text.len());
        while end > self.offset && !self.text.is_char_boundary(end) {
            end -= 1;
        }
        for c in self.text[self.offset..end].chars() {
            if c == '\n' {
                self.pos.line += 1;
                self.pos.column = 1;
            } else {
                self.pos.column += 1;
            }
        }
        self.offset = end;
        self.pos
    }
}

fn predefined_entity(name: &str) -> Option<&'static str> {
    match name {
        "lt" => Some("<"),
        "gt" => Some(">"),
        "amp" => Some("&"),
        "apos" => Some("'"),
        "quot" => Some("\""),
        _ => None,
    }
}

/// Parses a whole document and returns its root element.
pub fn parse(text: &str) -> Result<Element, Error> {
    if text.len() > MAX_INPUT {
        return Err(Error::TooLarge {
            size: text.len() as u64,
            limit: MAX_INPUT as u64,
        });
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader::from_str(text);
    let cfg = reader.config_mut();
    cfg.trim_text(false);
    cfg.check_end_names = true;
    cfg.check_comments = true;
    cfg.expand_empty_elements = false;

    let syntax = |offset: u64, msg: String| Error::Syntax {
        pos: pos_of(text, offset as usize),
        message: msg,
    };

    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut nodes = 0usize;
    let mut cursor = PosCursor::new(text);

    loop {
        let start = reader.buffer_position();
        let ev = match reader.read_event() {
            Ok(ev) => ev,
            Err(e) => return Err(syntax(reader.error_position(), e.to_string())),
        };
        nodes += 1;
        if nodes > MAX_NODES {
            return Err(syntax(start, format!("more than {MAX_NODES} XML nodes")));
        }
        match ev {
            Event::Start(ref s) | Event::Empty(ref s) => {
                let empty = matches!(ev, Event::Empty(_));
                if root.is_some() {
                    return Err(syntax(start, "content after the root element".into()));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(syntax(
                        start,
                        format!("elements nested deeper than {MAX_DEPTH}"),
                    ));
                }
                let name = std::str::from_utf8(s.name().as_ref())
                    .map_err(|_| syntax(start, "element name is not UTF-8".into()))?
                    .to_string();
                let mut el = Element::new(name);
                el.pos = cursor.at(start as usize);
                for a in s.attributes().with_checks(true) {
                    let a = a.map_err(|e| syntax(start, format!("bad attribute: {e}")))?;
                    let key = std::str::from_utf8(a.key.as_ref())
                        .map_err(|_| syntax(start, "attribute name is not UTF-8".into()))?
                        .to_string();
                    let value = a
                        .decode_and_unescape_value(reader.decoder())
                        .map_err(|e| syntax(start, format!("bad value of attribute {key}: {e}")))?
                        .into_owned();
                    el.attrs.push((key, value));
                }
                if empty {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(Node::Element(el)),
                        None => root = Some(el),
                    }
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                // quick-xml checks that end names match their start tags.
                let Some(el) = stack.pop() else {
                    return Err(syntax(start, "unexpected end tag".into()));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(el)),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let s = t
                    .xml10_content()
                    .map_err(|e| syntax(start, format!("bad text: {e}")))?;
                push_text(&mut stack, &s, || {
                    syntax(start, "text outside the root element".into())
                })?;
            }
            Event::CData(c) => {
                let s = c
                    .decode()
                    .map_err(|e| syntax(start, format!("bad CDATA: {e}")))?;
                push_text(&mut stack, &s, || {
                    syntax(start, "CDATA outside the root element".into())
                })?;
            }
            Event::GeneralRef(r) => {
                let resolved: String = if r.is_char_ref() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        _ => return Err(syntax(start, "invalid character reference".into())),
                    }
                } else {
                    let name = r
                        .decode()
                        .map_err(|e| syntax(start, format!("bad entity reference: {e}")))?;
                    match predefined_entity(&name) {
                        Some(v) => v.to_string(),
                        None => return Err(syntax(start, format!("unknown entity &{name};"))),
                    }
                };
                push_text(&mut stack, &resolved, || {
                    syntax(start, "reference outside the root element".into())
                })?;
            }
            Event::DocType(_) => {
                return Err(syntax(
                    start,
                    "DOCTYPE declarations are not accepted".into(),
                ));
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(Error::Syntax {
            pos: pos_of(text, text.len()),
            message: format!(
                "unexpected end of document: <{}> opened at line {}, column {} is not closed",
                open.name, open.pos.line, open.pos.column
            ),
        });
    }
    root.ok_or_else(|| Error::Syntax {
        pos: pos_of(text, text.len()),
        message: "no root element".into(),
    })
}

fn push_text(stack: &mut [Element], s: &str, outside: impl FnOnce() -> Error) -> Result<(), Error> {
    match stack.last_mut() {
        Some(parent) => {
            // Adjacent text runs (text, then a reference, then text) are merged.
            if let Some(Node::Text(prev)) = parent.children.last_mut() {
                prev.push_str(s);
            } else if !s.is_empty() {
                parent.children.push(Node::Text(s.to_string()));
            }
            Ok(())
        }
        None if s.trim().is_empty() => Ok(()),
        None => Err(outside()),
    }
}

/// Escapes text content. `\r` is written as a character reference so that a
/// conforming reader (which folds CR LF to LF) gives back the same string.
pub fn escape_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// Escapes an attribute value (double-quoted). Whitespace other than the space
/// is written as character references because readers normalize it.
pub fn escape_attr(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
}

/// How to lay the document out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// One line, no whitespace between elements: what ConfigMgr writes.
    #[default]
    Compact,
    /// Two-space indentation for elements that hold only elements.
    Indented,
}

/// Writes an element (and its subtree) as XML text.
pub fn write(el: &Element, layout: Layout) -> String {
    let mut out = String::new();
    write_el(el, layout, 0, &mut out);
    if layout == Layout::Indented {
        out.push('\n');
    }
    out
}

fn write_el(el: &Element, layout: Layout, depth: usize, out: &mut String) {
    out.push('<');
    out.push_str(&el.name);
    for (k, v) in &el.attrs {
        out.push(' ');
        out.push_str(k);
        out.push_str("=\"");
        escape_attr(v, out);
        out.push('"');
    }
    // Whitespace-only text between child elements is layout, not data.
    let has_elem = el.children.iter().any(|n| matches!(n, Node::Element(_)));
    let mixed = el.has_mixed_content();
    let children: Vec<&Node> = el
        .children
        .iter()
        .filter(|n| mixed || !has_elem || !matches!(n, Node::Text(t) if t.trim().is_empty()))
        .collect();
    // ConfigMgr writes empty values as `<variable …></variable>`; other empty
    // elements self-close. Following it keeps exports byte-identical.
    if children.is_empty() && !matches!(el.name.as_str(), "variable" | "action") {
        out.push_str("/>");
        return;
    }
    out.push('>');
    let indent = layout == Layout::Indented && has_elem && !mixed;
    for n in children {
        if indent {
            out.push('\n');
            for _ in 0..=depth {
                out.push_str("  ");
            }
        }
        match n {
            Node::Element(c) => write_el(c, layout, depth + 1, out),
            Node::Text(t) => escape_text(t, out),
        }
    }
    if indent {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    }
    out.push_str("</");
    out.push_str(&el.name);
    out.push('>');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_attributes_text_and_references() {
        let e =
            parse("<?xml version=\"1.0\"?>\n<a x=\"1 &amp; 2\"><b>t&lt;&#65;</b><c/></a>").unwrap();
        assert_eq!(e.name, "a");
        assert_eq!(e.attr("x"), Some("1 & 2"));
        let kids: Vec<_> = e.elements().collect();
        assert_eq!(kids.len(), 2);
        assert_eq!(kids[0].text(), "t<A");
        assert_eq!(
            kids[1].pos,
            Pos {
                line: 2,
                column: 35
            }
        );
    }

    #[test]
    fn mismatched_end_tag_has_line_and_column() {
        let err = parse("<a>\n  <b></c>\n</a>").unwrap_err();
        match err {
            Error::Syntax { pos, .. } => assert_eq!(pos.line, 2),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unclosed_and_empty_documents_are_errors() {
        assert!(matches!(parse("<a><b>"), Err(Error::Syntax { .. })));
        assert!(matches!(parse("   "), Err(Error::Syntax { .. })));
        assert!(matches!(parse("<a/><b/>"), Err(Error::Syntax { .. })));
        assert!(matches!(parse("<a>&foo;</a>"), Err(Error::Syntax { .. })));
        assert!(matches!(
            parse("<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>"),
            Err(Error::Syntax { .. })
        ));
    }

    #[test]
    fn depth_is_bounded() {
        let deep = "<a>".repeat(MAX_DEPTH + 1);
        let err = parse(&deep).unwrap_err();
        assert!(err.to_string().contains("nested deeper"), "{err}");
    }

    #[test]
    fn writer_round_trips_special_characters() {
        let mut e = Element::new("v").with_attr("a", "x\"<&>\n\t\r y");
        e.children
            .push(Node::Text("line1\r\nline2 <&> \"q\"".into()));
        for layout in [Layout::Compact, Layout::Indented] {
            let s = write(&e, layout);
            let back = parse(&s).unwrap();
            assert_eq!(back.attr("a"), e.attr("a"));
            assert_eq!(back.text(), e.text());
        }
    }

    #[test]
    fn decodes_boms() {
        assert_eq!(decode_bytes(b"\xEF\xBB\xBF<a/>").unwrap(), "<a/>");
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("<a/>".encode_utf16().flat_map(|u| u.to_le_bytes()))
            .collect();
        assert_eq!(decode_bytes(&utf16).unwrap(), "<a/>");
        assert!(decode_bytes(b"\xFF\xFE\x00\xD8").is_err());
        assert!(decode_bytes(b"<a>\xC3</a>").is_err());
    }

    #[test]
    fn cursor_agrees_with_pos_of() {
        let t = "<a>\n  <b x=\"é\"/>\r\n<c>ü</c>\n</a>";
        let mut c = PosCursor::new(t);
        for off in 0..=t.len() + 2 {
            if t.is_char_boundary(off.min(t.len())) {
                assert_eq!(c.at(off), pos_of(t, off), "offset {off}");
            }
        }
        assert_eq!(c.at(1), pos_of(t, 1), "going back still answers");
    }

    #[test]
    fn position_is_char_based_and_safe() {
        let t = "é\nab";
        assert_eq!(pos_of(t, 4), Pos { line: 2, column: 2 });
        assert_eq!(pos_of(t, 1), Pos { line: 1, column: 1 });
        assert_eq!(pos_of(t, 999), Pos { line: 2, column: 3 });
    }
}
