//! The worker's admin listener (`gateway worker --admin-listen`): `GET /metrics`, the job
//! counters and the queue's depth read at scrape time, and `GET /healthz`.

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
    routing::get,
};
use tokio::{net::TcpListener, task::JoinHandle};

use super::{metrics::record_depth, queue::Queue};
use crate::metrics::{self, TEXT_FORMAT};

/// Serves the routes on `listener`; abort the task to stop.
pub(super) fn serve(listener: TcpListener, queue: Queue) -> JoinHandle<()> {
    let app = Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(queue);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "worker admin listener");
    }
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(%err, "the worker's admin listener stopped");
        }
    })
}

async fn scrape(State(queue): State<Queue>) -> Response {
    let Some(handle) = metrics::handle() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder unavailable",
        )
            .into_response();
    };
    record_depth(&queue).await;
    handle.run_upkeep();
    ([(CONTENT_TYPE, TEXT_FORMAT)], handle.render()).into_response()
}
