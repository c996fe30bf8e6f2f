//! The general steps: Run Command Line, Set Task Sequence Variable,
//! Restart Computer.

use super::{Registry, StepAction, StepContext, StepError, StepOutcome};
use crate::events::Level;
use crate::platform::{CommandRun, PlatformError, ProcessOutput};
use crate::runner::{RestartTarget, E_FAIL};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use tasq_tasksequence::steps as types;

pub fn register(r: &mut Registry) {
    r.register(types::RUN_COMMAND_LINE, Box::new(RunCommandLine));
    r.register(types::SET_VARIABLE, Box::new(SetVariable));
    r.register(types::RESTART, Box::new(RestartComputer));
}

/// Set Task Sequence Variable.
pub struct SetVariable;

impl StepAction for SetVariable {
    fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError> {
        let step = ctx.step;
        let name = step.var("VariableName").unwrap_or("").trim().to_string();
        tasq_tasksequence::variables::check_settable(&name).map_err(|e| {
            StepError::new(
                crate::runner::E_FAIL,
                format!("Set Task Sequence Variable: {e}"),
            )
        })?;
        let value = ctx.env.expand(step.var("VariableValue").unwrap_or(""));
        let hidden = step
            .var("DoNotShowVariableValue")
            .and_then(tasq_tasksequence::model::parse_bool)
            .unwrap_or(false);
        ctx.env.set_with(&name, &value, hidden);
        ctx.log(
            Level::Info,
            format!("Set variable {name} (value hidden: {hidden})"),
        );
        Ok(StepOutcome::code(0))
    }
}

/// Restart Computer: to the boot environment (`WinPE`) or the installed OS (`HD`).
pub struct RestartComputer;

impl StepAction for RestartComputer {
    fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError> {
        let raw = ctx.param("SMSRebootTarget").unwrap_or_else(|| "HD".into());
        let target = RestartTarget::parse(&raw).ok_or_else(|| {
            StepError::new(
                crate::runner::E_FAIL,
                format!("unknown restart target {raw:?}"),
            )
        })?;
        Ok(StepOutcome {
            exit_code: 0,
            restart: Some((target, false)),
        })
    }
}

/// ConfigMgr keeps at most this much of the output in the output variable.
const OUTPUT_VAR_MAX: usize = 1000;
/// Output kept for the log.
const OUTPUT_LOG_MAX: usize = 64 * 1024;

/// Run Command Line: `/bin/sh -c` after `%VAR%` expansion.
pub struct RunCommandLine;

impl StepAction for RunCommandLine {
    fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError> {
        let fail = |m: String| StepError::new(E_FAIL, m);
        let cmdline = ctx
            .step
            .var("CommandLine")
            .map(|c| ctx.env.expand(c))
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| {
                fail(format!(
                    "the step \"{}\" has no command line",
                    ctx.step.name
                ))
            })?;
        let mut dir = None;
        if let Some(pkg) = ctx.param("PackageID") {
            let lib = ctx.content.ok_or_else(|| {
                fail(format!("package {pkg} needed but no content library given"))
            })?;
            dir = Some(
                lib.content_dir(&pkg)
                    .map_err(|e| fail(format!("package {pkg}: {e}")))?,
            );
        }
        if let Some(wd) = ctx.param("WorkingDirectory") {
            let p = PathBuf::from(&wd);
            dir = Some(match dir {
                Some(base) if p.is_relative() => base.join(p),
                _ => p,
            });
        }
        let quiet = ctx
            .env
            .get("OSDDoNotLogCommand")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        ctx.log(
            Level::Info,
            if quiet {
                "Command line for extension .exe is \"(hidden by OSDDoNotLogCommand)\"".to_string()
            } else {
                format!("Executing command line: {cmdline}")
            },
        );
        let out = run_shell(&CommandRun {
            command_line: &cmdline,
            dir: dir.as_deref(),
            timeout: ctx.timeout,
            env: &[],
        })
        .map_err(|e| match e {
            PlatformError::TimedOut { .. } => StepError::new(E_TIMEOUT, e.to_string()),
            other => fail(other.to_string()),
        })?;
        let text = log_output(ctx, &out);
        if let Some(var) = ctx.param("SMSTSRunCommandLineOutputVariableName") {
            let chars: Vec<char> = text.chars().collect();
            let keep: String = chars[chars.len().saturating_sub(OUTPUT_VAR_MAX)..]
                .iter()
                .collect();
            tasq_tasksequence::variables::check_settable(&var)
                .map_err(|e| fail(format!("output variable: {e}")))?;
            ctx.env.set(&var, &keep);
        }
        Ok(StepOutcome::code(out.code))
    }
}

