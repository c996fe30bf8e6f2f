//! The journal: the run's state, written durably after every executed step
//! (temporary file, fsync, rename, fsync of the folder), so a restart or a
//! crash loses at most the step that was running.
//!
//! Secret variables (and the journaled copy of the sequence, whose steps may
//! hold passwords) are encrypted with ChaCha20-Poly1305 under a random key kept
//! in `journal.key` beside the journal (mode 0600). This keeps secrets out of
//! the journal for anyone casually reading it or a copy of it; it does NOT
//! protect against anyone who can read the key file too.

use crate::env::{Environment, Var};
use crate::runner::RunState;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const JOURNAL_FILE: &str = "journal.json";
pub const KEY_FILE: &str = "journal.key";
pub const SEQUENCE_FILE: &str = "sequence.enc";
/// Journals larger than this are refused on load (input must not allocate without bound).
const MAX_JOURNAL: u64 = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("no journaled run in {0}")]
    NoRun(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub pointer: usize,
    pub name: String,
    /// succeeded | failed | skipped
    pub outcome: String,
    pub exit_code: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    state: RunState,
    variables: Vec<StoredVar>,
}

#[derive(Serialize, Deserialize)]
struct StoredVar {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    /// hex(nonce ‖ ciphertext) for secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<String>,
}

pub struct Journal {
    dir: PathBuf,
    cipher: ChaCha20Poly1305,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> JournalError + '_ {
    move |e| JournalError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// Writes through a temporary file, fsyncs it, renames it over `path` and
/// fsyncs the folder, so the file is either the old or the new one.
pub fn write_durably(path: &Path, data: &[u8]) -> Result<(), JournalError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(data).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(())
}

