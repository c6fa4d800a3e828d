//! The one error type of the client.

use tokio_tungstenite::tungstenite;

/// Everything that can go wrong while connecting, sending or receiving.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TCP connection could not be set up (bad url, unreachable address, bind failure).
    #[error("connect failed: {0}")]
    Connect(String),
    /// The server answered the Socket.IO CONNECT with a CONNECT_ERROR packet; holds its
    /// message (for socketioxide, the `Display` of the connect middleware's error).
    #[error("connection refused by the server: {0}")]
    ConnectRefused(String),
    /// The operation did not finish within its timeout.
    #[error("timed out")]
    Timeout,
    /// The connection is gone; holds the reason (server DISCONNECT, engine.io CLOSE,
    /// websocket close, EOF or a transport error).
    #[error("disconnected: {0}")]
    Disconnected(String),
    /// The server sent something this client does not understand (including binary packets
    /// and namespaces other than `/`, which are not supported).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The websocket layer failed (handshake rejected, write error).
    #[error("websocket error: {0}")]
    WebSocket(#[from] tungstenite::Error),
    /// The HTTP long-polling transport failed during the handshake or a send (HTTP error,
    /// unexpected status, oversized body).
    #[error("HTTP long-polling error: {0}")]
    Http(String),
}

impl ClientError {
    /// A short, stable label of the kind of error, for counting failures by reason
    /// (`connect`, `connect_refused`, `timeout`, `disconnected`, `protocol`, `websocket`, `http`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Connect(_) => "connect",
            Self::ConnectRefused(_) => "connect_refused",
            Self::Timeout => "timeout",
            Self::Disconnected(_) => "disconnected",
            Self::Protocol(_) => "protocol",
            Self::WebSocket(_) => "websocket",
            Self::Http(_) => "http",
        }
    }
}
