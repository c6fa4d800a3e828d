//! Command-line flags and environment variables: every tunable of the gateway, its env name and
//! its default. Nothing here touches the network; `bind` turns a [`Config`] into a server.
//! [`Cli`] adds the subcommands (`add-user`, `worker`, `jobs`, `api-key`) on top of the
//! server's flags.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};
use ipnet::IpNet;

use crate::ratelimit::Rate;

/// Default listen address: loopback only, so a bare `gateway` never exposes itself by accident.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";
/// Default `--admin-listen`: the operational routes (metrics, stats, cluster) on loopback only.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9090";
/// Default Redis key and channel prefix, the one Node's adapter uses too.
pub const DEFAULT_KEY_PREFIX: &str = "socket.io";
/// Default largest client message and HTTP long-polling body, in bytes (socket.io's
/// `maxHttpBufferSize` is 1 MB; chat lines are small).
pub const DEFAULT_MAX_PAYLOAD: u64 = 100_000;
/// Default `--max-buffered`: bytes that may wait for one client's connection (4 MiB, the
/// engine's default): a burst to a healthy client fits; a client that stays behind is closed.
pub const DEFAULT_MAX_BUFFERED: usize = 4 << 20;
/// Default `--spool-capacity`: messages kept through a Redis outage (a few MB at most).
pub const DEFAULT_SPOOL_CAPACITY: usize = 10_000;
/// Default engine.io ping interval (the Socket.IO default). Durations are written the way the
/// flags take them (humantime: `100ms`, `5s`, `2m`, `1day`).
pub const DEFAULT_PING_INTERVAL: &str = "25s";
/// Default engine.io ping timeout (the Socket.IO default).
pub const DEFAULT_PING_TIMEOUT: &str = "20s";
/// Default interval between two cluster heartbeats.
pub const DEFAULT_HEARTBEAT_INTERVAL: &str = "5s";
/// Default silence after which another instance is considered gone.
pub const DEFAULT_HEARTBEAT_TIMEOUT: &str = "15s";
/// Default deadline of a request to the other instances.
pub const DEFAULT_REQUEST_TIMEOUT: &str = "5s";
/// Default first delay before reconnecting to Redis.
pub const DEFAULT_REDIS_RECONNECT_MIN: &str = "100ms";
/// Default longest delay between Redis reconnect attempts.
pub const DEFAULT_REDIS_RECONNECT_MAX: &str = "500ms";
/// Default deadline of a graceful shutdown.
pub const DEFAULT_SHUTDOWN_TIMEOUT: &str = "10s";
/// Default session lifetime from login (one day).
pub const DEFAULT_SESSION_TTL: &str = "1day";
/// Default logins per client IP.
pub const DEFAULT_RATE_LOGIN: Rate = Rate::new(10, Duration::from_secs(60));
/// Default Socket.IO handshakes per client IP (reconnects after a deploy come in bursts).
pub const DEFAULT_RATE_HANDSHAKE: Rate = Rate::new(60, Duration::from_secs(60));
/// Default `message` events per user.
pub const DEFAULT_RATE_MESSAGE: Rate = Rate::new(30, Duration::from_secs(10));
/// Default `dm` events per user.
pub const DEFAULT_RATE_DM: Rate = Rate::new(20, Duration::from_secs(10));
/// Default `--api-publish-rate`: messages (and reads) of one API key of the publish API.
pub const DEFAULT_API_PUBLISH_RATE: Rate = Rate::new(1000, Duration::from_secs(1));
/// Default failed logins per (username, client address) before that address is throttled for
/// that user.
pub const DEFAULT_RATE_LOGIN_FAILURES: Rate = Rate::new(5, Duration::from_secs(15 * 60));
/// Default failed logins per username from anywhere before only known addresses are verified.
pub const DEFAULT_RATE_LOGIN_USER_FAILURES: Rate = Rate::new(50, Duration::from_secs(3600));
/// Default IPv6 prefix length of a rate-limit key (one subscriber's /64 is one client).
pub const DEFAULT_RATE_IPV6_PREFIX: u8 = 64;
/// Default `--socket-event-rate`: every event of one socket (a burst of 50, then 50 a second).
pub const DEFAULT_SOCKET_EVENT_RATE: Rate = Rate::new(50, Duration::from_secs(1));
/// Default `--socket-event-queue`: more than one full burst, so only a socket whose events
/// are stuck (slow Redis) reaches it.
pub const DEFAULT_SOCKET_EVENT_QUEUE: usize = 64;
/// Default `--max-rooms-per-socket`.
pub const DEFAULT_MAX_ROOMS_PER_SOCKET: usize = 100;
/// Default `--max-sockets-per-user` (tabs and devices of one user, on one instance).
pub const DEFAULT_MAX_SOCKETS_PER_USER: usize = 20;
/// Default `--max-sockets-per-session` (tabs of one browser, on one instance).
pub const DEFAULT_MAX_SOCKETS_PER_SESSION: usize = 10;
/// Default `--connect-timeout`: an engine.io session must join the namespace this soon.
pub const DEFAULT_CONNECT_TIMEOUT: &str = "5s";
/// Default `--max-opens-per-address`: new engine.io sessions per client address per connect
/// timeout (a burst like the handshake limit's).
pub const DEFAULT_MAX_OPENS_PER_ADDRESS: u32 = 50;
/// Default life of a cached tenant's settings.
pub const DEFAULT_SETTINGS_CACHE_TTL: &str = "2m";
/// Default interval between two checks of the local sockets' sessions.
pub const DEFAULT_SESSION_CHECK_INTERVAL: &str = "30s";
/// Default directory of the chat page's npm modules (`npm ci` in gateway/web), relative to the
/// working directory.
pub const DEFAULT_WEB_MODULES_DIR: &str = "gateway/web/node_modules";

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// Plain text for a terminal.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The gateway's configuration, from flags or environment variables (flags win).
#[derive(Debug, Clone, Parser)]
#[command(name = "gateway", version, about)]
pub struct Config {
    /// Address to listen on, HOST:PORT (port 0 picks a free one).
    #[arg(long, env = "GATEWAY_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: String,

