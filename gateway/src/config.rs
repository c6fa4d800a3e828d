//! Command-line flags and environment variables: every tunable of the gateway, its env name and
//! its default. Nothing here touches the network; `bind` turns a [`Config`] into a server.

use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Default listen address: loopback only, so a bare `gateway` never exposes itself by accident.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";
/// Default Redis key and channel prefix, the one Node's adapter uses too.
pub const DEFAULT_KEY_PREFIX: &str = "socket.io";
/// Default largest HTTP long-polling body, in bytes (socketioxide's own default).
pub const DEFAULT_MAX_PAYLOAD: u64 = 100_000;
/// Default engine.io ping interval, in milliseconds (the Socket.IO default).
pub const DEFAULT_PING_INTERVAL_MS: u64 = 25_000;
/// Default engine.io ping timeout, in milliseconds (the Socket.IO default).
pub const DEFAULT_PING_TIMEOUT_MS: u64 = 20_000;
/// Default interval between two cluster heartbeats, in milliseconds.
pub const DEFAULT_HEARTBEAT_INTERVAL_MS: u64 = 5_000;
/// Default silence after which another instance is considered gone, in milliseconds.
pub const DEFAULT_HEARTBEAT_TIMEOUT_MS: u64 = 15_000;
/// Default deadline of a request to the other instances, in milliseconds.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 5_000;
/// Default deadline of a graceful shutdown, in milliseconds.
pub const DEFAULT_SHUTDOWN_TIMEOUT_MS: u64 = 10_000;

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

    /// Redis URL (redis://host:port/db). Without it the gateway runs standalone:
    /// rooms are not shared with other instances.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// Prefix of every Redis channel this cluster uses; instances only see peers with the same one.
    #[arg(long, env = "GATEWAY_KEY_PREFIX", default_value = DEFAULT_KEY_PREFIX)]
    pub key_prefix: String,

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

    /// Largest HTTP long-polling request body, in bytes.
    #[arg(long, env = "GATEWAY_MAX_PAYLOAD", default_value_t = DEFAULT_MAX_PAYLOAD)]
    pub max_payload: u64,

    /// Interval between two engine.io pings, in milliseconds.
    #[arg(long, env = "GATEWAY_PING_INTERVAL_MS", default_value_t = DEFAULT_PING_INTERVAL_MS)]
    pub ping_interval_ms: u64,

    /// How long a client has to answer a ping before it is dropped, in milliseconds.
    #[arg(long, env = "GATEWAY_PING_TIMEOUT_MS", default_value_t = DEFAULT_PING_TIMEOUT_MS)]
    pub ping_timeout_ms: u64,

    /// Interval between two heartbeats sent to the other instances, in milliseconds.
    #[arg(long, env = "GATEWAY_HEARTBEAT_INTERVAL_MS", default_value_t = DEFAULT_HEARTBEAT_INTERVAL_MS)]
    pub heartbeat_interval_ms: u64,

    /// Silence after which another instance is considered gone, in milliseconds.
    #[arg(long, env = "GATEWAY_HEARTBEAT_TIMEOUT_MS", default_value_t = DEFAULT_HEARTBEAT_TIMEOUT_MS)]
    pub heartbeat_timeout_ms: u64,

    /// Deadline of a request answered by the other instances, in milliseconds.
    #[arg(long, env = "GATEWAY_REQUEST_TIMEOUT_MS", default_value_t = DEFAULT_REQUEST_TIMEOUT_MS)]
    pub request_timeout_ms: u64,

    /// Deadline of a graceful shutdown, in milliseconds: past it the process exits anyway.
    #[arg(long, env = "GATEWAY_SHUTDOWN_TIMEOUT_MS", default_value_t = DEFAULT_SHUTDOWN_TIMEOUT_MS)]
    pub shutdown_timeout_ms: u64,

    /// Tokio worker threads. Default: one per CPU. One per instance is the cheapest per
    /// delivery when several instances share a machine.
    #[arg(long, env = "GATEWAY_WORKER_THREADS")]
    pub worker_threads: Option<usize>,
}

impl Default for Config {
    /// The defaults of every flag, without reading the environment (for embedding and tests).
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.to_owned(),
            redis_url: None,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            cors_origins: Vec::new(),
            log_format: LogFormat::default(),
            instance_id: None,
            max_payload: DEFAULT_MAX_PAYLOAD,
            ping_interval_ms: DEFAULT_PING_INTERVAL_MS,
            ping_timeout_ms: DEFAULT_PING_TIMEOUT_MS,
            heartbeat_interval_ms: DEFAULT_HEARTBEAT_INTERVAL_MS,
            heartbeat_timeout_ms: DEFAULT_HEARTBEAT_TIMEOUT_MS,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
            shutdown_timeout_ms: DEFAULT_SHUTDOWN_TIMEOUT_MS,
            worker_threads: None,
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

    /// The engine.io ping interval.
    pub fn ping_interval(&self) -> Duration {
        Duration::from_millis(self.ping_interval_ms)
    }

    /// The engine.io ping timeout.
    pub fn ping_timeout(&self) -> Duration {
        Duration::from_millis(self.ping_timeout_ms)
    }

    /// The interval between two cluster heartbeats.
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }

    /// The silence after which another instance is considered gone.
    pub fn heartbeat_timeout(&self) -> Duration {
        Duration::from_millis(self.heartbeat_timeout_ms)
    }

    /// The deadline of a request to the other instances.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The deadline of a graceful shutdown.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }
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
