//! Crash safety: the engine is run as a child process (this test binary in
//! child mode), killed with SIGKILL at every step boundary and inside a long
//! step, then resumed until it finishes; the final variables and the record
//! of steps must equal those of an uninterrupted run.
mod common;
use common::*;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use tasq_engine::events::JsonLines;
use tasq_engine::runner::{DiskImageMachine, Engine, EngineConfig, MediaType};
use tasq_engine::steps::Registry;

/// Final variables and the record of steps.
type Final = (BTreeMap<String, String>, Vec<(usize, String, String)>);

fn sequence() -> String {
    seq(&[
        setvar("set A", "A", "1", ""),
        cmd_vars(
            "echo A",
            "echo a%A%",
            "",
            &[("SMSTSRunCommandLineOutputVariableName", "OUT1")],
        ),
        setvar("set B", "B", "%OUT1%x", ""),
        cmd_vars(
            "long",
            "sleep 0.6; echo long",
            "",
            &[("SMSTSRunCommandLineOutputVariableName", "LONG")],
        ),
        group(
            "g",
            "continueOnError=\"true\"",
            &[cmd("fail", "exit 3", ""), setvar("never", "C", "1", "")],
        ),
        setvar(
            "set D",
            "D",
            "%_SMSTSLastActionSucceeded%-%_SMSTSLastActionRetCode%",
            "",
        ),
        secret_setvar("secret", "Pw", "S3cr3t-Crash!"),
        restart("reboot pe", "WinPE"),
        cmd_vars(
            "last",
            "echo done",
            "",
            &[("SMSTSRunCommandLineOutputVariableName", "LAST")],
        ),
    ])
}

fn child_config(state: &Path) -> EngineConfig {
    EngineConfig {
        computer: computer(),
        state_dir: state.to_path_buf(),
        media: MediaType::Boot,
        registry: Registry::general(),
        machine: Box::new(DiskImageMachine {
            computer_file: "c.toml".into(),
        }),
        content: None,
        sinks: vec![Box::new(JsonLines(std::io::stdout()))],
        package_id: "TSQ00000".into(),
    }
}

/// Child mode: runs (or resumes) the engine, events as JSON lines on stdout.
#[test]
#[ignore]
fn child_engine() {
    let Ok(state) = std::env::var("TASQ_CRASH_STATE") else {
        return;
    };
    let state = Path::new(&state);
    if std::env::var("TASQ_CRASH_RESUME").is_ok() {
        let (mut e, _) = Engine::resume(child_config(state)).unwrap();
        e.run("Test", true).unwrap();
    } else {
        let xml = sequence();
        let s = tasq_tasksequence::import_str(&xml).unwrap();
        let mut e = Engine::start(&s, xml.as_bytes(), &[], child_config(state)).unwrap();
        e.run("Test", false).unwrap();
    }
}

enum Kill {
    Never,
    /// After the n-th step_succeeded/step_failed event.
    AfterStep(usize),
    /// This long after the named step started.
    Inside(&'static str, u64),
}

/// Runs the child; returns true when it finished (saw the "finished" event).
fn spawn(state: &Path, resume: bool, kill: &Kill) -> bool {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        "child_engine",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("TASQ_CRASH_STATE", state)
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    if resume {
        c.env("TASQ_CRASH_RESUME", "1");
    }
    let mut child = c.spawn().unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut ends = 0;
    let mut finished = false;
    for line in out.lines() {
        let line = line.unwrap();
        if !line.starts_with('{') {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let ev = v["event"].as_str().unwrap_or("").to_string();
        if ev == "finished" {
            finished = true;
        }
        let kill_now = match kill {
            Kill::Never => false,
            Kill::AfterStep(n) => {
                if ev == "step_succeeded" || ev == "step_failed" {
                    ends += 1;
                }
                ends == *n && (ev == "step_succeeded" || ev == "step_failed")
            }
            Kill::Inside(name, ms) => {
                if ev == "step_start" && v["name"] == *name {
                    std::thread::sleep(std::time::Duration::from_millis(*ms));
                    true
                } else {
                    false
                }
            }
        };
        if kill_now {
            // SAFETY: SIGKILL to our own child process.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGKILL);
            }
            let _ = child.wait();
            return false;
        }
    }
    let _ = child.wait();
    finished
}

fn final_state(state: &Path) -> Final {
    let j = tasq_engine::journal::Journal::open(state).unwrap();
    let (st, env) = j.load().unwrap();
    let mut vars = env.to_map();
    vars.remove("_SMSTSLogPath");
    let rec = st
        .results
        .iter()
        .map(|r| (r.pointer, r.name.clone(), r.outcome.clone()))
        .collect();
    (vars, rec)
}

fn run_with_kill(kill: Kill) -> Final {
    let dir = tempfile::tempdir().unwrap();
    let mut done = spawn(dir.path(), false, &kill);
    if !matches!(kill, Kill::Never) {
        assert!(!done, "the child must have been killed before it finished");
    }
    let mut rounds = 0;
    while !done {
        rounds += 1;
        assert!(rounds < 5, "resume does not finish");
        done = spawn(dir.path(), true, &Kill::Never);
    }
    final_state(dir.path())
}

#[test]
fn sigkill_at_every_step_boundary_and_inside_a_long_step_then_resume() {
    let reference = run_with_kill(Kill::Never);
    assert_eq!(reference.0.get("B").map(String::as_str), Some("a1\nx"));
    assert_eq!(reference.0.get("D").map(String::as_str), Some("false-3"));
    assert_eq!(
        reference.0.get("Pw").map(String::as_str),
        Some("S3cr3t-Crash!")
    );
    assert_eq!(reference.0.get("LAST").map(|s| s.trim()), Some("done"));
    assert!(!reference.0.contains_key("C"));
    let steps = reference.1.len();
    assert_eq!(steps, 9);
    for n in 1..=steps {
        let got = run_with_kill(Kill::AfterStep(n));
        assert_eq!(got, reference, "killed after step end {n}");
    }
    for ms in [50, 300] {
        let got = run_with_kill(Kill::Inside("long", ms));
        assert_eq!(got, reference, "killed {ms} ms into the long step");
    }
}
