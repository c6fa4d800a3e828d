//! Every tunable of the adapter, with its default and the reason for it.

use std::{fmt, sync::Arc, time::Duration};

use crate::cluster::{ClusterSecret, EmitterRequest};

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
    /// Whether, and how, this instance reads what the official Socket.IO Redis emitter
    /// publishes (`@socket.io/redis-emitter`). Default: not at all.
    pub emitter: Option<EmitterConfig>,
    /// How deliveries wait for a local socket whose buffer is full, and when such a socket
    /// counts as slow.
    pub local_backlog: LocalBacklog,
}

/// The backlogs of local sockets: where a delivery waits, in order, when a socket's buffer
/// (socketioxide's `max_buffer_size`) is full, and the limits past which a socket is slow.
///
/// A healthy socket that is behind for a moment (a burst from Redis outran its connection)
/// receives everything, in order. A socket is slow when its backlog outgrows `max_bytes`,
/// takes nothing for `max_stall`, or the namespace's backlogs together outgrow
/// `max_total_bytes`: its backlog is dropped, it is disconnected as soon as its buffer takes
/// the DISCONNECT, and what is addressed to it until then is dropped. Volatile emits never
/// wait. Every drop is counted in `redis_adapter_local_drops_total{reason}`; a slow socket is
/// logged once.
///
/// Memory: at most `max_total_bytes` per namespace, as counted (each waiting delivery counts
/// its payload plus 128 bytes, though the payload of a broadcast is shared by every backlog
/// holding it).
///
/// ```
/// use std::time::Duration;
/// use redis_adapter::{LocalBacklog, RedisAdapterConfig};
///
/// let backlog = LocalBacklog { max_bytes: 4 << 20, ..LocalBacklog::default() };
/// let config = RedisAdapterConfig::default().with_local_backlog(backlog);
/// assert_eq!(config.local_backlog.max_stall, Duration::from_secs(10));
/// ```
#[derive(Debug, Clone)]
pub struct LocalBacklog {
    /// Bytes one socket's backlog may hold. Default 32 MiB: a burst of 100,000 small
    /// messages to a socket that reads at a tenth of Redis's pace.
    pub max_bytes: usize,
    /// Bytes every backlog of one namespace may hold together; the socket whose delivery
    /// goes over it is slow. Default 512 MiB.
    pub max_total_bytes: usize,
    /// How long a backlog may go without its socket taking anything. Default 10 s.
    pub max_stall: Duration,
    /// How often backlogs are retried. Default 1 ms: a socket's buffer (128 packets by
    /// default) is refilled about as fast as its connection writes.
    pub retry_interval: Duration,
}

impl Default for LocalBacklog {
    fn default() -> Self {
        Self {
            max_bytes: 32 << 20,
            max_total_bytes: 512 << 20,
            max_stall: Duration::from_secs(10),
            retry_interval: Duration::from_millis(1),
        }
    }
}

/// Reading the Socket.IO Redis emitter: its key and what to accept of it.
///
/// The emitter's messages are not sealed, whatever [`RedisAdapterConfig::cluster_secret`]
/// says: whoever may publish on Redis may emit. `accept` is where an application applies
/// its own rules (which rooms exist, who may address them) before anything is carried out.
///
/// ```
/// use redis_adapter::{EmitterConfig, EmitterRequest, RedisAdapterConfig};
///
/// let emitter = EmitterConfig::new("socket.io").with_accept(|request: &EmitterRequest| {
///     let rooms = &request.selection().rooms;
///     match rooms.iter().all(|room| room.starts_with("public:")) {
///         true => Ok(()),
///         false => Err("only public rooms".to_owned()),
///     }
/// });
/// let config = RedisAdapterConfig::default().with_emitter(emitter);
/// assert_eq!(config.emitter.map(|emitter| emitter.key), Some("socket.io".to_owned()));
/// ```
#[derive(Clone)]
pub struct EmitterConfig {
    /// The emitter's `key` option (its channel prefix). Default `"socket.io"`, as in the
    /// emitter.
    pub key: String,
    /// Longest emitter message read; longer ones are dropped and counted. Default 1 MiB.
    pub max_message_bytes: usize,
    /// Decides, for each decoded emitter operation, whether it is carried out (`Ok`) or
    /// dropped and counted (`Err` with the reason, logged). Default: everything.
    pub accept: EmitterRule,
}

/// The rule of [`EmitterConfig::accept`]: `Ok` carries an emitter operation out, `Err` drops
/// it with the reason.
pub type EmitterRule = Arc<dyn Fn(&EmitterRequest) -> Result<(), String> + Send + Sync>;

impl EmitterConfig {
    /// The emitter of channel prefix `key`, accepting everything it sends.
    pub fn new(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            max_message_bytes: 1024 * 1024,
            accept: Arc::new(|_| Ok(())),
        }
    }

    /// Sets the rule deciding which emitter operations are carried out.
    pub fn with_accept(
        mut self,
        accept: impl Fn(&EmitterRequest) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.accept = Arc::new(accept);
        self
    }
}

impl fmt::Debug for EmitterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmitterConfig")
            .field("key", &self.key)
            .field("max_message_bytes", &self.max_message_bytes)
            .finish_non_exhaustive()
    }
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
            emitter: None,
            local_backlog: LocalBacklog::default(),
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

    /// Reads what the Socket.IO Redis emitter publishes, as `emitter` says.
    pub fn with_emitter(mut self, emitter: EmitterConfig) -> Self {
        self.emitter = Some(emitter);
        self
    }

    /// Sets the backlogs of local sockets and their limits.
    pub fn with_local_backlog(mut self, backlog: LocalBacklog) -> Self {
        self.local_backlog = backlog;
        self
    }

    /// Sets the timeout of requests to the other instances.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
}
