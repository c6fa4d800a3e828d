//! Every tunable of the Redis layer, with its default and the reason for it.

use std::time::Duration;

/// Configuration of a [`Redis`](super::Redis) connection set.
///
/// ```
/// use std::time::Duration;
/// use redis_adapter::RedisConfig;
///
/// let config = RedisConfig {
///     command_timeout: Duration::from_millis(500),
///     ..RedisConfig::default()
/// };
/// assert_eq!(config.max_pipeline, 1024);
/// ```
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// How long one command, pipeline or publish may take before it counts as failed: a
    /// Redis outage costs a caller at most this long. Default 1 s.
    pub command_timeout: Duration,
    /// How long opening a connection to one Redis (one node of a cluster) may take. A cluster
    /// connection connects to the seeds, asks the slots, then connects to the slot map's
    /// nodes: at most twice this plus `command_timeout`. Default 2 s.
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
    /// Publishes that may wait in the publish queue. When it is full, a publish fails at once
    /// (and is counted) instead of growing an unbounded backlog. Default 65536.
    pub publish_queue_capacity: usize,
    /// Bytes of payload that may wait in the publish queue; past them a publish fails at
    /// once (and is counted). Default 64 MiB.
    pub publish_queue_max_bytes: usize,
    /// One channel (one room) may hold at most `1 / publish_channel_share` of the queue's
    /// messages and bytes: a burst on one room is refused its excess while the other rooms'
    /// publishes still get in, but for the 1 room in 1,024 whose channel is counted in the same
    /// bucket (shared allowance). Default 4.
    pub publish_channel_share: usize,
    /// The most publishes sent to Redis as one pipeline. Default 1024.
    pub max_pipeline: usize,
    /// First part of the probe's channel name, so that deployments sharing a Redis keep
    /// their probes apart. Default `"socket.io"`.
    pub probe_prefix: String,
    /// The ACL user and password to authenticate with, overriding any in the URL (read them
    /// from a file rather than putting them on a command line). Default: those of the URL.
    pub credentials: Option<Credentials>,
    /// The PEM certificate of the authority that signed the Redis servers' certificates, for
    /// `rediss://` with a private CA. Default: the system's trust store.
    pub tls_root_cert: Option<Vec<u8>>,
}

/// An ACL user (or `default` when `None`) and its password; never printed.
#[derive(Clone)]
pub struct Credentials {
    /// The ACL user; `None` for `requirepass`'s `default` user.
    pub username: Option<String>,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"..")
            .finish()
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            command_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(2),
            reconnect_min_delay: Duration::from_millis(100),
            reconnect_max_delay: Duration::from_millis(500),
            probe_interval: Duration::from_secs(2),
            probe_timeout: Duration::from_secs(2),
            publish_queue_capacity: 65_536,
            publish_queue_max_bytes: 64 << 20,
            publish_channel_share: 4,
            max_pipeline: 1024,
            probe_prefix: "socket.io".to_owned(),
            credentials: None,
            tls_root_cert: None,
        }
    }
}

impl RedisConfig {
    /// The TLS certificates to trust, when a private CA is configured.
    pub(crate) fn tls_certificates(&self) -> Option<redis::TlsCertificates> {
        self.tls_root_cert
            .clone()
            .map(|root_cert| redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(root_cert),
            })
    }

    /// The first and the largest delay between reconnect attempts.
    pub(crate) fn reconnect_bounds(&self) -> (Duration, Duration) {
        (self.reconnect_min_delay, self.reconnect_max_delay)
    }
}
