//! One-shot HTTP/1.1 requests to a server's plain HTTP routes, next to Socket.IO: a JSON
//! `POST` on a fresh connection (the login, benchmark triggers), its answer read up to a size.

use std::{net::IpAddr, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{
    Request, StatusCode,
    client::conn::http1,
    header::{CONTENT_TYPE, HOST},
};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::{ClientError, tcp};

/// `POST {path}` with `body` as JSON to the server at `url` (its base URL), from `local`;
/// returns the status and the answer's body, read up to `max_body` bytes. Fails with
/// [`ClientError::Timeout`] when the whole exchange takes longer than `timeout`.
pub async fn post_json(
    url: &str,
    path: &str,
    local: Option<IpAddr>,
    body: &Value,
    max_body: usize,
    timeout: Duration,
) -> Result<(StatusCode, Bytes), ClientError> {
    tokio::time::timeout(timeout, post(url, path, local, body, max_body))
        .await
        .map_err(|_| ClientError::Timeout)?
}

async fn post(
    url: &str,
    path: &str,
    local: Option<IpAddr>,
    body: &Value,
    max_body: usize,
) -> Result<(StatusCode, Bytes), ClientError> {
    let host = tcp::host_port(url)?;
    let stream = tcp::connect(host, local).await?;
    let http = |e: hyper::Error| ClientError::Http(format!("POST {path} at {host}: {e}"));
    let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await.map_err(http)?;
    let driver = tokio::spawn(connection);
    let request = Request::post(path)
        .header(HOST, host)
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| ClientError::Http(format!("bad request POST {path}: {e}")))?;
    let result = match sender.send_request(request).await.map_err(http) {
        Ok(response) => {
            let status = response.status();
            Limited::new(response.into_body(), max_body)
                .collect()
                .await
                .map(|body| (status, body.to_bytes()))
                .map_err(|e| ClientError::Http(format!("reading the answer to POST {path}: {e}")))
        }
        Err(e) => Err(e),
    };
    driver.abort();
    result
}
