//! The live progress line (indicatif) on stderr: connected users, messages sent and received,
//! current deliveries per second. Hidden when disabled or when stderr is not a terminal.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::stats::{Counters, Stats};

/// How often the line is redrawn.
const TICK: Duration = Duration::from_millis(250);

/// A running progress line; [`Progress::finish`] clears it.
pub struct Progress {
    bar: ProgressBar,
    ticker: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts the line for a run of `users` users, unless `enabled` is false.
    pub fn start(enabled: bool, stats: Arc<Stats>, users: u32) -> Self {
        if !enabled {
            return Self {
                bar: ProgressBar::hidden(),
                ticker: None,
            };
        }
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}") {
            bar.set_style(style);
        }
        let ticker = tokio::spawn(tick(bar.clone(), stats, users));
        Self {
            bar,
            ticker: Some(ticker),
        }
    }

    /// Stops and clears the line.
    pub fn finish(self) {
        drop(self);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
        }
        self.bar.finish_and_clear();
    }
}

/// Redraws the line until aborted.
async fn tick(bar: ProgressBar, stats: Arc<Stats>, users: u32) {
    let counters = &stats.counters;
    let mut interval = tokio::time::interval(TICK);
    let (mut last_received, mut last_at) = (0, Instant::now());
    loop {
        interval.tick().await;
        let received = Counters::get(&counters.received);
        let now = Instant::now();
        let seconds = now.duration_since(last_at).as_secs_f64().max(1e-3);
        let rate = (received - last_received.min(received)) as f64 / seconds;
        (last_received, last_at) = (received, now);
        bar.set_message(format!(
            "connected {}/{users} (failed {}) | sent {} | received {} | {rate:.0} deliveries/s | disconnected {}",
            Counters::get(&counters.connected),
            Counters::get(&counters.connect_failed),
            Counters::get(&counters.sent),
            received,
            Counters::get(&counters.disconnected),
        ));
        bar.tick();
    }
}
