//! The journal: the run's state, kept durably so a restart or a crash loses
//! at most the step that was running.
//!
//! Two files in the state folder:
//! - `journal.json`, a snapshot of the whole state (position, group stack,
//!   status, the record of every step, all variables), written through a
//!   temporary file, fsync, rename and an fsync of the folder. It is written
//!   when the run starts or resumes, at each restart, when the run stops,
//!   and when the record file has grown past a bound (compaction);
//! - `journal.records`, an append-only file of per-step deltas continuing
//!   that snapshot: a 16-byte header (`TSQJREC1`, then the 64-bit id the
//!   snapshot names in its `records` field), then one record per save:
//!   payload length (u32 LE), CRC-32 of the id and the payload (u32 LE), and
//!   the payload, JSON of what changed: position, group stack, status,
//!   attempts, the drive map when it changed, the new step records, and the
//!   variables set or removed. Each append is followed by fdatasync, which
//!   costs a fraction of the snapshot's temporary file + rename + two fsyncs,
//!   and its size does not grow with the run.
//!
//! Loading reads the snapshot and replays the records in order up to the
//! first one that is incomplete or fails its checksum: a record torn by a
//! crash is ignored, and the step it would have recorded runs again, as
//! after a crash during the step. A record file whose id is not the
//! snapshot's (a crash between writing a new snapshot and its new record
//! file) is ignored as a whole, the snapshot already holding its contents.
//!
//! Secret variables (and the journaled copy of the sequence, whose steps may
//! hold passwords) are encrypted with ChaCha20-Poly1305 under a random key kept
//! in `journal.key` beside the journal (mode 0600), in the snapshot and in the
//! records alike. This keeps secrets out of the journal for anyone casually
//! reading it or a copy of it; it does NOT protect against anyone who can read
//! the key file too.

use crate::env::{Environment, Var};
use crate::runner::{MediaType, Phase, RunState, Status};
use crate::volumes::Drives;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const JOURNAL_FILE: &str = "journal.json";
pub const RECORDS_FILE: &str = "journal.records";
pub const KEY_FILE: &str = "journal.key";
pub const SEQUENCE_FILE: &str = "sequence.enc";
/// Journals (snapshot or record file) larger than this are refused on load
/// (input must not allocate without bound).
const MAX_JOURNAL: u64 = 256 << 20;
const RECORDS_MAGIC: &[u8; 8] = b"TSQJREC1";
const HEADER_LEN: usize = 16;
/// The record file is compacted into a new snapshot once it passes this
/// size or twice the snapshot's, whichever is larger: replaying stays
/// bounded, and the O(run length) snapshot is written O(log n) times.
const COMPACT_MIN: u64 = 1 << 20;

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
struct OnDisk<'a> {
    version: u32,
    state: Cow<'a, RunState>,
    variables: Vec<StoredVar>,
    /// Id of the record file that continues this snapshot (none: nothing to replay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    records: Option<u64>,
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

/// One record of `journal.records`: the state after a save, as a change
/// from the state after the previous one. Every field of [`RunState`] but
/// the append-only step records and the drive map is carried whole (they
/// are small); the drive map only when it changed.
#[derive(Serialize, Deserialize)]
struct Delta<'a> {
    ip: usize,
    groups: Cow<'a, [usize]>,
    phase: Phase,
    media: MediaType,
    reboot_count: u32,
    status: Cow<'a, Status>,
    attempts: Option<(usize, u32)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    drives: Option<Cow<'a, Drives>>,
    /// Step records added since the previous save.
    #[serde(default, skip_serializing_if = "no_records")]
    results: Cow<'a, [StepRecord]>,
    /// Variables removed (applied first), by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    unset: Vec<String>,
    /// Variables set or changed; secrets sealed as in the snapshot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    set: Vec<StoredVar>,
}

fn no_records(r: &[StepRecord]) -> bool {
    r.is_empty()
}

/// The open record file and what the journal on disk holds, which the
/// next delta is computed against.
struct Tail {
    file: std::fs::File,
    id: u64,
    /// Bytes in the record file.
    len: u64,
    /// Compact when `len` passes this.
    bound: u64,
    /// Step records on disk, and the last of them.
    results: usize,
    last_result: Option<StepRecord>,
    drives: Drives,
    env: Environment,
}

