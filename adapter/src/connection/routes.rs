//! Where each received message goes: the handler of its channel.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard},
};

use crate::stats::Counters;

/// Called with the payload of every message received on a channel. It runs on the task that
/// reads the subscription: it must not block, and it sees messages in the order Redis sent
/// them.
pub type Handler = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// How a channel is subscribed on a Redis Cluster. A standalone Redis has one kind only: its
/// subscriber files every route as [`Sharding::Plain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sharding {
    /// `SSUBSCRIBE` on the shard of the channel's slot, for what is sent with `SPUBLISH`.
    Sharded,
    /// `SUBSCRIBE` on any node, for what others send with `PUBLISH` (which a cluster
    /// forwards to every node).
    Plain,
}

/// The handlers of each kind of subscription, by channel. One channel may have one of each
/// on a cluster, where `PUBLISH` and `SPUBLISH` on one name are two different streams.
#[derive(Default)]
struct Table {
    sharded: HashMap<String, Handler>,
    plain: HashMap<String, Handler>,
}

impl Table {
    fn of(&mut self, sharding: Sharding) -> &mut HashMap<String, Handler> {
        match sharding {
            Sharding::Sharded => &mut self.sharded,
            Sharding::Plain => &mut self.plain,
        }
    }
}

/// The subscribed channels and their handlers; cheap to clone, shared by the connection that
/// reads messages and the callers that subscribe.
#[derive(Clone, Default)]
pub(crate) struct Routes(Arc<RwLock<Table>>);

impl Routes {
    /// Routes `channel`, subscribed as `sharding` says, to `handler`, replacing any previous
    /// handler of that kind.
    pub fn insert(&self, channel: String, handler: Handler, sharding: Sharding) {
        self.write().of(sharding).insert(channel, handler);
    }

    /// Stops routing `channel` subscribed as `sharding` says; whether it was routed.
    pub fn remove(&self, channel: &str, sharding: Sharding) -> bool {
        self.write().of(sharding).remove(channel).is_some()
    }

    /// Whether `channel` is routed, subscribed as `sharding` says.
    pub fn holds(&self, channel: &str, sharding: Sharding) -> bool {
        let table = self.read();
        match sharding {
            Sharding::Sharded => table.sharded.contains_key(channel),
            Sharding::Plain => table.plain.contains_key(channel),
        }
    }

    /// Every routed channel and how it is subscribed, to subscribe again after a reconnect.
    pub fn channels(&self) -> Vec<(String, Sharding)> {
        let table = self.read();
        let sharded = table.sharded.keys().map(|c| (c.clone(), Sharding::Sharded));
        let plain = table.plain.keys().map(|c| (c.clone(), Sharding::Plain));
        sharded.chain(plain).collect()
    }

    /// Hands a message received on `channel` (through a subscription of kind `sharding`) to
    /// its handler, counting it.
    pub fn dispatch(
        &self,
        counters: &Counters,
        sharding: Sharding,
        channel: &[u8],
        payload: &[u8],
    ) {
        Counters::incr(&counters.received);
        Counters::add(&counters.received_bytes, payload.len());
        let handler = std::str::from_utf8(channel).ok().and_then(|channel| {
            let table = self.read();
            let routes = match sharding {
                Sharding::Sharded => &table.sharded,
                Sharding::Plain => &table.plain,
            };
            routes.get(channel).cloned()
        });
        match handler {
            Some(handler) => handler(payload),
            None => tracing::debug!(
                channel = %String::from_utf8_lossy(channel),
                "message without route"
            ),
        }
    }

    /// The table is only ever held for a lookup or an insert, so a poisoned lock can only come
    /// from a panic elsewhere; the table itself is still consistent and is used as is.
    fn read(&self) -> RwLockReadGuard<'_, Table> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Table> {
        self.0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
