//! `GET /api/stats`: the gateway's own counters (sessions, rate limits, settings cache),
//! all zero in standalone mode.

use axum::{Json, extract::State};
use socketioxide::adapter::Adapter;

use super::HttpState;
use crate::counters::Snapshot;

/// `GET /api/stats`.
pub(super) async fn stats<A: Adapter>(State(state): State<HttpState<A>>) -> Json<Snapshot> {
    Json(state.counters.read())
}
