//! `tasq ts …`: task sequences on the command line — show, export, the
//! wizard (`new`), validation and the editor commands. The library does the
//! work; this file reads and writes files, prompts on a terminal, and turns
//! results into exit codes (0 success, 1 problems found or refused edit).
//!
//! Input files may be ConfigMgr sequence XML, a console export zip or an MDT
//! `ts.xml`. Edits write the file back in its own form (a zip stays a zip,
//! indented XML stays indented) and keep secrets; `export` blanks secrets
//! unless `--keep-secrets` is given.

use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use tasq_tasksequence::editor::{self, Position};
use tasq_tasksequence::package::{self, Package};
use tasq_tasksequence::validate::{self, Severity};
use tasq_tasksequence::wiminfo::{self, WimImage};
use tasq_tasksequence::wizard::{self, Answers, AnswersError, Template};
use tasq_tasksequence::xml::Layout;
use tasq_tasksequence::{export, show, steps::StepKind, ExportOptions, Sequence};

#[derive(Debug, Clone, clap::Args)]
pub struct Place {
    /// Put it after this entry (a name path like "Group/Step", or an index like 1.4)
    #[arg(long, conflicts_with_all = ["before", "into"])]
    pub after: Option<String>,
    /// Put it before this entry
    #[arg(long, conflicts_with_all = ["after", "into"])]
    pub before: Option<String>,
    /// Put it at the end of this group
    #[arg(long, conflicts_with_all = ["after", "before"])]
    pub into: Option<String>,
}

