//! `join` and `leave`: a socket's room memberships on this instance.
//!
//! Memberships are local to the instance serving the socket; over Redis, joining subscribes
//! this instance to the room's channel (acked once Redis confirmed it), so room broadcasts
//! reach exactly the instances holding members. A client names a
//! room of its own tenant; the socket joins the tenant-scoped room (`tenancy::room`). A `join`
//! is refused with `room_full` when the room already has the tenant's `max_room_members`
//! across the cluster.

use serde::Deserialize;
use socketioxide::{
    ParserError,
    adapter::Adapter,
    extract::{AckSender, SocketRef, State, TryData},
    socket::Socket,
};

use super::{ChatState, identity::Identity, order::Turn, payload::Object, reply::Reply, validate};
use crate::{Error, metrics, tenancy};

/// The payload of `join`, `leave` and `typing`.
#[derive(Debug, Deserialize)]
pub(crate) struct RoomRequest {
    /// The room's name.
    room: String,
}

impl RoomRequest {
    /// The validated room name of a request as it came off the wire.
    pub(crate) fn parse(request: Result<Object<Self>, ParserError>) -> Result<String, Error> {
        let request = Object::parse(request)?;
        validate::room(&request.room)?;
        Ok(request.room)
    }
}

/// `join {room}`: adds the socket to the room; joining twice is not an error.
pub(crate) async fn join<A: Adapter>(
    socket: SocketRef<A>,
    identity: Identity,
    turn: Turn,
    State(chat): State<ChatState>,
    ack: AckSender<A>,
    TryData(request): TryData<Object<RoomRequest>>,
) {
    metrics::event_in("join");
    let reply = turn
        .run(async {
            let room = RoomRequest::parse(request)?;
            let room = tenancy::room(&identity.tenant, &room);
            if is_member(&socket, &room) {
                return Ok(Reply::ok());
            }
            let settings = chat.settings(&identity.tenant).await;
            let limit = usize::try_from(settings.max_room_members).unwrap_or(usize::MAX);
            if members(&socket, &room).await >= limit {
                return Err(Error::RoomFull);
            }
            chat.join_room(&socket, room).await?;
            Ok(Reply::ok())
        })
        .await;
    Reply::to("join", reply).send(ack);
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
    metrics::event_in("leave");
    let reply = turn
        .run(async {
            let room = RoomRequest::parse(request)?;
            chat.leave_room(&socket, tenancy::room(&identity.tenant, &room));
            Ok(Reply::ok())
        })
        .await;
    Reply::to("leave", reply).send(ack);
}

/// Refuses a socket that addresses a room (internal name) it has not joined.
pub(crate) fn ensure_member<A: Adapter>(socket: &Socket<A>, room: &str) -> Result<(), Error> {
    if is_member(socket, room) {
        Ok(())
    } else {
        Err(Error::NotAMember)
    }
}

fn is_member<A: Adapter>(socket: &Socket<A>, room: &str) -> bool {
    socket.rooms().iter().any(|joined| joined == room)
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
