//! `typing {room}`: a volatile notice to the other members of the room (never the sender);
//! dropped rather than queued for a member whose connection is busy or during a Redis outage.

use serde::Serialize;

use super::{
    call::Request,
    reply::Reply,
    rooms::{RoomRequest, ensure_member},
};
use crate::{metrics, refusal::Refusal, tenancy};

/// The `typing` event the other members receive.
#[derive(Debug, Serialize)]
struct TypingNotice<'a> {
    room: &'a str,
    from: &'a str,
}

/// `typing {room}`; the ack, if asked for, is `{ok: true}`.
pub(crate) async fn typing(request: Request) -> Result<Reply, Refusal> {
    let room = RoomRequest::parse(request.payload.as_ref())?;
    let internal = tenancy::room(&request.identity.tenant, &room);
    ensure_member(&request.socket, &internal)?;
    let notice = TypingNotice {
        room: &room,
        from: request.identity.name.as_str(),
    };
    let delivery = request
        .socket
        .to([internal])
        .volatile()
        .emit_now("typing", &notice);
    metrics::event_out("typing");
    // Volatile: a notice the cluster could not carry is dropped, like one a busy
    // member could not take; the sender is not told.
    if let Err(err) = Refusal::from_broadcast(delivery) {
        tracing::debug!(%err, "typing notice not delivered");
    }
    Ok(Reply::ok())
}
