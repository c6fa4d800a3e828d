//! `join` and `leave`: a socket's room memberships on this instance.
//!
//! Memberships are local to the instance serving the socket; over Redis, joining subscribes
//! this instance to the room's channel (acked once Redis confirmed it), so room broadcasts
//! reach exactly the instances holding members. A client names a
//! room of its own tenant; the socket joins the tenant-scoped room (`tenancy::room`). A `join`
//! is refused with `room_full` when the room already has the tenant's `max_room_members`
//! across the cluster, and with `too_many_rooms` when the socket is already in
//! `--max-rooms-per-socket` chat rooms (checked in process, before any Redis work).

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, PoisonError},
};

use serde::Deserialize;
use socketioxide::{
    ParserError,
    adapter::Adapter,
    extract::{AckSender, SocketRef, State, TryData},
    socket::Socket,
};

use super::{
    ChatState, catch_up,
    identity::Identity,
    order::Turn,
    payload::Object,
    reply::{Reply, answer},
};
use crate::{history::MessageId, refusal::Refusal, tenancy, validate};

/// The payload of `join`: a room, and the id of the last message seen in it, if any.
#[derive(Debug, Deserialize)]
pub(crate) struct JoinRequest {
    /// The room's name.
    room: String,
    /// The last message id the client saw in the room: what followed it is replayed.
    since: Option<String>,
}

/// The payload of `leave` and `typing`.
#[derive(Debug, Deserialize)]
pub(crate) struct RoomRequest {
    /// The room's name.
    room: String,
}

impl RoomRequest {
    /// The validated room name of a request as it came off the wire.
    pub(crate) fn parse(request: Result<Object<Self>, ParserError>) -> Result<String, Refusal> {
        let request = Object::parse(request)?;
        validate::room(&request.room)?;
        Ok(request.room)
    }
}

/// The chat rooms (internal names) one socket has joined, kept with its identity: `message`
/// asks this set rather than copying the socket's whole room set out of the adapter for every
/// line. Only `join` and `leave` change a socket's chat rooms, and a socket's events run one
/// at a time, so the set and the adapter agree whenever a handler looks.
#[derive(Clone, Debug, Default)]
pub(crate) struct Joined(Arc<Mutex<HashSet<String>>>);

impl Joined {
    fn contains(&self, room: &str) -> bool {
        self.lock().contains(room)
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    /// Refuses a socket that addresses a room (internal name) it has not joined.
    pub(crate) fn ensure_member(&self, room: &str) -> Result<(), Refusal> {
        if self.contains(room) {
            Ok(())
        } else {
            Err(Refusal::NotAMember)
        }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `join {room, since?}`: adds the socket to the room; joining twice is not an error. With
/// `since`, what followed that message is replayed first (`catch_up`).
pub(crate) async fn join<A: Adapter>(
    socket: SocketRef<A>,
    identity: Identity,
    turn: Turn,
    State(chat): State<ChatState>,
    ack: AckSender<A>,
    TryData(request): TryData<Object<JoinRequest>>,
) {
    answer("join", turn, ack, async {
        let request = Object::parse(request)?;
        validate::room(&request.room)?;
        let since = request
            .since
            .as_deref()
            .map(str::parse::<MessageId>)
            .transpose()
            .map_err(|err| Refusal::InvalidPayload(format!("since: {err}")))?;
        let name = request.room;
        let room = tenancy::room(&identity.tenant, &name);
        if identity.joined.contains(&room) {
            return Ok(Reply::ok());
        }
        if identity.joined.len() >= chat.limits.max_rooms {
            return Err(Refusal::TooManyRooms(chat.limits.max_rooms));
        }
        let settings = chat.mode.settings(&identity.tenant).await;
        let limit = usize::try_from(settings.max_room_members).unwrap_or(usize::MAX);
        if members(&socket, &room).await >= limit {
            return Err(Refusal::RoomFull);
        }
        if let Some(since) = since {
            let max = usize::try_from(settings.history_max_messages).unwrap_or(usize::MAX);
            return catch_up::join_since(&socket, &chat, &identity, (room, name), since, max).await;
        }
        chat.mode.join(&socket, room.clone()).await?;
        identity.joined.lock().insert(room);
        Ok(Reply::ok())
    })
    .await;
}

/// `leave {room}`: removes the socket from the room; leaving a room one is not in is not an
/// error either, so a client can retry freely.
pub(crate) async fn leave<A: Adapter>(
    socket: SocketRef<A>,
    identity: Identity,
    turn: Turn,
    State(chat): State<ChatState>,
    ack: AckSender<A>,
    TryData(request): TryData<Object<RoomRequest>>,
) {
    answer("leave", turn, ack, async {
        let room = RoomRequest::parse(request)?;
        let room = tenancy::room(&identity.tenant, &room);
        identity.joined.lock().remove(&room);
        chat.mode.leave(&socket, room);
        Ok(Reply::ok())
    })
    .await;
}

/// Members of `room` on every live instance. When the other instances cannot be asked
/// (Redis down), this instance's members: the limit fails open like the rate limits.
async fn members<A: Adapter>(socket: &Socket<A>, room: &str) -> usize {
    match socket.within(room.to_owned()).fetch_sockets().await {
        Ok(sockets) => sockets.len(),
        Err(err) => {
            tracing::debug!(%err, "room size not known cluster-wide: counting local members");
            socket.within(room.to_owned()).local().sockets().len()
        }
    }
}
