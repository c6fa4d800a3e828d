//! `dm {to, text}`: a direct message to every socket of one user of the sender's tenant, on
//! every instance (through the user's room, `tenancy::user_room`), stored in the
//! conversation's history first. A user of another tenant is refused exactly like one that
//! does not exist. A recipient with no socket connected anywhere is notified through the
//! background jobs (`jobs::DmNotification`).

use std::sync::Arc;

use engine::sockets::Nsp;
use redis_adapter::Selection;
use serde::Deserialize;

use super::{
    ChatState,
    call::Request,
    deliver::{Line, deliver},
    payload::Object,
    reply::Reply,
};
use crate::{
    history::Audience, jobs::DmNotification, ratelimit::Scope, refusal::Refusal, tenancy, validate,
};

/// The payload of `dm`.
#[derive(Debug, Deserialize)]
pub(crate) struct DmRequest {
    /// The recipient's user id.
    to: String,
    text: String,
}

/// `dm {to, text}`; the ack is `{id, key, ts}` like a `message`'s. The recipients receive
/// `dm {id, key, from, user, text, ts}` (`user`: the sender's id, to answer to).
pub(crate) async fn dm(request: Request) -> Result<Reply, Refusal> {
    let (mode, tenant) = (&request.chat.mode, &request.identity.tenant);
    let body = Object::<DmRequest>::parse(request.payload.as_ref())?;
    validate::text(&body.text)?;
    if !mode.knows(tenant, &body.to) {
        // Counted like a sent one: whether a user exists is not asked unthrottled.
        mode.limit(Scope::Dm, tenant, &request.identity.user)
            .await?;
        return Err(Refusal::UnknownUser);
    }
    let settings = mode.settings(tenant).await;
    validate::text_within(&body.text, settings.max_message_length)?;
    let room = tenancy::user_room(tenant, &body.to);
    let line = Line {
        stream: mode.dm_stream(tenant, &request.identity.user, &body.to),
        audience: Audience::Dm { room: room.clone() },
        text: body.text.clone(),
    };
    let reply = deliver(&request, Scope::Dm, line, settings.retention()).await?;
    if let Reply::Sent { id, key, ts, .. } = &reply {
        let notification = DmNotification {
            tenant: request.identity.tenant.to_string(),
            to_user: body.to,
            from_name: request.identity.name.as_str().to_owned(),
            text: body.text,
            // A spooled message has no id yet: its key is as unique.
            id: id.clone().unwrap_or_else(|| key.clone()),
            ts: *ts,
        };
        notify_if_offline(request.socket.nsp(), &request.chat, room, notification);
    }
    Ok(reply)
}

/// After the ack: asks every instance whether the recipient has a socket, and if none has,
/// enqueues the notification. When the instances cannot be asked, nobody is notified (the
/// message is in the conversation's history either way).
fn notify_if_offline(nsp: &Arc<Nsp>, chat: &ChatState, room: String, notification: DmNotification) {
    let recipients = Selection::room(room);
    let (nsp, mode) = (nsp.clone(), chat.mode.clone());
    tokio::spawn(async move {
        match nsp.fetch_sockets(&recipients).await {
            Ok(sockets) if sockets.is_empty() => mode.notify_offline_dm(notification).await,
            Ok(_) => {}
            Err(err) => tracing::debug!(%err, "dm recipient's presence unknown: not notified"),
        }
    });
}
