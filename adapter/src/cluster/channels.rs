//! Channel naming from prefix, namespace and instance id.
//!
//! Per namespace `ns` and instance `uid`:
//! - `{prefix}#{ns}#`: requests for every instance (broadcasts, heartbeats, hellos);
//! - `{prefix}#{ns}#{uid}#`: requests for one instance (targeted operations, hello replies);
//! - `{prefix}-response#{ns}#{uid}#`: responses to the requests of one instance;
//! - `{prefix}#{ns}#r#{room}#`: broadcasts to one room, heard by the instances holding it.
//!
//! On a Redis Cluster each channel is sharded by its whole name, so rooms spread over the
//! shards.

use super::Id;

/// The channels one namespace adapter uses.
#[derive(Debug, Clone)]
pub(crate) struct Channels {
    prefix: String,
    ns: String,
    /// Requests for every instance of the namespace.
    pub broadcast: String,
}

impl Channels {
    /// Channels of namespace `ns` under `prefix`.
    pub fn new(prefix: &str, ns: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            ns: ns.to_owned(),
            broadcast: format!("{prefix}#{ns}#"),
        }
    }

    /// Requests for the instance `uid` only.
    pub fn requests_of(&self, uid: Id) -> String {
        format!("{}#{}#{uid}#", self.prefix, self.ns)
    }

    /// The namespace these channels belong to.
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// Broadcasts to `room`.
    pub fn room(&self, room: &str) -> String {
        format!("{}#{}#r#{room}#", self.prefix, self.ns)
    }

    /// Responses to the requests of instance `uid`.
    pub fn responses_of(&self, uid: Id) -> String {
        format!("{}-response#{}#{uid}#", self.prefix, self.ns)
    }
}

/// The channels the Socket.IO Redis emitter publishes on for one namespace, under its key.
#[derive(Debug, Clone)]
pub(crate) struct EmitterChannels {
    /// Emits to the whole namespace, or to two or more rooms: `{key}#{ns}#`.
    pub broadcast: String,
    /// Joins, leaves, disconnections and server-side emits: `{key}-request#{ns}#`.
    pub requests: String,
}

impl EmitterChannels {
    /// The emitter channels of namespace `ns` under `key`.
    pub fn new(key: &str, ns: &str) -> Self {
        Self {
            broadcast: format!("{key}#{ns}#"),
            requests: format!("{key}-request#{ns}#"),
        }
    }

    /// Emits to `room` alone: `{key}#{ns}#{room}#`.
    pub fn room(&self, room: &str) -> String {
        format!("{}{room}#", self.broadcast)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_include_prefix_namespace_and_node() {
        let uid = Id::random();
        let ch = Channels::new("app", "/chat");
        assert_eq!(ch.broadcast, "app#/chat#");
        assert_eq!(ch.requests_of(uid), format!("app#/chat#{uid}#"));
        assert_eq!(ch.responses_of(uid), format!("app-response#/chat#{uid}#"));
        assert_eq!(ch.room("lobby"), "app#/chat#r#lobby#");
        let emitter = EmitterChannels::new("socket.io", "/");
        assert_eq!(emitter.broadcast, "socket.io#/#");
        assert_eq!(emitter.requests, "socket.io-request#/#");
        assert_eq!(emitter.room("t:acme:r:a"), "socket.io#/#t:acme:r:a#");
    }
}