    /// Address of the operational listener, HOST:PORT: `/metrics`, `/api/stats`,
    /// `/api/cluster` and `/api/cluster/sockets` are served here only, never on `--listen`.
    #[arg(long, env = "GATEWAY_ADMIN_LISTEN", default_value = DEFAULT_ADMIN_LISTEN)]
    pub admin_listen: String,

    /// Origins whose pages may use the session cookie (handshakes, logout, admin writes),
    /// comma separated, as http(s)://host[:port]. Empty: the gateway's own origin only (the
    /// request's Host, or X-Forwarded-Host from a trusted proxy).
    #[arg(long, env = "GATEWAY_ALLOWED_ORIGINS", value_delimiter = ',', value_parser = crate::origin::parse_origin)]
    pub allowed_origins: Vec<String>,

    /// Where Redis is and how to reach it (shared with `gateway worker` and `gateway jobs`).
    #[command(flatten)]
    pub redis: RedisArgs,

    /// Browser origins allowed to poll cross-origin, comma separated ("*" allows any).
    /// Empty: same-origin only.
    #[arg(long, env = "GATEWAY_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Log format.
    #[arg(long, env = "GATEWAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    /// This instance's id, shown to clients and in every log line. Default: a short random id.
    #[arg(long, env = "GATEWAY_INSTANCE_ID")]
    pub instance_id: Option<String>,

    /// Largest HTTP long-polling request body and largest websocket message and frame, in
    /// bytes; a larger websocket message closes that connection.
    #[arg(long, env = "GATEWAY_MAX_PAYLOAD", default_value_t = DEFAULT_MAX_PAYLOAD)]
    pub max_payload: u64,

    /// Every event of one socket, as N/duration (a burst of N, then N per duration), checked
    /// in process before any Redis work; beyond it events are acked `rate_limited`.
    #[arg(long, env = "GATEWAY_SOCKET_EVENT_RATE", default_value_t = DEFAULT_SOCKET_EVENT_RATE)]
    pub socket_event_rate: Rate,

    /// Events of one socket waiting for their turn (the running one included); beyond it
    /// events are acked `queue_full` (the socket stays connected).
    #[arg(long, env = "GATEWAY_SOCKET_EVENT_QUEUE", default_value_t = DEFAULT_SOCKET_EVENT_QUEUE, value_parser = at_least_one)]
    pub socket_event_queue: usize,

    /// Chat rooms one socket may be in; a `join` beyond it is acked `too_many_rooms`.
    #[arg(long, env = "GATEWAY_MAX_ROOMS_PER_SOCKET", default_value_t = DEFAULT_MAX_ROOMS_PER_SOCKET, value_parser = at_least_one)]
    pub max_rooms_per_socket: usize,

    /// Sockets of one user on this instance (not cluster-wide); beyond it a handshake gets
    /// `connect_error "too_many_sockets: per user"`.
    #[arg(long, env = "GATEWAY_MAX_SOCKETS_PER_USER", default_value_t = DEFAULT_MAX_SOCKETS_PER_USER, value_parser = at_least_one)]
    pub max_sockets_per_user: usize,

    /// Sockets of one session on this instance (not cluster-wide); beyond it a handshake gets
    /// `connect_error "too_many_sockets: per session"`.
    #[arg(long, env = "GATEWAY_MAX_SOCKETS_PER_SESSION", default_value_t = DEFAULT_MAX_SOCKETS_PER_SESSION, value_parser = at_least_one)]
    pub max_sockets_per_session: usize,

    /// How long an engine.io session may stay without joining the chat namespace (sending an
    /// accepted Socket.IO CONNECT) before it is closed.
    #[arg(long, env = "GATEWAY_CONNECT_TIMEOUT", default_value = DEFAULT_CONNECT_TIMEOUT, value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,

    /// New engine.io sessions one client address may open per connect timeout, on this
    /// instance (at least 1); beyond it the open gets 429. An unauthenticated session lives at
    /// most one connect timeout, so this also bounds those an address holds at once.
    #[arg(long, env = "GATEWAY_MAX_OPENS_PER_ADDRESS", default_value_t = DEFAULT_MAX_OPENS_PER_ADDRESS, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_opens_per_address: u32,