impl Place {
    fn position(&self) -> Position {
        match (&self.after, &self.before, &self.into) {
            (Some(p), _, _) => Position::After(p.clone()),
            (_, Some(p), _) => Position::Before(p.clone()),
            (_, _, Some(p)) => Position::Into(p.clone()),
            _ => Position::End,
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct EditTarget {
    /// The task sequence file (ConfigMgr XML, export zip or MDT ts.xml)
    pub file: PathBuf,
    /// Write the result here instead of back into FILE
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TemplateArg {
    BuildAndCapture,
    Custom,
}

#[derive(Debug, clap::Subcommand)]
pub enum ConditionCommand {
    /// Add `VARIABLE OPERATOR [VALUE]` (ANDed with the existing condition), or a WMI query with --wmi
    Add {
        #[command(flatten)]
        target: EditTarget,
        /// The group or step
        path: String,
        /// VARIABLE OPERATOR [VALUE], e.g. `_SMSTSInWinPE equals false`
        expression: Vec<String>,
        /// A WQL query (namespace root\cimv2) instead of a variable expression
        #[arg(long)]
        wmi: Option<String>,
    },
    /// Remove the N-th part of the condition (as `show` lists them, from 1), or all of it
    Remove {
        #[command(flatten)]
        target: EditTarget,
        path: String,
        /// Which part (1-based); without it the whole condition goes
        index: Option<usize>,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum TsCommand {
    /// Print the sequence as a tree (types, conditions, disabled and continue-on-error markers)
    Show {
        file: PathBuf,
        /// Also list each step's variables (secrets masked)
        #[arg(long)]
        variables: bool,
    },
    /// Write the sequence as ConfigMgr task sequence XML (secrets blanked)
    Export {
        file: PathBuf,
        #[arg(long, short)]
        out: PathBuf,
        /// Keep passwords and product keys in the output
        #[arg(long)]
        keep_secrets: bool,
        /// Indent the XML (ConfigMgr writes one line)
        #[arg(long)]
        pretty: bool,
        /// Also write a console import package (zip)
        #[arg(long)]
        export_zip: Option<PathBuf>,
        /// Package ID for the zip (default: the input package's, else TSQ00001)
        #[arg(long)]
        package_id: Option<String>,
    },
    /// Create a sequence from a template: prompts page by page on a terminal,
    /// or takes the answers from --answers and --set
    New {
        #[arg(long, value_enum)]
        template: TemplateArg,
        /// Answers file (TOML, one table per wizard page)
        #[arg(long)]
        answers: Option<PathBuf>,
        /// One answer, `page.field=value` (repeatable; overrides the file)
        #[arg(long = "set", value_name = "PAGE.FIELD=VALUE")]
        set: Vec<String>,
        #[arg(long, short)]
        out: PathBuf,
        /// Also write a console import package (zip)
        #[arg(long)]
        export_zip: Option<PathBuf>,
        #[arg(long, default_value = "TSQ00001")]
        package_id: String,
        #[arg(long)]
        keep_secrets: bool,
        #[arg(long)]
        pretty: bool,
        /// Never prompt, even on a terminal
        #[arg(long)]
        no_prompt: bool,
    },
    /// Check the sequence; one line per problem, exit 1 when there is an error
    Validate {
        file: PathBuf,
        /// Content library: a folder whose entries are named by package ID
        /// (or application, by the last part of its ID)
        #[arg(long)]
        content: Option<PathBuf>,
        /// A variable defined outside the sequence (collection, device); repeatable
        #[arg(long = "variable", value_name = "NAME")]
        variables: Vec<String>,
        /// The sequence's boot image package (taken from an export zip otherwise)
        #[arg(long)]
        boot_image: Option<String>,
        /// Warnings fail too
        #[arg(long)]
        strict: bool,
    },
    /// List the step types that add-step knows by name
    StepTypes,
    /// Add a step (TYPE: a name from step-types, or any action class)
    AddStep {
        #[command(flatten)]
        target: EditTarget,
        step_type: String,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        place: Place,
    },
    /// Add an empty group
    AddGroup {
        #[command(flatten)]
        target: EditTarget,
        name: String,
        #[command(flatten)]
        place: Place,
    },
    /// Remove a step or a group (with its contents)
    Remove {
        #[command(flatten)]
        target: EditTarget,
        path: String,
    },
    /// Move a step or a group
    Move {
        #[command(flatten)]
        target: EditTarget,
        path: String,
        #[command(flatten)]
        place: Place,
    },
    /// Enable a step or a group
    Enable {
        #[command(flatten)]
        target: EditTarget,
        path: String,
    },
    /// Disable a step or a group
    Disable {
        #[command(flatten)]
        target: EditTarget,
        path: String,
    },
    /// Set a property (description, continueOnError, runIn, timeout, retryCount,
    /// successCodeList, runFromNet) or a step variable
    Set {
        #[command(flatten)]
        target: EditTarget,
        path: String,
        key: String,
        value: String,
    },
    /// Add or remove conditions
    Condition {
        #[command(subcommand)]
        cmd: ConditionCommand,
    },
    /// Rename a step or a group
    Rename {
        #[command(flatten)]
        target: EditTarget,
        path: String,
        new_name: String,
    },
}

/// What was read, and how to write it back.
struct Loaded {
    seq: Sequence,
    package: Option<Package>,
    layout: Layout,
    /// The `<?xml …?>` declaration the file started with, written back by edits.
    declaration: Option<String>,
}

fn load(path: &Path) -> Result<Loaded> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.starts_with(b"PK\x03\x04") {
        let pkg = package::read_package(&bytes).with_context(|| format!("{}", path.display()))?;
        return Ok(Loaded {
            seq: pkg.sequence.clone(),
            package: Some(pkg),
            layout: Layout::Compact,
            declaration: None,
        });
    }
    let text = tasq_tasksequence::xml::decode_bytes(&bytes)
        .with_context(|| format!("{}", path.display()))?;
    let seq =
        tasq_tasksequence::import_str(&text).with_context(|| format!("{}", path.display()))?;
    // A file with line breaks between elements was indented: keep it so.
    let layout = if text.trim().contains(">\n") || text.trim().contains(">\r\n") {
        Layout::Indented
    } else {
        Layout::Compact
    };
    let body = text.trim_start_matches('\u{feff}').trim_start();
    let declaration = body.strip_prefix("<?xml").and_then(|rest| {
        rest.find("?>")
            .map(|end| format!("<?xml{}?>", &rest[..end]))
    });
    Ok(Loaded {
        seq,
        package: None,
        layout,
        declaration,
    })
}

/// Writes through a temporary file beside the target, then renames: an
/// interrupted write never leaves half a file.
fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let mut tmp = tasq_wim::writer::temp_file_beside(path)
        .with_context(|| format!("creating a temporary file beside {}", path.display()))?;
    tmp.write_all(data)
        .and_then(|()| tmp.flush())
        .with_context(|| format!("writing {}", tmp.path().display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

fn save(loaded: &Loaded, seq: &Sequence, out: &Path) -> Result<()> {
    // Edits keep the secrets: the file is the admin's own.
    let opts = ExportOptions {
        keep_secrets: true,
        layout: loaded.layout,
    };
    match &loaded.package {
        Some(p) => {
            let pkg = Package {
                sequence: seq.clone(),
                ..p.clone()
            };
            write_atomic(out, &package::write_package(&pkg, opts)?)
        }
        None => {
            let mut xml = match &loaded.declaration {
                Some(d) => format!("{d}\n{}", export(seq, opts)),
                None => export(seq, opts),
            };
            if !xml.ends_with('\n') {
                xml.push('\n');
            }
            write_atomic(out, xml.as_bytes())
        }
    }
}

fn edit(
    target: &EditTarget,
    f: impl FnOnce(&mut Sequence) -> Result<(), editor::EditError>,
) -> Result<i32> {
    let loaded = load(&target.file)?;
    let mut seq = loaded.seq.clone();
    if let Err(e) = f(&mut seq) {
        eprintln!("tasq ts: {}: {e}", target.file.display());
        return Ok(1);
    }
    save(&loaded, &seq, target.out.as_deref().unwrap_or(&target.file))?;
    Ok(0)
}

fn content_library(dir: &Path) -> Result<BTreeSet<String>> {
    let mut ids = BTreeSet::new();
    for e in std::fs::read_dir(dir)
        .with_context(|| format!("reading content library {}", dir.display()))?
    {
        let e = e?;
        let name = e.file_name().to_string_lossy().to_string();
        ids.insert(name.to_ascii_uppercase());
        if let Some((stem, _)) = name.rsplit_once('.') {
            ids.insert(stem.to_ascii_uppercase());
        }
    }
    Ok(ids)
}

/// The images of a WIM file, from its header and XML description.
fn wim_images(path: &Path) -> Result<Vec<WimImage>> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut header = vec![0u8; wiminfo::HEADER_LEN];
    f.read_exact(&mut header)
        .with_context(|| format!("{}: reading the WIM header", path.display()))?;
    let loc = wiminfo::xml_location(&header).with_context(|| path.display().to_string())?;
    f.seek(SeekFrom::Start(loc.offset))?;
    let mut xml = Vec::new();
    f.take(loc.size).read_to_end(&mut xml)?;
    wiminfo::parse_xml(&xml).with_context(|| path.display().to_string())
}

pub fn run(cmd: TsCommand) -> Result<i32> {
    match cmd {
        TsCommand::Show { file, variables } => {
            let l = load(&file)?;
            if let Some(p) = &l.package {
                println!(
                    "{} ({}) boot image {}",
                    p.name,
                    p.package_id,
                    if p.boot_image_id.is_empty() {
                        "none"
                    } else {
                        &p.boot_image_id
                    }
                );
                if !p.description.is_empty() {
                    println!("{}", p.description);
                }
            }
            print!("{}", show::render(&l.seq, variables));
            Ok(0)
        }
        TsCommand::Export {
            file,
            out,
            keep_secrets,
            pretty,
            export_zip,
            package_id,
        } => {
            let l = load(&file)?;
            let opts = ExportOptions {
                keep_secrets,
                layout: if pretty {
                    Layout::Indented
                } else {
                    Layout::Compact
                },
            };
            let mut xml = export(&l.seq, opts);
            xml.push('\n');
            write_atomic(&out, xml.as_bytes())?;
            if let Some(zip) = export_zip {
                let mut pkg = l.package.clone().unwrap_or_else(|| Package {
                    package_id: "TSQ00001".into(),
                    name: l.seq.name.clone().unwrap_or_else(|| file_stem(&file)),
                    description: l.seq.description.clone().unwrap_or_default(),
                    boot_image_id: String::new(),
                    sequence: l.seq.clone(),
                });
                if let Some(id) = package_id {
                    pkg.package_id = id;
                }
                write_atomic(&zip, &package::write_package(&pkg, opts)?)?;
            }
            Ok(0)
        }
        TsCommand::New {
            template,
            answers,
            set,
            out,
            export_zip,
            package_id,
            keep_secrets,
            pretty,
            no_prompt,
        } => new(
            template,
            answers,
            set,
            out,
            export_zip,
            package_id,
            keep_secrets,
            pretty,
            no_prompt,
        ),
        TsCommand::Validate {
            file,
            content,
            variables,
            boot_image,
            strict,
        } => {
            let l = load(&file)?;
            let ctx = validate::Context {
                content: content.as_deref().map(content_library).transpose()?,
                boot_image_id: boot_image
                    .or_else(|| l.package.as_ref().map(|p| p.boot_image_id.clone()))
                    .filter(|b| !b.is_empty()),
                extra_variables: variables,
            };
            let problems = validate::validate(&l.seq, &ctx);
            for p in &problems {
                println!("{p}");
            }
            let failing = problems.iter().any(|p| {
                p.severity == Severity::Error || (strict && p.severity == Severity::Warning)
            });
            Ok(if failing { 1 } else { 0 })
        }
        TsCommand::StepTypes => {
            for k in StepKind::ALL {
                println!(
                    "{:40} {:32} {}",
                    k.cli_name(),
                    k.editor_name(),
                    k.type_name()
                );
            }
            Ok(0)
        }
        TsCommand::AddStep {
            target,
            step_type,
            name,
            place,
        } => edit(&target, |s| {
            editor::add_step(s, &step_type, name.as_deref(), &place.position()).map(drop)
        }),
        TsCommand::AddGroup {
            target,
            name,
            place,
        } => edit(&target, |s| {
            editor::add_group(s, &name, &place.position()).map(drop)
        }),
        TsCommand::Remove { target, path } => edit(&target, |s| editor::remove(s, &path).map(drop)),
        TsCommand::Move {
            target,
            path,
            place,
        } => edit(&target, |s| {
            editor::move_to(s, &path, &place.position()).map(drop)
        }),
        TsCommand::Enable { target, path } => {
            edit(&target, |s| editor::set_enabled(s, &path, true))
        }
        TsCommand::Disable { target, path } => {
            edit(&target, |s| editor::set_enabled(s, &path, false))
        }
        TsCommand::Set {
            target,
            path,
            key,
            value,
        } => edit(&target, |s| editor::set(s, &path, &key, &value)),
        TsCommand::Rename {
            target,
            path,
            new_name,
        } => edit(&target, |s| editor::rename(s, &path, &new_name)),
        TsCommand::Condition { cmd } => match cmd {
            ConditionCommand::Add {
                target,
                path,
                expression,
                wmi,
            } => edit(&target, |s| {
                let expr = match wmi {
                    Some(q) => tasq_tasksequence::condition::Expression::new(
                        tasq_tasksequence::condition::WMI_EXPR,
                        &[("Namespace", "root\\cimv2"), ("Query", &q)],
                    ),
                    None => editor::parse_variable_expression(&expression)?,
                };
                if let Some(q) = expr.get("Query") {
                    tasq_tasksequence::wql::parse(q)
                        .map_err(|e| editor::EditError::Invalid(e.to_string()))?;
                }
                editor::condition_add(s, &path, expr)
            }),
            ConditionCommand::Remove {
                target,
                path,
                index,
            } => edit(&target, |s| editor::condition_remove(s, &path, index)),
        },
    }
}

fn file_stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default()
}

#[allow(clippy::too_many_arguments)]
fn new(
    template: TemplateArg,
    answers_file: Option<PathBuf>,
    set: Vec<String>,
    out: PathBuf,
    export_zip: Option<PathBuf>,
    package_id: String,
    keep_secrets: bool,
    pretty: bool,
    no_prompt: bool,
) -> Result<i32> {
    let mut answers = match &answers_file {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Answers::from_toml(&text).with_context(|| p.display().to_string())?
        }
        None => Answers::default(),
    };
    let want = match template {
        TemplateArg::BuildAndCapture => Template::BuildAndCapture,
        TemplateArg::Custom => Template::Custom,
    };
    if answers_file.is_some() && answers.template != want {
        bail!("the answers file is for another template than --template");
    }
    answers.template = want;
    for kv in &set {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--set {kv}: expected PAGE.FIELD=VALUE"))?;
        answers.set_field(k.trim(), v)?;
    }
    let interactive = !no_prompt && answers_file.is_none() && std::io::stdin().is_terminal();
    if interactive {
        prompt_pages(&mut answers)?;
    }
    let base = answers_file
        .as_deref()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    loop {
        let images = if answers.install_windows.image_file.trim().is_empty()
            || answers.template == Template::Custom
        {
            None
        } else {
            Some(wim_images(
                &base.join(answers.install_windows.image_file.trim()),
            )?)
        };
        match wizard::build(&answers, images.as_deref()) {
            Ok((seq, info)) => {
                let opts = ExportOptions {
                    keep_secrets,
                    layout: if pretty {
                        Layout::Indented
                    } else {
                        Layout::Compact
                    },
                };
                let mut xml = export(&seq, opts);
                xml.push('\n');
                write_atomic(&out, xml.as_bytes())?;
                let zip_given = export_zip.is_some();
                if let Some(zip) = export_zip {
                    let pkg = Package {
                        package_id: package_id.clone(),
                        name: info.name.clone(),
                        description: info.description.clone(),
                        boot_image_id: info.boot_image_id.clone(),
                        sequence: seq.clone(),
                    };
                    write_atomic(&zip, &package::write_package(&pkg, opts)?)?;
                }
                if !zip_given {
                    eprintln!("note: name, description and boot image are package properties; --export-zip writes them with the sequence");
                }
                // The wizard's answers were fine; still say what the sequence will hit.
                let ctx = validate::Context {
                    boot_image_id: Some(info.boot_image_id),
                    ..Default::default()
                };
                for p in validate::validate(&seq, &ctx) {
                    eprintln!("{p}");
                }
                return Ok(0);
            }
            Err(AnswersError::Invalid(errors)) if interactive => {
                for e in &errors {
                    eprintln!("{e}");
                }
                // Ask again for the fields that failed.
                for e in errors {
                    let current = answers.get_field(&e.field);
                    let v = ask(&e.field, &current)?;
                    if let Err(err) = answers.set_field(&e.field, &v) {
                        eprintln!("{err}");
                    }
                }
            }
            Err(e) => {
                for line in e.to_string().lines() {
                    eprintln!("tasq ts new: {line}");
                }
                return Ok(1);
            }
        }
    }
}

fn ask(label: &str, default: &str) -> Result<String> {
    let secret = label.contains("password");
    if default.is_empty() || secret {
        print!("{label}: ");
    } else {
        print!("{label} [{default}]: ");
    }
    std::io::stdout().flush()?;
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line)? == 0 {
        bail!("input ended before the wizard was complete");
    }
    let v = line.trim_end_matches(['\r', '\n']).to_string();
    Ok(if v.is_empty() { default.to_string() } else { v })
}

/// The wizard's pages on a terminal, in the console's order, with defaults.
fn prompt_pages(a: &mut Answers) -> Result<()> {
    let mut last = String::new();
    /// `last` is the page shown before: a page asked in several parts (its
    /// fields depend on earlier answers) shows its title once.
    fn page(
        last: &mut String,
        title: &str,
        fields: &[(&str, &str)],
        a: &mut Answers,
    ) -> Result<()> {
        if last != title {
            println!("\n== {title} ==");
            *last = title.to_string();
        }
        for (field, default) in fields {
            let cur = a.get_field(field);
            // An unset index reads as 0: offer the page's default instead.
            let d = if cur.is_empty() || cur == "0" {
                default.to_string()
            } else {
                cur
            };
            loop {
                let v = ask(field, &d)?;
                match a.set_field(field, &v) {
                    Ok(()) => break,
                    Err(e) => eprintln!("{e}"),
                }
            }
        }
        Ok(())
    }
    page(
        &mut last,
        "Task Sequence Information",
        &[
            ("task_sequence.name", ""),
            ("task_sequence.description", ""),
            ("task_sequence.boot_image", ""),
            ("task_sequence.boot_image_architecture", "x64"),
        ],
        a,
    )?;
    if a.template == Template::Custom {
        return Ok(());
    }
    page(
        &mut last,
        "Install Windows",
        &[
            ("install_windows.image_package", ""),
            ("install_windows.image_file", ""),
            ("install_windows.image_index", "1"),
            ("install_windows.product_key", ""),
            ("install_windows.server_licensing", "none"),
        ],
        a,
    )?;
    if a.install_windows
        .server_licensing
        .eq_ignore_ascii_case("per-server")
    {
        page(
            &mut last,
            "Install Windows",
            &[("install_windows.max_server_connections", "5")],
            a,
        )?;
    }
    page(
        &mut last,
        "Install Windows",
        &[("install_windows.local_admin", "random")],
        a,
    )?;
    if a.install_windows
        .local_admin
        .eq_ignore_ascii_case("specify")
    {
        page(
            &mut last,
            "Install Windows",
            &[("install_windows.admin_password", "")],
            a,
        )?;
    }
    page(
        &mut last,
        "Configure Network",
        &[("configure_network.join", "workgroup")],
        a,
    )?;
    if a.configure_network.join.eq_ignore_ascii_case("domain") {
        page(
            &mut last,
            "Configure Network",
            &[
                ("configure_network.domain", ""),
                ("configure_network.domain_ou", ""),
                ("configure_network.domain_account", ""),
                ("configure_network.domain_password", ""),
            ],
            a,
        )?;
    } else {
        page(
            &mut last,
            "Configure Network",
            &[("configure_network.workgroup", "WORKGROUP")],
            a,
        )?;
    }
    page(
        &mut last,
        "Install Configuration Manager",
        &[
            ("install_configmgr.client_package", ""),
            ("install_configmgr.installation_properties", ""),
        ],
        a,
    )?;
    page(
        &mut last,
        "Include Updates",
        &[("include_updates.mode", "required")],
        a,
    )?;
    page(
        &mut last,
        "Install Applications",
        &[
            ("install_applications.applications", ""),
            ("install_applications.continue_on_error", "false"),
        ],
        a,
    )?;
    println!("\n== System Preparation ==\n(nothing to set)");
    page(
        &mut last,
        "Image Properties",
        &[
            ("image_properties.created_by", ""),
            ("image_properties.version", ""),
            ("image_properties.description", ""),
        ],
        a,
    )?;
    page(
        &mut last,
        "Capture Image",
        &[
            ("capture_image.path", ""),
            ("capture_image.account", ""),
            ("capture_image.password", ""),
        ],
        a,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: TsCommand,
    }

    fn tasq(args: &[&str]) -> i32 {
        let cli = Cli::try_parse_from(std::iter::once("ts").chain(args.iter().copied()))
            .expect("arguments parse");
        run(cli.cmd).expect("the command runs")
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tasq-ts-cmd-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    const EXAMPLE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/build-and-capture.answers.toml"
    );

    #[test]
    fn new_validate_edit_and_export() {
        let d = scratch("flow");
        let xml = d.join("bc.xml");
        let zip = d.join("bc.zip");
        let (x, z) = (xml.to_str().unwrap(), zip.to_str().unwrap());
        assert_eq!(
            tasq(&[
                "new",
                "--template",
                "build-and-capture",
                "--answers",
                EXAMPLE,
                "--out",
                x,
                "--export-zip",
                z,
                "--no-prompt"
            ]),
            0
        );
        assert_eq!(tasq(&["validate", x]), 0);
        assert_eq!(tasq(&["validate", z]), 0);
        // A full-OS step right after the restart into Windows PE: refused by validate.
        assert_eq!(
            tasq(&[
                "add-step",
                x,
                "install-application",
                "--name",
                "Early apps",
                "--after",
                "1.1"
            ]),
            0
        );
        assert_eq!(tasq(&["validate", x]), 1);
        assert_eq!(
            tasq(&["remove", x, "Build the Reference Machine/Early apps"]),
            0
        );
        assert_eq!(tasq(&["validate", x]), 0);
        // Refused edits leave the file alone and exit 1.
        let before = std::fs::read(&xml).unwrap();
        assert_eq!(tasq(&["set", x, "1.4", "OSDImageIndex", "two"]), 1);
        assert_eq!(tasq(&["rename", x, "1.4", "Apply Windows Settings"]), 1);
        assert_eq!(std::fs::read(&xml).unwrap(), before);
        assert_eq!(
            tasq(&[
                "condition",
                "add",
                x,
                "1.4",
                "_SMSTSBootUEFI",
                "equals",
                "true"
            ]),
            0
        );
        assert_eq!(
            tasq(&[
                "condition",
                "add",
                x,
                "1.4",
                "--wmi",
                "SELECT * FROM Win32_Tpm"
            ]),
            1
        );
        assert_eq!(tasq(&["disable", z, "2.1"]), 0);
        let edited = package::read_package(&std::fs::read(&zip).unwrap()).unwrap();
        assert_eq!(edited.name, "Build and capture Windows 11");
        assert!(edited
            .sequence
            .walk_steps()
            .iter()
            .any(|(_, s)| s.name == "Prepare Configuration Manager Client" && s.is_disabled()));
        // Export blanks secrets unless asked; `new` blanked them too.
        let out = d.join("out.xml");
        let o = out.to_str().unwrap();
        assert_eq!(tasq(&["export", z, "--out", o, "--keep-secrets"]), 0);
        assert!(!std::fs::read_to_string(&out)
            .unwrap()
            .contains("Example-Only-3"));
        let kept = d.join("kept.xml");
        let k = kept.to_str().unwrap();
        assert_eq!(
            tasq(&[
                "new",
                "--template",
                "build-and-capture",
                "--answers",
                EXAMPLE,
                "--out",
                k,
                "--keep-secrets",
                "--no-prompt"
            ]),
            0
        );
        assert!(std::fs::read_to_string(&kept)
            .unwrap()
            .contains("Example-Only-3"));
        assert_eq!(tasq(&["export", k, "--out", o]), 0);
        assert!(!std::fs::read_to_string(&out)
            .unwrap()
            .contains("Example-Only-3"));
        assert_eq!(tasq(&["export", k, "--out", o, "--keep-secrets"]), 0);
        assert!(std::fs::read_to_string(&out)
            .unwrap()
            .contains("Example-Only-3"));
        // Missing content is reported against a content library folder.
        let lib = d.join("lib");
        std::fs::create_dir(&lib).unwrap();
        assert_eq!(
            tasq(&["validate", x, "--content", lib.to_str().unwrap()]),
            1
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn new_reports_bad_answers_and_set_overrides() {
        let d = scratch("answers");
        let x = d.join("o.xml");
        let x = x.to_str().unwrap();
        assert_eq!(
            tasq(&[
                "new",
                "--template",
                "build-and-capture",
                "--answers",
                EXAMPLE,
                "--set",
                "install_windows.product_key=NOPE",
                "--out",
                x,
                "--no-prompt"
            ]),
            1
        );
        assert!(!Path::new(x).exists());
        assert_eq!(
            tasq(&[
                "new",
                "--template",
                "custom",
                "--set",
                "task_sequence.name=Cap",
                "--set",
                "task_sequence.boot_image=PS100005",
                "--set",
                "task_sequence.boot_image_architecture=x64",
                "--out",
                x,
                "--no-prompt"
            ]),
            0
        );
        assert_eq!(
            std::fs::read_to_string(x).unwrap().trim(),
            "<sequence version=\"3.10\"/>"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn mdt_file_edits_keep_its_form() {
        let d = scratch("mdt");
        // shared/ sits beside the repository (CI) or at /work/shared (sessions).
        let name = "mdt-ts/DRFiles_MDT-BIOSandEUFITaskSequences_BIOS-001_ts.xml";
        let candidates = [
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/samples"
            ))
            .join(name),
            PathBuf::from("/work/shared/samples").join(name),
        ];
        let text = candidates
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_else(|| panic!("sample {name} missing from {candidates:?}"));
        let f = d.join("ts.xml");
        std::fs::write(&f, &text).unwrap();
        assert_eq!(
            tasq(&["rename", f.to_str().unwrap(), "1.1", "Copy tools"]),
            0
        );
        let after = std::fs::read_to_string(&f).unwrap();
        assert!(after.starts_with("<?xml version=\"1.0\"?>\n<sequence"));
        assert!(after.contains("name=\"Copy tools\""));
        assert_eq!(
            after.lines().count(),
            text.lines().count(),
            "indented as before"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
