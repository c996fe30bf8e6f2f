//! `tasq wim ...`: capture, append, apply, info, dir, extract, verify,
//! export, delete, optimize — shaped after wimlib-imagex so its users feel at home.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tasq_volume::hostdir::HostDirTarget;
use tasq_wim::apply::{apply_paths, ApplyOptions};
use tasq_wim::capture_config::CaptureConfig;
use tasq_wim::optimize::OptimizeOptions;
use tasq_wim::reader::Wim;
use tasq_wim::writer::{ImageOptions, ProgressEvent, SolidOptions, WimWriter, WriteOptions};
use tasq_wim::CompressionFormat;

#[derive(Subcommand)]
pub enum WimCommand {
    /// Capture a directory tree into a new WIM file (replacing any file there).
    Capture(Box<CaptureArgs>),
    /// Capture a directory tree as a new image of an existing WIM file.
    Append(Box<CaptureArgs>),
    /// Apply an image to a directory.
    Apply {
        wimfile: PathBuf,
        /// IMAGE (1-based index or name) and TARGET, or just TARGET for a one-image WIM.
        #[arg(num_args = 1..=2, required = true)]
        rest: Vec<String>,
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Other parts of a split WIM (a glob such as "foo*.swm"; repeatable).
        #[arg(long = "ref", value_name = "GLOB")]
        refs: Vec<String>,
        /// Re-root absolute symbolic links that capture made relative to the
        /// image root so they point into TARGET (the default when the WIM's
        /// header has the RP_FIX flag, as wimlib-imagex does).
        #[arg(long, conflicts_with = "norpfix")]
        rpfix: bool,
        /// Apply absolute symbolic links exactly as stored.
        #[arg(long)]
        norpfix: bool,
    },
    /// Show the WIM's header and images.
    Info {
        wimfile: PathBuf,
        image: Option<String>,
        /// Print the XML data.
        #[arg(long, conflicts_with = "json")]
        xml: bool,
        /// Print a JSON document.
        #[arg(long)]
        json: bool,
        /// Other parts of a split WIM (a glob such as "foo*.swm"; repeatable).
        #[arg(long = "ref", value_name = "GLOB")]
        refs: Vec<String>,
    },
    /// List the paths of an image.
    Dir {
        wimfile: PathBuf,
        image: String,
        /// Other parts of a split WIM (a glob such as "foo*.swm"; repeatable).
        #[arg(long = "ref", value_name = "GLOB")]
        refs: Vec<String>,
    },
    /// Extract files or directories of an image.
    Extract {
        wimfile: PathBuf,
        image: String,
        #[arg(required = true)]
        paths: Vec<String>,
        #[arg(long = "dest", alias = "dest-dir", default_value = ".")]
        dest: PathBuf,
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Other parts of a split WIM (a glob such as "foo*.swm"; repeatable).
        #[arg(long = "ref", value_name = "GLOB")]
        refs: Vec<String>,
    },
    /// Check the integrity table, the metadata and every blob's SHA-1.
    Verify {
        wimfile: PathBuf,
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Other parts of a split WIM (a glob such as "foo*.swm"; repeatable).
        #[arg(long = "ref", value_name = "GLOB")]
        refs: Vec<String>,
    },
    /// Copy an image (or `all`) into another WIM, new or existing.
    Export {
        src: PathBuf,
        image: String,
        dest: PathBuf,
        /// New image name (single image only).
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        compress: Option<String>,
        #[arg(long)]
        boot: bool,
        #[arg(long)]
        check: bool,
        #[arg(long, default_value_t = 0)]
        threads: usize,
        #[command(flatten)]
        solid: SolidArgs,
        /// Other parts of a split WIM (a glob such as "foo*.swm"; repeatable).
        #[arg(long = "ref", value_name = "GLOB")]
        refs: Vec<String>,
        /// Reproducible output: the header GUID is derived from the content (SHA-1
        /// of the blob table and XML data) and each image written gets as XML
        /// creation and last modification time the newest creation or last-write
        /// time in its tree (0 if none; access times do not count), so the same
        /// tree and options give the same file byte for byte.
        #[arg(long)]
        deterministic: bool,
    },
    /// Split a WIM into parts (.swm) of at most about SIZE each (a blob is
    /// never divided): SWMFILE, then SWMFILE with 2, 3... before its
    /// extension.
    Split {
        wimfile: PathBuf,
        swmfile: PathBuf,
        /// Part size: a number of MiB (as wimlib's), or with a K, M or G suffix.
        #[arg(long, value_name = "SIZE")]
        part_size: String,
        /// Write an integrity table in each part.
        #[arg(long)]
        check: bool,
    },
    /// Join the parts of a split WIM into one WIM.
    Join {
        out: PathBuf,
        #[arg(required = true)]
        parts: Vec<PathBuf>,
        #[arg(long)]
        check: bool,
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
    /// Capture every capturable volume (NTFS or FAT32, not USB) of a disk
    /// image or device as its own image of one WIM, in disk order.
    CaptureDisk {
        disk: PathBuf,
        wimfile: PathBuf,
        #[arg(long, default_value = "lzx")]
        compress: String,
        #[arg(long)]
        check: bool,
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// WimScript.ini-style exclusion list (default: the Windows exclusions).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Treat the disk as USB (its volumes are then skipped).
        #[arg(long)]
        usb: bool,
    },
    /// Delete an image (the WIM is rebuilt without it, atomically).
    Delete {
        wimfile: PathBuf,
        image: String,
        #[arg(long)]
        check: bool,
    },
    /// Rebuild a WIM without unreferenced data and holes (as wimlib-imagex
    /// optimize): every image, the XML data and the boot index are kept, and
    /// an integrity table if it had one. Stored resources are copied as they
    /// are unless --recompress, --compress or --solid is given. Written
    /// beside the WIM and renamed over it when complete.
    Optimize(Box<OptimizeArgs>),
}

#[derive(Args)]
pub struct OptimizeArgs {
    wimfile: PathBuf,
    /// Compress all data again (with the WIM's compression unless --compress).
    #[arg(long)]
    recompress: bool,
    /// New compression: none, xpress, lzx or lzms, optionally with :LEVEL
    /// (implies --recompress; the result is not solid unless --solid).
    #[arg(long, value_name = "TYPE[:LEVEL]")]
    compress: Option<String>,
    /// Chunk size of ordinary resources (default: the WIM's, or the
    /// format's default when the compression changes).
    #[arg(long, value_name = "N")]
    chunk_size: Option<u32>,
    /// Write an integrity table (default: if the WIM had one).
    #[arg(long, conflicts_with = "nocheck")]
    check: bool,
    /// Write no integrity table.
    #[arg(long)]
    nocheck: bool,
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Reproducible output: the header GUID is derived from the content (SHA-1
    /// of the blob table and XML data) and each image written gets as XML
    /// creation and last modification time the newest creation or last-write
    /// time in its tree (0 if none; access times do not count), so the same
    /// tree and options give the same file byte for byte.
    #[arg(long)]
    deterministic: bool,
    #[command(flatten)]
    solid: SolidArgs,
}

#[derive(Args)]
pub struct CaptureArgs {
    source: PathBuf,
    wimfile: PathBuf,
    /// Image name (also `--name`); defaults to the source's base name.
    image_name: Option<String>,
    /// Image description (also `--description`).
    image_description: Option<String>,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    description: Option<String>,
    /// none, xpress (fast) or lzx (maximum), optionally with :LEVEL (20 fast .. 100 slow).
    #[arg(long, default_value = "lzx")]
    compress: String,
    #[arg(long)]
    chunk_size: Option<u32>,
    /// Mark the new image bootable.
    #[arg(long)]
    boot: bool,
    /// Write an integrity table.
    #[arg(long)]
    check: bool,
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// WimScript.ini-style exclusion list (default: the Windows exclusions).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Image flags (EDITIONID), as wimlib's --flags.
    #[arg(long)]
    flags: Option<String>,
    /// Reproducible output: the header GUID is derived from the content (SHA-1
    /// of the blob table and XML data) and each image written gets as XML
    /// creation and last modification time the newest creation or last-write
    /// time in its tree (0 if none; access times do not count), so the same
    /// tree and options give the same file byte for byte.
    #[arg(long)]
    deterministic: bool,
    /// Store absolute symbolic links that point inside the captured tree
    /// relative to its root, and mark the WIM RP_FIX (wimlib's default for
    /// a new WIM, and for an append to a WIM already marked so).
    #[arg(long, conflicts_with = "norpfix")]
    rpfix: bool,
    /// Store every symbolic link target as it is.
    #[arg(long)]
    norpfix: bool,
    #[command(flatten)]
    solid: SolidArgs,
}

#[derive(Args, Default)]
pub struct SolidArgs {
    /// Put file data in solid resources (a version 0xE00 "ESD"-style WIM).
    #[arg(long)]
    solid: bool,
    /// Chunk size of solid resources (default: 64 MiB for LZMS, 32 KiB otherwise).
    #[arg(long, value_name = "SIZE", requires = "solid")]
    solid_chunk_size: Option<u32>,
    /// xpress, lzx or lzms (default lzms, as wimlib).
    #[arg(long, value_name = "TYPE", requires = "solid")]
    solid_compress: Option<String>,
}

impl SolidArgs {
    fn options(&self) -> Result<Option<SolidOptions>> {
        if !self.solid {
            return Ok(None);
        }
        let format = match &self.solid_compress {
            Some(c) => parse_compression(c)?.0,
            None => CompressionFormat::Lzms,
        };
        if format == CompressionFormat::None {
            bail!("--solid-compress none: solid resources must be compressed");
        }
        let mut o = SolidOptions::with_default_chunk(format);
        if let Some(cs) = self.solid_chunk_size {
            o.chunk_size = cs;
        }
        Ok(Some(o))
    }
}

/// Expands `--ref` arguments: a glob (`*` and `?` in the file name part)
/// lists the matching files of its directory, sorted; a plain path is
/// taken as it is. A glob that matches nothing is an error.
pub fn expand_refs(globs: &[String]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for g in globs {
        let p = Path::new(g);
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !name.contains(['*', '?']) {
            out.push(p.to_path_buf());
            continue;
        }
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("--ref {g}: reading {}", dir.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| wildcard_match(&name, &e.file_name().to_string_lossy()))
            .map(|e| dir.join(e.file_name()))
            .collect();
        if found.is_empty() {
            bail!("--ref {g}: no file matches");
        }
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

/// `*` matches any run of characters, `?` any one character.
fn wildcard_match(pat: &str, s: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pat.chars().collect(), s.chars().collect());
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Opens a WIM with the other parts of a split set named by `--ref`.
fn open_wim(path: &Path, refs: &[String]) -> Result<Wim> {
    let refs = expand_refs(refs)?;
    Ok(Wim::open_with_refs(path, &refs)?)
}

/// Parses a split part size: plain numbers are MiB (wimlib's unit, and
/// like wimlib fractions are allowed), or a number with K, M or G.
pub fn parse_part_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => bail!("--part-size {s:?}: unknown unit {c:?} (K, M or G)"),
            };
            (&t[..i], m)
        }
        _ => (t, 1 << 20),
    };
    let v: f64 = num
        .parse()
        .with_context(|| format!("--part-size {s:?}: not a number"))?;
    let bytes = v * mult as f64;
    if !(1.0..9.0e18).contains(&bytes) {
        bail!("--part-size {s:?}: must be positive");
    }
    Ok(bytes as u64)
}

