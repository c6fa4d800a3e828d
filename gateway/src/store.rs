//! The one Redis command connection of sessions, rate limits and tenant settings: a
//! multiplexed connection that reconnects by itself, and a deadline on every command so that
//! a Redis outage costs a request at most that long.

use std::time::Duration;

use redis::{
    FromRedisValue, Pipeline,
    aio::{ConnectionManager, ConnectionManagerConfig},
};

use crate::{Error, keys::Keys};

/// Deadline of one command (or pipeline) on the request path.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);

/// A cheap-to-clone handle on the command connection, with the key names.
#[derive(Clone)]
pub(crate) struct Store {
    conn: ConnectionManager,
    keys: Keys,
}

impl Store {
    /// Connects to `url` (failing if Redis is unreachable now); later losses are repaired in
    /// the background, `reconnect` (first and longest delay) apart, while commands fail fast.
    pub(crate) async fn connect(
        url: &str,
        keys: Keys,
        reconnect: (Duration, Duration),
    ) -> Result<Self, Error> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_min_delay(reconnect.0)
            .set_max_delay(reconnect.1)
            .set_number_of_retries(1);
        let conn = tokio::time::timeout(
            COMMAND_TIMEOUT * 5,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| Error::RedisTimeout(COMMAND_TIMEOUT * 5))??;
        Ok(Self { conn, keys })
    }

    /// The key and channel names.
    pub(crate) fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A handle for commands this module does not wrap (scripts); bound it with [`deadline`].
    pub(crate) fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Runs `cmd` within [`COMMAND_TIMEOUT`].
    pub(crate) async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, Error> {
        let mut conn = self.conn.clone();
        deadline(COMMAND_TIMEOUT, cmd.query_async(&mut conn)).await
    }

    /// Runs `pipe` within [`COMMAND_TIMEOUT`].
    pub(crate) async fn pipeline<T: FromRedisValue>(&self, pipe: &Pipeline) -> Result<T, Error> {
        let mut conn = self.conn.clone();
        deadline(COMMAND_TIMEOUT, pipe.query_async(&mut conn)).await
    }
}

impl Store {
    /// Whether Redis answers `PING` within `limit`.
    pub(crate) async fn ping(&self, limit: Duration) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        deadline(limit, redis::cmd("PING").query_async::<String>(&mut conn))
            .await
            .map(drop)
    }

    /// `used_memory` from `INFO memory`, if Redis answers within `limit` with a value.
    pub(crate) async fn used_memory(&self, limit: Duration) -> Option<u64> {
        let mut conn = self.conn.clone();
        let mut command = redis::cmd("INFO");
        command.arg("memory");
        let info = deadline(limit, command.query_async::<String>(&mut conn))
            .await
            .ok()?;
        used_memory(&info)
    }
}

/// The `used_memory:<bytes>` line of an `INFO` answer.
fn used_memory(info: &str) -> Option<u64> {
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|value| value.trim().parse().ok())
}

/// `command`'s result, or [`Error::RedisTimeout`] once `limit` has passed.
pub(crate) async fn deadline<T>(
    limit: Duration,
    command: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, Error> {
    match tokio::time::timeout(limit, command).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(Error::RedisTimeout(limit)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_used_memory() {
        let info = "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\n";
        assert_eq!(super::used_memory(info), Some(1_048_576));
        assert_eq!(super::used_memory("# Memory\r\n"), None);
        assert_eq!(super::used_memory("used_memory:lots\r\n"), None);
    }
}
