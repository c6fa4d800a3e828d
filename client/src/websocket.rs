//! The websocket transport: one websocket per connection, one engine.io packet per frame.

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{
    Message, Utf8Bytes,
    client::IntoClientRequest,
    http::{HeaderName, HeaderValue},
    protocol::WebSocketConfig,
};

use super::{ClientError, ConnectOptions, tcp};

/// Websocket read buffer per connection: small, since load tests open tens of thousands.
const READ_BUFFER_SIZE: usize = 4 * 1024;

type Ws = WebSocketStream<TcpStream>;

/// The receiving half, owned by the reader task.
pub(crate) struct Reader(SplitStream<Ws>);

/// The sending half, shared by the owner (emits) and the reader task (pongs).
pub(crate) struct Writer(Mutex<SplitSink<Ws, Message>>);

/// Opens the websocket to `{path}?EIO=4&transport=websocket` on `host`.
pub(crate) async fn open(
    opts: &ConnectOptions,
    host: &str,
) -> Result<(Reader, Writer), ClientError> {
    let tcp = tcp::connect(host, opts.local_addr).await?;
    let url = format!("ws://{host}{}?EIO=4&transport=websocket", opts.path);
    let mut request = url.into_client_request()?;
    for (name, value) in &opts.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| ClientError::Http(format!("header name {name:?}: {e}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|e| ClientError::Http(format!("header value {value:?}: {e}")))?;
        request.headers_mut().append(name, value);
    }
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_SIZE);
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, tcp, Some(config)).await?;
    let (sink, stream) = ws.split();
    Ok((Reader(stream), Writer(Mutex::new(sink))))
}

impl Reader {
    /// The next text frame; a websocket close or EOF is [`ClientError::Disconnected`].
    pub(crate) async fn next_frame(&mut self) -> Result<Utf8Bytes, ClientError> {
        loop {
            match self.0.next().await {
                Some(Ok(Message::Text(text))) => return Ok(text),
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
}

impl Writer {
    /// Sends one text frame (one engine.io packet).
    pub(crate) async fn send(&self, frame: String) -> Result<(), ClientError> {
        Ok(self.0.lock().await.send(Message::text(frame)).await?)
    }

    /// Sends a websocket close (best effort).
    pub(crate) async fn close(&self) {
        let _ = self.0.lock().await.close().await;
    }
}
