//! The chat protocol on namespace `/`: connection setup and one handler per event.
//!
//! A chat line flows: `handshake` (who, which tenant) -> `messages::message` (rate limit,
//! validate, membership of the tenant's room, tenant settings) -> `socket.within(room).emit`
//! -> the adapter (local members at once, then the other instances) -> their local members.

mod dm;
mod expiry;
mod handshake;
mod identity;
mod members;
mod messages;
mod order;
mod payload;
mod reply;
mod rooms;
mod typing;
mod unknown;
mod validate;

use std::sync::Arc;

use redis_adapter::RedisAdapterState;
use serde::Serialize;
use socketioxide::{
    SocketIo,
    adapter::Adapter,
    extract::{SocketRef, State, TryData},
    handler::ConnectHandler,
    socket::Socket,
};
use socketioxide_core::adapter::DefinedAdapter;

use crate::{Error, accounts::Accounts, cache::TenantSettings, metrics, ratelimit::Scope, tenancy};
pub(crate) use expiry::spawn as spawn_session_check;
use identity::Identity;
use messages::MessageIds;
pub(crate) use messages::now_ms;
use order::EventQueue;
pub(crate) use validate::name as validate_name;
pub(crate) use validate::room as validate_room;

/// What every chat handler shares, installed as socketioxide state.
#[derive(Clone)]
pub(crate) struct ChatState {
    /// This instance's id, sent to clients in `welcome`.
    instance: Arc<str>,
    /// The source of message ids.
    message_ids: Arc<MessageIds>,
    /// Sessions, limits and tenant settings; `None` in standalone (development) mode.
    accounts: Option<Arc<Accounts>>,
    /// The Redis adapter's join path; `None` on the in-memory adapter.
    adapter: Option<RedisAdapterState>,
}

impl ChatState {
    /// The chat state of instance `instance`, with `accounts` and the Redis `adapter` when
    /// Redis is configured.
    pub(crate) fn new(
        instance: &str,
        accounts: Option<Arc<Accounts>>,
        adapter: Option<RedisAdapterState>,
    ) -> Self {
        Self {
            instance: instance.into(),
            message_ids: Arc::new(MessageIds::new()),
            accounts,
            adapter,
        }
    }

    /// Puts `socket` in `room`. Over Redis this returns once this instance is subscribed to
    /// the room, so the socket misses nothing sent after it joined.
    async fn join_room<A: Adapter>(&self, socket: &Socket<A>, room: String) -> Result<(), Error> {
        match &self.adapter {
            Some(adapter) => adapter
                .join(socket.ns(), socket.id, room)
                .await
                .map_err(|err| {
                    tracing::debug!(%err, "room not subscribed: the join is refused");
                    Error::ClusterUnavailable
                }),
            None => {
                socket.join(room);
                Ok(())
            }
        }
    }

    /// Takes `socket` out of `room`; over Redis the room is let go once empty for a moment.
    fn leave_room<A: Adapter>(&self, socket: &Socket<A>, room: String) {
        match &self.adapter {
            Some(adapter) => {
                if let Err(err) = adapter.leave(socket.ns(), socket.id, room.clone()) {
                    tracing::debug!(%err, "leaving through socketioxide");
                    socket.leave(room);
                }
            }
            None => socket.leave(room),
        }
    }

    /// Counts one event of `identity`'s user in `scope` (no limits in standalone mode).
    async fn limit(&self, scope: Scope, identity: &Identity) -> Result<(), Error> {
        match &self.accounts {
            Some(accounts) => accounts.limiter.check(scope, &identity.rate_id()).await,
            None => Ok(()),
        }
    }

    /// `tenant`'s settings (the defaults in standalone mode).
    async fn settings(&self, tenant: &str) -> TenantSettings {
        match &self.accounts {
            Some(accounts) => accounts.settings.get(tenant).await,
            None => TenantSettings::default(),
        }
    }

    /// Whether `user` is a user of `tenant` (in standalone mode: whether it could be a
    /// socket id).
    /// The display name of `user` in `tenant`: the directory's, else (standalone mode, where
    /// users are sockets) the id itself.
    fn display_name(&self, tenant: &str, user: &str) -> String {
        self.accounts
            .as_ref()
            .and_then(|accounts| accounts.member(tenant, user))
            .map_or_else(|| user.to_owned(), |found| found.name.to_string())
    }

    fn knows(&self, tenant: &str, user: &str) -> bool {
        match &self.accounts {
            Some(accounts) => accounts.member(tenant, user).is_some(),
            None => tenancy::valid_id(user),
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
/// the socket is connected), together with the identity and the event queue they use.
///
/// Authentication comes first (`handshake`): a refused socket (CONNECT_ERROR with the reason)
/// has joined no room and has no handler. An accepted one joins its user's and its session's
/// rooms before anything else.
async fn setup<A: Adapter>(
    socket: SocketRef<A>,
    State(chat): State<ChatState>,
    TryData(auth): TryData<serde_json::Value>,
) -> Result<(), Error> {
    let identity = handshake::identify(&socket, &chat, auth).await?;
    for room in identity.private_rooms() {
        chat.join_room(&socket, room).await?;
    }
    socket.extensions.insert(identity);
    socket.extensions.insert(EventQueue::default());
    socket.on("join", rooms::join::<A>);
    socket.on("leave", rooms::leave::<A>);
    socket.on("message", messages::message::<A>);
    socket.on("typing", typing::typing::<A>);
    socket.on("dm", dm::dm::<A>);
    socket.on("members", members::members::<A>);
    socket.on_fallback(unknown::unknown::<A>);
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
    metrics::event_out("welcome");
    if let Err(err) = socket.emit("welcome", &welcome) {
        tracing::debug!(sid = %socket.id, %err, "could not send welcome");
    }
}