    /// Bytes that may wait for one client's connection (its socket's send buffer full, or a
    /// polling client not polling); a client over it is closed as too slow, and so is one
    /// that takes no byte for 10 s (the server never grows without bound). Volatile packets
    /// (typing notices) are never queued. Nothing is allocated until bytes wait.
    #[arg(long, env = "GATEWAY_MAX_BUFFERED", default_value_t = DEFAULT_MAX_BUFFERED)]
    pub max_buffered: usize,

    /// Interval between two engine.io pings (`25s`, `500ms`).
    #[arg(long, env = "GATEWAY_PING_INTERVAL", default_value = DEFAULT_PING_INTERVAL, value_parser = humantime::parse_duration)]
    pub ping_interval: Duration,

    /// How long a client has to answer a ping before it is dropped.
    #[arg(long, env = "GATEWAY_PING_TIMEOUT", default_value = DEFAULT_PING_TIMEOUT, value_parser = humantime::parse_duration)]
    pub ping_timeout: Duration,

    /// Interval between two heartbeats sent to the other instances.
    #[arg(long, env = "GATEWAY_HEARTBEAT_INTERVAL", default_value = DEFAULT_HEARTBEAT_INTERVAL, value_parser = humantime::parse_duration)]
    pub heartbeat_interval: Duration,

    /// Silence after which another instance is considered gone.
    #[arg(long, env = "GATEWAY_HEARTBEAT_TIMEOUT", default_value = DEFAULT_HEARTBEAT_TIMEOUT, value_parser = humantime::parse_duration)]
    pub heartbeat_timeout: Duration,

    /// Deadline of a request answered by the other instances.
    #[arg(long, env = "GATEWAY_REQUEST_TIMEOUT", default_value = DEFAULT_REQUEST_TIMEOUT, value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// Deadline of a graceful shutdown: past it the process exits anyway.
    #[arg(long, env = "GATEWAY_SHUTDOWN_TIMEOUT", default_value = DEFAULT_SHUTDOWN_TIMEOUT, value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,

    /// Tokio worker threads. Default: one per CPU. One per instance is the cheapest per
    /// delivery when several instances share a machine.
    #[arg(long, env = "GATEWAY_WORKER_THREADS")]
    pub worker_threads: Option<usize>,

    /// A file whose first line is the cluster secret (at least 16 bytes, the same on every
    /// instance): every message between instances then carries a MAC, and messages without
    /// a valid one (anyone else with Redis access) are dropped and counted.
    #[arg(long, env = "GATEWAY_CLUSTER_SECRET_FILE")]
    pub cluster_secret_file: Option<PathBuf>,

    /// Read what the official Socket.IO Redis emitter (`@socket.io/redis-emitter`) publishes
    /// under this key (its `key` option, `socket.io` by default), with the tenant rules of
    /// the README's "Redis emitter" section. Its messages carry no MAC even with
    /// `--cluster-secret-file`: whoever may publish on Redis may emit. Default: not read.
    #[arg(long, env = "GATEWAY_EMITTER_KEY", value_parser = emitter_key)]
    pub emitter_key: Option<String>,

    /// The user directory (JSON; see `gateway add-user`). Only used with Redis, where it (or
    /// `--demo-users`) is required.
    #[arg(long, env = "GATEWAY_USERS_FILE")]
    pub users_file: Option<PathBuf>,

    /// Load the demo directory (gateway/users.demo.json, embedded, with its published
    /// passwords and two admins) instead of a users file. Never in production.
    #[arg(long, env = "GATEWAY_DEMO_USERS", conflicts_with = "users_file")]
    pub demo_users: bool,

    /// Lifetime of a session from login (at least 1s).
    #[arg(long, env = "GATEWAY_SESSION_TTL", default_value = DEFAULT_SESSION_TTL, value_parser = humantime::parse_duration)]
    pub session_ttl: Duration,

    /// Mark the session cookie `Secure` (set it when clients reach the gateway over HTTPS).
    #[arg(long, env = "GATEWAY_SECURE_COOKIES")]
    pub secure_cookies: bool,

    /// Proxies whose X-Forwarded-For is believed: IP addresses or CIDR networks, comma
    /// separated. Empty: the header is ignored.
    #[arg(long, env = "GATEWAY_TRUSTED_PROXIES", value_delimiter = ',', value_parser = crate::request::parse_proxy)]
    pub trusted_proxies: Vec<IpNet>,

    /// Logins per client IP, as N/duration (10/60s; units ms, s, m, h).
    #[arg(long, env = "GATEWAY_RATE_LOGIN", default_value_t = DEFAULT_RATE_LOGIN)]
    pub rate_login: Rate,

    /// Socket.IO handshakes per client IP, as N/duration.
    #[arg(long, env = "GATEWAY_RATE_HANDSHAKE", default_value_t = DEFAULT_RATE_HANDSHAKE)]
    pub rate_handshake: Rate,

    /// `message` events per user (all their sockets, every instance), as N/duration.
    #[arg(long, env = "GATEWAY_RATE_MESSAGE", default_value_t = DEFAULT_RATE_MESSAGE)]
    pub rate_message: Rate,

