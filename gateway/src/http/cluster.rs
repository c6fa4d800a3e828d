//! `GET /api/cluster`: which instance answered, how many instances serve the chat and how many
//! sockets this one holds.

use axum::{Json, extract::State};
use serde::Serialize;
use socketioxide::adapter::Adapter;

use super::HttpState;

/// The namespace the chat lives in.
const CHAT_NS: &str = "/";

/// Where the instance count comes from.
#[derive(Clone)]
pub(crate) enum Peers {
    /// No cluster: this instance is alone.
    Standalone,
    /// The Redis adapter's live view of the cluster.
    Redis(redis_adapter::RedisAdapterState),
}

impl Peers {
    /// Live instances serving the chat, this one included.
    fn servers(&self) -> u16 {
        match self {
            Self::Standalone => 1,
            // `None` only before the namespace is registered; by then this instance serves it.
            Self::Redis(state) => state.server_count(CHAT_NS).unwrap_or(1),
        }
    }
}

/// The body of `GET /api/cluster`.
#[derive(Debug, Serialize)]
pub(super) struct ClusterInfo {
    /// This instance's id.
    instance: String,
    /// Live instances serving the chat, this one included.
    servers: u16,
    /// Sockets connected to this instance's chat namespace.
    sockets_local: usize,
}

/// `GET /api/cluster`.
pub(super) async fn cluster<A: Adapter>(State(state): State<HttpState<A>>) -> Json<ClusterInfo> {
    let sockets_local = state.io.of(CHAT_NS).map_or(0, |chat| chat.sockets().len());
    Json(ClusterInfo {
        instance: state.instance.to_string(),
        servers: state.peers.servers(),
        sockets_local,
    })
}
