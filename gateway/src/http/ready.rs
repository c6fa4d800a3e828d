//! `GET /readyz`: whether this instance can serve the cluster now, for a load balancer or an
//! orchestrator's readiness probe. `/healthz` only says the process is alive.
//!
//! With Redis, ready means: Redis answers `PING` within [`PING_TIMEOUT`] on the process's one
//! command connection (adapter, sessions, rate limits, settings), its one subscriber (the
//! adapter's channels and the settings invalidations, probed through Redis every few
//! seconds) is in place, and the adapter serves the chat namespace. Standalone, an instance
//! is always ready.

use std::{collections::BTreeMap, time::Duration};

use axum::{Json, extract::State, http::StatusCode};
use serde::Serialize;

use super::HttpState;
use crate::mode::Mode;

/// How long the Redis check waits for its PONG.
pub(crate) const PING_TIMEOUT: Duration = Duration::from_millis(250);

/// The body of `GET /readyz`.
#[derive(Debug, Serialize)]
pub(crate) struct Readiness {
    /// Every check passed.
    pub(crate) ready: bool,
    /// Each check by name.
    checks: BTreeMap<&'static str, Check>,
}

/// The outcome of one check.
#[derive(Debug, Serialize)]
struct Check {
    ok: bool,
    /// What was seen, for humans.
    detail: String,
}

impl Check {
    fn new(ok: bool, detail: impl Into<String>) -> Self {
        Self {
            ok,
            detail: detail.into(),
        }
    }
}

/// `GET /readyz`: 200 when ready, else 503; the body says which check failed either way.
pub(super) async fn readyz(State(state): State<HttpState>) -> (StatusCode, Json<Readiness>) {
    let readiness = readiness(&state).await;
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness))
}

/// Runs the checks (at most [`PING_TIMEOUT`] long).
pub(crate) async fn readiness(state: &HttpState) -> Readiness {
    let mut checks = BTreeMap::new();
    match &*state.mode {
        Mode::Clustered {
            redis: connection,
            bus,
            accounts,
        } => {
            let redis = match accounts.store.ping(PING_TIMEOUT).await {
                Ok(()) => Check::new(true, "PONG"),
                Err(err) => Check::new(false, err.to_string()),
            };
            checks.insert("redis", redis);
            // One subscriber serves the adapter and the settings invalidations.
            let pubsub = if connection.is_connected() && accounts.settings.is_live() {
                Check::new(true, "subscribed")
            } else {
                Check::new(false, "Pub/Sub subscriber reconnecting")
            };
            checks.insert("pubsub", pubsub);
            let servers = bus.server_count();
            checks.insert(
                "adapter",
                Check::new(true, format!("{servers} live instances")),
            );
        }
        Mode::Standalone => {
            checks.insert("standalone", Check::new(true, "no Redis needed"));
        }
    }
    Readiness {
        ready: checks.values().all(|check| check.ok),
        checks,
    }
}
