//! New files of an apply written by a thread of their own.
//!
//! Applying a tree is mostly system calls: for every file `openat`,
//! `write`, `close`. Made on the thread that also reads the WIM, walks the
//! image and hands out blob data, they set the apply's pace. Small new
//! files (the great majority) are therefore handed, with their data, to
//! this thread, which creates (`O_CREAT | O_EXCL | O_NOFOLLOW`, relative
//! to the parent's descriptor, as the synchronous path does) and writes
//! them while the apply goes on, and sets their times on the open file
//! (sparing the apply's last pass a path lookup per file).
//!
//! What the thread cannot do alone comes back to the caller at
//! [`WriteBehind::settle`]: a file whose name is already taken in the
//! target (the caller clears the way and writes it, as it would have), and
//! errors, with the file's host path. The caller settles before anything
//! that may touch those files again (times, links, reparse points) and at
//! the end. Memory is bounded: the data queued adds up to at most
//! [`QUEUED_BYTES`]. A file that does not fit in the queue is written by
//! the caller at once, the same way, instead of waiting for room: the two
//! threads share the work rather than one waiting for the other.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rustix::fs::{Mode, OFlags, Timestamps};
use rustix::io::Errno;
use tasq_wim::apply::WimPath;
use tasq_wim::pool::{ByteBudget, StopOnDrop};

/// Bytes of file data queued for the thread at most. (2 MiB while a full
/// queue made the caller wait: the uncompressed /usr/share apply spent
/// 0.35-0.41 s of its 1.15-1.3 s there. With the caller writing instead,
/// 1 MiB is as fast as 2 and peaks 1-2 MiB lower.)
const QUEUED_BYTES: u64 = 1 << 20;
/// Files up to this size are written by the thread; larger ones (few, and
/// the thread would hold their whole data) by the caller.
pub(super) const MAX_FILE: u64 = 256 << 10;

/// A file to create and fill.
pub(super) struct NewFile {
    pub dir: Arc<OwnedFd>,
    pub name: String,
    pub path: WimPath,
    /// The entry's id in the apply (`ApplyEntry::id`).
    pub id: usize,
    /// For error messages.
    pub host_path: String,
    pub data: Vec<u8>,
    /// Set on the open file once its data is written.
    pub times: Timestamps,
}

/// What the thread could not do: files whose name was taken (the caller
/// writes them) and errors (host path, what went wrong).
#[derive(Default)]
struct Outcome {
    taken: Vec<NewFile>,
    errors: Vec<(String, String)>,
}

/// State shared with the thread. A file holds `weight` bytes of the
/// budget from its submission until the thread is done with it (its
/// outcome recorded first), so an empty budget means every file is done.
struct Shared {
    budget: Arc<ByteBudget>,
    outcome: Mutex<Outcome>,
}

/// A file's share of the budget: its data, and at least one byte so that
/// it counts until done.
fn weight(f: &NewFile) -> u64 {
    (f.data.len() as u64).max(1)
}

/// The sending side, shared by the writers of the files being buffered.
#[derive(Clone)]
pub(super) struct Submitter {
    tx: SyncSender<NewFile>,
    shared: Arc<Shared>,
}

impl Submitter {
    /// Queues `f`; when the queue holds too much data already, writes it
    /// on the calling thread instead of waiting for room (the thread is
    /// busy then, and the caller would otherwise sit idle). Either way its
    /// outcome is reported by [`WriteBehind::settle`]. An error (the
    /// thread is gone) leaves the file unwritten.
    pub(super) fn submit(&self, f: NewFile) -> Result<(), String> {
        match self.shared.budget.try_acquire(weight(&f)) {
            Some(true) => self.tx.send(f).map_err(|_| gone()),
            Some(false) => {
                let res = write_new(&f);
                if self.shared.record(f, res) {
                    Ok(())
                } else {
                    Err(gone())
                }
            }
            None => Err(gone()),
        }
    }
}

impl Shared {
    /// Records a file's outcome for [`WriteBehind::settle`]; false if the
    /// record cannot be kept (a thread panicked holding it).
    fn record(&self, f: NewFile, res: Result<(), Errno>) -> bool {
        let Err(e) = res else {
            return true;
        };
        let Ok(mut out) = self.outcome.lock() else {
            return false;
        };
        if e == Errno::EXIST {
            out.taken.push(f);
        } else {
            out.errors.push((
                f.host_path,
                format!(
                    "cannot create or write the file: {}",
                    std::io::Error::from(e)
                ),
            ));
        }
        true
    }
}

fn gone() -> String {
    "the file-writing thread stopped".into()
}

pub(super) struct WriteBehind {
    submitter: Option<Submitter>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for WriteBehind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteBehind")
    }
}

impl WriteBehind {
    pub(super) fn start() -> std::io::Result<WriteBehind> {
        let shared = Arc::new(Shared {
            budget: Arc::new(ByteBudget::new(QUEUED_BYTES)),
            outcome: Mutex::new(Outcome::default()),
        });
        // The byte budget is the real bound; the channel only needs room.
        let (tx, rx) = sync_channel::<NewFile>(4096);
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("tasq-write".into())
            .spawn(move || run(rx, s))?;
        Ok(WriteBehind {
            submitter: Some(Submitter {
                tx,
                shared: Arc::clone(&shared),
            }),
            thread: Some(thread),
            shared,
        })
    }

