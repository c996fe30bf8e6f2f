//! The runner: ConfigMgr's execution semantics over a flattened instruction list.
//!
//! The tree is flattened as ConfigMgr does (its log's "Pointer" is the index):
//! a group becomes a start and an end instruction around its children. Rules:
//! - instructions run in order; a disabled group or step is skipped, so is one
//!   whose condition is false; a skipped group is skipped as a whole;
//! - a step succeeds when its exit code is in its success codes; a failed step
//!   with `continueOnError` lets the next instruction run; otherwise the failure
//!   goes to the enclosing group: a group with `continueOnError` skips the rest
//!   of itself and execution goes on after it, a group without it fails and
//!   passes the failure up; at the top the sequence fails;
//! - `_SMSTSLastActionSucceeded`/`RetCode`/`Name` change only when a step runs;
//! - a step whose `runIn` excludes the current phase fails;
//! - restarts go through the `Machine`; the state is journaled after every
//!   executed step (a record appended to the journal; a full snapshot at
//!   start, resume, restart and end, see `journal`), so `resume` continues after a restart (next step, or the
//!   same one when `SMSTSRetryRequested` was set) or a crash (the interrupted
//!   step again; steps with `retryCount` N are re-run at most N times after an
//!   unexpected restart, then fail).

use crate::computer::{Computer, Firmware};
use crate::content::ContentLibrary;
use crate::env::{EngineTarget, Environment};
use crate::events::{mask, Event, EventSink, Level};
use crate::journal::{Journal, JournalError, StepRecord};
use crate::steps::{Registry, StepContext, StepError};
use crate::volumes::Drives;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tasq_tasksequence::condition::Condition;
use tasq_tasksequence::model::{Item, Sequence, Step};
use tasq_tasksequence::steps as types;

/// E_FAIL, the code ConfigMgr reports for a step that failed without an exit code.
pub const E_FAIL: i64 = 0x8000_4005;

