//! Plain HTTP next to Socket.IO: health and cluster status routes, and the CORS policy that
//! also covers Socket.IO's long-polling requests.

mod cluster;
mod cors;
mod detach;
mod health;

use std::sync::Arc;

use axum::{Router, routing::get};
use socketioxide::{SocketIo, adapter::Adapter};

pub(crate) use cluster::Peers;
pub(crate) use cors::cors_layer;
pub(crate) use detach::detach_from_read_buffer;

/// What the HTTP routes read.
pub(crate) struct HttpState<A: Adapter> {
    /// This instance's id.
    pub(crate) instance: Arc<str>,
    /// The Socket.IO server, for the local socket count.
    pub(crate) io: SocketIo<A>,
    /// How many instances serve the chat.
    pub(crate) peers: Peers,
}

impl<A: Adapter> Clone for HttpState<A> {
    fn clone(&self) -> Self {
        Self {
            instance: self.instance.clone(),
            io: self.io.clone(),
            peers: self.peers.clone(),
        }
    }
}

/// The HTTP routes: `GET /healthz`, `GET /api/cluster` and `GET /api/cluster/sockets`.
pub(crate) fn router<A: Adapter>(state: HttpState<A>) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/api/cluster", get(cluster::cluster::<A>))
        .route("/api/cluster/sockets", get(cluster::sockets::<A>))
        .with_state(state)
}
