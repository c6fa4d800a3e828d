//! The gateway's own failures: what stops it from starting or serving (bind, configuration,
//! the users file, Redis at start) and what fails under a request it is answering (a Redis
//! command, the OS random generator). A client never sees one as such: at the edge an
//! [`Error`] becomes a [`Refusal`](crate::refusal::Refusal) (`unavailable` or `internal error`),
//! the details go to the logs.

use std::{io, time::Duration};

/// Everything that can go wrong inside the gateway (as opposed to a client's request being
/// refused, see `refusal.rs`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be resolved or bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address from `--listen`.
        addr: String,
        /// The underlying socket error.
        source: io::Error,
    },
    /// An entry of `--cors-origins` is not a valid origin header value.
    #[error("invalid CORS origin {0:?}")]
    CorsOrigin(String),
    /// A gateway's serving task panicked or was cancelled (`testing::TestGateway::stop`).
    #[error("gateway task: {0}")]
    ServerTask(#[from] tokio::task::JoinError),
    /// Something the gateway assembles itself is missing (a bug).
    #[error("internal: {0} is missing")]
    Missing(&'static str),
    /// The Redis adapter could not start or register a namespace.
    #[error("Redis adapter: {0}")]
    Adapter(#[from] redis_adapter::Error),
    /// The HTTP server stopped on an I/O error.
    #[error("HTTP server: {0}")]
    Serve(#[source] io::Error),
    /// The user directory could not be read, parsed or written, or holds an invalid entry.
    #[error("users file {path}: {reason}")]
    UsersFile {
        /// The file (or `<embedded demo directory>`).
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A secret or certificate file given by a flag could not be read, or is not usable.
    #[error("{flag} {path}: {reason}")]
    SecretFile {
        /// The flag that named the file.
        flag: &'static str,
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Clustered without `--users-file` and without `--demo-users`: nobody could log in but
    /// the demo users, whose passwords are published.
    #[error(
        "no user directory: pass --users-file FILE (create one with `gateway add-user`), or \
         --demo-users to load the demo directory with its published passwords (never in production)"
    )]
    NoUserDirectory,
    /// A new user (`gateway add-user`) or its password was refused.
    #[error("invalid user: {0}")]
    InvalidUser(String),
    /// A Redis command of the sessions, rate limits or settings failed.
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A Redis command of the sessions, rate limits or settings did not answer in time.
    #[error("Redis did not answer within {0:?}")]
    RedisTimeout(Duration),
    /// No Redis node could be reached at all.
    #[error("Redis unreachable: {0}")]
    NoRedis(&'static str),
    /// The operating system's random generator failed (no session token can be drawn).
    #[error("OS random generator: {0}")]
    Random(String),
    /// A job encodes to more than `jobs::MAX_JOB_BYTES`: refused, never enqueued.
    #[error("a job of {0} bytes is over the size limit")]
    JobTooLarge(usize),
    /// The job queue (or its scheduled set) holds its maximum: the job was not taken.
    #[error("job queue full: {0}")]
    QueueFull(&'static str),
    /// A worker or `gateway jobs` command could not run (no Redis URL, an unwritable
    /// directory, a listener that does not bind).
    #[error("{0}")]
    Jobs(String),
    /// A `gateway api-key` command could not run (no Redis URL, an invalid tenant, name or
    /// scope, an unknown key id).
    #[error("{0}")]
    ApiKey(String),
    /// A server-side bug (a value failed to serialize, a fresh token was taken).
    #[error("internal: {0}")]
    Internal(&'static str),
}

impl Error {
    /// Whether this is Redis failing (down, slow, unreachable): clients are told to retry.
    pub(crate) fn is_redis(&self) -> bool {
        matches!(
            self,
            Self::Redis(_) | Self::RedisTimeout(_) | Self::NoRedis(_)
        )
    }

    /// Whether Redis did not answer in time (this layer's deadline, or the connection's
    /// response timeout): what was sent may still have run.
    pub(crate) fn is_redis_timeout(&self) -> bool {
        match self {
            Self::RedisTimeout(_) => true,
            Self::Redis(err) => err.is_timeout(),
            _ => false,
        }
    }

    /// Whether Redis refused a write for lack of memory (`OOM`, over its `maxmemory` with
    /// nothing it may evict).
    pub(crate) fn is_redis_oom(&self) -> bool {
        matches!(self, Self::Redis(err) if err.code() == Some("OOM"))
    }
}