/// Exit codes of `tasq run`.
pub mod exit {
    pub const SUCCESS: i32 = 0;
    pub const FAILED: i32 = 1;
    /// The run stopped for a restart into the installed OS; resume after it boots.
    pub const RESTART_INTO_OS: i32 = 3;
    /// The run did not start (content missing, bad input).
    pub const NOT_STARTED: i32 = 4;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The boot environment (WinPE in ConfigMgr; tasq itself here).
    Pe,
    FullOs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaType {
    Boot,
    Full,
    Pxe,
    Oem,
    /// Started from the running OS (a deployment), not from media.
    None,
}

impl MediaType {
    pub fn parse(s: &str) -> Option<MediaType> {
        Some(match s.to_ascii_lowercase().as_str() {
            "boot" => MediaType::Boot,
            "full" => MediaType::Full,
            "pxe" => MediaType::Pxe,
            "oem" => MediaType::Oem,
            "none" => MediaType::None,
            _ => return None,
        })
    }
    /// `_SMSTSMediaType` value; unset when not started from media.
    fn variable(self) -> Option<&'static str> {
        match self {
            MediaType::Boot => Some("BootMedia"),
            MediaType::Full => Some("FullMedia"),
            MediaType::Pxe => Some("PXE"),
            MediaType::Oem => Some("OEMMedia"),
            MediaType::None => None,
        }
    }
    fn launch_mode(self) -> &'static str {
        match self {
            MediaType::Boot | MediaType::Full => "CD",
            MediaType::Pxe => "PXE",
            MediaType::Oem => "HD",
            MediaType::None => "SMS",
        }
    }
    fn phase(self) -> Phase {
        if self == MediaType::None {
            Phase::FullOs
        } else {
            Phase::Pe
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartTarget {
    /// `WinPE`: the boot environment.
    BootEnvironment,
    /// `HD`: the installed operating system.
    InstalledOs,
}

impl RestartTarget {
    pub fn parse(s: &str) -> Option<RestartTarget> {
        match s.trim().to_ascii_lowercase().as_str() {
            "winpe" => Some(RestartTarget::BootEnvironment),
            "hd" => Some(RestartTarget::InstalledOs),
            _ => None,
        }
    }
    fn label(self) -> &'static str {
        match self {
            RestartTarget::BootEnvironment => "WinPE",
            RestartTarget::InstalledOs => "HD",
        }
    }
}

pub enum RestartDisposition {
    /// The engine goes on in this process (tasq is the boot environment).
    Continue,
    /// The run ends; `message` says what must boot and how to resume.
    EndRun { message: String },
}

/// The machine driver: what a restart means for this computer.
pub trait Machine {
    fn restart(&mut self, target: RestartTarget, computer: &Computer) -> RestartDisposition;
}

/// A computer made of disk images: restarting into the boot environment is
/// a no-op (tasq is the boot environment), restarting into the installed OS
/// hands over to whatever boots disk 0.
pub struct DiskImageMachine {
    pub computer_file: PathBuf,
}

impl Machine for DiskImageMachine {
    fn restart(&mut self, target: RestartTarget, computer: &Computer) -> RestartDisposition {
        match target {
            RestartTarget::BootEnvironment => RestartDisposition::Continue,
            RestartTarget::InstalledOs => {
                let what = match computer.disks.first() {
                    Some(d) => format!("{} (disk 0 of {})", d.path.display(), computer.name),
                    None => format!("the installed operating system of {}", computer.name),
                };
                RestartDisposition::EndRun {
                    message: format!(
                        "the sequence restarts into the installed operating system: boot {what} in a virtual machine or on the computer, then run `tasq run --resume --computer {}` there to continue",
                        self.computer_file.display()
                    ),
                }
            }
        }
    }
}

/// One entry of the flattened sequence.
#[derive(Debug, Clone)]
pub enum Instr {
    GroupStart {
        name: String,
        end: usize,
        disabled: bool,
        continue_on_error: bool,
        condition: Option<Condition>,
    },
    GroupEnd {
        start: usize,
    },
    Step(Box<Step>),
}

pub fn flatten(seq: &Sequence) -> Vec<Instr> {
    fn go(items: &[Item], out: &mut Vec<Instr>) {
        for it in items {
            match it {
                Item::Step(s) => out.push(Instr::Step(Box::new(s.clone()))),
                Item::Group(g) => {
                    let start = out.len();
                    out.push(Instr::GroupStart {
                        name: g.name.clone(),
                        end: 0,
                        disabled: g.is_disabled(),
                        continue_on_error: g.continues_on_error(),
                        condition: g.condition.clone(),
                    });
                    go(&g.items, out);
                    let end = out.len();
                    out.push(Instr::GroupEnd { start });
                    if let Some(Instr::GroupStart { end: e, .. }) = out.get_mut(start) {
                        *e = end;
                    }
                }
                Item::Unknown(_) => {}
            }
        }
    }
    let mut out = Vec::new();
    go(&seq.items, &mut out);
    out
}

/// `_SMSTSType`: 2 for an operating system deployment (a sequence with
/// any OSD step), 1 for a generic one.
fn sequence_type(instrs: &[Instr]) -> &'static str {
    const OSD: [&str; 10] = [
        types::PARTITION_DISK,
        types::APPLY_OS,
        types::APPLY_WINDOWS_SETTINGS,
        types::APPLY_NETWORK_SETTINGS,
        types::AUTO_APPLY_DRIVERS,
        types::APPLY_DRIVER_PACKAGE,
        types::SETUP_WINDOWS,
        types::PREPARE_CLIENT,
        types::PREPARE_OS,
        types::CAPTURE_OS,
    ];
    let osd = instrs.iter().any(|i| match i {
        Instr::Step(s) => OSD.iter().any(|t| t.eq_ignore_ascii_case(s.type_name())),
        _ => false,
    });
    if osd {
        "2"
    } else {
        "1"
    }
}

/// How the run ended (or paused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    Succeeded,
    Failed { step: String, exit_code: i64 },
    RestartRequired { message: String },
}