pub struct Journal {
    dir: PathBuf,
    cipher: ChaCha20Poly1305,
    /// Set by [`Journal::snapshot`]; `None` makes the next [`Journal::append`] a snapshot.
    tail: Option<Tail>,
    /// Least size of the record file that triggers compaction.
    compact_min: u64,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> JournalError + '_ {
    move |e| JournalError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(char::from(DIGITS[usize::from(x >> 4)]));
        s.push(char::from(DIGITS[usize::from(x & 15)]));
    }
    s
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
/// fsyncs the folder, so the file is either the old or the new one. The
/// temporary file comes from [`tasq_wim::writer::temp_file_beside`] (a
/// random name created with O_EXCL, removed if anything fails).
pub fn write_durably(path: &Path, data: &[u8]) -> Result<(), JournalError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tasq_wim::writer::temp_file_beside(path).map_err(io(path))?;
    let tmp_path = tmp.path().to_path_buf();
    tmp.write_all(data)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(io(&tmp_path))?;
    tmp.persist(path).map_err(|e| io(path)(e.error))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(())
}

/// Orders variable names as [`Environment`] keys them (ASCII case ignored).
fn key_cmp(a: &str, b: &str) -> Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

/// What changed from `old` to `new`: (removed, set). A variable whose name
/// (case) or secrecy changed is removed and set again, so replaying gives
/// exactly `new`.
fn env_diff<'a>(old: &'a Environment, new: &'a Environment) -> (Vec<&'a Var>, Vec<&'a Var>) {
    let (mut unset, mut set) = (Vec::new(), Vec::new());
    let mut o = old.iter().peekable();
    let mut n = new.iter().peekable();
    loop {
        match (o.peek(), n.peek()) {
            (None, None) => break,
            (Some(a), None) => {
                unset.push(*a);
                o.next();
            }
            (None, Some(b)) => {
                set.push(*b);
                n.next();
            }
            (Some(a), Some(b)) => match key_cmp(&a.name, &b.name) {
                Ordering::Less => {
                    unset.push(*a);
                    o.next();
                }
                Ordering::Greater => {
                    set.push(*b);
                    n.next();
                }
                Ordering::Equal => {
                    if a.name != b.name || a.secret != b.secret {
                        unset.push(*a);
                        set.push(*b);
                    } else if a.value != b.value {
                        set.push(*b);
                    }
                    o.next();
                    n.next();
                }
            },
        }
    }
    (unset, set)
}

/// Applies a record's variable changes: removals first, then the values set.
fn apply_vars(env: &mut Environment, unset: &[String], set: Vec<Var>) {
    for name in unset {
        env.set(name, "");
    }
    for v in set {
        env.set_with(&v.name, &v.value, v.secret);
    }
}

fn records_header(id: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(RECORDS_MAGIC);
    h[8..].copy_from_slice(&id.to_le_bytes());
    h
}

fn record_crc(id: u64, payload: &[u8]) -> u32 {
    let mut c = crc32fast::Hasher::new();
    c.update(&id.to_le_bytes());
    c.update(payload);
    c.finalize()
}

/// The complete, intact records of a record file that continues snapshot
/// `id`, in order; stops at the first torn or damaged one.
fn valid_records(data: &[u8], id: u64) -> Vec<&[u8]> {
    let mut out = Vec::new();
    if data.get(..HEADER_LEN) != Some(&records_header(id)[..]) {
        return out;
    }
    let mut rest = &data[HEADER_LEN..];
    while let (Some(len), Some(crc)) = (rest.get(0..4), rest.get(4..8)) {
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let crc = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        let Some(payload) = rest.get(8..8 + len) else {
            break;
        };
        if len == 0 || record_crc(id, payload) != crc {
            break;
        }
        out.push(payload);
        rest = &rest[8 + len..];
    }
    out
}

