//! One socket's event budget: a token bucket (GCRA form) over every event the socket sends,
//! checked in process on the socket's read path, before any handler or Redis work.
//!
//! A [`Rate`] of `N/D` lets a socket send a burst of `N` events, then one every `D / N`. The
//! whole state is one instant, the bucket's theoretical arrival time: a check is a clock
//! read and two comparisons, without allocation, under the socket's own queue lock
//! (`order::EventQueue`), never shared with another socket.

use std::time::{Duration, Instant};

use crate::ratelimit::Rate;

/// A socket's budget of events.
#[derive(Debug)]
pub(super) struct Budget {
    /// Time the bucket needs to refill one event (`window / max`, at least 1 ns).
    interval: Duration,
    /// How far ahead of now the arrival time may run: `window - interval`, a burst of `max`.
    tolerance: Duration,
    /// When the bucket would be full again; `None` while it is full.
    full_at: Option<Instant>,
}

impl Budget {
    /// A full bucket for `rate`.
    pub(super) fn new(rate: Rate) -> Self {
        let interval = (rate.window / rate.max.max(1)).max(Duration::from_nanos(1));
        Self {
            interval,
            tolerance: rate.window.saturating_sub(interval),
            full_at: None,
        }
    }

    /// Takes one event at `now`: `Err(wait)` when the budget is spent, with the wait until
    /// one more event would be accepted (a refused event takes nothing).
    pub(super) fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let start = self.full_at.filter(|at| *at > now).unwrap_or(now);
        let ahead = start - now;
        if ahead > self.tolerance {
            return Err(ahead - self.tolerance);
        }
        self.full_at = Some(start + self.interval);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_max_then_one_per_interval() {
        let mut budget = Budget::new(Rate::new(5, Duration::from_secs(1)));
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(budget.take(t0), Ok(()));
        }
        let wait = budget.take(t0).err().unwrap_or_default();
        assert_eq!(wait, Duration::from_millis(200));
        // A refused event takes nothing: the same wait again.
        assert_eq!(budget.take(t0), Err(Duration::from_millis(200)));
        assert_eq!(budget.take(t0 + Duration::from_millis(200)), Ok(()));
        assert!(budget.take(t0 + Duration::from_millis(200)).is_err());
        // A whole window later the burst is back.
        let later = t0 + Duration::from_secs(3);
        for _ in 0..5 {
            assert_eq!(budget.take(later), Ok(()));
        }
        assert!(budget.take(later).is_err());
    }
}
