//! Capture configuration: which paths to leave out of a captured image.
//!
//! The file format is DISM's `WimScript.ini` as extended by wimlib
//! (`wimcapture --config`): INI-style sections of path globs, UTF-8 or
//! UTF-16LE, `;`/`#` comment lines. Only `[ExclusionList]` and
//! `[ExclusionException]` affect capture. `[PrepopulateList]` (WIMBoot, used
//! at apply time) is kept; `[CompressionExclusionList]`,
//! `[CompressionFolderList]` and `[AlignmentList]` are validated and ignored.
//!
//! Matching follows wimlib's documented rules:
//! - A glob without a leading separator ("relative") matches the last path
//!   component at any depth and may not contain a separator.
//! - A glob with a leading separator ("absolute") matches from the capture
//!   root, component by component.
//! - `*` and `?` never match a separator. Matching ignores case.
//! - Excluding a directory excludes everything below it. An exception that
//!   matches a directory includes everything below it; an absolute exception
//!   can re-include a path inside an excluded directory (its ancestors are
//!   then not excluded either), a relative one cannot.

use std::fmt;

/// A problem with a capture configuration file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file is neither valid UTF-8 nor valid UTF-16LE.
    #[error("{file}: not valid {encoding} at byte offset {offset} (capture configuration files must be UTF-8 or UTF-16LE)")]
    Encoding {
        file: String,
        encoding: &'static str,
        offset: usize,
    },
    /// A line is not acceptable.
    #[error("{file}:{line}: {problem}")]
    Line {
        file: String,
        /// 1-based line number.
        line: usize,
        problem: String,
    },
    /// A pattern given directly (not in a file) is not acceptable.
    #[error("invalid pattern: {problem}")]
    Pattern { problem: String },
}

/// Parsed capture configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureConfig {
    exclusions: Vec<Pattern>,
    exceptions: Vec<Pattern>,
    prepopulate: Vec<Pattern>,
}

/// The exclusions wimlib uses when no configuration is given: files Windows
/// recreates itself or that are machine-specific.
const WINDOWS_DEFAULT_EXCLUSIONS: &[&str] = &[
    "\\$ntfs.log",
    "\\hiberfil.sys",
    "\\pagefile.sys",
    "\\swapfile.sys",
    "\\System Volume Information",
    "\\RECYCLER",
    "\\$RECYCLE.BIN",
    "\\$Recycle.Bin",
    "\\Windows\\CSC",
];

/// Which list a section's lines go to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Exclusion,
    Exception,
    Prepopulate,
    Ignored,
}

const SECTIONS: &[(&str, Section)] = &[
    ("ExclusionList", Section::Exclusion),
    ("ExclusionException", Section::Exception),
    ("PrepopulateList", Section::Prepopulate),
    ("CompressionExclusionList", Section::Ignored),
    ("CompressionFolderList", Section::Ignored),
    ("AlignmentList", Section::Ignored),
];

