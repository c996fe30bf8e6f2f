//! Engine overhead per step: a 2,000-step sequence of Set Task Sequence
//! Variable and trivial Run Command Line (`true`) steps, journaled durably
//! after every step. Prints the median and 90th percentile of the time from
//! one step's start to the next's (which includes the journal write), per
//! step type, over all steps and over the first and the last 200 (a per-step
//! cost that grows with the run shows as a difference between those).
//!
//! A Run Command Line step spends most of its time starting `/bin/sh`; that
//! spawn alone (through the step's own `run_shell`, so pipes and waiter
//! threads included) is timed before and after the run, and the engine
//! overhead of a Run Command Line step is reported as its median time minus
//! the spawn's median. The process's CPU time (user + system, children
//! excluded) per step is printed too, as the machine may be loaded.
//!
//! Run: `cargo run --release -p tasq-engine --example bench_steps [STATE_DIR]`.

use std::sync::{Arc, Mutex};
use std::time::Instant;
use tasq_engine::events::{Event, EventSink};
use tasq_engine::platform::CommandRun;
use tasq_engine::runner::{DiskImageMachine, Engine, EngineConfig, MediaType};
use tasq_engine::steps::Registry;
use tasq_engine::Computer;

/// (wall clock, CPU time of the engine thread in ms, step type) at each step start.
type Marks = Arc<Mutex<Vec<(Instant, f64, String)>>>;

struct Timing(Marks);

/// CPU time of the calling thread, in milliseconds.
fn thread_cpu_ms() -> f64 {
    // SAFETY: clock_gettime only writes the struct we pass.
    let mut t: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) } != 0 {
        return f64::NAN;
    }
    t.tv_sec as f64 * 1000.0 + t.tv_nsec as f64 / 1e6
}

impl EventSink for Timing {
    fn event(&mut self, e: &Event) {
        let tag = match e {
            Event::StepStart { step_type, .. } => step_type.clone(),
            Event::Finished { .. } => "end".into(),
            _ => return,
        };
        if let Ok(mut v) = self.0.lock() {
            v.push((Instant::now(), thread_cpu_ms(), tag));
        }
    }
}

fn pct(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(((v.len() as f64 - 1.0) * p) as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

fn line(what: &str, v: &[f64]) -> String {
    format!(
        "{what}: median {:.3} ms, p90 {:.3} ms (n={})",
        pct(v, 0.5),
        pct(v, 0.9),
        v.len()
    )
}

/// User + system CPU seconds of this process (not its children).
fn cpu_self() -> f64 {
    // SAFETY: getrusage only writes the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage struct.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return f64::NAN;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Milliseconds per `/bin/sh -c true` started the way Run Command Line does.
fn spawn_times(n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            let out = tasq_engine::steps::general::run_shell(&CommandRun {
                command_line: "true",
                dir: None,
                timeout: None,
                env: &[],
            });
            assert!(matches!(out, Ok(ref o) if o.code == 0), "sh -c true failed");
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect()
}

fn main() {
    let n = 2000;
    let edge = 200;
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
    let mut spawn = spawn_times(100);
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
    let cpu0 = cpu_self();
    let t0 = Instant::now();
    let mut e = Engine::start(&seq, xml.as_bytes(), &[], cfg).expect("start");
    let o = e.run("Bench", false).expect("run");
    let total = t0.elapsed();
    let cpu = cpu_self() - cpu0;
    assert_eq!(o, tasq_engine::RunOutcome::Succeeded);
    spawn.extend(spawn_times(100));
    let v = times.lock().expect("times").clone();
    // (step index, milliseconds) per type, wall clock and engine thread CPU.
    let (mut set, mut cmd, mut set_cpu, mut cmd_cpu) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, w) in v.windows(2).enumerate() {
        let ms = (w[1].0 - w[0].0).as_secs_f64() * 1000.0;
        let cpu = w[1].1 - w[0].1;
        if w[0].2.ends_with("SetVariableAction") {
            set.push((i, ms));
            set_cpu.push((i, cpu));
        } else if w[0].2.ends_with("RunCommandLineAction") {
            cmd.push((i, ms));
            cmd_cpu.push((i, cpu));
        }
    }
    let part = |v: &[(usize, f64)], lo: usize, hi: usize| -> Vec<f64> {
        v.iter()
            .filter(|(i, _)| (lo..hi).contains(i))
            .map(|&(_, ms)| ms)
            .collect()
    };
    println!(
        "{n} steps in {:.2} s ({:.3} ms per step overall; engine process CPU {:.3} ms per step)",
        total.as_secs_f64(),
        total.as_secs_f64() * 1000.0 / n as f64,
        cpu * 1000.0 / n as f64
    );
    for (label, v) in [
        ("Set Task Sequence Variable (engine + journal)", &set),
        ("Run Command Line `true` (engine + journal + /bin/sh)", &cmd),
        (
            "Set Task Sequence Variable, engine thread CPU time",
            &set_cpu,
        ),
        (
            "Run Command Line `true`, engine thread CPU time (spawn included)",
            &cmd_cpu,
        ),
    ] {
        println!("{label}");
        println!("  {}", line("all steps      ", &part(v, 0, n)));
        println!("  {}", line("first 200 steps", &part(v, 0, edge)));
        println!("  {}", line("last 200 steps ", &part(v, n - edge, n)));
    }
    let sp = pct(&spawn, 0.5);
    println!(
        "{}",
        line(
            "run_shell(\"true\") alone (spawn of /bin/sh -c true)",
            &spawn
        )
    );
    let cmd_all = part(&cmd, 0, n);
    println!(
        "Run Command Line engine overhead (step median - spawn median): {:.3} ms (first 200: {:.3}, last 200: {:.3})",
        pct(&cmd_all, 0.5) - sp,
        pct(&part(&cmd, 0, edge), 0.5) - sp,
        pct(&part(&cmd, n - edge, n), 0.5) - sp,
    );
    let _ = std::fs::remove_dir_all(&state);
}
