//! `members {room}`: who is in a room one has joined, on every instance (see `presence`).

use super::{
    call::Request,
    reply::Reply,
    rooms::{RoomRequest, ensure_member},
};
use crate::{presence, refusal::Refusal, tenancy};

/// `members {room}`; the ack is `{members: [{user, name}, ...]}` sorted by user id.
pub(crate) async fn members(request: Request) -> Result<Reply, Refusal> {
    let room = RoomRequest::parse(request.payload.as_ref())?;
    let internal = tenancy::room(&request.identity.tenant, &room);
    ensure_member(&request.socket, &internal)?;
    let members = presence::members(
        request.socket.nsp(),
        internal,
        &request.identity.tenant,
        &request.chat.mode,
    );
    Ok(Reply::Members(members.await))
}
