//! How a [`Refusal`] answers an HTTP request: a status, `{error: reason}`, and `Retry-After`
//! when waiting helps.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use engine::server::Denial;
use serde_json::{Value, json};

use crate::refusal::{Refusal, whole_seconds};

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = status(&self);
        let mut response = (status, Json(self.body())).into_response();
        let retry = match &self {
            Self::RateLimited { retry_after } => Some(whole_seconds(*retry_after)),
            _ if status == StatusCode::SERVICE_UNAVAILABLE => Some(1),
            _ => None,
        };
        if let Some(seconds) = retry {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl Refusal {
    /// The JSON body of the answer: `{error: reason}`, with `retry_after_ms` over a rate limit.
    fn body(&self) -> Value {
        match self {
            Self::RateLimited { retry_after } => json!({
                "error": "rate_limited",
                "retry_after_ms": u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
            }),
            other => json!({"error": other.to_string()}),
        }
    }

    /// The answer to a request that would open an engine.io session, as the engine sends it.
    pub(crate) fn denial(&self) -> Denial {
        Denial {
            status: status(self),
            content_type: "application/json",
            body: self.body().to_string().into(),
        }
    }
}

/// The HTTP status of `refusal`: 4xx for what the request did, 5xx for what the gateway could
/// not do (503 when waiting helps).
fn status(refusal: &Refusal) -> StatusCode {
    match refusal {
        Refusal::BadCredentials | Refusal::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        Refusal::Forbidden(_) => StatusCode::FORBIDDEN,
        Refusal::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Refusal::InvalidPayload(_)
        | Refusal::InvalidSettings(_)
        | Refusal::InvalidRoom(_)
        | Refusal::InvalidText(_)
        | Refusal::TextTooLong(_)
        | Refusal::InvalidName(_)
        | Refusal::InvalidEvent(_)
        | Refusal::UnknownUser => StatusCode::BAD_REQUEST,
        Refusal::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Refusal::Conflict(_) => StatusCode::CONFLICT,
        Refusal::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
        Refusal::InBatch { refusal, .. } => status(refusal),
        Refusal::Unavailable(_) | Refusal::ClusterUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        Refusal::NoHistory => StatusCode::NOT_IMPLEMENTED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_batch_message_answers_with_its_own_status() {
        let refused = Refusal::InBatch {
            index: 3,
            refusal: Box::new(Refusal::InvalidRoom("must be 1 to 64 characters long")),
        };
        assert_eq!(
            refused.to_string(),
            "messages[3]: invalid room: must be 1 to 64 characters long"
        );
        assert_eq!(status(&refused), StatusCode::BAD_REQUEST);
        let forbidden = Refusal::InBatch {
            index: 0,
            refusal: Box::new(Refusal::Forbidden("x")),
        };
        assert_eq!(status(&forbidden), StatusCode::FORBIDDEN);
        assert_eq!(
            status(&Refusal::TooLarge("x")),
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }
}