impl CaptureConfig {
    /// Parses a configuration file. `source_name` names the file in errors.
    pub fn parse(bytes: &[u8], source_name: &str) -> Result<Self, ConfigError> {
        let text = decode(bytes, source_name)?;
        let mut config = CaptureConfig::default();
        let mut section: Option<Section> = None;
        for (i, raw_line) in text.split('\n').enumerate() {
            let line_no = i + 1;
            let line = raw_line.trim();
            if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
                continue;
            }
            let err = |problem: String| ConfigError::Line {
                file: source_name.to_owned(),
                line: line_no,
                problem,
            };
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                let name = name.trim();
                // Section names are matched without regard to case, as
                // Windows INI files are.
                let found = SECTIONS
                    .iter()
                    .find(|(known, _)| known.eq_ignore_ascii_case(name));
                match found {
                    Some(&(_, s)) => section = Some(s),
                    None => {
                        let known: Vec<_> =
                            SECTIONS.iter().map(|(n, _)| format!("[{n}]")).collect();
                        return Err(err(format!(
                            "unknown section [{name}] (known sections: {})",
                            known.join(", ")
                        )));
                    }
                }
                continue;
            }
            let Some(section) = section else {
                return Err(err(format!(
                    "pattern \"{line}\" is not inside a section such as [ExclusionList]"
                )));
            };
            let pattern = Pattern::new(unquote(line)).map_err(err)?;
            match section {
                Section::Exclusion => config.exclusions.push(pattern),
                Section::Exception => config.exceptions.push(pattern),
                Section::Prepopulate => config.prepopulate.push(pattern),
                Section::Ignored => {}
            }
        }
        Ok(config)
    }

    /// The configuration used when none is given (wimlib's default).
    pub fn windows_default() -> Self {
        let exclusions = WINDOWS_DEFAULT_EXCLUSIONS
            .iter()
            .filter_map(|p| Pattern::new(p).ok())
            .collect();
        CaptureConfig {
            exclusions,
            ..CaptureConfig::default()
        }
    }

    /// Excludes nothing.
    pub fn empty() -> Self {
        CaptureConfig::default()
    }

    /// Adds one exclusion glob (as if it were a line of `[ExclusionList]`),
    /// e.g. from a command-line option.
    pub fn add_exclusion(&mut self, pattern: &str) -> Result<(), ConfigError> {
        let pattern = Pattern::new(unquote(pattern.trim()))
            .map_err(|problem| ConfigError::Pattern { problem })?;
        self.exclusions.push(pattern);
        Ok(())
    }

    /// `path` is the path inside the image, relative to the capture root,
    /// with `\` separators and a leading `\` (e.g. `"\Windows\CSC"`); `/` is
    /// accepted too. True if the path is excluded, by a glob that matches it
    /// or one of its ancestor directories, and no exception saves it.
    pub fn is_excluded(&self, path: &str) -> bool {
        let comps = components(path);
        (0..=comps.len()).any(|n| self.excluded_here(comps.get(..n).unwrap_or(&[])))
    }

    /// Like [`CaptureConfig::is_excluded`], but ignores the ancestors: the
    /// cheaper test for a directory walk that already skips the contents of
    /// excluded directories. For such a walk the two agree.
    pub fn is_excluded_entry(&self, path: &str) -> bool {
        self.excluded_here(&components(path))
    }

    /// The `[ExclusionList]` globs, canonicalised (`\` separators, drive
    /// letter removed).
    pub fn exclusion_patterns(&self) -> impl Iterator<Item = &str> {
        self.exclusions.iter().map(|p| p.text.as_str())
    }

    /// The `[ExclusionException]` globs, canonicalised.
    pub fn exception_patterns(&self) -> impl Iterator<Item = &str> {
        self.exceptions.iter().map(|p| p.text.as_str())
    }

    /// The `[PrepopulateList]` globs (files a WIMBoot apply must extract in
    /// full), canonicalised.
    pub fn prepopulate_patterns(&self) -> impl Iterator<Item = &str> {
        self.prepopulate.iter().map(|p| p.text.as_str())
    }

    /// True if `path` matches a `[PrepopulateList]` glob, or is inside a
    /// directory that does.
    pub fn is_prepopulated(&self, path: &str) -> bool {
        let comps = components(path);
        self.prepopulate
            .iter()
            .any(|p| p.matches(&comps, true, false))
    }

    /// wimlib's per-entry test: excluded if an exclusion glob matches the
    /// path (or an ancestor, for absolute globs) and no exception matches the
    /// path, an ancestor of it, or a descendant of it (so that the
    /// directories leading to an exception are kept).
    fn excluded_here(&self, comps: &[&str]) -> bool {
        self.exclusions
            .iter()
            .any(|p| p.matches(comps, true, false))
            && !self.exceptions.iter().any(|p| p.matches(comps, true, true))
    }
}

impl fmt::Display for CaptureConfig {
    /// Writes the configuration back in the file format (UTF-8).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, list) in [
            ("ExclusionList", &self.exclusions),
            ("ExclusionException", &self.exceptions),
            ("PrepopulateList", &self.prepopulate),
        ] {
            if !list.is_empty() {
                writeln!(f, "[{name}]")?;
                for p in list {
                    writeln!(f, "{}", p.text)?;
                }
            }
        }
        Ok(())
    }
}

