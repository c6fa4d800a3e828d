//! Which web pages may use the session cookie: the origin check of every request that
//! authenticates with the `gw_session` cookie (the Socket.IO handshake on both transports,
//! `POST /api/logout`, the admin `PUT`).
//!
//! A browser attaches the cookie to requests that any page of the same *site* makes (another
//! port of the host, a sibling subdomain: `SameSite=Lax` does not stop them), and a websocket
//! handshake is not subject to CORS. What the browser does not let a page forge is `Origin`:
//! a cookie-authenticated request is served only when its `Origin` is allowed: one of
//! `--allowed-origins`, or by default the gateway's own origin, the `Host` the request was sent
//! to (`X-Forwarded-Host` when the peer is a trusted proxy). A request without `Origin` (a
//! same-origin `GET`, a non-browser client) is served unless `Sec-Fetch-Site` says a page of
//! another origin sent it. Token-authenticated requests (`auth: {token}`, `Authorization:
//! Bearer`) carry no ambient credential and are not checked.

use std::{net::SocketAddr, sync::Arc};

use axum::http::HeaderMap;

use crate::{
    refusal::Refusal,
    request::{Presented, TrustedProxies, presented},
};

/// The refusal of a cookie-authenticated request from a page that may not use the cookie.
const FORBIDDEN: Refusal = Refusal::Forbidden("origin");

/// `X-Forwarded-Host`, believed from trusted proxies only.
const X_FORWARDED_HOST: &str = "x-forwarded-host";

/// The origins whose pages may use the session cookie.
#[derive(Debug, Clone)]
pub(crate) struct OriginPolicy {
    /// `--allowed-origins`, normalized (`scheme://host:port`); empty: the gateway's own origin.
    allowed: Arc<[String]>,
    /// Whose `X-Forwarded-Host` is believed.
    proxies: TrustedProxies,
}

impl OriginPolicy {
    /// Allows `allowed` (normalized by [`parse_origin`]), or only the gateway's own origin
    /// when it is empty.
    pub(crate) fn new(allowed: &[String], proxies: TrustedProxies) -> Self {
        let allowed: Vec<String> = allowed
            .iter()
            .filter_map(|origin| parse_origin(origin).ok())
            .collect();
        Self {
            allowed: allowed.into(),
            proxies,
        }
    }

    /// Refuses with `forbidden: origin` a request from `peer` with `headers` that authenticates
    /// with the session cookie (no `Authorization: Bearer`) from a page that may not use it.
    pub(crate) fn guard_cookie(
        &self,
        peer: Option<SocketAddr>,
        headers: &HeaderMap,
    ) -> Result<(), Refusal> {
        match presented(headers) {
            Some(Presented::Cookie(_)) => self.check(peer, headers),
            Some(Presented::Bearer(_)) | None => Ok(()),
        }
    }

    /// Whether the page that sent `headers` (from `peer`) may use the cookie.
    fn check(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Result<(), Refusal> {
        let mut origins = headers.get_all(axum::http::header::ORIGIN).iter();
        let (origin, more) = (origins.next(), origins.next());
        // A browser sends one; two are a client that could be believed either way.
        if more.is_some() {
            return Err(FORBIDDEN);
        }
        let Some(origin) = origin else {
            // No Origin: a same-origin GET or a non-browser client, unless the browser says
            // another page sent it.
            let site = headers
                .get("sec-fetch-site")
                .map(|value| value.to_str().unwrap_or("cross-site"));
            return match site {
                Some("cross-site" | "same-site") => Err(FORBIDDEN),
                _ => Ok(()),
            };
        };
        let origin = origin
            .to_str()
            .ok()
            .and_then(|origin| parse_origin(origin).ok())
            .ok_or(FORBIDDEN)?;
        let allowed = if self.allowed.is_empty() {
            self.own_origin(peer, headers, &origin)
        } else {
            self.allowed.contains(&origin)
        };
        if allowed { Ok(()) } else { Err(FORBIDDEN) }
    }

    /// Whether `origin` is the one the request was sent to: its host and port are the
    /// request's `Host` (`X-Forwarded-Host` from a trusted proxy), a missing port being the
    /// default of the origin's scheme.
    fn own_origin(&self, peer: Option<SocketAddr>, headers: &HeaderMap, origin: &str) -> bool {
        let forwarded = peer
            .filter(|peer| self.proxies.trusts(peer.ip()))
            .and_then(|_| headers.get(X_FORWARDED_HOST))
            // A list (several proxies): the first one, the host the browser asked for.
            .and_then(|value| value.to_str().ok()?.split(',').next());
        let host = forwarded.or_else(|| {
            headers
                .get(axum::http::header::HOST)
                .and_then(|value| value.to_str().ok())
        });
        let Some((scheme, _)) = origin.split_once("://") else {
            return false;
        };
        host.and_then(|host| normalize(scheme, host.trim()))
            .is_some_and(|own| own == origin)
    }
}

/// An origin as `--allowed-origins` takes it and browsers send it, `scheme://host[:port]`
/// (http or https, no path), normalized to `scheme://host:port` in lower case.
pub(crate) fn parse_origin(text: &str) -> Result<String, String> {
    let text = text.trim();
    let refused =
        || format!("{text:?} is not an origin (http://host[:port] or https://host[:port])");
    let (scheme, authority) = text.split_once("://").ok_or_else(refused)?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(refused());
    }
    normalize(&scheme, authority.strip_suffix('/').unwrap_or(authority)).ok_or_else(refused)
}

