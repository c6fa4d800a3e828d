//! The official engine.io protocol test suite (socketio/engine.io-protocol, `test-suite/`),
//! case by case, against our server with the suite's settings (ping interval 300 ms, ping
//! timeout 200 ms, maxPayload 1,000,000) and an echo handler, as the suite's reference
//! server has. Plus the limits the suite does not test.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{sync::Arc, time::Duration};

use engine::server::{CloseReason, Config, Engine, Handler, Message, Packet, Session};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite;

mod common;
use common::{WAIT, Ws, closes, endpoint, next, next_text, send, websocket};

const PING_INTERVAL: Duration = Duration::from_millis(300);
const PING_TIMEOUT: Duration = Duration::from_millis(200);

/// Sends every message back to its session, as the suite's reference server does.
struct Echo;

impl Handler for Echo {
    fn on_open(&self, _: &Arc<Session>) {}

    fn on_message(&self, session: &Session, message: Message<'_>) {
        let packet = match message {
            Message::Text(text) => Packet::message(text),
            Message::Binary(bytes) => Packet::Binary(bytes),
        };
        session.send(&packet);
    }

    fn on_close(&self, _: &Session, _: CloseReason) {}
}

/// An echo server on a free loopback port; its base URL (`http://127.0.0.1:P`).
async fn server(config: Config) -> String {
    common::serve(Engine::new(config, Echo)).await
}

fn suite_config() -> Config {
    Config {
        ping_interval: PING_INTERVAL,
        ping_timeout: PING_TIMEOUT,
        max_payload: 1_000_000,
        ..Config::default()
    }
}

async fn suite_server() -> String {
    server(suite_config()).await
}

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn post(url: &str, body: &'static str) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(url)
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The JSON of an OPEN packet.
fn open_packet(text: &str) -> Value {
    let json = text
        .strip_prefix('0')
        .unwrap_or_else(|| panic!("not OPEN: {text:?}"));
    serde_json::from_str(json).unwrap()
}

/// Opens a polling session; its sid.
async fn polling_session(url: &str) -> String {
    let (status, body) = get(&endpoint(url, "EIO=4&transport=polling")).await;
    assert_eq!(status, 200, "{body}");
    open_packet(&body)["sid"].as_str().unwrap().to_owned()
}

fn session_url(url: &str, sid: &str) -> String {
    endpoint(url, &format!("EIO=4&transport=polling&sid={sid}"))
}

/// A websocket session past its OPEN packet.
async fn websocket_session(url: &str) -> Ws {
    let mut ws = websocket(url, "EIO=4&transport=websocket").await.unwrap();
    open_packet(&next_text(&mut ws).await);
    ws
}

fn assert_handshake(open: &Value, upgrades: &[&str]) {
    let mut keys: Vec<&str> = open
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "maxPayload",
            "pingInterval",
            "pingTimeout",
            "sid",
            "upgrades"
        ]
    );
    assert!(open["sid"].is_string());
    assert_eq!(open["upgrades"], serde_json::json!(upgrades));
    assert_eq!(open["pingInterval"], 300);
    assert_eq!(open["pingTimeout"], 200);
    assert_eq!(open["maxPayload"], 1_000_000);
}

mod handshake {
    use super::*;

    #[tokio::test]
    async fn polling_opens_a_session() {
        let url = suite_server().await;
        let (status, body) = get(&endpoint(&url, "EIO=4&transport=polling")).await;
        assert_eq!(status, 200);
        assert_handshake(&open_packet(&body), &["websocket"]);
    }

    #[tokio::test]
    async fn polling_fails_with_an_invalid_eio() {
        let url = suite_server().await;
        for query in ["transport=polling", "EIO=abc&transport=polling"] {
            assert_eq!(get(&endpoint(&url, query)).await.0, 400, "{query}");
        }
    }

    #[tokio::test]
    async fn polling_fails_with_an_invalid_transport() {
        let url = suite_server().await;
        for query in ["EIO=4", "EIO=4&transport=abc"] {
            assert_eq!(get(&endpoint(&url, query)).await.0, 400, "{query}");
        }
    }

