//! The in-process limiter that takes over while the shared (Redis) limiter cannot answer: the
//! same fixed windows, counted by this instance alone, in a map of bounded size.
//!
//! Memory is bounded by [`CAPACITY`] windows. When the map is full, expired windows are dropped
//! first; if none has expired, the window that started first is evicted (its key starts a new
//! window on its next hit). An attacker with many addresses can therefore shorten other
//! addresses' windows, never lengthen its own budget beyond one window per key.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

/// Most windows kept at once (about 100 bytes each).
pub(crate) const CAPACITY: usize = 10_000;

/// One key's current window.
struct Window {
    /// When it ends.
    ends: Instant,
    /// Hits counted in it.
    count: u32,
}

/// Fixed windows per key, in process.
pub(crate) struct LocalLimiter {
    windows: Mutex<HashMap<String, Window>>,
    capacity: usize,
}

impl LocalLimiter {
    /// A limiter keeping at most `capacity` windows.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            windows: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// Counts `hits` hits of `key` against at most `max` per `window`: `Err(time left in the
    /// window)` when over it.
    pub(crate) fn hit(
        &self,
        key: &str,
        max: u32,
        window: Duration,
        hits: u32,
    ) -> Result<(), Duration> {
        let now = Instant::now();
        // Only map updates happen under the lock: a panic elsewhere cannot leave it broken.
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(window) = windows.get_mut(key) {
            if window.ends > now {
                window.count = window.count.saturating_add(hits);
                if window.count > max {
                    return Err(window.ends - now);
                }
                return Ok(());
            }
            windows.remove(key);
        }
        if windows.len() >= self.capacity {
            windows.retain(|_, window| window.ends > now);
        }
        if windows.len() >= self.capacity {
            let oldest = windows
                .iter()
                .min_by_key(|(_, window)| window.ends)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                windows.remove(&oldest);
            }
        }
        let ends = now + window;
        windows.insert(key.to_owned(), Window { ends, count: hits });
        if hits > max {
            return Err(ends - now);
        }
        Ok(())
    }

    /// Windows held now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.windows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_key_and_stays_bounded() {
        let limiter = LocalLimiter::new(3);
        let rate = (2, Duration::from_secs(60));
        assert!(limiter.hit("a", rate.0, rate.1, 1).is_ok());
        assert!(limiter.hit("a", rate.0, rate.1, 1).is_ok());
        let left = limiter.hit("a", rate.0, rate.1, 1).err();
        assert!(left.is_some_and(|left| left > Duration::from_secs(59)));
        assert!(limiter.hit("b", rate.0, rate.1, 1).is_ok());
        for key in ["c", "d", "e", "f"] {
            assert!(limiter.hit(key, rate.0, rate.1, 1).is_ok());
            assert!(limiter.len() <= 3);
        }
        let short = (1, Duration::from_millis(1));
        assert!(limiter.hit("g", short.0, short.1, 1).is_ok());
        std::thread::sleep(Duration::from_millis(5));
        assert!(
            limiter.hit("g", short.0, short.1, 1).is_ok(),
            "a new window"
        );
        assert!(limiter.hit("h", 2, rate.1, 2).is_ok());
        assert!(limiter.hit("h", 2, rate.1, 1).is_err());
        assert!(
            limiter.hit("i", 2, rate.1, 3).is_err(),
            "more at once than the rate"
        );
    }
}
