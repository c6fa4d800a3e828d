//! A lean engine.io v4 / Socket.IO v5 client over websocket.
//!
//! Scope: websocket transport only (no long-polling), the main namespace `/` only, text
//! packets only (binary packets end the connection with [`ClientError::Protocol`]).
//!
//! Each [`SocketClient`] runs one reader task. It answers engine.io pings, routes acks to
//! the pending [`SocketClient::emit_with_ack`] calls and queues server events for
//! [`SocketClient::next_event`]. Writes share the websocket sink behind an async mutex.
//! Dropping the client aborts its reader task and closes the TCP connection.

mod error;
mod packet;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, Stream, StreamExt};
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::AbortHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, Message, protocol::WebSocketConfig};

pub use error::ClientError;
use packet::Packet;

/// Websocket read buffer per connection: small, since load tests open tens of thousands.
const READ_BUFFER_SIZE: usize = 4 * 1024;

type Ws = WebSocketStream<TcpStream>;
type Sink = Arc<Mutex<SplitSink<Ws, Message>>>;
/// Items from the reader task: events, then at most one final error when the connection ends.
type EventRx = mpsc::UnboundedReceiver<Result<Event, ClientError>>;
type EventTx = mpsc::UnboundedSender<Result<Event, ClientError>>;

/// How to connect a [`SocketClient`].
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Server base url, `http://host:port` (or `ws://host:port`); any path in it is ignored.
    pub url: String,
    /// engine.io path on the server. Default `/socket.io/`.
    pub path: String,
    /// Auth payload sent with the Socket.IO CONNECT packet (usually a JSON object).
    pub auth: Option<Value>,
    /// Timeout of the whole connection (TCP, websocket and Socket.IO handshakes). Default 5 s.
    pub timeout: Duration,
    /// Source address to bind the TCP socket to (e.g. `127.0.0.2`), so that one process can
    /// open more than 64k sockets to the same server by spreading them over loopback addresses.
    pub local_addr: Option<IpAddr>,
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
        }
    }

    /// Sets the auth payload of the Socket.IO CONNECT packet.
    pub fn auth(mut self, auth: Value) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Binds the TCP socket to this source address before connecting.
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
}

/// An event sent by the server.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Event name.
    pub name: String,
    /// First argument (a copy of `args[0]`), `Value::Null` if there is none.
    pub data: Value,
    /// All arguments, in order.
    pub args: Vec<Value>,
    /// Set when the server asked for an acknowledgement: answer with [`SocketClient::ack`].
    pub ack_id: Option<u64>,
}

/// A connected Socket.IO socket on the main namespace.
pub struct SocketClient {
    sid: String,
    sink: Sink,
    shared: Arc<Shared>,
    events: EventRx,
    reader: AbortHandle,
    timeout: Duration,
}

impl fmt::Debug for SocketClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketClient")
            .field("sid", &self.sid)
            .finish_non_exhaustive()
    }
}

impl SocketClient {
    /// Connects to `url` (e.g. `http://127.0.0.1:3000`) with the default [`ConnectOptions`].
    pub async fn connect(url: &str) -> Result<Self, ClientError> {
        Self::connect_with(ConnectOptions::new(url)).await
    }

