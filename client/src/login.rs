//! Logging a simulated user in through the gateway's HTTP API, as a browser does:
//! `POST /api/login {username, password}` answers with a session token, which the Socket.IO
//! handshake then carries as `auth: {token}`.

use std::{net::IpAddr, time::Duration};

use hyper::StatusCode;
use serde_json::{Value, json};

use super::{ClientError, http::post_json};

/// The largest login answer read.
const MAX_BODY: usize = 16 * 1024;

/// An account to log in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl Credentials {
    /// Parses `USER:PASSWORD` (the password may contain `:`).
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            Some((username, password)) if !username.is_empty() => Ok(Self {
                username: username.to_owned(),
                password: password.to_owned(),
            }),
            _ => Err(format!("expected USER:PASSWORD, got {text:?}")),
        }
    }
}

/// Logs in at `url` (the server's base URL) from `local`, within `timeout`; returns the
/// session token.
pub async fn login(
    url: &str,
    local: Option<IpAddr>,
    credentials: &Credentials,
    timeout: Duration,
) -> Result<String, ClientError> {
    let body = json!({"username": credentials.username, "password": credentials.password});
    let (status, answer) = post_json(url, "/api/login", local, &body, MAX_BODY, timeout).await?;
    token_of(status, &answer)
}

/// The token of a `200 OK` login answer; anything else is an error naming the status.
fn token_of(status: StatusCode, body: &[u8]) -> Result<String, ClientError> {
    if status != StatusCode::OK {
        let text = String::from_utf8_lossy(body);
        return Err(ClientError::Http(format!(
            "login: HTTP {status}: {text:.120}"
        )));
    }
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|answer| answer.get("token")?.as_str().map(str::to_owned))
        .ok_or_else(|| ClientError::Protocol("login answer without a token".to_owned()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parses_credentials() {
        let creds = Credentials::parse("alice:s3:cret").unwrap();
        assert_eq!(
            (creds.username.as_str(), creds.password.as_str()),
            ("alice", "s3:cret")
        );
        assert!(Credentials::parse("nopassword").is_err());
        assert!(Credentials::parse(":x").is_err());
    }

    #[test]
    fn reads_the_token_or_says_why_not() {
        assert_eq!(
            token_of(StatusCode::OK, br#"{"token":"abc"}"#).unwrap(),
            "abc"
        );
        assert!(token_of(StatusCode::UNAUTHORIZED, b"bad credentials").is_err());
        assert!(token_of(StatusCode::OK, b"not json").is_err());
        assert!(token_of(StatusCode::OK, br#"{"token":5}"#).is_err());
    }
}
