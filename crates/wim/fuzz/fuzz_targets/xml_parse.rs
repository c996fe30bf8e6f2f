#![no_main]
// Run with: cargo +nightly fuzz run xml_parse (from crates/wim/fuzz).
use libfuzzer_sys::fuzz_target;
use tasq_wim::xml::WimInfo;

// Any bytes: parsing must not panic, and whatever parses must survive a
// write/parse round trip unchanged.
fuzz_target!(|data: &[u8]| {
    if let Ok(info) = WimInfo::parse(data) {
        let again = WimInfo::parse(&info.to_bytes()).expect("our own output must parse");
        assert_eq!(again, info, "round trip changed the document");
    }
});
