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
//! [`QUEUED_BYTES`].

use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rustix::fs::{Mode, OFlags, Timestamps};
use rustix::io::Errno;
use tasq_wim::apply::WimPath;
use tasq_wim::pool::{ByteBudget, StopOnDrop};

/// Bytes of file data queued for the thread at most.
const QUEUED_BYTES: u64 = 2 << 20;
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
    /// Queues `f`, waiting while the queue holds too much data. An error
    /// (the thread is gone) leaves the file unwritten.
    pub(super) fn submit(&self, f: NewFile) -> Result<(), String> {
        if !self.shared.budget.acquire(weight(&f)) {
            return Err(gone());
        }
        self.tx.send(f).map_err(|_| gone())
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
        let outcome = write_new(&f);
        match outcome {
            Ok(()) => {}
            Err(e) => {
                let Ok(mut out) = shared.outcome.lock() else {
                    return;
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
            }
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
