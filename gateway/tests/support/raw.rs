//! A bare Socket.IO client over one websocket, for what `socketio_client` does not do:
//! sending request headers (a session cookie, `X-Forwarded-For`) with the handshake, opening
//! an engine.io session without ever sending CONNECT, sending an oversized message.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{
        Message,
        client::IntoClientRequest,
        http::{HeaderName, HeaderValue},
    },
};

use super::TIMEOUT;

/// A connected socket on namespace `/`.
pub struct RawSocket {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_ack: u64,
}

impl RawSocket {
    /// Opens a websocket to `url` (`http://host:port`) with `headers`, then sends the
    /// Socket.IO CONNECT with `auth`. `Err` holds the `connect_error` message.
    pub async fn connect(
        url: &str,
        headers: &[(&str, &str)],
        auth: Option<&Value>,
    ) -> Result<Self, String> {
        let mut socket = Self::open(url, headers).await;
        let connect = match auth {
            Some(auth) => format!("40{auth}"),
            None => "40".to_owned(),
        };
        socket.send(connect).await;
        let answer = socket.next_packet().await;
        if answer.starts_with("40") {
            Ok(socket)
        } else if let Some(error) = answer.strip_prefix("44") {
            let error: Value = serde_json::from_str(error).expect("a CONNECT_ERROR payload");
            Err(error["message"].as_str().unwrap_or_default().to_owned())
        } else {
            panic!("unexpected answer to CONNECT: {answer}")
        }
    }

    /// Opens a websocket to `url` with `headers` and reads the engine.io OPEN, sending no
    /// Socket.IO CONNECT.
    pub async fn open(url: &str, headers: &[(&str, &str)]) -> Self {
        let ws_url = format!(
            "{}/socket.io/?EIO=4&transport=websocket",
            url.replacen("http://", "ws://", 1)
        );
        let mut request = ws_url.into_client_request().expect("a websocket request");
        for (name, value) in headers {
            request.headers_mut().append(
                HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
                HeaderValue::from_str(value).expect("a header value"),
            );
        }
        let (ws, _) = tokio::time::timeout(TIMEOUT, connect_async(request))
            .await
            .expect("websocket handshake in time")
            .expect("websocket handshake");
        let mut socket = Self { ws, next_ack: 0 };
        let open = socket.next_packet().await;
        assert!(open.starts_with('0'), "engine.io OPEN expected, got {open}");
        socket
    }

    /// Sends `text` as one websocket text message, whatever it contains; `false` when the
    /// connection would not take it.
    pub async fn send_raw(&mut self, text: String) -> bool {
        self.ws.send(Message::text(text)).await.is_ok()
    }

    /// Whether the server closes the connection within `within` (pings are answered,
    /// packets skipped meanwhile).
    pub async fn closed_within(&mut self, within: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return false,
                Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(Message::Text(text)))) if text.as_str() == "2" => {
                    if self.ws.send(Message::text("3")).await.is_err() {
                        return true;
                    }
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Emits `event` with `data` and returns the ack's first argument; events received
    /// meanwhile are skipped.
    pub async fn emit_with_ack(&mut self, event: &str, data: &Value) -> Value {
        let id = self.next_ack;
        self.next_ack += 1;
        let packet = serde_json::to_string(&(event, data)).expect("an event packet");
        self.send(format!("42{id}{packet}")).await;
        let prefix = format!("43{id}");
        loop {
            let packet = self.next_packet().await;
            if let Some(args) = packet.strip_prefix(&prefix) {
                let args: Vec<Value> = serde_json::from_str(args).expect("ack arguments");
                return args.into_iter().next().unwrap_or(Value::Null);
            }
        }
    }

    async fn send(&mut self, text: String) {
        self.ws
            .send(Message::text(text))
            .await
            .expect("sending a packet");
    }

    /// The next engine.io packet that is not a ping (pings are answered).
    async fn next_packet(&mut self) -> String {
        loop {
            let message = tokio::time::timeout(TIMEOUT, self.ws.next())
                .await
                .expect("a packet in time")
                .expect("the connection is open")
                .expect("a websocket message");
            let Message::Text(text) = message else {
                continue;
            };
            if text.as_str() == "2" {
                self.send("3".to_owned()).await;
                continue;
            }
            return text.as_str().to_owned();
        }
    }
}
