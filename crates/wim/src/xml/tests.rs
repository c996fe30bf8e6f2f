use super::*;

fn utf16(s: &str) -> Vec<u8> {
    let mut v = vec![0xFF, 0xFE];
    for u in s.encode_utf16() {
        v.extend_from_slice(&u.to_le_bytes());
    }
    v
}

fn leaf(name: &str, text: &str) -> XmlNode {
    XmlNode {
        name: name.into(),
        text: Some(text.into()),
        ..XmlNode::default()
    }
}

const WIMLIB_DOC: &str = "<WIM><IMAGE INDEX=\"1\"><NAME>ntfsdocs</NAME><DIRCOUNT>830</DIRCOUNT><FILECOUNT>4164</FILECOUNT><TOTALBYTES>110183671</TOTALBYTES><HARDLINKBYTES>0</HARDLINKBYTES><CREATIONTIME><HIGHPART>0x01DD7E1C</HIGHPART><LOWPART>0xB9CEAA62</LOWPART></CREATIONTIME><LASTMODIFICATIONTIME><HIGHPART>0x01DD7E1C</HIGHPART><LOWPART>0xB9CEB3C8</LOWPART></LASTMODIFICATIONTIME></IMAGE><TOTALBYTES>46368982</TOTALBYTES></WIM>";

#[test]
fn parses_wimlib_document_in_utf16() {
    let info = WimInfo::parse(&utf16(WIMLIB_DOC)).unwrap();
    assert_eq!(info.total_bytes, Some(46_368_982));
    assert_eq!(info.images.len(), 1);
    let img = &info.images[0];
    assert_eq!(img.name.as_deref(), Some("ntfsdocs"));
    assert_eq!((img.dir_count, img.file_count), (830, 4164));
    assert_eq!(img.total_bytes, 110_183_671);
    assert_eq!(img.creation_time, 0x01DD_7E1C_B9CE_AA62);
    assert_eq!(img.last_modification_time, 0x01DD_7E1C_B9CE_B3C8);
    assert!(!img.wimboot);
    assert!(img.extra.is_empty() && info.extra.is_empty());
}

#[test]
fn writes_wimlib_document_byte_for_byte() {
    // Our element order for the fields wimlib writes is wimlib's, so its
    // document survives a round trip unchanged.
    let info = WimInfo::parse(WIMLIB_DOC.as_bytes()).unwrap();
    assert_eq!(info.to_xml_string(), WIMLIB_DOC);
    assert_eq!(info.to_bytes(), utf16(WIMLIB_DOC));
}

#[test]
fn accepts_the_three_encodings() {
    let doc = "<WIM><IMAGE INDEX=\"1\"><NAME>é😀</NAME></IMAGE></WIM>";
    let with_bom = utf16(doc);
    let without_bom = with_bom[2..].to_vec();
    let mut utf8_bom = vec![0xEF, 0xBB, 0xBF];
    utf8_bom.extend_from_slice(doc.as_bytes());
    let utf8_leading_ws = format!("\r\n {doc}").into_bytes();
    let utf16_leading_ws = utf16(&format!("\n{doc}"))[2..].to_vec();
    for bytes in [
        with_bom,
        without_bom,
        doc.as_bytes().to_vec(),
        utf8_bom,
        utf8_leading_ws,
        utf16_leading_ws,
    ] {
        let info = WimInfo::parse(&bytes).unwrap();
        assert_eq!(info.images[0].name.as_deref(), Some("é😀"));
    }
}

#[test]
fn encoding_errors_name_the_offset() {
    // A lone high surrogate (D800) as the 3rd code unit after the BOM.
    let mut bytes = utf16("<W");
    bytes.extend_from_slice(&[0x00, 0xD8, 0x41, 0x00]);
    assert_eq!(
        WimInfo::parse(&bytes),
        Err(XmlError::Encoding {
            encoding: "UTF-16LE",
            offset: 6,
            reason: "unpaired surrogate"
        })
    );
    assert!(matches!(
        WimInfo::parse(&[0xFF, 0xFE, 0x3C]),
        Err(XmlError::Encoding { offset: 2, .. })
    ));
    assert!(matches!(
        WimInfo::parse(b"<WIM>\xff</WIM>"),
        Err(XmlError::Encoding {
            encoding: "UTF-8",
            offset: 5,
            ..
        })
    ));
}