/// Puts a process's stdout and stderr into the log as command output;
/// returns stdout as text.
pub fn log_output(ctx: &mut StepContext, out: &ProcessOutput) -> String {
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !text.is_empty() {
        ctx.messages.push((None, text.clone()));
    }
    if !out.stderr.is_empty() {
        ctx.messages
            .push((None, String::from_utf8_lossy(&out.stderr).to_string()));
    }
    text
}

/// ERROR_TIMEOUT as an HRESULT: the code of a step whose command timed out.
pub const E_TIMEOUT: i64 = 0x8007_05B4;

/// Runs `command_line` through `/bin/sh -c` in its own process group, so a
/// timeout kills the whole command tree; keeps the last `OUTPUT_LOG_MAX`
/// bytes of stdout and stderr. Shared by Run Command Line and the Linux
/// platform layer (installers, updates).
pub fn run_shell(run: &CommandRun) -> Result<ProcessOutput, PlatformError> {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(run.command_line);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(d) = run.dir {
        cmd.current_dir(d);
    }
    for (k, v) in run.env {
        cmd.env(k, v);
    }
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().map_err(|e| PlatformError::Io {
        what: "starting /bin/sh".into(),
        source: e,
    })?;
    let out = child.stdout.take().map(reader);
    let err = child.stderr.take().map(reader);
    // A thread waits for the child so the caller wakes the moment it ends;
    // the timeout is a receive deadline.
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let vanished = || PlatformError::Failed("the command's waiter vanished".into());
    let waited = match run.timeout {
        None => rx.recv().map_err(|_| vanished())?,
        Some(t) => match rx.recv_timeout(t) {
            Ok(r) => r,
            Err(_) => {
                // SAFETY: killpg only sends a signal; the group id is our child's pid.
                unsafe {
                    libc::killpg(pid as libc::pid_t, libc::SIGKILL);
                }
                let _ = rx.recv();
                return Err(PlatformError::TimedOut { secs: t.as_secs() });
            }
        },
    };
    let status = waited.map_err(|e| PlatformError::Io {
        what: "waiting for the command".into(),
        source: e,
    })?;
    let stdout = out.and_then(|h| h.join().ok()).unwrap_or_default();
    let stderr = err.and_then(|h| h.join().ok()).unwrap_or_default();
    match status.code() {
        Some(c) => Ok(ProcessOutput {
            code: i64::from(c),
            stdout,
            stderr,
        }),
        None => {
            use std::os::unix::process::ExitStatusExt;
            Err(PlatformError::Signal(status.signal().unwrap_or(0)))
        }
    }
}

/// Reads a pipe to the end on its own thread, keeping the last `OUTPUT_LOG_MAX` bytes.
fn reader<R: Read + Send + 'static>(mut r: R) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut keep = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    keep.extend_from_slice(buf.get(..n).unwrap_or(&[]));
                    if keep.len() > OUTPUT_LOG_MAX * 2 {
                        keep.drain(..keep.len() - OUTPUT_LOG_MAX);
                    }
                }
            }
        }
        if keep.len() > OUTPUT_LOG_MAX {
            keep.drain(..keep.len() - OUTPUT_LOG_MAX);
        }
        keep
    })
}
