//! Counters of what the adapter did and dropped, readable at any time.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live counters shared by the Redis layer and every namespace on the bus; read them with
/// [`Counters::snapshot`].
#[derive(Debug, Default)]
pub struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) published_bytes: AtomicU64,
    pub(crate) publish_failures: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) received_bytes: AtomicU64,
    pub(crate) ignored_own: AtomicU64,
    pub(crate) dropped_malformed: AtomicU64,
    pub(crate) dropped_unknown_version: AtomicU64,
    pub(crate) dropped_responses: AtomicU64,
    pub(crate) request_timeouts: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) stale_subscriber: AtomicU64,
    pub(crate) publish_queue_full: AtomicU64,
    pub(crate) pipelines: AtomicU64,
    pub(crate) room_messages_discarded: AtomicU64,
    pub(crate) room_subscriptions: AtomicU64,
}

impl Counters {
    /// Adds one to a counter.
    pub(crate) fn incr(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    /// Adds `n` to a counter.
    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Relaxed);
    }

    /// Takes one from a gauge.
    pub(crate) fn decr(counter: &AtomicU64) {
        counter.fetch_sub(1, Relaxed);
    }

    /// A consistent-enough copy for reporting.
    pub fn snapshot(&self) -> Stats {
        Stats {
            published: self.published.load(Relaxed),
            published_bytes: self.published_bytes.load(Relaxed),
            publish_failures: self.publish_failures.load(Relaxed),
            received: self.received.load(Relaxed),
            received_bytes: self.received_bytes.load(Relaxed),
            ignored_own: self.ignored_own.load(Relaxed),
            dropped_malformed: self.dropped_malformed.load(Relaxed),
            dropped_unknown_version: self.dropped_unknown_version.load(Relaxed),
            dropped_responses: self.dropped_responses.load(Relaxed),
            request_timeouts: self.request_timeouts.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            stale_subscriber: self.stale_subscriber.load(Relaxed),
            publish_queue_full: self.publish_queue_full.load(Relaxed),
            pipelines: self.pipelines.load(Relaxed),
            room_messages_discarded: self.room_messages_discarded.load(Relaxed),
            room_subscriptions: self.room_subscriptions.load(Relaxed),
        }
    }
}

/// A snapshot of the adapter's counters, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages published to Redis (heartbeats and probes included).
    pub published: u64,
    /// Bytes published to Redis.
    pub published_bytes: u64,
    /// Publishes that failed, timed out, or were refused at once because Redis is unreachable
    /// (local delivery still happened).
    pub publish_failures: u64,
    /// Messages received from Redis, on every channel.
    pub received: u64,
    /// Bytes received from Redis.
    pub received_bytes: u64,
    /// Messages this instance published and received back, ignored.
    pub ignored_own: u64,
    /// Messages dropped because they could not be decoded.
    pub dropped_malformed: u64,
    /// Messages dropped because their envelope version is unknown.
    pub dropped_unknown_version: u64,
    /// Remote responses dropped because their request was gone or its buffer full.
    pub dropped_responses: u64,
    /// Requests whose expected responses did not all arrive in time.
    pub request_timeouts: u64,
    /// Redis subscriber reconnections.
    pub reconnects: u64,
    /// Subscriber connections rebuilt because a probe did not come back through them.
    pub stale_subscriber: u64,
    /// Publishes refused because the publish queue was full (also in `publish_failures`).
    pub publish_queue_full: u64,
    /// Pipelines sent to Redis; `published / pipelines` is the mean batch size.
    pub pipelines: u64,
    /// Messages received on a room's channel while this instance had no member in the room
    /// (within the unsubscribe delay after its last member left), dropped unread.
    pub room_messages_discarded: u64,
    /// Room channels subscribed right now.
    pub room_subscriptions: u64,
}
