//! The platform layer: the operating-system actions the full-OS steps need
//! (run an installer's command line, ask whether the computer is in a
//! domain, run Sysprep), behind one trait so the steps stay OS-neutral and
//! tests can inject a fake.
//!
//! `LinuxPlatform` is the one that runs here. `WindowsPlatform` exists so the
//! shape is there, but it has never been built or run on Windows: every
//! call returns an error saying so instead of pretending.
//! [`native`] picks the platform of the machine the engine was built for.

use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// The action does not exist on this platform.
    #[error("{0}")]
    Unsupported(String),
    #[error("the command timed out after {secs} s and was killed")]
    TimedOut { secs: u64 },
    #[error("the command was ended by signal {0}")]
    Signal(i32),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Failed(String),
}

/// A command line to run (through the platform's shell).
#[derive(Debug, Clone, Default)]
pub struct CommandRun<'a> {
    pub command_line: &'a str,
    /// Working directory (an installer's content folder).
    pub dir: Option<&'a Path>,
    pub timeout: Option<Duration>,
    /// Extra environment variables for the process.
    pub env: &'a [(String, String)],
}

/// What a finished process left: exit code and the tail of its output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessOutput {
    pub code: i64,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    Workgroup,
    /// Joined to this domain (or realm).
    Domain(String),
}

/// Sysprep's command line, in Windows terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysprepCommand {
    /// `C:\Windows\System32\Sysprep\sysprep.exe`.
    pub program: String,
    pub args: Vec<String>,
}

impl SysprepCommand {
    pub fn command_line(&self) -> String {
        let mut s = self.program.clone();
        for a in &self.args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }
}

/// The OS actions the full-OS steps use.
pub trait Platform: Send + Sync {
    /// "Linux", "Windows", for messages.
    fn name(&self) -> &str;
    /// Runs a command line and waits for it (killing its whole process tree
    /// on timeout).
    fn run_command(&self, run: &CommandRun) -> Result<ProcessOutput, PlatformError>;
    /// Whether the computer is joined to a domain.
    fn domain_membership(&self) -> Result<Membership, PlatformError>;
    /// Runs Sysprep; returns its exit code.
    fn run_sysprep(
        &self,
        cmd: &SysprepCommand,
        timeout: Option<Duration>,
    ) -> Result<i64, PlatformError>;
}

/// The platform the engine was built for.
pub fn native() -> std::sync::Arc<dyn Platform> {
    #[cfg(windows)]
    {
        std::sync::Arc::new(windows::WindowsPlatform)
    }
    #[cfg(not(windows))]
    {
        std::sync::Arc::new(LinuxPlatform::default())
    }
}

/// Linux: commands through `/bin/sh`; a computer is domain-joined when
/// `realm list` names a configured realm or SSSD is configured for a domain.
#[derive(Debug, Clone)]
pub struct LinuxPlatform {
    /// The `realm` program (realmd); a missing program means "no realmd".
    pub realm_program: PathBuf,
    /// SSSD's configuration; a missing file means "no SSSD".
    pub sssd_conf: PathBuf,
}

impl Default for LinuxPlatform {
    fn default() -> Self {
        LinuxPlatform {
            realm_program: PathBuf::from("realm"),
            sssd_conf: PathBuf::from("/etc/sssd/sssd.conf"),
        }
    }
}

/// The domains listed by `domains =` in the `[sssd]` section of sssd.conf.
pub fn sssd_domains(conf: &str) -> Vec<String> {
    let mut in_sssd = false;
    let mut out = Vec::new();
    for line in conf.lines() {
        let t = line.trim();
        if t.starts_with('#') || t.starts_with(';') || t.is_empty() {
            continue;
        }
        if let Some(sec) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            in_sssd = sec.trim().eq_ignore_ascii_case("sssd");
            continue;
        }
        if !in_sssd {
            continue;
        }
        if let Some((k, v)) = t.split_once('=') {
            if k.trim().eq_ignore_ascii_case("domains") {
                out.extend(
                    v.split(',')
                        .map(str::trim)
                        .filter(|d| !d.is_empty())
                        .map(str::to_string),
                );
            }
        }
    }
    out
}

