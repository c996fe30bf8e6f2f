//! A small, non-recursive XML reader that turns a document into an
//! [`XmlNode`] tree.
//!
//! WIM XML is plain: elements, attributes, text and the five predefined
//! entities. We do not need namespaces, DTDs or external entities (and must not
//! expand any: the document comes from an untrusted file), so a purpose-built
//! reader is simpler to bound than a general one. Nesting is tracked with an
//! explicit stack capped at [`MAX_DEPTH`], and the number of nodes is capped at
//! [`MAX_NODES`], so hostile input can neither overflow the call stack nor make
//! us allocate much more than a small multiple of its own size.

use super::{XmlError, XmlNode};

/// Deepest element nesting accepted. Real WIM XML nests 4 levels
/// (`WIM/IMAGE/WINDOWS/VERSION`); 64 leaves room for vendor additions.
pub const MAX_DEPTH: usize = 64;

/// Most elements accepted in one document. A Windows install.wim with a dozen
/// editions has well under two thousand; an image written by wimlib has 11,
/// so this allows about 95,000 such images (the format's limit is 65,535)
/// while keeping the tree under roughly 200 MiB.
pub const MAX_NODES: usize = 1 << 20;

/// Most attributes on one element. WIM XML uses one (`INDEX`); the cap keeps
/// the duplicate-attribute check, which is quadratic, cheap.
pub const MAX_ATTRIBUTES: usize = 64;

/// Parses `text` (already decoded) into the root element.
pub fn parse_document(text: &str) -> Result<XmlNode, XmlError> {
    let mut p = Parser {
        s: text,
        pos: 0,
        nodes: 0,
    };
    p.skip_misc()?;
    if p.pos >= p.s.len() {
        return Err(p.syntax("document has no root element"));
    }
    let root = p.element()?;
    p.skip_misc()?;
    if p.pos < p.s.len() {
        return Err(p.syntax("content after the root element"));
    }
    Ok(root)
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
    nodes: usize,
}

/// One open element while its content is being read.
struct Frame {
    node: XmlNode,
    text: String,
    /// Where the start tag began, for "unclosed element" errors.
    start: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn starts_with(&self, pat: &str) -> bool {
        self.rest().starts_with(pat)
    }

    fn bump(&mut self, c: char) {
        self.pos += c.len_utf8();
    }

    /// Line and column (1-based, column counted in characters) of a byte
    /// offset. Only computed when reporting an error.
    fn line_col(&self, at: usize) -> (usize, usize) {
        let before = self.s.get(..at).unwrap_or(self.s);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    fn syntax_at(&self, at: usize, message: impl Into<String>) -> XmlError {
        let (line, column) = self.line_col(at);
        XmlError::Syntax {
            line,
            column,
            message: message.into(),
        }
    }

    fn syntax(&self, message: impl Into<String>) -> XmlError {
        self.syntax_at(self.pos, message)
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if is_ws(c) {
                self.bump(c);
            } else {
                break;
            }
        }
    }

