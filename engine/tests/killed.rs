//! A server that dies with sessions open (its runtime dropped, as in a crash of the task that
//! ran it): every client's connection closes at once, even for sockets that joined a
//! namespace (a session and its sockets refer to each other).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{Quiet, next_text, send, websocket};
use engine::{
    server::{Config, Engine},
    sockets::SocketIo,
};
use test_support::Killable;

#[tokio::test]
async fn a_dropped_server_closes_every_connection() {
    let mut server = Killable::start(|| async {
        let io = Arc::new(SocketIo::new().namespace("/", Quiet));
        let url = common::serve(Engine::new(Config::default(), io)).await;
        (url, ())
    })
    .await;
    let mut sockets = Vec::new();
    for _ in 0..3 {
        let mut ws = websocket(server.url(), "EIO=4&transport=websocket")
            .await
            .unwrap();
        assert!(next_text(&mut ws).await.starts_with('0'));
        send(&mut ws, "40").await;
        assert!(next_text(&mut ws).await.starts_with("40"));
        sockets.push(ws);
    }
    tokio::task::spawn_blocking(move || server.kill())
        .await
        .unwrap();
    for mut ws in sockets {
        assert_eq!(common::next(&mut ws).await, None, "the connection closes");
    }
}
