//! An ordered worker pool: jobs go in, results come out in submission
//! order. Compression and decompression of independent chunks run on every
//! core while the calling thread keeps reading, hashing and writing in
//! file order (the shape of wimlib's compress_parallel, shared by capture
//! and apply here).

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub struct OrderedPool<I: Send + 'static, O: Send + 'static> {
    job_tx: Option<SyncSender<(u64, I)>>,
    res_rx: Receiver<(u64, O)>,
    pending: BTreeMap<u64, O>,
    next_submit: u64,
    next_emit: u64,
    max_in_flight: usize,
    handles: Vec<JoinHandle<()>>,
}

impl<I: Send + 'static, O: Send + 'static> OrderedPool<I, O> {
    /// Starts `threads` workers; `make_worker` builds each worker's state
    /// (its own compressor, for instance).
    pub fn new<F, W>(threads: usize, make_worker: W) -> Self
    where
        W: Fn() -> F,
        F: FnMut(I) -> O + Send + 'static,
    {
        Self::with_depth(threads, 8, make_worker)
    }

    /// As [`new`](Self::new), with at most `depth` jobs per thread
    /// submitted and not yet taken (each holds its input and output: the
    /// depth bounds the pool's memory).
    pub fn with_depth<F, W>(threads: usize, depth: usize, make_worker: W) -> Self
    where
        W: Fn() -> F,
        F: FnMut(I) -> O + Send + 'static,
    {
        let threads = threads.max(1);
        let (job_tx, job_rx) = mpsc::sync_channel::<(u64, I)>(threads * 4);
        let (res_tx, res_rx) = mpsc::channel::<(u64, O)>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let mut handles = Vec::with_capacity(threads);
        for _ in 0..threads {
            let mut work = make_worker();
            let rx = Arc::clone(&job_rx);
            let tx = res_tx.clone();
            handles.push(std::thread::spawn(move || loop {
                let job = {
                    let Ok(guard) = rx.lock() else { return };
                    guard.recv()
                };
                let Ok((seq, item)) = job else { return };
                if tx.send((seq, work(item))).is_err() {
                    return;
                }
            }));
        }
        OrderedPool {
            job_tx: Some(job_tx),
            res_rx,
            pending: BTreeMap::new(),
            next_submit: 0,
            next_emit: 0,
            max_in_flight: threads * depth.max(1),
            handles,
        }
    }

    /// Number of submitted jobs whose results have not been taken yet.
    pub fn in_flight(&self) -> usize {
        (self.next_submit - self.next_emit) as usize
    }

    /// True when the caller should take a result before submitting more.
    pub fn is_full(&self) -> bool {
        self.in_flight() >= self.max_in_flight
    }

    pub fn submit(&mut self, item: I) {
        let seq = self.next_submit;
        self.next_submit += 1;
        if let Some(tx) = &self.job_tx {
            // A send only fails if every worker died (a panic in a codec),
            // which `next` then reports as a missing result.
            let _ = tx.send((seq, item));
        }
    }

    /// The next result in submission order; `None` if nothing is in flight
    /// or the workers are gone.
    pub fn next_result(&mut self) -> Option<O> {
        if self.next_emit == self.next_submit {
            return None;
        }
        loop {
            if let Some(o) = self.pending.remove(&self.next_emit) {
                self.next_emit += 1;
                return Some(o);
            }
            match self.res_rx.recv() {
                Ok((seq, o)) => {
                    self.pending.insert(seq, o);
                }
                Err(_) => return None,
            }
        }
    }
}

impl<I: Send + 'static, O: Send + 'static> Drop for OrderedPool<I, O> {
    fn drop(&mut self) {
        self.job_tx = None;
        // Drain so that workers blocked on sending can finish.
        while self.res_rx.try_recv().is_ok() {}
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// Number of worker threads to use when the caller did not say.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_order() {
        let mut pool = OrderedPool::new(3, || {
            |x: u64| {
                // Uneven work so completion order differs from submission order.
                std::thread::sleep(std::time::Duration::from_micros((x * 7919) % 300));
                x * 2
            }
        });
        let mut out = Vec::new();
        for i in 0..200u64 {
            if pool.is_full() {
                out.push(pool.next_result().unwrap());
            }
            pool.submit(i);
        }
        while let Some(o) = pool.next_result() {
            out.push(o);
        }
        assert_eq!(out, (0..200).map(|i| i * 2).collect::<Vec<_>>());
    }
}
