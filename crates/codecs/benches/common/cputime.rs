//! CPU time of the calling thread, for benchmarks on a shared machine.

use std::time::Instant;

/// Nanoseconds this thread has run, from /proc/thread-self/schedstat.
fn thread_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
}

/// A start mark: wall clock plus thread CPU time when available.
pub fn clock() -> (Instant, Option<u64>) {
    (Instant::now(), thread_ns())
}

/// Seconds of this thread's CPU time since `since` (wall time when the
/// kernel does not report it).
pub fn cpu_secs(since: &(Instant, Option<u64>)) -> f64 {
    match (since.1, thread_ns()) {
        (Some(a), Some(b)) => (b - a) as f64 / 1e9,
        _ => since.0.elapsed().as_secs_f64(),
    }
}
