//! `tasq run` (run a task sequence on a reference computer, or resume one) and
//! `tasq content` (the content library). The work is in the `tasq-engine`
//! crate; this file turns arguments into an engine configuration and picks
//! the event sinks (smsts.log always; `--json` lines or a progress display).

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tasq_engine::content::{check_content, referenced_packages, ContentLibrary, LocalLibrary};
use tasq_engine::events::{Event, EventSink, JsonLines};
use tasq_engine::log::{LogSink, DEFAULT_MAX_SIZE};
use tasq_engine::runner::{
    exit, flatten, DiskImageMachine, Engine, EngineConfig, Instr, MediaType,
};
use tasq_engine::steps::Registry;
use tasq_engine::Computer;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The task sequence (ConfigMgr/MDT XML or a console export zip); not with --resume
    #[arg(required_unless_present = "resume")]
    pub sequence: Option<PathBuf>,
    /// The reference computer description (TOML), or `host` to read this
    /// machine's hardware (DMI, sysfs)
    #[arg(long)]
    pub computer: PathBuf,
    /// The content library folder (needed when the sequence references packages)
    #[arg(long)]
    pub content: Option<PathBuf>,
    /// What started the sequence: boot, full, pxe, oem media, or none (started in the full OS)
    #[arg(long, default_value = "boot", value_parser = ["boot", "full", "pxe", "oem", "none"])]
    pub media: String,
    /// Collection/computer variables (TOML NAME = "value"; a [secret] table for secrets)
    #[arg(long)]
    pub variables: Option<PathBuf>,
    /// Show what would run, in order, without running anything
    #[arg(long)]
    pub what_if: bool,
    /// One JSON event per line on standard output
    #[arg(long)]
    pub json: bool,
    /// Continue the run journaled for this computer (after a restart or a crash)
    #[arg(long, conflicts_with_all = ["sequence", "what_if", "variables"])]
    pub resume: bool,
    /// In the installed OS (--media none, or resumed after a restart into
    /// it): the folder that is drive C:, the system volume (default /)
    #[arg(long, default_value = "/")]
    pub system_drive: PathBuf,
    /// State folder (journal, key, logs); default: beside the computer file
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Roll smsts.log at this many bytes
    #[arg(long, default_value_t = DEFAULT_MAX_SIZE)]
    pub log_max_size: u64,
}

#[derive(clap::Subcommand, Debug)]
pub enum ContentCommand {
    /// Add a file or folder as a package (prints its ID)
    Add {
        /// boot-image, os-image, driver, application, update, client or package
        kind: String,
        /// Display name
        name: String,
        /// File or folder to copy in
        source: PathBuf,
        #[arg(long)]
        library: PathBuf,
        /// Extra properties (install command, success codes, …) as KEY=VALUE
        #[arg(long = "property", value_name = "KEY=VALUE")]
        properties: Vec<String>,
    },
    /// List the packages
    List {
        #[arg(long)]
        library: PathBuf,
    },
    /// Show a package's manifest
    Show {
        id: String,
        #[arg(long)]
        library: PathBuf,
    },
    /// Remove a package
    Remove {
        id: String,
        #[arg(long)]
        library: PathBuf,
    },
    /// Check files against the manifests (all packages, or the ones given)
    Verify {
        ids: Vec<String>,
        #[arg(long)]
        library: PathBuf,
    },
}

/// In the installed OS the running system's own volume is C: (a host
/// folder), unless a step already gave C: a volume.
fn map_system_drive(engine: &mut Engine, dir: &Path) {
    if engine.state.phase == tasq_engine::Phase::FullOs && !engine.state.drives.contains_key(&'C') {
        engine.state.drives.insert(
            'C',
            tasq_engine::volumes::VolumeRef::HostDir {
                path: dir.to_path_buf(),
            },
        );
    }
}

/// The computer file, or the running machine for `host`.
fn load_computer(arg: &Path) -> Result<Computer> {
    if arg == Path::new("host") && !arg.exists() {
        return Ok(tasq_engine::host::computer_from_host());
    }
    Ok(Computer::load(arg)?)
}

fn default_state_dir(computer_file: &Path, computer: &Computer) -> PathBuf {
    let base = computer_file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    base.join(format!(".tasq-state-{}", computer.name))
}

/// Progress on a terminal: step n of m, group, name, elapsed.
struct Progress {
    started: Instant,
}

