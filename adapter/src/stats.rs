//! Counters of what the Redis layer and the bus did and dropped, readable at any time. Each
//! counter is named once, in the table at the bottom: its field, its doc and its metric.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// What kind of metric a counter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only ever grows.
    Counter,
    /// Goes up and down.
    Gauge,
}

/// One counter as a metric: its name, an optional label, its kind and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// The metric name, e.g. `redis_adapter_published_total`.
    pub name: &'static str,
    /// A `(label, value)` pair that tells this counter from others of the same name.
    pub label: Option<(&'static str, &'static str)>,
    /// Counter or gauge.
    pub kind: MetricKind,
    /// The value.
    pub value: u64,
}

macro_rules! counters {
    ($($(#[doc = $doc:literal])+ $field:ident => $kind:ident $name:literal $(, $label:literal = $value:literal)?;)+) => {
        /// Live counters shared by the Redis layer and every namespace on the bus; read them
        /// with [`Counters::snapshot`].
        #[derive(Debug, Default)]
        pub struct Counters {
            $(pub(crate) $field: AtomicU64,)+
        }

        /// A snapshot of the counters, for metrics and tests.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct Stats {
            $($(#[doc = $doc])+ pub $field: u64,)+
        }

        impl Counters {
            /// A consistent-enough copy for reporting.
            pub fn snapshot(&self) -> Stats {
                Stats { $($field: self.$field.load(Relaxed),)+ }
            }
        }

        impl Stats {
            /// Every counter as a metric, for whichever exporter the application runs.
            pub fn readings(&self) -> Vec<Reading> {
                vec![$(Reading {
                    name: $name,
                    label: None $(.or(Some(($label, $value))))?,
                    kind: MetricKind::$kind,
                    value: self.$field,
                },)+]
            }
        }
    };
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

    /// Takes `n` from a gauge (the socketioxide front end's backlog bytes).
    #[cfg(feature = "socketioxide")]
    pub(crate) fn sub(counter: &AtomicU64, n: usize) {
        counter.fetch_sub(n as u64, Relaxed);
    }
}

counters! {
    /// Messages published to Redis (heartbeats and probes included).
    published => Counter "redis_adapter_published_total";
    /// Bytes published to Redis.
    published_bytes => Counter "redis_adapter_published_bytes_total";
    /// Publishes that failed, timed out, or were refused at once because Redis is unreachable
    /// (local delivery still happened).
    publish_failures => Counter "redis_adapter_publish_failures_total";
    /// Messages received from Redis, on every channel.
    received => Counter "redis_adapter_received_total";
    /// Bytes received from Redis.
    received_bytes => Counter "redis_adapter_received_bytes_total";
    /// Messages this instance published and received back, ignored.
    ignored_own => Counter "redis_adapter_dropped_total", "reason" = "own";
    /// Messages dropped because they could not be decoded.
    dropped_malformed => Counter "redis_adapter_dropped_total", "reason" = "malformed";
    /// Messages dropped because their envelope version is unknown.
    dropped_unknown_version => Counter "redis_adapter_dropped_total", "reason" = "unknown_version";
    /// Messages dropped because they did not carry a valid MAC of the cluster secret (or
    /// carried one this instance, without a secret, cannot check).
    dropped_unverified => Counter "redis_adapter_dropped_total", "reason" = "unverified";
    /// Remote responses dropped because their request was gone or its buffer full.
    dropped_responses => Counter "redis_adapter_dropped_total", "reason" = "late_response";
    /// Requests whose expected responses did not all arrive in time.
    request_timeouts => Counter "redis_adapter_request_timeouts_total";
    /// Redis subscriber reconnections.
    reconnects => Counter "redis_adapter_reconnects_total";
    /// Subscriber connections rebuilt because a probe did not come back through them.
    stale_subscriber => Counter "redis_adapter_stale_subscribers_total";
    /// Publishes refused because the publish queue was full (also in `publish_failures`).
    publish_queue_full => Counter "redis_adapter_publish_queue_full_total";
    /// Publishes refused because their channel held its whole share of the publish queue
    /// (`RedisConfig::publish_channel_share`; also in `publish_queue_full`).
    publish_queue_share_full => Counter "redis_adapter_publish_queue_share_full_total";
    /// Pipelines sent to Redis; `published / pipelines` is the mean batch size.
    pipelines => Counter "redis_adapter_pipelines_total";
    /// Messages received on a room's channel while this instance had no member in the room
    /// (within the unsubscribe delay after its last member left), dropped unread.
    room_messages_discarded => Counter "redis_adapter_room_messages_discarded_total";
    /// Messages received from the Socket.IO Redis emitter, on its channels.
    emitter_received => Counter "redis_adapter_emitter_received_total";
    /// Emitter messages dropped because they are in none of the emitter's shapes.
    emitter_dropped_malformed => Counter "redis_adapter_emitter_dropped_total", "reason" = "malformed";
    /// Emitter messages dropped because they are over `EmitterConfig::max_message_bytes`.
    emitter_dropped_oversized => Counter "redis_adapter_emitter_dropped_total", "reason" = "oversized";
    /// Emitter messages dropped because the application's `EmitterConfig::accept` refused them.
    emitter_dropped_refused => Counter "redis_adapter_emitter_dropped_total", "reason" = "refused";
    /// Emitter messages dropped because they mean nothing here (`serverSideEmit`).
    emitter_dropped_unsupported => Counter "redis_adapter_emitter_dropped_total", "reason" = "unsupported";
    /// Deliveries to local sockets that waited in a socket's backlog because its buffer was
    /// full (see `LocalBacklog`).
    local_deferred => Counter "redis_adapter_local_deferred_total";
    /// Deliveries to a local socket dropped because the socket was slow (its backlog was
    /// over a limit of `LocalBacklog`): the backlog it had, and what came until it was gone.
    local_drops_slow => Counter "redis_adapter_local_drops_total", "reason" = "slow";
    /// Volatile deliveries dropped because the socket's buffer was full or it had a backlog.
    local_drops_volatile => Counter "redis_adapter_local_drops_total", "reason" = "volatile";
    /// Local sockets found slow, each disconnected and logged once.
    local_slow_sockets => Counter "redis_adapter_local_slow_sockets_total";
    /// Local sockets with a backlog (or slow and not yet gone) right now.
    local_backlogged_sockets => Gauge "redis_adapter_local_backlogged_sockets";
    /// Bytes waiting in the local sockets' backlogs right now, as `LocalBacklog` counts them.
    local_backlog_bytes => Gauge "redis_adapter_local_backlog_bytes";
    /// Room channels subscribed right now.
    room_subscriptions => Gauge "redis_adapter_room_subscriptions";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_reads_as_one_metric() {
        let counters = Counters::default();
        Counters::incr(&counters.dropped_malformed);
        Counters::add(&counters.published, 3);
        let readings = counters.snapshot().readings();
        assert_eq!(readings.len(), 29);
        let malformed = readings
            .iter()
            .find(|reading| reading.label == Some(("reason", "malformed")));
        assert_eq!(malformed.map(|reading| reading.value), Some(1));
        assert!(
            readings.iter().any(
                |reading| reading.name == "redis_adapter_published_total" && reading.value == 3
            )
        );
        let gauges: Vec<_> = readings
            .iter()
            .filter(|reading| reading.kind == MetricKind::Gauge)
            .map(|reading| reading.name)
            .collect();
        assert_eq!(
            gauges,
            [
                "redis_adapter_local_backlogged_sockets",
                "redis_adapter_local_backlog_bytes",
                "redis_adapter_room_subscriptions"
            ]
        );
    }
}
