//! `members {room}`: who is in a room one has joined, on every instance (see `presence`).

use socketioxide::{
    adapter::Adapter,
    extract::{AckSender, SocketRef, State, TryData},
};

use super::{
    ChatState,
    identity::Identity,
    order::Turn,
    payload::Object,
    reply::{Reply, answer},
    rooms,
};
use crate::{presence, tenancy};

/// `members {room}`; the ack is `{members: [{user, name}, ...]}` sorted by user id.
pub(crate) async fn members<A: Adapter>(
    socket: SocketRef<A>,
    identity: Identity,
    turn: Turn,
    State(chat): State<ChatState>,
    ack: AckSender<A>,
    TryData(request): TryData<Object<rooms::RoomRequest>>,
) {
    answer("members", turn, ack, async {
        let room = rooms::RoomRequest::parse(request)?;
        let internal = tenancy::room(&identity.tenant, &room);
        identity.joined.ensure_member(&internal)?;
        let members = presence::members(socket.within(internal), &identity.tenant, &chat.mode);
        Ok(Reply::Members(members.await))
    })
    .await;
}