pub fn run(cmd: WimCommand) -> Result<i32> {
    match cmd {
        WimCommand::Capture(a) => capture(*a, false),
        WimCommand::Append(a) => capture(*a, true),
        WimCommand::Apply {
            wimfile,
            rest,
            threads,
            refs,
            rpfix,
            norpfix,
        } => {
            let opts = ApplyOptions {
                threads,
                rpfix: if rpfix {
                    Some(true)
                } else if norpfix {
                    Some(false)
                } else {
                    None
                },
            };
            apply(&open_wim(&wimfile, &refs)?, &wimfile, &rest, &opts)
        }
        WimCommand::Info {
            wimfile,
            image,
            xml,
            json,
            refs,
        } => info(
            &open_wim(&wimfile, &refs)?,
            &wimfile,
            image.as_deref(),
            xml,
            json,
        ),
        WimCommand::Dir {
            wimfile,
            image,
            refs,
        } => dir(&open_wim(&wimfile, &refs)?, &image),
        WimCommand::Extract {
            wimfile,
            image,
            paths,
            dest,
            threads,
            refs,
        } => extract(
            &open_wim(&wimfile, &refs)?,
            &wimfile,
            &image,
            &paths,
            &dest,
            threads,
        ),
        WimCommand::Verify {
            wimfile,
            threads,
            refs,
        } => verify(&open_wim(&wimfile, &refs)?, &wimfile, threads),
        WimCommand::Export {
            src,
            image,
            dest,
            name,
            compress,
            boot,
            check,
            threads,
            solid,
            refs,
            deterministic,
        } => export(
            &open_wim(&src, &refs)?,
            &image,
            &dest,
            name,
            compress.as_deref(),
            boot,
            check,
            threads,
            solid.options()?,
            deterministic,
        ),
        WimCommand::Split {
            wimfile,
            swmfile,
            part_size,
            check,
        } => {
            let size = parse_part_size(&part_size)?;
            let wim = Wim::open(&wimfile)?;
            let parts = tasq_wim::split::split(&wim, &swmfile, size, check)
                .with_context(|| format!("splitting {}", wimfile.display()))?;
            eprintln!("Wrote {} parts", parts.len());
            for p in parts {
                println!("{}", p.display());
            }
            Ok(0)
        }
        WimCommand::Join {
            out,
            parts,
            check,
            threads,
        } => {
            let wim = join_open(&parts)?;
            tasq_wim::split::join(&wim, &out, threads, check)
                .with_context(|| format!("writing {}", out.display()))?;
            eprintln!("Joined {} parts into {}", parts.len(), out.display());
            Ok(0)
        }
        WimCommand::CaptureDisk {
            disk,
            wimfile,
            compress,
            check,
            threads,
            config,
            usb,
        } => capture_disk(
            &disk,
            &wimfile,
            &compress,
            check,
            threads,
            config.as_deref(),
            usb,
        ),
        WimCommand::Delete {
            wimfile,
            image,
            check,
        } => delete(&wimfile, &image, check),
        WimCommand::Optimize(a) => optimize(&a),
    }
}

