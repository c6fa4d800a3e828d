//! Sending checked publications: chat messages stored first (one script for the whole
//! request, the same streams, records and payload as the chat's `message`), then every
//! publication handed to the other instances, and only once Redis took them all, to this
//! instance's sockets.
//!
//! The chat serves local sockets even while Redis is down (spooling for the others). A
//! backend retries instead, so here nothing may reach anyone unless everything can reach
//! everyone: the publishes go out `remote_only` and `confirmed`, all at once (the publish
//! queue pipelines them), and the local delivery follows once Redis confirmed them. Nothing
//! goes to the chat's outage spool.
//!
//! What a failure can still leave behind: Redis took part of a batch's publishes and not the
//! rest (other instances may have delivered that part), or the script stored the chat
//! messages and the publish then failed (they are in the history, delivered to nobody). A
//! retry with the same `Idempotency-Key` stores nothing twice: its messages have the same
//! keys, and the script finds them among the streams' newest entries.

use std::sync::Arc;

use engine::sockets::Nsp;
use futures_util::future::join_all;
use serde::Serialize;
use serde_json::Value;

use super::{
    ApiState,
    body::{CHAT_EVENT, Content, Publication},
    keys::ApiKey,
};
use crate::{
    history::{Message, Record, Retention},
    ids::{self, now_ms},
    metrics,
    refusal::Refusal,
};

/// The answer for one publication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub(super) enum Sent {
    /// A chat message, stored under `id` (its key when the server keeps no history).
    Stored {
        /// Its stream entry id.
        id: String,
        /// Its unique key, as members received it.
        key: String,
        /// Its timestamp, as members received it.
        ts: u64,
    },
    /// A live event, delivered.
    Live {
        /// Its unique key.
        key: String,
    },
}

/// The `user` of chat messages a key sends: `api:<key id>`, which no user id can be (user
/// ids hold no `:`).
pub(super) fn sender(key: &ApiKey) -> String {
    format!("api:{}", key.id)
}

/// One publication about to go out.
enum Plan {
    /// A live event.
    Live { event: String, data: Value },
    /// A chat message: its client room name, its record, whether it is stored (not when
    /// the server keeps no history).
    Chat {
        name: String,
        record: Record,
        stored: bool,
    },
}

/// Stores and sends `publications` of `key`, all or (as far as Redis lets us know) none;
/// with `idempotency_key`, message keys are derived from it (`<key id>-<hash>-<index>`), so
/// that a retry finds what an earlier attempt stored.
pub(super) async fn deliver(
    api: &ApiState,
    key: &ApiKey,
    publications: Vec<Publication>,
    retention: Retention,
    idempotency_key: Option<&str>,
) -> Result<Vec<Sent>, Refusal> {
    let derived = idempotency_key.map(|idempotency_key| {
        let hash = ids::digest(idempotency_key);
        format!("{}-{}", key.id, hash.get(..16).unwrap_or(&hash))
    });
    let ts = now_ms();
    let mut plans = Vec::with_capacity(publications.len());
    let mut to_store = Vec::new();
    for (index, publication) in publications.into_iter().enumerate() {
        let message_key = match &derived {
            Some(prefix) => format!("{prefix}-{index}"),
            None => api.message_ids.next(),
        };
        let plan = match publication.content {
            Content::Live { event, data } => Plan::Live { event, data },
            Content::Chat { room, text } => {
                let record = Record {
                    key: message_key.clone(),
                    from: key.name.clone(),
                    user: sender(key),
                    text,
                    ts,
                };
                let stream = api.mode.room_stream(&key.tenant, &room);
                let stored = stream.is_some();
                if let Some(stream) = stream {
                    to_store.push((stream, record.clone()));
                }
                Plan::Chat {
                    name: room,
                    record,
                    stored,
                }
            }
        };
        plans.push((publication.room, message_key, plan));
    }
    let mut ids = match to_store.is_empty() {
        true => Vec::new(),
        false => {
            api.mode
                .store_all(&to_store, retention, derived.is_some())
                .await?
        }
    }
    .into_iter();

    let mut outgoing = Vec::with_capacity(plans.len());
    let mut answers = Vec::with_capacity(plans.len());
    for (room, message_key, plan) in plans {
        match plan {
            Plan::Live { event, data } => {
                outgoing.push((room, event, data));
                answers.push(Sent::Live { key: message_key });
            }
            Plan::Chat {
                name,
                record,
                stored,
            } => {
                // Without history the key is the id, as for the chat's own messages.
                let id = match stored {
                    true => ids.next().ok_or(Refusal::Internal)?,
                    false => message_key.clone(),
                };
                let message = Message::new(record, Some(id.clone()), Some(&name));
                outgoing.push((room, CHAT_EVENT.to_owned(), to_value(&message)?));
                answers.push(Sent::Stored {
                    id,
                    key: message_key,
                    ts,
                });
            }
        }
    }
    fan_out(&api.chat, &outgoing).await?;
    let stored = answers
        .iter()
        .filter(|sent| matches!(sent, Sent::Stored { .. }))
        .count();
    metrics::api_messages("stored", stored);
    metrics::api_messages("live", answers.len() - stored);
    Ok(answers)
}

/// Sends each `(room, event, data)` of `outgoing` through `chat`: to the other instances
/// first, every publish at once and each confirmed by Redis, then (only if all were) to this
/// instance's sockets.
async fn fan_out(chat: &Arc<Nsp>, outgoing: &[(String, String, Value)]) -> Result<(), Refusal> {
    let remote = outgoing.iter().map(|(room, event, data)| {
        chat.to([room.clone()])
            .remote_only()
            .confirmed()
            .emit(event.as_str(), data)
    });
    for result in join_all(remote).await {
        Refusal::from_broadcast(result)?;
    }
    for (room, event, data) in outgoing {
        let local = chat.to([room.clone()]).local();
        if let Err(err) = local.emit_now(event.as_str(), data) {
            tracing::debug!(%err, "a publication did not reach every local socket");
        }
    }
    Ok(())
}

/// `value` as JSON (a failure is a bug: logged, answered `internal error`).
pub(super) fn to_value(value: &impl Serialize) -> Result<Value, Refusal> {
    serde_json::to_value(value).map_err(|err| {
        tracing::error!(%err, "could not serialize a publication");
        Refusal::Internal
    })
}