    /// `dm` events per user (all their sockets, every instance), as N/duration.
    #[arg(long, env = "GATEWAY_RATE_DM", default_value_t = DEFAULT_RATE_DM)]
    pub rate_dm: Rate,

    /// Messages one API key may publish through `POST /api/v1/publish[/batch]` (each message
    /// of a batch counts; each presence or history read counts one), every instance, as
    /// N/duration; beyond it the request gets 429.
    #[arg(long, env = "GATEWAY_API_PUBLISH_RATE", default_value_t = DEFAULT_API_PUBLISH_RATE)]
    pub api_publish_rate: Rate,

    /// Failed logins per (username, client address), as N/duration; beyond it that address is
    /// refused (429) for that user without its password being verified.
    #[arg(long, env = "GATEWAY_RATE_LOGIN_FAILURES", default_value_t = DEFAULT_RATE_LOGIN_FAILURES)]
    pub rate_login_failures: Rate,

    /// Failed logins per username from any address, as N/duration; beyond it only addresses
    /// that logged in as that user recently are verified.
    #[arg(long, env = "GATEWAY_RATE_LOGIN_USER_FAILURES", default_value_t = DEFAULT_RATE_LOGIN_USER_FAILURES)]
    pub rate_login_user_failures: Rate,

    /// IPv6 clients are keyed by their network of this many bits in every per-address limit.
    #[arg(long, env = "GATEWAY_RATE_IPV6_PREFIX", default_value_t = DEFAULT_RATE_IPV6_PREFIX, value_parser = crate::ratelimit::parse_ipv6_prefix)]
    pub rate_ipv6_prefix: u8,

    /// Password verifications at once (argon2 is CPU- and memory-hungry). Default: one per CPU.
    #[arg(long, env = "GATEWAY_LOGIN_VERIFICATIONS")]
    pub login_verifications: Option<usize>,

    /// Logins that may wait for a verification; beyond them a login is refused at once (503).
    #[arg(long, env = "GATEWAY_LOGIN_QUEUE", default_value_t = crate::users::DEFAULT_LOGIN_QUEUE)]
    pub login_queue: usize,

    /// How long an instance keeps a tenant's settings without asking Redis
    /// (changes reach every instance at once anyway, through Pub/Sub).
    #[arg(long, env = "GATEWAY_SETTINGS_CACHE_TTL", default_value = DEFAULT_SETTINGS_CACHE_TTL, value_parser = humantime::parse_duration)]
    pub settings_cache_ttl: Duration,

    /// How often an instance checks that the sessions of its sockets still exist (at least 1s):
    /// a socket whose session expired or was deleted is disconnected within this interval.
    #[arg(long, env = "GATEWAY_SESSION_CHECK_INTERVAL", default_value = DEFAULT_SESSION_CHECK_INTERVAL, value_parser = humantime::parse_duration)]
    pub session_check_interval: Duration,

    /// Keep no message history: `message` and `dm` are live only, as before durable rooms
    /// (no `history`, no `join` with `since`, no spool through Redis outages). For
    /// measuring what the store costs; not meant for production.
    #[arg(long, env = "GATEWAY_NO_HISTORY")]
    pub no_history: bool,

    /// Messages this instance keeps while Redis is unreachable, written to their histories
    /// and published once it is back; beyond it, `message` and `dm` are refused `spool_full`.
    #[arg(long, env = "GATEWAY_SPOOL_CAPACITY", default_value_t = DEFAULT_SPOOL_CAPACITY)]
    pub spool_capacity: usize,

    /// The chat page's npm modules (`npm ci` in gateway/web): the official socket.io-client
    /// browser build is read from here at run time and served at /assets/socket.io.min.js.
    #[arg(long, env = "GATEWAY_WEB_MODULES_DIR", default_value = DEFAULT_WEB_MODULES_DIR)]
    pub web_modules_dir: PathBuf,

    /// For benchmarks only, never in production: serve `POST /bench/burst`, which lets anyone
    /// who can reach the port make this instance emit up to a million room broadcasts.
    #[arg(long, env = "GATEWAY_BENCH_ENDPOINTS")]
    pub bench_endpoints: bool,
}

/// The Redis flags: the server, `gateway worker` and `gateway jobs` take the same ones.
#[derive(Debug, Clone, Args)]
pub struct RedisArgs {
    /// Redis URL: redis://host:port/db for one Redis, or
    /// redis+cluster://host:port,host:port,... (seed nodes) for a Redis Cluster, where rooms
    /// use sharded Pub/Sub. Without it the gateway runs standalone: rooms are not shared
    /// with other instances.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// Prefix of every Redis channel this cluster uses; instances only see peers with the same one.
    #[arg(long, env = "GATEWAY_KEY_PREFIX", default_value = DEFAULT_KEY_PREFIX)]
    pub key_prefix: String,

    /// First delay before reconnecting a lost Redis connection (at least 1ms); it doubles
    /// (with jitter) on each failed attempt.
    #[arg(long, env = "GATEWAY_REDIS_RECONNECT_MIN", default_value = DEFAULT_REDIS_RECONNECT_MIN, value_parser = humantime::parse_duration)]
    pub redis_reconnect_min: Duration,

