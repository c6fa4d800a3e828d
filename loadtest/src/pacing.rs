//! A fixed-rate schedule of a bounded number of sends: send `i` is due `i / rate` seconds
//! after the start, for as long as it is due within the duration and below the count. The
//! emitter publisher (`bench/peers/node/emitter-publisher.mjs`) keeps the same schedule.

use std::time::Duration;

/// The schedule of one publisher.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pacing {
    /// Sends per second, positive.
    pub rate: f64,
    /// Most sends.
    pub count: u64,
    /// Sends are due strictly within this time from the start.
    pub duration: Duration,
}

impl Pacing {
    /// How many sends the schedule holds: those below the count and due within the duration,
    /// `min(count, ceil(rate × duration))`.
    pub fn planned(&self) -> u64 {
        let within = (self.rate * self.duration.as_secs_f64()).ceil();
        if !within.is_finite() || within <= 0.0 {
            return 0;
        }
        let within = if within >= u64::MAX as f64 {
            u64::MAX
        } else {
            within as u64
        };
        within.min(self.count)
    }

    /// When send `i` is due, from the start; `None` past the schedule's end.
    pub fn due(&self, i: u64) -> Option<Duration> {
        (i < self.planned())
            .then(|| Duration::try_from_secs_f64(i as f64 / self.rate).unwrap_or(Duration::MAX))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn pacing(rate: f64, count: u64, duration_ms: u64) -> Pacing {
        Pacing {
            rate,
            count,
            duration: Duration::from_millis(duration_ms),
        }
    }

    #[test]
    fn the_count_or_the_duration_ends_the_schedule_whichever_comes_first() {
        assert_eq!(pacing(100.0, 1_000_000, 2_000).planned(), 200);
        assert_eq!(pacing(100.0, 50, 2_000).planned(), 50);
        // Sends due at 0, 0.4, 0.8 s are within 1 s; the fourth, at 1.2 s, is not.
        assert_eq!(pacing(2.5, 100, 1_000).planned(), 3);
        // Exactly on the end: 10 sends at 0, 0.1, ... 0.9 s; the one due at 1 s is out.
        assert_eq!(pacing(10.0, 100, 1_000).planned(), 10);
        assert_eq!(pacing(10.0, 0, 1_000).planned(), 0);
        assert_eq!(pacing(10.0, 5, 0).planned(), 0);
    }

    #[test]
    fn sends_are_evenly_spaced_from_the_start() {
        let schedule = pacing(4.0, 3, 10_000);
        let due: Vec<_> = (0..4).map(|i| schedule.due(i)).collect();
        assert_eq!(
            due,
            [
                Some(Duration::ZERO),
                Some(Duration::from_millis(250)),
                Some(Duration::from_millis(500)),
                None
            ]
        );
        let fast = pacing(1_000.0, u64::MAX, 1_000);
        assert_eq!(fast.planned(), 1_000);
        assert_eq!(fast.due(500), Some(Duration::from_millis(500)));
        assert_eq!(fast.due(1_000), None);
    }
}
