//! `GET /api/cluster`: which instance answered, how many instances serve the chat and how many
//! sockets this one holds; `GET /api/cluster/sockets`: how many the whole cluster holds.

use axum::{Json, extract::State, http::StatusCode};
use serde::Serialize;
use socketioxide::adapter::Adapter;

use super::HttpState;
use crate::tenancy::CHAT_NS;

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
pub(super) async fn cluster<A: Adapter>(State(state): State<HttpState<A>>) -> Json<ClusterInfo> {
    let sockets_local = state.io.of(CHAT_NS).map_or(0, |chat| chat.sockets().len());
    Json(ClusterInfo {
        instance: state.instance.to_string(),
        servers: state.mode.servers(),
        sockets_local,
    })
}

/// `GET /api/cluster/sockets`: asks every live instance (a cluster-wide `fetch_sockets`,
/// which waits at most the request timeout); 503 when the cluster cannot be asked.
pub(super) async fn sockets<A: Adapter>(
    State(state): State<HttpState<A>>,
) -> Result<Json<ClusterSockets>, StatusCode> {
    let Some(chat) = state.io.of(CHAT_NS) else {
        return Ok(Json(ClusterSockets { sockets: 0 }));
    };
    match chat.fetch_sockets().await {
        Ok(sockets) => Ok(Json(ClusterSockets {
            sockets: sockets.len(),
        })),
        Err(err) => {
            tracing::warn!(%err, "cluster-wide socket count failed");
            Err(StatusCode::SERVICE_UNAVAILABLE)
        }
    }
}