impl Journal {
    /// A fresh state folder (an earlier run there is replaced) with a new key.
    pub fn create(dir: &Path) -> Result<Journal, JournalError> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::create_dir_all(dir.join("logs")).map_err(io(dir))?;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        let _ = std::fs::remove_file(dir.join(JOURNAL_FILE));
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key).map_err(|e| JournalError::Corrupt {
            path: dir.to_path_buf(),
            message: format!("no random key: {e}"),
        })?;
        let kp = dir.join(KEY_FILE);
        let _ = std::fs::remove_file(&kp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&kp)
            .map_err(io(&kp))?;
        f.write_all(&key).map_err(io(&kp))?;
        f.sync_all().map_err(io(&kp))?;
        Ok(Journal {
            dir: dir.to_path_buf(),
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        })
    }

    pub fn open(dir: &Path) -> Result<Journal, JournalError> {
        let kp = dir.join(KEY_FILE);
        if !dir.join(JOURNAL_FILE).exists() {
            return Err(JournalError::NoRun(dir.to_path_buf()));
        }
        let key = std::fs::read(&kp).map_err(io(&kp))?;
        if key.len() != 32 {
            return Err(JournalError::Corrupt {
                path: kp,
                message: "key file must hold 32 bytes".into(),
            });
        }
        Ok(Journal {
            dir: dir.to_path_buf(),
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        })
    }

    pub fn log_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(JOURNAL_FILE)
    }

    fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<String, JournalError> {
        let mut nonce = [0u8; 12];
        getrandom::getrandom(&mut nonce)
            .map_err(|e| self.corrupt(format!("no random nonce: {e}")))?;
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
            .map_err(|_| self.corrupt("encryption failed".into()))?;
        let mut all = nonce.to_vec();
        all.extend_from_slice(&ct);
        Ok(hex(&all))
    }

    fn open_sealed(&self, aad: &[u8], sealed: &str) -> Result<Vec<u8>, JournalError> {
        let bytes = unhex(sealed).ok_or_else(|| self.corrupt("sealed value is not hex".into()))?;
        if bytes.len() < 12 {
            return Err(self.corrupt("sealed value too short".into()));
        }
        let (nonce, ct) = bytes.split_at(12);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
            .map_err(|_| self.corrupt("a sealed value does not decrypt with journal.key".into()))
    }

    fn corrupt(&self, message: String) -> JournalError {
        JournalError::Corrupt {
            path: self.path(),
            message,
        }
    }

    pub fn save(&self, state: &RunState, env: &Environment) -> Result<(), JournalError> {
        let mut variables = Vec::new();
        for v in env.iter() {
            variables.push(if v.secret {
                StoredVar {
                    name: v.name.clone(),
                    value: None,
                    sealed: Some(
                        self.seal(v.name.to_ascii_lowercase().as_bytes(), v.value.as_bytes())?,
                    ),
                }
            } else {
                StoredVar {
                    name: v.name.clone(),
                    value: Some(v.value.clone()),
                    sealed: None,
                }
            });
        }
        let disk = OnDisk {
            version: 1,
            state: state.clone(),
            variables,
        };
        let data = serde_json::to_vec(&disk).map_err(|e| self.corrupt(e.to_string()))?;
        write_durably(&self.path(), &data)
    }

    pub fn load(&self) -> Result<(RunState, Environment), JournalError> {
        let p = self.path();
        let len = std::fs::metadata(&p).map_err(io(&p))?.len();
        if len > MAX_JOURNAL {
            return Err(self.corrupt("journal too large".into()));
        }
        let data = std::fs::read(&p).map_err(io(&p))?;
        let disk: OnDisk =
            serde_json::from_slice(&data).map_err(|e| self.corrupt(e.to_string()))?;
        if disk.version != 1 {
            return Err(self.corrupt(format!("unknown journal version {}", disk.version)));
        }
        let mut vars = Vec::new();
        for v in disk.variables {
            let (value, secret) = match (v.value, v.sealed) {
                (Some(val), None) => (val, false),
                (None, Some(s)) => {
                    let plain = self.open_sealed(v.name.to_ascii_lowercase().as_bytes(), &s)?;
                    let text = String::from_utf8(plain)
                        .map_err(|_| self.corrupt("sealed value is not UTF-8".into()))?;
                    (text, true)
                }
                _ => return Err(self.corrupt(format!("variable {} has no value", v.name))),
            };
            vars.push(Var {
                name: v.name,
                value,
                secret,
            });
        }
        Ok((disk.state, Environment::from_vars(vars)))
    }

    pub fn save_sequence(&self, bytes: &[u8]) -> Result<(), JournalError> {
        let sealed = self.seal(b"sequence", bytes)?;
        write_durably(&self.dir.join(SEQUENCE_FILE), sealed.as_bytes())
    }

    pub fn load_sequence(&self) -> Result<Vec<u8>, JournalError> {
        let p = self.dir.join(SEQUENCE_FILE);
        let text = std::fs::read_to_string(&p).map_err(io(&p))?;
        self.open_sealed(b"sequence", text.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn hex_round_trips(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(unhex(&hex(&b)), Some(b));
        }
        #[test]
        fn unhex_never_panics(s in ".{0,40}") {
            let _ = unhex(&s);
        }
        #[test]
        fn damaged_journal_is_an_error_not_a_panic(cut in 0usize..400, flip in 0usize..400, byte in any::<u8>()) {
            let d = tempfile::tempdir().unwrap();
            let j = Journal::create(d.path()).unwrap();
            let mut env = Environment::new();
            env.set("A", "1");
            env.set_with("Pw", "secret", true);
            let st = RunState {
                ip: 3,
                groups: vec![1],
                phase: crate::runner::Phase::Pe,
                media: crate::runner::MediaType::Boot,
                reboot_count: 0,
                status: crate::runner::Status::Running,
                results: Vec::new(),
                attempts: None,
                drives: Default::default(),
            };
            j.save(&st, &env).unwrap();
            let (st2, env2) = j.load().unwrap();
            prop_assert_eq!(&st2, &st);
            prop_assert_eq!(env2.get("Pw"), Some("secret"));
            let mut data = std::fs::read(j.path()).unwrap();
            if let Some(b) = data.get_mut(flip) {
                *b ^= byte.max(1);
            }
            data.truncate(cut.max(1).min(data.len()));
            std::fs::write(j.path(), &data).unwrap();
            let _ = j.load();
        }
    }

    #[test]
    fn key_file_is_private_and_tampering_is_detected() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let j = Journal::create(d.path()).unwrap();
        let mode = std::fs::metadata(d.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let s = j.seal(b"a", b"hello").unwrap();
        assert_eq!(j.open_sealed(b"a", &s).unwrap(), b"hello");
        assert!(j.open_sealed(b"b", &s).is_err(), "bound to the name");
        let mut t = s.clone().into_bytes();
        let last = t.len() - 1;
        t[last] = if t[last] == b'0' { b'1' } else { b'0' };
        assert!(j
            .open_sealed(b"a", std::str::from_utf8(&t).unwrap())
            .is_err());
    }
}
