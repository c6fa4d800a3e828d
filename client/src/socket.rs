//! [`SocketClient`]: a [`Connection`] whose events are decoded and queued for the caller to
//! read with [`SocketClient::next_event`]; the client the integration tests use.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use super::{ClientError, ConnectOptions, Connection, Event, EventHandler, RawEvent, Transport};

/// Items from the reader task: events, then at most one final error when the connection ends.
type EventRx = mpsc::UnboundedReceiver<Result<Event, ClientError>>;
type EventTx = mpsc::UnboundedSender<Result<Event, ClientError>>;

/// A connected Socket.IO socket on the main namespace, with its events queued.
#[derive(Debug)]
pub struct SocketClient {
    connection: Connection,
    events: EventRx,
}

impl SocketClient {
    /// Connects to `url` (e.g. `http://127.0.0.1:3000`) with the default [`ConnectOptions`].
    pub async fn connect(url: &str) -> Result<Self, ClientError> {
        Self::connect_with(ConnectOptions::new(url)).await
    }

    /// Connects with `opts`: engine.io handshake over the chosen transport, then Socket.IO
    /// CONNECT to `/`. Fails with [`ClientError::ConnectRefused`] when the server answers
    /// with CONNECT_ERROR, with [`ClientError::Timeout`] after `opts.timeout`.
    pub async fn connect_with(opts: ConnectOptions) -> Result<Self, ClientError> {
        let (tx, events) = mpsc::unbounded_channel();
        let connection = Connection::connect(&opts, Queue(tx)).await?;
        Ok(Self { connection, events })
    }

    /// The Socket.IO socket id the server assigned in its CONNECT answer.
    pub fn sid(&self) -> &str {
        self.connection.sid()
    }

    /// The transport this client runs on.
    pub fn transport(&self) -> Transport {
        self.connection.transport()
    }

    /// Emits `event` with `data` as its single argument (`Value::Null` is sent as `null`).
    pub async fn emit(&self, event: &str, data: Value) -> Result<(), ClientError> {
        self.connection.emit(event, &data).await
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
        self.connection.emit_with_ack(event, data, timeout)
    }

    /// Answers a server event that asked for an ack ([`Event::ack_id`]) with `data` as
    /// the single ack argument.
    pub async fn ack(&self, ack_id: u64, data: Value) -> Result<(), ClientError> {
        self.connection.ack(ack_id, data).await
    }

    /// Waits for the next server event. Returns [`ClientError::Timeout`] if none arrives
    /// within `timeout`, and [`ClientError::Disconnected`] (or [`ClientError::Protocol`] once,
    /// if the server sent an unsupported packet) after the connection ended.
    pub async fn next_event(&mut self, timeout: Duration) -> Result<Event, ClientError> {
        match tokio::time::timeout(timeout, self.events.recv()).await {
            Err(_) => Err(ClientError::Timeout),
            Ok(Some(item)) => item,
            Ok(None) => Err(self.connection.closed_error()),
        }
    }

    /// Returns an already received event, if any, without waiting.
    pub fn try_next_event(&mut self) -> Option<Event> {
        self.events.try_recv().ok()?.ok()
    }

    /// Sends a Socket.IO DISCONNECT and closes the transport (best effort, bounded by the
    /// connect timeout), then stops the reader task.
    pub async fn close(self) {
        self.connection.close().await;
    }
}

/// The handler behind a [`SocketClient`]: decodes every event and queues it.
struct Queue(EventTx);

impl EventHandler for Queue {
    fn on_event(&mut self, event: RawEvent<'_>) -> Result<(), ClientError> {
        let event = event.parse()?;
        // A send error means the client is gone, and its reader with it.
        let _ = self.0.send(Ok(event));
        Ok(())
    }

    fn on_close(&mut self, end: ClientError) {
        let _ = self.0.send(Err(end));
    }
}
