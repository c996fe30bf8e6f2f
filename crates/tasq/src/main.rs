//! `tasq`: the command line. Thin: it parses arguments, wires the library
//! crates together and prints one clear line per failure.

mod demo;
mod disk_cmd;
mod run_cmd;
mod ts_cmd;
mod volume_addr;
mod wim_cmd;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tasq",
    version,
    about = "Build-and-capture task sequences and WIM imaging"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Capture, apply and inspect WIM images (wimlib-imagex style).
    Wim {
        #[command(subcommand)]
        cmd: wim_cmd::WimCommand,
    },
    /// Disk images: create, partition (BIOS/UEFI layouts), list volumes.
    Disk {
        #[command(subcommand)]
        cmd: disk_cmd::DiskCommand,
    },
    /// Run a task sequence on a reference computer (or resume one).
    Run(run_cmd::RunArgs),
    /// The content library (distribution point on disk).
    Content {
        #[command(subcommand)]
        cmd: run_cmd::ContentCommand,
    },
    /// Task sequences: show, export, new (wizard), validate, edit.
    Ts {
        #[command(subcommand)]
        cmd: ts_cmd::TsCommand,
    },
    /// Run the built-in example end to end (everything under --out).
    Demo {
        #[arg(long, default_value_os_t = demo::default_out())]
        out: std::path::PathBuf,
    },
}

/// One malloc arena for every thread (glibc). Chunk buffers are
/// allocated on the decompressing threads and freed on the apply thread;
/// with an arena per thread, each held its own few megabytes of such
/// blocks: the apply of /usr/share peaked 4 MiB higher (51.5 vs 47.5 MiB),
/// at the same speed, and captures were as fast either way (measured in
/// alternated runs; the threads allocate rarely, so they seldom contend).
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called
    // before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

fn main() {
    one_malloc_arena();
    let cli = Cli::parse();
    let result = match cli.cmd {
        Command::Wim { cmd } => wim_cmd::run(cmd),
        Command::Demo { out } => demo::run(&out),
        Command::Ts { cmd } => ts_cmd::run(cmd),
        Command::Disk { cmd } => disk_cmd::run(cmd),
        Command::Run(args) => run_cmd::run(args),
        Command::Content { cmd } => run_cmd::content(cmd),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("tasq: error: {}", one_line(&e));
            std::process::exit(1);
        }
    }
}

/// The error chain on one line: "context: cause: cause".
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in e.chain() {
        let s = c.to_string();
        if parts.last().is_none_or(|p| !p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}
