//! `GET /healthz`: the process is up and serving HTTP.

use axum::{
    extract::State,
    http::{HeaderName, HeaderValue},
    response::{IntoResponse, Response},
};

use super::HttpState;

/// The header naming the instance that answered (the id clients also see in `welcome`), so
/// that a probe through a load balancer learns where it landed without the admin routes.
const INSTANCE_HEADER: HeaderName = HeaderName::from_static("x-gateway-instance");

/// Always `200 ok` while the server accepts requests, with [`INSTANCE_HEADER`].
pub(super) async fn healthz(State(state): State<HttpState>) -> Response {
    match HeaderValue::from_str(&state.instance) {
        Ok(instance) => ([(INSTANCE_HEADER, instance)], "ok").into_response(),
        Err(_) => "ok".into_response(),
    }
}
