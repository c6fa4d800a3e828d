//! Who is in a room, on every instance: the users (id and display name) whose sockets are
//! members, each once however many sockets they hold. Read by the socket `members` event and
//! by `GET /api/v1/rooms/{room}/presence`.
//!
//! One cluster-wide request: the rooms of the room's members (a `fetch_sockets` of the room)
//! include each member's private user room, which names the user. The request waits at most
//! the request timeout; when the other instances cannot be asked, this instance's members
//! answer.

use engine::sockets::Nsp;
use redis_adapter::Selection;
use serde::Serialize;

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
pub(crate) async fn members(chat: &Nsp, room: String, tenant: &str, mode: &Mode) -> Members {
    let selection = Selection::room(room);
    let sockets = match chat.fetch_sockets(&selection).await {
        Ok(sockets) => sockets,
        Err(err) => {
            tracing::debug!(%err, "members not known cluster-wide: listing local ones");
            chat.local_views(&selection)
        }
    };
    let users_prefix = tenancy::user_room(tenant, "");
    let mut members: Vec<Member> = sockets
        .iter()
        .flat_map(|socket| &socket.rooms)
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
