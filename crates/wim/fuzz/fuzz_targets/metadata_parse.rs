#![no_main]
// Run with: cargo +nightly fuzz run metadata_parse (from crates/wim/fuzz).
use libfuzzer_sys::fuzz_target;
use tasq_wim::metadata::{parse_metadata, serialize_metadata};

// Any bytes as a (decompressed) metadata resource: parsing must not panic,
// hang or allocate beyond a small multiple of the input. What parses must
// serialise, and our own serialisation must parse back to the same paths,
// counts and streams (the writer is fed trees read from other WIMs by
// export and delete). Hard-link group ids are renumbered on the first
// rewrite, so byte equality is only expected from the second one on.
fuzz_target!(|data: &[u8]| {
    let Ok(tree) = parse_metadata(data, 1) else {
        return;
    };
    let paths = |t: &tasq_wim::image::ImageTree| -> Vec<String> {
        t.preorder().into_iter().map(|d| t.path_of(d)).collect()
    };
    let bytes = serialize_metadata(&tree);
    let back = parse_metadata(&bytes, 1).expect("our own metadata must parse");
    assert_eq!(paths(&back), paths(&tree), "paths changed in a rewrite");
    assert_eq!(back.stats(), tree.stats(), "counts changed in a rewrite");
    assert_eq!(back.security, tree.security, "security descriptors changed");
    let again = serialize_metadata(&back);
    let third =
        serialize_metadata(&parse_metadata(&again, 1).expect("our own metadata must parse"));
    assert_eq!(third, again, "serialisation is not a fixed point");
});
