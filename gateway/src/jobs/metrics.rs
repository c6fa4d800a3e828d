//! The job metrics (Prometheus, through the process's recorder in `crate::metrics`). A
//! worker counts what it runs; the gateway and the worker both report the queue's depth,
//! read from Redis at scrape time, and the gateway its spool.

use super::queue::Queue;
use crate::metrics::{SCRAPE_REDIS_TIMEOUT, gauge};

/// Jobs done, by kind (worker).
pub(crate) const PROCESSED: &str = "jobs_processed_total";
/// Failed attempts scheduled to run again, by kind (worker).
pub(crate) const RETRIES: &str = "jobs_retries_total";
/// Jobs moved to the dead letters, by kind (`unknown`: an entry that is not a job) (worker).
pub(crate) const DEAD: &str = "jobs_dead_total";
/// Deliveries taken over from a worker that stopped (worker).
pub(crate) const CLAIMED: &str = "jobs_claimed_total";
/// Jobs in the stream, not done yet: waiting or running (gauge, at scrape time).
pub(crate) const READY: &str = "jobs_queue_depth";
/// Delayed jobs and retries waiting for their time (gauge).
pub(crate) const SCHEDULED: &str = "jobs_scheduled";
/// Dead letters kept (gauge).
pub(crate) const DEAD_LETTERS: &str = "jobs_dead_letters";
/// Age of the oldest job not done yet, seconds (gauge; 0 when none).
pub(crate) const LAG: &str = "jobs_lag_seconds";
/// Jobs this gateway holds in memory until Redis takes them (gauge).
pub(crate) const SPOOLED: &str = "jobs_spool_depth";
/// 1 when the scrape could read the queue's depth from Redis, else 0 (the depth gauges keep
/// their last values).
pub(crate) const QUEUE_UP: &str = "jobs_queue_up";

/// Counts one job of `kind` done.
pub(crate) fn processed(kind: &'static str) {
    metrics::counter!(PROCESSED, "kind" => kind).increment(1);
}

/// Counts one retry of a job of `kind`.
pub(crate) fn retried(kind: &'static str) {
    metrics::counter!(RETRIES, "kind" => kind).increment(1);
}

/// Counts one dead letter of `kind`.
pub(crate) fn dead(kind: &'static str) {
    metrics::counter!(DEAD, "kind" => kind).increment(1);
}

/// Counts `n` deliveries taken over.
pub(crate) fn claimed(n: usize) {
    metrics::counter!(CLAIMED).increment(u64::try_from(n).unwrap_or(u64::MAX));
}

/// Copies the queue's depth into the gauges, if Redis answers in time.
pub(crate) async fn record_depth(queue: &Queue) {
    let depth = queue.depth(SCRAPE_REDIS_TIMEOUT).await;
    gauge(QUEUE_UP, if depth.is_some() { 1.0 } else { 0.0 });
    if let Some(depth) = depth {
        gauge(READY, depth.ready as f64);
        gauge(SCHEDULED, depth.scheduled as f64);
        gauge(DEAD_LETTERS, depth.dead as f64);
        gauge(LAG, depth.lag_seconds);
    }
}
