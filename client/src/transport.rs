//! The transport a connection runs on, behind two enums: the reader task's receiving half and
//! the shared sending half. Everything above this module is transport-agnostic.

use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::{ClientError, ConnectOptions, Transport, polling, websocket};

/// The receiving half, owned by the reader task.
pub(crate) enum Reader {
    WebSocket(websocket::Reader),
    Polling(polling::Reader),
}

/// The sending half.
pub(crate) enum Writer {
    WebSocket(websocket::Writer),
    Polling(polling::Writer),
}

/// One engine.io packet as received.
pub(crate) enum Frame {
    /// A websocket text frame.
    WebSocket(Utf8Bytes),
    /// One packet of a long-polling payload.
    Polling(String),
}

impl Frame {
    /// The packet text.
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Self::WebSocket(text) => text.as_str(),
            Self::Polling(text) => text,
        }
    }
}

/// Opens the transport chosen in `opts` to `host` and completes the engine.io handshake up to
/// (websocket) or including (polling) the OPEN packet.
pub(crate) async fn open(
    opts: &ConnectOptions,
    host: &str,
) -> Result<(Reader, Writer), ClientError> {
    Ok(match opts.transport {
        Transport::WebSocket => {
            let (reader, writer) = websocket::open(opts, host).await?;
            (Reader::WebSocket(reader), Writer::WebSocket(writer))
        }
        Transport::Polling => {
            let (reader, writer) = polling::open(opts, host).await?;
            (Reader::Polling(reader), Writer::Polling(writer))
        }
    })
}

impl Reader {
    /// The next engine.io packet.
    pub(crate) async fn next_frame(&mut self) -> Result<Frame, ClientError> {
        match self {
            Self::WebSocket(reader) => reader.next_frame().await.map(Frame::WebSocket),
            // Boxed, like every polling future here, so that the HTTP machinery does not
            // inflate the reader tasks of websocket connections, which are the many.
            Self::Polling(reader) => Box::pin(reader.next_frame()).await.map(Frame::Polling),
        }
    }
}

impl Writer {
    /// Sends one engine.io packet.
    pub(crate) async fn send(&self, packet: String) -> Result<(), ClientError> {
        match self {
            Self::WebSocket(writer) => writer.send(packet).await,
            Self::Polling(writer) => Box::pin(writer.send(packet)).await,
        }
    }

    /// Leaves on the client's initiative: Socket.IO DISCONNECT, then the transport's close.
    pub(crate) async fn disconnect(&self) {
        match self {
            Self::WebSocket(writer) => {
                let _ = writer.send(super::packet::DISCONNECT.to_owned()).await;
                writer.close().await;
            }
            Self::Polling(writer) => Box::pin(writer.close()).await,
        }
    }

    /// Closes the transport after the connection ended (best effort, nothing to tell).
    pub(crate) async fn shutdown(&self) {
        match self {
            Self::WebSocket(writer) => writer.close().await,
            Self::Polling(_) => {}
        }
    }
}
