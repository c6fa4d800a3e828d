//! A connection whose first request is an engine.io websocket is taken before hyper: its
//! request head is peeked (nothing consumed until it is known to be one), read, answered 101
//! here, and the socket is the session's from then on. A websocket then never holds the
//! HTTP server's per-connection buffers; any other connection goes to hyper untouched.

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use http::{Method, Request};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::{
    Engine,
    query::{self, Transport},
    ws,
};

/// The longest request head peeked at.
const MAX_HEAD: usize = 8192;
/// The most headers read from it.
const MAX_HEADERS: usize = 64;

/// What became of a connection.
pub(crate) enum Taken {
    /// It was an engine.io websocket, and runs now in its reader's task.
    Websocket,
    /// Any other HTTP: for hyper, nothing read from it.
    Http(TcpStream),
    /// It closed, or sent no head in time, or was refused.
    Gone,
}

/// Peeks at the first request of `stream` and runs it as a websocket if it is one.
pub(crate) async fn take_websocket(engine: &Engine, stream: TcpStream, peer: SocketAddr) -> Taken {
    let timeout = engine.config().request_head_timeout;
    let head = match tokio::time::timeout(timeout, peek_head(&stream)).await {
        // No complete head within the bound: the connection is dropped now, as hyper's own
        // head timeout would drop it (handing it on would give a slow client the bound twice).
        Err(_elapsed) => return Taken::Gone,
        // Longer than we peek at, or ended: hyper answers as for any client.
        Ok(None) => return Taken::Http(stream),
        Ok(Some(head)) => head,
    };
    let Some(request) = websocket_request(&head, &engine.config().path) else {
        return Taken::Http(stream);
    };
    run(engine, stream, request, head.len(), peer).await
}

/// The head of a websocket request to `path`, as request parts; `None` for anything else.
fn websocket_request(head: &[u8], path: &str) -> Option<http::request::Parts> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    if !matches!(parsed.parse(head), Ok(httparse::Status::Complete(_))) {
        return None;
    }
    let target = parsed.path?;
    let (request_path, query) = target.split_once('?').unwrap_or((target, ""));
    let websocket = parsed.method == Some("GET")
        && request_path == path
        && matches!(query::parse(query), Ok(q) if q.transport == Transport::Websocket);
    if !websocket {
        return None;
    }
    let mut builder = Request::builder().method(Method::GET).uri(target);
    for header in parsed.headers.iter() {
        builder = builder.header(header.name, header.value);
    }
    builder.body(()).ok().map(|request| request.into_parts().0)
}

/// Peeks until the request head is complete; `None` when the connection ends first or the
/// head is longer than [`MAX_HEAD`].
async fn peek_head(stream: &TcpStream) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 1024];
    loop {
        stream.readable().await.ok()?;
        let seen = stream.peek(&mut buf).await.ok()?;
        if seen == 0 {
            return None;
        }
        if let Some(end) = buf[..seen].windows(4).position(|w| w == b"\r\n\r\n") {
            buf.truncate(end + 4);
            return Some(buf);
        }
        if seen == buf.len() {
            if buf.len() >= MAX_HEAD {
                return None;
            }
            buf.resize(buf.len() * 2, 0);
        } else {
            // The rest of the head is on its way: peeking again at once would spin.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// Answers websocket `request` (whose head is the first `head_len` bytes of `stream`) and
/// runs it.
async fn run(
    engine: &Engine,
    mut stream: TcpStream,
    request: http::request::Parts,
    head_len: usize,
    peer: SocketAddr,
) -> Taken {
    // The head peeked at, consumed now (its bytes are in `request`).
    let mut head = vec![0u8; head_len];
    if stream.read_exact(&mut head).await.is_err() {
        return Taken::Gone;
    }
    let target = query::parse(request.uri.query().unwrap_or_default())
        .and_then(|query| engine.websocket_target(&request.method, &request.headers, query.sid));
    let (key, upgrading) = match target {
        Ok(target) => target,
        Err(refusal) => {
            let status = refusal.status();
            let answer = raw(status, "application/json", refusal.body().as_bytes());
            let _gone = stream.write_all(&answer).await;
            return Taken::Gone;
        }
    };
    if upgrading.is_none()
        && let Err(denial) = engine.admit(&request, peer)
    {
        let answer = raw(denial.status, denial.content_type, &denial.body);
        let _gone = stream.write_all(&answer).await;
        return Taken::Gone;
    }
    let accepted = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        ws::accept_key(key.as_bytes())
    );
    if stream.write_all(accepted.as_bytes()).await.is_err() {
        if let Some(session) = &upgrading {
            session.abort_upgrade();
        }
        return Taken::Gone;
    }
    let opening = upgrading.is_none().then_some(request);
    engine.start_websocket(stream, Bytes::new(), opening, upgrading, peer);
    Taken::Websocket
}

/// The HTTP answer refusing a websocket request, closing the connection.
fn raw(status: http::StatusCode, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default(),
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(body);
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_engine_websocket_request_is_taken() {
        let head = b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n\
                     Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
        let parts = websocket_request(head, "/socket.io/");
        assert!(parts.is_some_and(|parts| parts.headers["upgrade"] == "websocket"));
        let polling = b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(websocket_request(polling, "/socket.io/").is_none());
        let elsewhere = b"GET /other/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(websocket_request(elsewhere, "/socket.io/").is_none());
        assert!(websocket_request(b"garbage\r\n\r\n", "/socket.io/").is_none());
    }
}