    pub(super) fn submitter(&self) -> Option<Submitter> {
        self.submitter.clone()
    }

    /// Waits until every file sent is done; returns the files whose names
    /// were taken and the errors met (host path, reason), in order.
    pub(super) fn settle(&self) -> (Vec<NewFile>, Vec<(String, String)>) {
        let lost = || vec![(String::new(), gone())];
        let all_done = self.shared.budget.wait_empty();
        let Ok(mut out) = self.shared.outcome.lock() else {
            return (Vec::new(), lost());
        };
        let mut errors = std::mem::take(&mut out.errors);
        if !all_done {
            errors.extend(lost());
        }
        (std::mem::take(&mut out.taken), errors)
    }
}

impl Drop for WriteBehind {
    fn drop(&mut self) {
        self.submitter = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(rx: Receiver<NewFile>, shared: Arc<Shared>) {
    // However the thread ends, no one waits for it any more.
    let _guard = StopOnDrop(Arc::clone(&shared.budget));
    for f in rx {
        let w = weight(&f);
        let res = write_new(&f);
        if !shared.record(f, res) {
            return;
        }
        // Released after the outcome is recorded: settle reads it once the
        // budget is empty.
        shared.budget.release(w);
    }
}

fn write_new(f: &NewFile) -> Result<(), Errno> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(&*f.dir, f.name.as_str(), flags, Mode::from_raw_mode(0o644))?;
    let mut file = std::fs::File::from(fd);
    file.write_all(&f.data)
        .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
    rustix::fs::futimens(&file, &f.times)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::{Timespec, CWD};

    fn new_file(dir: &Arc<OwnedFd>, name: &str, data: &[u8], mtime: i64) -> NewFile {
        let t = Timespec {
            tv_sec: mtime,
            tv_nsec: 0,
        };
        NewFile {
            dir: Arc::clone(dir),
            name: name.to_string(),
            path: WimPath::root().child(name).unwrap(),
            id: 0,
            host_path: format!("host/{name}"),
            data: data.to_vec(),
            times: Timestamps {
                last_access: t,
                last_modification: t,
            },
        }
    }

    fn open_dir(p: &std::path::Path) -> Arc<OwnedFd> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        Arc::new(rustix::fs::openat(CWD, p, flags, Mode::empty()).unwrap())
    }

    fn mtime(p: &std::path::Path) -> i64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).unwrap().mtime()
    }

    /// With the queue full, `submit` writes the file itself before it
    /// returns (data and times), and the outcomes of such files (a name
    /// taken, an error) still come back from `settle`.
    #[test]
    fn a_full_queue_makes_the_caller_write() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = open_dir(tmp.path());
        std::fs::write(tmp.path().join("taken"), b"old").unwrap();
        let wb = WriteBehind::start().unwrap();
        let sub = wb.submitter().unwrap();
        // Hold the whole budget, as a queue full of files would.
        assert!(wb.shared.budget.acquire(QUEUED_BYTES));
        sub.submit(new_file(&dir, "a", b"alpha", 1_000_000))
            .unwrap();
        assert_eq!(std::fs::read(tmp.path().join("a")).unwrap(), b"alpha");
        assert_eq!(mtime(&tmp.path().join("a")), 1_000_000);
        sub.submit(new_file(&dir, "taken", b"new", 5)).unwrap();
        let long = "n".repeat(300);
        sub.submit(new_file(&dir, &long, b"x", 5)).unwrap();
        wb.shared.budget.release(QUEUED_BYTES);
        let (taken, errors) = wb.settle();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].name, "taken");
        assert_eq!(taken[0].data, b"new");
        assert_eq!(std::fs::read(tmp.path().join("taken")).unwrap(), b"old");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].0, format!("host/{long}"));
        assert!(errors[0].1.contains("cannot create or write"), "{errors:?}");
    }

    /// Many files through a small queue, some by the thread and some by
    /// the caller: every one is written with its data and times.
    #[test]
    fn every_file_is_written_whoever_writes_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = open_dir(tmp.path());
        let wb = WriteBehind::start().unwrap();
        let sub = wb.submitter().unwrap();
        let body = |i: usize| vec![(i % 251) as u8; (i * 7919) % (MAX_FILE as usize)];
        for i in 0..200 {
            sub.submit(new_file(&dir, &format!("f{i}"), &body(i), i as i64))
                .unwrap();
        }
        let (taken, errors) = wb.settle();
        assert!(taken.is_empty() && errors.is_empty(), "{errors:?}");
        for i in 0..200 {
            let p = tmp.path().join(format!("f{i}"));
            assert_eq!(std::fs::read(&p).unwrap(), body(i), "f{i}");
            assert_eq!(mtime(&p), i as i64, "f{i}");
        }
    }
}
