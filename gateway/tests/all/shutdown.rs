//! Graceful shutdown: connected clients are closed, new ones refused, within the deadline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use crate::support::{TIMEOUT, TestGateway, connect, join, standalone};
use socketio_client::{ClientError, SocketClient};

#[tokio::test]
async fn stop_closes_the_sockets_and_the_listener_within_the_deadline() {
    let gateway = TestGateway::start(standalone()).await;
    let url = gateway.url().to_owned();
    let mut clients = Vec::new();
    for _ in 0..5 {
        let client = connect(&url).await;
        join(&client, "lobby").await;
        clients.push(client);
    }

    let started = Instant::now();
    gateway.stop().await.unwrap();
    // `standalone()` gives a 3 s deadline: a clean stop takes far less.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    for client in &mut clients {
        loop {
            match client.next_event(TIMEOUT).await {
                Ok(_) => continue,
                Err(ClientError::Disconnected(_)) => break,
                Err(err) => panic!("expected a disconnect, got {err}"),
            }
        }
    }
    assert!(SocketClient::connect(&url).await.is_err());
}