impl RunOutcome {
    pub fn exit_code(&self) -> i32 {
        match self {
            RunOutcome::Succeeded => exit::SUCCESS,
            RunOutcome::Failed { .. } => exit::FAILED,
            RunOutcome::RestartRequired { .. } => exit::RESTART_INTO_OS,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("{0}")]
    Setup(String),
}

/// Everything the engine needs besides the sequence.
pub struct EngineConfig {
    pub computer: Computer,
    pub state_dir: PathBuf,
    pub media: MediaType,
    pub registry: Registry,
    pub machine: Box<dyn Machine>,
    pub content: Option<Box<dyn ContentLibrary>>,
    pub sinks: Vec<Box<dyn EventSink>>,
    /// `_SMSTSPackageID`.
    pub package_id: String,
}

/// The persistent part of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    pub ip: usize,
    pub groups: Vec<usize>,
    pub phase: Phase,
    pub media: MediaType,
    pub reboot_count: u32,
    pub status: Status,
    pub results: Vec<StepRecord>,
    /// Pointer of the step last started with a retry count, and how often it was started.
    pub attempts: Option<(usize, u32)>,
    /// Drive letters assigned so far (by disk steps, or found on the disks).
    #[serde(default)]
    pub drives: Drives,
}

impl RunState {
    /// A run about to execute its first step, started from `media`.
    pub fn start(media: MediaType) -> RunState {
        RunState {
            ip: 0,
            groups: Vec::new(),
            phase: media.phase(),
            media,
            reboot_count: 0,
            status: Status::Running,
            results: Vec::new(),
            attempts: None,
            drives: Drives::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "status")]
pub enum Status {
    Running,
    Restarting { target: RestartTarget },
    Succeeded,
    Failed { step: String, exit_code: i64 },
}

pub struct Engine {
    pub instrs: Vec<Instr>,
    pub state: RunState,
    pub env: Environment,
    cfg: EngineConfig,
    journal: Journal,
    inventory: tasq_tasksequence::wql::Inventory,
    step_total: usize,
    step_ordinal: Vec<usize>,
}

enum Flow {
    Next,
    Done(RunOutcome),
}

impl Engine {
    /// A new run. `vars` are collection/computer variables (name, value, secret).
    pub fn start(
        seq: &Sequence,
        sequence_bytes: &[u8],
        vars: &[(String, String, bool)],
        cfg: EngineConfig,
    ) -> Result<Engine, EngineError> {
        let journal = Journal::create(&cfg.state_dir)?;
        journal.save_sequence(sequence_bytes)?;
        let mut env = Environment::new();
        for (n, v, s) in vars {
            env.set_with(n, v, *s);
        }
        // Global variables (the sequence's defaults) only where not set.
        for g in seq.global_variables.iter().flatten() {
            if !env.is_set(&g.name) {
                env.set_with(
                    &g.name,
                    &g.value,
                    tasq_tasksequence::secrets::is_secret(&g.name, g.property.as_deref()),
                );
            }
        }
        let state = RunState::start(cfg.media);
        let mut e = Engine::assemble(seq, state, env, cfg, journal);
        e.set_builtins(seq);
        e.journal.snapshot(&e.state, &e.env)?;
        Ok(e)
    }

    /// Continues a journaled run.
    pub fn resume(cfg: EngineConfig) -> Result<(Engine, Sequence), EngineError> {
        let journal = Journal::open(&cfg.state_dir)?;
        let bytes = journal.load_sequence()?;
        let text = tasq_tasksequence::xml::decode_bytes(&bytes)
            .map_err(|e| EngineError::Setup(format!("journaled sequence: {e}")))?;
        let seq = tasq_tasksequence::import_str(&text)
            .map_err(|e| EngineError::Setup(format!("journaled sequence: {e}")))?;
        let (mut state, env) = journal.load()?;
        if let Status::Restarting { target } = state.status {
            state.phase = match target {
                RestartTarget::BootEnvironment => Phase::Pe,
                RestartTarget::InstalledOs => Phase::FullOs,
            };
            state.status = Status::Running;
        }
        let mut e = Engine::assemble(&seq, state, env, cfg, journal);
        e.set_phase_vars();
        // A new snapshot and record file: appends must not follow a torn
        // record left by a crash.
        e.journal.snapshot(&e.state, &e.env)?;
        Ok((e, seq))
    }

