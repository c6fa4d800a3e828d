//! The query of an engine.io request: protocol version, transport and session id, and the
//! errors engine.io answers when they are wrong.

use http::StatusCode;

/// The transports a request may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// HTTP long-polling.
    Polling,
    /// A websocket.
    Websocket,
}

impl Transport {
    /// The name a client writes in `transport=`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Polling => "polling",
            Self::Websocket => "websocket",
        }
    }
}

/// What an engine.io request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Query<'a> {
    /// `transport=`.
    pub(crate) transport: Transport,
    /// `sid=`: the session a request belongs to; none opens one.
    pub(crate) sid: Option<&'a str>,
}

/// Why a request is refused, as engine.io's JSON error (`{"code":N,"message":"..."}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No or an unknown `transport`.
    UnknownTransport,
    /// A `sid` that names no open session (or one on another transport).
    UnknownSession,
    /// A session opened by anything but GET.
    BadHandshakeMethod,
    /// Anything else wrong with the request.
    BadRequest,
    /// No or another `EIO` than 4.
    UnsupportedVersion,
    /// The server holds as many sessions as it may.
    Full,
}

impl Refusal {
    /// The HTTP status it is answered with.
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Self::Full => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// engine.io's error body.
    pub(crate) fn body(self) -> &'static str {
        match self {
            Self::UnknownTransport => r#"{"code":0,"message":"Transport unknown"}"#,
            Self::UnknownSession => r#"{"code":1,"message":"Session ID unknown"}"#,
            Self::BadHandshakeMethod => r#"{"code":2,"message":"Bad handshake method"}"#,
            Self::BadRequest => r#"{"code":3,"message":"Bad request"}"#,
            Self::UnsupportedVersion => r#"{"code":5,"message":"Unsupported protocol version"}"#,
            Self::Full => r#"{"code":3,"message":"Server full"}"#,
        }
    }
}

/// Reads the query string of a request.
pub(crate) fn parse(query: &str) -> Result<Query<'_>, Refusal> {
    let mut version = None;
    let mut transport = None;
    let mut sid = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "EIO" => version = Some(value),
            "transport" => transport = Some(value),
            "sid" => sid = Some(value),
            _ => {}
        }
    }
    if version != Some("4") {
        return Err(Refusal::UnsupportedVersion);
    }
    let transport = match transport {
        Some("polling") => Transport::Polling,
        Some("websocket") => Transport::Websocket,
        _ => return Err(Refusal::UnknownTransport),
    };
    Ok(Query { transport, sid })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handshake_queries_of_the_engine_io_suite() {
        assert_eq!(
            parse("EIO=4&transport=polling&t=abc"),
            Ok(Query {
                transport: Transport::Polling,
                sid: None
            })
        );
        assert_eq!(
            parse("EIO=4&transport=websocket&sid=xyz"),
            Ok(Query {
                transport: Transport::Websocket,
                sid: Some("xyz")
            })
        );
        for bad in [
            "transport=polling",
            "EIO=abc&transport=polling",
            "EIO=3&transport=polling",
        ] {
            assert_eq!(parse(bad), Err(Refusal::UnsupportedVersion), "{bad}");
        }
        for bad in ["EIO=4", "EIO=4&transport=abc", ""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
