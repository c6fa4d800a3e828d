//! What a run counts while it runs: atomic counters, HDR latency histograms and failure
//! reasons, shared by every user task and reader task through one [`Stats`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Histogram stripes: recorders pick one by user number, so the two reader threads rarely
/// wait on the same lock.
const STRIPES: usize = 16;
/// Highest latency recorded exactly, in microseconds (one hour); higher ones are clamped.
const MAX_MICROS: u64 = 3_600_000_000;
/// Significant figures kept by the histograms.
const SIGFIGS: u8 = 3;

/// A latency histogram in microseconds, striped to keep recorders apart.
pub struct Latency {
    stripes: Vec<Mutex<Histogram<u64>>>,
}

impl Default for Latency {
    fn default() -> Self {
        let stripes = (0..STRIPES)
            .filter_map(|_| Histogram::new_with_bounds(1, MAX_MICROS, SIGFIGS).ok())
            .map(Mutex::new)
            .collect();
        Self { stripes }
    }
}

impl Latency {
    /// Records one value, in stripe `stripe % STRIPES`.
    pub fn record(&self, stripe: u32, value: Duration) {
        let micros = u64::try_from(value.as_micros()).unwrap_or(u64::MAX);
        self.record_micros(stripe, micros);
    }

    /// Records one value in microseconds.
    pub fn record_micros(&self, stripe: u32, micros: u64) {
        let index = usize::try_from(stripe).unwrap_or_default() % self.stripes.len().max(1);
        if let Some(stripe) = self.stripes.get(index) {
            stripe
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .saturating_record(micros.max(1));
        }
    }

    /// Percentiles over every stripe, in milliseconds.
    pub fn quantiles(&self) -> Quantiles {
        let Ok(mut merged) = Histogram::<u64>::new_with_bounds(1, MAX_MICROS, SIGFIGS) else {
            return Quantiles::default();
        };
        for stripe in &self.stripes {
            let stripe = stripe.lock().unwrap_or_else(PoisonError::into_inner);
            // Same bounds: adding cannot fail.
            let _ = merged.add(&*stripe);
        }
        Quantiles::of(&merged)
    }
}

/// Latency percentiles in milliseconds (all zero when nothing was recorded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Quantiles {
    /// Number of values recorded.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest value.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Quantiles {
    fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Self {
            count: histogram.len(),
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
            mean: histogram.mean() / 1000.0,
        }
    }
}

/// Counters of one run, updated by every task.
#[derive(Debug, Default)]
pub struct Counters {
    /// Users whose connection handshake succeeded.
    pub connected: AtomicU64,
    /// Users whose connection handshake failed.
    pub connect_failed: AtomicU64,
    /// `join` attempts repeated after an ack did not come within 1 s.
    pub join_retries: AtomicU64,
    /// Users whose `join` failed (error ack, or no ack after every retry).
    pub join_failed: AtomicU64,
    /// Messages written to the socket.
    pub sent: AtomicU64,
    /// Sends that failed to write (connection gone).
    pub send_failed: AtomicU64,
    /// Acks that were `{error}`.
    pub ack_error: AtomicU64,
    /// Acks that did not come within the timeout or before the end of the run.
    pub ack_timeout: AtomicU64,
    /// Acks lost because the connection ended while waiting.
    pub ack_lost: AtomicU64,
    /// Unique deliveries of another user's message.
    pub received: AtomicU64,
    /// Deliveries of a message this receiver already had.
    pub duplicates: AtomicU64,
    /// First deliveries that arrived after a later message of the same sender.
    pub out_of_order: AtomicU64,
    /// `message` events whose payload or probe could not be read.
    pub bad_message: AtomicU64,
    /// Connections the server or the network ended during the run.
    pub disconnected: AtomicU64,
}

impl Counters {
    /// Adds one.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    /// The current value.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }
}

/// Failures counted by reason, with the first message seen as an example.
#[derive(Debug, Default)]
pub struct Reasons(Mutex<(BTreeMap<String, u64>, Option<String>)>);

impl Reasons {
    /// Counts one failure of kind `reason`, keeping `detail` if it is the first failure.
    pub fn add(&self, reason: &str, detail: impl FnOnce() -> String) {
        self.add_many(reason, 1, detail);
    }

    /// Counts `count` failures of kind `reason`, keeping `detail` if they are the first.
    pub fn add_many(&self, reason: &str, count: u64, detail: impl FnOnce() -> String) {
        let mut inner = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *inner.0.entry(reason.to_owned()).or_default() += count;
        if inner.1.is_none() {
            inner.1 = Some(detail());
        }
    }

    /// The counts by reason, and the first failure's message.
    pub fn snapshot(&self) -> (BTreeMap<String, u64>, Option<String>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Everything one run measures, shared by its tasks.
#[derive(Default)]
pub struct Stats {
    /// The counters.
    pub counters: Counters,
    /// Send-to-receipt latency of unique deliveries.
    pub latency: Latency,
    /// Send-to-ack latency of messages.
    pub ack: Latency,
    /// Connection handshake times.
    pub connect: Latency,
    /// Connection failures by reason.
    pub connect_failures: Reasons,
    /// Connections ended by the server or the network during the run, by reason.
    pub disconnects: Reasons,
    /// Cleared at the end of the measured window: later deliveries and disconnections (the
    /// run's own teardown) are not counted.
    stopped: AtomicBool,
}

impl Stats {
    /// Whether the measured window is still open.
    pub fn counting(&self) -> bool {
        !self.stopped.load(Relaxed)
    }

    /// Counts a connection that ended during the measured window, with why.
    pub fn disconnected(&self, user: u32, end: &socketio_client::ClientError) {
        if self.counting() {
            Counters::bump(&self.counters.disconnected);
            self.disconnects
                .add(end.kind(), || format!("user {user}: {end}"));
        }
    }

    /// Closes the measured window.
    pub fn stop_counting(&self) {
        self.stopped.store(true, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_merge_every_stripe() {
        let latency = Latency::default();
        assert_eq!(latency.quantiles(), Quantiles::default());
        for i in 1..=1000u32 {
            latency.record_micros(i, u64::from(i) * 1000);
        }
        let q = latency.quantiles();
        assert_eq!(q.count, 1000);
        assert!((q.p50 - 500.0).abs() < 1.0, "{q:?}");
        assert!((q.p99 - 990.0).abs() < 1.0, "{q:?}");
        assert!((q.max - 1000.0).abs() < 1.0, "{q:?}");
    }

    #[test]
    fn reasons_count_and_keep_the_first_message() {
        let reasons = Reasons::default();
        reasons.add("timeout", || "first".to_owned());
        reasons.add("timeout", || "second".to_owned());
        reasons.add("connect", || "third".to_owned());
        let (counts, sample) = reasons.snapshot();
        assert_eq!(counts.get("timeout"), Some(&2));
        assert_eq!(counts.get("connect"), Some(&1));
        assert_eq!(sample.as_deref(), Some("first"));
    }
}
