//! The engine.io v4 server: sessions over HTTP long-polling and websocket, the upgrade from
//! one to the other, heartbeats and limits. The layer above (Socket.IO) is a [`Handler`]:
//! told of each session's open, messages and close, it sends through the [`Session`].
//!
//! Tasks: one per connection while hyper serves HTTP on it; a websocket's connection is then
//! read by that one task, with no read buffer while idle, and written to directly by
//! whichever task sends (see `sink`); one heartbeat task per session, which also closes a
//! session the layer above did not establish within [`Config::connect_timeout`].

mod config;
mod direct;
mod ids;
mod query;
mod requests;
mod session;
mod sink;
mod ws;

use crate::locks::lock;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;

pub(crate) use self::ids::new_id;
pub use self::{
    config::Config,
    query::Transport,
    requests::{App, EngineService, HttpBody, NotFound},
    session::{Corked, Session},
};

/// What the layer above the engine does with sessions. Calls come from the task that read
/// the packet (a websocket's reader, a polling POST), in the order the client sent them.
pub trait Handler: Send + Sync + 'static {
    /// A session opened; its open packet is sent.
    fn on_open(&self, session: &Arc<Session>);
    /// A client message arrived.
    fn on_message(&self, session: &Session, message: Message<'_>);
    /// The session closed, for `reason`; it accepts no more packets.
    fn on_close(&self, session: &Session, reason: CloseReason);

    /// Whether `session` is in use by the layer above (Socket.IO: a namespace is
    /// connected); asked once, [`Config::connect_timeout`] after the session opened, and a
    /// session that is not is closed ([`CloseReason::ConnectTimeout`]). Every session is, by
    /// default.
    fn is_established(&self, session: &Session) -> bool {
        let _ = session;
        true
    }
}

impl<H: Handler> Handler for Arc<H> {
    fn on_open(&self, session: &Arc<Session>) {
        (**self).on_open(session);
    }

    fn on_message(&self, session: &Session, message: Message<'_>) {
        (**self).on_message(session, message);
    }

    fn on_close(&self, session: &Session, reason: CloseReason) {
        (**self).on_close(session, reason);
    }

    fn is_established(&self, session: &Session) -> bool {
        (**self).is_established(session)
    }
}

/// How the application turns a new session away: the answer to its opening request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// Its status (429 for a rate limit, say).
    pub status: http::StatusCode,
    /// Its content type.
    pub content_type: &'static str,
    /// Its body.
    pub body: Bytes,
}

/// The application's say on each new session, before it opens (a cap per client address,
/// say): `Err` answers the opening request (a handshake poll, or a websocket before its 101)
/// with that [`Denial`] instead.
pub type Admission =
    Arc<dyn Fn(&http::request::Parts, std::net::SocketAddr) -> Result<(), Denial> + Send + Sync>;

/// A message from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// A text message (the data of an engine.io MESSAGE packet).
    Text(&'a str),
    /// A binary message.
    Binary(Bytes),
}

/// Why a session closed. New reasons may be added: match with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client sent CLOSE.
    ClientClosed,
    /// The server closed it ([`Session::close`], or the engine stopping).
    ServerClosed,
    /// No PONG within `pingTimeout` of a PING.
    PingTimeout,
    /// The websocket closed (a close frame, or the connection ended).
    TransportClosed,
    /// The connection failed.
    TransportError,
    /// A packet that is not one, a message over `maxPayload`, a frame the protocol forbids.
    InvalidPacket,
    /// More than `max_buffered` bytes waited for the client.
    TooSlow,
    /// A polling GET while another waited.
    DuplicatePoll,
    /// A polling POST while another was handled.
    OverlappingPost,
    /// The layer above did not establish the session within [`Config::connect_timeout`]
    /// (Socket.IO: no namespace connected).
    ConnectTimeout,
}

impl CloseReason {
    /// Whether the client is sent CLOSE (it did not end the session itself).
    fn client_is_told(self) -> bool {
        !matches!(
            self,
            Self::ClientClosed | Self::TransportClosed | Self::TransportError
        )
    }
}