    fn assemble(
        seq: &Sequence,
        state: RunState,
        env: Environment,
        cfg: EngineConfig,
        journal: Journal,
    ) -> Engine {
        let instrs = flatten(seq);
        let mut n = 0;
        let step_ordinal = instrs
            .iter()
            .map(|i| {
                if matches!(i, Instr::Step(_)) {
                    n += 1;
                }
                n
            })
            .collect();
        let inventory = cfg.computer.inventory();
        Engine {
            instrs,
            state,
            env,
            journal,
            inventory,
            step_total: n,
            step_ordinal,
            cfg,
        }
    }

    fn set_builtins(&mut self, seq: &Sequence) {
        let c = &self.cfg.computer;
        let pairs: Vec<(&str, String)> = vec![
            ("_SMSTSMake", c.make.clone()),
            ("_SMSTSModel", c.model.clone()),
            ("_SMSTSSerialNumber", c.serial.clone()),
            ("_SMSTSUUID", c.uuid.clone()),
            ("_SMSTSMacAddresses", c.mac_addresses.join(",")),
            ("_SMSTSMachineName", c.name.clone()),
            ("_SMSTSBootUEFI", (c.firmware == Firmware::Uefi).to_string()),
            ("_SMSTSPackageID", self.cfg.package_id.clone()),
            ("_SMSTSPackageName", seq.name.clone().unwrap_or_default()),
            ("_SMSTSLaunchMode", self.cfg.media.launch_mode().into()),
            (
                "_SMSTSMediaType",
                self.cfg.media.variable().unwrap_or("").into(),
            ),
            (
                "_SMSTSLogPath",
                self.journal.log_dir().display().to_string(),
            ),
            ("_SMSTSInstructionTableSize", self.instrs.len().to_string()),
            ("_SMSTSType", sequence_type(&self.instrs).into()),
        ];
        for (n, v) in pairs {
            self.env.set(n, &v);
        }
        self.set_phase_vars();
    }

    fn set_phase_vars(&mut self) {
        self.env.set(
            "_SMSTSInWinPE",
            if self.state.phase == Phase::Pe {
                "true"
            } else {
                "false"
            },
        );
        self.env.set(
            "_SMSTSBootUEFI",
            if self.cfg.computer.firmware == Firmware::Uefi {
                "true"
            } else {
                "false"
            },
        );
    }

    pub fn log_dir(&self) -> PathBuf {
        self.journal.log_dir()
    }

    fn emit(&mut self, e: Event) {
        for s in &mut self.cfg.sinks {
            s.event(&e);
        }
    }

    fn message(&mut self, level: Level, text: String) {
        let text = mask(&text, &self.env.secret_values());
        self.emit(Event::Message { level, text });
    }

    /// Runs until the sequence ends or a restart hands over.
    pub fn run(&mut self, seq_name: &str, resumed: bool) -> Result<RunOutcome, EngineError> {
        let steps = self.step_total;
        self.emit(Event::Start {
            package_id: self.cfg.package_id.clone(),
            name: seq_name.to_string(),
            instructions: self.instrs.len(),
            steps,
            resumed,
        });
        match self.state.status.clone() {
            Status::Succeeded => return Ok(RunOutcome::Succeeded),
            Status::Failed { step, exit_code } => {
                return Ok(RunOutcome::Failed { step, exit_code })
            }
            _ => {}
        }
        if self.state.drives.is_empty() && !self.cfg.computer.disks.is_empty() {
            self.discover_drives()?;
        }
        self.set_client_cache();
        loop {
            match self.tick()? {
                Flow::Next => {}
                Flow::Done(o) => {
                    let (result, code) = match &o {
                        RunOutcome::Succeeded => ("success", exit::SUCCESS),
                        RunOutcome::Failed { .. } => ("failure", exit::FAILED),
                        RunOutcome::RestartRequired { .. } => ("restart", exit::RESTART_INTO_OS),
                    };
                    self.emit(Event::Finished {
                        result: result.into(),
                        exit_code: code,
                    });
                    self.copy_state_to_volume();
                    return Ok(o);
                }
            }
        }
    }

