//! The HTTP long-polling transport (engine.io v4) over plain HTTP/1.1 with hyper.
//!
//! A connection keeps two keep-alive HTTP connections to the same server: the reader's, which
//! always has one long `GET` outstanding, and the writer's, for `POST`s. engine.io allows one
//! request of each kind at a time per session, so concurrent sends are batched into one `POST`
//! (packets separated by `\x1e`), as browser clients do. A connection the server closed
//! between two requests (a keep-alive timeout) is dialled again.

use std::net::IpAddr;
use std::sync::{Arc, PoisonError};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, StatusCode, body::Incoming};
use hyper_util::rt::TokioIo;
use tokio::sync::Mutex;
use tokio::task::AbortHandle;

use super::{ClientError, ConnectOptions, packet, tcp};
use engine::eio::SEPARATOR;

/// Largest response body accepted: a long-polling payload batches many packets.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// The receiving half: the `GET` loop and the unread rest of the last payload.
pub(crate) struct Reader {
    channel: Channel,
    /// The last payload and the offset of its next unread packet.
    payload: String,
    next: usize,
}

/// The sending half: `POST`s with batching.
pub(crate) struct Writer {
    /// Packets waiting for the next `POST`.
    outbox: std::sync::Mutex<Vec<String>>,
    /// The `POST` connection; held while a `POST` is in flight.
    channel: Mutex<Channel>,
}

/// Performs the engine.io handshake (`GET` without sid, answered by OPEN) on `host`.
pub(crate) async fn open(
    opts: &ConnectOptions,
    host: &str,
) -> Result<(Reader, Writer), ClientError> {
    let mut endpoint = Endpoint {
        host: host.to_owned(),
        uri: format!("{}?EIO=4&transport=polling", opts.path),
        local: opts.local_addr,
        headers: opts.headers.clone().into(),
    };
    let mut channel = Channel::new(Arc::new(endpoint.clone()));
    let body = channel.request(Method::GET, None).await?;
    let open = body.split(SEPARATOR).next().unwrap_or_default();
    let sid = match packet::decode(open)? {
        packet::Packet::Open { sid } => sid,
        other => {
            return Err(ClientError::Protocol(format!(
                "expected engine.io OPEN, got {other:?}"
            )));
        }
    };
    endpoint.uri = format!("{}&sid={sid}", endpoint.uri);
    let endpoint = Arc::new(endpoint);
    channel.endpoint = endpoint.clone();
    // Packets after OPEN in the handshake payload (none in practice) are read first.
    let next = open.len() + SEPARATOR.len_utf8();
    let reader = Reader {
        channel,
        payload: body,
        next,
    };
    let writer = Writer {
        outbox: std::sync::Mutex::default(),
        channel: Mutex::new(Channel::new(endpoint)),
    };
    Ok((reader, writer))
}

impl Reader {
    /// The next packet: from the current payload, else from a new long `GET`.
    pub(crate) async fn next_frame(&mut self) -> Result<String, ClientError> {
        while self.next >= self.payload.len() {
            self.payload = self.channel.request(Method::GET, None).await?;
            self.next = 0;
        }
        let rest = self.payload.get(self.next..).unwrap_or_default();
        let packet = rest.split(SEPARATOR).next().unwrap_or_default().to_owned();
        self.next += packet.len() + SEPARATOR.len_utf8();
        Ok(packet)
    }
}

impl Writer {
    /// Sends one packet, in a `POST` of its own or batched with packets sent meanwhile.
    pub(crate) async fn send(&self, packet: String) -> Result<(), ClientError> {
        self.outbox().push(packet);
        let mut channel = self.channel.lock().await;
        let batch = std::mem::take(&mut *self.outbox());
        if batch.is_empty() {
            return Ok(()); // a concurrent sender's POST carried it
        }
        let body = batch.join(SEPARATOR.encode_utf8(&mut [0; 4]));
        channel.request(Method::POST, Some(body)).await.map(drop)
    }