/// One glob, split into components. `anchored` globs start at the capture
/// root; the others match the last component of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    text: String,
    anchored: bool,
    /// Case-folded characters of each component.
    components: Vec<Vec<char>>,
}

impl Pattern {
    /// Validates and canonicalises one glob, with wimlib's rules: a drive
    /// letter is dropped but must be followed by a separator ("C:file" is
    /// relative to a current directory, which a capture has not got), and a
    /// relative glob may have one component only.
    fn new(glob: &str) -> Result<Pattern, String> {
        if glob.is_empty() {
            return Err("empty pattern".into());
        }
        if glob.contains('\0') {
            return Err(format!(
                "pattern \"{}\" contains a NUL character",
                glob.escape_debug()
            ));
        }
        let mut chars = glob.chars();
        let mut rest = glob;
        if let (Some(first), Some(':')) = (chars.next(), chars.next()) {
            if !is_sep(first) {
                let after = chars.as_str();
                if !after.starts_with(is_sep) {
                    return Err(format!(
                        "pattern \"{glob}\" has a drive letter but is not absolute; \
                         patterns with drive letters must be absolute (maybe \"{first}:\\{after}\"?)"
                    ));
                }
                rest = after;
            }
        }
        let anchored = rest.starts_with(is_sep);
        let parts: Vec<&str> = rest.split(is_sep).filter(|c| !c.is_empty()).collect();
        if !anchored && parts.len() > 1 {
            return Err(format!(
                "relative pattern \"{glob}\" may only have one path component \
                 (maybe \"\\{}\"?)",
                parts.join("\\")
            ));
        }
        let text = if anchored {
            format!("\\{}", parts.join("\\"))
        } else {
            parts.join("\\")
        };
        Ok(Pattern {
            text,
            anchored,
            components: parts
                .iter()
                .map(|c| c.chars().map(fold).collect())
                .collect(),
        })
    }

    /// `recursive`: a path below a match also matches. `ancestors`: a path
    /// above a match also matches.
    fn matches(&self, path: &[&str], recursive: bool, ancestors: bool) -> bool {
        let path = if self.anchored {
            path
        } else {
            // Relative globs look at the file name only.
            path.len()
                .checked_sub(1)
                .and_then(|i| path.get(i..))
                .unwrap_or(&[])
        };
        for (i, glob) in self.components.iter().enumerate() {
            match path.get(i) {
                None => return ancestors,
                Some(name) if !glob_matches(glob, name) => return false,
                Some(_) => {}
            }
        }
        path.len() == self.components.len() || recursive
    }
}

fn is_sep(c: char) -> bool {
    c == '\\' || c == '/'
}

