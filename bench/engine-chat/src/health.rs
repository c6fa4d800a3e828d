//! Everything but engine.io: `GET /healthz` for the benchmark's readiness check, 404 else.

use std::{
    convert::Infallible,
    future::{Ready, ready},
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;

/// The fallback service of the chat server.
#[derive(Debug, Clone, Copy)]
pub struct Health;

impl<B> tower_service::Service<Request<B>> for Health {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (status, body) = match request.uri().path() {
            "/healthz" => (StatusCode::OK, "ok"),
            _ => (StatusCode::NOT_FOUND, "not found"),
        };
        let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *response.status_mut() = status;
        ready(Ok(response))
    }
}
