//! `message {room, text}`: a chat line for every member of the room, on every instance,
//! the sender included, stored in the room's history first; the sender's ack returns the
//! message's `{id, key, ts}` (`id: null, pending: true` while spooled; see `deliver`).

use serde::Deserialize;

use super::{
    call::Call,
    deliver::{Line, deliver},
    payload::Object,
    reply::answer,
    rooms::ensure_member,
};
use crate::{history::Audience, ratelimit::Scope, tenancy, validate};

/// The payload of `message`.
#[derive(Debug, Deserialize)]
pub(crate) struct MessageRequest {
    room: String,
    text: String,
}

/// `message {room, text}`: checked against the tenant's `max_message_length` and counted
/// against the sender's rate limit.
pub(crate) async fn message(call: Call) {
    let Call {
        socket,
        chat,
        identity,
        turn,
        ack,
        payload,
    } = call;
    answer("message", turn, ack, async {
        // Local checks first, then the settings (cached) and the script that counts and
        // stores: a refused line costs no round trip.
        let request = Object::<MessageRequest>::parse(payload)?;
        validate::room(&request.room)?;
        validate::text(&request.text)?;
        let room = tenancy::room(&identity.tenant, &request.room);
        ensure_member(&socket, &room)?;
        let settings = chat.mode.settings(&identity.tenant).await;
        validate::text_within(&request.text, settings.max_message_length)?;
        let line = Line {
            stream: chat.mode.room_stream(&identity.tenant, &request.room),
            audience: Audience::Room {
                room,
                name: request.room,
            },
            text: request.text,
        };
        deliver(
            &socket,
            &chat,
            Scope::Message,
            &identity,
            line,
            settings.retention(),
        )
        .await
    })
    .await;
}
