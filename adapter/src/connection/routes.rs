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

/// The subscribed channels and their handlers; cheap to clone, shared by the connection that
/// reads messages and the callers that subscribe.
#[derive(Clone, Default)]
pub(crate) struct Routes(Arc<RwLock<HashMap<String, Handler>>>);

impl Routes {
    /// Routes `channel` to `handler`, replacing any previous handler.
    pub fn insert(&self, channel: String, handler: Handler) {
        self.write().insert(channel, handler);
    }

    /// Stops routing `channel`.
    pub fn remove(&self, channel: &str) {
        self.write().remove(channel);
    }

    /// Every routed channel, to subscribe again after a reconnect.
    pub fn channels(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// Hands a received message to its channel's handler, counting it.
    pub fn dispatch(&self, counters: &Counters, channel: &[u8], payload: &[u8]) {
        Counters::incr(&counters.received);
        Counters::add(&counters.received_bytes, payload.len());
        let handler = std::str::from_utf8(channel)
            .ok()
            .and_then(|channel| self.read().get(channel).cloned());
        match handler {
            Some(handler) => handler(payload),
            None => tracing::debug!(
                channel = %String::from_utf8_lossy(channel),
                "message without route"
            ),
        }
    }

    /// The map is only ever held for a lookup or an insert, so a poisoned lock can only come
    /// from a panic elsewhere; the map itself is still consistent and is used as is.
    fn read(&self) -> RwLockReadGuard<'_, HashMap<String, Handler>> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<String, Handler>> {
        self.0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
