//! `Idempotency-Key`: a publish retried with the same key (and the same API key) is carried
//! out once and answered with the first answer, so a backend that lost an answer (a timeout,
//! a 503) retries safely.
//!
//! One marker per (API key, idempotency key), `{prefix}:idem:{{tenant}}:{key id}:{key}`:
//! - the first request takes it with `SET NX` (one script that returns the marker already
//!   there instead), as "in progress" for [`IN_PROGRESS_TTL`]; a request that finds it in
//!   progress is refused 409, one that finds it done is answered what was stored;
//! - on success the answer replaces it for [`ANSWER_TTL`];
//! - on a failure nothing was delivered (the publish goes to the other instances first and
//!   reaches local sockets only once Redis took it), so the marker is deleted and a retry
//!   proceeds. A marker whose deletion failed (Redis down) ends with its TTL.
//!
//! The marker holds a fingerprint of the request (route and body): the same idempotency key
//! with another request, once the first was answered, is refused 422 rather than answered
//! for the first one (while the first is in progress, any request with its key gets 409).

use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use redis::{Script, Value as RedisValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::keys::ApiKey;
use crate::{refusal::Refusal, store::Store};

/// The request header.
const HEADER: &str = "idempotency-key";
/// Longest idempotency key, in characters.
const MAX_LEN: usize = 128;
/// Life of an "in progress" marker: longer than any request (each Redis step has a 1 s
/// deadline), short enough that a marker a crash left behind soon lets retries through.
const IN_PROGRESS_TTL: Duration = Duration::from_secs(30);
/// How long the first answer is kept for retries.
const ANSWER_TTL: Duration = Duration::from_secs(24 * 3600);

/// `SET NX` of the marker, or the marker already there. KEYS: the marker. ARGV: the "in
/// progress" value, its life in ms. Returns `{1}` when taken, else `{0, value}`.
const CLAIM_LUA: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1}
end
return {0, redis.call('GET', KEYS[1])}
";

/// What a marker says.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum Marker {
    /// A request with this key is being carried out.
    InProgress { fingerprint: String },
    /// It was answered this.
    Done {
        fingerprint: String,
        #[serde(flatten)]
        answer: Answered,
    },
}

/// An answer as sent, and as kept for retries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Answered {
    /// The HTTP status.
    pub(super) status: u16,
    /// The JSON body.
    pub(super) body: Value,
}

impl Answered {
    /// `body` with `status`.
    pub(super) fn new(status: StatusCode, body: Value) -> Self {
        Self {
            status: status.as_u16(),
            body,
        }
    }
}

/// A marker this request took.
#[derive(Debug)]
pub(super) struct Slot {
    /// The marker's Redis key.
    marker: String,
    /// The request's fingerprint.
    fingerprint: String,
    /// The idempotency key itself (the publish derives its message keys from it).
    pub(super) key: String,
}

/// What a claim found.
#[derive(Debug)]
pub(super) enum Claim {
    /// Nobody had this key: carry the request out, then [`Idempotency::finish`] or
    /// [`Idempotency::release`].
    Fresh(Slot),
    /// Already answered: answer the same.
    Replay(Answered),
}

/// The idempotency key a request presents, if any: 1 to 128 printable ASCII characters.
pub(super) fn header(headers: &HeaderMap) -> Result<Option<String>, Refusal> {
    let mut values = headers.get_all(HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Refusal::InvalidPayload(
            "Idempotency-Key: one header only".to_owned(),
        ));
    }
    let bytes = value.as_bytes();
    let printable = bytes.iter().all(|b| (b' '..=b'~').contains(b));
    if bytes.is_empty() || bytes.len() > MAX_LEN || !printable {
        return Err(Refusal::InvalidPayload(format!(
            "Idempotency-Key: 1 to {MAX_LEN} printable ASCII characters"
        )));
    }
    // Printable ASCII is UTF-8.
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// The markers in Redis.
#[derive(Clone)]
pub(super) struct Idempotency {
    store: Store,
    claim: Script,
}

impl Idempotency {
    /// Markers in `store`.
    pub(super) fn new(store: Store) -> Self {
        Self {
            store,
            claim: Script::new(CLAIM_LUA),
        }
    }

