//! `GET /api/stats`: the gateway's own counters (sessions, rate limits, settings cache),
//! all zero in standalone mode.

use axum::{Json, extract::State};

use super::HttpState;
use crate::counters::Snapshot;

/// `GET /api/stats`.
pub(super) async fn stats(State(state): State<HttpState>) -> Json<Snapshot> {
    Json(state.counters.read())
}
