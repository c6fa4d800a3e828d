//! Every tunable of the adapter, with its default and the reason for it.

use std::time::Duration;

use crate::cluster::ClusterSecret;

/// Configuration of the cluster bus and of [`RedisAdapterState`](crate::RedisAdapterState);
/// the Redis connections have their own, [`RedisConfig`](crate::RedisConfig).
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
    /// Buffered remote responses per pending request before further ones are dropped (and
    /// counted). Bounds memory when a caller stops reading an acknowledgement stream.
    /// Default 8192.
    pub response_buffer: usize,
    /// How long a room's channel stays subscribed after its last local member left, so that
    /// join/leave churn does not flood Redis; rejoining within it costs nothing. Default 2 s.
    pub unsubscribe_delay: Duration,
    /// How often the subscribed rooms are compared with the rooms this instance's sockets are
    /// in: rooms joined around [`RedisAdapterState::join`](crate::RedisAdapterState::join)
    /// get subscribed (and logged), emptied rooms released. Default 1 s.
    pub reconcile_interval: Duration,
    /// The deployment's shared secret: when set, every message is sealed with a MAC and
    /// messages that do not verify (from anyone with Redis access but not the secret) are
    /// dropped and counted. Every instance must have the same one. Default: none.
    pub cluster_secret: Option<ClusterSecret>,
}

impl Default for RedisAdapterConfig {
    fn default() -> Self {
        Self {
            prefix: "socket.io".to_owned(),
            heartbeat_interval: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(5),
            response_buffer: 8192,
            unsubscribe_delay: Duration::from_secs(2),
            reconcile_interval: Duration::from_secs(1),
            cluster_secret: None,
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
