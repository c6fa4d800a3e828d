//! How a batch of publishes reaches Redis: one pipeline on a standalone Redis; on a cluster,
//! one pipeline per hash slot, sent to the shards concurrently.

use std::{collections::BTreeMap, time::Duration};

use redis::aio::ConnectionManager;

use super::{Commands, cluster::ClusterHandle, deadline::within};
use crate::error::Error;

/// The connection publishes and commands go through, by kind of deployment.
#[derive(Clone)]
pub(crate) enum Transport {
    /// A standalone Redis: `PUBLISH`, one pipeline per batch.
    Standalone(ConnectionManager),
    /// A Redis Cluster: `SPUBLISH`, one pipeline per hash slot of the batch.
    Cluster(ClusterHandle),
}

/// One message to publish.
pub(crate) struct Message {
    pub channel: String,
    pub payload: Vec<u8>,
}

impl Transport {
    /// The command connection behind it.
    pub fn commands(&self) -> Commands {
        match self {
            Self::Standalone(conn) => Commands::standalone(conn.clone()),
            Self::Cluster(handle) => Commands::cluster(handle.get()),
        }
    }

    /// The command publishing to a channel here: `PUBLISH`, or `SPUBLISH` on a cluster
    /// (whose subscriptions are sharded).
    pub fn publish_command(&self) -> &'static str {
        match self {
            Self::Standalone(_) => "PUBLISH",
            Self::Cluster(_) => "SPUBLISH",
        }
    }

    /// Publishes `batch` in order within `timeout`; returns one result per message. On a
    /// cluster, messages of one slot keep their order; slots are independent.
    pub async fn publish(&self, batch: &[Message], timeout: Duration) -> Vec<Result<(), Error>> {
        match self {
            Self::Standalone(conn) => {
                let result = send(conn.clone(), "PUBLISH", batch.iter(), timeout).await;
                batch.iter().map(|_| share(&result)).collect()
            }
            Self::Cluster(handle) => {
                let mut by_slot: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
                for (index, message) in batch.iter().enumerate() {
                    by_slot
                        .entry(hash_slot(message.channel.as_bytes()))
                        .or_default()
                        .push(index);
                }
                let conn = handle.get();
                let sends = by_slot.values().map(|indexes| {
                    let messages = indexes.iter().map(|&index| &batch[index]);
                    send(conn.clone(), "SPUBLISH", messages, timeout)
                });
                let results = futures_util::future::join_all(sends).await;
                let mut out: Vec<Result<(), Error>> = batch.iter().map(|_| Ok(())).collect();
                for (indexes, result) in by_slot.values().zip(results) {
                    for &index in indexes {
                        out[index] = share(&result);
                    }
                }
                out
            }
        }
    }
}

/// Sends `messages` with `command` as one pipeline.
async fn send<'a, C: redis::aio::ConnectionLike + Send>(
    mut conn: C,
    command: &str,
    messages: impl Iterator<Item = &'a Message>,
    timeout: Duration,
) -> Result<(), Error> {
    let mut pipe = redis::pipe();
    for message in messages {
        pipe.cmd(command)
            .arg(&message.channel)
            .arg(&message.payload)
            .ignore();
    }
    within(timeout, pipe.query_async::<()>(&mut conn)).await
}

/// The same outcome for every message of a pipeline.
fn share(result: &Result<(), Error>) -> Result<(), Error> {
    match result {
        Ok(()) => Ok(()),
        Err(Error::Redis(err)) => Err(Error::Redis(err.clone())),
        Err(Error::Timeout(limit)) => Err(Error::Timeout(*limit)),
        Err(_) => Err(Error::NotConnected),
    }
}

/// The Redis Cluster hash slot of `key`: CRC16 (XMODEM) of the key, or of its `{hash tag}`
/// when it has a non-empty one, modulo 16384.
pub(crate) fn hash_slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&byte| byte == b'{')
        .and_then(|open| {
            let inner = &key[open + 1..];
            let close = inner.iter().position(|&byte| byte == b'}')?;
            (close > 0).then(|| &inner[..close])
        })
        .unwrap_or(key);
    crc16::State::<crc16::XMODEM>::calculate(tagged) % 16384
}

#[cfg(test)]
mod tests {
    use super::hash_slot;

    #[test]
    fn hash_slots_match_redis() {
        // Values from `CLUSTER KEYSLOT`.
        assert_eq!(hash_slot(b"foo"), 12182);
        assert_eq!(hash_slot(b"bar"), 5061);
        assert_eq!(hash_slot(b"{user1000}.following"), hash_slot(b"user1000"));
        // The rules of the Redis Cluster specification's examples.
        assert_eq!(hash_slot(b"foo{bar}{zap}"), hash_slot(b"bar"));
        assert_eq!(hash_slot(b"foo{{bar}}zap"), hash_slot(b"{bar"));
        assert_ne!(hash_slot(b"foo{}{bar}"), hash_slot(b"bar"));
    }
}
