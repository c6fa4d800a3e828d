//! The chat's record of each socket's rooms ([`Joined`](super::rooms::Joined)) kept in step
//! with the Socket.IO Redis emitter's `socketsJoin` and `socketsLeave`: a socket a backend
//! moved into a tenant's room may talk there (`message`, `typing`), one moved out may not.
//! The emitter's rules ([`crate::emitter`]) already allowed only that tenant's chat rooms;
//! each socket's own tenant is checked once more here. A join by the emitter is not held to
//! the socket's `--max-rooms`: the backend is trusted for its tenant.

use redis_adapter::{MembershipChange, RedisAdapterState, Room};
use socketioxide::{SocketIo, adapter::Adapter};

use super::identity::Identity;
use crate::tenancy::{self, CHAT_NS, Kind};

/// Has the adapter tell the chat of the emitter's joins and leaves on `io`'s sockets.
pub(crate) fn track<A: Adapter>(adapter: &RedisAdapterState, io: SocketIo<A>) {
    adapter.on_emitter_membership(move |ns, sids, rooms, change| {
        if ns != CHAT_NS {
            return;
        }
        let Some(chat) = io.of(CHAT_NS) else {
            return;
        };
        for &sid in sids {
            let Some(identity) = chat
                .get_socket(sid)
                .and_then(|socket| socket.extensions.get::<Identity>())
            else {
                continue;
            };
            let mut joined = identity.joined.lock();
            for room in rooms
                .iter()
                .filter(|room| is_chat_room_of(room, &identity.tenant))
            {
                match change {
                    MembershipChange::Joined => joined.insert(room.to_string()),
                    MembershipChange::Left => joined.remove(room.as_ref()),
                };
            }
        }
    });
}

/// Whether `room` is one of `tenant`'s chat rooms.
fn is_chat_room_of(room: &Room, tenant: &str) -> bool {
    matches!(tenancy::parse(room), Some((owner, Kind::Room, _)) if owner == tenant)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_sockets_own_tenants_chat_rooms_count() {
        let room = |name: &'static str| Room::Borrowed(name);
        assert!(is_chat_room_of(&room("t:acme:r:ops"), "acme"));
        assert!(!is_chat_room_of(&room("t:globex:r:ops"), "acme"));
        assert!(!is_chat_room_of(&room("t:acme:u:carol"), "acme"));
        assert!(!is_chat_room_of(&room("ops"), "acme"));
    }
}
