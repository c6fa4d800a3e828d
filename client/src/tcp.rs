//! Target parsing and TCP connection setup shared by both transports.

use std::net::{IpAddr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};

use super::ClientError;

/// `host:port` of an `http://` or `ws://` url.
pub fn host_port(url: &str) -> Result<&str, ClientError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("ws://"))
        .ok_or_else(|| ClientError::Connect(format!("{url}: expected http://host:port")))?;
    let host = rest.split_once('/').map_or(rest, |(host, _)| host);
    if host.is_empty() {
        return Err(ClientError::Connect(format!("{url}: missing host")));
    }
    Ok(host)
}

/// Opens a TCP connection to `host` (`host:port`), bound to `local` if given, with Nagle
/// disabled.
pub(crate) async fn connect(host: &str, local: Option<IpAddr>) -> Result<TcpStream, ClientError> {
    let err = |e: std::io::Error| ClientError::Connect(format!("{host}: {e}"));
    let addr = tokio::net::lookup_host(host)
        .await
        .map_err(err)?
        .find(|addr| local.is_none_or(|ip| ip.is_ipv4() == addr.is_ipv4()))
        .ok_or_else(|| ClientError::Connect(format!("{host}: no address of the right family")))?;
    let stream = match local {
        None => TcpStream::connect(addr).await,
        Some(ip) => {
            let socket = if ip.is_ipv4() {
                TcpSocket::new_v4()
            } else {
                TcpSocket::new_v6()
            }
            .map_err(err)?;
            socket.bind(SocketAddr::new(ip, 0)).map_err(err)?;
            socket.connect(addr).await
        }
    }
    .map_err(err)?;
    stream.set_nodelay(true).map_err(err)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn host_port_accepts_http_and_ws_urls() {
        assert_eq!(
            host_port("http://127.0.0.1:3000").unwrap(),
            "127.0.0.1:3000"
        );
        assert_eq!(host_port("ws://localhost:80/").unwrap(), "localhost:80");
        assert_eq!(host_port("http://[::1]:1/x/y").unwrap(), "[::1]:1");
        assert!(matches!(
            host_port("https://a:1"),
            Err(ClientError::Connect(_))
        ));
        assert!(matches!(
            host_port("http:///"),
            Err(ClientError::Connect(_))
        ));
    }
}
