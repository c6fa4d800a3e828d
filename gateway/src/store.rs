//! The one Redis command connection of sessions, rate limits and tenant settings: a
//! multiplexed connection that reconnects by itself (to one Redis, or to a Redis Cluster
//! with commands routed by key), and a deadline on every command so that a Redis outage
//! costs a request at most that long.

use std::time::Duration;

use redis::{
    Cmd, FromRedisValue, Pipeline, RedisFuture, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::ClusterClientBuilder,
    cluster_async::ClusterConnection,
};

use crate::{Error, keys::Keys};

/// Deadline of one command (or pipeline) on the request path.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);

/// A cheap-to-clone handle on the command connection, with the key names.
#[derive(Clone)]
pub(crate) struct Store {
    conn: Connection,
    keys: Keys,
}

/// The command connection, by kind of deployment. Every command the gateway sends names at
/// most one key (or keys of one slot), so both route it.
#[derive(Clone)]
pub(crate) enum Connection {
    /// One Redis.
    Standalone(ConnectionManager),
    /// A Redis Cluster: each command goes to the master of its key's slot.
    Cluster(ClusterConnection),
}

impl Store {
    /// Connects to `url` (failing if Redis is unreachable now); later losses are repaired in
    /// the background, `reconnect` (first and longest delay) apart, while commands fail fast.
    /// A `redis+cluster://host:port,host:port` URL connects to a Redis Cluster.
    pub(crate) async fn connect(
        url: &str,
        keys: Keys,
        reconnect: (Duration, Duration),
    ) -> Result<Self, Error> {
        let connect = async {
            Ok::<_, redis::RedisError>(match redis_adapter::cluster_nodes(url) {
                Some(nodes) => {
                    let client = ClusterClientBuilder::new(nodes)
                        .connection_timeout(COMMAND_TIMEOUT)
                        .response_timeout(COMMAND_TIMEOUT)
                        .build()?;
                    Connection::Cluster(client.get_async_connection().await?)
                }
                None => {
                    let client = redis::Client::open(url)?;
                    let config = ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(COMMAND_TIMEOUT))
                        .set_response_timeout(Some(COMMAND_TIMEOUT))
                        .set_min_delay(reconnect.0)
                        .set_max_delay(reconnect.1)
                        .set_number_of_retries(1);
                    Connection::Standalone(
                        ConnectionManager::new_with_config(client, config).await?,
                    )
                }
            })
        };
        let conn = tokio::time::timeout(COMMAND_TIMEOUT * 5, connect)
            .await
            .map_err(|_| Error::RedisTimeout(COMMAND_TIMEOUT * 5))??;
        Ok(Self { conn, keys })
    }

    /// The key and channel names.
    pub(crate) fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A handle for commands this module does not wrap (scripts); bound it with [`deadline`].
    pub(crate) fn connection(&self) -> Connection {
        self.conn.clone()
    }

    /// Runs `cmd` within [`COMMAND_TIMEOUT`].
    pub(crate) async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, Error> {
        let mut conn = self.conn.clone();
        deadline(COMMAND_TIMEOUT, cmd.query_async(&mut conn)).await
    }

    /// Runs `pipe` within [`COMMAND_TIMEOUT`]. On a cluster its keys must share a slot.
    pub(crate) async fn pipeline<T: FromRedisValue>(&self, pipe: &Pipeline) -> Result<T, Error> {
        let mut conn = self.conn.clone();
        deadline(COMMAND_TIMEOUT, pipe.query_async(&mut conn)).await
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Standalone(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Standalone(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Standalone(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
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

    /// `used_memory` from `INFO memory` (on a cluster, summed over the nodes that answer), if
    /// Redis answers within `limit` with a value.
    pub(crate) async fn used_memory(&self, limit: Duration) -> Option<u64> {
        let mut conn = self.conn.clone();
        let mut command = redis::cmd("INFO");
        command.arg("memory");
        let info = deadline(limit, command.query_async::<Value>(&mut conn))
            .await
            .ok()?;
        let mut texts = Vec::new();
        collect_texts(&info, &mut texts);
        let values: Vec<u64> = texts.iter().filter_map(|text| used_memory(text)).collect();
        (!values.is_empty()).then(|| values.iter().sum())
    }
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