impl EventSink for Progress {
    fn event(&mut self, e: &Event) {
        let t = self.started.elapsed().as_secs();
        let el = format!("{:02}:{:02}", t / 60, t % 60);
        match e {
            Event::StepStart {
                n, of, group, name, ..
            } => eprintln!(
                "[{el}] step {n} of {of}{}: {name}",
                group
                    .as_ref()
                    .map(|g| format!(" ({g})"))
                    .unwrap_or_default()
            ),
            Event::StepFailed {
                name,
                error,
                continue_on_error,
                ..
            } => eprintln!(
                "[{el}] FAILED {name}: {error}{}",
                if *continue_on_error {
                    " (continuing)"
                } else {
                    ""
                }
            ),
            Event::StepSkipped { name, reason, .. } => eprintln!("[{el}] skipped {name}: {reason}"),
            Event::GroupSkipped { name, reason, .. } => {
                eprintln!("[{el}] skipped group {name}: {reason}")
            }
            Event::RebootRequested { name, target } => {
                eprintln!("[{el}] {name} restarts the computer ({target})")
            }
            Event::Message { text, .. } => eprintln!("[{el}] {text}"),
            Event::Finished { result, exit_code } => {
                eprintln!("[{el}] finished: {result} (exit code {exit_code})")
            }
            _ => {}
        }
    }
}

fn load_sequence(path: &Path) -> Result<(tasq_tasksequence::Sequence, Vec<u8>, Option<String>)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.starts_with(b"PK\x03\x04") {
        let pkg = tasq_tasksequence::package::read_package(&bytes)
            .with_context(|| format!("{}", path.display()))?;
        // The journal keeps the sequence as XML, secrets included (it is encrypted there).
        let xml = tasq_tasksequence::export(
            &pkg.sequence,
            tasq_tasksequence::ExportOptions {
                keep_secrets: true,
                ..Default::default()
            },
        );
        return Ok((pkg.sequence, xml.into_bytes(), Some(pkg.package_id)));
    }
    let text = tasq_tasksequence::xml::decode_bytes(&bytes)
        .with_context(|| format!("{}", path.display()))?;
    let seq =
        tasq_tasksequence::import_str(&text).with_context(|| format!("{}", path.display()))?;
    Ok((seq, bytes, None))
}

fn what_if(seq: &tasq_tasksequence::Sequence, registry: &Registry) {
    let mut depth = 0usize;
    for (i, ins) in flatten(seq).iter().enumerate() {
        match ins {
            Instr::GroupStart {
                name,
                disabled,
                condition,
                continue_on_error,
                ..
            } => {
                println!(
                    "{i:>4} {}group {name}{}{}{}",
                    "  ".repeat(depth),
                    if *disabled {
                        " [disabled: skipped]"
                    } else {
                        ""
                    },
                    if condition.is_some() {
                        " [condition]"
                    } else {
                        ""
                    },
                    if *continue_on_error {
                        " [continue on error]"
                    } else {
                        ""
                    }
                );
                depth += 1;
            }
            Instr::GroupEnd { .. } => depth = depth.saturating_sub(1),
            Instr::Step(s) => println!(
                "{i:>4} {}{} ({}){}{}{}",
                "  ".repeat(depth),
                s.name,
                s.type_name(),
                if s.is_disabled() {
                    " [disabled: skipped]"
                } else {
                    ""
                },
                if s.condition.is_some() {
                    " [condition]"
                } else {
                    ""
                },
                if registry.contains(s.type_name()) {
                    ""
                } else {
                    " [NOT SUPPORTED: would fail]"
                }
            ),
        }
    }
}