    #[tokio::test]
    async fn polling_fails_with_an_invalid_request_method() {
        let url = suite_server().await;
        let target = endpoint(&url, "EIO=4&transport=polling");
        let client = reqwest::Client::new();
        for method in [reqwest::Method::POST, reqwest::Method::PUT] {
            let response = client
                .request(method.clone(), &target)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "{method}");
        }
    }

    #[tokio::test]
    async fn websocket_opens_a_session() {
        let url = suite_server().await;
        let mut ws = websocket(&url, "EIO=4&transport=websocket").await.unwrap();
        assert_handshake(&open_packet(&next_text(&mut ws).await), &[]);
    }

    #[tokio::test]
    async fn websocket_fails_with_an_invalid_eio_or_transport() {
        let url = suite_server().await;
        for query in [
            "transport=websocket",
            "EIO=abc&transport=websocket",
            "EIO=4",
            "EIO=4&transport=abc",
        ] {
            assert!(websocket(&url, query).await.is_err(), "{query}");
        }
    }
}

mod message {
    use super::*;

    #[tokio::test]
    async fn polling_sends_and_receives_one_plain_text_packet() {
        let url = suite_server().await;
        let session = session_url(&url, &polling_session(&url).await);
        assert_eq!(post(&session, "4hello").await, (200, "ok".into()));
        assert_eq!(get(&session).await, (200, "4hello".into()));
    }

    #[tokio::test]
    async fn polling_sends_and_receives_several_plain_text_packets() {
        let url = suite_server().await;
        let session = session_url(&url, &polling_session(&url).await);
        let payload = "4test1\u{1e}4test2\u{1e}4test3";
        assert_eq!(post(&session, payload).await, (200, "ok".into()));
        assert_eq!(get(&session).await, (200, payload.into()));
    }

    #[tokio::test]
    async fn polling_sends_and_receives_text_and_binary_packets() {
        let url = suite_server().await;
        let session = session_url(&url, &polling_session(&url).await);
        let payload = "4hello\u{1e}bAQIDBA==";
        assert_eq!(post(&session, payload).await, (200, "ok".into()));
        assert_eq!(get(&session).await, (200, payload.into()));
    }

    #[tokio::test]
    async fn polling_closes_the_session_upon_an_invalid_packet() {
        let url = suite_server().await;
        let session = session_url(&url, &polling_session(&url).await);
        assert_eq!(post(&session, "abc").await.0, 400);
        assert_eq!(get(&session).await.0, 400);
    }

