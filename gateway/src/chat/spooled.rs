//! The task that sends the messages spooled through a Redis outage, in order, once Redis is
//! back: each is stored (or found already stored, when an earlier attempt's answer was
//! lost), published to the other instances only (this instance's members had it at once;
//! not again when the script found to have stored it published it too), and this
//! instance's members of a room are told its id: `stored {room, key, id}`.
//!
//! The spool is written in batches of up to [`BATCH_MAX`] messages of one Redis slot (one
//! tenant): one script stores them all and their publishes go out in one pipeline, so a
//! spool filled while Redis answered too late (under overload, say) empties in a few round
//! trips rather than two per message, while new lines queue behind it.
//!
//! Remote members receive a message only if their instance is subscribed again when it is
//! published. Every instance retries Redis at least every `--redis-reconnect-max`, so the
//! task waits that long after this instance's own subscriber is back before publishing.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use engine::sockets::Nsp;
use redis::cluster_routing::Slot;
use redis_adapter::{NamespaceBus, Redis, Wait};
use serde::Serialize;
use tokio::task::JoinHandle;

use super::deliver::to_audience;
use crate::{
    history::{History, Message, Spooled},
    metrics,
};

/// Most spooled messages written in one round trip.
const BATCH_MAX: usize = 100;

/// `stored`: a spooled message's id, to the members that received it without one.
#[derive(Debug, Serialize)]
struct StoredEvent<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    room: Option<&'a str>,
    key: &'a str,
    id: &'a str,
}

/// Drains `history`'s spool through the `chat` namespace and its cluster `bus` for as long
/// as the gateway runs; `connected` tells whether this instance's Redis subscriber is up,
/// `settle` how long the others may take to be subscribed again after it.
pub(crate) fn spawn(
    chat: Arc<Nsp>,
    bus: Arc<NamespaceBus<Redis>>,
    history: Arc<History>,
    connected: impl Fn() -> bool + Send + Sync + 'static,
    settle: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut up_since: Option<Instant> = None;
        history
            .spooled()
            .drain_batches(BATCH_MAX, |batch: Vec<Spooled>| {
                let ready = if connected() {
                    up_since.get_or_insert_with(Instant::now).elapsed() >= settle
                } else {
                    up_since = None;
                    false
                };
                let (chat, bus, history) = (chat.clone(), bus.clone(), history.clone());
                async move {
                    if !ready {
                        return Err("waiting for the cluster to be subscribed again".to_owned());
                    }
                    send(&chat, &bus, &history, one_script(batch)).await
                }
            })
            .await;
    })
}

/// The first messages of `batch` that one script may store: those whose streams are in the
/// first one's slot (its tenant's) and kept for the same retention.
fn one_script(mut batch: Vec<Spooled>) -> Vec<Spooled> {
    let Some(first) = batch.first() else {
        return batch;
    };
    let (slot, retention) = (Slot::for_key(&first.stream), first.retention);
    let alike = batch
        .iter()
        .take_while(|message| {
            message.retention == retention && Slot::for_key(&message.stream) == slot
        })
        .count();
    batch.truncate(alike);
    batch
}

/// Stores `batch` (idempotently) in one script, publishes it to the other instances in one
/// pipeline, and tells this instance's members the ids; how many messages were sent.
async fn send(
    chat: &Arc<Nsp>,
    bus: &NamespaceBus<Redis>,
    history: &History,
    batch: Vec<Spooled>,
) -> Result<usize, String> {
    let Some(retention) = batch.first().map(|message| message.retention) else {
        return Ok(0);
    };
    let entries: Vec<_> = batch
        .iter()
        .map(|message| (message.stream.clone(), message.record.clone()))
        .collect();
    let stored = history
        .append_all(&entries, retention, true)
        .await
        .map_err(|err| err.to_string())?;
    let mut outgoing = Vec::with_capacity(batch.len());
    for (message, written) in batch.iter().zip(&stored) {
        metrics::stream_length(written.length);
        if written.found && message.published_if_stored {
            // Stored and published by the script whose answer came too late.
            continue;
        }
        let audience = &message.audience;
        let out = Message::new(
            message.record.clone(),
            Some(written.id.clone()),
            audience.client_room(),
        );
        let prepared = to_audience(chat, audience)
            .remote_only()
            .prepare(audience.event(), &out)
            .map_err(|err| err.to_string())?;
        outgoing.extend(prepared.into_outgoing());
    }
    bus.send(outgoing, Wait::Confirmed)
        .await
        .map_err(|err| err.to_string())?;
    for (message, written) in batch.iter().zip(&stored) {
        let audience = &message.audience;
        metrics::event_out(audience.event());
        metrics::spool_flushed();
        let stored = StoredEvent {
            room: audience.client_room(),
            key: &message.record.key,
            id: &written.id,
        };
        if let Err(err) = to_audience(chat, audience)
            .local()
            .emit_now("stored", &stored)
        {
            tracing::debug!(%err, "a spooled message's id did not reach every local member");
        }
    }
    Ok(batch.len())
}
