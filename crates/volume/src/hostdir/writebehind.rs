//! New files of an apply written by a thread of their own.
//!
//! Applying a tree is mostly system calls: for every file `openat`,
//! `write`, `close`. Made on the thread that also reads the WIM, walks the
//! image and hands out blob data, they set the apply's pace. Small new
//! files (the great majority) are therefore handed, with their data, to
//! this thread, which creates (`O_CREAT | O_EXCL | O_NOFOLLOW`, relative
//! to the parent's descriptor, as the synchronous path does) and writes
//! them while the apply goes on, and set their times on the open file
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
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use rustix::fs::{Mode, OFlags, Timestamps};
use rustix::io::Errno;
use tasq_wim::apply::WimPath;

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
    /// For error messages.
    pub host_path: String,
    pub data: Vec<u8>,
    /// Set on the open file once its data is written.
    pub times: Timestamps,
}

#[derive(Default)]
struct State {
    /// Files sent and not yet done, and the bytes of their data.
    files: usize,
    bytes: u64,
    /// Files whose name was taken: the caller writes them.
    taken: Vec<NewFile>,
    /// (host path, what went wrong).
    errors: Vec<(String, String)>,
    /// The thread has stopped (it only does when the channel closes).
    stopped: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
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
        let len = f.data.len() as u64;
        {
            let mut st = self.shared.state.lock().map_err(|_| gone())?;
            while st.files > 0 && st.bytes + len > QUEUED_BYTES && !st.stopped {
                st = self.shared.changed.wait(st).map_err(|_| gone())?;
            }
            if st.stopped {
                return Err(gone());
            }
            st.files += 1;
            st.bytes += len;
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
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
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
        let Ok(mut st) = self.shared.state.lock() else {
            return (Vec::new(), lost());
        };
        while st.files > 0 && !st.stopped {
            st = match self.shared.changed.wait(st) {
                Ok(g) => g,
                Err(_) => return (Vec::new(), lost()),
            };
        }
        let mut errors = std::mem::take(&mut st.errors);
        if st.files > 0 {
            errors.extend(lost());
        }
        (std::mem::take(&mut st.taken), errors)
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

/// Marks the thread stopped however it ends, so that no one waits for it.
struct StopGuard(Arc<Shared>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        if let Ok(mut st) = self.0.state.lock() {
            st.stopped = true;
        }
        self.0.changed.notify_all();
    }
}

fn run(rx: Receiver<NewFile>, shared: Arc<Shared>) {
    let _guard = StopGuard(Arc::clone(&shared));
    for f in rx {
        let len = f.data.len() as u64;
        let outcome = write_new(&f);
        let Ok(mut st) = shared.state.lock() else {
            return;
        };
        st.files -= 1;
        st.bytes -= len;
        match outcome {
            Ok(()) => {}
            Err(Errno::EXIST) => st.taken.push(f),
            Err(e) => st.errors.push((
                f.host_path,
                format!(
                    "cannot create or write the file: {}",
                    std::io::Error::from(e)
                ),
            )),
        }
        drop(st);
        shared.changed.notify_all();
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
