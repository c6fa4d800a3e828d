//! Heartbeats and the live-instance view of one namespace.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use socketioxide_core::{Sid, Uid};

/// The other instances serving this namespace, each with the time it was last heard of.
/// Any message from an instance counts as a sign of life, not only its heartbeats.
#[derive(Debug)]
pub(crate) struct Membership {
    /// Keyed by the id behind the `Uid` (which is not `Hash`).
    last_seen: Mutex<HashMap<Sid, Instant>>,
    timeout: Duration,
}

impl Membership {
    /// An empty view in which instances expire after `timeout` of silence.
    pub fn new(timeout: Duration) -> Self {
        Self {
            last_seen: Mutex::default(),
            timeout,
        }
    }

    /// Records a sign of life; returns `true` when the instance was not counted before.
    pub fn saw(&self, node: Uid) -> bool {
        self.lock().insert(*node, Instant::now()).is_none()
    }

    /// Forgets an instance that said it is leaving.
    pub fn left(&self, node: Uid) {
        self.lock().remove(&*node);
    }

    /// The number of other instances alive now; expired ones are forgotten.
    pub fn others(&self) -> usize {
        let now = Instant::now();
        let mut last_seen = self.lock();
        last_seen.retain(|_, seen| now.duration_since(*seen) < self.timeout);
        last_seen.len()
    }

    /// The number of instances serving the namespace, this one included.
    pub fn server_count(&self) -> u16 {
        u16::try_from(self.others() + 1).unwrap_or(u16::MAX)
    }

    /// A poisoned lock only means a panic elsewhere while holding it; the map is still
    /// a valid map, so it is used as is.
    fn lock(&self) -> MutexGuard<'_, HashMap<Sid, Instant>> {
        self.last_seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn counts_expires_and_forgets() {
        let members = Membership::new(Duration::from_millis(50));
        let (a, b) = (Uid::new(), Uid::new());
        assert!(members.saw(a));
        assert!(!members.saw(a));
        assert!(members.saw(b));
        assert_eq!(members.server_count(), 3);
        members.left(b);
        assert_eq!(members.others(), 1);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(members.server_count(), 1);
    }
}
