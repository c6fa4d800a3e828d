//! The path every chat line takes, `message` and `dm` alike: the sender's rate limit and the
//! store in one Redis script, then the fan-out carrying the stored id, and the ack.
//!
//! While Redis cannot store it, a line is spooled instead (see `Mode::store`): this
//! instance's members receive it at once with `id: null, pending: true`, the sender's ack
//! says the same, and the spool stores it and sends it to the other instances once Redis is
//! back (`chat::spooled`). A line stored whose publish then failed is spooled for its
//! publish only: its ack carries its id.

use socketioxide::{adapter::Adapter, socket::Socket};

use super::{ChatState, identity::Identity, reply::Reply};
use crate::{
    history::{Audience, Message, Record, Spooled},
    ids::now_ms,
    metrics,
    mode::Stored,
    ratelimit::Scope,
    refusal::Refusal,
};

/// A chat line about to be sent.
pub(super) struct Line {
    /// Who receives it.
    pub(super) audience: Audience,
    /// Its stream, `None` when this server keeps no history.
    pub(super) stream: Option<String>,
    /// The text, validated.
    pub(super) text: String,
}

/// Counts, stores and sends `line` from `socket` of `identity`; the ack's reply.
pub(super) async fn deliver<A: Adapter>(
    socket: &Socket<A>,
    chat: &ChatState,
    scope: Scope,
    identity: &Identity,
    line: Line,
    retention: crate::history::Retention,
) -> Result<Reply, Refusal> {
    let record = Record {
        key: chat.message_ids.next(),
        from: identity.name.as_str().to_owned(),
        user: identity.user.to_string(),
        text: line.text,
        ts: now_ms(),
    };
    let (key, ts) = (record.key.clone(), record.ts);
    let sent = |id: Option<String>| Reply::Sent {
        pending: id.is_none(),
        id,
        key: key.clone(),
        ts,
    };
    let Some(stream) = line.stream else {
        chat.mode
            .limit(scope, &identity.tenant, &identity.user)
            .await?;
        // Live only: the key is the id.
        send(socket, &line.audience, record, Some(key.clone())).await?;
        return Ok(sent(Some(key.clone())));
    };
    let spooled = Spooled {
        audience: line.audience,
        stream,
        record,
        retention,
    };
    let stored = chat
        .mode
        .store(scope, &identity.tenant, &identity.user, &spooled)
        .await?;
    match stored {
        Stored::At(id) => {
            let published = send(
                socket,
                &spooled.audience,
                spooled.record.clone(),
                Some(id.clone()),
            )
            .await;
            if let Err(Refusal::ClusterUnavailable) = published {
                // Stored, and served here: the spool publishes it to the other instances.
                chat.mode.spool_publish(&spooled)?;
            } else {
                published?;
            }
            Ok(sent(Some(id)))
        }
        Stored::Spooled => {
            let Spooled {
                audience, record, ..
            } = spooled;
            let message = Message::new(record, None, audience.client_room());
            let local = socket
                .local()
                .within(audience.room().to_owned())
                .emit(audience.event(), &message)
                .await;
            metrics::event_out(audience.event());
            if let Err(err) = local {
                tracing::debug!(%err, "a spooled line did not reach every local member");
            }
            Ok(sent(None))
        }
    }
}

/// Sends `record`, stored as `id`, to its audience on every instance (the sender's socket
/// included when it is a member: `within`, not `to`), and waits for Redis to take it.
async fn send<A: Adapter>(
    socket: &Socket<A>,
    audience: &Audience,
    record: Record,
    id: Option<String>,
) -> Result<(), Refusal> {
    let message = Message::new(record, id, audience.client_room());
    let delivery = redis_adapter::confirmed(
        socket
            .within(audience.room().to_owned())
            .emit(audience.event(), &message),
    )
    .await;
    metrics::event_out(audience.event());
    Refusal::from_broadcast(delivery)
}