/// An engine.io packet to send, encoded once whatever the number of sessions it goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// A text packet, type character first (`4hello` is the MESSAGE `hello`).
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Packet {
    /// The MESSAGE packet of `text`.
    pub fn message(text: &str) -> Self {
        Self::Text(crate::eio::encode(crate::eio::Kind::Message, text).into())
    }

    /// A text packet from a static encoding (`b"2"`, `b"3probe"`).
    pub(crate) fn text_static(text: &'static [u8]) -> Self {
        Self::Text(Bytes::from_static(text))
    }

    /// Its length in bytes, as encoded.
    pub fn len(&self) -> usize {
        match self {
            Self::Text(bytes) | Self::Binary(bytes) => bytes.len(),
        }
    }

    /// Whether it has no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An engine.io server: its sessions and its handler. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

/// What the server's tasks share.
pub(crate) struct Shared {
    config: Config,
    /// Sessions closed as too slow (their transport stayed behind past its bounds).
    slow_closed: std::sync::atomic::AtomicU64,
    /// The application's say on new sessions.
    admission: std::sync::OnceLock<Admission>,
    handler: Box<dyn Handler>,
    sessions: Mutex<HashMap<Arc<str>, Arc<Session>>>,
}

impl Shared {
    /// The open session `sid`.
    fn session(&self, sid: &str) -> Option<Arc<Session>> {
        lock(&self.sessions).get(sid).cloned()
    }

    /// Removes a closed session.
    fn forget(&self, sid: &str) {
        lock(&self.sessions).remove(sid);
    }
}

impl Drop for Shared {
    /// The server is gone with sessions still open (its runtime was dropped, say): their
    /// transports close, so that clients learn it at once. The handler is not told: what it
    /// would do next may need the runtime that is going away.
    fn drop(&mut self) {
        let sessions = std::mem::take(&mut *lock(&self.sessions));
        for session in sessions.into_values() {
            session.abandon();
        }
    }
}

impl Engine {
    /// A server configured by `config`, handing sessions to `handler`.
    pub fn new(config: Config, handler: impl Handler) -> Self {
        Self {
            shared: Arc::new(Shared {
                config,
                slow_closed: std::sync::atomic::AtomicU64::new(0),
                admission: std::sync::OnceLock::new(),
                handler: Box::new(handler),
                sessions: Mutex::default(),
            }),
        }
    }

    /// Lets `admission` decide on every new session from now on (once; `false` when one was
    /// set already).
    pub fn set_admission(&self, admission: Admission) -> bool {
        self.shared.admission.set(admission).is_ok()
    }

    /// Whether the application lets the request `parts` from `peer` open a session.
    pub(crate) fn admit(
        &self,
        parts: &http::request::Parts,
        peer: std::net::SocketAddr,
    ) -> Result<(), Denial> {
        match self.shared.admission.get() {
            Some(admission) => admission(parts, peer),
            None => Ok(()),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The open session `sid`.
    pub fn session(&self, sid: &str) -> Option<Arc<Session>> {
        self.shared.session(sid)
    }

    /// How many sessions were closed as too slow since the start.
    pub fn slow_closed(&self) -> u64 {
        self.shared
            .slow_closed
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The engine's metrics, under the adapter's names where they mean the same (so that
    /// dashboards do not change): sockets closed as too slow, and the open sessions.
    pub fn readings(&self) -> Vec<redis_adapter::Reading> {
        vec![
            redis_adapter::Reading {
                name: "redis_adapter_local_slow_sockets_total",
                label: None,
                kind: redis_adapter::MetricKind::Counter,
                value: self.slow_closed(),
            },
            redis_adapter::Reading {
                name: "engine_sessions",
                label: None,
                kind: redis_adapter::MetricKind::Gauge,
                value: self.session_count() as u64,
            },
        ]
    }

    /// How many sessions are open.
    pub fn session_count(&self) -> usize {
        lock(&self.shared.sessions).len()
    }

    /// Closes every session (each client is sent CLOSE).
    pub fn close_all(&self) {
        let sessions: Vec<Arc<Session>> = lock(&self.shared.sessions).values().cloned().collect();
        for session in sessions {
            session.close();
        }
    }
}

/// Pings `session` every `interval` and closes it when a PONG takes longer than `timeout`;
/// on the way, `connect_timeout` after it started, closes it unless the handler counts it
/// established.
async fn heartbeat(
    session: std::sync::Weak<Session>,
    interval: Duration,
    timeout: Duration,
    connect_timeout: Duration,
) {
    let mut deadline = tokio::time::Instant::now().checked_add(connect_timeout);
    loop {
        if !sleep_checking(&session, interval, &mut deadline).await {
            return;
        }
        match session.upgrade() {
            Some(session) if !session.is_closed() => session.ping(),
            _ => return,
        }
        if !sleep_checking(&session, timeout, &mut deadline).await {
            return;
        }
        match session.upgrade() {
            Some(session) if session.is_closed() => return,
            Some(session) if !session.has_ponged() => {
                return session.close_with(CloseReason::PingTimeout);
            }
            Some(_) => {}
            None => return,
        }
    }
}

/// Sleeps for `duration`; if `deadline` comes first, it is checked then (once): a session
/// its handler does not count established is closed. `false` when the session is closed
/// or gone.
async fn sleep_checking(
    session: &std::sync::Weak<Session>,
    duration: Duration,
    deadline: &mut Option<tokio::time::Instant>,
) -> bool {
    let started = tokio::time::Instant::now();
    let due = deadline.take_if(|at| started.checked_add(duration).is_none_or(|wake| *at <= wake));
    if let Some(at) = due {
        tokio::time::sleep_until(at).await;
        match session.upgrade() {
            Some(session) if session.is_closed() => return false,
            Some(session) if !session.is_established() => {
                session.close_with(CloseReason::ConnectTimeout);
                return false;
            }
            Some(_) => {}
            None => return false,
        }
    }
    tokio::time::sleep(duration.saturating_sub(started.elapsed())).await;
    true
}
