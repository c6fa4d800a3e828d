//! Every tunable of the adapter, with its default and the reason for it.

use std::time::Duration;

/// Configuration of [`RedisAdapterState`](crate::RedisAdapterState).
///
/// Start from [`RedisAdapterConfig::default()`] and change what you need:
///
/// ```
/// use std::time::Duration;
/// use redis_adapter::RedisAdapterConfig;
///
/// let config = RedisAdapterConfig::default()
///     .with_prefix("tenant-a")
///     .with_heartbeat(Duration::from_secs(2), Duration::from_secs(6));
/// assert_eq!(config.prefix, "tenant-a");
/// ```
#[derive(Debug, Clone)]
pub struct RedisAdapterConfig {
    /// First part of every channel name, so several deployments can share one Redis.
    /// Default `"socket.io"`.
    pub prefix: String,
    /// How often this instance announces that it is alive. Default 5 s.
    pub heartbeat_interval: Duration,
    /// How long another instance stays counted without a heartbeat (or any other message)
    /// from it. A killed instance stops being waited for after at most this long.
    /// Default 15 s: three missed heartbeats.
    pub heartbeat_timeout: Duration,
    /// How long a request to the other instances (`fetch_sockets`, `rooms`) waits for their
    /// answers, and how much longer than the acknowledgement timeout a remote
    /// `broadcast_with_ack` waits. Default 5 s.
    pub request_timeout: Duration,
    /// How long one PUBLISH may take before it counts as failed. Publishes fail fast during
    /// a Redis outage instead of piling up. Default 1 s.
    pub publish_timeout: Duration,
    /// How long opening a Redis connection may take. Default 2 s.
    pub connect_timeout: Duration,
    /// First delay before reconnecting a lost Redis connection. Default 100 ms.
    pub reconnect_min_delay: Duration,
    /// Upper bound of the exponential reconnect delay. Default 500 ms: once Redis is back,
    /// subscriptions are restored within about half a second.
    pub reconnect_max_delay: Duration,
    /// How often a probe message goes through Redis to this process's own subscriber, to
    /// catch a subscriber connection that looks alive but no longer delivers. Default 2 s.
    pub probe_interval: Duration,
    /// How long a probe may take to come back before the subscriber connection is rebuilt.
    /// Default 2 s.
    pub probe_timeout: Duration,
    /// Buffered remote responses per pending request before further ones are dropped (and
    /// counted). Bounds memory when a caller stops reading an acknowledgement stream.
    /// Default 8192.
    pub response_buffer: usize,
    /// Publishes that may wait in the publish queue. When it is full, a publish fails at once
    /// (and is counted) instead of growing an unbounded backlog. Default 65536.
    pub publish_queue_capacity: usize,
    /// The most publishes sent to Redis as one pipeline. Default 1024.
    pub max_pipeline: usize,
    /// How long a room's channel stays subscribed after its last local member left, so that
    /// join/leave churn does not flood Redis; rejoining within it costs nothing. Default 2 s.
    pub unsubscribe_delay: Duration,
    /// How often the subscribed rooms are compared with the rooms this instance's sockets are
    /// in: rooms joined around [`RedisAdapterState::join`](crate::RedisAdapterState::join)
    /// get subscribed (and logged), emptied rooms released. Default 1 s.
    pub reconcile_interval: Duration,
}

impl Default for RedisAdapterConfig {
    fn default() -> Self {
        Self {
            prefix: "socket.io".to_owned(),
            heartbeat_interval: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(5),
            publish_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(2),
            reconnect_min_delay: Duration::from_millis(100),
            reconnect_max_delay: Duration::from_millis(500),
            probe_interval: Duration::from_secs(2),
            probe_timeout: Duration::from_secs(2),
            response_buffer: 8192,
            publish_queue_capacity: 65_536,
            max_pipeline: 1024,
            unsubscribe_delay: Duration::from_secs(2),
            reconcile_interval: Duration::from_secs(1),
        }
    }
}

impl RedisAdapterConfig {
    /// Sets the channel prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the heartbeat interval and the time after which a silent instance is dropped.
    pub fn with_heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        self.heartbeat_interval = interval;
        self.heartbeat_timeout = timeout;
        self
    }

    /// Sets the timeout of requests to the other instances.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
}
