//! Engine overhead per step: a 2,000-step sequence of Set Task Sequence
//! Variable and trivial Run Command Line (`true`) steps, journaled durably
//! after every step. Prints the median and 90th percentile of the time from
//! one step's start to the next's (which includes the journal write), per
//! step type. Run: `cargo run --release -p tasq-engine --example bench_steps [STATE_DIR]`.

use std::sync::{Arc, Mutex};
use std::time::Instant;
use tasq_engine::events::{Event, EventSink};
use tasq_engine::runner::{DiskImageMachine, Engine, EngineConfig, MediaType};
use tasq_engine::steps::Registry;
use tasq_engine::Computer;

struct Timing(Arc<Mutex<Vec<(Instant, String)>>>);

impl EventSink for Timing {
    fn event(&mut self, e: &Event) {
        let tag = match e {
            Event::StepStart { step_type, .. } => step_type.clone(),
            Event::Finished { .. } => "end".into(),
            _ => return,
        };
        if let Ok(mut v) = self.0.lock() {
            v.push((Instant::now(), tag));
        }
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(((v.len() as f64 - 1.0) * p) as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

fn main() {
    let n = 2000;
    let mut items = String::new();
    for i in 0..n {
        if i % 2 == 0 {
            items.push_str(&format!(
                "<step type=\"SMS_TaskSequence_SetVariableAction\" name=\"set {i}\"><defaultVarList><variable name=\"VariableName\" property=\"VariableName\" hidden=\"true\">V{}</variable><variable name=\"VariableValue\" property=\"VariableValue\" hidden=\"true\">value {i}</variable></defaultVarList></step>",
                i % 50
            ));
        } else {
            items.push_str(&format!(
                "<step type=\"SMS_TaskSequence_RunCommandLineAction\" name=\"cmd {i}\"><defaultVarList><variable name=\"CommandLine\" property=\"CommandLine\" hidden=\"true\">true</variable></defaultVarList></step>"
            ));
        }
    }
    let xml = format!(
        "<sequence version=\"3.10\" name=\"Bench\"><group name=\"All\">{items}</group></sequence>"
    );
    let seq = tasq_tasksequence::import_str(&xml).expect("sequence");
    let tmp;
    let state = match std::env::args().nth(1) {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            tmp = std::env::temp_dir().join(format!("tasq-bench-{}", std::process::id()));
            tmp
        }
    };
    let times = Arc::new(Mutex::new(Vec::new()));
    let cfg = EngineConfig {
        computer: Computer::from_toml("name = \"BENCH\"", std::path::Path::new("bench"))
            .expect("computer"),
        state_dir: state.clone(),
        media: MediaType::Boot,
        registry: Registry::general(),
        machine: Box::new(DiskImageMachine {
            computer_file: "bench.toml".into(),
        }),
        content: None,
        sinks: vec![
            Box::new(Timing(times.clone())),
            Box::new(tasq_engine::log::LogSink::new(&state.join("logs"), 1 << 20)),
        ],
        package_id: "TSQ00000".into(),
    };
    let t0 = Instant::now();
    let mut e = Engine::start(&seq, xml.as_bytes(), &[], cfg).expect("start");
    let o = e.run("Bench", false).expect("run");
    let total = t0.elapsed();
    assert_eq!(o, tasq_engine::RunOutcome::Succeeded);
    let v = times.lock().expect("times").clone();
    let mut set = Vec::new();
    let mut cmd = Vec::new();
    for w in v.windows(2) {
        let ms = (w[1].0 - w[0].0).as_secs_f64() * 1000.0;
        if w[0].1.ends_with("SetVariableAction") {
            set.push(ms);
        } else if w[0].1.ends_with("RunCommandLineAction") {
            cmd.push(ms);
        }
    }
    println!(
        "{n} steps in {:.2} s ({:.3} ms per step overall)",
        total.as_secs_f64(),
        total.as_secs_f64() * 1000.0 / n as f64
    );
    println!(
        "Set Task Sequence Variable: median {:.3} ms, p90 {:.3} ms per step (engine + journal)",
        pct(&mut set, 0.5),
        pct(&mut set, 0.9)
    );
    println!("Run Command Line `true`:    median {:.3} ms, p90 {:.3} ms per step (engine + journal + /bin/sh)", pct(&mut cmd, 0.5), pct(&mut cmd, 0.9));
    let _ = std::fs::remove_dir_all(&state);
}
