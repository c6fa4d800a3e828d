//! [`Connection`]: one Socket.IO socket whose server events go to an [`EventHandler`] on the
//! connection's reader task. The reader task answers engine.io pings, routes acks to the
//! pending emits and hands events to the handler; writes share the transport's sending half.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::task::AbortHandle;

use super::packet::{self, Packet};
use super::shared::{AckGuard, PendingAck, Shared};
use super::transport::{self, Reader, Writer};
use super::{ClientError, ConnectOptions, EventHandler, Transport, tcp};

/// A connected Socket.IO socket on the main namespace whose events go to a handler.
/// Dropping it stops its reader task and closes the transport at once.
pub struct Connection {
    sid: String,
    transport: Transport,
    writer: Arc<Writer>,
    shared: Arc<Shared>,
    reader: AbortHandle,
    timeout: Duration,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("sid", &self.sid)
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects with `opts` (engine.io handshake, then Socket.IO CONNECT to `/`) and starts the
    /// reader task that feeds `handler`. Fails with [`ClientError::ConnectRefused`] when the
    /// server answers with CONNECT_ERROR, with [`ClientError::Timeout`] after `opts.timeout`.
    pub async fn connect(
        opts: &ConnectOptions,
        handler: impl EventHandler,
    ) -> Result<Self, ClientError> {
        tokio::time::timeout(opts.timeout, Self::handshake(opts, handler))
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    async fn handshake(
        opts: &ConnectOptions,
        handler: impl EventHandler,
    ) -> Result<Self, ClientError> {
        let host = tcp::host_port(&opts.url)?;
        let (mut reader, writer) = transport::open(opts, host).await?;
        if opts.transport == Transport::WebSocket {
            let frame = reader.next_frame().await?;
            match packet::decode(frame.as_str())? {
                Packet::Open { .. } => {}
                other => return Err(unexpected("engine.io OPEN", &other)),
            }
        }
        writer.send(packet::connect(opts.auth.as_ref())?).await?;
        let sid = loop {
            let frame = reader.next_frame().await?;
            match packet::decode(frame.as_str())? {
                Packet::Connect { sid } => break sid,
                Packet::ConnectError(message) => return Err(ClientError::ConnectRefused(message)),
                Packet::Ping => writer.send(packet::PONG.to_owned()).await?,
                Packet::Noop => {}
                other => return Err(unexpected("Socket.IO CONNECT", &other)),
            }
        };
        let writer = Arc::new(writer);
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(read_loop(reader, writer.clone(), shared.clone(), handler));
        Ok(Self {
            sid,
            transport: opts.transport,
            writer,
            shared,
            reader: task.abort_handle(),
            timeout: opts.timeout,
        })
    }

    /// The Socket.IO socket id the server assigned in its CONNECT answer.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// The transport this connection runs on.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Whether the connection has ended (server disconnect, transport error).
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// [`ClientError::Disconnected`] with the reason the connection ended.
    pub(crate) fn closed_error(&self) -> ClientError {
        self.shared.closed_error()
    }

    /// Emits `event` with `data` as its single argument, without asking for an ack.
    pub async fn emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), ClientError> {
        send(
            &self.writer,
            &self.shared,
            packet::event(event, data, None)?,
        )
        .await
    }

    /// Emits `event` with `data` as its single argument and an ack id. Resolves once the packet
    /// was handed to the transport, to a [`PendingAck`] to wait on, so that the caller can
    /// tell "sent" from "acknowledged" and keep sending meanwhile.
    pub async fn emit_acked<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<PendingAck, ClientError> {
        let (id, rx) = self.shared.register_ack()?;
        let guard = AckGuard(self.shared.clone(), id);
        send(
            &self.writer,
            &self.shared,
            packet::event(event, data, Some(id))?,
        )
        .await?;
        Ok(PendingAck::new(rx, guard))
    }

    /// Emits `event` with `data` and waits for the server's ack; see
    /// [`SocketClient::emit_with_ack`](super::SocketClient::emit_with_ack).
    pub fn emit_with_ack(
        &self,
        event: &str,
        data: Value,
        timeout: Duration,
    ) -> impl Future<Output = Result<Value, ClientError>> + Send + use<> {
        let writer = self.writer.clone();
        let prepared = self.shared.register_ack().and_then(|(id, rx)| {
            let guard = AckGuard(self.shared.clone(), id);
            Ok((packet::event(event, &data, Some(id))?, guard, rx))
        });
        async move {
            let (frame, guard, rx) = prepared?;
            let shared = &guard.0;
            tokio::time::timeout(timeout, async {
                send(&writer, shared, frame).await?;
                rx.await.map_err(|_| shared.closed_error())
            })
            .await
            .map_err(|_| ClientError::Timeout)?
        }
    }

    /// Answers a server event that asked for an ack with `data` as the single ack argument.
    pub async fn ack(&self, ack_id: u64, data: Value) -> Result<(), ClientError> {
        send(&self.writer, &self.shared, packet::ack(ack_id, &data)?).await
    }

    /// Sends a Socket.IO DISCONNECT and closes the transport (best effort, bounded by the
    /// connect timeout), then stops the reader task.
    pub async fn close(self) {
        let _ = tokio::time::timeout(self.timeout, self.writer.disconnect()).await;
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Sends one packet, unless the connection already ended.
async fn send(writer: &Writer, shared: &Shared, packet: String) -> Result<(), ClientError> {
    shared.ensure_open()?;
    writer
        .send(packet)
        .await
        .map_err(|e| match shared.ensure_open() {
            Err(closed) => closed,
            Ok(()) => e,
        })
}

/// The reader task: owns the receiving half until the connection ends.
async fn read_loop(
    mut reader: Reader,
    writer: Arc<Writer>,
    shared: Arc<Shared>,
    mut handler: impl EventHandler,
) {
    let end = loop {
        let frame = match reader.next_frame().await {
            Ok(frame) => frame,
            Err(e) => break transport_ended(e),
        };
        if let Err(e) = dispatch(frame.as_str(), &writer, &shared, &mut handler).await {
            break transport_ended(e);
        }
    };
    tracing::debug!(reason = %end, "socket.io connection ended");
    shared.close(match &end {
        ClientError::Disconnected(reason) => reason.clone(),
        other => other.to_string(),
    });
    handler.on_close(end);
    writer.shutdown().await;
}

/// Acts on one packet; an error ends the connection.
async fn dispatch(
    frame: &str,
    writer: &Writer,
    shared: &Shared,
    handler: &mut impl EventHandler,
) -> Result<(), ClientError> {
    match packet::decode(frame)? {
        Packet::Ping => writer.send(packet::PONG.to_owned()).await,
        Packet::Noop => Ok(()),
        Packet::Event(event) => handler.on_event(event),
        Packet::Ack { id, args } => {
            shared.resolve_ack(id, args);
            Ok(())
        }
        Packet::Disconnect => Err(ClientError::Disconnected(
            "server disconnected the socket".to_owned(),
        )),
        Packet::Close => Err(ClientError::Disconnected(
            "server closed the engine.io session".to_owned(),
        )),
        other => Err(unexpected("an event, ack or disconnect", &other)),
    }
}

/// Transport failures after the handshake mean the connection is gone.
fn transport_ended(e: ClientError) -> ClientError {
    match e {
        ClientError::WebSocket(e) => ClientError::Disconnected(e.to_string()),
        ClientError::Http(e) | ClientError::Connect(e) => ClientError::Disconnected(e),
        other => other,
    }
}

fn unexpected(expected: &str, got: &Packet<'_>) -> ClientError {
    ClientError::Protocol(format!("expected {expected}, got {got:?}"))
}
