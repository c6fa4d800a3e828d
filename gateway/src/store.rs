//! Sessions, rate limits and tenant settings on the process's one Redis layer
//! ([`redis_adapter::Redis`], shared with the adapter): its command connection with a
//! deadline on every command, so that a Redis outage costs a request at most that long, and
//! the key names.

use std::time::Duration;

use redis::{FromRedisValue, Pipeline, Value};
use redis_adapter::{Commands, Redis};

use crate::{Error, keys::Keys};

/// Deadline of one command (or pipeline) on the request path.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);

/// A cheap-to-clone handle on the command connection, with the key names.
#[derive(Clone)]
pub(crate) struct Store {
    redis: Redis,
    keys: Keys,
}

impl Store {
    /// The store over `redis`, with `keys`.
    pub(crate) fn new(redis: Redis, keys: Keys) -> Self {
        Self { redis, keys }
    }

    /// The key and channel names.
    pub(crate) fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The Redis layer itself, for subscriptions.
    pub(crate) fn redis(&self) -> &Redis {
        &self.redis
    }

    /// A handle for commands this module does not wrap (scripts); bound it with [`deadline`].
    pub(crate) fn connection(&self) -> Commands {
        self.redis.commands()
    }

    /// Runs `cmd` within [`COMMAND_TIMEOUT`].
    pub(crate) async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, Error> {
        let mut conn = self.connection();
        deadline(COMMAND_TIMEOUT, cmd.query_async(&mut conn)).await
    }

    /// Publishes `payload` on `channel` now (outside the adapter's pipeline) and returns how
    /// many subscribers received it.
    pub(crate) async fn publish_counted(
        &self,
        channel: &str,
        payload: &[u8],
    ) -> Result<u64, Error> {
        let receivers = self
            .redis
            .publish_now(channel, payload)
            .await
            .map_err(layer_error)?;
        Ok(u64::try_from(receivers).unwrap_or(u64::MAX))
    }

    /// Runs a script `invocation` within [`COMMAND_TIMEOUT`] (EVALSHA, loading the script
    /// once if Redis does not know it).
    pub(crate) async fn invoke<T: FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, Error> {
        let mut conn = self.connection();
        deadline(COMMAND_TIMEOUT, invocation.invoke_async(&mut conn)).await
    }

    /// Runs `pipe` within [`COMMAND_TIMEOUT`]. On a cluster its keys must share a slot.
    pub(crate) async fn pipeline<T: FromRedisValue>(&self, pipe: &Pipeline) -> Result<T, Error> {
        let mut conn = self.connection();
        deadline(COMMAND_TIMEOUT, pipe.query_async(&mut conn)).await
    }
}

impl Store {
    /// Whether Redis answers `PING` within `limit`.
    pub(crate) async fn ping(&self, limit: Duration) -> Result<(), Error> {
        let mut conn = self.connection();
        deadline(limit, redis::cmd("PING").query_async::<String>(&mut conn))
            .await
            .map(drop)
    }

    /// `INFO memory` and `INFO stats` (on a cluster, summed over the nodes that answer), if
    /// Redis answers within `limit` with a `used_memory`.
    pub(crate) async fn memory(&self, limit: Duration) -> Option<Memory> {
        let mut conn = self.connection();
        let mut command = redis::cmd("INFO");
        command.arg("memory").arg("stats");
        let info = deadline(limit, command.query_async::<Value>(&mut conn))
            .await
            .ok()?;
        let mut texts = Vec::new();
        collect_texts(&info, &mut texts);
        let sum = |field: &str| -> Option<u64> {
            let values: Vec<u64> = texts
                .iter()
                .filter_map(|text| info_field(text, field))
                .collect();
            (!values.is_empty()).then(|| values.iter().sum())
        };
        Some(Memory {
            used: sum("used_memory")?,
            max: sum("maxmemory").unwrap_or(0),
            evicted_keys: sum("evicted_keys").unwrap_or(0),
        })
    }
}

/// Redis's memory as `INFO` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Memory {
    /// `used_memory`, bytes.
    pub(crate) used: u64,
    /// `maxmemory`, bytes (0: no limit).
    pub(crate) max: u64,
    /// `evicted_keys`: keys evicted for `maxmemory` since Redis started.
    pub(crate) evicted_keys: u64,
}

/// Every text in an answer: one for a single Redis, one per node (in a map) for a cluster.
fn collect_texts(value: &Value, texts: &mut Vec<String>) {
    match value {
        Value::BulkString(bytes) => texts.push(String::from_utf8_lossy(bytes).into_owned()),
        Value::VerbatimString { text, .. } | Value::SimpleString(text) => texts.push(text.clone()),
        Value::Array(items) | Value::Set(items) => {
            items.iter().for_each(|item| collect_texts(item, texts));
        }
        Value::Map(pairs) => pairs
            .iter()
            .for_each(|(_, item)| collect_texts(item, texts)),
        _ => {}
    }
}

/// The integer value of the `field:<value>` line of an `INFO` answer.
fn info_field(info: &str, field: &str) -> Option<u64> {
    info.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().parse().ok())
}

/// `command`'s result, or [`Error::RedisTimeout`] once `limit` has passed (the Redis
/// layer's one timeout, [`redis_adapter::within`], with the gateway's errors).
pub(crate) async fn deadline<T>(
    limit: Duration,
    command: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, Error> {
    redis_adapter::within(limit, command)
        .await
        .map_err(layer_error)
}

/// A Redis layer error as the gateway reports it.
fn layer_error(err: redis_adapter::Error) -> Error {
    match err {
        redis_adapter::Error::Redis(err) => Error::Redis(err),
        redis_adapter::Error::Timeout(limit) => Error::RedisTimeout(limit),
        other => Error::Adapter(other),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_used_memory() {
        let info = "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\n\
                    maxmemory:0\r\n# Stats\r\nevicted_keys:7\r\n";
        let field = super::info_field;
        assert_eq!(field(info, "used_memory"), Some(1_048_576));
        assert_eq!(field(info, "maxmemory"), Some(0));
        assert_eq!(field(info, "evicted_keys"), Some(7));
        assert_eq!(field("# Memory\r\n", "used_memory"), None);
        assert_eq!(field("used_memory:lots\r\n", "used_memory"), None);
    }
}
