//! The console's export package: an OPC zip whose
//! `SMS_TaskSequencePackage/<PackageID>/object.xml` is a CIM-XML instance of
//! `SMS_TaskSequencePackage`; its `Sequence` property holds the sequence XML
//! (escaped), next to `Name`, `Description`, `BootImageID` and the package ID.
//!
//! Reading is bounded (entry count, entry size) so a hostile archive cannot make
//! us inflate without limit. Writing produces the same layout as the console
//! (content types, relationships, core properties, manifest, object.xml,
//! reference lists) with the properties this crate knows.

use std::io::{Cursor, Read, Write};

use crate::configmgr::{export, sequence_from_el, ExportOptions};
use crate::error::Error;
use crate::model::Sequence;
use crate::xml::{self, escape_attr, escape_text, Element, Layout};

/// Most entries read from an archive.
const MAX_ENTRIES: usize = 10_000;

/// A task sequence package read from (or written to) an export zip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub package_id: String,
    pub name: String,
    pub description: String,
    pub boot_image_id: String,
    pub sequence: Sequence,
}

fn read_entry(archive: &mut zip::ZipArchive<Cursor<&[u8]>>, i: usize) -> Result<Vec<u8>, Error> {
    let f = archive
        .by_index(i)
        .map_err(|e| Error::Package(format!("entry {i}: {e}")))?;
    let mut buf = Vec::new();
    // Read one byte past the limit to tell "exactly the limit" from "more".
    f.take(xml::MAX_INPUT as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::Package(format!("entry {i}: {e}")))?;
    if buf.len() > xml::MAX_INPUT {
        return Err(Error::TooLarge {
            size: buf.len() as u64,
            limit: xml::MAX_INPUT as u64,
        });
    }
    Ok(buf)
}

/// The task sequence packages of an export zip, in archive order.
pub fn read_packages(bytes: &[u8]) -> Result<Vec<Package>, Error> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| Error::Package(format!("not a readable zip archive: {e}")))?;
    if archive.len() > MAX_ENTRIES {
        return Err(Error::Package(format!(
            "{} entries; at most {MAX_ENTRIES} are read",
            archive.len()
        )));
    }
    let mut found = Vec::new();
    for i in 0..archive.len() {
        let name = archive
            .name_for_index(i)
            .unwrap_or_default()
            .replace('\\', "/");
        let parts: Vec<&str> = name.trim_start_matches('/').split('/').collect();
        if parts.len() == 3
            && parts[0].eq_ignore_ascii_case("SMS_TaskSequencePackage")
            && parts[2].eq_ignore_ascii_case("object.xml")
        {
            found.push((i, parts[1].to_string(), name.clone()));
        }
    }
    if found.is_empty() {
        return Err(Error::Package(
            "no SMS_TaskSequencePackage/<PackageID>/object.xml in the archive".into(),
        ));
    }
    let mut out = Vec::new();
    for (i, dir_id, name) in found {
        let text = xml::decode_bytes(&read_entry(&mut archive, i)?)?;
        let pkg = object_xml(&text, &dir_id).map_err(|e| match e {
            Error::Syntax { pos, message } => Error::Syntax {
                pos,
                message: format!("{name}: {message}"),
            },
            Error::Invalid { pos, message } => Error::Invalid {
                pos,
                message: format!("{name}: {message}"),
            },
            other => other,
        })?;
        out.push(pkg);
    }
    Ok(out)
}

/// The single task sequence package of an export zip.
pub fn read_package(bytes: &[u8]) -> Result<Package, Error> {
    let mut pkgs = read_packages(bytes)?;
    if pkgs.len() > 1 {
        let ids: Vec<&str> = pkgs.iter().map(|p| p.package_id.as_str()).collect();
        return Err(Error::Package(format!(
            "the archive holds {} task sequences ({}); read them with read_packages",
            pkgs.len(),
            ids.join(", ")
        )));
    }
    pkgs.pop()
        .ok_or_else(|| Error::Package("no task sequence in the archive".into()))
}

