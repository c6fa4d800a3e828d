//! `members {room}`: who is in a room, on every instance. The answer lists the users (id and
//! display name) whose sockets are members, each once however many tabs they have open.
//!
//! One cluster-wide request: the rooms of the room's members (`within(room).rooms()`) include
//! each member's private user room, which names the user. The request waits at most the
//! request timeout; when the other instances cannot be asked, this instance's members answer.

use serde::Serialize;
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
use crate::tenancy;

/// One member in the answer.
#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Member {
    /// The user id.
    pub(crate) user: String,
    /// The display name.
    pub(crate) name: String,
}

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
        let member_rooms = match socket.within(internal.clone()).rooms().await {
            Ok(rooms) => rooms,
            Err(err) => {
                tracing::debug!(%err, "members not known cluster-wide: listing local ones");
                socket
                    .within(internal)
                    .local()
                    .rooms()
                    .await
                    .unwrap_or_default()
            }
        };
        let users_prefix = tenancy::user_room(&identity.tenant, "");
        let mut members: Vec<Member> = member_rooms
            .iter()
            .filter_map(|room| room.strip_prefix(users_prefix.as_str()))
            .map(|user| Member {
                user: user.to_owned(),
                name: chat.mode.display_name(&identity.tenant, user),
            })
            .collect();
        members.sort();
        members.dedup();
        Ok(Reply::Members { members })
    })
    .await;
}