    /// `_SMSTSClientCache`: set (to the client's cache folder) only in the
    /// installed OS when the client is installed there, i.e. when C: holds
    /// the client identity that Setup Windows and ConfigMgr writes. The
    /// wizard's partition steps run only when it does not exist.
    fn set_client_cache(&mut self) {
        let installed = self.state.phase == Phase::FullOs
            && self.state.drives.get(&'C').is_some_and(|v| {
                let Ok(p) = tasq_volume::VolPath::parse("Windows\\CCM\\tasq-client.json") else {
                    return false;
                };
                v.open(&self.cfg.computer, false)
                    .ok()
                    .and_then(|mut fs| fs.metadata(&p).ok().flatten())
                    .is_some()
            });
        self.env.set(
            "_SMSTSClientCache",
            if installed {
                "C:\\Windows\\ccmcache"
            } else {
                ""
            },
        );
    }

    /// Letters for the volumes already on the computer's disks (a run that
    /// does not partition: capture only, or a resumed deployment).
    fn discover_drives(&mut self) -> Result<(), EngineError> {
        let (drives, problems) = crate::volumes::discover(&self.cfg.computer);
        for p in problems {
            self.message(Level::Warning, format!("volume discovery: {p}"));
        }
        for (l, v) in &drives {
            self.message(Level::Info, format!("Drive {l}: is {}", v.describe()));
        }
        self.state.drives = drives;
        self.journal.append(&self.state, &self.env)?;
        Ok(())
    }

    /// Copies the state folder (journal, key, logs) into `_SMSTSMDataPath`
    /// on its volume, as ConfigMgr keeps `_SMSTaskSequence` on the OS
    /// volume, so that the installed OS finds it after the restart. Done
    /// when the run stops (restart into the OS, failure, end), not after
    /// every step. A copy that fails is reported, not fatal: the state on
    /// the host stays the authoritative one.
    fn copy_state_to_volume(&mut self) {
        let Some(target) = self
            .env
            .get("_SMSTSMDataPath")
            .map(str::to_string)
            .filter(|p| crate::volumes::split_drive_path(p).is_some())
        else {
            return;
        };
        let r = (|| -> Result<tasq_volume::fs::CopyStats, String> {
            let (mut fs, path) =
                crate::volumes::open_drive(&self.state.drives, &self.cfg.computer, &target, true)?;
            let stats = tasq_volume::fs::copy_host_tree(fs.as_mut(), &self.cfg.state_dir, &path)
                .map_err(|e| e.to_string())?;
            fs.flush().map_err(|e| e.to_string())?;
            Ok(stats)
        })();
        match r {
            Ok(st) => self.message(
                Level::Info,
                format!(
                    "Copied the task sequence state ({} files, {} bytes) to {target}",
                    st.files, st.bytes
                ),
            ),
            Err(e) => self.message(
                Level::Warning,
                format!("could not copy the task sequence state to {target}: {e}"),
            ),
        }
    }

    fn evaluate(&self, cond: &Condition, name: &str) -> Result<bool, String> {
        let t = EngineTarget {
            env: &self.env,
            inventory: &self.inventory,
            drives: &self.state.drives,
            computer: Some(&self.cfg.computer),
        };
        tasq_tasksequence::eval::evaluate(cond, &t, name).map_err(|e| e.to_string())
    }

