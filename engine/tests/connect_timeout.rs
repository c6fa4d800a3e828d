//! `Config::connect_timeout` (socket.io's `connectTimeout`): a session with no namespace
//! connected that long after it opened is closed, on either transport, whether the client
//! sent no CONNECT, a CONNECT its namespace never answers, or one it refused; a session with
//! a namespace connected stays, pings answered or not yet due.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use engine::{
    server::{Config, Engine},
    sockets::{Connecting, DisconnectReason, Event, Namespace, Socket, SocketIo},
};

mod common;
use common::{Quiet, Ws, closes, endpoint, next_text, send, websocket};

const CONNECT_TIMEOUT: Duration = Duration::from_millis(400);

/// Keeps every CONNECT unanswered.
#[derive(Default)]
struct Never {
    waiting: Mutex<Vec<Connecting>>,
}

impl Namespace for Never {
    fn connect(&self, connecting: Connecting) {
        self.waiting.lock().unwrap().push(connecting);
    }
    fn connected(&self, _: &Arc<Socket>) {}
    fn event(&self, _: &Arc<Socket>, _: Event) {}
    fn disconnected(&self, _: &Arc<Socket>, _: DisconnectReason) {}
}

/// Refuses every CONNECT.
struct Refuse;

impl Namespace for Refuse {
    fn connect(&self, connecting: Connecting) {
        connecting.refuse("no", None);
    }
    fn connected(&self, _: &Arc<Socket>) {}
    fn event(&self, _: &Arc<Socket>, _: Event) {}
    fn disconnected(&self, _: &Arc<Socket>, _: DisconnectReason) {}
}

/// Namespaces `/` (accepts), `/never` and `/refused`, with the test's connect timeout and
/// the heartbeat given.
async fn server(ping_interval: Duration, ping_timeout: Duration) -> String {
    let io = SocketIo::new()
        .namespace("/", Quiet)
        .namespace("/never", Never::default())
        .namespace("/refused", Refuse);
    let config = Config {
        connect_timeout: CONNECT_TIMEOUT,
        ping_interval,
        ping_timeout,
        ..Config::default()
    };
    common::serve(Engine::new(config, io)).await
}

/// A websocket session past its OPEN packet, and when it opened.
async fn session(url: &str) -> (Ws, Instant) {
    let mut ws = websocket(url, "EIO=4&transport=websocket").await.unwrap();
    let opened = Instant::now();
    assert!(next_text(&mut ws).await.starts_with('0'));
    (ws, opened)
}

/// Answers the pings of `ws` until `CONNECT_TIMEOUT * 2` after `opened`; when the
/// server closed it, how long after `opened`.
async fn answer_pings(ws: &mut Ws, opened: Instant) -> Option<Duration> {
    let until = opened + CONNECT_TIMEOUT * 2;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, common::next(ws)).await {
            Err(_) => return None,
            Ok(Some(message)) if message.to_text().is_ok_and(|text| text == "2") => {
                send(ws, "3").await;
            }
            Ok(Some(message)) if message.to_text().is_ok_and(|text| text == "1") => {
                assert_eq!(common::next(ws).await, None, "closed after CLOSE");
                return Some(opened.elapsed());
            }
            Ok(None) => return Some(opened.elapsed()),
            Ok(Some(other)) => panic!("expected pings only, got {other:?}"),
        }
    }
}

/// Asserts that a session closed `after` its opening was closed at the connect timeout.
fn at_the_timeout(after: Option<Duration>) {
    let after = after.expect("the session was closed");
    assert!(
        after >= CONNECT_TIMEOUT - Duration::from_millis(50) && after < CONNECT_TIMEOUT * 2,
        "closed after {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_with_no_namespace_connected_is_closed_at_the_timeout() {
    let url = server(Duration::from_secs(25), Duration::from_secs(20)).await;
    let (mut silent, silent_opened) = session(&url).await;
    let (mut unanswered, unanswered_opened) = session(&url).await;
    send(&mut unanswered, "40/never,").await;
    let (mut refused, refused_opened) = session(&url).await;
    send(&mut refused, "40/refused,").await;
    assert!(next_text(&mut refused).await.starts_with("44/refused,"));
    // Connected to `/`, the session stays, though its CONNECT to `/never` waits.
    let (mut connected, connected_opened) = session(&url).await;
    send(&mut connected, "40/never,").await;
    send(&mut connected, "40").await;
    assert!(next_text(&mut connected).await.starts_with("40"));

    let (silent, unanswered, refused, connected) = tokio::join!(
        answer_pings(&mut silent, silent_opened),
        answer_pings(&mut unanswered, unanswered_opened),
        answer_pings(&mut refused, refused_opened),
        answer_pings(&mut connected, connected_opened),
    );
    at_the_timeout(silent);
    at_the_timeout(unanswered);
    at_the_timeout(refused);
    assert_eq!(connected, None, "a connected session stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeout_is_checked_between_pings() {
    // Pings at 150 ms, 300 ms, 450 ms...: the check at 400 ms falls while a PONG is awaited.
    let url = server(Duration::from_millis(150), Duration::from_millis(150)).await;
    let (mut connected, connected_opened) = session(&url).await;
    send(&mut connected, "40").await;
    assert!(next_text(&mut connected).await.starts_with("40"));
    let (mut silent, silent_opened) = session(&url).await;
    let (connected_closed, silent_closed) = tokio::join!(
        answer_pings(&mut connected, connected_opened),
        answer_pings(&mut silent, silent_opened),
    );
    assert_eq!(
        connected_closed, None,
        "a connected session answering pings stays"
    );
    at_the_timeout(silent_closed);
    // Still served: leaving its only namespace ends it.
    send(&mut connected, "41").await;
    closes(&mut connected).await;
}

#[tokio::test]
async fn a_polling_session_with_no_namespace_connected_is_closed_at_the_timeout() {
    let url = server(Duration::from_secs(25), Duration::from_secs(20)).await;
    let open = reqwest::get(endpoint(&url, "EIO=4&transport=polling"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let opened = Instant::now();
    let open: serde_json::Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
    let sid = open["sid"].as_str().unwrap();
    let poll = endpoint(&url, &format!("EIO=4&transport=polling&sid={sid}"));
    // The pending GET is answered CLOSE at the timeout; the session is gone after.
    let answer = reqwest::get(&poll).await.unwrap().text().await.unwrap();
    assert_eq!(answer, "1");
    assert!(opened.elapsed() >= CONNECT_TIMEOUT - Duration::from_millis(50));
    assert_eq!(reqwest::get(&poll).await.unwrap().status(), 400);
}
