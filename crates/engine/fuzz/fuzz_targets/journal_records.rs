//! `journal.records` is read back after a crash, so its bytes may be torn
//! or damaged anywhere. The input becomes the record file of a real
//! journal; loading must return a state or an error, never panic or hang.
//!
//! Input byte 0 chooses the shape: even, the rest is the file after a valid
//! header (exercises framing: lengths, checksums, torn tails); odd, the rest
//! is split at 0xFF bytes into payloads that are framed with valid lengths
//! and checksums (exercises the record parser and the replay behind the
//! checksum, which random bytes would rarely get past).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tasq_engine::env::Environment;
use tasq_engine::journal::{Journal, RECORDS_FILE};
use tasq_engine::runner::{MediaType, RunState};

const RECORDS_MAGIC_LEN: usize = 8;

/// A journal with a snapshot, made once per process; returns its folder
/// and the snapshot id its record file must name.
fn journal() -> &'static (PathBuf, u64, Vec<u8>) {
    static J: OnceLock<(PathBuf, u64, Vec<u8>)> = OnceLock::new();
    J.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("tasq-fuzz-journal-{}", std::process::id()));
        let mut j = Journal::create(&dir).expect("journal");
        let st = RunState::start(MediaType::Boot);
        let mut env = Environment::new();
        env.set_with("OSDComputerName", "PC1", false);
        j.snapshot(&st, &env).expect("snapshot");
        // A real record, so its header (magic + snapshot id) can be reused.
        env.set_with("Secret", "hunter2", true);
        j.append(&st, &env).expect("append");
        let rec = std::fs::read(dir.join(RECORDS_FILE)).expect("records");
        let header = rec[..RECORDS_MAGIC_LEN + 8].to_vec();
        let id = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
        // `JOURNAL_SEED_DIR=corpus/journal_records` writes seeds made of
        // this real record: framed (mode 0) and as a payload (mode 1).
        if let Some(seeds) = std::env::var_os("JOURNAL_SEED_DIR") {
            let seeds = PathBuf::from(seeds);
            let _ = std::fs::create_dir_all(&seeds);
            let mut framed = vec![0u8];
            framed.extend_from_slice(&rec[header.len()..]);
            let _ = std::fs::write(seeds.join("framed"), &framed);
            let mut payload = vec![1u8];
            payload.extend_from_slice(rec.get(header.len() + 8..).unwrap_or_default());
            let _ = std::fs::write(seeds.join("payload"), &payload);
        }
        (dir, id, header)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (dir, id, header) = journal();
    let mut file = header.clone();
    if mode % 2 == 0 {
        file.extend_from_slice(rest);
    } else {
        for payload in rest.split(|&b| b == 0xFF) {
            let mut c = crc32fast::Hasher::new();
            c.update(&id.to_le_bytes());
            c.update(payload);
            file.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            file.extend_from_slice(&c.finalize().to_le_bytes());
            file.extend_from_slice(payload);
        }
    }
    if std::fs::write(dir.join(RECORDS_FILE), &file).is_err() {
        return;
    }
    if let Ok(j) = Journal::open(dir) {
        let _ = j.load();
    }
});