    /// Tells the server the session is over (Socket.IO DISCONNECT and engine.io CLOSE).
    pub(crate) async fn close(&self) {
        let _ = self
            .send(format!(
                "{}{SEPARATOR}{}",
                packet::DISCONNECT,
                packet::CLOSE
            ))
            .await;
    }

    fn outbox(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.outbox.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Where the requests of one session go.
#[derive(Debug, Clone)]
struct Endpoint {
    /// `host:port`, for the TCP connection and the `Host` header.
    host: String,
    /// Path and query, with the engine.io sid once known.
    uri: String,
    local: Option<IpAddr>,
    /// Extra headers of every request ([`ConnectOptions::headers`]).
    headers: Arc<[(String, String)]>,
}

impl Endpoint {
    /// Opens a new HTTP/1.1 connection; its driver runs on a task of its own.
    async fn dial(&self) -> Result<HttpConn, ClientError> {
        let tcp = tcp::connect(&self.host, self.local).await?;
        let (sender, conn) = http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| ClientError::Http(format!("{}: {e}", self.host)))?;
        let task = tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%e, "long-polling HTTP connection ended");
            }
        });
        Ok(HttpConn {
            sender,
            driver: task.abort_handle(),
        })
    }

    fn request(
        &self,
        method: Method,
        body: Option<String>,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(&self.uri)
            .header(HOST, &self.host);
        for (name, value) in self.headers.iter() {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request = match body {
            Some(body) => builder
                .header(CONTENT_TYPE, "text/plain;charset=UTF-8")
                .body(Full::new(Bytes::from(body))),
            None => builder.body(Full::new(Bytes::new())),
        };
        request.map_err(|e| ClientError::Http(format!("bad request: {e}")))
    }
}

/// One HTTP/1.1 connection; dropping it stops its driver task.
struct HttpConn {
    sender: SendRequest<Full<Bytes>>,
    driver: AbortHandle,
}

impl Drop for HttpConn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// A keep-alive HTTP connection to the endpoint, dialled again when the server closed it.
struct Channel {
    endpoint: Arc<Endpoint>,
    conn: Option<HttpConn>,
}

impl Channel {
    fn new(endpoint: Arc<Endpoint>) -> Self {
        Self {
            endpoint,
            conn: None,
        }
    }

    /// Sends one request and returns the body of its `200 OK` answer.
    async fn request(
        &mut self,
        method: Method,
        body: Option<String>,
    ) -> Result<String, ClientError> {
        let mut request = self.endpoint.request(method, body)?;
        // A kept-alive connection the server has just closed is dialled again, but only when
        // the request never left: a request that did is never sent twice.
        for _ in 0..2 {
            if self
                .conn
                .as_ref()
                .is_none_or(|conn| conn.sender.is_closed())
            {
                self.conn = Some(self.endpoint.dial().await?);
            }
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            if conn.sender.ready().await.is_err() {
                self.conn = None;
                continue;
            }
            match conn.sender.try_send_request(request).await {
                Ok(response) => return read_body(response).await,
                Err(mut err) => match err.take_message() {
                    Some(unsent) => {
                        request = unsent;
                        self.conn = None;
                    }
                    None => {
                        self.conn = None;
                        return Err(ClientError::Http(err.into_error().to_string()));
                    }
                },
            }
        }
        Err(ClientError::Http(format!(
            "{}: the connection closed before the request could be sent",
            self.endpoint.host
        )))
    }
}

/// The body of a `200 OK` as text; any other status is an error with the body's start.
async fn read_body(response: Response<Incoming>) -> Result<String, ClientError> {
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| ClientError::Http(format!("reading the body: {e}")))?
        .to_bytes();
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| ClientError::Protocol("long-polling payload is not UTF-8".to_owned()))?;
    if status == StatusCode::OK {
        Ok(text)
    } else {
        Err(ClientError::Http(format!("HTTP {status}: {text:.120}")))
    }
}