#[test]
fn reorders_images_by_index() {
    let doc = "<WIM><IMAGE INDEX=\"3\"><NAME>c</NAME></IMAGE><IMAGE INDEX=\"1\"><NAME>a</NAME></IMAGE><IMAGE INDEX=\" 2 \"><NAME>b</NAME></IMAGE></WIM>";
    let info = WimInfo::parse(doc.as_bytes()).unwrap();
    let names: Vec<_> = info
        .images
        .iter()
        .map(|i| i.name.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    // Written back in order, renumbered 1..=n.
    let out = info.to_xml_string();
    let a = out.find("<IMAGE INDEX=\"1\"><NAME>a<").unwrap();
    let c = out.find("<IMAGE INDEX=\"3\"><NAME>c<").unwrap();
    assert!(a < c);
}

#[test]
fn rejects_bad_image_indices_naming_them() {
    let img = |i: &str| format!("<IMAGE INDEX=\"{i}\"></IMAGE>");
    let doc = |imgs: &[&str]| {
        format!(
            "<WIM>{}</WIM>",
            imgs.iter().map(|i| img(i)).collect::<String>()
        )
    };
    assert_eq!(
        WimInfo::parse(doc(&["1", "2", "2"]).as_bytes()),
        Err(XmlError::DuplicateIndex { index: 2 })
    );
    assert_eq!(
        WimInfo::parse(doc(&["1", "3"]).as_bytes()),
        Err(XmlError::MissingIndex { index: 2, count: 2 })
    );
    assert_eq!(
        WimInfo::parse(doc(&["2"]).as_bytes()),
        Err(XmlError::MissingIndex { index: 1, count: 1 })
    );
    for bad in ["0", "-1", "x", "", "4294967296"] {
        let err = WimInfo::parse(doc(&["1", bad]).as_bytes()).unwrap_err();
        assert!(
            matches!(err, XmlError::BadIndex { position: 2, .. }),
            "{bad:?}: {err:?}"
        );
        assert!(
            err.to_string().contains(&format!("INDEX=\"{bad}\"")),
            "{err}"
        );
    }
    let err = WimInfo::parse(b"<WIM><IMAGE></IMAGE></WIM>").unwrap_err();
    assert!(err.to_string().contains("no INDEX attribute"), "{err}");
    let messages = [
        XmlError::DuplicateIndex { index: 7 }.to_string(),
        XmlError::MissingIndex { index: 4, count: 5 }.to_string(),
    ];
    assert!(messages[0].contains("INDEX=\"7\""));
    assert!(messages[1].contains("INDEX=\"4\""));
}

#[test]
fn root_must_be_wim() {
    assert_eq!(
        WimInfo::parse(b"<NOTWIM></NOTWIM>"),
        Err(XmlError::WrongRoot {
            found: "NOTWIM".into()
        })
    );
}

#[test]
fn empty_wim_has_no_images() {
    let info = WimInfo::parse(b"<WIM></WIM>").unwrap();
    assert_eq!(info, WimInfo::default());
    assert_eq!(info.to_xml_string(), "<WIM></WIM>");
}

#[test]
fn unknown_elements_are_preserved_in_order() {
    let doc = "<WIM><IMAGE INDEX=\"1\"><Z a=\"1\"><Y>t</Y></Z><NAME>n</NAME><X/><NAME>second</NAME><DIRCOUNT>1</DIRCOUNT><DIRCOUNT>2</DIRCOUNT></IMAGE><ESD><ENCRYPTED>1</ENCRYPTED></ESD></WIM>";
    let info = WimInfo::parse(doc.as_bytes()).unwrap();
    let img = &info.images[0];
    assert_eq!(img.name.as_deref(), Some("n"));
    assert_eq!(img.dir_count, 1);
    let names: Vec<_> = img.extra.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["Z", "X", "NAME", "DIRCOUNT"]);
    assert_eq!(img.extra[0].attributes, vec![("a".into(), "1".into())]);
    assert_eq!(img.extra[0].children, vec![leaf("Y", "t")]);
    assert!(info.is_encrypted_esd());
    // And they come back out.
    let again = WimInfo::parse(info.to_xml_string().as_bytes()).unwrap();
    assert_eq!(again, info);
}

