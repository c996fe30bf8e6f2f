//! One test per documented rule of capture configuration files, each with
//! paths that must and must not match.

use tasq_wim::capture_config::{CaptureConfig, ConfigError};

fn cfg(text: &str) -> CaptureConfig {
    CaptureConfig::parse(text.as_bytes(), "WimScript.ini").unwrap_or_else(|e| panic!("{e}"))
}

fn parse_err(text: &str) -> ConfigError {
    CaptureConfig::parse(text.as_bytes(), "WimScript.ini").unwrap_err()
}

fn assert_excluded(c: &CaptureConfig, yes: &[&str], no: &[&str]) {
    for p in yes {
        assert!(c.is_excluded(p), "{p} should be excluded");
    }
    for p in no {
        assert!(!c.is_excluded(p), "{p} should not be excluded");
    }
}

#[test]
fn windows_default_exclusions() {
    let c = CaptureConfig::windows_default();
    assert_excluded(
        &c,
        &[
            "\\$ntfs.log",
            "\\hiberfil.sys",
            "\\pagefile.sys",
            "\\swapfile.sys",
            "\\System Volume Information",
            "\\System Volume Information\\tracking.log",
            "\\RECYCLER",
            "\\$RECYCLE.BIN\\S-1-5-21\\desktop.ini",
            "\\$Recycle.Bin",
            "\\Windows\\CSC",
            "\\Windows\\CSC\\v2.0.6\\namespace",
            "\\PAGEFILE.SYS",
            "\\windows\\csc",
        ],
        &[
            "\\",
            "\\Windows",
            "\\Windows\\System32\\pagefile.sys",
            "\\Users\\hiberfil.sys",
            "\\pagefile.sys.bak",
            "\\Windows\\CSCX",
            "\\Program Files",
        ],
    );
    assert_eq!(c.exclusion_patterns().count(), 9);
}

#[test]
fn empty_config_excludes_nothing() {
    let c = CaptureConfig::empty();
    assert_excluded(&c, &[], &["\\", "\\pagefile.sys", "\\a\\b\\c"]);
    let c = cfg("");
    assert_eq!(c, CaptureConfig::empty());
}

#[test]
fn relative_glob_matches_file_name_at_any_depth() {
    let c = cfg("[ExclusionList]\n*.mp3\nThumbs.db\n");
    assert_excluded(
        &c,
        &[
            "\\a.mp3",
            "\\music\\deep\\er\\x.MP3",
            "\\Thumbs.db",
            "\\p\\thumbs.DB",
        ],
        &[
            "\\a.mp3x",
            "\\mp3",
            "\\music",
            "\\x.mp3.txt",
            "\\Thumbs.db2",
        ],
    );
}

#[test]
fn relative_glob_matching_a_directory_excludes_its_contents() {
    let c = cfg("[ExclusionList]\nnode_modules\n");
    assert_excluded(
        &c,
        &[
            "\\node_modules",
            "\\src\\node_modules",
            "\\src\\node_modules\\x\\y.js",
        ],
        &["\\src", "\\src\\node_modules2\\y.js", "\\node_modules.txt"],
    );
}

#[test]
fn absolute_glob_is_anchored_at_the_root() {
    let c = cfg("[ExclusionList]\n\\temp\n\\data\\*.tmp\n");
    assert_excluded(
        &c,
        &[
            "\\temp",
            "\\TEMP\\file",
            "\\data\\a.tmp",
            "\\data\\a.tmp\\inside",
        ],
        &[
            "\\sub\\temp",
            "\\temp2",
            "\\data",
            "\\data\\x\\a.tmp",
            "\\a.tmp",
        ],
    );
}

#[test]
fn wildcards_do_not_cross_separators() {
    let c = cfg("[ExclusionList]\n\\a*\\?\n");
    assert_excluded(
        &c,
        &["\\ab\\c", "\\a\\c", "\\abc\\d\\e"],
        &["\\", "\\ab", "\\ab\\cd", "\\xa\\c"],
    );
    // A path inside an unmatched directory is never saved by a '*' that would
    // have to span two components.
    let c = cfg("[ExclusionList]\n\\a*c\n");
    assert_excluded(&c, &["\\abc"], &["\\ab\\c"]);
}