/// Removes one pair of matching surrounding quotes, as wimlib does.
fn unquote(s: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

/// Case folding for matching: the simple lowercase mapping where it is one
/// character (Windows compares names through an upcase table, which is also
/// one character to one character).
fn fold(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// Splits a path into its names; one allocation, no copying, since this
/// runs once per file of a capture.
fn components(path: &str) -> Vec<&str> {
    path.split(is_sep).filter(|c| !c.is_empty()).collect()
}

/// `*` (any run) and `?` (any one character) within one name; `glob` is
/// already case-folded, `name` is folded as it is read. Iterative with
/// single-star backtracking, so time is O(len(glob) × len(name)) at worst and
/// no recursion depth depends on the input. `n` is a byte offset into `name`.
fn glob_matches(glob: &[char], name: &str) -> bool {
    let next_char = |n: usize| name.get(n..).and_then(|r| r.chars().next());
    let (mut g, mut n) = (0usize, 0usize);
    // Glob position after the last '*' seen, and where in the name the text
    // it absorbs ends.
    let mut star: Option<(usize, usize)> = None;
    while let Some(c) = next_char(n) {
        match glob.get(g) {
            Some('*') => {
                star = Some((g + 1, n));
                g += 1;
            }
            Some(&p) if p == '?' || p == fold(c) => {
                g += 1;
                n += c.len_utf8();
            }
            _ => match star {
                Some((after_star, absorbed)) => {
                    // Let the star absorb one more character and retry.
                    let grown = absorbed + next_char(absorbed).map_or(1, char::len_utf8);
                    g = after_star;
                    n = grown;
                    star = Some((after_star, grown));
                }
                None => return false,
            },
        }
    }
    glob.get(g..).unwrap_or(&[]).iter().all(|&c| c == '*')
}

/// UTF-16LE if there is a BOM or the file starts with an ASCII character
/// followed by a zero byte; otherwise UTF-8 (optionally with a BOM).
fn decode(bytes: &[u8], file: &str) -> Result<String, ConfigError> {
    let err = |encoding, offset| ConfigError::Encoding {
        file: file.to_owned(),
        encoding,
        offset,
    };
    let (utf16, start) = match bytes {
        [0xFF, 0xFE, ..] => (true, 2),
        [a, 0, ..] if *a <= 0x7F => (true, 0),
        [0xEF, 0xBB, 0xBF, ..] => (false, 3),
        _ => (false, 0),
    };
    let body = bytes.get(start..).unwrap_or(&[]);
    if !utf16 {
        return std::str::from_utf8(body)
            .map(str::to_owned)
            .map_err(|e| err("UTF-8", start + e.valid_up_to()));
    }
    if body.len() % 2 != 0 {
        return Err(err("UTF-16LE", bytes.len() - 1));
    }
    let units = body
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]));
    let mut out = String::with_capacity(body.len() / 2);
    let mut offset = start;
    for r in char::decode_utf16(units) {
        let c = r.map_err(|_| err("UTF-16LE", offset))?;
        offset += 2 * c.len_utf16();
        out.push(c);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> CaptureConfig {
        CaptureConfig::parse(text.as_bytes(), "test.ini").unwrap()
    }

    fn glob(g: &str, name: &str) -> bool {
        let g: Vec<char> = g.chars().map(fold).collect();
        glob_matches(&g, name)
    }

    #[test]
    fn glob_star_and_question_mark() {
        assert!(glob("*.mp3", "song.mp3"));
        assert!(glob("*.mp3", ".mp3"));
        assert!(!glob("*.mp3", "song.mp4"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(glob("a*b*c", "abc"));
        assert!(!glob("a*b*c", "acb"));
        assert!(glob("?", "x"));
        assert!(!glob("?", ""));
        assert!(!glob("?", "xy"));
        assert!(glob("*", ""));
        assert!(glob("**", "abc"));
        assert!(glob("f??.t*t", "foo.txt"));
        assert!(!glob("f??.t*t", "fo.txt"));
        assert!(glob("", ""));
        assert!(!glob("", "a"));
        assert!(glob("*a", "aaaa"));
        assert!(!glob("*a", "aaab"));
    }

    #[test]
    fn glob_ignores_case_beyond_ascii() {
        assert!(glob("PAGEFILE.SYS", "pagefile.sys"));
        assert!(glob("ÄRGER*", "ärger.txt"));
        assert!(glob("ΣΊΣΥΦΟΣ", "σίσυφοσ"));
        assert!(!glob("a", "b"));
    }

    #[test]
    fn glob_is_not_exponential() {
        let name = "a".repeat(5000);
        let g: Vec<char> = "*a".repeat(50).chars().chain("b".chars()).collect();
        let t = std::time::Instant::now();
        assert!(!glob_matches(&g, &name));
        assert!(t.elapsed().as_secs() < 5);
    }

    #[test]
    fn canonicalises_patterns() {
        let c = cfg(
            "[ExclusionList]\nC:\\Temp\\\n//a//b/\n\"\\quoted path\"\n'x y'\n  *.tmp  \nD:/z\n",
        );
        let pats: Vec<_> = c.exclusion_patterns().collect();
        assert_eq!(
            pats,
            ["\\Temp", "\\a\\b", "\\quoted path", "x y", "*.tmp", "\\z"]
        );
    }

    #[test]
    fn display_writes_a_file_that_parses_back() {
        let c = cfg("[ExclusionList]\n\\a\\*.b\nc?d\n[ExclusionException]\n\\a\\keep.b\n[PrepopulateList]\n\\Windows\\System32\n");
        let text = c.to_string();
        assert_eq!(CaptureConfig::parse(text.as_bytes(), "again").unwrap(), c);
        assert!(text.starts_with("[ExclusionList]\n\\a\\*.b\nc?d\n"));
    }
}
