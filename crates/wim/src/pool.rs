//! An ordered worker pool: jobs go in, results come out in submission
//! order. Compression and decompression of independent chunks run on every
//! core while the calling thread keeps reading, hashing and writing in
//! file order (the shape of wimlib's compress_parallel, shared by capture
//! and apply here).

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
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

/// A byte budget shared by a thread that hands work to another and that
/// other thread: the sender waits while the bytes handed out and not yet
/// released would pass the limit, so that memory stays bounded whatever
/// the input. A single item larger than the whole budget passes alone.
///
/// The receiving thread calls [`stop`](Self::stop) when it ends, however
/// it ends (see [`StopOnDrop`]): a sender waiting for room, or for the
/// budget to empty, then stops waiting instead of waiting forever.
#[derive(Debug)]
pub struct ByteBudget {
    limit: u64,
    state: Mutex<BudgetState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct BudgetState {
    held: u64,
    stopped: bool,
}

impl ByteBudget {
    pub fn new(limit: u64) -> Self {
        ByteBudget {
            limit,
            state: Mutex::new(BudgetState::default()),
            changed: Condvar::new(),
        }
    }

    /// Takes `n` bytes of the budget, waiting until they fit (or nothing
    /// is held). Returns false, taking nothing, once the budget is stopped.
    pub fn acquire(&self, n: u64) -> bool {
        let Ok(mut st) = self.state.lock() else {
            return false;
        };
        while st.held > 0 && st.held.saturating_add(n) > self.limit && !st.stopped {
            st = match self.changed.wait(st) {
                Ok(g) => g,
                Err(_) => return false,
            };
        }
        if st.stopped {
            return false;
        }
        st.held += n;
        true
    }

    /// Takes `n` bytes of the budget if they fit now (or nothing is held);
    /// never waits. `None` once the budget is stopped.
    pub fn try_acquire(&self, n: u64) -> Option<bool> {
        let mut st = self.state.lock().ok()?;
        if st.stopped {
            return None;
        }
        if st.held > 0 && st.held.saturating_add(n) > self.limit {
            return Some(false);
        }
        st.held += n;
        Some(true)
    }

    /// Gives back `n` bytes taken by [`acquire`](Self::acquire).
    pub fn release(&self, n: u64) {
        if let Ok(mut st) = self.state.lock() {
            st.held = st.held.saturating_sub(n);
        }
        self.changed.notify_all();
    }

    /// Waits until every byte taken has been released. Returns false when
    /// the budget was stopped first (some work may never be done).
    pub fn wait_empty(&self) -> bool {
        let Ok(mut st) = self.state.lock() else {
            return false;
        };
        while st.held > 0 && !st.stopped {
            st = match self.changed.wait(st) {
                Ok(g) => g,
                Err(_) => return false,
            };
        }
        st.held == 0
    }

    /// Marks the receiving thread gone and wakes every waiter.
    pub fn stop(&self) {
        if let Ok(mut st) = self.state.lock() {
            st.stopped = true;
        }
        self.changed.notify_all();
    }

    pub fn is_stopped(&self) -> bool {
        self.state.lock().map_or(true, |st| st.stopped)
    }
}

/// Stops a [`ByteBudget`] when dropped: held by the receiving thread so
/// that the budget is stopped however the thread ends, panics included.
pub struct StopOnDrop(pub Arc<ByteBudget>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

#[cfg(test)]
mod budget_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_sender_waits_for_room_and_an_oversized_item_passes_alone() {
        let b = Arc::new(ByteBudget::new(100));
        assert!(b.acquire(60));
        assert!(b.acquire(40));
        let b2 = Arc::clone(&b);
        let t = std::thread::spawn(move || b2.acquire(1));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!t.is_finished(), "acquired past the limit");
        b.release(40);
        assert!(t.join().unwrap());
        b.release(61);
        assert!(b.wait_empty());
        // Nothing held: an item above the limit goes through alone.
        assert!(b.acquire(1000));
        b.release(1000);
    }

    #[test]
    fn try_acquire_takes_what_fits_and_never_waits() {
        let b = ByteBudget::new(100);
        assert_eq!(b.try_acquire(70), Some(true));
        assert_eq!(b.try_acquire(31), Some(false));
        assert_eq!(b.try_acquire(30), Some(true));
        assert_eq!(b.try_acquire(1), Some(false));
        b.release(100);
        // Nothing held: an item above the limit goes through alone.
        assert_eq!(b.try_acquire(500), Some(true));
        assert_eq!(b.try_acquire(1), Some(false));
        b.stop();
        assert_eq!(b.try_acquire(1), None);
    }

    #[test]
    fn stopping_wakes_a_waiting_sender_and_refuses_more() {
        let b = Arc::new(ByteBudget::new(10));
        assert!(b.acquire(10));
        let b2 = Arc::clone(&b);
        let waiter = std::thread::spawn(move || b2.acquire(5));
        let b3 = Arc::clone(&b);
        let emptier = std::thread::spawn(move || b3.wait_empty());
        std::thread::sleep(Duration::from_millis(50));
        drop(StopOnDrop(Arc::clone(&b)));
        assert!(!waiter.join().unwrap());
        assert!(!emptier.join().unwrap());
        assert!(b.is_stopped());
        assert!(!b.acquire(1));
    }
}
