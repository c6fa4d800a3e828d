//! `join` and `leave`: a socket's room memberships on this instance.
//!
//! Memberships are local to the instance serving the socket: the adapter carries room
//! broadcasts to every instance and each one delivers to its own members, so a join needs no
//! cluster round trip.

use serde::Deserialize;
use socketioxide::{
    ParserError,
    adapter::Adapter,
    extract::{AckSender, SocketRef, TryData},
    socket::Socket,
};

use super::{order::Turn, payload::Object, reply::Reply, validate};
use crate::Error;

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
    turn: Turn,
    ack: AckSender<A>,
    TryData(request): TryData<Object<RoomRequest>>,
) {
    let reply = turn
        .run(async {
            let room = RoomRequest::parse(request)?;
            socket.join(room);
            Ok(Reply::ok())
        })
        .await;
    Reply::from(reply).send(ack);
}

/// `leave {room}`: removes the socket from the room; leaving a room one is not in is not an
/// error either, so a client can retry freely.
pub(crate) async fn leave<A: Adapter>(
    socket: SocketRef<A>,
    turn: Turn,
    ack: AckSender<A>,
    TryData(request): TryData<Object<RoomRequest>>,
) {
    let reply = turn
        .run(async {
            let room = RoomRequest::parse(request)?;
            socket.leave(room);
            Ok(Reply::ok())
        })
        .await;
    Reply::from(reply).send(ack);
}

/// Refuses a socket that addresses a room it has not joined.
pub(crate) fn ensure_member<A: Adapter>(socket: &Socket<A>, room: &str) -> Result<(), Error> {
    if socket.rooms().iter().any(|joined| joined == room) {
        Ok(())
    } else {
        Err(Error::NotAMember)
    }
}
