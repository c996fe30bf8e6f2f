#![no_main]
//! The INF parser and driver matching must never panic, hang or allocate
//! without bound, whatever the bytes.
//! Seeds: `cargo fuzz run inf_parse corpus/inf_parse ../../../../shared/samples/inf`
use libfuzzer_sys::fuzz_target;
use tasq_drivers::driver::{Arch, DriverInf, OsVersion};
use tasq_drivers::inf::Inf;
use tasq_drivers::pnp::device_ids;

fuzz_target!(|data: &[u8]| {
    let Ok(inf) = Inf::parse("fuzz.inf", data) else { return };
    for s in inf.sections() {
        let _ = s.value("x");
    }
    let Ok(d) = DriverInf::from_inf(&inf) else { return };
    let os = Some(OsVersion { major: 10, minor: 0, build: 19045 });
    let dev = device_ids("PCI\\VEN_8086&DEV_15B8&SUBSYS_86721043&REV_10&CC_020000");
    for arch in [Arch::X86, Arch::Amd64, Arch::Arm64] {
        let _ = d.catalog_for(arch, os);
        for m in &d.manufacturers {
            if let Some(sec) = m.section_for(arch, os) {
                for model in &sec.models {
                    let _ = model.ids.iter().any(|i| dev.hardware_ids.iter().any(|h| h.eq_ignore_ascii_case(i)));
                }
            }
        }
    }
});
