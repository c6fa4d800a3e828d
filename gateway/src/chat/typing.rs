//! `typing {room}`: a volatile notice to the other members of the room (never the sender);
//! dropped rather than queued for a member whose connection is busy or during a Redis outage.

use serde::Serialize;
use socketioxide::{
    adapter::Adapter,
    extract::{AckSender, SocketRef, TryData},
};

use super::{
    identity::Identity,
    order::Turn,
    payload::Object,
    reply::{Reply, answer},
    rooms,
};
use crate::{metrics, refusal::Refusal, tenancy};

/// The `typing` event the other members receive.
#[derive(Debug, Serialize)]
struct TypingNotice<'a> {
    room: &'a str,
    from: &'a str,
}

/// `typing {room}`; the ack, if asked for, is `{ok: true}`.
pub(crate) async fn typing<A: Adapter>(
    socket: SocketRef<A>,
    identity: Identity,
    turn: Turn,
    ack: AckSender<A>,
    TryData(request): TryData<Object<rooms::RoomRequest>>,
) {
    answer("typing", turn, ack, async {
        let room = rooms::RoomRequest::parse(request)?;
        let internal = tenancy::room(&identity.tenant, &room);
        identity.joined.ensure_member(&internal)?;
        let notice = TypingNotice {
            room: &room,
            from: identity.name.as_str(),
        };
        let delivery = socket.to(internal).volatile().emit("typing", &notice).await;
        metrics::event_out("typing");
        // Volatile: a notice the cluster could not carry is dropped, like one a busy
        // member could not take; the sender is not told.
        if let Err(err) = Refusal::from_broadcast(delivery) {
            tracing::debug!(%err, "typing notice not delivered everywhere");
        }
        Ok(Reply::ok())
    })
    .await;
}
