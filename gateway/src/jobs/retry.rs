//! When a failed job runs again: exponential backoff from the first delay, doubling with
//! each failed attempt up to [`MAX_BACKOFF`], with up to a tenth of jitter so that jobs that
//! failed together do not all come back together.

use std::time::Duration;

/// The longest wait between two attempts.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// How many attempts a job gets and how long it waits between them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// Attempts in all (at least 1); after the last failed one the job is a dead letter.
    pub(crate) attempts: u32,
    /// The wait after the first failure.
    pub(crate) first_backoff: Duration,
}

impl RetryPolicy {
    /// Whether a job that has now failed `failed` times gets another attempt.
    pub(crate) fn retries(&self, failed: u32) -> bool {
        failed < self.attempts.max(1)
    }

    /// The wait before the attempt after `failed` failures (1: the first retry).
    pub(crate) fn backoff(&self, failed: u32) -> Duration {
        let doublings = failed.saturating_sub(1).min(30);
        let base = self
            .first_backoff
            .saturating_mul(1 << doublings)
            .min(MAX_BACKOFF);
        let jitter = base.mul_f64(rand::random::<f64>() / 10.0);
        base + jitter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_stops_after_the_last_attempt() {
        let policy = RetryPolicy {
            attempts: 3,
            first_backoff: Duration::from_millis(100),
        };
        let within = |failed, ms: u64| {
            let wait = policy.backoff(failed);
            let base = Duration::from_millis(ms);
            assert!(
                wait >= base && wait <= base + base / 10,
                "{failed}: {wait:?}"
            );
        };
        within(1, 100);
        within(2, 200);
        within(3, 400);
        assert!(policy.backoff(1_000) <= MAX_BACKOFF + MAX_BACKOFF / 10);
        assert!(policy.retries(1) && policy.retries(2));
        assert!(!policy.retries(3));
    }
}
