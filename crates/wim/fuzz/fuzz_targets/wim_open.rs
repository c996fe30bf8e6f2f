#![no_main]
// Run with: cargo +nightly fuzz run wim_open (from crates/wim/fuzz).
// Seeds: ./seeds.sh writes small WIMs into corpus/wim_open.
use libfuzzer_sys::fuzz_target;
use tasq_wim::apply::{apply_image, ApplyOptions};
use tasq_wim::memfs::MemFs;
use tasq_wim::reader::Wim;

// Any bytes as a WIM file: open it, read and check every image, verify
// every blob, apply every image to memory. Nothing may panic, hang, or
// allocate much more than the file holds (sizes read from the file must
// be checked against it before they are believed).
fuzz_target!(|data: &[u8]| {
    // One file per process, rewritten for each input (the reader wants a
    // file, not a slice).
    thread_local! {
        static PATH: std::path::PathBuf =
            std::env::temp_dir().join(format!("tasq-wim-open-fuzz-{}.wim", std::process::id()));
    }
    PATH.with(|path| {
        if std::fs::write(path, data).is_err() {
            return;
        }
        let Ok(wim) = Wim::open(path) else { return };
        for n in 0..=wim.image_count() + 1 {
            let _ = wim.read_image(n);
        }
        let _ = wim.resolve_image("1");
        let _ = tasq_wim::verify::verify(&wim, 1, &mut |_, _| {});
        for n in 1..=wim.image_count() {
            let mut fs = MemFs::new();
            let _ = apply_image(&wim, n, &mut fs, &ApplyOptions { threads: 1, ..Default::default() }, &mut |_| {});
        }
    });
});