    /// Longest delay between two Redis reconnect attempts: once Redis is back,
    /// every connection is restored within about this long.
    #[arg(long, env = "GATEWAY_REDIS_RECONNECT_MAX", default_value = DEFAULT_REDIS_RECONNECT_MAX, value_parser = humantime::parse_duration)]
    pub redis_reconnect_max: Duration,

    /// The Redis ACL user to authenticate as (with `--redis-password-file`). Default: the
    /// URL's user, or Redis's `default` user.
    #[arg(long, env = "GATEWAY_REDIS_USER")]
    pub redis_user: Option<String>,

    /// A file whose first line is the Redis password, so that it is neither on the command
    /// line nor in the URL. Default: the URL's password, if any.
    #[arg(long, env = "GATEWAY_REDIS_PASSWORD_FILE")]
    pub redis_password_file: Option<PathBuf>,

    /// The PEM certificate of the authority that signed Redis's TLS certificate, for
    /// `rediss://` (or `rediss+cluster://`) with a private CA. Default: the system's roots.
    #[arg(long, env = "GATEWAY_REDIS_CA_FILE")]
    pub redis_ca_file: Option<PathBuf>,
}

impl Default for RedisArgs {
    /// No Redis URL, the default prefix and reconnect delays, no credentials.
    fn default() -> Self {
        Self {
            redis_url: None,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            redis_reconnect_min: duration(DEFAULT_REDIS_RECONNECT_MIN),
            redis_reconnect_max: duration(DEFAULT_REDIS_RECONNECT_MAX),
            redis_user: None,
            redis_password_file: None,
            redis_ca_file: None,
        }
    }
}

impl RedisArgs {
    /// The first and the longest delay between Redis reconnect attempts: at least 1ms, and
    /// the longest never shorter than the first.
    pub fn redis_reconnect(&self) -> (Duration, Duration) {
        let min = self.redis_reconnect_min.max(Duration::from_millis(1));
        (min, self.redis_reconnect_max.max(min))
    }
}

/// The `gateway` command line: the server's flags, or a subcommand.
#[derive(Debug, Parser)]
#[command(
    name = "gateway",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// A subcommand; without one the gateway serves.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The server's flags.
    #[command(flatten)]
    pub serve: Config,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Add a user to a users file (created if missing), reading the password from stdin.
    AddUser(AddUser),
    /// Run background jobs (audit log, DM notifications) from the Redis job queue until
    /// SIGTERM, which lets the running jobs finish.
    Worker(WorkerArgs),
    /// Inspect and repair the job queue.
    Jobs {
        /// What to do.
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Create, list and revoke the API keys of the HTTP publish API.
    ApiKey {
        /// What to do.
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
}

/// `gateway api-key ...`.
#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key; it is printed once, alone on the first line of stdout (details on
    /// stderr), and Redis keeps only its hash.
    Create {
        /// Where Redis is.
        #[command(flatten)]
        redis: RedisArgs,
        /// The tenant the key publishes to (and only to).
        #[arg(long)]
        tenant: String,
        /// The key's name: the `from` of the chat messages it sends (1 to 32 characters).
        #[arg(long)]
        name: String,
        /// Event names the key may publish, comma separated, or `*` for any. Default: none.
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        /// The key may address users (`"user"`).
        #[arg(long)]
        users: bool,
        /// The key may address every socket of the tenant (`"tenant": true`).
        #[arg(long)]
        tenant_wide: bool,
        /// The key may read who is in a room (`GET /api/v1/rooms/{room}/presence`).
        #[arg(long)]
        presence: bool,
        /// The key may read rooms' histories (`GET /api/v1/rooms/{room}/history`).
        #[arg(long)]
        history: bool,
    },
    /// Print the tenant's keys, one JSON line each (never a key or its hash).
    List {
        /// Where Redis is.
        #[command(flatten)]
        redis: RedisArgs,
        /// The tenant.
        #[arg(long)]
        tenant: String,
    },
    /// Revoke a key at once, on every instance.
    Revoke {
        /// Where Redis is.
        #[command(flatten)]
        redis: RedisArgs,
        /// The tenant the key belongs to.
        #[arg(long)]
        tenant: String,
        /// The key's id (as `create` and `list` print it).
        id: String,
    },
}

/// Default `--job-attempts`.
pub const DEFAULT_JOB_ATTEMPTS: u32 = 5;
/// Default `--job-visibility-timeout`.
pub const DEFAULT_JOB_VISIBILITY_TIMEOUT: &str = "30s";
/// Default `--job-backoff`.
pub const DEFAULT_JOB_BACKOFF: &str = "1s";
/// Default `--concurrency`.
pub const DEFAULT_JOB_CONCURRENCY: usize = 4;

