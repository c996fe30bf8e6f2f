//! The journal under a real run: a state folder copied while a 2,000-step
//! run is going (its snapshot plus the record file of the steps since) loads
//! and resumes to exactly the state the uninterrupted run ends with.
mod common;
use common::*;
use std::path::{Path, PathBuf};
use tasq_engine::events::{Event, EventSink};
use tasq_engine::journal::{Journal, JOURNAL_FILE, KEY_FILE, RECORDS_FILE, SEQUENCE_FILE};
use tasq_engine::runner::{Engine, MediaType};

/// Copies the journal files when the step at `pointer` starts, i.e. with
/// the state journaled after every step before it.
struct CopyAt {
    pointer: usize,
    from: PathBuf,
    to: PathBuf,
}

impl EventSink for CopyAt {
    fn event(&mut self, e: &Event) {
        if let Event::StepStart { pointer, .. } = e {
            if *pointer == self.pointer {
                for f in [JOURNAL_FILE, RECORDS_FILE, KEY_FILE, SEQUENCE_FILE] {
                    std::fs::copy(self.from.join(f), self.to.join(f)).unwrap();
                }
            }
        }
    }
}

fn sequence(n: usize) -> String {
    let mut items = Vec::new();
    for i in 0..n - 1 {
        items.push(match i % 100 {
            // A failing step that continues, a skipped group, a secret.
            7 => cmd("fails", "exit 3", "continueOnError=\"true\""),
            11 => group_cond(
                &format!("skipped {i}"),
                "",
                &cond_equals("Never", "1"),
                &[setvar("never", "Never", "2", "")],
            ),
            13 => secret_setvar(&format!("secret {i}"), "Pw", &format!("S3cret-{i}!")),
            _ => setvar(
                &format!("set {i}"),
                &format!("V{}", i % 37),
                &format!("value {i} %_SMSTSLastActionRetCode%"),
                "",
            ),
        });
    }
    items.push(setvar("last", "Last", "yes", ""));
    seq(&items)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn records_len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join(RECORDS_FILE)).unwrap().len()
}

#[test]
fn a_journal_copied_mid_run_resumes_to_the_state_of_the_uninterrupted_run() {
    let n = 2000;
    let xml = sequence(n);
    let s = tasq_tasksequence::import_str(&xml).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let copy = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), MediaType::Boot, Shared::default());
    // The last step is the last instruction (no groups around it).
    let last = tasq_engine::runner::flatten(&s).len() - 1;
    cfg.sinks.push(Box::new(CopyAt {
        pointer: last,
        from: dir.path().to_path_buf(),
        to: copy.path().to_path_buf(),
    }));
    let mut e = Engine::start(&s, xml.as_bytes(), &[], cfg).unwrap();
    assert_eq!(
        e.run("Test", false).unwrap(),
        tasq_engine::RunOutcome::Succeeded
    );
    assert_eq!(e.state.results.len(), n);
    assert_eq!(e.env.get("Last"), Some("yes"));

    // The copy holds a snapshot and the steps since as records.
    assert!(
        records_len(copy.path()) > 100 * 200,
        "{} bytes of records",
        records_len(copy.path())
    );
    // The secret set by the steps is in neither file in the clear.
    for f in [JOURNAL_FILE, RECORDS_FILE] {
        let data = std::fs::read(copy.path().join(f)).unwrap();
        assert!(!contains(&data, b"S3cret-"), "{f} holds a secret");
    }
    let records = std::fs::read(copy.path().join(RECORDS_FILE)).unwrap();
    assert!(
        contains(&records, b"\"name\":\"Pw\""),
        "the records hold the secret's (sealed) changes"
    );
    let (mid, mid_env) = Journal::open(copy.path()).unwrap().load().unwrap();
    assert_eq!(mid.ip, last);
    assert_eq!(mid.results[..], e.state.results[..n - 1]);
    assert_eq!(mid_env.get("Last"), None);
    assert!(mid_env.get("Pw").is_some_and(|v| v.starts_with("S3cret-")));

    // Resumed, it runs the last step and ends where the run did.
    let (mut r, _) =
        Engine::resume(config(copy.path(), MediaType::Boot, Shared::default())).unwrap();
    assert_eq!(
        r.run("Test", true).unwrap(),
        tasq_engine::RunOutcome::Succeeded
    );
    assert_eq!(r.state, e.state);
    assert_eq!(r.env, e.env);
    // And the journal the run left says the same.
    let (st, env) = Journal::open(dir.path()).unwrap().load().unwrap();
    assert_eq!((st, env), (e.state.clone(), e.env.clone()));
}
