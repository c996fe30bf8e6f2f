//! Measures import and export speed on a large generated sequence (the real
//! samples are too small to time): `cargo run --release --example import_speed`.

use std::time::Instant;

use tasq_tasksequence::{export, import_str, ExportOptions};

fn main() {
    let sample = include_str!("../tests/data/step.xml");
    let mut xml = String::from("<sequence version=\"3.10\"><group name=\"G\">");
    for i in 0..20_000 {
        xml.push_str(&sample.replace("NAME", &format!("Step {i}")));
    }
    xml.push_str("</group></sequence>");
    let mb = xml.len() as f64 / 1e6;
    let t = Instant::now();
    let seq = import_str(&xml).expect("generated XML imports");
    let import_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let out = export(
        &seq,
        ExportOptions {
            keep_secrets: true,
            ..Default::default()
        },
    );
    let export_s = t.elapsed().as_secs_f64();
    assert_eq!(out.len(), xml.len());
    println!(
        "{:.1} MB, {} steps: import {:.3} s ({:.1} MB/s), export {:.3} s ({:.1} MB/s)",
        mb,
        seq.walk_steps().len(),
        import_s,
        mb / import_s,
        export_s,
        mb / export_s
    );
}
