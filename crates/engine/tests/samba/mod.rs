//! A private Samba server for the capture tests: its own smb.conf, passdb,
//! lock/state/pid dirs under a temporary directory, listening on a free
//! loopback port, with a test user and two shares: `images` (a plain
//! directory) and `small` (a 1 MiB tmpfs, for "share full"). Killed and
//! unmounted on drop. Needs root (tmpfs mount, the Unix account that
//! Samba's passdb requires), as in CI.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "tasqcap";
pub const PASSWORD: &str = "Capture#2026";

pub struct Samba {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// The `images` share's directory.
    pub images: PathBuf,
    /// The `small` share's directory (a 1 MiB tmpfs).
    pub small: PathBuf,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn ensure_user() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let exists = Command::new("id")
            .arg(USER)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !exists {
            let st = Command::new("useradd")
                .args(["-M", "-s", "/usr/sbin/nologin", USER])
                .status()
                .expect("useradd");
            // 9: the user appeared meanwhile.
            assert!(
                st.success() || st.code() == Some(9),
                "useradd {USER} failed"
            );
        }
    });
}

impl Samba {
    pub fn start() -> Samba {
        ensure_user();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in [
            "private", "lock", "state", "cache", "pid", "ncalrpc", "log", "images", "small",
        ] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let small = d.join("small");
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m,mode=0777", "tmpfs"])
            .arg(&small)
            .status()
            .expect("mount");
        assert!(
            st.success(),
            "mounting a tmpfs for the small share (needs root)"
        );
        let port = free_port();
        let p = |s: &str| d.join(s).display().to_string();
        let conf = format!(
            "[global]
  workgroup = TASQ
  netbios name = TASQTEST
  server role = standalone server
  smb ports = {port}
  interfaces = lo
  bind interfaces only = yes
  private dir = {private}
  lock directory = {lock}
  state directory = {state}
  cache directory = {cache}
  pid directory = {pid}
  ncalrpc dir = {ncalrpc}
  log file = {log}/smbd.log
  passdb backend = tdbsam:{private}/passdb.tdb
  map to guest = Never
  disable netbios = yes
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
  server min protocol = SMB2
[images]
  path = {images}
  read only = no
  force user = root
[small]
  path = {smalldir}
  read only = no
  force user = root
",
            private = p("private"),
            lock = p("lock"),
            state = p("state"),
            cache = p("cache"),
            pid = p("pid"),
            ncalrpc = p("ncalrpc"),
            log = p("log"),
            images = p("images"),
            smalldir = p("small"),
        );
        let conf_path = d.join("smb.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let mut pw = Command::new("smbpasswd")
            .arg("-c")
            .arg(&conf_path)
            .args(["-a", "-s", USER])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("smbpasswd");
        {
            use std::io::Write;
            let mut i = pw.stdin.take().unwrap();
            write!(i, "{PASSWORD}\n{PASSWORD}\n").unwrap();
        }
        assert!(pw.wait().unwrap().success(), "smbpasswd -a");
        let child = Command::new("smbd")
            .args(["--foreground", "--no-process-group", "-s"])
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("log/stderr")).unwrap())
            .spawn()
            .expect("smbd (Debian package samba)");
        let s = Samba {
            child: Some(child),
            port,
            images: d.join("images"),
            small,
            dir,
        };
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "smbd did not start listening on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }

    /// `\\127.0.0.1:PORT\share\rest` (tasq's UNC form with a port).
    pub fn unc(&self, share: &str, rest: &str) -> String {
        format!("\\\\127.0.0.1:{}\\{share}\\{rest}", self.port)
    }

    /// Stops the server now, with the per-connection processes it forked
    /// (the "connection dropped" case).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let kids = children_of(c.id());
            let _ = c.kill();
            for k in kids {
                let _ = Command::new("kill").args(["-9", &k.to_string()]).status();
            }
            let _ = c.wait();
        }
    }

    pub fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|r| {
                r.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// Pids whose parent is `pid` (from /proc).
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(n) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{n}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces, so split after ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(n);
        }
    }
    out
}

impl Drop for Samba {
    fn drop(&mut self) {
        self.kill();
        let _ = Command::new("umount").arg(&self.small).status();
    }
}
