//! The SHA-1 check of blobs read by [`BlobReader`](crate::extract::BlobReader),
//! on a thread of its own.
//!
//! Before this stage the thread that pulled blob data also hashed it, so
//! an apply of an uncompressed WIM read, hashed and wrote files on one
//! core, and with compression the hashing sat on the same thread as every
//! file write. Now the reader hands each piece (a shared view of its
//! chunk, not a copy) and each blob's end to this thread in batches;
//! hashing overlaps reading, decompressing and writing.
//!
//! A mismatch is therefore found a little after the blob has been handed
//! out: the reader reports it from a later call, at the latest the one
//! that would otherwise say that every blob was delivered. Memory is
//! bounded: the chunks held by batches not yet hashed add up to at most
//! [`INFLIGHT`] bytes (a single larger chunk, such as a 64 MiB solid one,
//! is sent alone).

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::error::{Result, WimError};
use crate::extract::BlobData;
use crate::hash::{Sha1Hash, Sha1Hasher};
use crate::pool::{ByteBudget, StopOnDrop};

/// Bytes of chunks that batches waiting to be hashed may hold. (4 MiB
/// before: 2 lowered the uncompressed /usr/share apply's peak from 43-46
/// to 42-43 MiB at the same speed; SHA-1 with the CPU's SHA extensions
/// keeps well ahead of the apply.)
const INFLIGHT: u64 = 2 << 20;
/// A batch is sent once it covers this many bytes of blob data.
const BATCH_BYTES: usize = 256 << 10;

enum Item {
    Piece(BlobData),
    /// The blob's last piece came before: compare with its expected hash.
    End(Sha1Hash),
}

struct Batch {
    items: Vec<Item>,
    /// Bytes of the distinct chunks the batch's pieces hold.
    weight: u64,
}

pub(crate) struct HashStage {
    tx: Option<SyncSender<Batch>>,
    thread: Option<JoinHandle<Result<()>>>,
    /// Weight of the batches sent and not yet hashed; stopped when the
    /// thread has (a mismatch, or the channel closed).
    budget: Arc<ByteBudget>,
    batch: Vec<Item>,
    batch_bytes: usize,
    weight: u64,
    /// Address of the chunk of the batch's last piece (the batch keeps it
    /// alive, so the address cannot be reused meanwhile); 0 when none.
    last_chunk: usize,
}

impl HashStage {
    pub(crate) fn new() -> Self {
        HashStage {
            tx: None,
            thread: None,
            budget: Arc::new(ByteBudget::new(INFLIGHT)),
            batch: Vec::new(),
            batch_bytes: 0,
            weight: 0,
            last_chunk: 0,
        }
    }

    /// Queues the next piece of the blob being hashed.
    pub(crate) fn piece(&mut self, d: &BlobData) -> Result<()> {
        let (addr, len) = d.chunk_identity();
        if addr != self.last_chunk {
            self.weight += len as u64;
            self.last_chunk = addr;
        }
        self.batch_bytes += d.len();
        self.batch.push(Item::Piece(d.clone()));
        self.send_if_full()
    }

    /// Ends the blob being hashed; `expected` is its hash in the blob table.
    pub(crate) fn end(&mut self, expected: Sha1Hash) -> Result<()> {
        self.batch.push(Item::End(expected));
        self.send_if_full()
    }

    fn send_if_full(&mut self) -> Result<()> {
        if self.batch_bytes >= BATCH_BYTES {
            if let Err(e) = self.send() {
                // The thread's own error (a mismatch) says why.
                return self.finish().and(Err(e));
            }
        }
        Ok(())
    }

    /// The mismatch found so far, if any (without waiting for the thread
    /// to catch up).
    pub(crate) fn check(&mut self) -> Result<()> {
        if self.budget.is_stopped() && self.thread.is_some() {
            return self.finish();
        }
        Ok(())
    }

    /// Hashes everything queued and reports the first mismatch.
    pub(crate) fn finish(&mut self) -> Result<()> {
        let sent = self.send();
        self.tx = None;
        let joined = match self.thread.take() {
            None => Ok(()),
            Some(t) => t.join().unwrap_or_else(|_| {
                Err(WimError::InvalidArgument(
                    "the hashing thread failed".into(),
                ))
            }),
        };
        // A mismatch is the cause of a failed send, so it is reported first.
        joined.and(sent)
    }

    fn send(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = Batch {
            items: std::mem::take(&mut self.batch),
            weight: std::mem::take(&mut self.weight),
        };
        self.batch_bytes = 0;
        self.last_chunk = 0;
        // Once stopped (a mismatch, or finished), no thread is started again.
        if self.budget.is_stopped() {
            return Err(stopped());
        }
        let tx = match &self.tx {
            Some(tx) => tx.clone(),
            None => self.spawn()?,
        };
        if !self.budget.acquire(batch.weight) {
            return Err(stopped());
        }
        tx.send(batch).map_err(|_| stopped())
    }

    fn spawn(&mut self) -> Result<SyncSender<Batch>> {
        // Few batches: the byte budget is the real bound.
        let (tx, rx) = sync_channel::<Batch>(64);
        let budget = Arc::clone(&self.budget);
        let t = std::thread::Builder::new()
            .name("tasq-sha1".into())
            .spawn(move || run(rx, budget))
            .map_err(|e| WimError::io("starting the hashing thread", e))?;
        self.thread = Some(t);
        self.tx = Some(tx.clone());
        Ok(tx)
    }
}

impl Drop for HashStage {
    fn drop(&mut self) {
        self.batch.clear();
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn stopped() -> WimError {
    WimError::InvalidArgument("the hashing thread stopped".into())
}

fn run(rx: Receiver<Batch>, budget: Arc<ByteBudget>) -> Result<()> {
    let _guard = StopOnDrop(Arc::clone(&budget));
    let mut h = Sha1Hasher::new();
    for batch in rx {
        let mut res = Ok(());
        for item in batch.items {
            match item {
                Item::Piece(d) => h.update(&d),
                Item::End(expected) => {
                    let actual = std::mem::take(&mut h).finish();
                    if actual != expected {
                        res = Err(WimError::HashMismatch {
                            what: format!("blob {expected}"),
                            expected: expected.to_string(),
                            actual: actual.to_string(),
                        });
                        break;
                    }
                }
            }
        }
        budget.release(batch.weight);
        res?;
    }
    Ok(())
}