/// Reads a CIM-XML `SMS_TaskSequencePackage` instance (`object.xml`).
pub fn object_xml(text: &str, fallback_id: &str) -> Result<Package, Error> {
    let root = xml::parse(text)?;
    if root.name != "INSTANCE" {
        return Err(Error::invalid(
            root.pos,
            format!("object.xml root is <{}>, expected <INSTANCE>", root.name),
        ));
    }
    let prop = |name: &str| -> Option<(&Element, Option<String>)> {
        root.elements()
            .find(|p| p.name == "PROPERTY" && p.attr("NAME") == Some(name))
            .map(|p| {
                (
                    p,
                    p.elements().find(|v| v.name == "VALUE").map(Element::text),
                )
            })
    };
    let (seq_prop, seq_text) = prop("Sequence")
        .ok_or_else(|| Error::invalid(root.pos, "object.xml has no Sequence property"))?;
    let seq_text = seq_text
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| Error::invalid(seq_prop.pos, "the Sequence property is empty"))?;
    // The sequence is a document of its own: positions in errors are inside it.
    let seq_root = xml::parse(&seq_text).map_err(|e| match e {
        Error::Syntax { pos, message } => Error::Syntax {
            pos,
            message: format!(
                "in the Sequence property (line {}): {message}",
                seq_prop.pos.line
            ),
        },
        other => other,
    })?;
    let sequence = sequence_from_el(&seq_root)?;
    let text_of = |n: &str| prop(n).and_then(|(_, v)| v).unwrap_or_default();
    let id = text_of("PackageID");
    Ok(Package {
        package_id: if id.is_empty() {
            fallback_id.to_string()
        } else {
            id
        },
        name: text_of("Name"),
        description: text_of("Description"),
        boot_image_id: text_of("BootImageID"),
        sequence,
    })
}

const BOM: &str = "\u{feff}";

fn property(out: &mut String, name: &str, origin: &str, cim_type: &str, value: Option<&str>) {
    out.push_str("  <PROPERTY NAME=\"");
    escape_attr(name, out);
    out.push_str("\" CLASSORIGIN=\"");
    out.push_str(origin);
    out.push_str("\" TYPE=\"");
    out.push_str(cim_type);
    out.push_str("\">\r\n");
    if let Some(v) = value {
        out.push_str("    <VALUE>");
        escape_text(v, out);
        out.push_str("</VALUE>\r\n");
    }
    out.push_str("  </PROPERTY>\r\n");
}

/// The `object.xml` of a package.
pub fn write_object_xml(pkg: &Package, opts: ExportOptions) -> String {
    let seq = export(
        &pkg.sequence,
        ExportOptions {
            layout: Layout::Compact,
            ..opts
        },
    );
    let mut o = String::from("<INSTANCE CLASSNAME=\"SMS_TaskSequencePackage\">\r\n");
    property(
        &mut o,
        "BootImageID",
        "SMS_TaskSequencePackage",
        "string",
        Some(&pkg.boot_image_id),
    );
    property(
        &mut o,
        "Description",
        "SMS_PackageBaseclass",
        "string",
        Some(&pkg.description),
    );
    property(
        &mut o,
        "Name",
        "SMS_PackageBaseclass",
        "string",
        Some(&pkg.name),
    );
    property(
        &mut o,
        "PackageID",
        "SMS_PackageBaseclass",
        "string",
        Some(&pkg.package_id),
    );
    property(
        &mut o,
        "Sequence",
        "SMS_TaskSequencePackage",
        "string",
        Some(&seq),
    );
    // Flag 0x1: the sequence deploys an OS image (set when it applies one).
    let deploys_os = pkg
        .sequence
        .walk_steps()
        .iter()
        .any(|(_, s)| s.type_name() == crate::steps::APPLY_OS);
    property(
        &mut o,
        "TaskSequenceFlags",
        "SMS_TaskSequencePackage",
        "uint32",
        Some(if deploys_os { "1" } else { "0" }),
    );
    property(
        &mut o,
        "TsEnabled",
        "SMS_TaskSequencePackage",
        "boolean",
        Some("TRUE"),
    );
    // Type 2: an OS deployment sequence; 1: generic.
    property(
        &mut o,
        "Type",
        "SMS_TaskSequencePackage",
        "uint32",
        Some(if deploys_os { "2" } else { "1" }),
    );
    o.push_str("</INSTANCE>");
    o
}

