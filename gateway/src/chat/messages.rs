//! `message {room, text}`: a chat line for every member of the room, on every instance,
//! the sender included, stored in the room's history first; the sender's ack returns the
//! message's `{id, key, ts}` (`id: null, pending: true` while spooled; see `deliver`).

use serde::Deserialize;

use super::{
    call::Request,
    deliver::{Line, deliver},
    payload::Object,
    reply::Reply,
    rooms::ensure_member,
};
use crate::{history::Audience, ratelimit::Scope, refusal::Refusal, tenancy, validate};

/// The payload of `message`.
#[derive(Debug, Deserialize)]
pub(crate) struct MessageRequest {
    room: String,
    text: String,
}

/// `message {room, text}`: checked against the tenant's `max_message_length` and counted
/// against the sender's rate limit.
pub(crate) async fn message(request: Request) -> Result<Reply, Refusal> {
    let (mode, tenant) = (&request.chat.mode, &request.identity.tenant);
    // Local checks first, then the settings (cached) and the script that counts and
    // stores: a refused line costs no round trip.
    let body = Object::<MessageRequest>::parse(request.payload.as_ref())?;
    validate::room(&body.room)?;
    validate::text(&body.text)?;
    let room = tenancy::room(tenant, &body.room);
    ensure_member(&request.socket, &room)?;
    let settings = mode.settings(tenant).await;
    validate::text_within(&body.text, settings.max_message_length)?;
    let line = Line {
        stream: mode.room_stream(tenant, &body.room),
        audience: Audience::Room {
            room,
            name: body.room,
        },
        text: body.text,
    };
    deliver(&request, Scope::Message, line, settings.retention()).await
}
