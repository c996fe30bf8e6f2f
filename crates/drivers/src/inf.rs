//! INF syntax (Microsoft's "General Syntax Rules for INF Files"): `[section]`
//! headers, entries `key = value, value, …` or bare `value, …`, `;` comments
//! outside double quotes, `""` for a quote inside a quoted string, `\` as the
//! last character of a line to continue it on the next, section names and
//! keys compared without case, sections of the same name merged in order,
//! and `%strkey%` tokens replaced from `[Strings]` (overridden by the
//! `[Strings.<LangID>]` section of the wanted locale; `%%` is a literal `%`).
//!
//! Real INFs are messy, so a line that cannot be read (an unterminated
//! quote or section header, a line past the length limit) is skipped with a
//! [`Warning`]; only a file that cannot be read at all (bad encoding, too
//! large, string substitution past its budget) is an [`InfError`], which names
//! the file and the line.

use crate::text::{decode, Encoding};
use std::collections::HashMap;
use std::path::Path;

/// Largest INF accepted (the biggest real display-driver INFs are a few MiB).
pub const MAX_INF_SIZE: usize = 16 << 20;
/// Longest logical line (after continuations), in bytes.
pub const MAX_LINE: usize = 64 << 10;
/// Longest value after `%strkey%` substitution, in bytes.
pub const MAX_VALUE: usize = 16 << 10;
/// Warnings kept per file; further ones are only counted.
pub const MAX_WARNINGS: usize = 200;

/// A file that cannot be read as an INF.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InfError {
    pub file: String,
    /// 1-based; 0 when the problem is the whole file.
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for InfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.reason)
        } else {
            write!(f, "{}, line {}: {}", self.file, self.line, self.reason)
        }
    }
}

/// A line that was skipped or read with a guess.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// One entry: `key = values` or bare values, after substitution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line where the entry starts.
    pub line: usize,
    pub key: Option<String>,
    pub values: Vec<String>,
}

impl Line {
    pub fn value(&self, i: usize) -> Option<&str> {
        self.values.get(i).map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// As first written.
    pub name: String,
    /// Line of the first header with this name.
    pub line: usize,
    pub lines: Vec<Line>,
}

impl Section {
    /// Lines whose key is `key` (without case).
    pub fn entries<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Line> + 'a {
        self.lines.iter().filter(move |l| {
            l.key
                .as_deref()
                .is_some_and(|k| k.eq_ignore_ascii_case(key))
        })
    }
    /// First value of the first line with `key`.
    pub fn value<'a>(&'a self, key: &str) -> Option<&'a str> {
        self.lines
            .iter()
            .find(|l| {
                l.key
                    .as_deref()
                    .is_some_and(|k| k.eq_ignore_ascii_case(key))
            })
            .and_then(|l| l.value(0))
    }
}

#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Language ID of the `[Strings.<id>]` section that overrides `[Strings]`
    /// (hex, as in the section name; `0409` is en-US).
    pub locale: String,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            locale: "0409".into(),
        }
    }
}

/// A parsed INF.
#[derive(Debug, Clone)]
pub struct Inf {
    /// Name used in messages (usually the path).
    pub file: String,
    pub encoding: Encoding,
    sections: Vec<Section>,
    index: HashMap<String, usize>,
    strings: HashMap<String, String>,
    pub warnings: Vec<Warning>,
    /// Warnings beyond [`MAX_WARNINGS`], counted only.
    pub more_warnings: usize,
}

/// A raw entry before substitution.
struct RawLine {
    line: usize,
    key: Option<String>,
    values: Vec<String>,
}

struct RawSection {
    name: String,
    line: usize,
    lines: Vec<RawLine>,
}

fn is_strings_section(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "strings" || n.starts_with("strings.")
}

