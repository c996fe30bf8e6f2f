//! Serialises a [`WimInfo`] the way wimlib does: no declaration, no
//! whitespace between elements, numbers in decimal, FILETIMEs as
//! `<HIGHPART>0x%08X</HIGHPART><LOWPART>0x%08X</LOWPART>`.
//!
//! Only the five predefined entities are used for escaping: wimlib 1.14's own
//! XML reader understands nothing else, and a WIM we write must open there.

use std::fmt::Write as _;

use super::parser::is_xml_char;
use super::{ImageInfo, WimInfo, WindowsInfo, WindowsVersion, XmlNode};

pub fn write_document(info: &WimInfo) -> String {
    let mut w = String::new();
    w.push_str("<WIM>");
    for (i, image) in info.images.iter().enumerate() {
        write_image(&mut w, i + 1, image);
    }
    // TOTALBYTES goes before the preserved elements so that, should those
    // hold another TOTALBYTES, ours is still the first and reads back as the
    // value.
    if let Some(total) = info.total_bytes {
        num(&mut w, "TOTALBYTES", total);
    }
    for node in &info.extra {
        write_node(&mut w, node);
    }
    w.push_str("</WIM>");
    w
}

fn write_image(w: &mut String, index: usize, img: &ImageInfo) {
    let _ = write!(w, "<IMAGE INDEX=\"{index}\">");
    opt_text(w, "NAME", &img.name);
    opt_text(w, "DESCRIPTION", &img.description);
    num(w, "DIRCOUNT", img.dir_count);
    num(w, "FILECOUNT", img.file_count);
    num(w, "TOTALBYTES", img.total_bytes);
    num(w, "HARDLINKBYTES", img.hard_link_bytes);
    time(w, "CREATIONTIME", img.creation_time);
    time(w, "LASTMODIFICATIONTIME", img.last_modification_time);
    if img.wimboot {
        w.push_str("<WIMBOOT>1</WIMBOOT>");
    }
    if let Some(win) = &img.windows {
        write_windows(w, win);
    }
    opt_text(w, "DISPLAYNAME", &img.display_name);
    opt_text(w, "DISPLAYDESCRIPTION", &img.display_description);
    opt_text(w, "FLAGS", &img.flags);
    for node in &img.extra {
        write_node(w, node);
    }
    w.push_str("</IMAGE>");
}

fn write_windows(w: &mut String, win: &WindowsInfo) {
    w.push_str("<WINDOWS>");
    if let Some(arch) = win.arch {
        num(w, "ARCH", u64::from(arch));
    }
    opt_text(w, "PRODUCTNAME", &win.product_name);
    opt_text(w, "EDITIONID", &win.edition_id);
    opt_text(w, "INSTALLATIONTYPE", &win.installation_type);
    opt_text(w, "HAL", &win.hal);
    opt_text(w, "PRODUCTTYPE", &win.product_type);
    opt_text(w, "PRODUCTSUITE", &win.product_suite);
    if !win.languages.is_empty()
        || win.default_language.is_some()
        || !win.languages_extra.is_empty()
    {
        w.push_str("<LANGUAGES>");
        for lang in &win.languages {
            element_text(w, "LANGUAGE", lang);
        }
        opt_text(w, "DEFAULT", &win.default_language);
        for node in &win.languages_extra {
            write_node(w, node);
        }
        w.push_str("</LANGUAGES>");
    }
    if let Some(v) = &win.version {
        write_version(w, v);
    }
    opt_text(w, "SYSTEMROOT", &win.system_root);
    for node in &win.extra {
        write_node(w, node);
    }
    w.push_str("</WINDOWS>");
}

fn write_version(w: &mut String, v: &WindowsVersion) {
    w.push_str("<VERSION>");
    for (name, value) in [
        ("MAJOR", v.major),
        ("MINOR", v.minor),
        ("BUILD", v.build),
        ("SPBUILD", v.spbuild),
        ("SPLEVEL", v.splevel),
    ] {
        if let Some(value) = value {
            num(w, name, value);
        }
    }
    opt_text(w, "BRANCH", &v.branch);
    for node in &v.extra {
        write_node(w, node);
    }
    w.push_str("</VERSION>");
}

/// Generic elements are written iteratively: a tree built by a caller has no
/// depth limit, and writing must not overflow the stack on it.
fn write_node(w: &mut String, root: &XmlNode) {
    enum Step<'a> {
        Open(&'a XmlNode),
        Close(&'a str),
    }
    let mut todo = vec![Step::Open(root)];
    while let Some(step) = todo.pop() {
        match step {
            Step::Close(name) => {
                let _ = write!(w, "</{name}>");
            }
            Step::Open(node) => {
                let _ = write!(w, "<{}", node.name);
                for (k, v) in &node.attributes {
                    let _ = write!(w, " {k}=\"");
                    escape_into(w, v);
                    w.push('"');
                }
                w.push('>');
                if let Some(t) = &node.text {
                    escape_into(w, t);
                }
                todo.push(Step::Close(&node.name));
                todo.extend(node.children.iter().rev().map(Step::Open));
            }
        }
    }
}

fn num(w: &mut String, name: &str, value: u64) {
    let _ = write!(w, "<{name}>{value}</{name}>");
}

fn time(w: &mut String, name: &str, filetime: u64) {
    let _ = write!(
        w,
        "<{name}><HIGHPART>0x{:08X}</HIGHPART><LOWPART>0x{:08X}</LOWPART></{name}>",
        filetime >> 32,
        filetime & 0xFFFF_FFFF
    );
}

fn opt_text(w: &mut String, name: &str, value: &Option<String>) {
    if let Some(v) = value {
        element_text(w, name, v);
    }
}

fn element_text(w: &mut String, name: &str, value: &str) {
    let _ = write!(w, "<{name}>");
    escape_into(w, value);
    let _ = write!(w, "</{name}>");
}

/// Escapes markup characters. Characters XML 1.0 cannot carry at all (C0
/// controls other than tab, CR, LF) become U+FFFD: writing them would make a
/// document that no XML reader, wimlib's included, accepts.
fn escape_into(w: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => w.push_str("&amp;"),
            '<' => w.push_str("&lt;"),
            '>' => w.push_str("&gt;"),
            '"' => w.push_str("&quot;"),
            '\'' => w.push_str("&apos;"),
            c if !is_xml_char(c) => w.push('\u{fffd}'),
            c => w.push(c),
        }
    }
}
