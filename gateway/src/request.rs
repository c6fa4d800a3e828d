//! What every request and every Socket.IO handshake presents, read the same way for both: the
//! client's IP address and the session token.
//!
//! The client's IP address (per-IP rate limits, the session record) is the TCP peer's address, unless the peer is one of the configured trusted proxies
//! (`--trusted-proxies`, e.g. the nginx in front): then `X-Forwarded-For` is read from right
//! to left, skipping trusted proxies, and the first address that is not one is the client. A
//! header sent by anyone else is ignored, so a client cannot pick its own rate-limit bucket.
//!
//! The session token is `Authorization: Bearer <token>` (non-browser clients), else the
//! [`COOKIE_NAME`] cookie; [`Presented`] says which (a cookie request's origin is checked:
//! `origin.rs`).

use std::{
    convert::Infallible,
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, header, request::Parts},
};
use cookie::Cookie;
use ipnet::IpNet;

/// The session cookie's name.
pub(crate) const COOKIE_NAME: &str = "gw_session";

/// The `X-Forwarded-For` header.
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies(Arc<[IpNet]>);

impl TrustedProxies {
    /// Trusts the addresses in `nets`.
    pub(crate) fn new(nets: &[IpNet]) -> Self {
        Self(nets.into())
    }

    /// Whether `ip` is one of the trusted proxies.
    pub(crate) fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client address of a request from `peer` carrying `headers`; `None` when the peer
    /// is unknown (the server was not started with connection info).
    pub(crate) fn client_ip(
        &self,
        peer: Option<SocketAddr>,
        headers: &HeaderMap,
    ) -> Option<IpAddr> {
        let peer = peer?.ip().to_canonical();
        if !self.trusts(peer) {
            return Some(peer);
        }
        let mut client = peer;
        let hops: Vec<&str> = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect();
        for hop in hops.iter().rev() {
            // A hop that is not an address ends the walk: the last trusted hop answers for it.
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        Some(client)
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:80`, `[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    hop.parse::<SocketAddr>()
        .ok()
        .map(|addr| addr.ip().to_canonical())
}

/// The TCP peer's address, as the engine records it in each request (`None` for a request
/// that came some other way: a unit test's).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub(crate) Option<SocketAddr>);

impl Peer {
    /// The peer recorded in request parts.
    pub(crate) fn of(parts: &Parts) -> Self {
        Self(parts.extensions.get::<SocketAddr>().copied())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Self::of(parts))
    }
}

/// A comma-separated `--trusted-proxies` entry: an address (`127.0.0.1`) or a network
/// (`10.0.0.0/8`).
pub(crate) fn parse_proxy(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is neither an IP address nor a CIDR network"))
}

/// A session token as a request presents it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Presented {
    /// `Authorization: Bearer <token>`: sent deliberately by the client.
    Bearer(String),
    /// The [`COOKIE_NAME`] cookie: attached by the browser, whichever page sent the request
    /// (see `origin.rs`).
    Cookie(String),
}

impl Presented {
    /// The token itself.
    pub(crate) fn into_token(self) -> String {
        match self {
            Self::Bearer(token) | Self::Cookie(token) => token,
        }
    }
}

/// The credential of the first `Authorization: Bearer <credential>` header (a session
/// token, or an API key of the publish API, which never reads the cookie).
pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| {
            let (scheme, credential) = value.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| credential.trim().to_owned())
        })
}

/// The session token a request presents: `Authorization: Bearer`, else the session cookie.
pub(crate) fn presented_token(headers: &HeaderMap) -> Option<String> {
    presented(headers).map(Presented::into_token)
}

/// The session token a request presents and where: `Authorization: Bearer`, else the
/// session cookie.
pub(crate) fn presented(headers: &HeaderMap) -> Option<Presented> {
    bearer(headers).map(Presented::Bearer).or_else(|| {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .find(|cookie| cookie.name() == COOKIE_NAME)
            .map(|cookie| Presented::Cookie(cookie.value().to_owned()))
    })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        let nets: Vec<IpNet> = list.iter().filter_map(|p| parse_proxy(p).ok()).collect();
        TrustedProxies::new(&nets)
    }

    fn client(trusted: &[&str], peer: &str, xff: &[&str]) -> Option<String> {
        let mut headers = HeaderMap::new();
        for value in xff {
            headers.append(
                X_FORWARDED_FOR,
                HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static("")),
            );
        }
        let peer: SocketAddr = peer.parse().ok()?;
        proxies(trusted)
            .client_ip(Some(peer), &headers)
            .map(|ip| ip.to_string())
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_peer() {
        // (trusted proxies, TCP peer, X-Forwarded-For headers, the client).
        let cases: [(&[&str], &str, &[&str], &str); 10] = [
            (&[], "127.0.0.1:1", &["127.0.0.7"], "127.0.0.1"),
            (&["127.0.0.2"], "127.0.0.1:1", &["127.0.0.7"], "127.0.0.1"),
            (&["127.0.0.1"], "127.0.0.1:1", &["127.0.0.7"], "127.0.0.7"),
            (&["127.0.0.1"], "127.0.0.1:1", &[], "127.0.0.1"),
            // Right to left, skipping trusted proxies; what the client wrote on the left is
            // ignored.
            (
                &["127.0.0.0/24"],
                "127.0.0.1:1",
                &["127.9.9.9, 127.0.1.5, 127.0.0.3"],
                "127.0.1.5",
            ),
            (
                &["127.0.0.1"],
                "127.0.0.1:1",
                &["127.9.9.9", "127.0.1.5"],
                "127.0.1.5",
            ),
            // Every hop trusted: the leftmost.
            (
                &["127.0.0.0/8"],
                "127.0.0.1:1",
                &["127.0.0.5, 127.0.0.6"],
                "127.0.0.5",
            ),
            // Garbage: the last trusted hop.
            (&["127.0.0.1"], "127.0.0.1:1", &["nonsense"], "127.0.0.1"),
            (
                &["127.0.0.1"],
                "127.0.0.1:1",
                &["127.0.0.9:5000"],
                "127.0.0.9",
            ),
            (
                &["::1"],
                "[::1]:1",
                &["[::1]:80, ::ffff:127.0.0.4"],
                "127.0.0.4",
            ),
        ];
        for (trusted, peer, xff, expected) in cases {
            assert_eq!(
                client(trusted, peer, xff).as_deref(),
                Some(expected),
                "{trusted:?} {peer} {xff:?}"
            );
        }
        assert_eq!(proxies(&[]).client_ip(None, &HeaderMap::new()), None);
    }

    #[test]
    fn proxies_parse() {
        assert!(parse_proxy("127.0.0.1").is_ok());
        assert!(parse_proxy(" 10.0.0.0/8 ").is_ok());
        assert!(parse_proxy("::1").is_ok());
        assert!(parse_proxy("fd00::/8").is_ok());
        assert!(parse_proxy("nginx").is_err());
        assert!(parse_proxy("10.0.0.0/33").is_err());
    }

    #[test]
    fn tokens_from_headers() {
        let mut headers = HeaderMap::new();
        assert_eq!(presented_token(&headers), None);
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=b; gw_session=c00kie"),
        );
        assert_eq!(presented_token(&headers), Some("c00kie".into()));
        assert_eq!(
            presented(&headers),
            Some(Presented::Cookie("c00kie".into()))
        );
        headers.append(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer b3arer"),
        );
        assert_eq!(presented_token(&headers), Some("b3arer".into()));
        assert_eq!(
            presented(&headers),
            Some(Presented::Bearer("b3arer".into()))
        );
    }
}