/// Writes an export zip holding one task sequence package.
pub fn write_package(pkg: &Package, opts: ExportOptions) -> Result<Vec<u8>, Error> {
    let id = &pkg.package_id;
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(Error::Package(format!(
            "package ID \"{id}\" must be letters and digits"
        )));
    }
    let mut rel_id = String::new();
    // A stable relationship ID derived from the package ID (the console uses a hash).
    for b in id.bytes() {
        rel_id.push_str(&format!("{b:02X}"));
    }
    let core = "package/services/metadata/core-properties/00000000000000000000000000000001.psmdcp";
    let files: Vec<(String, String)> = vec![
        (
            "[Content_Types].xml".into(),
            format!("{BOM}<?xml version=\"1.0\" encoding=\"utf-8\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"><Default Extension=\"xml\" ContentType=\"text/xml\" /><Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\" /><Default Extension=\"psmdcp\" ContentType=\"application/vnd.openxmlformats-package.core-properties+xml\" /></Types>"),
        ),
        (
            "_rels/.rels".into(),
            format!("{BOM}<?xml version=\"1.0\" encoding=\"utf-8\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"><Relationship Type=\"SMS_TaskSequencePackage\" Target=\"/SMS_TaskSequencePackage/{id}/object.xml\" TargetMode=\"External\" Id=\"SMS_TaskSequencePackage-{rel_id}\" /><Relationship Type=\"http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties\" Target=\"/{core}\" Id=\"R{rel_id}\" /></Relationships>"),
        ),
        (
            core.into(),
            format!("{BOM}<?xml version=\"1.0\" encoding=\"utf-8\"?><coreProperties xmlns:dc=\"http://purl.org/dc/elements/1.1/\" xmlns:dcterms=\"http://purl.org/dc/terms/\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns=\"http://schemas.openxmlformats.org/package/2006/metadata/core-properties\"><dc:description /></coreProperties>"),
        ),
        (
            "Manifest.xml".into(),
            format!("{BOM}<LibraryDocument xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">\r\n  <Properties />\r\n  <Contents />\r\n  <EntryObjects>\r\n    <Object Path=\"SMS_TaskSequencePackage.PackageID='{id}'\" Type=\"SMS_TaskSequencePackage\" />\r\n  </EntryObjects>\r\n</LibraryDocument>"),
        ),
        (
            format!("SMS_TaskSequencePackage/{id}/object.xml"),
            write_object_xml(pkg, opts),
        ),
        (
            format!("SMS_TaskSequencePackage/{id}/ReferencesInfo.xml"),
            format!("{BOM}<ArrayOfString xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" />"),
        ),
        (
            format!("SMS_TaskSequencePackage/{id}/AppReferencesInfo.xml"),
            format!("{BOM}<ArrayOfString xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" />"),
        ),
    ];
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, body) in files {
        w.start_file(name.as_str(), options)
            .map_err(|e| Error::Package(format!("{name}: {e}")))?;
        w.write_all(body.as_bytes())
            .map_err(|e| Error::Package(format!("{name}: {e}")))?;
    }
    let cursor = w
        .finish()
        .map_err(|e| Error::Package(format!("finishing the archive: {e}")))?;
    Ok(cursor.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configmgr::import_str;

    #[test]
    fn written_package_reads_back() {
        let seq = import_str(r#"<sequence version="3.10"><step type="SMS_TaskSequence_RunCommandLineAction" name="a &amp; b"><action>cmd /c "x &lt; y"</action></step></sequence>"#).unwrap();
        let pkg = Package {
            package_id: "PS100001".into(),
            name: "Build & capture".into(),
            description: "d".into(),
            boot_image_id: "PS100005".into(),
            sequence: seq,
        };
        let bytes = write_package(&pkg, ExportOptions::default()).unwrap();
        let back = read_package(&bytes).unwrap();
        assert_eq!(back.name, pkg.name);
        assert_eq!(back.boot_image_id, "PS100005");
        assert_eq!(back.package_id, "PS100001");
        assert_eq!(
            export(&back.sequence, ExportOptions::default()),
            export(&pkg.sequence, ExportOptions::default())
        );
    }

    #[test]
    fn bad_archives_are_errors() {
        assert!(matches!(
            read_package(b"PK\x03\x04garbage"),
            Err(Error::Package(_))
        ));
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.start_file("x.txt", zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(b"hi").unwrap();
        let bytes = w.finish().unwrap().into_inner();
        assert!(read_package(&bytes)
            .unwrap_err()
            .to_string()
            .contains("object.xml"));
        assert!(write_package(
            &Package {
                package_id: "../x".into(),
                name: String::new(),
                description: String::new(),
                boot_image_id: String::new(),
                sequence: Sequence::default()
            },
            ExportOptions::default()
        )
        .is_err());
    }
}
