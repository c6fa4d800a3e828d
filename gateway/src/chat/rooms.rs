//! `join` and `leave`: a socket's room memberships on this instance.
//!
//! Memberships are local to the instance serving the socket; over Redis, joining subscribes
//! this instance to the room's channel (acked once Redis confirmed it), so room broadcasts
//! reach exactly the instances holding members. A client names a
//! room of its own tenant; the socket joins the tenant-scoped room (`tenancy::room`). A `join`
//! is refused with `room_full` when the room already has the tenant's `max_room_members`
//! across the cluster, and with `too_many_rooms` when the socket is already in
//! `--max-rooms-per-socket` chat rooms (checked in process, before any Redis work).

use engine::sockets::Socket;
use redis_adapter::Selection;
use serde::Deserialize;
use serde_json::Value;

use super::{call::Request, catch_up, payload::Object, reply::Reply};
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
    pub(crate) fn parse(payload: Option<&Value>) -> Result<String, Refusal> {
        let request = Object::<Self>::parse(payload)?;
        validate::room(&request.room)?;
        Ok(request.room)
    }
}

/// Refuses a socket that addresses a room (internal name) it is not in. The socket's own
/// room set is asked, so a join or leave by the Redis emitter counts as well.
pub(crate) fn ensure_member(socket: &Socket, room: &str) -> Result<(), Refusal> {
    if socket.in_room(room) {
        Ok(())
    } else {
        Err(Refusal::NotAMember)
    }
}

/// The chat rooms `socket` is in (its private rooms not counted).
fn chat_rooms(socket: &Socket) -> usize {
    socket
        .rooms()
        .iter()
        .filter(|room| tenancy::is_chat_room(room))
        .count()
}

/// `join {room, since?}`: adds the socket to the room; joining twice is not an error. With
/// `since`, what followed that message is replayed first (`catch_up`).
pub(crate) async fn join(request: Request) -> Result<Reply, Refusal> {
    let (mode, tenant) = (&request.chat.mode, &request.identity.tenant);
    let body = Object::<JoinRequest>::parse(request.payload.as_ref())?;
    validate::room(&body.room)?;
    let since = body
        .since
        .as_deref()
        .map(str::parse::<MessageId>)
        .transpose()
        .map_err(|err| Refusal::InvalidPayload(format!("since: {err}")))?;
    let name = body.room;
    let room = tenancy::room(tenant, &name);
    if request.socket.in_room(&room) {
        return Ok(Reply::ok());
    }
    if chat_rooms(&request.socket) >= request.chat.limits.max_rooms {
        return Err(Refusal::TooManyRooms(request.chat.limits.max_rooms));
    }
    let settings = mode.settings(tenant).await;
    let limit = usize::try_from(settings.max_room_members).unwrap_or(usize::MAX);
    if members(&request.socket, &room).await >= limit {
        return Err(Refusal::RoomFull);
    }
    request.chat.relayed.joining(&room);
    if let Some(since) = since {
        let max = usize::try_from(settings.history_max_messages).unwrap_or(usize::MAX);
        return catch_up::join_since(&request, (room, name), since, max).await;
    }
    request
        .socket
        .join(room)
        .await
        .map_err(Refusal::from_subscribe)?;
    Ok(Reply::ok())
}

/// `leave {room}`: removes the socket from the room; leaving a room one is not in is not an
/// error either, so a client can retry freely.
pub(crate) async fn leave(request: Request) -> Result<Reply, Refusal> {
    let room = RoomRequest::parse(request.payload.as_ref())?;
    request
        .socket
        .leave(&tenancy::room(&request.identity.tenant, &room));
    Ok(Reply::ok())
}

/// Members of `room` on every live instance. When the other instances cannot be asked
/// (Redis down), this instance's members: the limit fails open like the rate limits.
async fn members(socket: &Socket, room: &str) -> usize {
    let selection = Selection::room(room.to_owned());
    match socket.nsp().fetch_sockets(&selection).await {
        Ok(sockets) => sockets.len(),
        Err(err) => {
            tracing::debug!(%err, "room size not known cluster-wide: counting local members");
            socket.nsp().local_sockets(&selection).len()
        }
    }
}
