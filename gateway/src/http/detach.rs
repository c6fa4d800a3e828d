//! Copies a request's URI and header values out of hyper's read buffer.
//!
//! hyper parses a request without copying: header values and the URI are slices of the
//! connection's read buffer (8 KiB and more). engineioxide keeps every socket's request parts
//! for the socket's whole life, and axum adds a copy of the URI (`OriginalUri`), so each idle
//! websocket pinned that whole buffer. Copying the few bytes that are kept lets the buffer go
//! once the connection is upgraded: about 8 KiB less per idle socket. Headers that only served
//! the handshake are not kept at all.

use axum::{
    extract::{OriginalUri, Request},
    http::{HeaderMap, HeaderName, HeaderValue, Uri, header},
};
use bytes::BytesMut;

/// Replaces the URI, the `OriginalUri` extension and every header value of `req` with
/// copies that own their bytes.
pub(crate) async fn detach_from_read_buffer(mut req: Request) -> Request {
    let uri = copy_uri(req.uri());
    if let Some(original) = req.extensions_mut().get_mut::<OriginalUri>() {
        // Usually the same URI: then both share the one copy.
        original.0 = if original.0 == uri {
            uri.clone()
        } else {
            copy_uri(&original.0)
        };
    }
    *req.uri_mut() = uri;
    *req.headers_mut() = copy_headers(req.headers());
    req
}

/// Headers consumed by the connection handshake itself and of no use afterwards: the
/// hop-by-hop ones (RFC 9110, 7.6.1) and the WebSocket negotiation. `Sec-WebSocket-Key` stays:
/// engineioxide answers the handshake with it after this middleware has run.
const HANDSHAKE_ONLY: [HeaderName; 6] = [
    header::CONNECTION,
    header::UPGRADE,
    header::TE,
    header::SEC_WEBSOCKET_VERSION,
    header::SEC_WEBSOCKET_EXTENSIONS,
    header::SEC_WEBSOCKET_PROTOCOL,
];

/// The headers worth keeping, their values all sliced from one new buffer: one allocation
/// instead of one per value. A value that cannot be re-created (it always can) keeps the
/// original.
fn copy_headers(headers: &HeaderMap) -> HeaderMap {
    let kept = || {
        headers
            .iter()
            .filter(|(name, _)| !HANDSHAKE_ONLY.contains(name))
    };
    let total = kept().map(|(_, value)| value.len()).sum();
    let mut buffer = BytesMut::with_capacity(total);
    for (_, value) in kept() {
        buffer.extend_from_slice(value.as_bytes());
    }
    let buffer = buffer.freeze();
    let mut copies = HeaderMap::with_capacity(kept().count());
    let mut start = 0;
    for (name, value) in kept() {
        let end = start + value.len();
        let copy = match HeaderValue::from_maybe_shared(buffer.slice(start..end)) {
            Ok(mut copy) => {
                copy.set_sensitive(value.is_sensitive());
                copy
            }
            Err(_) => value.clone(),
        };
        copies.append(name.clone(), copy);
        start = end;
    }
    copies
}

/// A URI with its own allocation (parsing a `String` takes ownership of it, no slicing).
fn copy_uri(uri: &Uri) -> Uri {
    Uri::try_from(uri.to_string()).unwrap_or_else(|_| uri.clone())
}

#[cfg(test)]
mod tests {
    use axum::{body::Body, http::Request as HttpRequest};

    use super::*;

    #[tokio::test]
    async fn keeps_the_uri_and_the_headers_the_application_may_read() {
        let req = HttpRequest::get("/socket.io/?EIO=4&transport=websocket")
            .header("x-forwarded-for", "127.0.0.2")
            .header("cookie", "a=b")
            .header("cookie", "c=d")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .body(Body::empty())
            .unwrap_or_default();
        let (uri, headers) = (req.uri().clone(), req.headers().clone());
        let after = detach_from_read_buffer(req).await;
        assert_eq!(after.uri(), &uri);
        assert_eq!(after.headers(), &headers);
    }

    #[tokio::test]
    async fn drops_what_only_the_handshake_needed() {
        let req = HttpRequest::get("/socket.io/?EIO=4&transport=websocket")
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("user-agent", "test")
            .body(Body::empty())
            .unwrap_or_default();
        let after = detach_from_read_buffer(req).await;
        let names: Vec<&str> = after.headers().keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["sec-websocket-key", "user-agent"]);
    }
}