impl Inf {
    /// Reads and parses the file at `path` (refusing files over [`MAX_INF_SIZE`]).
    pub fn read(path: &Path) -> Result<Inf, InfError> {
        let file = path.display().to_string();
        let err = |reason: String| InfError {
            file: file.clone(),
            line: 0,
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
        if meta.len() > MAX_INF_SIZE as u64 {
            return Err(err(format!(
                "{} bytes is more than the {} an INF may have",
                meta.len(),
                MAX_INF_SIZE
            )));
        }
        let mut data = Vec::new();
        use std::io::Read;
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_INF_SIZE as u64 + 1).read_to_end(&mut data))
            .map_err(|e| err(e.to_string()))?;
        Inf::parse(&file, &data)
    }

    pub fn parse(file: &str, bytes: &[u8]) -> Result<Inf, InfError> {
        Inf::parse_with(file, bytes, &ParseOptions::default())
    }

    pub fn parse_with(file: &str, bytes: &[u8], opts: &ParseOptions) -> Result<Inf, InfError> {
        if bytes.len() > MAX_INF_SIZE {
            return Err(InfError {
                file: file.to_string(),
                line: 0,
                reason: format!(
                    "{} bytes is more than the {MAX_INF_SIZE} an INF may have",
                    bytes.len()
                ),
            });
        }
        let (text, encoding) = decode(bytes).map_err(|e| InfError {
            file: file.to_string(),
            line: e.line,
            reason: e.reason,
        })?;
        let mut inf = Inf {
            file: file.to_string(),
            encoding,
            sections: Vec::new(),
            index: HashMap::new(),
            strings: HashMap::new(),
            warnings: Vec::new(),
            more_warnings: 0,
        };
        let raw = inf.split_sections(&text);
        inf.build_strings(&raw, &opts.locale);
        // Substitution may grow the text; a budget keeps a hostile file
        // (`%a%` a thousand times, `a` 16 KiB long) from growing it without bound.
        let mut budget = bytes.len().saturating_mul(4).saturating_add(1 << 20);
        for rs in raw {
            let strings = is_strings_section(&rs.name);
            let mut lines = Vec::with_capacity(rs.lines.len());
            for rl in rs.lines {
                if strings {
                    lines.push(Line {
                        line: rl.line,
                        key: rl.key,
                        values: rl.values,
                    });
                    continue;
                }
                let mut sub = |s: String| -> Result<Option<String>, InfError> {
                    let out = inf.substitute(&s, rl.line);
                    if out.len() > MAX_VALUE {
                        return Ok(None);
                    }
                    budget = budget.checked_sub(out.len()).ok_or_else(|| InfError {
                        file: inf.file.clone(),
                        line: rl.line,
                        reason: "string substitution makes the file too large".into(),
                    })?;
                    Ok(Some(out))
                };
                let mut too_long = false;
                let key = match rl.key {
                    Some(k) => {
                        let k = sub(k)?;
                        too_long |= k.is_none();
                        k
                    }
                    None => None,
                };
                let mut values = Vec::with_capacity(rl.values.len());
                for v in rl.values {
                    match sub(v)? {
                        Some(v) => values.push(v),
                        None => too_long = true,
                    }
                }
                if too_long {
                    inf.warn(
                        rl.line,
                        format!("a value is longer than {MAX_VALUE} bytes after substitution; line skipped"),
                    );
                    continue;
                }
                lines.push(Line {
                    line: rl.line,
                    key,
                    values,
                });
            }
            inf.add_section(rs.name, rs.line, lines);
        }
        Ok(inf)
    }

    fn warn(&mut self, line: usize, message: String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(Warning { line, message });
        } else {
            self.more_warnings += 1;
        }
    }

    fn add_section(&mut self, name: String, line: usize, lines: Vec<Line>) {
        let key = name.to_ascii_lowercase();
        match self.index.get(&key).and_then(|&i| self.sections.get_mut(i)) {
            Some(s) => s.lines.extend(lines),
            None => {
                self.index.insert(key, self.sections.len());
                self.sections.push(Section { name, line, lines });
            }
        }
    }

    /// Physical lines → logical entries grouped by section header (not yet merged).
    fn split_sections(&mut self, text: &str) -> Vec<RawSection> {
        let mut out: Vec<RawSection> = Vec::new();
        let mut in_section = false;
        let mut logical = String::new();
        let mut start = 0usize;
        let mut overflow = false;
        for (i, phys) in text.split('\n').enumerate() {
            let n = i + 1;
            let phys = phys.strip_suffix('\r').unwrap_or(phys);
            if logical.is_empty() && !overflow {
                start = n;
            }
            let (body, open_quote) = strip_comment(phys);
            let trimmed = body.trim_end();
            let continued = !open_quote && trimmed.ends_with('\\');
            let piece = if continued {
                trimmed.get(..trimmed.len() - 1).unwrap_or("")
            } else {
                body
            };
            if !overflow {
                if logical.len() + piece.len() > MAX_LINE {
                    overflow = true;
                    logical.clear();
                } else {
                    logical.push_str(piece);
                }
            }
            if continued {
                continue;
            }
            if overflow {
                overflow = false;
                self.warn(start, format!("line longer than {MAX_LINE} bytes; skipped"));
                continue;
            }
            let line = std::mem::take(&mut logical);
            self.logical_line(line.trim(), start, &mut out, &mut in_section);
        }
        out
    }

    fn logical_line(
        &mut self,
        line: &str,
        n: usize,
        out: &mut Vec<RawSection>,
        in_section: &mut bool,
    ) {
        if line.is_empty() {
            return;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let Some(close) = rest.find(']') else {
                self.warn(
                    n,
                    "section header without ']'; its lines are ignored".into(),
                );
                *in_section = false;
                return;
            };
            let name = rest.get(..close).unwrap_or("").trim();
            let tail = rest.get(close + 1..).unwrap_or("").trim();
            if name.is_empty() {
                self.warn(n, "empty section name; its lines are ignored".into());
                *in_section = false;
                return;
            }
            if !tail.is_empty() {
                self.warn(
                    n,
                    format!("text after the section header ignored: {tail:?}"),
                );
            }
            out.push(RawSection {
                name: name.to_string(),
                line: n,
                lines: Vec::new(),
            });
            *in_section = true;
            return;
        }
        let Some(section) = out.last_mut().filter(|_| *in_section) else {
            self.warn(n, "entry outside any section ignored".into());
            return;
        };
        let strings = is_strings_section(&section.name);
        match tokenize(line, !strings) {
            Ok((key, values)) => {
                if strings && key.is_none() {
                    self.warn(n, "a [Strings] entry without '=' ignored".into());
                    return;
                }
                section.lines.push(RawLine {
                    line: n,
                    key,
                    values,
                });
            }
            Err(m) => self.warn(n, format!("{m}; line skipped")),
        }
    }

    fn build_strings(&mut self, raw: &[RawSection], locale: &str) {
        let localized = format!("strings.{}", locale.to_ascii_lowercase());
        // Plain [Strings] first, so the locale's section overrides it.
        for pass in 0..2 {
            for s in raw {
                let n = s.name.to_ascii_lowercase();
                let take = if pass == 0 {
                    n == "strings"
                } else {
                    n == localized
                };
                if !take {
                    continue;
                }
                for l in &s.lines {
                    if let Some(k) = &l.key {
                        let v = l.values.first().cloned().unwrap_or_default();
                        self.strings.insert(k.to_ascii_lowercase(), v);
                    }
                }
            }
        }
    }

    /// Replaces `%strkey%` with its string; unknown tokens stay as written
    /// (as Windows leaves them), `%%` becomes `%`.
    fn substitute(&self, s: &str, _line: usize) -> String {
        if !s.contains('%') {
            return s.to_string();
        }
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(p) = rest.find('%') {
            out.push_str(rest.get(..p).unwrap_or(""));
            let after = rest.get(p + 1..).unwrap_or("");
            match after.find('%') {
                Some(0) => {
                    out.push('%');
                    rest = after.get(1..).unwrap_or("");
                }
                Some(q) => {
                    let key = after.get(..q).unwrap_or("");
                    match self.strings.get(&key.to_ascii_lowercase()) {
                        Some(v) => out.push_str(v),
                        None => {
                            out.push('%');
                            out.push_str(key);
                            out.push('%');
                        }
                    }
                    rest = after.get(q + 1..).unwrap_or("");
                }
                None => {
                    out.push('%');
                    rest = after;
                }
            }
            if out.len() > MAX_VALUE {
                return out;
            }
        }
        out.push_str(rest);
        out
    }

    pub fn sections(&self) -> &[Section] {
        &self.sections
    }
    /// The section `name` (without case), merged over all its headers.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.index
            .get(&name.to_ascii_lowercase())
            .and_then(|&i| self.sections.get(i))
    }
    /// `[section] key = value` (first value), substituted.
    pub fn value(&self, section: &str, key: &str) -> Option<&str> {
        self.section(section).and_then(|s| s.value(key))
    }
    /// The string `%key%` stands for.
    pub fn string(&self, key: &str) -> Option<&str> {
        self.strings
            .get(&key.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// Cuts a `;` comment that is outside double quotes. Returns the text before
/// it and whether a quote was left open at the end of the line.
fn strip_comment(line: &str) -> (&str, bool) {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => return (line.get(..i).unwrap_or(line), false),
            _ => {}
        }
    }
    (line, quoted)
}

