//! `members {room}`: who is in a room one has joined, on every instance (see `presence`).

use super::{
    call::Call,
    reply::{Reply, answer},
    rooms::{RoomRequest, ensure_member},
};
use crate::{presence, tenancy};

/// `members {room}`; the ack is `{members: [{user, name}, ...]}` sorted by user id.
pub(crate) async fn members(call: Call) {
    let Call {
        socket,
        chat,
        identity,
        turn,
        ack,
        payload,
    } = call;
    answer("members", turn, ack, async {
        let room = RoomRequest::parse(payload)?;
        let internal = tenancy::room(&identity.tenant, &room);
        ensure_member(&socket, &internal)?;
        let members = presence::members(socket.nsp(), internal, &identity.tenant, &chat.mode);
        Ok(Reply::Members(members.await))
    })
    .await;
}
