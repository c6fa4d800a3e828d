//! `message {room, text}`: a chat line for every member of the room, on every instance,
//! the sender included; the sender's ack returns the message's `{id, ts}`.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
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
};
use crate::{
    ids::{self, now_ms},
    metrics,
    ratelimit::Scope,
    refusal::Refusal,
    tenancy, validate,
};

/// The payload of `message`.
#[derive(Debug, Deserialize)]
pub(crate) struct MessageRequest {
    room: String,
    text: String,
}

/// The `message` event the members receive.
#[derive(Debug, Serialize)]
struct ChatMessage<'a> {
    room: &'a str,
    id: &'a str,
    from: &'a str,
    text: &'a str,
    ts: u64,
}

/// Message ids unique across the cluster and across restarts: a random per-process token and a
/// counter, e.g. `3f9a1c2e7b40-17`.
#[derive(Debug)]
pub(crate) struct MessageIds {
    token: String,
    next: AtomicU64,
}

impl MessageIds {
    /// A generator with a fresh random token.
    pub(crate) fn new() -> Self {
        Self {
            token: ids::process_token(),
            next: AtomicU64::new(1),
        }
    }

    /// The next id.
    pub(crate) fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.token)
    }
}

/// `message {room, text}`: counted against the sender's rate limit, checked against the
/// tenant's `max_message_length`.
pub(crate) async fn message<A: Adapter>(
    socket: SocketRef<A>,
    identity: Identity,
    turn: Turn,
    State(chat): State<ChatState>,
    ack: AckSender<A>,
    TryData(request): TryData<Object<MessageRequest>>,
) {
    answer("message", turn, ack, async {
        // Local checks first, then the ones that may ask Redis (the rate limit, and the
        // settings on a cache miss): a refused line costs no round trip.
        let request = Object::parse(request)?;
        validate::room(&request.room)?;
        validate::text(&request.text)?;
        let room = tenancy::room(&identity.tenant, &request.room);
        identity.joined.ensure_member(&room)?;
        chat.mode
            .limit(Scope::Message, &identity.tenant, &identity.user)
            .await?;
        let settings = chat.mode.settings(&identity.tenant).await;
        validate::text_within(&request.text, settings.max_message_length)?;

        let id = chat.message_ids.next();
        let ts = now_ms();
        let message = ChatMessage {
            room: &request.room,
            id: &id,
            from: identity.name.as_str(),
            text: &request.text,
            ts,
        };
        // `within` keeps the sender among the recipients (`to` would exclude it).
        // The ack tells the sender every instance can see the message: wait for Redis.
        let delivery =
            redis_adapter::confirmed(socket.within(room).emit("message", &message)).await;
        metrics::event_out("message");
        Refusal::from_broadcast(delivery)?;
        Ok(Reply::Sent { id, ts })
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_share_the_process_token() {
        let ids = MessageIds::new();
        let (a, b) = (ids.next(), ids.next());
        assert_ne!(a, b);
        assert_eq!(a.split('-').next(), b.split('-').next());
        assert_ne!(MessageIds::new().next(), MessageIds::new().next());
    }
}