    /// Connects with `opts`: websocket to `{path}?EIO=4&transport=websocket`, engine.io
    /// OPEN, then Socket.IO CONNECT to `/`. Fails with [`ClientError::ConnectRefused`] when
    /// the server answers with CONNECT_ERROR, with [`ClientError::Timeout`] after
    /// `opts.timeout`.
    pub async fn connect_with(opts: ConnectOptions) -> Result<Self, ClientError> {
        tokio::time::timeout(opts.timeout, Self::handshake(&opts))
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    async fn handshake(opts: &ConnectOptions) -> Result<Self, ClientError> {
        let host = host_port(&opts.url)?;
        let tcp = tcp_connect(host, opts.local_addr).await?;
        let url = format!("ws://{host}{}?EIO=4&transport=websocket", opts.path);
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_SIZE);
        let (mut ws, _) =
            tokio_tungstenite::client_async_with_config(url, tcp, Some(config)).await?;

        match next_packet(&mut ws).await? {
            Packet::Open => {}
            other => return Err(unexpected("engine.io OPEN", &other)),
        }
        ws.send(Message::text(packet::connect(opts.auth.as_ref())?))
            .await?;
        let sid = loop {
            match next_packet(&mut ws).await? {
                Packet::Connect { sid } => break sid,
                Packet::ConnectError(message) => return Err(ClientError::ConnectRefused(message)),
                Packet::Ping => ws.send(Message::text(packet::PONG)).await?,
                Packet::Noop => {}
                other => return Err(unexpected("Socket.IO CONNECT", &other)),
            }
        };

        let (sink, stream) = ws.split();
        let sink = Arc::new(Mutex::new(sink));
        let shared = Arc::new(Shared::default());
        let (tx, events) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_loop(stream, sink.clone(), shared.clone(), tx));
        Ok(Self {
            sid,
            sink,
            shared,
            events,
            reader: reader.abort_handle(),
            timeout: opts.timeout,
        })
    }

    /// The Socket.IO socket id the server assigned in its CONNECT answer.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// Emits `event` with `data` as its single argument (`Value::Null` is sent as `null`).
    pub async fn emit(&self, event: &str, data: Value) -> Result<(), ClientError> {
        self.send(packet::event(event, &data, None)?).await
    }

    /// Emits `event` with `data` as its single argument and waits for the server's ack.
    /// Resolves to the first ack argument (`Value::Null` if none), [`ClientError::Timeout`]
    /// after `timeout`, or [`ClientError::Disconnected`] if the connection ends first.
    ///
    /// The returned future does not borrow the client: it can be spawned, or polled together
    /// with [`next_event`](Self::next_event) + [`ack`](Self::ack) when the server asks the
    /// client something before acking. Nothing is sent until it is polled.
    pub fn emit_with_ack(
        &self,
        event: &str,
        data: Value,
        timeout: Duration,
    ) -> impl Future<Output = Result<Value, ClientError>> + Send + use<> {
        let sink = self.sink.clone();
        let prepared = self.shared.register_ack().and_then(|(id, rx)| {
            let guard = AckGuard(self.shared.clone(), id);
            Ok((packet::event(event, &data, Some(id))?, guard, rx))
        });
        async move {
            let (frame, guard, rx) = prepared?;
            let shared = &guard.0;
            tokio::time::timeout(timeout, async {
                send(&sink, shared, frame).await?;
                rx.await.map_err(|_| shared.closed_error())
            })
            .await
            .map_err(|_| ClientError::Timeout)?
        }
    }

    /// Answers a server event that asked for an ack ([`Event::ack_id`]) with `data` as
    /// the single ack argument.
    pub async fn ack(&self, ack_id: u64, data: Value) -> Result<(), ClientError> {
        self.send(packet::ack(ack_id, &data)?).await
    }

    /// Waits for the next server event. Returns [`ClientError::Timeout`] if none arrives
    /// within `timeout`, and [`ClientError::Disconnected`] (or [`ClientError::Protocol`] once,
    /// if the server sent an unsupported packet) after the connection ended.
    pub async fn next_event(&mut self, timeout: Duration) -> Result<Event, ClientError> {
        match tokio::time::timeout(timeout, self.events.recv()).await {
            Err(_) => Err(ClientError::Timeout),
            Ok(Some(item)) => item,
            Ok(None) => Err(self.shared.closed_error()),
        }
    }

    /// Returns an already received event, if any, without waiting.
    pub fn try_next_event(&mut self) -> Option<Event> {
        self.events.try_recv().ok()?.ok()
    }

    /// Sends a Socket.IO DISCONNECT and closes the websocket (best effort, bounded by the
    /// connect timeout), then stops the reader task.
    pub async fn close(self) {
        let _ = tokio::time::timeout(self.timeout, async {
            let mut sink = self.sink.lock().await;
            let _ = sink.send(Message::text(packet::DISCONNECT)).await;
            let _ = sink.close().await;
        })
        .await;
    }

    async fn send(&self, frame: String) -> Result<(), ClientError> {
        send(&self.sink, &self.shared, frame).await
    }
}