/// `gateway worker`.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Where Redis is (`--redis-url` is required).
    #[command(flatten)]
    pub redis: RedisArgs,

    /// The audit log: one JSON line per event appended to this file (created if missing).
    /// Without it audit jobs fail and end in the dead letters.
    #[arg(long, env = "GATEWAY_AUDIT_LOG")]
    pub audit_log: Option<PathBuf>,

    /// The outbox directory of DM notifications, one `<message id>.eml` file per message
    /// (created if missing). Without it DM notifications fail and end in the dead letters.
    #[arg(long, env = "GATEWAY_OUTBOX")]
    pub outbox: Option<PathBuf>,

    /// Attempts per job (at least 1); a job that failed this many times is a dead letter.
    #[arg(long, env = "GATEWAY_JOB_ATTEMPTS", default_value_t = DEFAULT_JOB_ATTEMPTS, value_parser = clap::value_parser!(u32).range(1..))]
    pub job_attempts: u32,

    /// Wait before the first retry of a failed job; it doubles with each failure (at most 10m).
    #[arg(long, env = "GATEWAY_JOB_BACKOFF", default_value = DEFAULT_JOB_BACKOFF, value_parser = humantime::parse_duration)]
    pub job_backoff: Duration,

    /// How long a job may go without news from its worker before another worker takes it
    /// over (a running job is kept alive by its worker; a dead worker's jobs wait this long).
    #[arg(long, env = "GATEWAY_JOB_VISIBILITY_TIMEOUT", default_value = DEFAULT_JOB_VISIBILITY_TIMEOUT, value_parser = humantime::parse_duration)]
    pub job_visibility_timeout: Duration,

    /// Jobs run at once by this worker.
    #[arg(long, env = "GATEWAY_JOB_CONCURRENCY", default_value_t = DEFAULT_JOB_CONCURRENCY, value_parser = at_least_one)]
    pub concurrency: usize,

    /// Serve `GET /metrics` and `GET /healthz` on this address, HOST:PORT. Default: none.
    #[arg(long, env = "GATEWAY_WORKER_ADMIN_LISTEN")]
    pub admin_listen: Option<String>,

    /// Log format.
    #[arg(long, env = "GATEWAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    /// Tests only: run the failure-injection jobs that `gateway::testing` enqueues (without
    /// it they are dead letters at once). Never in production.
    #[arg(long, hide = true)]
    pub test_faults: bool,
}

/// `gateway jobs ...`.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// The dead letters: jobs that failed every attempt.
    Dead {
        /// What to do with them.
        #[command(subcommand)]
        command: DeadCommand,
    },
}

/// `gateway jobs dead ...`.
#[derive(Debug, Subcommand)]
pub enum DeadCommand {
    /// Print the dead letters, oldest first, one JSON object a line.
    List {
        /// Where Redis is.
        #[command(flatten)]
        redis: RedisArgs,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Put dead letters back in the queue, their attempts counted from zero again.
    Requeue {
        /// Where Redis is.
        #[command(flatten)]
        redis: RedisArgs,
        /// The dead letter: its job id or its dead-letter id (as `list` prints them).
        #[arg(required_unless_present = "all")]
        id: Option<String>,
        /// Every dead letter.
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
}

/// `gateway add-user`.
#[derive(Debug, Args)]
pub struct AddUser {
    /// The users file to add to.
    #[arg(long, env = "GATEWAY_USERS_FILE")]
    pub users_file: PathBuf,
    /// Login name and user id (A-Z a-z 0-9 _ . -, up to 64).
    #[arg(long)]
    pub username: String,
    /// Tenant id (A-Z a-z 0-9 _ . -, up to 64).
    #[arg(long)]
    pub tenant: String,
    /// Display name (up to 32 characters).
    #[arg(long)]
    pub name: String,
    /// Give the user the admin role of its tenant.
    #[arg(long)]
    pub admin: bool,
}

impl Default for Config {
    /// The defaults of every flag, without reading the environment (for embedding and tests).
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.to_owned(),
            admin_listen: DEFAULT_ADMIN_LISTEN.to_owned(),
            allowed_origins: Vec::new(),
            redis: RedisArgs::default(),
            cors_origins: Vec::new(),
            log_format: LogFormat::default(),
            instance_id: None,
            max_payload: DEFAULT_MAX_PAYLOAD,
            socket_event_rate: DEFAULT_SOCKET_EVENT_RATE,
            socket_event_queue: DEFAULT_SOCKET_EVENT_QUEUE,
            max_rooms_per_socket: DEFAULT_MAX_ROOMS_PER_SOCKET,
            max_sockets_per_user: DEFAULT_MAX_SOCKETS_PER_USER,
            max_sockets_per_session: DEFAULT_MAX_SOCKETS_PER_SESSION,
            connect_timeout: duration(DEFAULT_CONNECT_TIMEOUT),
            max_opens_per_address: DEFAULT_MAX_OPENS_PER_ADDRESS,
            max_buffered: DEFAULT_MAX_BUFFERED,
            ping_interval: duration(DEFAULT_PING_INTERVAL),
            ping_timeout: duration(DEFAULT_PING_TIMEOUT),
            heartbeat_interval: duration(DEFAULT_HEARTBEAT_INTERVAL),
            heartbeat_timeout: duration(DEFAULT_HEARTBEAT_TIMEOUT),
            request_timeout: duration(DEFAULT_REQUEST_TIMEOUT),
            shutdown_timeout: duration(DEFAULT_SHUTDOWN_TIMEOUT),
            worker_threads: None,
            cluster_secret_file: None,
            emitter_key: None,
            users_file: None,
            demo_users: false,
            session_ttl: duration(DEFAULT_SESSION_TTL),
            secure_cookies: false,
            trusted_proxies: Vec::new(),
            rate_login: DEFAULT_RATE_LOGIN,
            rate_handshake: DEFAULT_RATE_HANDSHAKE,
            rate_message: DEFAULT_RATE_MESSAGE,
            rate_dm: DEFAULT_RATE_DM,
            api_publish_rate: DEFAULT_API_PUBLISH_RATE,
            rate_login_failures: DEFAULT_RATE_LOGIN_FAILURES,
            rate_login_user_failures: DEFAULT_RATE_LOGIN_USER_FAILURES,
            rate_ipv6_prefix: DEFAULT_RATE_IPV6_PREFIX,
            login_verifications: None,
            login_queue: crate::users::DEFAULT_LOGIN_QUEUE,
            settings_cache_ttl: duration(DEFAULT_SETTINGS_CACHE_TTL),
            session_check_interval: duration(DEFAULT_SESSION_CHECK_INTERVAL),
            web_modules_dir: PathBuf::from(DEFAULT_WEB_MODULES_DIR),
            bench_endpoints: false,
            no_history: false,
            spool_capacity: DEFAULT_SPOOL_CAPACITY,
        }
    }
}