/// Splits an entry into its key (text before the first `=` outside quotes)
/// and its values (split at `,` outside quotes when `split` is set), with
/// quotes removed, `""` inside quotes kept as one `"`, and unquoted space
/// around each token trimmed.
fn tokenize(line: &str, split: bool) -> Result<(Option<String>, Vec<String>), String> {
    let mut key = None;
    let mut values = Vec::new();
    let mut tok = Tok::default();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    tok.push_quoted('"');
                } else {
                    quoted = false;
                }
            } else {
                tok.push_quoted(c);
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                tok.any_quote = true;
                tok.protect();
            }
            '=' if key.is_none() && values.is_empty() => key = Some(tok.finish()),
            ',' if split => values.push(tok.finish()),
            _ => tok.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted string".into());
    }
    values.push(tok.finish());
    Ok((key, values))
}

/// A token being built: unquoted leading space is dropped, unquoted
/// trailing space is trimmed back to the last quoted character.
#[derive(Default)]
struct Tok {
    s: String,
    /// Length of `s` that must survive trimming (ends after quoted text).
    keep: usize,
    any_quote: bool,
}

impl Tok {
    fn push(&mut self, c: char) {
        if self.s.is_empty() && !self.any_quote && c.is_whitespace() {
            return;
        }
        self.s.push(c);
    }
    fn push_quoted(&mut self, c: char) {
        self.s.push(c);
        self.keep = self.s.len();
    }
    fn protect(&mut self) {
        self.keep = self.s.len();
    }
    fn finish(&mut self) -> String {
        let trimmed_len = self.s.trim_end().len().max(self.keep);
        self.s.truncate(trimmed_len);
        self.any_quote = false;
        self.keep = 0;
        std::mem::take(&mut self.s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Inf {
        Inf::parse("t.inf", s.as_bytes()).unwrap()
    }

    #[test]
    fn entries_quotes_comments_and_continuations() {
        let inf = p(
            "; head\r\n[Version]\r\nSignature=\"$Windows NT$\" ; c\r\nProvider = %P%\r\n\
                     [S]\r\nA = \"x;y\" , b ,\"\"\"q\"\"\", \" sp \"\r\nbare1, bare2\r\n\
                     Long = one, \\\r\n   two ; comment \\\r\n[Strings]\r\nP = \"Red, Hat\"\r\n",
        );
        assert_eq!(inf.value("version", "SIGNATURE"), Some("$Windows NT$"));
        assert_eq!(inf.value("Version", "Provider"), Some("Red, Hat"));
        let s = inf.section("s").unwrap();
        assert_eq!(s.lines[0].values, ["x;y", "b", "\"q\"", " sp "]);
        assert_eq!(s.lines[1].key, None);
        assert_eq!(s.lines[1].values, ["bare1", "bare2"]);
        assert_eq!(s.lines[2].values, ["one", "two"]);
        assert_eq!(s.lines[2].line, 8);
        assert!(inf.warnings.is_empty(), "{:?}", inf.warnings);
    }

    #[test]
    fn duplicate_sections_merge_and_locale_strings_override() {
        let inf = p("[A]\nx=1\n[B]\n[a]\nx=2\ny=%n%\nz=%%lit%% %unknown% 50%\n\
                     [Strings]\nn=plain\n[Strings.0407]\nn=deutsch\n[Strings.0409]\nN=english\n");
        let a = inf.section("A").unwrap();
        assert_eq!(a.entries("x").count(), 2);
        assert_eq!(a.value("y"), Some("english"));
        assert_eq!(a.value("z"), Some("%lit% %unknown% 50%"));
        let de = Inf::parse_with(
            "t",
            b"[A]\ny=%n%\n[Strings]\nn=plain\n[Strings.0407]\nn=deutsch\n",
            &ParseOptions {
                locale: "0407".into(),
            },
        )
        .unwrap();
        assert_eq!(de.value("A", "y"), Some("deutsch"));
        let none = Inf::parse_with(
            "t",
            b"[A]\ny=%n%\n[Strings]\nn=plain\n",
            &ParseOptions {
                locale: "040c".into(),
            },
        )
        .unwrap();
        assert_eq!(none.value("A", "y"), Some("plain"));
    }

    #[test]
    fn broken_lines_are_skipped_with_warnings() {
        let inf = p("orphan=1\n[A]\nbad=\"open\ngood=1\n[Broken\nlost=1\n[]\n[B] junk\nk=v\n");
        assert_eq!(inf.value("A", "good"), Some("1"));
        assert_eq!(inf.value("A", "bad"), None);
        assert_eq!(inf.value("B", "k"), Some("v"));
        let lines: Vec<usize> = inf.warnings.iter().map(|w| w.line).collect();
        assert_eq!(lines, [1, 3, 5, 6, 7, 8]);
        assert!(inf
            .warnings
            .iter()
            .any(|w| w.line == 3 && w.message.contains("quoted")));
        assert!(inf
            .warnings
            .iter()
            .any(|w| w.line == 5 && w.message.contains("']'")));
        assert!(inf
            .warnings
            .iter()
            .any(|w| w.line == 8 && w.message.contains("junk")));
    }

    #[test]
    fn limits_hold() {
        let long = format!("[A]\nk={}\nok=1\n", "x".repeat(MAX_LINE + 1));
        let inf = p(&long);
        assert_eq!(inf.value("A", "ok"), Some("1"));
        assert_eq!(inf.value("A", "k"), None);
        // A string expanded many times exhausts the budget: an error naming the line.
        let big = "y".repeat(MAX_VALUE - 10);
        let mut s = format!("[Strings]\nb=\"{big}\"\n[A]\n");
        for _ in 0..400 {
            s.push_str("k=%b%\n");
        }
        let e = Inf::parse("big.inf", s.as_bytes()).unwrap_err();
        assert!(
            e.line > 3 && e.to_string().starts_with("big.inf, line "),
            "{e}"
        );
        // A value that would exceed MAX_VALUE is skipped with a warning.
        let inf = p(&format!("[Strings]\nb=\"{big}\"\n[A]\nk=%b%%b%\nok=2\n"));
        assert_eq!(inf.value("A", "k"), None);
        assert_eq!(inf.value("A", "ok"), Some("2"));
        assert!(Inf::parse("x", &vec![b'a'; MAX_INF_SIZE + 1]).is_err());
    }
}
