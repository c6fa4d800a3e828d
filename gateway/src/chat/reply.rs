//! What an acknowledgement carries back to the client: `{ok: true}`, `{id, ts}` for a sent
//! message, or `{error: reason}` where the reason is the [`Error`]'s text.

use serde::Serialize;
use socketioxide::{adapter::Adapter, extract::AckSender};

use crate::Error;

/// The body of one acknowledgement.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Reply {
    /// The request was carried out.
    Ok {
        /// Always `true`.
        ok: bool,
    },
    /// A message was accepted and handed to every member of the room.
    Sent {
        /// The message id the members received.
        id: String,
        /// The message timestamp the members received.
        ts: u64,
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
    pub(crate) fn send<A: Adapter>(self, ack: AckSender<A>) {
        if let Err(err) = ack.send(&self) {
            // The socket is closing or its buffer is full: nobody is left to tell.
            tracing::debug!(%err, "could not send an acknowledgement");
        }
    }
}

impl From<Result<Reply, Error>> for Reply {
    fn from(result: Result<Reply, Error>) -> Self {
        result.unwrap_or_else(|err| Self::Error {
            error: err.to_string(),
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
            id: "a-1".into(),
            ts: 5,
        };
        assert_eq!(to_value(sent).ok(), Some(json!({"id": "a-1", "ts": 5})));
        let refused = Reply::from(Err(Error::NotAMember));
        assert_eq!(
            to_value(refused).ok(),
            Some(json!({"error": "not a member of this room"}))
        );
    }
}
