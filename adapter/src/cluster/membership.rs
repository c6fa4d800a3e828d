//! Heartbeats and the live-instance view of one namespace.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use super::{
    Id, PubSub,
    envelope::{self, Kind},
    seal::{self, ClusterSecret},
};
use crate::connection::Wait;

/// The other instances serving this namespace, each with the time it was last heard of.
/// Any message from an instance counts as a sign of life, not only its heartbeats.
#[derive(Debug)]
pub(crate) struct Membership {
    last_seen: Mutex<HashMap<Id, Instant>>,
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
    pub fn saw(&self, node: Id) -> bool {
        self.lock().insert(node, Instant::now()).is_none()
    }

    /// Forgets an instance that said it is leaving.
    pub fn left(&self, node: Id) {
        self.lock().remove(&node);
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
    fn lock(&self) -> MutexGuard<'_, HashMap<Id, Instant>> {
        self.last_seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Announces instance `node` on `channel` every `interval`, and says hello again each time
/// the subscriptions are whole again (the others may have dropped it meanwhile, and it may have
/// missed their heartbeats). Failed publishes are counted by the publisher and retried at the
/// next tick: the loop never ends on error, only when the bus aborts it.
pub(crate) async fn heartbeat<P: PubSub>(
    pubsub: Arc<P>,
    channel: String,
    node: Id,
    secret: Option<ClusterSecret>,
    interval: Duration,
) {
    let mut link = pubsub.link();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        let kind = tokio::select! {
            _ = ticker.tick() => Kind::Heartbeat,
            changed = link.changed() => {
                if changed.is_err() {
                    return;
                }
                if !link.borrow_and_update().subscribed {
                    continue;
                }
                Kind::Hello
            }
        };
        let signal = seal::seal(
            secret.as_ref(),
            &channel,
            envelope::encode_signal(kind, node),
        );
        let _counted_by_publisher = pubsub.publish(channel.clone(), signal, Wait::Queued).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn counts_expires_and_forgets() {
        let members = Membership::new(Duration::from_millis(50));
        let (a, b) = (Id::random(), Id::random());
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