impl Config {
    /// This instance's id: the configured one, else a random one drawn now and kept, so the logs
    /// and the clients see the same id.
    pub fn instance_id(&mut self) -> String {
        self.instance_id
            .get_or_insert_with(crate::ids::instance_id)
            .clone()
    }
}

/// A count flag that must be at least 1.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{text:?} is not a whole number of at least 1")),
    }
}

/// An emitter key: 1 to 64 printable ASCII characters without `#`, which separates the parts
/// of its channel names.
fn emitter_key(text: &str) -> Result<String, String> {
    let printable = text.bytes().all(|b| b.is_ascii_graphic() && b != b'#');
    match !text.is_empty() && text.len() <= 64 && printable {
        true => Ok(text.to_owned()),
        false => Err(format!(
            "{text:?} is not 1 to 64 printable ASCII characters without '#'"
        )),
    }
}

/// A default written as a flag value (the `DEFAULT_*` durations above; the tests check that
/// each parses).
fn duration(text: &str) -> Duration {
    humantime::parse_duration(text).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_defaults() {
        let config = Config::parse_from([
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--cors-origins",
            "http://a.test,http://b.test",
            "--log-format",
            "json",
            "--max-payload",
            "42",
        ]);
        assert_eq!(config.listen, "127.0.0.1:0");
        assert_eq!(config.cors_origins, ["http://a.test", "http://b.test"]);
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.max_payload, 42);
    }

    #[test]
    fn account_flags() {
        let config = Config::parse_from([
            "gateway",
            "--trusted-proxies",
            "127.0.0.1, 10.0.0.0/8",
            "--rate-login",
            "3/1s",
            "--secure-cookies",
        ]);
        assert_eq!(config.trusted_proxies.len(), 2);
        assert_eq!(config.rate_login, Rate::new(3, Duration::from_secs(1)));
        assert_eq!(config.rate_dm, DEFAULT_RATE_DM);
        assert!(config.secure_cookies);
        let config = Config::parse_from([
            "gateway",
            "--allowed-origins",
            "https://chat.test, http://127.0.0.1:8080",
            "--demo-users",
        ]);
        assert_eq!(
            config.allowed_origins,
            ["https://chat.test:443", "http://127.0.0.1:8080"]
        );
        assert!(config.demo_users);
        assert!(Config::try_parse_from(["gateway", "--allowed-origins", "chat.test"]).is_err());
        assert!(
            Config::try_parse_from(["gateway", "--demo-users", "--users-file", "u.json"]).is_err()
        );
        assert!(Config::try_parse_from(["gateway", "--trusted-proxies", "nginx"]).is_err());
        assert!(Config::try_parse_from(["gateway", "--rate-dm", "10"]).is_err());
        let config = Config::parse_from(["gateway", "--socket-event-rate", "5/1s"]);
        assert_eq!(
            config.socket_event_rate,
            Rate::new(5, Duration::from_secs(1))
        );
        assert_eq!(config.max_rooms_per_socket, DEFAULT_MAX_ROOMS_PER_SOCKET);
        assert!(Config::try_parse_from(["gateway", "--max-rooms-per-socket", "0"]).is_err());
    }

    #[test]
    fn the_server_flags_stay_top_level_next_to_add_user() {
        let cli = Cli::parse_from(["gateway", "--listen", "127.0.0.1:0"]);
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.listen, "127.0.0.1:0");
        let cli = Cli::parse_from([
            "gateway",
            "add-user",
            "--users-file",
            "u.json",
            "--username",
            "zoe",
            "--tenant",
            "acme",
            "--name",
            "Zoë",
            "--admin",
        ]);
        match cli.command {
            Some(Command::AddUser(add)) => {
                assert_eq!(add.username, "zoe");
                assert!(add.admin);
            }
            other => panic!("add-user not parsed: {other:?}"),
        }
    }

    #[test]
    fn worker_and_jobs_take_the_redis_flags() {
        let cli = Cli::parse_from([
            "gateway",
            "worker",
            "--redis-url",
            "redis://127.0.0.1:1",
            "--redis-user",
            "gw",
            "--audit-log",
            "audit.jsonl",
            "--job-visibility-timeout",
            "1s",
        ]);
        match cli.command {
            Some(Command::Worker(worker)) => {
                assert_eq!(
                    worker.redis.redis_url.as_deref(),
                    Some("redis://127.0.0.1:1")
                );
                assert_eq!(worker.redis.redis_user.as_deref(), Some("gw"));
                assert_eq!(worker.job_visibility_timeout, Duration::from_secs(1));
                assert_eq!(worker.job_attempts, DEFAULT_JOB_ATTEMPTS);
                assert!(!worker.test_faults);
            }
            other => panic!("worker not parsed: {other:?}"),
        }
        assert!(Cli::try_parse_from(["gateway", "worker", "--job-attempts", "0"]).is_err());
        let cli = Cli::parse_from(["gateway", "jobs", "dead", "requeue", "--all"]);
        match cli.command {
            Some(Command::Jobs {
                command:
                    JobsCommand::Dead {
                        command: DeadCommand::Requeue { id, all, .. },
                    },
            }) => assert!(all && id.is_none()),
            other => panic!("requeue not parsed: {other:?}"),
        }
        assert!(Cli::try_parse_from(["gateway", "jobs", "dead", "requeue"]).is_err());
        assert!(Cli::try_parse_from(["gateway", "jobs", "dead", "requeue", "x", "--all"]).is_err());
    }

    #[test]
    fn api_key_commands_take_scopes_and_the_redis_flags() {
        let cli = Cli::parse_from([
            "gateway",
            "api-key",
            "create",
            "--redis-url",
            "redis://127.0.0.1:1",
            "--tenant",
            "acme",
            "--name",
            "orders",
            "--events",
            "order.created,order.paid",
            "--users",
            "--history",
        ]);
        match cli.command {
            Some(Command::ApiKey {
                command:
                    ApiKeyCommand::Create {
                        redis,
                        tenant,
                        events,
                        users,
                        tenant_wide,
                        presence,
                        history,
                        ..
                    },
            }) => {
                assert_eq!(redis.redis_url.as_deref(), Some("redis://127.0.0.1:1"));
                assert_eq!(tenant, "acme");
                assert_eq!(events, ["order.created", "order.paid"]);
                assert!(users && history && !tenant_wide && !presence);
            }
            other => panic!("api-key create not parsed: {other:?}"),
        }
        let cli = Cli::parse_from(["gateway", "api-key", "revoke", "--tenant", "acme", "k1"]);
        assert!(matches!(
            cli.command,
            Some(Command::ApiKey {
                command: ApiKeyCommand::Revoke { id, .. }
            }) if id == "k1"
        ));
        assert!(Cli::try_parse_from(["gateway", "api-key", "revoke", "--tenant", "acme"]).is_err());
        assert!(Cli::try_parse_from(["gateway", "api-key", "list"]).is_err());
        assert_eq!(Config::default().api_publish_rate, DEFAULT_API_PUBLISH_RATE);
    }

    #[test]
    fn durations_take_units() {
        let config = Config::parse_from([
            "gateway",
            "--heartbeat-interval",
            "100ms",
            "--session-ttl",
            "2h",
        ]);
        assert_eq!(config.heartbeat_interval, Duration::from_millis(100));
        assert_eq!(config.session_ttl, Duration::from_secs(7200));
        assert!(Config::try_parse_from(["gateway", "--request-timeout", "5"]).is_err());
        let defaults = Config::default();
        assert_eq!(defaults.session_ttl, Duration::from_secs(86_400));
        assert_eq!(defaults.ping_interval, Duration::from_secs(25));
        for text in [
            DEFAULT_PING_INTERVAL,
            DEFAULT_PING_TIMEOUT,
            DEFAULT_HEARTBEAT_INTERVAL,
            DEFAULT_HEARTBEAT_TIMEOUT,
            DEFAULT_REQUEST_TIMEOUT,
            DEFAULT_REDIS_RECONNECT_MIN,
            DEFAULT_REDIS_RECONNECT_MAX,
            DEFAULT_SHUTDOWN_TIMEOUT,
            DEFAULT_SESSION_TTL,
            DEFAULT_SETTINGS_CACHE_TTL,
            DEFAULT_SESSION_CHECK_INTERVAL,
            DEFAULT_CONNECT_TIMEOUT,
        ] {
            assert!(humantime::parse_duration(text).is_ok(), "{text}");
        }
    }

    #[test]
    fn instance_id_is_drawn_once() {
        let mut config = Config::default();
        let first = config.instance_id();
        assert!(!first.is_empty());
        assert_eq!(config.instance_id(), first);
    }

    #[test]
    fn help_documents_every_flag_with_its_env_name() {
        use clap::CommandFactory;
        let command = Config::command();
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            assert!(arg.get_help().is_some(), "--{id} has no doc comment");
            assert!(arg.get_env().is_some(), "--{id} has no env name");
        }
    }
}