#[test]
fn malformed_numbers_read_as_zero_or_are_preserved() {
    let doc = "<WIM><IMAGE INDEX=\"1\"><DIRCOUNT>abc</DIRCOUNT><FILECOUNT> 5 </FILECOUNT><CREATIONTIME><HIGHPART>zz</HIGHPART><LOWPART>10</LOWPART></CREATIONTIME><WINDOWS><ARCH>x64</ARCH><VERSION><MAJOR>ten</MAJOR><MINOR>0</MINOR></VERSION></WINDOWS></IMAGE><TOTALBYTES>-1</TOTALBYTES></WIM>";
    let info = WimInfo::parse(doc.as_bytes()).unwrap();
    let img = &info.images[0];
    assert_eq!(img.dir_count, 0);
    assert_eq!(img.file_count, 5);
    assert_eq!(
        img.creation_time, 0x10,
        "hex without 0x, bad high part is 0"
    );
    let win = img.windows.as_ref().unwrap();
    assert_eq!(win.arch, None);
    assert_eq!(win.extra, vec![leaf("ARCH", "x64")]);
    let ver = win.version.as_ref().unwrap();
    assert_eq!((ver.major, ver.minor), (None, Some(0)));
    assert_eq!(ver.extra, vec![leaf("MAJOR", "ten")]);
    assert_eq!(info.total_bytes, None);
    assert_eq!(info.extra, vec![leaf("TOTALBYTES", "-1")]);
}

#[test]
fn wimboot_flag() {
    let doc = |v: &str| format!("<WIM><IMAGE INDEX=\"1\"><WIMBOOT>{v}</WIMBOOT></IMAGE></WIM>");
    assert!(WimInfo::parse(doc("1").as_bytes()).unwrap().images[0].wimboot);
    assert!(!WimInfo::parse(doc("0").as_bytes()).unwrap().images[0].wimboot);
    let info = WimInfo {
        images: vec![ImageInfo {
            wimboot: true,
            ..ImageInfo::default()
        }],
        ..WimInfo::default()
    };
    assert!(info.to_xml_string().contains("<WIMBOOT>1</WIMBOOT>"));
}

#[test]
fn writes_times_and_escapes_like_wimlib() {
    let info = WimInfo {
        images: vec![ImageInfo {
            name: Some("a&b<c>d\"e'f".into()),
            creation_time: 0x0000_00AB_0000_000C,
            last_modification_time: u64::MAX,
            ..ImageInfo::default()
        }],
        total_bytes: Some(12345),
        extra: vec![],
    };
    let s = info.to_xml_string();
    assert!(s.starts_with("<WIM><IMAGE INDEX=\"1\"><NAME>a&amp;b&lt;c&gt;d&quot;e&apos;f</NAME>"));
    assert!(s.contains(
        "<CREATIONTIME><HIGHPART>0x000000AB</HIGHPART><LOWPART>0x0000000C</LOWPART></CREATIONTIME>"
    ));
    assert!(s.contains(
        "<LASTMODIFICATIONTIME><HIGHPART>0xFFFFFFFF</HIGHPART><LOWPART>0xFFFFFFFF</LOWPART>"
    ));
    assert!(s.ends_with("</IMAGE><TOTALBYTES>12345</TOTALBYTES></WIM>"));
    assert!(!s.contains("<?xml"));
    let bytes = info.to_bytes();
    assert_eq!(&bytes[..4], &[0xFF, 0xFE, b'<', 0]);
}

#[test]
fn characters_xml_cannot_carry_are_replaced_when_writing() {
    let info = WimInfo {
        images: vec![ImageInfo {
            name: Some("a\u{1}b\tc\u{ffff}".into()),
            ..ImageInfo::default()
        }],
        ..WimInfo::default()
    };
    let back = WimInfo::parse(&info.to_bytes()).unwrap();
    assert_eq!(
        back.images[0].name.as_deref(),
        Some("a\u{fffd}b\tc\u{fffd}")
    );
}

#[test]
fn deep_generic_tree_is_written_without_recursion() {
    let mut node = XmlNode {
        name: "D".into(),
        ..XmlNode::default()
    };
    for _ in 0..200_000 {
        node = XmlNode {
            name: "D".into(),
            children: vec![node],
            ..XmlNode::default()
        };
    }
    let info = WimInfo {
        extra: vec![node],
        ..WimInfo::default()
    };
    let s = info.to_xml_string();
    assert_eq!(s.matches("<D>").count(), 200_001);
    // Reading it back hits the depth cap instead of the stack.
    assert!(matches!(
        WimInfo::parse(s.as_bytes()),
        Err(XmlError::TooDeep { .. })
    ));
    // Drop a long chain iteratively: the default recursive drop of 200k
    // nested Vecs would overflow a test thread's stack.
    let mut stack = info.extra;
    while let Some(mut n) = stack.pop() {
        stack.append(&mut n.children);
    }
}

