//! How to connect: [`ConnectOptions`] and the [`Transport`] choice.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::Value;

/// The engine.io transport a connection uses for its whole life (no upgrades).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// One websocket (`transport=websocket` from the first request).
    #[default]
    WebSocket,
    /// HTTP long-polling over two keep-alive HTTP/1.1 connections: one for the long `GET`
    /// loop that receives, one for the `POST`s that send.
    Polling,
}

/// How to connect a [`SocketClient`](super::SocketClient) or a
/// [`Connection`](super::Connection).
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Server base url, `http://host:port` (or `ws://host:port`); any path in it is ignored.
    pub url: String,
    /// engine.io path on the server. Default `/socket.io/`.
    pub path: String,
    /// Auth payload sent with the Socket.IO CONNECT packet (usually a JSON object).
    pub auth: Option<Value>,
    /// Timeout of the whole connection (TCP, transport and Socket.IO handshakes). Default 5 s.
    pub timeout: Duration,
    /// Source address to bind the TCP socket to (e.g. `127.0.0.2`), so that one process can
    /// open more than 64k sockets to the same server by spreading them over loopback addresses.
    pub local_addr: Option<IpAddr>,
    /// The transport. Default websocket.
    pub transport: Transport,
    /// Extra HTTP headers of the handshake request (websocket) or of every request
    /// (polling), e.g. `Cookie` and `Origin` as a browser would send them.
    pub headers: Vec<(String, String)>,
}

impl ConnectOptions {
    /// Options for `url` (e.g. `http://127.0.0.1:3000`) with the defaults.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            path: "/socket.io/".to_owned(),
            auth: None,
            timeout: Duration::from_secs(5),
            local_addr: None,
            transport: Transport::WebSocket,
            headers: Vec::new(),
        }
    }

    /// Adds an HTTP header to the transport's requests (see [`ConnectOptions::headers`]).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the auth payload of the Socket.IO CONNECT packet.
    pub fn auth(mut self, auth: Value) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Binds the TCP socket(s) to this source address before connecting.
    pub fn local_addr(mut self, ip: IpAddr) -> Self {
        self.local_addr = Some(ip);
        self
    }

    /// Sets the connection timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the engine.io path (default `/socket.io/`).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Uses HTTP long-polling instead of websocket when `polling` is true.
    pub fn polling(mut self, polling: bool) -> Self {
        self.transport = if polling {
            Transport::Polling
        } else {
            Transport::WebSocket
        };
        self
    }
}