    fn tick(&mut self) -> Result<Flow, EngineError> {
        let ip = self.state.ip;
        let Some(instr) = self.instrs.get(ip).cloned() else {
            self.state.status = Status::Succeeded;
            self.journal.snapshot(&self.state, &self.env)?;
            return Ok(Flow::Done(RunOutcome::Succeeded));
        };
        match instr {
            Instr::GroupEnd { .. } => {
                self.state.groups.pop();
                self.state.ip += 1;
                Ok(Flow::Next)
            }
            Instr::GroupStart {
                name,
                end,
                disabled,
                condition,
                ..
            } => {
                let verdict = if disabled {
                    Err("disabled".to_string())
                } else if let Some(c) = &condition {
                    match self.evaluate(c, &name) {
                        Ok(true) => Ok(()),
                        Ok(false) => Err("condition is false".to_string()),
                        Err(e) => {
                            // A condition that cannot be evaluated fails the group.
                            self.message(Level::Error, e);
                            self.state.groups.push(ip);
                            return self.propagate(&name, E_FAIL);
                        }
                    }
                } else {
                    Ok(())
                };
                match verdict {
                    Ok(()) => {
                        self.emit(Event::GroupStart { pointer: ip, name });
                        self.state.groups.push(ip);
                        self.state.ip += 1;
                    }
                    Err(reason) => {
                        self.record(ip, &name, "skipped", None);
                        self.emit(Event::GroupSkipped {
                            pointer: ip,
                            name,
                            reason,
                        });
                        self.state.ip = end + 1;
                    }
                }
                Ok(Flow::Next)
            }
            Instr::Step(step) => self.step(ip, &step),
        }
    }

    fn record(&mut self, pointer: usize, name: &str, outcome: &str, code: Option<i64>) {
        self.state.results.push(StepRecord {
            pointer,
            name: name.to_string(),
            outcome: outcome.to_string(),
            exit_code: code,
        });
    }

    fn group_name(&self, idx: usize) -> String {
        match self.instrs.get(idx) {
            Some(Instr::GroupStart { name, .. }) => name.clone(),
            _ => String::new(),
        }
    }

    fn step(&mut self, ip: usize, step: &Step) -> Result<Flow, EngineError> {
        let name = step.name.clone();
        if step.is_disabled() {
            self.record(ip, &name, "skipped", None);
            self.emit(Event::StepSkipped {
                pointer: ip,
                name,
                reason: "disabled".into(),
            });
            self.state.ip += 1;
            return Ok(Flow::Next);
        }
        if let Some(c) = &step.condition {
            match self.evaluate(c, &name) {
                Ok(true) => {}
                Ok(false) => {
                    self.record(ip, &name, "skipped", None);
                    self.emit(Event::StepSkipped {
                        pointer: ip,
                        name,
                        reason: "condition is false".into(),
                    });
                    self.state.ip += 1;
                    return Ok(Flow::Next);
                }
                Err(e) => {
                    self.env.set("_SMSTSCurrentActionName", &name);
                    return self.finish_step(ip, step, Err(StepError::new(E_FAIL, e)), None);
                }
            }
        }
        let group = self.state.groups.last().map(|&g| self.group_name(g));
        self.emit(Event::StepStart {
            pointer: ip,
            name: name.clone(),
            step_type: step.type_name().to_string(),
            n: self.step_ordinal.get(ip).copied().unwrap_or(0),
            of: self.step_total,
            group,
        });
        self.env.set("_SMSTSCurrentActionName", &name);

        // Retry after an unexpected restart: count starts durably before running.
        let retry = step.retry_count.as_ref().map(|r| r.value).unwrap_or(0);
        if retry > 0 {
            let n = match self.state.attempts {
                Some((p, n)) if p == ip => n + 1,
                _ => 1,
            };
            self.state.attempts = Some((ip, n));
            self.journal.append(&self.state, &self.env)?;
            if n > retry + 1 {
                let err = StepError::new(
                    E_FAIL,
                    format!("the computer restarted unexpectedly during the step {n} times (retry count {retry})"),
                );
                return self.finish_step(ip, step, Err(err), None);
            }
        }

        let run_in = step.run_in();
        let allowed = match (run_in, self.state.phase) {
            (None, _) => true,
            (Some(r), Phase::Pe) => r.allows_winpe(),
            (Some(r), Phase::FullOs) => r.allows_full_os(),
        };
        let started = Instant::now();
        let result = if !allowed {
            Err(StepError::new(
                E_FAIL,
                format!(
                    "the step \"{name}\" cannot run in {} (runIn {})",
                    match self.state.phase {
                        Phase::Pe => "the boot environment (WinPE)",
                        Phase::FullOs => "the full operating system",
                    },
                    step.run_in.as_ref().map(|r| r.raw.as_str()).unwrap_or("")
                ),
            ))
        } else {
            match self.cfg.registry.get(step.type_name()) {
                None => Err(StepError::new(
                    E_FAIL,
                    format!(
                        "the step \"{name}\" has type {} which this engine cannot run (no step registered for it)",
                        if step.type_name().is_empty() { "(none)" } else { step.type_name() }
                    ),
                )),
                Some(action) => {
                    let timeout = step
                        .timeout
                        .as_ref()
                        .map(|t| Duration::from_secs(u64::from(t.value)));
                    let secrets = self.env.secret_values();
                    let mut msgs = Vec::new();
                    let mut ctx = StepContext {
                        step,
                        env: &mut self.env,
                        timeout,
                        content: self.cfg.content.as_deref(),
                        drives: &mut self.state.drives,
                        computer: &self.cfg.computer,
                        state_dir: &self.cfg.state_dir,
                        phase: self.state.phase,
                        messages: &mut msgs,
                    };
                    let r = action.run(&mut ctx);
                    for (lvl, m) in msgs {
                        let text = mask(&m, &secrets);
                        self.emit(match lvl {
                            None => Event::Output {
                                name: name.clone(),
                                text,
                            },
                            Some(level) => Event::Message { level, text },
                        });
                    }
                    r
                }
            }
        };
        let millis = started.elapsed().as_millis();
        self.finish_step(ip, step, result, Some(millis))
    }

