//! `POST /api/v1/publish` (one message) and `POST /api/v1/publish/batch` (`{messages: [...]}`,
//! up to 1,000): the key (401, 503), the body (413, 400), every message checked before any is
//! sent (400 or 403, for a batch naming the message), the `Idempotency-Key` (a replay, 409,
//! 422), the key's rate (429, each message counts), then the delivery (503 when the cluster
//! cannot take it all: nothing delivered here, see `deliver`).
//!
//! Answers: one stored chat message `200 {id, key, ts}`, one live event `202 {key}`, a batch
//! `200 {results: [...]}` with one of those per message, in order.

use axum::{
    Json,
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::{
    ApiState, body,
    deliver::{self, Sent, to_value},
    idempotency::{self, Answered, Claim},
};
use crate::{metrics, refusal::Refusal};

/// The header a replayed answer carries.
const REPLAYED: &str = "idempotent-replayed";

/// `POST /api/v1/publish`.
pub(super) async fn single(
    State(api): State<ApiState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(publish(&api, &headers, body, Shape::Single).await)
}

/// `POST /api/v1/publish/batch`.
pub(super) async fn batch(
    State(api): State<ApiState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(publish(&api, &headers, body, Shape::Batch).await)
}

/// Which of the two routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Single,
    Batch,
}

impl Shape {
    /// The route, in fingerprints and metrics.
    fn name(self) -> &'static str {
        match self {
            Self::Single => "publish",
            Self::Batch => "batch",
        }
    }

    /// The refusal of message `index`: named in a batch, as is alone.
    fn refused(self, index: usize, refusal: Refusal) -> Refusal {
        match self {
            Self::Single => refusal,
            Self::Batch => Refusal::InBatch {
                index,
                refusal: Box::new(refusal),
            },
        }
    }

    /// The refusal of a body that could not be read.
    fn unreadable(self, rejection: &BytesRejection) -> Refusal {
        if rejection.status() != StatusCode::PAYLOAD_TOO_LARGE {
            return Refusal::InvalidPayload(rejection.body_text());
        }
        Refusal::TooLarge(match self {
            Self::Single => "a message body is at most 64 KiB",
            Self::Batch => "a batch body is at most 1 MiB",
        })
    }

    /// The answer for what was sent, and its outcome label.
    fn answer(self, sent: Vec<Sent>) -> Result<(Answered, &'static str), Refusal> {
        match (self, sent.as_slice()) {
            (Self::Single, [one @ Sent::Stored { .. }]) => {
                Ok((Answered::new(StatusCode::OK, to_value(one)?), "stored"))
            }
            (Self::Single, [one @ Sent::Live { .. }]) => {
                Ok((Answered::new(StatusCode::ACCEPTED, to_value(one)?), "live"))
            }
            (Self::Batch, _) => Ok((
                Answered::new(StatusCode::OK, json!({ "results": to_value(&sent)? })),
                "batch",
            )),
            (Self::Single, _) => Err(Refusal::Internal),
        }
    }
}

/// How a publish request ended.
enum Outcome {
    /// Carried out now; with its outcome label.
    Answered(Answered, &'static str),
    /// Carried out by an earlier request with the same `Idempotency-Key`.
    Replayed(Answered),
}

/// Carries out one publish request.
async fn publish(
    api: &ApiState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    shape: Shape,
) -> Result<Outcome, Refusal> {
    let key = api.keys.authenticate(headers).await?;
    let idempotency_key = idempotency::header(headers)?;
    let bytes = body.map_err(|rejection| shape.unreadable(&rejection))?;
    let (json, fingerprint) = body::parse(shape.name(), &bytes)?;
    let messages = match shape {
        Shape::Single => vec![json],
        Shape::Batch => body::batch(json)?,
    };
    let settings = api.mode.settings(&key.tenant).await;
    let publications = messages
        .into_iter()
        .enumerate()
        .map(|(index, message)| {
            body::publication(message, &key, &api.mode, settings.max_message_length)
                .map_err(|refusal| shape.refused(index, refusal))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let slot = match idempotency_key {
        None => None,
        Some(idempotency_key) => match api
            .idempotency
            .claim(&key, idempotency_key, fingerprint)
            .await?
        {
            Claim::Replay(answer) => return Ok(Outcome::Replayed(answer)),
            Claim::Fresh(slot) => Some(slot),
        },
    };
    let hits = u32::try_from(publications.len()).unwrap_or(u32::MAX);
    let sent = match api.limit(&key, hits).await {
        Ok(()) => {
            let idempotency_key = slot.as_ref().map(|slot| slot.key.as_str());
            deliver::deliver(
                api,
                &key,
                publications,
                settings.retention(),
                idempotency_key,
            )
            .await
        }
        Err(refusal) => Err(refusal),
    };
    let answered = sent.and_then(|sent| shape.answer(sent));
    match (answered, slot) {
        (Ok((answer, label)), slot) => {
            if let Some(slot) = slot {
                api.idempotency.finish(slot, &answer).await;
            }
            Ok(Outcome::Answered(answer, label))
        }
        (Err(refusal), Some(slot)) => {
            api.idempotency.release(slot).await;
            Err(refusal)
        }
        (Err(refusal), None) => Err(refusal),
    }
}

/// The HTTP answer, counted in `gateway_api_publish_total{outcome}`.
fn respond(outcome: Result<Outcome, Refusal>) -> Response {
    let (answer, label, replayed) = match outcome {
        Ok(Outcome::Answered(answer, label)) => (answer, label, false),
        Ok(Outcome::Replayed(answer)) => (answer, "replayed", true),
        Err(refusal) => {
            metrics::api_publish(refusal.reason());
            return refusal.into_response();
        }
    };
    metrics::api_publish(label);
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = (status, Json(answer.body)).into_response();
    if replayed {
        response
            .headers_mut()
            .insert(REPLAYED, HeaderValue::from_static("true"));
    }
    response
}
