//! The cluster bus: how instances of one namespace share rooms, broadcasts and requests over
//! Pub/Sub, with no knowledge of the Socket.IO server on top.
//!
//! - [`channels`]: channel names from prefix, namespace, room and instance;
//! - [`envelope`]: the versioned wire format (header with kind and origin, opaque body);
//! - [`emitter`]: what the official Socket.IO Redis emitter publishes, decoded;
//! - [`seal`]: with a cluster secret, a MAC on every envelope; unverifiable ones are dropped;
//! - [`membership`]: heartbeats and the live-instance view;
//! - [`rooms`]: per-room subscriptions, held while a local socket is in the room;
//! - [`pending`]: requests waiting for responses, with their timeouts;
//! - [`NamespaceBus`]: composes them over a [`PubSub`] (Redis, or an in-memory one in tests)
//!   for a front end ([`Inbound`]) that owns the sockets: socketioxide's adapter here, and
//!   any other Socket.IO engine later.

mod channels;
mod emitter;
mod envelope;
mod id;
mod membership;
mod namespace;
mod pending;
mod pubsub;
mod rooms;
mod seal;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

pub use emitter::{EmitterError, EmitterRequest, EventArgs, Selection};
pub use id::Id;
pub use namespace::{Inbound, NamespaceBus, Outgoing};
pub use pubsub::PubSub;
pub use seal::ClusterSecret;

/// A room name; the same type as socketioxide's `Room`.
pub type Room = Cow<'static, str>;
