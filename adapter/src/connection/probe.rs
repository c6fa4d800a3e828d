//! The Pub/Sub probe: a message sent through Redis to this process's own subscriber. A
//! connection can look alive (no error, no EOF) and still deliver nothing, after a network
//! partition or a proxy losing state; when a probe does not come back in time, the subscriber
//! connection is rebuilt. On a standalone Redis, a subscriber that is merely behind (a burst
//! it is still working through, with the probe queued after it) keeps delivering, so it is
//! waited for: rebuilding it would throw away what it has not read yet. A cluster's
//! subscriber mixes every shard's messages, so there the probe stays strict (a deaf shard
//! must not hide behind the live ones) and a burst can still cost a rebuild.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::sync::Notify;

use super::{
    Handler,
    link::LinkRx,
    queue::{PublishQueue, Wait},
};
use crate::stats::Counters;

/// What the probe needs: where to send, how to see it come back, whom to tell.
pub(crate) struct Probe {
    /// A channel only this process subscribes to.
    pub channel: String,
    pub queue: PublishQueue,
    pub link: LinkRx,
    /// Wakes the subscriber task to rebuild its connection.
    pub rebuild: Arc<Notify>,
    pub counters: Arc<Counters>,
    pub interval: Duration,
    pub timeout: Duration,
    /// The sequence number of the last probe received.
    pub received: Arc<AtomicU64>,
    /// Whether a late probe is waited for while other messages keep being delivered (see
    /// [`Probe::wait_for`]): only where one connection carries every message in order.
    pub patient: bool,
}

impl Probe {
    /// The subscriber route that records received probes.
    pub fn handler(received: Arc<AtomicU64>) -> Handler {
        Arc::new(move |payload: &[u8]| {
            let seq = std::str::from_utf8(payload)
                .ok()
                .and_then(|s| s.parse::<u64>().ok());
            if let Some(seq) = seq {
                received.fetch_max(seq, Ordering::Relaxed);
            }
        })
    }

    /// Probes forever; only an aborted task ends it.
    pub async fn run(self) {
        let mut seq = 0u64;
        loop {
            tokio::time::sleep(self.interval).await;
            // Down, or being restored: the subscriber's task is at it already.
            if !self.link.borrow().subscribed {
                continue;
            }
            seq += 1;
            let generation = self.link.borrow().generation;
            let sent = self
                .queue
                .publish(
                    self.channel.clone(),
                    seq.to_string().into_bytes(),
                    Wait::Confirmed,
                )
                .await;
            if sent.is_err() {
                // The publishing side is down: that is the publisher's problem to report.
                continue;
            }
            let came_back = self.wait_for(seq).await;
            // A probe that went out before a rebuild (a topology change, say) is lost with the
            // old connection: that says nothing of the new one, which the next probe checks.
            let link = *self.link.borrow();
            if !came_back && link.subscribed && link.generation == generation {
                Counters::incr(&self.counters.stale_subscriber);
                tracing::warn!(
                    timeout = ?self.timeout,
                    "redis subscriber delivers nothing; rebuilding its connection"
                );
                self.rebuild.notify_one();
            }
        }
    }

    /// Whether probe `seq` comes back in time: within one timeout, or, when [`Probe::patient`],
    /// before a whole timeout passes with nothing else delivered either.
    async fn wait_for(&self, seq: u64) -> bool {
        let delivered = || self.counters.received.load(Ordering::Relaxed);
        let mut mark = delivered();
        let mut deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            if self.received.load(Ordering::Relaxed) >= seq {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                let now = delivered();
                if now == mark || !self.patient {
                    return false;
                }
                tracing::debug!(
                    behind = now - mark,
                    "redis subscriber is behind; the probe waits"
                );
                mark = now;
                deadline += self.timeout;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
