//! The Socket.IO v5 server on the engine.io server: namespaces, CONNECT with its `auth` and
//! `connect_error`, events and acks (binary attachments included) both ways, DISCONNECT from
//! either side. An application gives each namespace a [`Namespace`]; the engine calls it from
//! the task that read the packet, so a handler that needs to wait spawns its own task.

mod connection;
mod hold;
mod nsp;
mod rooms;
mod socket;

use std::{collections::HashMap, sync::Arc};

use redis_adapter::Room;
use serde_json::Value;

pub use self::{
    connection::Connecting,
    hold::{Held, MAX_HELD},
    nsp::{
        Broadcast, BroadcastOptions, Change, Deliveries, Fetching, Nsp, Prepared, Remote,
        RemoteError, Remoting, SocketView,
    },
    socket::{AckError, Socket},
};
use crate::server::{self, CloseReason, Message, Session};

/// What a namespace does with its sockets.
pub trait Namespace: Send + Sync + 'static {
    /// A client asks to join (its CONNECT payload is [`Socket::auth`] of
    /// [`Connecting::socket`]): answer through `connecting`, now or from a task; dropping it
    /// unanswered refuses. By default every socket is let in.
    fn connect(&self, connecting: Connecting) {
        connecting.accept();
    }

    /// `socket` joined (its CONNECT was answered).
    fn connected(&self, socket: &Arc<Socket>);

    /// An event from `socket`.
    fn event(&self, socket: &Arc<Socket>, event: Event);

    /// `socket` left, for `reason`; it sends nothing more.
    fn disconnected(&self, socket: &Arc<Socket>, reason: DisconnectReason);

    /// Whether a broadcast another instance sent to `rooms` is delivered here: `data` is its
    /// event's JSON (`["name", ...]`). Called on the task that reads the cluster bus, before
    /// any local socket gets it, so it must be quick. Every broadcast is, by default.
    fn relayed(&self, rooms: &[Room], data: &str) -> bool {
        let _ = (rooms, data);
        true
    }

    /// What the other instances are told of `socket` when they fetch it
    /// ([`Nsp::fetch_sockets`]): who it is, say. Nothing by default.
    fn describe(&self, socket: &Arc<Socket>) -> Value {
        let _ = socket;
        Value::Null
    }
}

/// An event a client emitted.
#[derive(Debug)]
pub struct Event {
    /// Its name.
    pub name: String,
    /// Its arguments (binary ones as placeholders, resolved by [`Event::attachment`]).
    pub args: Vec<Value>,
    /// The binary attachments, in placeholder order.
    pub attachments: Vec<bytes::Bytes>,
    /// The acknowledgement the client waits for, if it asked for one.
    pub ack: Option<Ack>,
}

impl Event {
    /// The attachment a placeholder argument stands for.
    pub fn attachment(&self, value: &Value) -> Option<&bytes::Bytes> {
        crate::sio::placeholder_num(value).and_then(|num| self.attachments.get(num))
    }
}

/// Answers one client event's ack request, once.
#[derive(Debug)]
pub struct Ack {
    socket: Arc<Socket>,
    id: u64,
}

impl Ack {
    /// Sends the acknowledgement with `args` (a JSON array of arguments).
    pub fn send(self, args: &Value) -> Result<(), crate::Error> {
        self.socket.send_ack(self.id, args, Vec::new())
    }

    /// Sends the acknowledgement with `args` holding placeholders for `attachments`.
    pub fn send_binary(
        self,
        args: &Value,
        attachments: Vec<bytes::Bytes>,
    ) -> Result<(), crate::Error> {
        self.socket.send_ack(self.id, args, attachments)
    }
}

/// Why a socket left its namespace. New reasons may be added: match with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The client sent DISCONNECT.
    ClientDisconnected,
    /// The server disconnected it ([`Socket::disconnect`]).
    ServerDisconnected,
    /// Its engine.io session closed, for this reason.
    Closed(CloseReason),
}

/// The Socket.IO server: namespaces by name, and the engine.io [`server::Handler`] that
/// gives them their sockets.
pub struct SocketIo {
    /// Shared with every session's connection (namespaces are set before serving).
    namespaces: Arc<HashMap<String, Arc<Nsp>>>,
}

impl SocketIo {
    /// A server with no namespace yet.
    pub fn new() -> Self {
        Self {
            namespaces: Arc::default(),
        }
    }

    /// Serves namespace `name` (`/`, `/admin`) with `namespace`.
    #[must_use]
    pub fn namespace(mut self, name: &str, namespace: impl Namespace) -> Self {
        Arc::make_mut(&mut self.namespaces)
            .insert(name.to_owned(), Nsp::new(name, Arc::new(namespace)));
        self
    }

    /// Namespace `name`, to broadcast in or give a cluster.
    pub fn of(&self, name: &str) -> Option<&Arc<Nsp>> {
        self.namespaces.get(name)
    }
}

impl Default for SocketIo {
    fn default() -> Self {
        Self::new()
    }
}

impl server::Handler for SocketIo {
    fn on_open(&self, session: &Arc<Session>) {
        let connection = connection::Connection::new(session, self.namespaces.clone());
        // A session opens once: the slot is empty.
        let _fresh = session.set_extension(connection);
    }

    fn on_message(&self, session: &Session, message: Message<'_>) {
        if let Some(connection) = session.extension::<connection::Connection>() {
            connection.receive(message);
        }
    }

    fn on_close(&self, session: &Session, reason: CloseReason) {
        if let Some(connection) = session.extension::<connection::Connection>() {
            connection.closed(reason);
        }
    }

    /// A session is in use while a namespace is connected on it (a CONNECT waiting for its
    /// answer, or refused, does not count).
    fn is_established(&self, session: &Session) -> bool {
        session
            .extension::<connection::Connection>()
            .is_some_and(connection::Connection::has_sockets)
    }
}
