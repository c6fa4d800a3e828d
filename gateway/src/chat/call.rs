//! One client event as the chat receives it: its [`Request`] (the socket, the chat's state,
//! the sender's identity, the payload), its place in the socket's queue, and the
//! acknowledgement the client may wait for. Each handler is a function of the request alone;
//! `reply::answer` runs it in turn and acks its outcome.

use std::sync::Arc;

use engine::sockets::{Ack, Socket};
use serde_json::Value;

use super::{ChatState, identity::Identity, order::Turn};

/// One event of one socket.
pub(crate) struct Call {
    /// What its handler works on.
    pub(crate) request: Request,
    /// Its place in the socket's queue (or why it was refused).
    pub(crate) turn: Turn,
    /// The acknowledgement the client asked for, if it did.
    pub(crate) ack: Option<Ack>,
}

/// What an event's handler works on.
pub(crate) struct Request {
    /// The socket that sent it.
    pub(crate) socket: Arc<Socket>,
    /// What every handler shares.
    pub(crate) chat: ChatState,
    /// Who sent it.
    pub(crate) identity: Arc<Identity>,
    /// Its first argument, the request's body (`None` when it had none).
    pub(crate) payload: Option<Value>,
}
