//! One client event as its handler receives it: the socket, the chat's state, the sender's
//! identity, the event's place in the socket's queue, the acknowledgement the client may wait
//! for, and the payload (the event's first argument).

use std::sync::Arc;

use engine::sockets::{Ack, Socket};
use serde_json::Value;

use super::{ChatState, identity::Identity, order::Turn};

/// One event of one socket, handed to its handler.
pub(crate) struct Call {
    /// The socket that sent it.
    pub(crate) socket: Arc<Socket>,
    /// What every handler shares.
    pub(crate) chat: ChatState,
    /// Who sent it.
    pub(crate) identity: Identity,
    /// Its place in the socket's queue (or why it was refused).
    pub(crate) turn: Turn,
    /// The acknowledgement the client asked for, if it did.
    pub(crate) ack: Option<Ack>,
    /// Its first argument, the request (`None` when it had none).
    pub(crate) payload: Option<Value>,
}
