//! The task that sends the messages spooled through a Redis outage, in order, once Redis is
//! back: each is stored (or found already stored, when an earlier attempt's answer was
//! lost), published to the other instances only (this instance's members had it at once),
//! and this instance's members of a room are told its id: `stored {room, key, id}`.
//!
//! Remote members receive a message only if their instance is subscribed again when it is
//! published. Every instance retries Redis at least every `--redis-reconnect-max`, so the
//! task waits that long after this instance's own subscriber is back before publishing.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use engine::sockets::Nsp;
use serde::Serialize;
use tokio::task::JoinHandle;

use crate::{
    history::{Appended, History, Message, Spooled},
    metrics,
};

/// `stored`: a spooled message's id, to the members that received it without one.
#[derive(Debug, Serialize)]
struct StoredEvent<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    room: Option<&'a str>,
    key: &'a str,
    id: &'a str,
}

/// Drains `history`'s spool through the `chat` namespace for as long as the gateway runs;
/// `connected` tells whether this instance's Redis subscriber is up, `settle` how long the
/// others may take to be subscribed again after it.
pub(crate) fn spawn(
    chat: Arc<Nsp>,
    history: Arc<History>,
    connected: impl Fn() -> bool + Send + Sync + 'static,
    settle: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut up_since: Option<Instant> = None;
        history
            .spooled()
            .drain(|message: Spooled| {
                let ready = if connected() {
                    up_since.get_or_insert_with(Instant::now).elapsed() >= settle
                } else {
                    up_since = None;
                    false
                };
                let (chat, history) = (chat.clone(), history.clone());
                async move {
                    if !ready {
                        return Err("waiting for the cluster to be subscribed again".to_owned());
                    }
                    send(&chat, &history, message).await
                }
            })
            .await;
    })
}

/// Stores `message` (idempotently) and publishes it to the other instances.
async fn send(chat: &Arc<Nsp>, history: &History, message: Spooled) -> Result<(), String> {
    let Spooled {
        audience,
        stream,
        record,
        retention,
    } = message;
    let appended = history
        .append(None, &stream, &record, retention, true)
        .await
        .map_err(|err| err.to_string())?;
    let Appended::Stored { id, length } = appended else {
        return Err("the append script counted a rate limit it was not given".to_owned());
    };
    metrics::stream_length(length);
    let key = record.key.clone();
    let room = audience.room().to_owned();
    let out = Message::new(record, Some(id.clone()), audience.client_room());
    chat.to([room.clone()])
        .remote_only()
        .confirmed()
        .emit(audience.event(), &out)
        .await
        .map_err(|err| err.to_string())?;
    metrics::event_out(audience.event());
    metrics::spool_flushed();
    let stored = StoredEvent {
        room: audience.client_room(),
        key: &key,
        id: &id,
    };
    if let Err(err) = chat.to([room]).local().emit_now("stored", &stored) {
        tracing::debug!(%err, "a spooled message's id did not reach every local member");
    }
    Ok(())
}