impl Journal {
    /// A fresh state folder (an earlier run there is replaced) with a new key.
    pub fn create(dir: &Path) -> Result<Journal, JournalError> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::create_dir_all(dir.join("logs")).map_err(io(dir))?;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        let _ = std::fs::remove_file(dir.join(JOURNAL_FILE));
        let _ = std::fs::remove_file(dir.join(RECORDS_FILE));
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
            tail: None,
            compact_min: COMPACT_MIN,
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
            tail: None,
            compact_min: COMPACT_MIN,
        })
    }

    pub fn log_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }

    /// The snapshot file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(JOURNAL_FILE)
    }

    /// The record file continuing the snapshot.
    pub fn records_path(&self) -> PathBuf {
        self.dir.join(RECORDS_FILE)
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

    /// A variable as stored: in the clear, or sealed (bound to its name) when secret.
    fn store_var(&self, v: &Var) -> Result<StoredVar, JournalError> {
        Ok(if v.secret {
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
        })
    }

    fn restore_var(&self, v: StoredVar) -> Result<Var, JournalError> {
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
        Ok(Var {
            name: v.name,
            value,
            secret,
        })
    }

    /// Writes a full snapshot durably, then a new, empty record file
    /// continuing it (in that order: a crash between the two leaves the old
    /// record file, whose id no longer matches, to be ignored).
    fn write_snapshot(&self, state: &RunState, env: &Environment) -> Result<Tail, JournalError> {
        let variables = env
            .iter()
            .map(|v| self.store_var(v))
            .collect::<Result<Vec<_>, _>>()?;
        let mut id = [0u8; 8];
        getrandom::getrandom(&mut id).map_err(|e| self.corrupt(format!("no random id: {e}")))?;
        let id = u64::from_le_bytes(id);
        let disk = OnDisk {
            version: 1,
            state: Cow::Borrowed(state),
            variables,
            records: Some(id),
        };
        let data = serde_json::to_vec(&disk).map_err(|e| self.corrupt(e.to_string()))?;
        write_durably(&self.path(), &data)?;
        let rp = self.records_path();
        write_durably(&rp, &records_header(id))?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&rp)
            .map_err(io(&rp))?;
        Ok(Tail {
            file,
            id,
            len: HEADER_LEN as u64,
            bound: self.compact_min.max(2 * data.len() as u64),
            results: state.results.len(),
            last_result: state.results.last().cloned(),
            drives: state.drives.clone(),
            env: env.clone(),
        })
    }

    /// Saves the whole state as a new snapshot (start, resume, restart,
    /// end of the run); later [`Journal::append`]s continue it.
    pub fn snapshot(&mut self, state: &RunState, env: &Environment) -> Result<(), JournalError> {
        self.tail = None;
        self.tail = Some(self.write_snapshot(state, env)?);
        Ok(())
    }

    /// Saves the whole state as a new snapshot, for a journal that is not
    /// being appended to (tools, tests).
    pub fn save(&self, state: &RunState, env: &Environment) -> Result<(), JournalError> {
        self.write_snapshot(state, env).map(|_| ())
    }

    /// Saves the state after a step: one record appended to the record file
    /// and fdatasync'ed, holding what changed since the previous save. A
    /// snapshot is written instead when there is none to continue, when the
    /// step records were not only appended to, or when the record file has
    /// passed its bound.
    pub fn append(&mut self, state: &RunState, env: &Environment) -> Result<(), JournalError> {
        // Every field, so a new one cannot be forgotten here.
        let RunState {
            ip,
            groups,
            phase,
            media,
            reboot_count,
            status,
            results,
            attempts,
            drives,
        } = state;
        let Some(tail) = self.tail.take() else {
            return self.snapshot(state, env);
        };
        let appended_only = results.len() >= tail.results
            && tail.results.checked_sub(1).and_then(|i| results.get(i))
                == tail.last_result.as_ref();
        if !appended_only || tail.len > tail.bound {
            return self.snapshot(state, env);
        }
        let (unset, set) = env_diff(&tail.env, env);
        let unset: Vec<String> = unset.into_iter().map(|v| v.name.clone()).collect();
        let set: Vec<Var> = set.into_iter().cloned().collect();
        let delta = Delta {
            ip: *ip,
            groups: Cow::Borrowed(groups),
            phase: *phase,
            media: *media,
            reboot_count: *reboot_count,
            status: Cow::Borrowed(status),
            attempts: *attempts,
            drives: (*drives != tail.drives).then_some(Cow::Borrowed(drives)),
            results: Cow::Borrowed(&results[tail.results..]),
            unset,
            set: set
                .iter()
                .map(|v| self.store_var(v))
                .collect::<Result<Vec<_>, _>>()?,
        };
        let mut frame = vec![0u8; 8];
        serde_json::to_writer(&mut frame, &delta).map_err(|e| self.corrupt(e.to_string()))?;
        let payload_len = frame.len() - 8;
        let len =
            u32::try_from(payload_len).map_err(|_| self.corrupt("record too large".into()))?;
        let crc = record_crc(tail.id, &frame[8..]);
        frame[..4].copy_from_slice(&len.to_le_bytes());
        frame[4..8].copy_from_slice(&crc.to_le_bytes());
        let mut tail = tail;
        // On failure the tail stays taken: the next save writes a snapshot
        // and a new record file rather than appending after a partial record.
        let rp = self.records_path();
        tail.file.write_all(&frame).map_err(io(&rp))?;
        tail.file.sync_data().map_err(io(&rp))?;
        tail.len += frame.len() as u64;
        tail.results = results.len();
        tail.last_result = results.last().cloned();
        if delta.drives.is_some() {
            tail.drives = drives.clone();
        }
        // What is on disk now: the changes applied, as a replay applies them.
        apply_vars(&mut tail.env, &delta.unset, set);
        debug_assert!(tail.env == *env);
        self.tail = Some(tail);
        Ok(())
    }

    /// The journaled state: the snapshot, then every intact record of the
    /// record file that continues it.
    pub fn load(&self) -> Result<(RunState, Environment), JournalError> {
        let data = self.read_bounded(&self.path())?;
        let disk: OnDisk =
            serde_json::from_slice(&data).map_err(|e| self.corrupt(e.to_string()))?;
        if disk.version != 1 {
            return Err(self.corrupt(format!("unknown journal version {}", disk.version)));
        }
        let vars = disk
            .variables
            .into_iter()
            .map(|v| self.restore_var(v))
            .collect::<Result<Vec<_>, _>>()?;
        let mut state = disk.state.into_owned();
        let mut env = Environment::from_vars(vars);
        let Some(id) = disk.records else {
            return Ok((state, env));
        };
        let rp = self.records_path();
        let records = match self.read_bounded(&rp) {
            Ok(d) => d,
            // No record file: a crash before it was first written.
            Err(JournalError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok((state, env))
            }
            Err(e) => return Err(e),
        };
        for payload in valid_records(&records, id) {
            let d: Delta = serde_json::from_slice(payload).map_err(|e| JournalError::Corrupt {
                path: rp.clone(),
                message: format!("a record with a valid checksum does not parse: {e}"),
            })?;
            state.ip = d.ip;
            state.groups = d.groups.into_owned();
            state.phase = d.phase;
            state.media = d.media;
            state.reboot_count = d.reboot_count;
            state.status = d.status.into_owned();
            state.attempts = d.attempts;
            if let Some(drives) = d.drives {
                state.drives = drives.into_owned();
            }
            state.results.extend(d.results.into_owned());
            let set = d
                .set
                .into_iter()
                .map(|v| self.restore_var(v))
                .collect::<Result<Vec<_>, _>>()?;
            apply_vars(&mut env, &d.unset, set);
        }
        Ok((state, env))
    }

    fn read_bounded(&self, p: &Path) -> Result<Vec<u8>, JournalError> {
        let len = std::fs::metadata(p).map_err(io(p))?.len();
        if len > MAX_JOURNAL {
            return Err(JournalError::Corrupt {
                path: p.to_path_buf(),
                message: "journal too large".into(),
            });
        }
        std::fs::read(p).map_err(io(p))
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

    #[test]
    fn write_durably_does_not_follow_a_link_planted_beside_the_file() {
        // The temporary name used to be fixed (state.tmp for state.json).
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, d.path().join("state.tmp")).unwrap();
        let path = d.path().join("state.json");
        write_durably(&path, b"{}").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
        let mut names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["state.json", "state.tmp"]);
    }
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

    fn state0() -> RunState {
        let st = RunState::start(MediaType::Boot);
        assert_eq!(st.phase, Phase::Pe);
        st
    }

    /// A new journal with an empty state saved as its snapshot.
    fn fresh() -> (tempfile::TempDir, Journal, RunState, Environment) {
        let d = tempfile::tempdir().unwrap();
        let mut j = Journal::create(d.path()).unwrap();
        let (st, env) = (state0(), Environment::new());
        j.snapshot(&st, &env).unwrap();
        (d, j, st, env)
    }

    /// What an engine step changes, varied by `k`: the position, a step
    /// record, variables set, removed, re-cased and secret, the group
    /// stack, attempts and the drive map.
    fn simulate_step(k: usize, st: &mut RunState, env: &mut Environment) {
        st.ip = k + 1;
        st.results.push(StepRecord {
            pointer: k,
            name: format!("step {k}"),
            outcome: if k % 4 == 3 { "failed" } else { "succeeded" }.into(),
            exit_code: Some((k % 4) as i64),
        });
        env.set("_SMSTSLastActionName", &format!("step {k}"));
        env.set(&format!("V{}", k % 7), &format!("value {k}"));
        if k % 6 == 3 {
            env.set(&format!("v{}", (k + 1) % 7), "");
        }
        if k % 5 == 0 {
            env.set_with("Pw", &format!("S3cret-{k}"), true);
        }
        if k % 10 == 0 {
            env.set("CaseVar", "");
            env.set(if k % 20 == 0 { "CASEVAR" } else { "casevar" }, "x");
        }
        if k % 11 == 0 {
            st.groups.push(k);
        }
        if k % 13 == 0 {
            st.groups.pop();
        }
        st.attempts = (k % 9 == 0).then_some((k, 1));
        if k % 17 == 0 {
            let letter = char::from(b'D' + (k / 17 % 20) as u8);
            st.drives.insert(
                letter,
                crate::volumes::VolumeRef::HostDir {
                    path: format!("/mnt/{k}").into(),
                },
            );
        }
        if k % 50 == 49 {
            st.reboot_count += 1;
            st.phase = if st.phase == Phase::Pe {
                Phase::FullOs
            } else {
                Phase::Pe
            };
        }
    }

    fn contains(hay: &[u8], needle: &str) -> bool {
        hay.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    #[test]
    fn replay_equals_the_in_memory_state_after_2000_steps() {
        let (_d, mut j, mut st, mut env) = fresh();
        env.set("_SMSTSPackageID", "TSQ00000");
        j.snapshot(&st, &env).unwrap();
        let snapshot = std::fs::read(j.path()).unwrap();
        for k in 0..2000 {
            simulate_step(k, &mut st, &mut env);
            j.append(&st, &env).unwrap();
            if k % 500 == 0 {
                assert_eq!(j.load().unwrap(), (st.clone(), env.clone()), "after {k}");
            }
        }
        assert_eq!(j.load().unwrap(), (st.clone(), env.clone()));
        // Replayed, not compacted: the snapshot is the first one.
        assert_eq!(std::fs::read(j.path()).unwrap(), snapshot);
        // A full snapshot of the same state loads the same.
        j.save(&st, &env).unwrap();
        assert_eq!(j.load().unwrap(), (st, env));
    }

    #[test]
    fn a_torn_or_garbage_tail_is_ignored() {
        let (_d, mut j, mut st, mut env) = fresh();
        let mut expect = vec![(st.clone(), env.clone())];
        let mut ends = vec![HEADER_LEN];
        for k in 0..8 {
            simulate_step(k, &mut st, &mut env);
            j.append(&st, &env).unwrap();
            expect.push((st.clone(), env.clone()));
            ends.push(std::fs::metadata(j.records_path()).unwrap().len() as usize);
        }
        let full = std::fs::read(j.records_path()).unwrap();
        assert_eq!(full.len(), *ends.last().unwrap());
        // Cut anywhere: the state is the one after the last complete record.
        for cut in 0..=full.len() {
            std::fs::write(j.records_path(), &full[..cut]).unwrap();
            let complete = ends[1..].iter().filter(|&&e| e <= cut).count();
            assert_eq!(j.load().unwrap(), expect[complete], "cut at {cut}");
        }
        // Garbage after the last record, or zeros (a tail the crash left unwritten).
        for tail in [
            &b"garbage\x07\x00\x00\x00\x01\x02"[..],
            &[0u8; 64][..],
            &[0xff; 3][..],
        ] {
            let mut data = full.clone();
            data.extend_from_slice(tail);
            std::fs::write(j.records_path(), &data).unwrap();
            assert_eq!(j.load().unwrap(), expect[8]);
        }
        // A damaged byte inside record r: records r.. are ignored.
        for (r, w) in ends.windows(2).enumerate() {
            for at in [w[0], w[0] + 5, w[1] - 1] {
                let mut data = full.clone();
                data[at] ^= 0x20;
                std::fs::write(j.records_path(), &data).unwrap();
                assert_eq!(j.load().unwrap(), expect[r], "record {r} damaged at {at}");
            }
        }
        // No record file at all: the snapshot.
        std::fs::remove_file(j.records_path()).unwrap();
        assert_eq!(j.load().unwrap(), expect[0]);
    }

    #[test]
    fn a_record_file_of_an_older_snapshot_is_not_replayed() {
        // A crash between writing a new snapshot and its new record file.
        let (_d, mut j, mut st, mut env) = fresh();
        for k in 0..3 {
            simulate_step(k, &mut st, &mut env);
            j.append(&st, &env).unwrap();
        }
        let old = std::fs::read(j.records_path()).unwrap();
        st.ip = 0;
        st.results.clear();
        env.set("V1", "");
        j.save(&st, &env).unwrap();
        std::fs::write(j.records_path(), &old).unwrap();
        assert_eq!(j.load().unwrap(), (st, env));
    }

    #[test]
    fn a_record_for_a_secret_variable_has_no_clear_text() {
        let (d, mut j, mut st, mut env) = fresh();
        st.ip = 1;
        env.set_with("DomainPassword", "Hunter2-Secret!", true);
        env.set("OSDComputerName", "Plain-Visible-Value");
        env.set("OSDJoinPassword", "Named-As-Secret!");
        j.append(&st, &env).unwrap();
        let records = std::fs::read(j.records_path()).unwrap();
        assert!(
            contains(&records, "Plain-Visible-Value"),
            "the record is there"
        );
        assert!(contains(&records, "DomainPassword"));
        for s in ["Hunter2-Secret!", "Named-As-Secret!"] {
            assert!(!contains(&records, s), "{s} in the clear");
            assert!(!contains(&std::fs::read(j.path()).unwrap(), s));
        }
        let (_, env2) = j.load().unwrap();
        assert_eq!(env2, env);
        assert_eq!(env2.get("DomainPassword"), Some("Hunter2-Secret!"));
        // The sealed value is bound to the journal key: another key cannot open it.
        let other = tempfile::tempdir().unwrap();
        Journal::create(other.path()).unwrap();
        std::fs::copy(other.path().join(KEY_FILE), d.path().join(KEY_FILE)).unwrap();
        assert!(Journal::open(d.path()).unwrap().load().is_err());
    }

    #[test]
    fn compaction_keeps_the_state() {
        let (_d, mut j, mut st, mut env) = fresh();
        j.compact_min = 4096;
        j.snapshot(&st, &env).unwrap();
        let id = |j: &Journal| {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(j.path()).unwrap()).unwrap();
            v["records"].as_u64().unwrap()
        };
        let mut ids = vec![id(&j)];
        let mut max_records = 0;
        for k in 0..300 {
            simulate_step(k, &mut st, &mut env);
            j.append(&st, &env).unwrap();
            if ids.last() != Some(&id(&j)) {
                ids.push(id(&j));
            }
            let snap = std::fs::metadata(j.path()).unwrap().len();
            let rec = std::fs::metadata(j.records_path()).unwrap().len();
            // Bounded by the larger of the minimum and twice the snapshot, plus one record.
            assert!(rec <= 4096.max(2 * snap) + 2048, "{rec} after {k}");
            max_records = max_records.max(rec);
            assert_eq!(j.load().unwrap(), (st.clone(), env.clone()), "after {k}");
        }
        assert!(ids.len() >= 3, "compacted {} times", ids.len() - 1);
        assert!(max_records > 4096);
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
