//! The chat protocol on namespace `/`: connection setup and one handler per event.
//!
//! A chat line flows: `messages::message` (validate, membership) -> `socket.within(room).emit`
//! -> the adapter (local members at once, then the other instances) -> their local members.

mod identity;
mod messages;
mod order;
mod payload;
mod reply;
mod rooms;
mod typing;
mod validate;

use std::sync::Arc;

use serde::Serialize;
use socketioxide::{
    SocketIo,
    adapter::Adapter,
    extract::{SocketRef, State, TryData},
    handler::ConnectHandler,
};
use socketioxide_core::adapter::DefinedAdapter;

use crate::Error;
use identity::DisplayName;
use messages::MessageIds;
use order::EventQueue;

/// What every chat handler shares, installed as socketioxide state.
#[derive(Clone, Debug)]
pub(crate) struct ChatState {
    /// This instance's id, sent to clients in `welcome`.
    instance: Arc<str>,
    /// The source of message ids.
    message_ids: Arc<MessageIds>,
}

impl ChatState {
    /// The chat state of instance `instance`.
    pub(crate) fn new(instance: &str) -> Self {
        Self {
            instance: instance.into(),
            message_ids: Arc::new(MessageIds::new()),
        }
    }
}

/// The `welcome` event sent to each socket once connected.
#[derive(Debug, Serialize)]
struct Welcome<'a> {
    instance: &'a str,
    sid: String,
}

/// Registers the chat namespace `/` on `io`. With an adapter whose init is asynchronous (ours
/// over Redis) the returned value is a future that must be awaited.
pub(crate) fn register<A: Adapter + DefinedAdapter>(io: &SocketIo<A>) -> A::InitRes {
    io.ns("/", welcome::<A>.with(setup::<A>))
}

/// Connect middleware: everything a socket needs before its first event.
///
/// socketioxide runs the middlewares, inserts the socket into the namespace, sends the CONNECT
/// packet and only then spawns the connect handler (`Namespace::connect`). A client may emit
/// as soon as it reads CONNECT, possibly before that spawned handler has run: an event with no
/// handler registered yet would be silently dropped. Handlers are therefore registered here,
/// before CONNECT is sent (`socket.on` only fills the socket's handler map, which works before
/// the socket is connected), together with the display name and the event queue they use.
///
/// Refuses the connection (CONNECT_ERROR) only for an invalid `auth.name`.
async fn setup<A: Adapter>(
    socket: SocketRef<A>,
    TryData(auth): TryData<serde_json::Value>,
) -> Result<(), Error> {
    if let Some(name) = DisplayName::from_auth(auth)? {
        socket.extensions.insert(name);
    }
    socket.extensions.insert(EventQueue::default());
    socket.on("join", rooms::join::<A>);
    socket.on("leave", rooms::leave::<A>);
    socket.on("message", messages::message::<A>);
    socket.on("typing", typing::typing::<A>);
    Ok(())
}

/// Connect handler: tells the client which instance serves it. Runs after CONNECT was sent,
/// so `welcome` may reach the client after the acks of its first events.
async fn welcome<A: Adapter>(socket: SocketRef<A>, State(chat): State<ChatState>) {
    tracing::debug!(sid = %socket.id, "socket connected");
    let welcome = Welcome {
        instance: &chat.instance,
        sid: socket.id.to_string(),
    };
    if let Err(err) = socket.emit("welcome", &welcome) {
        tracing::debug!(sid = %socket.id, %err, "could not send welcome");
    }
}