    fn success_codes(step: &Step) -> Vec<i64> {
        if let Some(c) = &step.success_codes {
            return c.value.clone();
        }
        match step.type_name() {
            types::RUN_COMMAND_LINE | "SMS_TaskSequence_RunPowerShellScriptAction" => vec![0, 3010],
            _ => vec![0],
        }
    }

    fn finish_step(
        &mut self,
        ip: usize,
        step: &Step,
        result: Result<crate::steps::StepOutcome, StepError>,
        millis: Option<u128>,
    ) -> Result<Flow, EngineError> {
        let name = step.name.clone();
        let secrets = self.env.secret_values();
        let (ok, code, error, mut restart) = match result {
            Ok(o) => {
                let ok = Self::success_codes(step).contains(&o.exit_code);
                let err = if ok {
                    String::new()
                } else {
                    format!("the exit code {} is not a success code", o.exit_code)
                };
                (ok, o.exit_code, err, o.restart)
            }
            Err(e) => (false, e.code, e.message, None),
        };
        self.state.attempts = None;
        self.env.set("_SMSTSLastActionName", &name);
        self.env.set(
            "_SMSTSLastActionSucceeded",
            if ok { "true" } else { "false" },
        );
        self.env.set("_SMSTSLastActionRetCode", &code.to_string());
        self.record(
            ip,
            &name,
            if ok { "succeeded" } else { "failed" },
            Some(code),
        );

        // 3010 from an installer means "restart, then go on".
        if ok
            && code == 3010
            && matches!(
                step.type_name(),
                types::INSTALL_APPLICATION | "SMS_TaskSequence_InstallSoftwareAction"
            )
        {
            restart = Some((self.phase_target(), false));
        }
        // SMSTSRebootRequested set by the step (or a script) asks for a restart after it.
        if let Some(t) = self
            .env
            .get("SMSTSRebootRequested")
            .and_then(RestartTarget::parse)
        {
            let retry = self
                .env
                .get("SMSTSRetryRequested")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
            restart = Some((t, retry));
            self.env.set("SMSTSRebootRequested", "");
            self.env.set("SMSTSRetryRequested", "");
        }

        if ok {
            self.emit(Event::StepSucceeded {
                pointer: ip,
                name: name.clone(),
                exit_code: code,
                millis: millis.unwrap_or(0),
            });
            self.state.ip += 1;
        } else {
            let coe = step.continues_on_error();
            self.emit(Event::StepFailed {
                pointer: ip,
                name: name.clone(),
                exit_code: code,
                error: mask(&error, &secrets),
                continue_on_error: coe,
            });
            if coe {
                self.state.ip += 1;
            } else {
                return self.propagate(&name, code);
            }
        }
        if let Some((target, retry_same)) = restart {
            if retry_same {
                self.state.ip = ip;
            }
            return self.restart(&name, target);
        }
        self.journal.append(&self.state, &self.env)?;
        Ok(Flow::Next)
    }