/// Opens the parts given to `join` in any order: part 1 is found by its
/// header.
fn join_open(parts: &[PathBuf]) -> Result<Wim> {
    let mut first = None;
    for p in parts {
        let mut f = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
        let mut h = [0u8; tasq_wim::header::HEADER_SIZE];
        use std::io::Read;
        f.read_exact(&mut h)
            .with_context(|| format!("{}: not a WIM part (too short)", p.display()))?;
        let hdr = tasq_wim::header::Header::parse(&h)
            .with_context(|| format!("{}: not a WIM part", p.display()))?;
        if hdr.part_number == 1 {
            first = Some(p);
            break;
        }
    }
    let Some(first) = first else {
        bail!("none of the parts given is part 1 of a split WIM");
    };
    let rest: Vec<PathBuf> = parts.iter().filter(|p| *p != first).cloned().collect();
    Ok(Wim::open_with_refs(first, &rest)?)
}

/// Parses `TYPE[:LEVEL]` as wimlib does (with its aliases).
pub fn parse_compression(s: &str) -> Result<(CompressionFormat, u32)> {
    let (t, level) = match s.split_once(':') {
        Some((t, l)) => (
            t,
            l.parse::<u32>()
                .with_context(|| format!("--compress {s:?}: level {l:?} is not a number"))?,
        ),
        None => (s, 50),
    };
    if level == 0 {
        bail!("--compress {s:?}: level must be at least 1");
    }
    let f = match t.to_ascii_lowercase().as_str() {
        "none" => CompressionFormat::None,
        "xpress" | "fast" => CompressionFormat::Xpress,
        "lzx" | "maximum" => CompressionFormat::Lzx,
        // Whether LZMS can be written is the library's call (it says so
        // when the codec is missing).
        "lzms" | "recovery" => CompressionFormat::Lzms,
        _ => bail!("--compress {t:?}: unknown compression type (none, xpress, lzx, lzms)"),
    };
    Ok((f, level))
}

fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if !std::io::stderr().is_terminal() {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    pb.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {pos_files}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "pos_files",
            |_s: &indicatif::ProgressState, _w: &mut dyn std::fmt::Write| {},
        )
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

fn load_config(path: Option<&Path>) -> Result<CaptureConfig> {
    match path {
        None => Ok(CaptureConfig::windows_default()),
        Some(p) => {
            let bytes = std::fs::read(p)
                .with_context(|| format!("reading capture configuration {}", p.display()))?;
            Ok(CaptureConfig::parse(&bytes, &p.display().to_string())?)
        }
    }
}

fn capture(a: CaptureArgs, append: bool) -> Result<i32> {
    let (format, level) = parse_compression(&a.compress)?;
    let chunk_size = a.chunk_size.unwrap_or(32768);
    let config = load_config(a.config.as_deref())?;
    let name = a.name.or(a.image_name).or_else(|| {
        a.source
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
    });
    let description = a.description.or(a.image_description);
    let opts = WriteOptions {
        compression: format,
        chunk_size,
        level,
        threads: a.threads,
        integrity: a.check,
        solid: a.solid.options()?,
    };
    let mut w = if append {
        WimWriter::append(&a.wimfile, opts)?
    } else {
        WimWriter::create(&a.wimfile, opts)?
    };
    w.set_deterministic(a.deterministic);
    // Fix-ups are a directory capture's (as wimlib's: a volume's links are
    // stored as the volume holds them).
    let is_dir = crate::volume_addr::volume_address(&a.source).is_none();
    if a.rpfix && !is_dir {
        bail!(
            "--rpfix: reparse-point fixups apply to directory captures, and {} is a volume",
            a.source.display()
        );
    }
    let rpfix = is_dir && !a.norpfix && (a.rpfix || !append || w.has_rpfix());
    let pb = progress_bar(0, "Capturing");
    let image = ImageOptions {
        name,
        description,
        flags: a.flags,
        boot: a.boot,
        rpfix,
        ..Default::default()
    };
    let (n, warnings) = crate::volume_addr::with_source(&a.source, rpfix, |source| {
        Ok(w.add_image(source, &config, &image, &mut |ev| match ev {
            ProgressEvent::Scan(s) => {
                pb.set_message(format!("Scanning ({} files, {} dirs)", s.files, s.dirs))
            }
            ProgressEvent::Write(p) => {
                pb.set_length(p.bytes_total);
                pb.set_position(p.bytes_done);
                pb.set_message(format!(
                    "Archiving {}/{} files",
                    p.files_done, p.files_total
                ));
            }
        })?)
    })
    .with_context(|| format!("capturing {}", a.source.display()))?;
    w.finish()
        .with_context(|| format!("writing {}", a.wimfile.display()))?;
    pb.finish_and_clear();
    for warn in warnings {
        eprintln!("tasq: warning: {warn}");
    }
    eprintln!(
        "{} image {n} of {}",
        if append { "Appended" } else { "Captured" },
        a.wimfile.display()
    );
    Ok(0)
}

