//! What an engine.io server is configured with; the defaults are engine.io's own.

use std::time::Duration;

/// How an engine.io server behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// The request path served, with its trailing slash: Socket.IO's `/socket.io/`.
    pub path: String,
    /// How often the server pings each session (`pingInterval` of the handshake).
    pub ping_interval: Duration,
    /// How long after a ping the session may take to answer before it is closed
    /// (`pingTimeout`).
    pub ping_timeout: Duration,
    /// The longest message a client may send, and the largest polling request body
    /// (`maxPayload`); more closes the session.
    pub max_payload: usize,
    /// Bytes that may wait for one session's transport (a websocket's send buffer full, or a
    /// polling client not polling); a session over it is closed as too slow.
    pub max_buffered: usize,
    /// How long bytes may wait for a websocket that takes none of them; the session is then
    /// closed as too slow.
    pub max_stall: Duration,
    /// Sessions open at once; a handshake beyond it is answered 503.
    pub max_sessions: usize,
    /// How long a connection may take to send a request head.
    pub request_head_timeout: Duration,
    /// How long a session may stay open without the layer above counting it established
    /// ([`Handler::is_established`](super::Handler::is_established); Socket.IO: with no
    /// namespace connected, a CONNECT pending or refused included): checked once, that long
    /// after the session opened, and the session closed if it is not (socket.io's
    /// `connectTimeout`).
    pub connect_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            path: "/socket.io/".into(),
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            max_payload: 1_000_000,
            max_buffered: 4 << 20,
            max_stall: Duration::from_secs(10),
            max_sessions: 100_000,
            request_head_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(45),
        }
    }
}