impl LinuxPlatform {
    /// `realm list --name-only`: `None` when realmd is not installed.
    fn realm_names(&self) -> Result<Option<Vec<String>>, PlatformError> {
        let out = std::process::Command::new(&self.realm_program)
            .args(["list", "--name-only"])
            .stdin(std::process::Stdio::null())
            .output();
        let out = match out {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(PlatformError::Io {
                    what: format!("running {} list", self.realm_program.display()),
                    source: e,
                })
            }
            Ok(o) => o,
        };
        if !out.status.success() {
            return Err(PlatformError::Failed(format!(
                "{} list failed ({}): {}",
                self.realm_program.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(Some(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
        ))
    }
}

impl Platform for LinuxPlatform {
    fn name(&self) -> &str {
        "Linux"
    }

    fn run_command(&self, run: &CommandRun) -> Result<ProcessOutput, PlatformError> {
        crate::steps::general::run_shell(run)
    }

    fn domain_membership(&self) -> Result<Membership, PlatformError> {
        if let Some(names) = self.realm_names()? {
            if let Some(first) = names.into_iter().next() {
                return Ok(Membership::Domain(first));
            }
        }
        match std::fs::read_to_string(&self.sssd_conf) {
            Ok(text) => Ok(match sssd_domains(&text).into_iter().next() {
                Some(d) => Membership::Domain(d),
                None => Membership::Workgroup,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Membership::Workgroup),
            Err(e) => Err(PlatformError::Io {
                what: format!("reading {}", self.sssd_conf.display()),
                source: e,
            }),
        }
    }

    fn run_sysprep(
        &self,
        _cmd: &SysprepCommand,
        _timeout: Option<Duration>,
    ) -> Result<i64, PlatformError> {
        Err(PlatformError::Unsupported(
            "Sysprep exists only on Windows; this step cannot run here (the engine runs on Linux)"
                .into(),
        ))
    }
}

/// Windows. Never built or run on Windows so far: every action returns an
/// error saying so rather than doing something untested.
pub mod windows {
    use super::*;

    #[derive(Debug, Clone, Copy, Default)]
    pub struct WindowsPlatform;

    fn never_run(what: &str) -> PlatformError {
        PlatformError::Unsupported(format!(
            "{what} on Windows is not implemented: tasq's Windows platform layer has never been built or run on Windows"
        ))
    }

    impl Platform for WindowsPlatform {
        fn name(&self) -> &str {
            "Windows"
        }
        fn run_command(&self, _run: &CommandRun) -> Result<ProcessOutput, PlatformError> {
            Err(never_run("running a command line"))
        }
        fn domain_membership(&self) -> Result<Membership, PlatformError> {
            Err(never_run("querying domain membership"))
        }
        fn run_sysprep(
            &self,
            _cmd: &SysprepCommand,
            _timeout: Option<Duration>,
        ) -> Result<i64, PlatformError> {
            Err(never_run("running Sysprep"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sssd_domains_come_from_the_sssd_section_only() {
        let conf = "# comment\n[domain/ignored]\ndomains = nope\n[sssd]\nservices = nss, pam\ndomains = corp.example.com, lab.example\n[nss]\n";
        assert_eq!(
            sssd_domains(conf),
            vec!["corp.example.com".to_string(), "lab.example".to_string()]
        );
        assert!(sssd_domains("[sssd]\nservices = nss\n").is_empty());
        assert!(sssd_domains("").is_empty());
    }

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn linux_membership_from_realm_then_sssd() {
        let d = tempfile::tempdir().unwrap();
        let none = LinuxPlatform {
            realm_program: d.path().join("no-such-realm"),
            sssd_conf: d.path().join("no-such-sssd.conf"),
        };
        assert_eq!(none.domain_membership().unwrap(), Membership::Workgroup);

        let joined = LinuxPlatform {
            realm_program: script(d.path(), "realm", "echo corp.example.com"),
            sssd_conf: d.path().join("no-such-sssd.conf"),
        };
        assert_eq!(
            joined.domain_membership().unwrap(),
            Membership::Domain("corp.example.com".into())
        );

        std::fs::write(d.path().join("sssd.conf"), "[sssd]\ndomains = lab.local\n").unwrap();
        let sssd = LinuxPlatform {
            realm_program: script(d.path(), "realm-empty", "exit 0"),
            sssd_conf: d.path().join("sssd.conf"),
        };
        assert_eq!(
            sssd.domain_membership().unwrap(),
            Membership::Domain("lab.local".into())
        );

        let broken = LinuxPlatform {
            realm_program: script(d.path(), "realm-broken", "echo no bus >&2; exit 1"),
            sssd_conf: d.path().join("no-such-sssd.conf"),
        };
        let e = broken.domain_membership().unwrap_err().to_string();
        assert!(e.contains("no bus"), "{e}");
    }

    #[test]
    fn sysprep_is_refused_on_linux_and_windows_layer_says_never_run() {
        let cmd = SysprepCommand {
            program: "C:\\Windows\\System32\\Sysprep\\sysprep.exe".into(),
            args: vec!["/generalize".into()],
        };
        let e = LinuxPlatform::default()
            .run_sysprep(&cmd, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("Sysprep exists only on Windows"), "{e}");
        let w = windows::WindowsPlatform;
        for e in [
            w.run_sysprep(&cmd, None).unwrap_err(),
            w.domain_membership().unwrap_err(),
            w.run_command(&CommandRun::default()).unwrap_err(),
        ] {
            assert!(e.to_string().contains("never been built or run"), "{e}");
        }
    }

    #[test]
    fn linux_runs_commands_with_env_dir_and_timeout() {
        let d = tempfile::tempdir().unwrap();
        let p = LinuxPlatform::default();
        let env = vec![("TASQ_X".to_string(), "forty-two".to_string())];
        let out = p
            .run_command(&CommandRun {
                command_line: "echo \"$TASQ_X\" > out.txt; echo err >&2; exit 7",
                dir: Some(d.path()),
                timeout: Some(Duration::from_secs(30)),
                env: &env,
            })
            .unwrap();
        assert_eq!(out.code, 7);
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(
            std::fs::read_to_string(d.path().join("out.txt")).unwrap(),
            "forty-two\n"
        );
        let started = std::time::Instant::now();
        let e = p
            .run_command(&CommandRun {
                command_line: "sleep 30 & sleep 30",
                dir: None,
                timeout: Some(Duration::from_millis(300)),
                env: &[],
            })
            .unwrap_err();
        assert!(matches!(e, PlatformError::TimedOut { .. }), "{e}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