fn apply(wim: &Wim, wimfile: &Path, rest: &[String], opts: &ApplyOptions) -> Result<i32> {
    let (image, target) = match rest {
        [t] => {
            if wim.image_count() != 1 {
                bail!(
                    "{} has {} images: say which one to apply (index or name)",
                    wimfile.display(),
                    wim.image_count()
                );
            }
            (1, t.as_str())
        }
        [i, t] => (wim.resolve_image(i)?, t.as_str()),
        _ => bail!("usage: tasq wim apply WIMFILE [IMAGE] TARGET"),
    };
    if let Some(addr) = crate::volume_addr::volume_address(Path::new(target)) {
        let pb = progress_bar(0, "Applying");
        let warnings = crate::volume_addr::apply_to_volume(wim, image, &addr, opts, &mut |p| {
            pb.set_length(p.bytes_total);
            pb.set_position(p.bytes_done);
        })
        .with_context(|| format!("applying image {image} of {} to {addr}", wimfile.display()))?;
        pb.finish_and_clear();
        for warn in warnings {
            eprintln!("tasq: warning: {warn}");
        }
        return Ok(0);
    }
    let created = DirsCreated::before(Path::new(target));
    let mut tgt = HostDirTarget::new(target).with_context(|| format!("apply target {target}"))?;
    let pb = progress_bar(0, "Applying");
    apply_paths(wim, image, &[], &mut tgt, opts, &mut |p| {
        pb.set_length(p.bytes_total);
        pb.set_position(p.bytes_done);
    })
    .inspect_err(|_| created.undo())
    .with_context(|| {
        format!(
            "applying image {image} of {} to {target}",
            wimfile.display()
        )
    })?;
    pb.finish_and_clear();
    for warn in tgt.warnings() {
        eprintln!("tasq: warning: {warn}");
    }
    Ok(0)
}

/// The directories a `HostDirTarget` is about to create for its root (the
/// missing ones, deepest first). `apply_paths` checks the whole image
/// (metadata, names, blobs) before its first call to the target, so when
/// an image is refused they are still empty: removing them again leaves
/// nothing behind. `remove_dir` never removes a directory with content.
struct DirsCreated(Vec<PathBuf>);

impl DirsCreated {
    fn before(target: &Path) -> DirsCreated {
        let mut v = Vec::new();
        let mut p = Some(target);
        while let Some(d) =
            p.filter(|d| !d.as_os_str().is_empty() && std::fs::symlink_metadata(d).is_err())
        {
            v.push(d.to_path_buf());
            p = d.parent();
        }
        DirsCreated(v)
    }

