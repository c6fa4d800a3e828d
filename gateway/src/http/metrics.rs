//! `GET /metrics`: every metric in the Prometheus text format (names in `crate::metrics`).
//!
//! Values kept elsewhere are copied in at scrape time: the socket and room gauges, the
//! gateway's counters (`counters.rs`), the adapter's counters ([`redis_adapter::Stats`]), whether
//! Redis answers, readiness, the job spool and queue depth (`jobs::metrics`), and Redis's memory, `maxmemory` and evicted keys (appended only
//! when Redis answered in time, so a scrape during an outage has no stale or NaN value for
//! them; appended to this gateway's text, not the process's recorder, so that gateways sharing
//! a process in tests each report their own Redis).

use axum::{
    extract::State,
    http::{StatusCode, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
};
use redis_adapter::{MetricKind, Selection};

use super::{HttpState, ready};
use crate::{
    jobs,
    metrics::{
        self, READY, REDIS_EVICTED, REDIS_MAXMEMORY, REDIS_MEMORY, REDIS_UP, ROOMS,
        SCRAPE_REDIS_TIMEOUT, SOCKETS,
    },
    mode::Mode,
    store::Memory,
    tenancy,
};

/// `GET /metrics`.
pub(super) async fn metrics(State(state): State<HttpState>) -> Response {
    let Some(handle) = metrics::handle() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder unavailable",
        )
            .into_response();
    };
    let memory = scrape(&state).await;
    handle.run_upkeep();
    let mut body = handle.render();
    if let Some(memory) = memory {
        for (name, kind, help, value) in [
            (
                REDIS_MEMORY,
                "gauge",
                "used_memory of INFO memory",
                memory.used,
            ),
            (
                REDIS_MAXMEMORY,
                "gauge",
                "maxmemory of INFO memory (0: no limit)",
                memory.max,
            ),
            (
                REDIS_EVICTED,
                "counter",
                "evicted_keys of INFO stats",
                memory.evicted_keys,
            ),
        ] {
            body.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        }
    }
    ([(CONTENT_TYPE, metrics::TEXT_FORMAT)], body).into_response()
}

/// Copies the scrape-time values into the recorder; returns Redis's memory if it answered.
async fn scrape(state: &HttpState) -> Option<Memory> {
    let sockets = state.chat.local_sockets(&Selection::default()).len();
    metrics::gauge(SOCKETS, sockets as f64);
    let rooms = state
        .chat
        .held_rooms()
        .iter()
        .filter(|room| tenancy::is_chat_room(room))
        .count();
    metrics::gauge(ROOMS, rooms as f64);

    for reading in state.counters.read().readings() {
        metrics::counter_at(reading.metric, reading.value);
    }
    if let Mode::Clustered { redis, .. } = &*state.mode {
        // The `redis_adapter_local_*` counters are the socketioxide front end's, never
        // counted here: the engine reports its own under the same names.
        let readings = redis.counters().snapshot().readings();
        record(
            readings
                .into_iter()
                .filter(|reading| !reading.name.starts_with("redis_adapter_local_"))
                .collect(),
        );
    }
    record(state.engine.readings());
    record(state.chat.readings());
    let ready = ready::readiness(state).await.ready;
    metrics::gauge(READY, if ready { 1.0 } else { 0.0 });

    let Mode::Clustered { accounts, .. } = &*state.mode else {
        return None;
    };
    metrics::gauge(jobs::SPOOLED, accounts.jobs.spooled() as f64);
    if let Some(history) = &accounts.history {
        metrics::gauge(metrics::HISTORY_SPOOL_DEPTH, history.spooled().len() as f64);
    }
    jobs::record_depth(accounts.jobs.queue()).await;
    let memory = accounts.store.memory(SCRAPE_REDIS_TIMEOUT).await;
    metrics::gauge(REDIS_UP, if memory.is_some() { 1.0 } else { 0.0 });
    memory
}

/// Readings of the Redis layer and the engine, under the names they give them.
fn record(readings: Vec<redis_adapter::Reading>) {
    for reading in readings {
        let labels: Vec<::metrics::Label> = reading
            .label
            .iter()
            .map(|(key, value)| ::metrics::Label::new(*key, *value))
            .collect();
        match reading.kind {
            MetricKind::Counter => {
                ::metrics::counter!(reading.name, labels).absolute(reading.value)
            }
            MetricKind::Gauge => ::metrics::gauge!(reading.name, labels).set(reading.value as f64),
        }
    }
}
