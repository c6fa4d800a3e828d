//! `dm {to, text}`: a direct message to every socket of one user of the sender's tenant, on
//! every instance (through the user's room, `tenancy::user_room`). A user of another tenant is
//! refused exactly like one that does not exist.

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
use crate::{ids::now_ms, metrics, ratelimit::Scope, refusal::Refusal, tenancy, validate};

/// The payload of `dm`.
#[derive(Debug, Deserialize)]
pub(crate) struct DmRequest {
    /// The recipient's user id.
    to: String,
    text: String,
}

/// The `dm` event the recipient's sockets receive.
#[derive(Debug, Serialize)]
struct DirectMessage<'a> {
    id: &'a str,
    /// The sender's display name.
    from: &'a str,
    /// The sender's user id, to answer to.
    user: &'a str,
    text: &'a str,
    ts: u64,
}

/// `dm {to, text}`; the ack is `{id, ts}` like a `message`'s.
pub(crate) async fn dm<A: Adapter>(
    socket: SocketRef<A>,
    identity: Identity,
    turn: Turn,
    State(chat): State<ChatState>,
    ack: AckSender<A>,
    TryData(request): TryData<Object<DmRequest>>,
) {
    answer("dm", turn, ack, async {
        let request = Object::parse(request)?;
        validate::text(&request.text)?;
        // The limit before the directory: whether a user exists is not asked unthrottled.
        chat.mode
            .limit(Scope::Dm, &identity.tenant, &identity.user)
            .await?;
        if !chat.mode.knows(&identity.tenant, &request.to) {
            return Err(Refusal::UnknownUser);
        }
        let settings = chat.mode.settings(&identity.tenant).await;
        validate::text_within(&request.text, settings.max_message_length)?;

        let id = chat.message_ids.next();
        let ts = now_ms();
        let message = DirectMessage {
            id: &id,
            from: identity.name.as_str(),
            user: &identity.user,
            text: &request.text,
            ts,
        };
        let room = tenancy::user_room(&identity.tenant, &request.to);
        let delivery = redis_adapter::confirmed(socket.within(room).emit("dm", &message)).await;
        metrics::event_out("dm");
        Refusal::from_broadcast(delivery)?;
        Ok(Reply::Sent { id, ts })
    })
    .await;
}