    fn undo(&self) {
        for d in &self.0 {
            if std::fs::remove_dir(d).is_err() {
                break;
            }
        }
    }
}

fn extract(
    wim: &Wim,
    wimfile: &Path,
    image: &str,
    paths: &[String],
    dest: &Path,
    threads: usize,
) -> Result<i32> {
    let n = wim.resolve_image(image)?;
    let created = DirsCreated::before(dest);
    let mut tgt =
        HostDirTarget::new(dest).with_context(|| format!("destination {}", dest.display()))?;
    apply_paths(
        wim,
        n,
        paths,
        &mut tgt,
        &ApplyOptions {
            threads,
            ..Default::default()
        },
        &mut |_| {},
    )
    .inspect_err(|_| created.undo())
    .with_context(|| format!("extracting from image {n} of {}", wimfile.display()))?;
    Ok(0)
}

fn filetime_str(ft: u64) -> String {
    if ft == 0 {
        return "-".into();
    }
    let secs = (ft / 10_000_000) as i64 - 11_644_473_600;
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let days = secs.div_euclid(86400);
    let sod = secs.rem_euclid(86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

fn info(wim: &Wim, wimfile: &Path, image: Option<&str>, xml: bool, json: bool) -> Result<i32> {
    if xml {
        println!("{}", wim.info.to_xml_string());
        return Ok(0);
    }
    let selected: Vec<u32> = match image {
        Some(i) => vec![wim.resolve_image(i)?],
        None => (1..=wim.image_count()).collect(),
    };
    let h = &wim.header;
    if json {
        let images: Vec<serde_json::Value> = selected
            .iter()
            .map(|&n| {
                let mut v = serde_json::to_value(
                    wim.info
                        .images
                        .get(n as usize - 1)
                        .cloned()
                        .unwrap_or_default(),
                )
                .unwrap_or(serde_json::Value::Null);
                if let Some(o) = v.as_object_mut() {
                    o.insert("index".into(), n.into());
                }
                v
            })
            .collect();
        let doc = serde_json::json!({
            "path": wimfile.display().to_string(),
            "guid": h.guid.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "version": h.version,
            "image_count": wim.image_count(),
            "compression": wim.compression().to_string(),
            "chunk_size": h.chunk_size,
            "part_number": h.part_number,
            "total_parts": h.total_parts,
            "boot_index": h.boot_index,
            "size": wim.file_size(),
            "solid_resources": wim.solid.len(),
            "integrity": !h.integrity.is_empty(),
            "pipable": h.pipable,
            "images": images,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(0);
    }
    println!("WIM Information:");
    println!("----------------");
    println!("Path:           {}", wimfile.display());
    println!(
        "GUID:           0x{}",
        h.guid
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    println!("Version:        {}", h.version);
    println!("Image Count:    {}", wim.image_count());
    println!(
        "Compression:    {}",
        match wim.compression() {
            CompressionFormat::None => "None".to_string(),
            c => c.to_string(),
        }
    );
    println!("Chunk Size:     {} bytes", h.chunk_size);
    if let Some(r) = wim.solid.first() {
        println!(
            "Solid:          {} resource(s), {} in {} byte chunks",
            wim.solid.len(),
            r.format,
            r.chunk_size
        );
    }
    println!("Part Number:    {}/{}", h.part_number, h.total_parts);
    println!("Boot Index:     {}", h.boot_index);
    println!("Size:           {} bytes", wim.file_size());
    println!(
        "Integrity:      {}",
        if h.integrity.is_empty() { "no" } else { "yes" }
    );
    println!("Pipable:        {}", if h.pipable { "yes" } else { "no" });
    println!();
    println!("Available Images:");
    println!("-----------------");
    for n in selected {
        let Some(im) = wim.info.images.get(n as usize - 1) else {
            continue;
        };
        println!("Index:                  {n}");
        println!(
            "Name:                   {}",
            im.name.as_deref().unwrap_or("")
        );
        println!(
            "Description:            {}",
            im.description.as_deref().unwrap_or("")
        );
        if let Some(d) = &im.display_name {
            println!("Display Name:           {d}");
        }
        if let Some(f) = &im.flags {
            println!("Flags:                  {f}");
        }
        println!("Directory Count:        {}", im.dir_count);
        println!("File Count:             {}", im.file_count);
        println!("Total Bytes:            {}", im.total_bytes);
        println!("Hard Link Bytes:        {}", im.hard_link_bytes);
        println!("Creation Time:          {}", filetime_str(im.creation_time));
        println!(
            "Last Modification Time: {}",
            filetime_str(im.last_modification_time)
        );
        if let Some(w) = &im.windows {
            if let Some(a) = w.arch {
                println!(
                    "Architecture:           {}",
                    match a {
                        0 => "x86",
                        5 => "ARM",
                        6 => "ia64",
                        9 => "x86_64",
                        12 => "ARM64",
                        _ => "unknown",
                    }
                );
            }
            if let Some(p) = &w.product_name {
                println!("Product Name:           {p}");
            }
            if let Some(e) = &w.edition_id {
                println!("Edition ID:             {e}");
            }
            if let Some(v) = &w.version {
                println!(
                    "Major Version:          {}\nMinor Version:          {}\nBuild:                  {}",
                    v.major.unwrap_or(0),
                    v.minor.unwrap_or(0),
                    v.build.unwrap_or(0)
                );
            }
        }
        println!();
    }
    Ok(0)
}

fn dir(wim: &Wim, image: &str) -> Result<i32> {
    let n = wim.resolve_image(image)?;
    let tree = wim.read_image(n)?;
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for d in tree.preorder() {
        let p = tree.path_of(d).replace('\\', "/");
        if writeln!(out, "{p}").is_err() {
            break; // closed pipe (head, less): not an error
        }
    }
    let _ = out.flush();
    Ok(0)
}

fn verify(wim: &Wim, wimfile: &Path, threads: usize) -> Result<i32> {
    let pb = progress_bar(0, "Verifying");
    let rep = tasq_wim::verify::verify(wim, threads, &mut |d, t| {
        pb.set_length(t);
        pb.set_position(d);
    })
    .with_context(|| format!("verifying {}", wimfile.display()))?;
    pb.finish_and_clear();
    println!(
        "{} verified: {} image(s), {} blobs, {} bytes{}",
        wimfile.display(),
        rep.images,
        rep.blobs,
        rep.bytes,
        if rep.integrity_chunks > 0 {
            format!(", integrity table ({} pieces) OK", rep.integrity_chunks)
        } else {
            String::new()
        }
    );
    Ok(0)
}

#[allow(clippy::too_many_arguments)]
fn export(
    wim: &Wim,
    image: &str,
    dest: &Path,
    name: Option<String>,
    compress: Option<&str>,
    boot: bool,
    check: bool,
    threads: usize,
    solid: Option<SolidOptions>,
    deterministic: bool,
) -> Result<i32> {
    let images: Vec<u32> = if image.eq_ignore_ascii_case("all") || image == "*" {
        (1..=wim.image_count()).collect()
    } else {
        vec![wim.resolve_image(image)?]
    };
    if name.is_some() && images.len() != 1 {
        bail!("--name can only be given when exporting one image");
    }
    let (format, level) = match compress {
        Some(c) => parse_compression(c)?,
        None => (wim.compression(), 50),
    };
    let chunk = if format == wim.compression() && wim.header.chunk_size != 0 {
        wim.header.chunk_size
    } else {
        32768
    };
    let opts = WriteOptions {
        compression: format,
        chunk_size: chunk,
        level,
        threads,
        integrity: check,
        solid,
    };
    let mut w = if dest.exists() {
        if compress.is_some() {
            let existing = Wim::open(dest)?;
            if existing.compression() != format {
                bail!(
                    "{} is {}; an export into it cannot use --compress {}",
                    dest.display(),
                    existing.compression(),
                    format
                );
            }
        }
        WimWriter::append(dest, opts)?
    } else {
        WimWriter::create(dest, opts)?
    };
    w.set_deterministic(deterministic);
    // All at once, so that a solid resource is judged by all the images
    // taking data from it.
    let list: Vec<(u32, ImageOptions)> = images
        .iter()
        .map(|&n| {
            let opts = ImageOptions {
                name: name.clone(),
                boot: boot && images.len() == 1,
                ..Default::default()
            };
            (n, opts)
        })
        .collect();
    let added = w.add_images_from(wim, &list).with_context(|| {
        format!(
            "exporting image{} {}",
            if images.len() > 1 { "s" } else { "" },
            image
        )
    })?;
    for (n, k) in images.iter().zip(added) {
        if boot && images.len() > 1 && wim.header.boot_index == *n {
            w.set_boot_index(k)?;
        }
    }
    w.finish()
        .with_context(|| format!("writing {}", dest.display()))?;
    Ok(0)
}

fn delete(wimfile: &Path, image: &str, check: bool) -> Result<i32> {
    let wim = Wim::open(wimfile)?;
    if wim.header.pipable {
        bail!(
            "{}: cannot delete an image from a pipable WIM in place (tasq reads pipable WIMs; \
             `tasq wim export` the images to keep into a normal WIM)",
            wimfile.display()
        );
    }
    let del = wim.resolve_image(image)?;
    let opts = WriteOptions {
        compression: wim.compression(),
        chunk_size: if wim.header.chunk_size == 0 {
            32768
        } else {
            wim.header.chunk_size
        },
        integrity: check || !wim.header.integrity.is_empty(),
        // A solid WIM stays solid, with its first solid resource's format.
        solid: wim.solid.first().map(|r| SolidOptions {
            compression: r.format,
            chunk_size: r.chunk_size,
        }),
        ..Default::default()
    };
    let mut w = WimWriter::create(wimfile, opts)?;
    let keep: Vec<(u32, ImageOptions)> = (1..=wim.image_count())
        .filter(|&n| n != del)
        .map(|n| (n, ImageOptions::default()))
        .collect();
    let added = w
        .add_images_from(&wim, &keep)
        .context("copying the other images")?;
    let boot = keep
        .iter()
        .zip(added)
        .find(|((n, _), _)| *n == wim.header.boot_index)
        .map_or(0, |(_, k)| k);
    w.set_boot_index(boot)?;
    w.finish()
        .with_context(|| format!("rewriting {}", wimfile.display()))?;
    eprintln!("Deleted image {del} from {}", wimfile.display());
    Ok(0)
}

fn optimize(a: &OptimizeArgs) -> Result<i32> {
    let compression = a.compress.as_deref().map(parse_compression).transpose()?;
    let integrity = match (a.check, a.nocheck) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let o = OptimizeOptions {
        compression,
        chunk_size: a.chunk_size,
        solid: a.solid.options()?,
        recompress: a.recompress,
        integrity,
        threads: a.threads,
        deterministic: a.deterministic,
    };
    let path = &a.wimfile;
    let r = tasq_wim::optimize::optimize(path, &o)
        .with_context(|| format!("optimizing {}", path.display()))?;
    println!(
        "\"{}\" original size: {} KiB",
        path.display(),
        r.old_size >> 10
    );
    println!(
        "\"{}\" optimized size: {} KiB",
        path.display(),
        r.new_size >> 10
    );
    println!(
        "Space saved: {} KiB",
        (r.old_size as i64 - r.new_size as i64) >> 10
    );
    Ok(0)
}

fn capture_disk(
    disk: &Path,
    wimfile: &Path,
    compress: &str,
    check: bool,
    threads: usize,
    config: Option<&Path>,
    usb: bool,
) -> Result<i32> {
    let (format, level) = parse_compression(compress)?;
    let config = load_config(config)?;
    let volumes = tasq_volume::disk_capture::disk_volumes(disk, usb)?;
    let skipped = |v: &tasq_volume::disk_capture::DiskVolume| {
        if let Some(why) = &v.skip {
            eprintln!("Skipped volume {}: {}: {why}", v.index, v.description);
        }
    };
    if volumes.iter().all(|v| v.skip.is_some()) {
        volumes.iter().for_each(skipped);
        bail!(
            "{}: no capturable volume (NTFS or FAT32 on a non-USB disk)",
            disk.display()
        );
    }
    let opts = WriteOptions {
        compression: format,
        chunk_size: 32768,
        level,
        threads,
        integrity: check,
        solid: None,
    };
    let mut w = WimWriter::create(wimfile, opts)?;
    let name = disk
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for v in &volumes {
        if v.skip.is_some() {
            skipped(v);
            continue;
        }
        let image = ImageOptions {
            name: Some(format!("{name}:{}", v.index)),
            description: Some(format!("Captured from {}", v.description)),
            ..Default::default()
        };
        let (n, warnings) = tasq_volume::disk_capture::capture_volume(
            &mut w,
            disk,
            v.index,
            &config,
            &image,
            &mut |_| {},
        )
        .with_context(|| format!("capturing volume {} of {}", v.index, disk.display()))?;
        for warn in warnings {
            eprintln!("tasq: warning: {warn}");
        }
        eprintln!(
            "Captured volume {} ({}) as image {n}",
            v.index, v.description
        );
    }
    w.finish()
        .with_context(|| format!("writing {}", wimfile.display()))?;
    Ok(0)
}
