//! The chat protocol on namespace `/` ([`CHAT_NS`]): connection setup and one handler per
//! event. Infrastructure is asked through the [`Mode`], never directly.
//!
//! A chat line flows: `handshake` (who, which tenant) -> `messages::message` (validate,
//! membership of the tenant's room, then the rate limit and tenant settings) ->
//! `socket.within(room).emit` -> the adapter (local members at once, then the other
//! instances) -> their local members.

mod budget;
mod catch_up;
mod census;
mod deliver;
mod dm;
mod emitted;
mod expiry;
mod handshake;
mod history;
mod identity;
mod members;
mod messages;
mod order;
mod payload;
mod reply;
mod rooms;
mod spooled;
mod typing;
mod unknown;

use std::sync::Arc;

use serde::Serialize;
use socketioxide::{
    SocketIo,
    adapter::Adapter,
    extract::{SocketRef, State, TryData},
    handler::ConnectHandler,
};
use socketioxide_core::adapter::DefinedAdapter;

use crate::{
    config::Config,
    ids::MessageIds,
    metrics,
    mode::Mode,
    refusal::Refusal,
    tenancy::{self, CHAT_NS},
};
use census::{Census, Claim, Seat};
pub(crate) use emitted::track as track_emitter_membership;
pub(crate) use expiry::spawn as spawn_session_check;
use order::EventQueue;
pub(crate) use spooled::spawn as spawn_spool_drain;

/// What every chat handler shares, installed as socketioxide state.
#[derive(Clone)]
pub(crate) struct ChatState {
    /// This instance's id, sent to clients in `welcome`.
    instance: Arc<str>,
    /// The source of message ids.
    message_ids: Arc<MessageIds>,
    /// Standalone or clustered: joins, limits, settings and the directory go through it.
    mode: Arc<Mode>,
    /// What one socket may cost.
    limits: SocketLimits,
    /// The sockets of each user and session on this instance.
    census: Arc<Census>,
}

impl ChatState {
    /// The chat state of instance `instance` in `mode`, with the per-socket limits of `config`.
    pub(crate) fn new(instance: &str, mode: Arc<Mode>, config: &Config) -> Self {
        Self {
            instance: instance.into(),
            message_ids: Arc::new(MessageIds::new()),
            mode,
            limits: SocketLimits {
                events: order::Limits {
                    rate: config.socket_event_rate,
                    queue: config.socket_event_queue,
                },
                max_rooms: config.max_rooms_per_socket,
                per_user: config.max_sockets_per_user,
                per_session: config.max_sockets_per_session,
            },
            census: Arc::default(),
        }
    }

    /// The census claims of a socket of `identity`: its user's cap, and its session's when
    /// it has one.
    fn claims(&self, identity: &identity::Identity) -> Vec<Claim> {
        let user = Claim {
            key: tenancy::user_room(&identity.tenant, &identity.user),
            cap: self.limits.per_user,
            what: "per user",
        };
        let session = identity.session.as_ref().map(|session| Claim {
            key: tenancy::session_room(&identity.tenant, session.as_str()),
            cap: self.limits.per_session,
            what: "per session",
        });
        std::iter::once(user).chain(session).collect()
    }
}

/// What one socket may cost, from the flags (see `Config`).
#[derive(Debug, Clone, Copy)]
struct SocketLimits {
    /// The event budget and the bound of the socket's event queue.
    events: order::Limits,
    /// Chat rooms one socket may be in (its private rooms not counted).
    max_rooms: usize,
    /// Sockets of one user on this instance.
    per_user: usize,
    /// Sockets of one session on this instance.
    per_session: usize,
}

/// The `welcome` event sent to each socket once connected.
#[derive(Debug, Serialize)]
struct Welcome<'a> {
    instance: &'a str,
    sid: String,
}

/// Registers the chat namespace ([`CHAT_NS`]) on `io`. With an adapter whose init is
/// asynchronous (ours over Redis) the returned value is a future that must be awaited.
pub(crate) fn register<A: Adapter + DefinedAdapter>(io: &SocketIo<A>) -> A::InitRes {
    io.ns(CHAT_NS, welcome::<A>.with(setup::<A>))
}

/// Connect middleware: everything a socket needs before its first event.
///
/// socketioxide runs the middlewares, inserts the socket into the namespace, sends the CONNECT
/// packet and only then spawns the connect handler (`Namespace::connect`). A client may emit
/// as soon as it reads CONNECT, possibly before that spawned handler has run: an event with no
/// handler registered yet would be silently dropped. Handlers are therefore registered here,
/// before CONNECT is sent (`socket.on` only fills the socket's handler map, which works before
/// the socket is connected), together with the identity and the event queue they use.
///
/// Authentication comes first (`handshake`): a refused socket (CONNECT_ERROR with the reason)
/// has joined no room and has no handler. Then the socket takes its seat in the census (refused
/// `too_many_sockets` beyond the caps, before any Redis subscription), and an accepted one joins
/// its user's and its session's rooms before anything else. The seat is given back on
/// disconnect.
async fn setup<A: Adapter>(
    socket: SocketRef<A>,
    State(chat): State<ChatState>,
    TryData(auth): TryData<serde_json::Value>,
) -> Result<(), Refusal> {
    let identity = handshake::identify(&socket, &chat, auth).await?;
    let seat = chat.census.admit(chat.claims(&identity))?;
    for room in identity.private_rooms() {
        chat.mode.join(&socket, room).await?;
    }
    socket.extensions.insert(Arc::new(seat));
    socket.on_disconnect(release_seat::<A>);
    socket.extensions.insert(identity);
    socket
        .extensions
        .insert(EventQueue::new(chat.limits.events));
    socket.on("join", rooms::join::<A>);
    socket.on("leave", rooms::leave::<A>);
    socket.on("message", messages::message::<A>);
    socket.on("typing", typing::typing::<A>);
    socket.on("dm", dm::dm::<A>);
    socket.on("members", members::members::<A>);
    socket.on("history", history::history::<A>);
    socket.on_fallback(unknown::unknown::<A>);
    Ok(())
}

/// Disconnect handler: gives the socket's seat in the census back.
async fn release_seat<A: Adapter>(socket: SocketRef<A>) {
    socket.extensions.remove::<Arc<Seat>>();
}

/// Connect handler: tells the client which instance serves it. Runs after CONNECT was sent,
/// so `welcome` may reach the client after the acks of its first events.
async fn welcome<A: Adapter>(socket: SocketRef<A>, State(chat): State<ChatState>) {
    tracing::debug!(sid = %socket.id, "socket connected");
    let welcome = Welcome {
        instance: &chat.instance,
        sid: socket.id.to_string(),
    };
    metrics::event_out("welcome");
    if let Err(err) = socket.emit("welcome", &welcome) {
        tracing::debug!(sid = %socket.id, %err, "could not send welcome");
    }
}