/// `scheme://host:port` for `authority` (`host`, `host:port`, `[v6]`, `[v6]:port`), the port
/// defaulting to the scheme's; `None` when it is not a plain authority.
fn normalize(scheme: &str, authority: &str) -> Option<String> {
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let (host, port) = match authority.rsplit_once(':') {
        // `[v6]` alone, or a host without a port.
        _ if authority.ends_with(']') => (authority, None),
        Some((host, port)) if !host.is_empty() => (host, Some(port.parse::<u16>().ok()?)),
        _ => (authority, None),
    };
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    let valid = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => {
            !v6.is_empty()
                && v6
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        }
        None => !host.is_empty() && host.chars().all(plain),
    };
    valid.then(|| {
        format!(
            "{scheme}://{}:{}",
            host.to_ascii_lowercase(),
            port.unwrap_or(default_port)
        )
    })
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderValue, header};

    use super::*;
    use crate::request::parse_proxy;

    fn headers(list: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in list {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    const COOKIE: (&str, &str) = ("cookie", "gw_session=abc");

    #[test]
    fn origins_parse_and_normalize() {
        assert_eq!(parse_origin("http://a.test"), Ok("http://a.test:80".into()));
        assert_eq!(
            parse_origin("HTTPS://A.test/"),
            Ok("https://a.test:443".into())
        );
        assert_eq!(
            parse_origin("http://127.0.0.1:8080"),
            Ok("http://127.0.0.1:8080".into())
        );
        assert_eq!(
            parse_origin("http://[::1]:3000"),
            Ok("http://[::1]:3000".into())
        );
        for bad in [
            "a.test",
            "ftp://a.test",
            "http://",
            "http://a.test/x",
            "http://a:b",
            "null",
            "http://u@a",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_default_is_the_own_origin() {
        let policy = OriginPolicy::new(&[], TrustedProxies::default());
        let peer = "127.0.0.1:1".parse().ok();
        let own = headers(&[
            COOKIE,
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000"),
        ]);
        assert!(policy.guard_cookie(peer, &own).is_ok());
        let other_port = headers(&[
            COOKIE,
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:4000"),
        ]);
        assert!(policy.guard_cookie(peer, &other_port).is_err());
        let default_port = headers(&[
            COOKIE,
            ("host", "chat.test"),
            ("origin", "http://chat.test"),
        ]);
        assert!(policy.guard_cookie(peer, &default_port).is_ok());
        // Not a trusted proxy: its X-Forwarded-Host is ignored.
        let forwarded = headers(&[
            COOKIE,
            ("host", "127.0.0.1:3000"),
            ("x-forwarded-host", "evil.test"),
            ("origin", "http://evil.test"),
        ]);
        assert!(policy.guard_cookie(peer, &forwarded).is_err());
        let nets: Vec<_> = parse_proxy("127.0.0.1").into_iter().collect();
        let trusting = OriginPolicy::new(&[], TrustedProxies::new(&nets));
        assert!(trusting.guard_cookie(peer, &forwarded).is_ok());
        // No Origin: allowed unless the browser says another page sent it.
        assert!(policy.guard_cookie(peer, &headers(&[COOKIE])).is_ok());
        let cross = headers(&[COOKIE, ("sec-fetch-site", "same-site")]);
        assert!(policy.guard_cookie(peer, &cross).is_err());
        assert!(
            policy
                .guard_cookie(peer, &headers(&[COOKIE, ("origin", "null")]))
                .is_err()
        );
    }

    #[test]
    fn a_list_replaces_the_default_and_bearer_tokens_are_not_checked() {
        let policy = OriginPolicy::new(&["https://chat.test".into()], TrustedProxies::default());
        let peer = "127.0.0.1:1".parse().ok();
        let listed = headers(&[
            COOKIE,
            ("host", "gw:3000"),
            ("origin", "https://chat.test:443"),
        ]);
        assert!(policy.guard_cookie(peer, &listed).is_ok());
        let own = headers(&[COOKIE, ("host", "gw:3000"), ("origin", "http://gw:3000")]);
        assert!(policy.guard_cookie(peer, &own).is_err());
        let mut bearer = headers(&[COOKIE, ("origin", "http://evil.test")]);
        bearer.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        assert!(policy.guard_cookie(peer, &bearer).is_ok());
        let anonymous = headers(&[("origin", "http://evil.test")]);
        assert!(policy.guard_cookie(peer, &anonymous).is_ok());
    }
}