impl Drop for SocketClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// State shared by a [`SocketClient`] and its reader task.
#[derive(Default)]
struct Shared(std::sync::Mutex<State>);

#[derive(Default)]
struct State {
    next_ack_id: u64,
    acks: HashMap<u64, oneshot::Sender<Value>>,
    /// Why the connection ended, once it did.
    closed: Option<String>,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn closed_error(&self) -> ClientError {
        let reason = self.state().closed.clone();
        ClientError::Disconnected(reason.unwrap_or_else(|| "connection closed".to_owned()))
    }

    fn ensure_open(&self) -> Result<(), ClientError> {
        match &self.state().closed {
            Some(reason) => Err(ClientError::Disconnected(reason.clone())),
            None => Ok(()),
        }
    }

    fn register_ack(&self) -> Result<(u64, oneshot::Receiver<Value>), ClientError> {
        let mut state = self.state();
        if let Some(reason) = &state.closed {
            return Err(ClientError::Disconnected(reason.clone()));
        }
        let id = state.next_ack_id;
        state.next_ack_id = id.wrapping_add(1);
        let (tx, rx) = oneshot::channel();
        state.acks.insert(id, tx);
        Ok((id, rx))
    }

    fn resolve_ack(&self, id: u64, args: Vec<Value>) {
        if let Some(tx) = self.state().acks.remove(&id) {
            let _ = tx.send(args.into_iter().next().unwrap_or(Value::Null));
        }
    }

    /// Marks the connection closed; pending acks fail as their senders drop.
    fn close(&self, reason: String) {
        let mut state = self.state();
        state.closed = Some(reason);
        state.acks.clear();
    }
}

/// Removes a pending ack on every exit of `emit_with_ack` (answer, timeout, error, drop).
struct AckGuard(Arc<Shared>, u64);

impl Drop for AckGuard {
    fn drop(&mut self) {
        self.0.state().acks.remove(&self.1);
    }
}

/// Sends one text frame, unless the connection already ended.
async fn send(sink: &Sink, shared: &Shared, frame: String) -> Result<(), ClientError> {
    shared.ensure_open()?;
    let result = sink.lock().await.send(Message::text(frame)).await;
    result.map_err(|e| match shared.ensure_open() {
        Err(closed) => closed,
        Ok(()) => ClientError::WebSocket(e),
    })
}

/// The reader task: owns the websocket stream half until the connection ends.
async fn read_loop(mut stream: SplitStream<Ws>, sink: Sink, shared: Arc<Shared>, events: EventTx) {
    let end = loop {
        let packet = match next_packet(&mut stream).await {
            Ok(packet) => packet,
            Err(ClientError::WebSocket(e)) => break ClientError::Disconnected(e.to_string()),
            Err(e) => break e,
        };
        match packet {
            Packet::Ping => {
                if let Err(e) = sink.lock().await.send(Message::text(packet::PONG)).await {
                    break ClientError::Disconnected(e.to_string());
                }
            }
            Packet::Noop => {}
            Packet::Event(event) => {
                if events.send(Ok(event)).is_err() {
                    return; // the client is gone
                }
            }
            Packet::Ack { id, args } => shared.resolve_ack(id, args),
            Packet::Disconnect => {
                break ClientError::Disconnected("server disconnected the socket".to_owned());
            }
            Packet::Close => {
                break ClientError::Disconnected("server closed the engine.io session".to_owned());
            }
            other => break unexpected("an event, ack or disconnect", &other),
        }
    };
    tracing::debug!(reason = %end, "socket.io connection ended");
    shared.close(match &end {
        ClientError::Disconnected(reason) => reason.clone(),
        other => other.to_string(),
    });
    let _ = events.send(Err(end));
    let _ = sink.lock().await.close().await;
}