pub fn run(args: RunArgs) -> Result<i32> {
    let computer = load_computer(&args.computer)?;
    let media = MediaType::parse(&args.media).context("bad --media")?;
    let state_dir = args
        .state
        .clone()
        .unwrap_or_else(|| default_state_dir(&args.computer, &computer));
    let registry = Registry::standard();
    let content: Option<Box<dyn ContentLibrary>> = args
        .content
        .as_ref()
        .map(|d| Box::new(LocalLibrary::new(d)) as Box<dyn ContentLibrary>);

    let mut sinks: Vec<Box<dyn EventSink>> = vec![Box::new(LogSink::new(
        &state_dir.join("logs"),
        args.log_max_size,
    ))];
    if args.json {
        sinks.push(Box::new(JsonLines(std::io::stdout())));
    } else if std::io::stderr().is_terminal() || !args.what_if {
        sinks.push(Box::new(Progress {
            started: Instant::now(),
        }));
    }

    if args.resume {
        let cfg = EngineConfig {
            computer: computer.clone(),
            state_dir: state_dir.clone(),
            media,
            registry,
            machine: Box::new(DiskImageMachine {
                computer_file: args.computer.clone(),
            }),
            content,
            sinks,
            package_id: String::new(),
        };
        let (mut engine, seq) = Engine::resume(cfg)?;
        map_system_drive(&mut engine, &args.system_drive);
        let name = seq.name.clone().unwrap_or_default();
        let outcome = engine.run(&name, true)?;
        return Ok(report(outcome));
    }

    let Some(seq_path) = args.sequence.as_ref() else {
        bail!("give a sequence, or --resume");
    };
    // A new run must not silently wipe an unfinished one.
    if let Ok(j) = tasq_engine::journal::Journal::open(&state_dir) {
        if let Ok((st, _)) = j.load() {
            if !matches!(
                st.status,
                tasq_engine::runner::Status::Succeeded | tasq_engine::runner::Status::Failed { .. }
            ) {
                bail!(
                    "an unfinished run is journaled in {}: continue it with --resume, or remove that folder to start over",
                    state_dir.display()
                );
            }
        }
    }
    let (seq, bytes, package_id) = load_sequence(seq_path)?;
    if args.what_if {
        what_if(&seq, &registry);
        return Ok(exit::SUCCESS);
    }

    // Refuse to start when referenced content is missing or damaged.
    let refs = referenced_packages(&seq);
    let problems = match &content {
        Some(lib) => check_content(&seq, lib.as_ref()),
        None if refs.is_empty() => Vec::new(),
        None => refs
            .iter()
            .map(|id| {
                format!("package {id} is referenced but no content library was given (--content)")
            })
            .collect(),
    };
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("tasq run: {p}");
        }
        eprintln!(
            "tasq run: not started: {} package problem(s)",
            problems.len()
        );
        return Ok(exit::NOT_STARTED);
    }

    let vars = match &args.variables {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            tasq_engine::env::load_variables_file(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
        }
        None => Vec::new(),
    };
    computer.prepare_disks()?;
    let cfg = EngineConfig {
        computer,
        state_dir,
        media,
        registry,
        machine: Box::new(DiskImageMachine {
            computer_file: args.computer.clone(),
        }),
        content,
        sinks,
        package_id: package_id.unwrap_or_else(|| "TSQ00000".into()),
    };
    let mut engine = Engine::start(&seq, &bytes, &vars, cfg)?;
    map_system_drive(&mut engine, &args.system_drive);
    let name = seq.name.clone().unwrap_or_default();
    let outcome = engine.run(&name, false)?;
    Ok(report(outcome))
}

fn report(outcome: tasq_engine::RunOutcome) -> i32 {
    match &outcome {
        tasq_engine::RunOutcome::Succeeded => {}
        tasq_engine::RunOutcome::Failed { step, exit_code } => {
            eprintln!("tasq run: the task sequence failed at \"{step}\" (exit code {exit_code})")
        }
        tasq_engine::RunOutcome::RestartRequired { message } => eprintln!("tasq run: {message}"),
    }
    outcome.exit_code()
}

pub fn content(cmd: ContentCommand) -> Result<i32> {
    match cmd {
        ContentCommand::Add {
            kind,
            name,
            source,
            library,
            properties,
        } => {
            let mut props = BTreeMap::new();
            for p in properties {
                let (k, v) = p
                    .split_once('=')
                    .with_context(|| format!("--property {p}: expected KEY=VALUE"))?;
                props.insert(k.to_string(), v.to_string());
            }
            let m = LocalLibrary::new(&library).add(&kind, &name, &source, props)?;
            if m.kind == "driver" {
                // The INF index (stdout keeps only the ID, for scripts).
                let get = |k: &str| m.properties.get(k).map(String::as_str).unwrap_or("");
                eprintln!(
                    "driver package: {} INF(s), classes {}, architectures {}",
                    get("infs"),
                    get("classes"),
                    get("architectures")
                );
            }
            println!("{}", m.id);
            Ok(0)
        }
        ContentCommand::List { library } => {
            for m in LocalLibrary::new(&library).list()? {
                let size: u64 = m.files.iter().map(|f| f.size).sum();
                println!("{}  {:<11} {:>12}  {}", m.id, m.kind, size, m.name);
            }
            Ok(0)
        }
        ContentCommand::Show { id, library } => {
            let m = LocalLibrary::new(&library).manifest(&id)?;
            println!("{}", m.to_json_pretty());
            Ok(0)
        }
        ContentCommand::Remove { id, library } => {
            LocalLibrary::new(&library).remove(&id)?;
            Ok(0)
        }
        ContentCommand::Verify { ids, library } => {
            let lib = LocalLibrary::new(&library);
            let ids = if ids.is_empty() {
                lib.list()?.into_iter().map(|m| m.id).collect()
            } else {
                ids
            };
            let mut bad = 0;
            for id in ids {
                match lib.verify(&id) {
                    Ok(p) if p.is_empty() => println!("{id}: ok"),
                    Ok(p) => {
                        bad += 1;
                        for x in p {
                            println!("{id}: {x}");
                        }
                    }
                    Err(e) => {
                        bad += 1;
                        println!("{id}: {e}");
                    }
                }
            }
            Ok(if bad == 0 { 0 } else { 1 })
        }
    }
}
