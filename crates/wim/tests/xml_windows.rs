//! Windows-made WIM XML: the install.esd excerpt quoted in the research
//! notes (wim.md §1.7, Windows 11 23H2), read field by field.

use tasq_wim::xml::{WimInfo, XmlNode};

const INSTALL_ESD: &str = "<WIM><IMAGE INDEX=\"1\"><DIRCOUNT>24909</DIRCOUNT><FILECOUNT>99241</FILECOUNT><TOTALBYTES>16383717491</TOTALBYTES>\
<WINDOWS><ARCH>9</ARCH><PRODUCTNAME>Microsoft® Windows® Operating System</PRODUCTNAME><EDITIONID>Professional</EDITIONID>\
<INSTALLATIONTYPE>Client</INSTALLATIONTYPE><PRODUCTTYPE>WinNT</PRODUCTTYPE><PRODUCTSUITE>Terminal Server</PRODUCTSUITE>\
<LANGUAGES><LANGUAGE>en-US</LANGUAGE><DEFAULT>en-US</DEFAULT></LANGUAGES><VERSION><MAJOR>10</MAJOR><MINOR>0</MINOR>\
<BUILD>22621</BUILD><SPBUILD>2283</SPBUILD><SPLEVEL>0</SPLEVEL><BRANCH>ni_release_svc_prod3</BRANCH></VERSION>\
<SYSTEMROOT>WINDOWS</SYSTEMROOT></WINDOWS><NAME>Windows 11 Pro</NAME><DESCRIPTION>Windows 11 Pro</DESCRIPTION>\
<DISPLAYNAME>Windows 11 Pro</DISPLAYNAME><DISPLAYDESCRIPTION>Windows 11 Pro</DISPLAYDESCRIPTION>\
<FLAGS>Professional</FLAGS></IMAGE><TOTALBYTES>3502723354</TOTALBYTES></WIM>";

fn utf16_bom(s: &str) -> Vec<u8> {
    let mut v = vec![0xFF, 0xFE];
    v.extend(s.encode_utf16().flat_map(u16::to_le_bytes));
    v
}

#[test]
fn reads_windows_install_esd_excerpt() {
    let info = WimInfo::parse(&utf16_bom(INSTALL_ESD)).unwrap();
    assert_eq!(info.total_bytes, Some(3_502_723_354));
    let img = &info.images[0];
    assert_eq!((img.dir_count, img.file_count), (24_909, 99_241));
    assert_eq!(img.total_bytes, 16_383_717_491);
    assert_eq!(img.name.as_deref(), Some("Windows 11 Pro"));
    assert_eq!(img.description.as_deref(), Some("Windows 11 Pro"));
    assert_eq!(img.display_name.as_deref(), Some("Windows 11 Pro"));
    assert_eq!(img.display_description.as_deref(), Some("Windows 11 Pro"));
    assert_eq!(img.flags.as_deref(), Some("Professional"));
    let w = img.windows.as_ref().unwrap();
    assert_eq!(w.arch, Some(9));
    assert_eq!(
        w.product_name.as_deref(),
        Some("Microsoft® Windows® Operating System")
    );
    assert_eq!(w.edition_id.as_deref(), Some("Professional"));
    assert_eq!(w.installation_type.as_deref(), Some("Client"));
    assert_eq!(w.product_type.as_deref(), Some("WinNT"));
    assert_eq!(w.product_suite.as_deref(), Some("Terminal Server"));
    assert_eq!(w.hal, None);
    assert_eq!(w.languages, ["en-US"]);
    assert_eq!(w.default_language.as_deref(), Some("en-US"));
    assert_eq!(w.system_root.as_deref(), Some("WINDOWS"));
    let v = w.version.as_ref().unwrap();
    assert_eq!(
        (v.major, v.minor, v.build, v.spbuild, v.splevel),
        (Some(10), Some(0), Some(22621), Some(2283), Some(0))
    );
    assert_eq!(v.branch.as_deref(), Some("ni_release_svc_prod3"));
    assert!(img.extra.is_empty() && w.extra.is_empty() && v.extra.is_empty());
    assert!(!info.is_encrypted_esd());

    let again = WimInfo::parse(&info.to_bytes()).unwrap();
    assert_eq!(again, info);
}

/// Pretty-printed XML with elements Windows adds that we do not model
/// (constructed for this test, not taken from a real file): they must
/// survive a rewrite.
#[test]
fn keeps_unmodelled_windows_elements() {
    let doc = r#"<?xml version="1.0" encoding="UTF-16"?>
<WIM>
  <TOTALBYTES>100</TOTALBYTES>
  <IMAGE INDEX="1">
    <WINDOWS>
      <ARCH>12</ARCH>
      <LANGUAGES>
        <LANGUAGE>de-DE</LANGUAGE>
        <LANGUAGE>en-US</LANGUAGE>
        <FALLBACK LANGUAGE="de-DE">en-US</FALLBACK>
        <DEFAULT>de-DE</DEFAULT>
      </LANGUAGES>
      <SERVICINGDATA><GDRDUREVISION>0</GDRDUREVISION><PKEYCONFIGVERSION>10.0.22621.1</PKEYCONFIGVERSION></SERVICINGDATA>
    </WINDOWS>
    <NAME>Windows 11 Pro</NAME>
  </IMAGE>
</WIM>
"#;
    let info = WimInfo::parse(&utf16_bom(doc)).unwrap();
    let w = info.images[0].windows.as_ref().unwrap();
    assert_eq!(w.arch, Some(12));
    assert_eq!(w.languages, ["de-DE", "en-US"]);
    assert_eq!(w.default_language.as_deref(), Some("de-DE"));
    assert_eq!(
        w.languages_extra,
        vec![XmlNode {
            name: "FALLBACK".into(),
            attributes: vec![("LANGUAGE".into(), "de-DE".into())],
            children: vec![],
            text: Some("en-US".into()),
        }]
    );
    assert_eq!(w.extra.len(), 1);
    assert_eq!(w.extra[0].name, "SERVICINGDATA");
    assert_eq!(w.extra[0].children.len(), 2);
    assert_eq!(w.extra[0].children[1].text.as_deref(), Some("10.0.22621.1"));
    assert_eq!(info.total_bytes, Some(100));

    let out = info.to_xml_string();
    assert!(
        out.contains("<FALLBACK LANGUAGE=\"de-DE\">en-US</FALLBACK>"),
        "{out}"
    );
    assert!(out.contains("<SERVICINGDATA><GDRDUREVISION>0</GDRDUREVISION><PKEYCONFIGVERSION>10.0.22621.1</PKEYCONFIGVERSION></SERVICINGDATA>"), "{out}");
    assert_eq!(WimInfo::parse(out.as_bytes()).unwrap(), info);
}