    fn phase_target(&self) -> RestartTarget {
        match self.state.phase {
            Phase::Pe => RestartTarget::BootEnvironment,
            Phase::FullOs => RestartTarget::InstalledOs,
        }
    }

    /// A failure without continue-on-error climbs the group stack.
    fn propagate(&mut self, failed: &str, code: i64) -> Result<Flow, EngineError> {
        loop {
            let Some(g) = self.state.groups.pop() else {
                self.state.status = Status::Failed {
                    step: failed.to_string(),
                    exit_code: code,
                };
                self.journal.snapshot(&self.state, &self.env)?;
                return Ok(Flow::Done(RunOutcome::Failed {
                    step: failed.to_string(),
                    exit_code: code,
                }));
            };
            let (name, end, coe) = match self.instrs.get(g) {
                Some(Instr::GroupStart {
                    name,
                    end,
                    continue_on_error,
                    ..
                }) => (name.clone(), *end, *continue_on_error),
                _ => {
                    return Err(EngineError::Setup(
                        "group stack out of step with the sequence".into(),
                    ))
                }
            };
            if coe {
                self.emit(Event::GroupIgnoredFailure { name });
                self.state.ip = end + 1;
                self.journal.append(&self.state, &self.env)?;
                return Ok(Flow::Next);
            }
            self.emit(Event::GroupFailed { name });
        }
    }

    fn restart(&mut self, name: &str, target: RestartTarget) -> Result<Flow, EngineError> {
        self.emit(Event::RebootRequested {
            name: name.to_string(),
            target: target.label().into(),
        });
        self.state.reboot_count += 1;
        self.state.status = Status::Restarting { target };
        self.journal.snapshot(&self.state, &self.env)?;
        match self.cfg.machine.restart(target, &self.cfg.computer) {
            RestartDisposition::Continue => {
                self.state.phase = match target {
                    RestartTarget::BootEnvironment => Phase::Pe,
                    RestartTarget::InstalledOs => Phase::FullOs,
                };
                self.state.status = Status::Running;
                self.set_phase_vars();
                self.journal.append(&self.state, &self.env)?;
                Ok(Flow::Next)
            }
            RestartDisposition::EndRun { message } => {
                self.message(Level::Info, message.clone());
                Ok(Flow::Done(RunOutcome::RestartRequired { message }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_type_is_2_with_any_osd_step() {
        let generic = tasq_tasksequence::import_str(
            "<sequence version=\"3.10\"><step type=\"SMS_TaskSequence_SetVariableAction\" name=\"a\"/></sequence>",
        )
        .unwrap();
        assert_eq!(sequence_type(&flatten(&generic)), "1");
        let osd = tasq_tasksequence::import_str(
            "<sequence version=\"3.10\"><group name=\"g\"><step type=\"SMS_TaskSequence_CaptureSystemImageAction\" name=\"c\" disable=\"true\"/></group></sequence>",
        )
        .unwrap();
        assert_eq!(sequence_type(&flatten(&osd)), "2");
    }
}