    /// Skips to just past `end`, or fails naming `what` if it never comes.
    fn skip_past(&mut self, end: &str, what: &str) -> Result<&'a str, XmlError> {
        let rest = self.rest();
        match rest.find(end) {
            Some(i) => {
                let skipped = rest.get(..i).unwrap_or("");
                check_chars(self, skipped, self.pos)?;
                self.pos += i + end.len();
                Ok(skipped)
            }
            None => Err(self.syntax(format!("unterminated {what}"))),
        }
    }

    /// Whitespace, comments, processing instructions (including the XML
    /// declaration) and a DOCTYPE outside the root element. NUL characters
    /// are skipped as well: some writers pad the resource with them.
    fn skip_misc(&mut self) -> Result<(), XmlError> {
        loop {
            let before = self.pos;
            while let Some(c) = self.peek() {
                if is_ws(c) || c == '\u{0}' || c == '\u{feff}' {
                    self.bump(c);
                } else {
                    break;
                }
            }
            if self.starts_with("<?") {
                self.pos += 2;
                self.skip_past("?>", "processing instruction")?;
            } else if self.starts_with("<!--") {
                self.pos += 4;
                self.skip_past("-->", "comment")?;
            } else if self.starts_with("<!DOCTYPE") {
                self.pos += 9;
                self.skip_doctype()?;
            }
            if self.pos == before {
                return Ok(());
            }
        }
    }

    /// A DOCTYPE is skipped, never interpreted: an internal subset could
    /// declare entities, and expanding those is how "billion laughs" works.
    fn skip_doctype(&mut self) -> Result<(), XmlError> {
        let rest = self.rest();
        let gt = rest.find('>');
        let bracket = rest.find('[');
        match (gt, bracket) {
            (Some(g), Some(b)) if b < g => {
                self.pos += b + 1;
                self.skip_past("]", "DOCTYPE internal subset")?;
                self.skip_ws();
                if self.peek() != Some('>') {
                    return Err(self.syntax("expected '>' to close DOCTYPE"));
                }
                self.pos += 1;
                Ok(())
            }
            (Some(g), _) => {
                self.pos += g + 1;
                Ok(())
            }
            (None, _) => Err(self.syntax("unterminated DOCTYPE")),
        }
    }

    fn name(&mut self) -> Result<String, XmlError> {
        let start = self.pos;
        match self.peek() {
            Some(c) if is_name_start(c) => self.bump(c),
            Some(c) => return Err(self.syntax(format!("expected a name, found {c:?}"))),
            None => return Err(self.syntax("expected a name, found end of document")),
        }
        while let Some(c) = self.peek() {
            if is_name_char(c) {
                self.bump(c);
            } else {
                break;
            }
        }
        Ok(self.s.get(start..self.pos).unwrap_or("").to_owned())
    }

    /// Reads a start tag at `self.pos` (which is at '<'). Returns the node and
    /// whether it was self-closing (`<X/>`).
    fn start_tag(&mut self) -> Result<(XmlNode, bool), XmlError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(XmlError::TooManyElements { limit: MAX_NODES });
        }
        self.pos += 1; // '<'
        let name = self.name()?;
        let mut node = XmlNode {
            name,
            ..XmlNode::default()
        };
        loop {
            let had_ws = {
                let before = self.pos;
                self.skip_ws();
                self.pos != before
            };
            match self.peek() {
                Some('>') => {
                    self.pos += 1;
                    return Ok((node, false));
                }
                Some('/') => {
                    self.pos += 1;
                    if self.peek() != Some('>') {
                        return Err(self.syntax("expected '>' after '/' in a tag"));
                    }
                    self.pos += 1;
                    return Ok((node, true));
                }
                Some(_) if had_ws => {
                    let at = self.pos;
                    let attr = self.name()?;
                    self.skip_ws();
                    if self.peek() != Some('=') {
                        return Err(self.syntax(format!("expected '=' after attribute {attr}")));
                    }
                    self.pos += 1;
                    self.skip_ws();
                    let quote = match self.peek() {
                        Some(q @ ('"' | '\'')) => q,
                        _ => return Err(self.syntax("expected a quoted attribute value")),
                    };
                    self.pos += 1;
                    let value_start = self.pos;
                    let rest = self.rest();
                    let Some(len) = rest.find(quote) else {
                        return Err(self.syntax("unterminated attribute value"));
                    };
                    let raw = rest.get(..len).unwrap_or("");
                    if let Some(i) = raw.find('<') {
                        return Err(self.syntax_at(value_start + i, "'<' in attribute value"));
                    }
                    let value = unescape(self, raw, value_start)?;
                    self.pos += len + 1;
                    if node.attributes.len() >= MAX_ATTRIBUTES {
                        return Err(self.syntax_at(
                            at,
                            format!("more than {MAX_ATTRIBUTES} attributes on one element"),
                        ));
                    }
                    if node.attributes.iter().any(|(k, _)| *k == attr) {
                        return Err(self.syntax_at(at, format!("duplicate attribute {attr}")));
                    }
                    node.attributes.push((attr, value));
                }
                Some(c) => return Err(self.syntax(format!("unexpected {c:?} in a tag"))),
                None => return Err(self.syntax("unterminated tag")),
            }
        }
    }

    /// Reads one element and everything inside it, without recursion.
    fn element(&mut self) -> Result<XmlNode, XmlError> {
        if self.peek() != Some('<') {
            return Err(self.syntax("expected '<'"));
        }
        let start = self.pos;
        let (root, empty) = self.start_tag()?;
        if empty {
            return Ok(root);
        }
        let mut stack = vec![Frame {
            node: root,
            text: String::new(),
            start,
        }];
        loop {
            let rest = self.rest();
            let Some(frame) = stack.last_mut() else {
                return Err(self.syntax("internal error: empty element stack"));
            };
            if rest.is_empty() {
                let name = frame.node.name.clone();
                return Err(
                    self.syntax_at(frame.start, format!("element <{name}> is never closed"))
                );
            }
            // Text up to the next markup.
            let text_len = rest.find('<').unwrap_or(rest.len());
            if text_len > 0 {
                let raw = rest.get(..text_len).unwrap_or("");
                let at = self.pos;
                let text = unescape(self, raw, at)?;
                if let Some(frame) = stack.last_mut() {
                    frame.text.push_str(&text);
                }
                self.pos += text_len;
                continue;
            }
            if self.starts_with("</") {
                self.pos += 2;
                let at = self.pos;
                let name = self.name()?;
                self.skip_ws();
                if self.peek() != Some('>') {
                    return Err(self.syntax("expected '>' to end the end tag"));
                }
                self.pos += 1;
                let Some(frame) = stack.pop() else {
                    return Err(self.syntax("internal error: empty element stack"));
                };
                if frame.node.name != name {
                    return Err(self.syntax_at(
                        at,
                        format!("end tag </{name}> does not match <{}>", frame.node.name),
                    ));
                }
                let node = finish(frame);
                match stack.last_mut() {
                    Some(parent) => parent.node.children.push(node),
                    None => return Ok(node),
                }
            } else if self.starts_with("<!--") {
                self.pos += 4;
                self.skip_past("-->", "comment")?;
            } else if self.starts_with("<![CDATA[") {
                self.pos += 9;
                let text = self.skip_past("]]>", "CDATA section")?;
                if let Some(frame) = stack.last_mut() {
                    frame.text.push_str(text);
                }
            } else if self.starts_with("<?") {
                self.pos += 2;
                self.skip_past("?>", "processing instruction")?;
            } else if self.starts_with("<!") {
                return Err(self.syntax("unsupported markup declaration inside an element"));
            } else {
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep {
                        line: self.line_col(self.pos).0,
                        limit: MAX_DEPTH,
                    });
                }
                let start = self.pos;
                let (node, empty) = self.start_tag()?;
                if empty {
                    if let Some(parent) = stack.last_mut() {
                        parent.node.children.push(node);
                    }
                } else {
                    stack.push(Frame {
                        node,
                        text: String::new(),
                        start,
                    });
                }
            }
        }
    }
}