#[test]
fn both_separators_and_repeated_separators() {
    let c = cfg("[ExclusionList]\n/one/two\n\\\\three//four\\\\\n");
    assert_excluded(
        &c,
        &[
            "\\one\\two",
            "/one/two/x",
            "\\three\\four",
            "\\three\\four\\five",
        ],
        &["\\one", "\\three"],
    );
}

#[test]
fn drive_letters_are_stripped_when_absolute() {
    let c = cfg("[ExclusionList]\nC:\\Windows\\Temp\nd:/scratch\n");
    assert_eq!(
        c.exclusion_patterns().collect::<Vec<_>>(),
        ["\\Windows\\Temp", "\\scratch"]
    );
    assert_excluded(
        &c,
        &["\\Windows\\Temp\\x", "\\scratch"],
        &["\\C:", "\\Windows"],
    );
}

#[test]
fn drive_relative_pattern_is_an_error() {
    let e = parse_err("[ExclusionList]\n\\ok\nC:file\n");
    match &e {
        ConfigError::Line {
            file,
            line,
            problem,
        } => {
            assert_eq!((file.as_str(), *line), ("WimScript.ini", 3));
            assert!(
                problem.contains("C:file") && problem.contains("absolute"),
                "{problem}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().starts_with("WimScript.ini:3: "), "{e}");
}

#[test]
fn relative_pattern_with_several_components_is_an_error() {
    let e = parse_err("; comment\n[ExclusionList]\n\n dir\\file \n");
    let msg = e.to_string();
    assert!(msg.starts_with("WimScript.ini:4: "), "{msg}");
    assert!(
        msg.contains("one path component") && msg.contains("\\dir\\file"),
        "{msg}"
    );
    // A trailing separator does not make a second component.
    let c = cfg("[ExclusionList]\ndir\\\n");
    assert_excluded(&c, &["\\x\\dir"], &["\\x\\dirt"]);
}

#[test]
fn unknown_section_is_an_error() {
    let e = parse_err("[ExclusionList]\n\\a\n[Bogus]\n\\b\n");
    let msg = e.to_string();
    assert!(
        msg.starts_with("WimScript.ini:3: unknown section [Bogus]"),
        "{msg}"
    );
}

#[test]
fn pattern_outside_any_section_is_an_error() {
    let e = parse_err("# header\n\\pagefile.sys\n[ExclusionList]\n");
    assert!(e.to_string().starts_with("WimScript.ini:2: "), "{e}");
    assert!(e.to_string().contains("not inside a section"), "{e}");
}

#[test]
fn empty_quoted_pattern_is_an_error() {
    let e = parse_err("[ExclusionList]\n\"\"\n");
    assert!(
        e.to_string().contains("WimScript.ini:2: empty pattern"),
        "{e}"
    );
}

#[test]
fn comments_blank_lines_quotes_and_case_of_section_names() {
    let c = cfg("\r\n; a comment\r\n# another\r\n   \r\n[exclusionlist]\r\n\"\\Program Files\\x y\"\r\n'*.b a k'\r\n  ;not a pattern\r\n");
    assert_eq!(
        c.exclusion_patterns().collect::<Vec<_>>(),
        ["\\Program Files\\x y", "*.b a k"]
    );
    assert_excluded(
        &c,
        &["\\Program Files\\x y", "\\q\\z.b a k"],
        &["\\Program Files", "\\;not a pattern"],
    );
}

#[test]
fn exception_overrides_exclusion() {
    let c = cfg("[ExclusionList]\n*.log\n[ExclusionException]\nkeep.log\n\\logs\n");
    assert_excluded(
        &c,
        &["\\a.log", "\\x\\b.log"],
        // A relative exception saves the file anywhere; an exception matching
        // a directory saves everything inside it.
        &[
            "\\keep.log",
            "\\x\\keep.log",
            "\\logs\\a.log",
            "\\logs\\sub\\b.log",
            "\\notes.txt",
        ],
    );
}

#[test]
fn absolute_exception_reincludes_inside_an_excluded_directory() {
    let c = cfg("[ExclusionList]\n\\dir\n[ExclusionException]\n\\dir\\keep\\*.txt\n");
    assert_excluded(
        &c,
        &["\\dir\\other", "\\dir\\keep\\x.bin", "\\dir\\sub\\x.txt"],
        // The directories on the way to an exception are kept too.
        &[
            "\\dir",
            "\\dir\\keep",
            "\\dir\\keep\\x.txt",
            "\\dir\\keep\\X.TXT",
        ],
    );
}

#[test]
fn relative_exception_does_not_reach_inside_an_excluded_directory() {
    // As documented by wimlib: including simply "file" does not work when
    // "/dir" is excluded.
    let c = cfg("[ExclusionList]\n\\dir\n[ExclusionException]\nfile\n");
    assert_excluded(&c, &["\\dir", "\\dir\\file"], &["\\other\\file"]);
    // is_excluded_entry alone would say \dir\file is fine; a walker using it
    // never gets there because \dir is skipped.
    assert!(!c.is_excluded_entry("\\dir\\file"));
    assert!(c.is_excluded_entry("\\dir"));
}

#[test]
fn ignored_and_prepopulate_sections_are_accepted() {
    let c = cfg("[CompressionExclusionList]\n*.mp3\n\\WINDOWS\\inf\\*.pnf\n[AlignmentList]\n\\x\n[CompressionFolderList]\n\\y\n[PrepopulateList]\n\\Windows\\System32\\config\n[ExclusionList]\n\\z\n");
    assert_excluded(
        &c,
        &["\\z"],
        &["\\a.mp3", "\\x", "\\y", "\\Windows\\System32\\config"],
    );
    assert_eq!(
        c.prepopulate_patterns().collect::<Vec<_>>(),
        ["\\Windows\\System32\\config"]
    );
    assert!(c.is_prepopulated("\\windows\\system32\\config\\SYSTEM"));
    assert!(!c.is_prepopulated("\\Windows\\System32"));
    // Lines in ignored sections are still checked.
    assert!(CaptureConfig::parse(b"[AlignmentList]\na\\b\n", "f").is_err());
}

#[test]
fn utf16le_with_and_without_bom_and_utf8_bom() {
    let text = "[ExclusionList]\r\n\\Ünïcödé\\*.tmp\r\n😀.txt\r\n";
    let mut with_bom = vec![0xFF, 0xFE];
    with_bom.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let without_bom = with_bom[2..].to_vec();
    let mut utf8_bom = vec![0xEF, 0xBB, 0xBF];
    utf8_bom.extend_from_slice(text.as_bytes());
    for bytes in [with_bom, without_bom, utf8_bom, text.as_bytes().to_vec()] {
        let c = CaptureConfig::parse(&bytes, "u.ini").unwrap();
        assert_excluded(&c, &["\\ünïcödé\\a.TMP", "\\x\\😀.txt"], &["\\a.tmp"]);
    }
}

#[test]
fn invalid_encoding_names_file_and_offset() {
    let e = CaptureConfig::parse(b"[ExclusionList]\n\\a\xff\n", "bad.ini").unwrap_err();
    assert_eq!(
        e,
        ConfigError::Encoding {
            file: "bad.ini".into(),
            encoding: "UTF-8",
            offset: 18
        }
    );
    assert!(e
        .to_string()
        .starts_with("bad.ini: not valid UTF-8 at byte offset 18"));
    // Unpaired surrogate in UTF-16.
    let e = CaptureConfig::parse(&[0xFF, 0xFE, b'[', 0, 0x00, 0xDC], "w.ini").unwrap_err();
    assert_eq!(
        e,
        ConfigError::Encoding {
            file: "w.ini".into(),
            encoding: "UTF-16LE",
            offset: 4
        }
    );
}

#[test]
fn add_exclusion_uses_the_same_rules() {
    let mut c = CaptureConfig::empty();
    c.add_exclusion("C:\\build\\*").unwrap();
    c.add_exclusion("*.o").unwrap();
    assert_excluded(&c, &["\\build\\x", "\\src\\a.o"], &["\\build", "\\src"]);
    assert!(matches!(
        c.add_exclusion("a/b"),
        Err(ConfigError::Pattern { .. })
    ));
}

#[test]
fn root_pattern_excludes_everything() {
    let c = cfg("[ExclusionList]\n\\\n[ExclusionException]\n\\keep\n");
    assert_excluded(&c, &["\\a", "\\b\\c"], &["\\", "\\keep", "\\keep\\x"]);
}
