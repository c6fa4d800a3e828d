//! The path every chat line takes, `message` and `dm` alike: the sender's rate limit, the
//! store and the fan-out to the other instances in one Redis script (on a Redis Cluster, the
//! fan-out after the script, carrying the stored id), then the local members, and the ack.
//!
//! While Redis cannot store it, a line is spooled instead (see `Mode::store`): this
//! instance's members receive it at once with `id: null, pending: true`, the sender's ack
//! says the same, and the spool stores it and sends it to the other instances once Redis is
//! back (`chat::spooled`). A line stored whose publish then failed is served to this
//! instance's members and spooled for its publish only: its ack carries its id.

use std::sync::Arc;

use engine::sockets::{Broadcast, Nsp};

use super::{call::Request, reply::Reply};
use crate::{
    history::{Audience, Message, MessageId, Record, Spooled},
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

/// Counts, stores and sends `line` of the event `request`; the ack's reply.
pub(super) async fn deliver(
    request: &Request,
    scope: Scope,
    line: Line,
    retention: crate::history::Retention,
) -> Result<Reply, Refusal> {
    let Request {
        socket,
        chat,
        identity,
        ..
    } = request;
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
        send(socket.nsp(), &line.audience, record, Some(key.clone())).await?;
        return Ok(sent(Some(key.clone())));
    };
    let spooled = Spooled {
        audience: line.audience,
        stream,
        record,
        retention,
        published_if_stored: false,
    };
    let prepare = |id: &MessageId| {
        let message = Message::new(
            spooled.record.clone(),
            Some(id.to_string()),
            spooled.audience.client_room(),
        );
        to_audience(socket.nsp(), &spooled.audience)
            .prepare(spooled.audience.event(), &message)
            .map_err(|err| tracing::debug!(%err, "a line's broadcast not prepared"))
            .ok()
    };
    let stored = chat
        .mode
        .store(scope, &identity.tenant, &identity.user, &spooled, prepare)
        .await?;
    match stored {
        Stored::Published(id, prepared) => {
            prepared.deliver_locally();
            metrics::event_out(spooled.audience.event());
            Ok(sent(Some(id)))
        }
        Stored::At(id) => {
            let published = send(
                socket.nsp(),
                &spooled.audience,
                spooled.record.clone(),
                Some(id.clone()),
            )
            .await;
            if let Err(Refusal::ClusterUnavailable) = published {
                // Stored: served here now, and the spool publishes it to the other instances.
                serve_locally(socket.nsp(), &spooled, Some(id.clone()));
                chat.mode.spool_publish(&spooled)?;
            } else {
                published?;
            }
            Ok(sent(Some(id)))
        }
        Stored::Spooled => {
            serve_locally(socket.nsp(), &spooled, None);
            Ok(sent(None))
        }
    }
}

/// Sends `record`, stored as `id`, to its audience on every instance (the sender's socket
/// included when it is a member), once Redis took it; refused `cluster_unavailable`, and
/// sent to no one, when Redis did not.
async fn send(
    nsp: &Arc<Nsp>,
    audience: &Audience,
    record: Record,
    id: Option<String>,
) -> Result<(), Refusal> {
    let message = Message::new(record, id, audience.client_room());
    let delivery = to_audience(nsp, audience)
        .confirmed()
        .emit(audience.event(), &message)
        .await;
    metrics::event_out(audience.event());
    Refusal::from_broadcast(delivery)
}

/// Sends `spooled` (stored as `id`, or `None` while it waits in the spool) to its audience on
/// this instance only.
fn serve_locally(nsp: &Arc<Nsp>, spooled: &Spooled, id: Option<String>) {
    let audience = &spooled.audience;
    let message = Message::new(spooled.record.clone(), id, audience.client_room());
    let local = to_audience(nsp, audience)
        .local()
        .emit_now(audience.event(), &message);
    metrics::event_out(audience.event());
    if let Err(err) = local {
        tracing::debug!(%err, "a line did not reach this instance's members");
    }
}

/// A broadcast to `audience`'s room, on every instance unless narrowed.
pub(super) fn to_audience(nsp: &Arc<Nsp>, audience: &Audience) -> Broadcast {
    nsp.to([audience.room().to_owned()])
}