    /// Takes the marker of `key`'s idempotency key `idempotency_key` for a request of
    /// `fingerprint`, or says why not: 409 while another request holds it, 422 when it
    /// answered another request, 503 when Redis cannot say.
    pub(super) async fn claim(
        &self,
        key: &ApiKey,
        idempotency_key: String,
        fingerprint: String,
    ) -> Result<Claim, Refusal> {
        let marker = self
            .store
            .keys()
            .idempotency(&key.tenant, &key.id, &idempotency_key);
        let pending = to_json(&Marker::InProgress {
            fingerprint: fingerprint.clone(),
        })?;
        let mut invocation = self.claim.key(&marker);
        invocation.arg(pending).arg(millis(IN_PROGRESS_TTL));
        let found: RedisValue = self.store.invoke(&invocation).await?;
        let existing = match &found {
            RedisValue::Array(parts) => match parts.as_slice() {
                [RedisValue::Int(1)] => {
                    return Ok(Claim::Fresh(Slot {
                        marker,
                        fingerprint,
                        key: idempotency_key,
                    }));
                }
                [RedisValue::Int(0), RedisValue::BulkString(value)] => {
                    serde_json::from_slice::<Marker>(value).ok()
                }
                _ => None,
            },
            _ => None,
        };
        match existing {
            Some(Marker::Done {
                fingerprint: first,
                answer,
            }) => match first == fingerprint {
                true => Ok(Claim::Replay(answer)),
                false => Err(Refusal::IdempotencyKeyReused),
            },
            // In progress (whatever the request: its answer is not known yet); or a marker
            // just gone, or not ours to read: retry shortly.
            Some(Marker::InProgress { .. }) | None => Err(Refusal::Conflict(
                "a request with this Idempotency-Key is in progress, retry later",
            )),
        }
    }

    /// Keeps `answer` as the answer of `slot`'s requests (logged when Redis does not take
    /// it: a retry then finds the marker in progress until its TTL ends).
    pub(super) async fn finish(&self, slot: Slot, answer: &Answered) {
        let done = Marker::Done {
            fingerprint: slot.fingerprint,
            answer: answer.clone(),
        };
        let Ok(done) = to_json(&done) else {
            return;
        };
        let mut set = redis::cmd("SET");
        set.arg(&slot.marker)
            .arg(done)
            .arg("PX")
            .arg(millis(ANSWER_TTL));
        if let Err(err) = self.store.query::<()>(&set).await {
            tracing::warn!(%err, "an idempotent publish's answer was not kept");
        }
    }

    /// Gives `slot` up after a failure, so that a retry proceeds.
    pub(super) async fn release(&self, slot: Slot) {
        let mut delete = redis::cmd("DEL");
        delete.arg(&slot.marker);
        if let Err(err) = self.store.query::<()>(&delete).await {
            tracing::warn!(%err, "an idempotency marker stays until its TTL ends");
        }
    }
}

/// `duration` in milliseconds.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A marker as JSON.
fn to_json(marker: &Marker) -> Result<String, Refusal> {
    serde_json::to_string(marker).map_err(|err| {
        tracing::error!(%err, "could not serialize an idempotency marker");
        Refusal::Internal
    })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use serde_json::json;

    use super::*;

    #[test]
    fn keys_are_bounded_printable_ascii() {
        let mut headers = HeaderMap::new();
        assert_eq!(header(&headers).ok(), Some(None));
        headers.insert(HEADER, HeaderValue::from_static("order 7/a:b"));
        assert_eq!(header(&headers).ok(), Some(Some("order 7/a:b".to_owned())));
        for bad in [
            HeaderValue::from_static(""),
            HeaderValue::from_str(&"k".repeat(MAX_LEN + 1)).unwrap_or(HeaderValue::from_static("")),
            HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap_or(HeaderValue::from_static("")),
            HeaderValue::from_bytes(b"tab\tkey").unwrap_or(HeaderValue::from_static("")),
        ] {
            headers.insert(HEADER, bad.clone());
            assert!(header(&headers).is_err(), "{bad:?}");
        }
        headers.insert(HEADER, HeaderValue::from_static("a"));
        headers.append(HEADER, HeaderValue::from_static("b"));
        assert!(header(&headers).is_err(), "two headers");
    }

    #[test]
    fn markers_round_trip() {
        let done = Marker::Done {
            fingerprint: "f".into(),
            answer: Answered::new(StatusCode::ACCEPTED, json!({"key": "k"})),
        };
        let text = to_json(&done).unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(
            value,
            json!({"state": "done", "fingerprint": "f", "status": 202, "body": {"key": "k"}})
        );
        let back: Option<Marker> = serde_json::from_str(&text).ok();
        assert!(matches!(back, Some(Marker::Done { fingerprint, .. }) if fingerprint == "f"));
        let pending: Option<Marker> =
            serde_json::from_str(r#"{"state": "in_progress", "fingerprint": "x"}"#).ok();
        assert!(matches!(pending, Some(Marker::InProgress { .. })));
    }
}
