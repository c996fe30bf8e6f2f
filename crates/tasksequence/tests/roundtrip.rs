//! Export(import(x)) is the same tree as x for every real file in the samples.

mod common;

use common::{first_diff, normalize, samples, N};
use tasq_tasksequence::{export, import_bytes, import_str, package, secrets, ExportOptions};

fn keep() -> ExportOptions {
    ExportOptions {
        keep_secrets: true,
        ..Default::default()
    }
}

fn assert_same(original: &str, exported: &str, what: &str) {
    let a = normalize(original);
    let b = normalize(exported);
    if let Some(d) = first_diff(&a, &b, "") {
        panic!("{what}: trees differ at {d}");
    }
}

fn sample_xml_files() -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for dir in ["configmgr-ts", "mdt-ts"] {
        for e in std::fs::read_dir(samples().join(dir)).expect("samples folder") {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            let is_seq =
                name.ends_with("_sequence.xml") || dir == "mdt-ts" && name.ends_with(".xml");
            if is_seq {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

#[test]
fn every_sample_sequence_round_trips() {
    let files = sample_xml_files();
    assert!(
        files.len() >= 6,
        "expected the 2 ConfigMgr and 4 MDT samples, found {files:?}"
    );
    for p in files {
        let text = std::fs::read_to_string(&p).unwrap();
        let seq = import_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(!seq.walk_steps().is_empty());
        for layout in [
            tasq_tasksequence::xml::Layout::Compact,
            tasq_tasksequence::xml::Layout::Indented,
        ] {
            let out = export(
                &seq,
                ExportOptions {
                    keep_secrets: true,
                    layout,
                },
            );
            assert_same(&text, &out, &p.display().to_string());
            // And the export reads back to the same model.
            let again = import_str(&out).unwrap();
            assert_eq!(export(&again, keep()), export(&seq, keep()));
        }
    }
}

#[test]
fn configmgr_exports_round_trip_byte_for_byte() {
    // ConfigMgr writes one line with no whitespace; so do we.
    for name in [
        "DRFiles_TS-BitLocker_sequence.xml",
        "forevanyeung_all-steps_RSC002A6_sequence.xml",
    ] {
        let text = std::fs::read_to_string(samples().join("configmgr-ts").join(name)).unwrap();
        let seq = import_str(&text).unwrap();
        let out = export(&seq, keep());
        let want = text.trim_end();
        let at = out.bytes().zip(want.bytes()).position(|(a, b)| a != b);
        assert!(
            out == want,
            "{name}: first difference at byte {at:?}, lengths {} vs {}",
            out.len(),
            want.len()
        );
    }
}

#[test]
fn object_xml_and_export_zip_import() {
    let dir = samples().join("configmgr-ts");
    let obj =
        std::fs::read_to_string(dir.join("forevanyeung_all-steps_RSC002A6_object.xml")).unwrap();
    let pkg = package::object_xml(&obj, "x").unwrap();
    assert_eq!(pkg.package_id, "RSC002A6");
    assert!(!pkg.name.is_empty());
    let seq_text =
        std::fs::read_to_string(dir.join("forevanyeung_all-steps_RSC002A6_sequence.xml")).unwrap();
    assert_same(&seq_text, &export(&pkg.sequence, keep()), "object.xml");

    let zip = std::fs::read(dir.join("DRFiles_TS-BitLocker.export.zip")).unwrap();
    let pkg = package::read_package(&zip).unwrap();
    assert_eq!(pkg.package_id, "PS100294");
    assert_eq!(pkg.name, "Child TS - BitLocker");
    assert_eq!(pkg.boot_image_id, "");
    let seq_text = std::fs::read_to_string(dir.join("DRFiles_TS-BitLocker_sequence.xml")).unwrap();
    assert_same(&seq_text, &export(&pkg.sequence, keep()), "export zip");
    // import_bytes recognizes the zip by its signature.
    let seq = import_bytes(&zip).unwrap();
    assert_eq!(seq, pkg.sequence);
}

#[test]
fn secrets_are_blanked_unless_kept() {
    let text = std::fs::read_to_string(
        samples().join("configmgr-ts/forevanyeung_all-steps_RSC002A6_sequence.xml"),
    )
    .unwrap();
    let seq = import_str(&text).unwrap();
    let present = secrets::secrets_present(&seq);
    assert!(
        present.iter().any(|(_, v)| v == "SafeModeAdminPassword"),
        "sample has a clear-text password: {present:?}"
    );
    let out = export(&seq, ExportOptions::default());
    let blanked = import_str(&out).unwrap();
    assert!(secrets::secrets_present(&blanked).is_empty());
    // Apart from the secret values the trees are the same.
    fn strip(n: &mut N) {
        if let N::E(name, attrs, kids) = n {
            if name == "variable"
                && attrs
                    .iter()
                    .any(|(k, v)| k == "name" && secrets::is_secret(v, None))
            {
                kids.clear();
            }
            kids.iter_mut().for_each(strip);
        }
    }
    let mut a = normalize(&text);
    let mut b = normalize(&out);
    strip(&mut a);
    strip(&mut b);
    assert_eq!(first_diff(&a, &b, ""), None);
    // Keeping secrets keeps them.
    assert!(export(&seq, keep()).contains("property=\"SafeModeAdminPassword\">asdf<"));
    assert!(out.contains("property=\"SafeModeAdminPassword\"></variable>"));
}

#[test]
fn validate_runs_on_every_sample() {
    for p in sample_xml_files() {
        let seq = import_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        let problems = tasq_tasksequence::validate::validate(&seq, &Default::default());
        // MDT sequences read variables that Gather sets: warnings, never a panic.
        for pr in &problems {
            assert!(!pr.to_string().is_empty());
        }
    }
}
