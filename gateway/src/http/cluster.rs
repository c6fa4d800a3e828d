//! `GET /api/cluster`: which instance answered, how many instances serve the chat and how many
//! sockets this one holds; `GET /api/cluster/sockets`: how many the whole cluster holds.

use axum::{Json, extract::State, http::StatusCode};
use redis_adapter::Selection;
use serde::Serialize;

use super::HttpState;

/// The body of `GET /api/cluster`: cheap, answered from this instance's own view.
#[derive(Debug, Serialize)]
pub(super) struct ClusterInfo {
    /// This instance's id.
    instance: String,
    /// Live instances serving the chat, this one included.
    servers: u16,
    /// Sockets connected to this instance's chat namespace.
    sockets_local: usize,
}

/// The body of `GET /api/cluster/sockets`.
#[derive(Debug, Serialize)]
pub(super) struct ClusterSockets {
    /// Sockets connected to the chat on every live instance.
    sockets: usize,
}

/// `GET /api/cluster`.
pub(super) async fn cluster(State(state): State<HttpState>) -> Json<ClusterInfo> {
    let sockets_local = state.chat.local_sockets(&Selection::default()).len();
    Json(ClusterInfo {
        instance: state.instance.to_string(),
        servers: state.mode.servers(),
        sockets_local,
    })
}

/// `GET /api/cluster/sockets`: asks every live instance (a cluster-wide `fetch_sockets`,
/// which waits at most the request timeout); 503 when the cluster cannot be asked.
pub(super) async fn sockets(
    State(state): State<HttpState>,
) -> Result<Json<ClusterSockets>, StatusCode> {
    match state.chat.fetch_sockets(&Selection::default()).await {
        Ok(sockets) => Ok(Json(ClusterSockets {
            sockets: sockets.len(),
        })),
        Err(err) => {
            tracing::warn!(%err, "cluster-wide socket count failed");
            Err(StatusCode::SERVICE_UNAVAILABLE)
        }
    }
}
