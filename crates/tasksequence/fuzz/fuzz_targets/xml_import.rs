#![no_main]
//! Task sequence import (XML, UTF-16, export zip) must never panic; whatever
//! it accepts must export, read back to the same thing, validate and have
//! its conditions evaluated without panicking.
//! Seeds: `cargo fuzz run xml_import corpus/xml_import ../../../../shared/samples/configmgr-ts ../../../../shared/samples/mdt-ts`
use libfuzzer_sys::fuzz_target;
use tasq_tasksequence::eval::{evaluate, MemoryTarget};
use tasq_tasksequence::{export, import_bytes, import_str, validate, ExportOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(seq) = import_bytes(data) else { return };
    let keep = ExportOptions { keep_secrets: true, ..Default::default() };
    let out = export(&seq, keep);
    let again = import_str(&out).expect("our own export reads back");
    assert_eq!(export(&again, keep), out, "export is stable");
    let _ = validate::validate(&seq, &Default::default());
    let target = MemoryTarget::default();
    for (_, s) in seq.walk_steps() {
        if let Some(c) = &s.condition {
            let _ = evaluate(c, &target, &s.name);
        }
    }
});