#[test]
fn filetime_now_is_plausible() {
    // 2020-01-01 as FILETIME; anything earlier means the epoch shift is off.
    const JAN_2020: u64 = 132_223_104_000_000_000;
    let t = filetime_now();
    assert!(t > JAN_2020, "{t}");
    // And not absurdly far in the future (year 2200).
    assert!(t < JAN_2020 + 180 * 365 * 24 * 3600 * 10_000_000);
    let t2 = filetime_now();
    assert!(t2 >= t);
}

/// Documents with repeated known elements: whatever the first parse makes
/// of them must survive write + parse unchanged.
#[test]
fn duplicates_are_stable_across_a_rewrite() {
    let docs = [
        // Two top-level TOTALBYTES: the second is preserved, the first wins.
        "<WIM><TOTALBYTES>1</TOTALBYTES><TOTALBYTES>2</TOTALBYTES></WIM>",
        // A false WIMBOOT then a true one.
        "<WIM><IMAGE INDEX=\"1\"><WIMBOOT>0</WIMBOOT><WIMBOOT>1</WIMBOOT></IMAGE></WIM>",
        // Two DEFAULT languages, and LANGUAGES split in two.
        "<WIM><IMAGE INDEX=\"1\"><WINDOWS><LANGUAGES><DEFAULT>a</DEFAULT><DEFAULT>b</DEFAULT></LANGUAGES><LANGUAGES><LANGUAGE>c</LANGUAGE></LANGUAGES></WINDOWS></IMAGE></WIM>",
        "<WIM><IMAGE INDEX=\"1\"><WINDOWS><LANGUAGES></LANGUAGES><LANGUAGES><LANGUAGE>c</LANGUAGE></LANGUAGES></WINDOWS></IMAGE></WIM>",
        // A bad count then a good one, a bad ARCH then a good one.
        "<WIM><IMAGE INDEX=\"1\"><DIRCOUNT>x</DIRCOUNT><DIRCOUNT>5</DIRCOUNT><WINDOWS><ARCH>x</ARCH><ARCH>9</ARCH></WINDOWS></IMAGE></WIM>",
        // Containers with attributes or text are preserved, not mapped.
        "<WIM><IMAGE INDEX=\"1\"><WINDOWS a=\"1\"><ARCH>9</ARCH></WINDOWS><WINDOWS><ARCH>5</ARCH></WINDOWS></IMAGE></WIM>",
        "<WIM><IMAGE INDEX=\"1\"><WINDOWS>text<ARCH>9</ARCH></WINDOWS></IMAGE></WIM>",
        "<WIM><IMAGE INDEX=\"1\"><WINDOWS><VERSION v=\"\"><MAJOR>1</MAJOR></VERSION><VERSION><MAJOR>2</MAJOR></VERSION></WINDOWS></IMAGE></WIM>",
        // A NAME with attributes, then a plain one.
        "<WIM><IMAGE INDEX=\"1\"><NAME lang=\"x\">a</NAME><NAME>b</NAME></IMAGE></WIM>",
    ];
    for doc in docs {
        let info = WimInfo::parse(doc.as_bytes()).unwrap();
        let again = WimInfo::parse(&info.to_bytes()).unwrap();
        assert_eq!(again, info, "{doc}\n{}", info.to_xml_string());
    }
    let info = WimInfo::parse(docs[0].as_bytes()).unwrap();
    assert_eq!(info.total_bytes, Some(1));
    assert!(WimInfo::parse(docs[1].as_bytes()).unwrap().images[0].wimboot);
    let w = WimInfo::parse(docs[2].as_bytes()).unwrap().images[0]
        .windows
        .clone()
        .unwrap();
    assert_eq!(
        (w.default_language.as_deref(), w.languages.as_slice()),
        (Some("a"), &["c".to_owned()][..])
    );
    let img = &WimInfo::parse(docs[5].as_bytes()).unwrap().images[0];
    assert_eq!(img.windows.as_ref().unwrap().arch, Some(5));
    assert_eq!(img.extra[0].attributes, vec![("a".into(), "1".into())]);
    let img = &WimInfo::parse(docs[8].as_bytes()).unwrap().images[0];
    assert_eq!(img.name.as_deref(), Some("b"));
}

#[test]
fn oversized_input_is_refused_before_decoding() {
    let big = vec![b' '; MAX_XML_SIZE + 1];
    assert_eq!(
        WimInfo::parse(&big),
        Err(XmlError::TooLarge {
            size: MAX_XML_SIZE + 1,
            limit: MAX_XML_SIZE
        })
    );
}
