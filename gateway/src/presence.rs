//! Who is in a room, on every instance: the users (id and display name) whose sockets are
//! members, each once however many sockets they hold. Read by the socket `members` event and
//! by `GET /api/v1/rooms/{room}/presence`.
//!
//! One cluster-wide request: the rooms of the room's members (`rooms()` of the room) include
//! each member's private user room, which names the user. The request waits at most the
//! request timeout; when the other instances cannot be asked, this instance's members answer.

use serde::Serialize;
use socketioxide::{adapter::Adapter, operators::BroadcastOperators};

use crate::{mode::Mode, tenancy};

/// One member.
#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Member {
    /// The user id.
    pub(crate) user: String,
    /// The display name.
    pub(crate) name: String,
}

/// Who is in a room: `{members: [{user, name}, ...]}`, sorted by user id.
#[derive(Debug, Serialize)]
pub(crate) struct Members {
    /// One entry per user.
    pub(crate) members: Vec<Member>,
}

/// The members of the room `room` selects (one tenant-scoped room of `tenant`).
pub(crate) async fn members<A: Adapter>(
    room: BroadcastOperators<A>,
    tenant: &str,
    mode: &Mode,
) -> Members {
    let member_rooms = match room.clone().rooms().await {
        Ok(rooms) => rooms,
        Err(err) => {
            tracing::debug!(%err, "members not known cluster-wide: listing local ones");
            room.local().rooms().await.unwrap_or_default()
        }
    };
    let users_prefix = tenancy::user_room(tenant, "");
    let mut members: Vec<Member> = member_rooms
        .iter()
        .filter_map(|room| room.strip_prefix(users_prefix.as_str()))
        .map(|user| Member {
            user: user.to_owned(),
            name: mode.display_name(tenant, user),
        })
        .collect();
    members.sort();
    members.dedup();
    Members { members }
}
