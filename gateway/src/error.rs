//! The gateway's one error type: startup failures and the reasons a client request is refused.
//! A refusal becomes the client-visible `{error: "<Display>"}` ack at the edge (`chat::reply`).

use std::io;

/// Everything that can go wrong in the gateway.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be resolved or bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address from `--listen`.
        addr: String,
        /// The underlying socket error.
        source: io::Error,
    },
    /// An entry of `--cors-origins` is not a valid origin header value.
    #[error("invalid CORS origin {0:?}")]
    CorsOrigin(String),
    /// The Redis adapter could not start or register a namespace.
    #[error("Redis adapter: {0}")]
    Adapter(#[from] redis_adapter::Error),
    /// The HTTP server stopped on an I/O error.
    #[error("HTTP server: {0}")]
    Serve(#[source] io::Error),
    /// The HTTP server task panicked or was cancelled.
    #[error("HTTP server task: {0}")]
    ServerTask(#[from] tokio::task::JoinError),

    /// A client event did not have the expected shape (not an object, missing or mistyped field).
    #[error("invalid payload: {0}")]
    InvalidPayload(String),
    /// A room name broke the naming rules.
    #[error("invalid room: {0}")]
    InvalidRoom(&'static str),
    /// A message text broke the text rules.
    #[error("invalid text: {0}")]
    InvalidText(&'static str),
    /// The handshake `auth.name` broke the display-name rules.
    #[error("invalid name: {0}")]
    InvalidName(&'static str),
    /// The client addressed a room it has not joined.
    #[error("not a member of this room")]
    NotAMember,
    /// The adapter could not hand the event to the other instances; local members were served.
    #[error("cluster unavailable")]
    ClusterUnavailable,
    /// A server-side bug (an outgoing payload failed to serialize); details are in the logs.
    #[error("internal error")]
    Internal,
}

impl Error {
    /// Sorts the outcome of a room broadcast from the sender's point of view.
    ///
    /// Only an adapter failure concerns the sender: the other instances were not reached (the
    /// adapter has still served the local members). A local member that could not take the
    /// packet (closing, or its buffer full) is that member's problem and is only logged.
    pub(crate) fn from_broadcast(
        result: Result<(), socketioxide::BroadcastError>,
    ) -> Result<(), Self> {
        use socketioxide::BroadcastError;
        match result {
            Ok(()) => Ok(()),
            Err(BroadcastError::Adapter(err)) => {
                // The adapter already warns about each failed publish.
                tracing::debug!(%err, "broadcast did not reach the other instances");
                Err(Self::ClusterUnavailable)
            }
            Err(BroadcastError::Socket(errors)) => {
                tracing::debug!(failed = errors.len(), "some local members were not served");
                Ok(())
            }
            Err(BroadcastError::Serialize(err)) => {
                tracing::error!(%err, "could not serialize a broadcast");
                Err(Self::Internal)
            }
        }
    }
}
