//! A client may emit the moment its CONNECT is acknowledged: no event is lost to a socket the
//! server has not finished setting up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{TIMEOUT, TestGateway, standalone};
use serde_json::json;
use socketio_client::{ConnectOptions, SocketClient};
use tokio::task::JoinSet;

const CLIENTS: usize = 300;
const BATCH: usize = 100;

/// Connects and, without reading anything first, emits `join` then a `message` to the room.
async fn connect_and_emit_at_once(url: String, i: usize) -> Result<(), String> {
    let client = SocketClient::connect_with(ConnectOptions::new(url).timeout(TIMEOUT))
        .await
        .map_err(|err| format!("client {i} connect: {err}"))?;
    let room = format!("room-{}", i % 7);
    let join = client.emit_with_ack("join", json!({ "room": room }), TIMEOUT);
    let message = client.emit_with_ack("message", json!({"room": room, "text": "hi"}), TIMEOUT);
    let (join, message) = tokio::join!(join, message);
    let join = join.map_err(|err| format!("client {i} join ack: {err}"))?;
    let message = message.map_err(|err| format!("client {i} message ack: {err}"))?;
    if join != json!({"ok": true}) {
        return Err(format!("client {i} join ack {join}"));
    }
    if !message["id"].is_string() {
        return Err(format!("client {i} message ack {message}"));
    }
    client.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_emitting_right_after_connect_gets_its_acks() {
    let gateway = TestGateway::start(standalone()).await;
    let mut failures = Vec::new();
    for batch in 0..CLIENTS.div_ceil(BATCH) {
        let mut clients = JoinSet::new();
        for i in batch * BATCH..((batch + 1) * BATCH).min(CLIENTS) {
            clients.spawn(connect_and_emit_at_once(gateway.url().to_owned(), i));
        }
        while let Some(result) = clients.join_next().await {
            if let Err(failure) = result.unwrap() {
                failures.push(failure);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed: {failures:?}",
        failures.len()
    );
}
