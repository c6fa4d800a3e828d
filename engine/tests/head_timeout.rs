//! `Config::request_head_timeout`: a connection whose first request head is not complete
//! within it is closed then, once, not after the websocket peek and hyper have each waited
//! the bound; a head that arrives in pieces within it is served.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use engine::{
    server::{Config, Engine},
    sockets::SocketIo,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

mod common;
use common::Quiet;

const HEAD_TIMEOUT: Duration = Duration::from_millis(1_000);

async fn server() -> String {
    let io = Arc::new(SocketIo::new().namespace("/", Quiet));
    let config = Config {
        request_head_timeout: HEAD_TIMEOUT,
        ..Config::default()
    };
    common::serve(Engine::new(config, io)).await
}

async fn connect(url: &str) -> TcpStream {
    TcpStream::connect(url.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes the connection; what it sent.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    tokio::time::timeout(common::WAIT, stream.read_to_end(&mut received))
        .await
        .expect("closed within the wait")
        .ok();
    received
}

#[tokio::test]
async fn an_incomplete_head_is_dropped_after_the_timeout_once() {
    let url = server().await;
    let mut stream = connect(&url).await;
    let started = Instant::now();
    stream
        .write_all(b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let received = until_closed(&mut stream).await;
    let after = started.elapsed();
    assert!(received.is_empty(), "nothing is answered: {received:?}");
    assert!(
        after >= HEAD_TIMEOUT,
        "closed before the timeout: {after:?}"
    );
    assert!(
        after < HEAD_TIMEOUT * 2,
        "closed after the timeout twice (peek, then hyper): {after:?}"
    );
}

#[tokio::test]
async fn a_head_sent_in_pieces_within_the_timeout_is_served() {
    let url = server().await;
    let mut stream = connect(&url).await;
    stream
        .write_all(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n")
        .await
        .unwrap();
    tokio::time::sleep(HEAD_TIMEOUT / 4).await;
    stream
        .write_all(b"Host: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let received = String::from_utf8(until_closed(&mut stream).await).unwrap();
    assert!(received.starts_with("HTTP/1.1 200"), "{received}");
    assert!(
        received.contains(r#""sid":""#),
        "an engine.io handshake: {received}"
    );
}
