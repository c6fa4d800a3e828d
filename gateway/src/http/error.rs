//! How a [`Refusal`] answers an HTTP request: a status, `{error: reason}`, and `Retry-After`
//! when waiting helps.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::refusal::{Refusal, whole_seconds};

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::BadCredentials | Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::InvalidPayload(_) | Self::InvalidSettings(_) => StatusCode::BAD_REQUEST,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = match &self {
            Self::RateLimited { retry_after } => json!({
                "error": "rate_limited",
                "retry_after_ms": u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
            }),
            other => json!({"error": other.to_string()}),
        };
        let mut response = (status, Json(body)).into_response();
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
