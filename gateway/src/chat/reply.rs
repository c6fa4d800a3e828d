//! What an acknowledgement carries back to the client: `{ok: true}`, `{id, ts}` for a sent
//! message, `{error: "rate_limited", retry_after_ms}` over a rate limit, or `{error: reason}`
//! where the reason is the [`Refusal`]'s text; and [`answer`], which runs every event's
//! handler.

use engine::sockets::Ack;
use serde::Serialize;

use super::call::{Call, Request};
use crate::{metrics, refusal::Refusal};

/// Handles `call`, an `event`: counts it in, runs `handler` on its request in the socket's
/// event order, and acks the outcome (a refusal counted in `socketio_events_rejected_total`)
/// if the client asked.
pub(crate) async fn answer<F>(event: &'static str, call: Call, handler: impl FnOnce(Request) -> F)
where
    F: Future<Output = Result<Reply, Refusal>>,
{
    metrics::event_in(event);
    // Corked: the broadcast a handler sends its own socket and the ack leave in one write.
    let session = call.request.socket.session().clone();
    session
        .corked(async move {
            let reply = match call.turn.start().await {
                Ok(running) => {
                    let reply = handler(call.request).await;
                    drop(running);
                    reply
                }
                Err(refusal) => Err(refusal),
            };
            Reply::to(event, reply).send(call.ack);
        })
        .await;
}

/// The body of one acknowledgement.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Reply {
    /// The request was carried out.
    Ok {
        /// Always `true`.
        ok: bool,
    },
    /// A message was accepted: stored and handed to every member, or (`pending`) spooled
    /// while Redis is unreachable, handed to this instance's members, and stored and sent to
    /// the others once Redis is back.
    Sent {
        /// The message id (its stream entry id); `None` while spooled.
        id: Option<String>,
        /// The message's unique key, the same in the members' copy and in `stored`.
        key: String,
        /// The message timestamp the members received.
        ts: u64,
        /// Whether the message waits in the spool.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        pending: bool,
    },
    /// A `join`: `recovered` and `replayed` only for a join with `since`.
    Joined {
        /// Always `true`.
        ok: bool,
        /// Whether every message after `since` was replayed.
        #[serde(skip_serializing_if = "Option::is_none")]
        recovered: Option<bool>,
        /// How many were replayed.
        #[serde(skip_serializing_if = "Option::is_none")]
        replayed: Option<usize>,
    },
    /// A page of history, oldest first: `{messages, more}`.
    History(crate::history::Messages),
    /// Who is in a room: `{members}`.
    Members(crate::presence::Members),
    /// Over a rate limit; the socket stays connected.
    RateLimited {
        /// Always `rate_limited`.
        error: &'static str,
        /// When the same event would be accepted again.
        retry_after_ms: u64,
    },
    /// The request was refused or failed.
    Error {
        /// Why, for humans.
        error: String,
    },
}

impl Reply {
    /// `{ok: true}`.
    pub(crate) fn ok() -> Self {
        Self::Ok { ok: true }
    }

    /// Sends this reply if the client asked for an acknowledgement.
    fn send(self, ack: Option<Ack>) {
        let Some(ack) = ack else {
            return;
        };
        let args = match serde_json::to_value([&self]) {
            Ok(args) => args,
            Err(err) => {
                tracing::error!(%err, "could not serialize an acknowledgement");
                return;
            }
        };
        if let Err(err) = ack.send(&args) {
            // The socket is closing or its buffer is full: nobody is left to tell.
            tracing::debug!(%err, "could not send an acknowledgement");
        }
    }
}

impl Reply {
    /// The reply to `event` for `result`, counting a refusal in the
    /// `socketio_events_rejected_total` metric.
    fn to(event: &'static str, result: Result<Reply, Refusal>) -> Self {
        if let Err(err) = &result {
            metrics::rejected(event, err.reason());
        }
        Self::from(result)
    }
}

impl From<Result<Reply, Refusal>> for Reply {
    fn from(result: Result<Reply, Refusal>) -> Self {
        result.unwrap_or_else(|err| match err {
            Refusal::RateLimited { retry_after } => Self::RateLimited {
                error: "rate_limited",
                retry_after_ms: u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
            },
            err => Self::Error {
                error: err.to_string(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, to_value};

    use super::*;

    #[test]
    fn wire_shapes() {
        assert_eq!(to_value(Reply::ok()).ok(), Some(json!({"ok": true})));
        let sent = Reply::Sent {
            id: Some("5-0".into()),
            key: "k".into(),
            ts: 5,
            pending: false,
        };
        assert_eq!(
            to_value(sent).ok(),
            Some(json!({"id": "5-0", "key": "k", "ts": 5}))
        );
        let spooled = Reply::Sent {
            id: None,
            key: "k".into(),
            ts: 5,
            pending: true,
        };
        assert_eq!(
            to_value(spooled).ok(),
            Some(json!({"id": null, "key": "k", "ts": 5, "pending": true}))
        );
        let refused = Reply::from(Err(Refusal::NotAMember));
        assert_eq!(
            to_value(refused).ok(),
            Some(json!({"error": "not a member of this room"}))
        );
        let limited = Reply::from(Err(Refusal::RateLimited {
            retry_after: std::time::Duration::from_millis(1500),
        }));
        assert_eq!(
            to_value(limited).ok(),
            Some(json!({"error": "rate_limited", "retry_after_ms": 1500}))
        );
        assert_eq!(
            Refusal::RateLimited {
                retry_after: std::time::Duration::from_millis(1500)
            }
            .to_string(),
            "rate_limited: retry in 2s"
        );
    }
}
