//! Logging a simulated user in through the gateway's HTTP API, as a browser does:
//! `POST /api/login {username, password}` answers with a session token, which the Socket.IO
//! handshake then carries as `auth: {token}`.

use std::{net::IpAddr, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{
    Request, StatusCode,
    client::conn::http1,
    header::{CONTENT_TYPE, HOST},
};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::{ClientError, tcp};

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
    tokio::time::timeout(timeout, post_login(url, local, credentials))
        .await
        .map_err(|_| ClientError::Timeout)?
}

async fn post_login(
    url: &str,
    local: Option<IpAddr>,
    credentials: &Credentials,
) -> Result<String, ClientError> {
    let host = tcp::host_port(url)?;
    let stream = tcp::connect(host, local).await?;
    let http = |e: hyper::Error| ClientError::Http(format!("login at {host}: {e}"));
    let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await.map_err(http)?;
    let driver = tokio::spawn(connection);
    let body = json!({"username": credentials.username, "password": credentials.password});
    let request = Request::post("/api/login")
        .header(HOST, host)
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| ClientError::Http(format!("bad login request: {e}")))?;
    let response = sender.send_request(request).await.map_err(http);
    let result = match response {
        Ok(response) => {
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| ClientError::Http(format!("reading the login answer: {e}")))?
                .to_bytes();
            token_of(status, &body)
        }
        Err(e) => Err(e),
    };
    driver.abort();
    result
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