    #[tokio::test]
    async fn polling_closes_the_session_upon_duplicate_poll_requests() {
        let url = suite_server().await;
        let session = session_url(&url, &polling_session(&url).await);
        let first = tokio::spawn({
            let session = session.clone();
            async move { get(&session).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let second = get(&format!("{session}&t=burst")).await;
        assert_eq!(first.await.unwrap(), (200, "1".into()));
        assert_eq!(second.0, 400);
        assert_eq!(get(&session).await.0, 400);
    }

    #[tokio::test]
    async fn websocket_sends_and_receives_a_plain_text_packet() {
        let url = suite_server().await;
        let mut ws = websocket_session(&url).await;
        send(&mut ws, "4hello").await;
        assert_eq!(next_text(&mut ws).await, "4hello");
    }

    #[tokio::test]
    async fn websocket_sends_and_receives_a_binary_packet() {
        let url = suite_server().await;
        let mut ws = websocket_session(&url).await;
        ws.send(tungstenite::Message::binary(vec![1u8, 2, 3, 4]))
            .await
            .unwrap();
        match next(&mut ws).await {
            Some(tungstenite::Message::Binary(bytes)) => assert_eq!(&bytes[..], [1, 2, 3, 4]),
            other => panic!("expected a binary frame, got {other:?}"),
        }
    }

    /// One message spans many of the server's 4 KiB reads (each of which keeps the socket
    /// readable), and many messages arrive in one read (whose short length ends the data).
    #[tokio::test]
    async fn websocket_messages_longer_than_a_read_and_many_in_one_read_arrive_whole() {
        let url = suite_server().await;
        let mut ws = websocket_session(&url).await;
        let long = format!("4{}", "z".repeat(50_000));
        send(&mut ws, &long).await;
        for i in 0..100 {
            send(&mut ws, &format!("4m{i}")).await;
        }
        assert_eq!(next_text(&mut ws).await, long);
        for i in 0..100 {
            assert_eq!(next_text(&mut ws).await, format!("4m{i}"));
        }
        // Still read after going idle: the readiness cleared by the last short read comes back.
        tokio::time::sleep(Duration::from_millis(50)).await;
        send(&mut ws, "4after").await;
        assert_eq!(next_text(&mut ws).await, "4after");
    }

    #[tokio::test]
    async fn websocket_closes_the_session_upon_an_invalid_packet() {
        let url = suite_server().await;
        let mut ws = websocket_session(&url).await;
        send(&mut ws, "abc").await;
        closes(&mut ws).await;
    }
}

mod heartbeat {
    use super::*;

    #[tokio::test]
    async fn polling_sends_ping_and_takes_pong() {
        let url = suite_server().await;
        let session = session_url(&url, &polling_session(&url).await);
        for _ in 0..3 {
            assert_eq!(get(&session).await, (200, "2".into()));
            assert_eq!(post(&session, "3").await, (200, "ok".into()));
        }
    }

    #[tokio::test]
    async fn polling_closes_the_session_upon_ping_timeout() {
        let url = suite_server().await;
        let session = session_url(&url, &polling_session(&url).await);
        tokio::time::sleep(PING_INTERVAL + PING_TIMEOUT + Duration::from_millis(100)).await;
        assert_eq!(post(&session, "3").await.0, 400);
    }

    #[tokio::test]
    async fn websocket_sends_ping_and_takes_pong() {
        let url = suite_server().await;
        let mut ws = websocket_session(&url).await;
        for _ in 0..3 {
            assert_eq!(next_text(&mut ws).await, "2");
            send(&mut ws, "3").await;
        }
    }

    #[tokio::test]
    async fn websocket_closes_the_session_upon_ping_timeout() {
        let url = suite_server().await;
        let mut ws = websocket_session(&url).await;
        assert_eq!(next_text(&mut ws).await, "2");
        // No PONG: the server sends CLOSE and closes the connection.
        assert_eq!(next_text(&mut ws).await, "1");
        closes(&mut ws).await;
    }
}

mod close {
    use super::*;

    #[tokio::test]
    async fn polling_forcefully_closes_the_session() {
        let url = suite_server().await;
        let session = session_url(&url, &polling_session(&url).await);
        let pending = tokio::spawn({
            let session = session.clone();
            async move { get(&session).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(post(&session, "1").await.0, 200);
        assert_eq!(pending.await.unwrap(), (200, "6".into()));
        assert_eq!(get(&session).await.0, 400);
    }

    #[tokio::test]
    async fn websocket_forcefully_closes_the_session() {
        let url = suite_server().await;
        let mut ws = websocket_session(&url).await;
        send(&mut ws, "1").await;
        closes(&mut ws).await;
    }
}

mod upgrade {
    use super::*;

    /// A polling session upgraded: probe answered, the pending poll released with NOOP,
    /// UPGRADE sent. Its websocket and sid.
    async fn upgraded(url: &str) -> (Ws, String) {
        let sid = polling_session(url).await;
        let mut ws = websocket(url, &format!("EIO=4&transport=websocket&sid={sid}"))
            .await
            .unwrap();
        send(&mut ws, "2probe").await;
        assert_eq!(next_text(&mut ws).await, "3probe");
        assert_eq!(get(&session_url(url, &sid)).await, (200, "6".into()));
        send(&mut ws, "5").await;
        (ws, sid)
    }

    #[tokio::test]
    async fn polling_upgrades_to_websocket() {
        let url = suite_server().await;
        let (mut ws, _) = upgraded(&url).await;
        send(&mut ws, "4hello").await;
        assert_eq!(next_text(&mut ws).await, "4hello");
    }

    #[tokio::test]
    async fn http_requests_with_the_same_sid_are_refused_after_the_upgrade() {
        let url = suite_server().await;
        let (mut ws, sid) = upgraded(&url).await;
        send(&mut ws, "4hello").await;
        assert_eq!(next_text(&mut ws).await, "4hello");
        assert_eq!(get(&session_url(&url, &sid)).await.0, 400);
        send(&mut ws, "4again").await;
        assert_eq!(next_text(&mut ws).await, "4again");
    }

    #[tokio::test]
    async fn a_websocket_with_the_same_sid_is_refused_after_the_upgrade() {
        let url = suite_server().await;
        let (mut ws, sid) = upgraded(&url).await;
        send(&mut ws, "4hello").await;
        assert_eq!(next_text(&mut ws).await, "4hello");
        let second = websocket(&url, &format!("EIO=4&transport=websocket&sid={sid}")).await;
        assert!(second.is_err(), "a second websocket took the session");
        send(&mut ws, "4again").await;
        assert_eq!(next_text(&mut ws).await, "4again");
    }

    #[tokio::test]
    async fn what_polling_had_waiting_goes_out_on_the_websocket_first() {
        let url = suite_server().await;
        let sid = polling_session(&url).await;
        let session = session_url(&url, &sid);
        let mut ws = websocket(&url, &format!("EIO=4&transport=websocket&sid={sid}"))
            .await
            .unwrap();
        send(&mut ws, "2probe").await;
        assert_eq!(next_text(&mut ws).await, "3probe");
        assert_eq!(get(&session).await, (200, "6".into()));
        // Echoed onto polling while the upgrade is not complete.
        assert_eq!(post(&session, "4queued").await.0, 200);
        send(&mut ws, "5").await;
        assert_eq!(next_text(&mut ws).await, "4queued");
    }
}

mod limits {
    use super::*;

    #[tokio::test]
    async fn a_polling_body_over_max_payload_is_413_and_ends_the_session() {
        let url = server(Config {
            max_payload: 100,
            ..suite_config()
        })
        .await;
        let session = session_url(&url, &polling_session(&url).await);
        let body: &'static str = Box::leak(format!("4{}", "x".repeat(200)).into_boxed_str());
        assert_eq!(post(&session, body).await.0, 413);
        assert_eq!(get(&session).await.0, 400);
    }

    #[tokio::test]
    async fn a_websocket_message_over_max_payload_closes_that_connection_only() {
        let url = server(Config {
            max_payload: 100,
            ..suite_config()
        })
        .await;
        let mut big = websocket_session(&url).await;
        let mut other = websocket_session(&url).await;
        send(&mut big, &format!("4{}", "x".repeat(200))).await;
        closes(&mut big).await;
        send(&mut other, "4still here").await;
        assert_eq!(next_text(&mut other).await, "4still here");
    }

    #[tokio::test]
    async fn an_unknown_sid_is_refused() {
        let url = suite_server().await;
        assert_eq!(get(&session_url(&url, "nope")).await.0, 400);
        assert_eq!(post(&session_url(&url, "nope"), "4x").await.0, 400);
        assert!(
            websocket(&url, "EIO=4&transport=websocket&sid=nope")
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn handshakes_beyond_max_sessions_are_503() {
        let url = server(Config {
            max_sessions: 2,
            ..suite_config()
        })
        .await;
        polling_session(&url).await;
        polling_session(&url).await;
        assert_eq!(get(&endpoint(&url, "EIO=4&transport=polling")).await.0, 503);
    }

    /// A websocket that is not its connection's first request goes through hyper's upgrade
    /// (the first is taken before hyper).
    #[tokio::test]
    async fn a_websocket_on_a_kept_alive_connection_opens_a_session_too() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let url = suite_server().await;
        let mut tcp = tokio::net::TcpStream::connect(url.trim_start_matches("http://"))
            .await
            .unwrap();
        tcp.write_all(b"GET /elsewhere HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut seen = Vec::new();
        while !String::from_utf8_lossy(&seen).ends_with("not found") {
            let mut chunk = [0u8; 512];
            let n = tcp.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&chunk[..n]);
        }
        tcp.write_all(
            b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n\
              Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .await
        .unwrap();
        let mut seen = Vec::new();
        // The 101, then the first frame: OPEN as text.
        while !String::from_utf8_lossy(&seen).contains(r#""upgrades":[]}"#) {
            let mut chunk = [0u8; 512];
            let n = tokio::time::timeout(WAIT, tcp.read(&mut chunk))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&chunk[..n]);
        }
        let text = String::from_utf8_lossy(&seen);
        assert!(text.starts_with("HTTP/1.1 101"), "{text}");
        assert!(text.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{text}");
    }

    #[tokio::test]
    async fn the_application_may_turn_new_sessions_away_on_either_transport() {
        let engine = Engine::new(suite_config(), Echo);
        engine.set_admission(Arc::new(|parts, _peer| {
            if parts.headers.contains_key("x-deny") {
                Err(engine::server::Denial {
                    status: http::StatusCode::TOO_MANY_REQUESTS,
                    content_type: "application/json",
                    body: bytes::Bytes::from_static(br#"{"error":"rate_limited"}"#),
                })
            } else {
                Ok(())
            }
        }));
        let url = common::serve(engine).await;
        let denied = reqwest::Client::new()
            .get(endpoint(&url, "EIO=4&transport=polling"))
            .header("x-deny", "1")
            .send()
            .await
            .unwrap();
        assert_eq!(denied.status(), 429);
        assert_eq!(denied.text().await.unwrap(), r#"{"error":"rate_limited"}"#);
        let mut request = tungstenite::client::IntoClientRequest::into_client_request(endpoint(
            &url.replace("http://", "ws://"),
            "EIO=4&transport=websocket",
        ))
        .unwrap();
        request
            .headers_mut()
            .insert("x-deny", http::HeaderValue::from_static("1"));
        match tokio_tungstenite::connect_async(request).await {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 429),
            other => panic!("expected 429, got {other:?}"),
        }
        // Without the header both open.
        polling_session(&url).await;
        websocket_session(&url).await;
    }

    #[tokio::test]
    async fn other_paths_go_to_the_fallback() {
        let url = suite_server().await;
        assert_eq!(get(&format!("{url}/elsewhere")).await.0, 404);
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_is_closed_as_too_slow() {
        let url = server(Config {
            max_buffered: 64 << 10,
            ping_interval: Duration::from_secs(60),
            ..suite_config()
        })
        .await;
        let mut ws = websocket_session(&url).await;
        // Echoes of 1 MB of messages the client does not read fill the socket buffers and
        // then the bound: the server closes the connection.
        let chunk = format!("4{}", "y".repeat(60_000));
        let mut closed = false;
        for _ in 0..400 {
            if ws
                .send(tungstenite::Message::text(chunk.as_str()))
                .await
                .is_err()
            {
                closed = true;
                break;
            }
        }
        if !closed {
            // Draining now shows the close after some echoes.
            let drained =
                tokio::time::timeout(WAIT, async { while let Some(Ok(_)) = ws.next().await {} })
                    .await;
            closed = drained.is_ok();
        }
        assert!(closed, "the server kept a client that read nothing");
    }
}

/// The official engine.io-client (npm, pinned by `engine/tests/node/package-lock.json`) over
/// each transport and through the upgrade.
mod official_client {
    use super::*;

    async fn run(mode: &str) -> Value {
        common::run_node("eio.mjs", &server(Config::default()).await, mode).await
    }

    #[tokio::test]
    async fn talks_over_long_polling() {
        let seen = run("polling").await;
        assert_eq!(seen["opened"], "polling", "{seen}");
        assert_eq!(
            seen["echoes"],
            serde_json::json!(["hello", "binary:1,2,3,5"])
        );
    }

    #[tokio::test]
    async fn talks_over_websocket() {
        let seen = run("websocket").await;
        assert_eq!(seen["opened"], "websocket", "{seen}");
        assert_eq!(
            seen["echoes"],
            serde_json::json!(["hello", "binary:1,2,3,5"])
        );
    }

    #[tokio::test]
    async fn upgrades_from_polling_to_websocket_keeping_every_message_in_order() {
        let seen = run("upgrade").await;
        assert_eq!(
            (&seen["opened"], &seen["upgraded"]),
            (&"polling".into(), &"websocket".into()),
            "{seen}"
        );
        assert_eq!(
            seen["echoes"],
            serde_json::json!([
                "hello",
                "binary:1,2,3,5",
                "after upgrade",
                "binary:1,2,3,13"
            ])
        );
    }
}