/// Reads frames until the next engine.io packet; websocket close or EOF is
/// [`ClientError::Disconnected`].
async fn next_packet<S>(stream: &mut S) -> Result<Packet, ClientError>
where
    S: Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => return packet::decode(&text),
            Some(Ok(Message::Binary(_))) => {
                return Err(ClientError::Protocol(
                    "binary frames are not supported".to_owned(),
                ));
            }
            Some(Ok(Message::Close(_))) | None => {
                return Err(ClientError::Disconnected("websocket closed".to_owned()));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            Some(Err(e)) => return Err(e.into()),
        }
    }
}

fn unexpected(expected: &str, got: &Packet) -> ClientError {
    ClientError::Protocol(format!("expected {expected}, got {got:?}"))
}

/// `host:port` of an `http://` or `ws://` url.
fn host_port(url: &str) -> Result<&str, ClientError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("ws://"))
        .ok_or_else(|| ClientError::Connect(format!("{url}: expected http://host:port")))?;
    let host = rest.split_once('/').map_or(rest, |(host, _)| host);
    if host.is_empty() {
        return Err(ClientError::Connect(format!("{url}: missing host")));
    }
    Ok(host)
}

/// Opens the TCP connection, bound to `local` if given, with Nagle disabled.
async fn tcp_connect(host: &str, local: Option<IpAddr>) -> Result<TcpStream, ClientError> {
    let err = |e: std::io::Error| ClientError::Connect(format!("{host}: {e}"));
    let addr = tokio::net::lookup_host(host)
        .await
        .map_err(err)?
        .find(|addr| local.is_none_or(|ip| ip.is_ipv4() == addr.is_ipv4()))
        .ok_or_else(|| ClientError::Connect(format!("{host}: no address of the right family")))?;
    let stream = match local {
        None => TcpStream::connect(addr).await,
        Some(ip) => {
            let socket = if ip.is_ipv4() {
                TcpSocket::new_v4()
            } else {
                TcpSocket::new_v6()
            }
            .map_err(err)?;
            socket.bind(SocketAddr::new(ip, 0)).map_err(err)?;
            socket.connect(addr).await
        }
    }
    .map_err(err)?;
    stream.set_nodelay(true).map_err(err)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn host_port_accepts_http_and_ws_urls() {
        assert_eq!(
            host_port("http://127.0.0.1:3000").unwrap(),
            "127.0.0.1:3000"
        );
        assert_eq!(host_port("ws://localhost:80/").unwrap(), "localhost:80");
        assert_eq!(host_port("http://[::1]:1/x/y").unwrap(), "[::1]:1");
        assert!(matches!(
            host_port("https://a:1"),
            Err(ClientError::Connect(_))
        ));
        assert!(matches!(
            host_port("http:///"),
            Err(ClientError::Connect(_))
        ));
    }

    #[test]
    fn acks_are_forgotten_when_the_guard_drops() {
        let shared = Arc::new(Shared::default());
        let (id, _rx) = shared.register_ack().unwrap();
        drop(AckGuard(shared.clone(), id));
        assert!(shared.state().acks.is_empty());
    }

    #[test]
    fn closing_fails_pending_and_new_acks() {
        let shared = Shared::default();
        let (_, mut rx) = shared.register_ack().unwrap();
        shared.close("bye".to_owned());
        assert!(rx.try_recv().is_err());
        assert!(matches!(shared.register_ack(), Err(ClientError::Disconnected(r)) if r == "bye"));
    }
}