/// Closes an element: whitespace between child elements is layout, not data,
/// so an element with children keeps its text only if there is some that is
/// not whitespace. A leaf keeps any text, whitespace included.
fn finish(frame: Frame) -> XmlNode {
    let mut node = frame.node;
    let keep = if node.children.is_empty() {
        !frame.text.is_empty()
    } else {
        !frame.text.chars().all(is_ws)
    };
    node.text = keep.then_some(frame.text);
    node
}

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (!c.is_ascii() && c != '\u{feff}')
}

fn is_name_char(c: char) -> bool {
    is_name_start(c) || c.is_ascii_digit() || c == '-' || c == '.'
}

/// XML 1.0 `Char`: no C0 controls other than tab, LF and CR, and not
/// U+FFFE/U+FFFF (Rust strings cannot hold surrogates).
pub(crate) fn is_xml_char(c: char) -> bool {
    !matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

fn check_chars(p: &Parser<'_>, raw: &str, at: usize) -> Result<(), XmlError> {
    if let Some((i, c)) = raw.char_indices().find(|&(_, c)| !is_xml_char(c)) {
        return Err(p.syntax_at(
            at + i,
            format!("character U+{:04X} is not allowed in XML", c as u32),
        ));
    }
    Ok(())
}

/// Replaces entity and character references. `at` is the byte offset of
/// `raw` in the document, for error positions.
fn unescape(p: &Parser<'_>, raw: &str, at: usize) -> Result<String, XmlError> {
    check_chars(p, raw, at)?;
    if !raw.contains('&') {
        return Ok(raw.to_owned());
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    let mut offset = at;
    while let Some(amp) = rest.find('&') {
        out.push_str(rest.get(..amp).unwrap_or(""));
        let after = rest.get(amp + 1..).unwrap_or("");
        let Some(semi) = after.find(';').filter(|&i| i <= 12) else {
            return Err(p.syntax_at(
                offset + amp,
                "'&' not followed by a reference ending in ';'",
            ));
        };
        let entity = after.get(..semi).unwrap_or("");
        let c = match entity {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "apos" => '\'',
            "quot" => '"',
            _ => {
                let code = if let Some(hex) = entity.strip_prefix("#x") {
                    parse_radix(hex, 16)
                } else if let Some(dec) = entity.strip_prefix('#') {
                    parse_radix(dec, 10)
                } else {
                    None
                };
                match code.and_then(char::from_u32) {
                    Some(c) if is_xml_char(c) => c,
                    _ => {
                        return Err(p.syntax_at(
                            offset + amp,
                            format!("unknown or invalid reference &{entity};"),
                        ))
                    }
                }
            }
        };
        out.push(c);
        let consumed = amp + 1 + semi + 1;
        rest = rest.get(consumed..).unwrap_or("");
        offset += consumed;
    }
    out.push_str(rest);
    Ok(out)
}

fn parse_radix(digits: &str, radix: u32) -> Option<u32> {
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(name: &str, text: Option<&str>) -> XmlNode {
        XmlNode {
            name: name.into(),
            text: text.map(Into::into),
            ..XmlNode::default()
        }
    }

    #[test]
    fn parses_nested_elements_attributes_and_entities() {
        let doc = "<?xml version=\"1.0\"?>\n<!-- hi --><A x='1' y=\"&lt;&#65;&#x42;\">\n  <B>t &amp; u</B>\n  <C/><D></D>\n</A>\n";
        let root = parse_document(doc).unwrap();
        assert_eq!(root.name, "A");
        assert_eq!(
            root.attributes,
            vec![("x".into(), "1".into()), ("y".into(), "<AB".into())]
        );
        assert_eq!(root.text, None, "indentation between children is dropped");
        assert_eq!(
            root.children,
            vec![leaf("B", Some("t & u")), leaf("C", None), leaf("D", None)]
        );
    }

    #[test]
    fn keeps_whitespace_only_text_of_a_leaf_and_cdata() {
        let root = parse_document("<A><B>  </B><C><![CDATA[<x>&]]></C></A>").unwrap();
        assert_eq!(root.children[0].text.as_deref(), Some("  "));
        assert_eq!(root.children[1].text.as_deref(), Some("<x>&"));
    }

    #[test]
    fn doctype_with_internal_subset_is_skipped_not_expanded() {
        let doc = "<!DOCTYPE A [<!ENTITY e \"boom\">]><A>x</A>";
        assert_eq!(parse_document(doc).unwrap().text.as_deref(), Some("x"));
        // The declared entity is not known to us, so using it is an error.
        let doc = "<!DOCTYPE A [<!ENTITY e \"boom\">]><A>&e;</A>";
        assert!(parse_document(doc).is_err());
    }

    #[test]
    fn errors_carry_line_and_column() {
        let err = parse_document("<A>\n  <B></C>\n</A>").unwrap_err();
        match err {
            XmlError::Syntax { line, column, .. } => assert_eq!((line, column), (2, 8)),
            other => panic!("unexpected error {other:?}"),
        }
    }

    #[test]
    fn rejects_malformed_documents() {
        for bad in [
            "",
            "   ",
            "<A>",
            "<A></A><B></B>",
            "<A x=1></A>",
            "<A x='1' x='2'></A>",
            "<A>&bogus;</A>",
            "<A>& </A>",
            "<A>&#0;</A>",
            "<A>&#xD800;</A>",
            "<A>\u{1}</A>",
            "<A><!-- x </A>",
            "<A x='<'></A>",
            "<1A></1A>",
            "<A></A >x",
            "<A/ >",
        ] {
            assert!(parse_document(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn depth_is_capped_without_recursion() {
        let ok = "<A>".repeat(MAX_DEPTH) + &"</A>".repeat(MAX_DEPTH);
        assert!(parse_document(&ok).is_ok());
        let deep = "<A>".repeat(100_000) + &"</A>".repeat(100_000);
        assert!(matches!(
            parse_document(&deep),
            Err(XmlError::TooDeep {
                limit: MAX_DEPTH,
                ..
            })
        ));
    }

    #[test]
    fn attribute_count_is_capped() {
        let attrs = |n: usize| (0..n).map(|i| format!(" a{i}=''")).collect::<String>();
        assert!(parse_document(&format!("<A{}/>", attrs(MAX_ATTRIBUTES))).is_ok());
        let err = parse_document(&format!("<A{}/>", attrs(100_000))).unwrap_err();
        assert!(
            err.to_string().contains("attributes on one element"),
            "{err}"
        );
    }

    #[test]
    fn element_count_is_capped() {
        let many = format!("<A>{}</A>", "<B/>".repeat(MAX_NODES));
        assert!(matches!(
            parse_document(&many),
            Err(XmlError::TooManyElements { .. })
        ));
    }
}
