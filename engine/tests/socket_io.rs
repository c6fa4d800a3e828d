//! The official Socket.IO protocol test suite (socketio/socket.io-protocol, `test-suite/`),
//! case by case, against our Socket.IO server with the suite's reference handlers: every
//! socket is sent `auth` with its CONNECT payload, `message` is answered `message-back` with
//! the same arguments, `message-with-ack` is acknowledged with them; namespaces `/` and
//! `/custom`. Plus the official socket.io-client (Node) and what the suite leaves out.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{sync::Arc, time::Duration};

use engine::{
    server::{Config, Engine},
    sockets::{Connecting, DisconnectReason, Event, Namespace, Socket, SocketIo},
};
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite;

mod common;
use common::{Ws, closes, next, next_text, send, websocket};

/// What the reference namespace keeps with each socket: its CONNECT payload's token.
#[derive(Debug)]
struct Token(String);

/// The suite's reference namespace; it also reports disconnects to the test.
struct Reference {
    left: mpsc::UnboundedSender<(String, DisconnectReason)>,
}

impl Namespace for Reference {
    fn connect(&self, connecting: Connecting) {
        let refused = connecting
            .socket()
            .auth()
            .as_ref()
            .and_then(|auth| auth.get("refuse"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        match refused {
            Some(message) => connecting.refuse(&message, Some(json!({ "why": "asked" }))),
            None => {
                // The application's state for the socket, kept from its CONNECT.
                let token = connecting
                    .socket()
                    .auth()
                    .as_ref()
                    .and_then(|auth| auth.get("token"))
                    .and_then(Value::as_str)
                    .unwrap_or("anonymous")
                    .to_owned();
                connecting.socket().set_data(Token(token)).unwrap();
                connecting.accept();
            }
        }
    }

    fn connected(&self, socket: &Arc<Socket>) {
        let auth = socket.auth().unwrap_or_else(|| json!({}));
        socket.emit("auth", &auth).unwrap();
    }

    fn event(&self, socket: &Arc<Socket>, event: Event) {
        match event.name.as_str() {
            "message" => {
                socket
                    .emit_args("message-back", event.args, event.attachments)
                    .unwrap();
            }
            "message-with-ack" => {
                if let Some(ack) = event.ack {
                    ack.send_binary(&Value::Array(event.args), event.attachments)
                        .unwrap();
                }
            }
            "ask-me" => {
                let socket = socket.clone();
                tokio::spawn(async move {
                    let answer = socket
                        .emit_with_ack("question", &"ready?", Duration::from_secs(2))
                        .await;
                    let answer = match answer {
                        Ok(args) => json!({ "answered": args }),
                        Err(err) => json!({ "error": err.to_string() }),
                    };
                    socket.emit("answer", &answer).unwrap();
                });
            }
            "kick-me" => socket.disconnect(),
            "whoami" => {
                let Token(token) = socket.data::<Token>().unwrap();
                socket.emit("you-are", token).unwrap();
            }
            _ => {}
        }
    }

    fn disconnected(&self, socket: &Arc<Socket>, reason: DisconnectReason) {
        let _ = self.left.send((socket.ns().to_owned(), reason));
    }
}

/// A server with the reference namespaces; its URL and the disconnects it sees.
async fn server() -> (String, mpsc::UnboundedReceiver<(String, DisconnectReason)>) {
    let (left, seen) = mpsc::unbounded_channel();
    let io = SocketIo::new()
        .namespace("/", Reference { left: left.clone() })
        .namespace("/custom", Reference { left });
    let config = Config {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        ..Config::default()
    };
    (common::serve(Engine::new(config, io)).await, seen)
}

/// A websocket past the engine.io handshake.
async fn opened(url: &str) -> Ws {
    let mut ws = websocket(url, "EIO=4&transport=websocket").await.unwrap();
    assert!(next_text(&mut ws).await.starts_with('0'));
    ws
}

/// The next packet that is not a PING (answered, so the session stays open).
async fn packet(ws: &mut Ws) -> tungstenite::Message {
    loop {
        let message = next(ws).await.expect("a packet, not the close");
        if message == tungstenite::Message::text("2") {
            send(ws, "3").await;
            continue;
        }
        return message;
    }
}

async fn text(ws: &mut Ws) -> String {
    match packet(ws).await {
        tungstenite::Message::Text(text) => text.to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

async fn binary(ws: &mut Ws) -> Vec<u8> {
    match packet(ws).await {
        tungstenite::Message::Binary(bytes) => bytes.to_vec(),
        other => panic!("expected binary, got {other:?}"),
    }
}

/// The JSON of a CONNECT answer `40<ns>,{...}` for namespace prefix `prefix`.
fn connected_sid(text: &str, prefix: &str) -> String {
    let json = text
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{text:?} does not start with {prefix:?}"));
    let handshake: Value = serde_json::from_str(json).unwrap();
    let keys: Vec<&String> = handshake.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["sid"], "{handshake}");
    handshake["sid"].as_str().unwrap().to_owned()
}

/// A websocket connected to the main namespace, past its `auth` event.
async fn connected(url: &str) -> Ws {
    let mut ws = opened(url).await;
    send(&mut ws, "40").await;
    connected_sid(&text(&mut ws).await, "40");
    assert_eq!(text(&mut ws).await, r#"42["auth",{}]"#);
    ws
}

mod connect {
    use super::*;

    #[tokio::test]
    async fn to_the_main_namespace() {
        let (url, _) = server().await;
        let mut ws = opened(&url).await;
        send(&mut ws, "40").await;
        connected_sid(&text(&mut ws).await, "40");
        assert_eq!(text(&mut ws).await, r#"42["auth",{}]"#);
    }

    #[tokio::test]
    async fn to_the_main_namespace_with_a_payload() {
        let (url, _) = server().await;
        let mut ws = opened(&url).await;
        send(&mut ws, r#"40{"token":"123"}"#).await;
        connected_sid(&text(&mut ws).await, "40");
        assert_eq!(text(&mut ws).await, r#"42["auth",{"token":"123"}]"#);
    }

    #[tokio::test]
    async fn to_a_custom_namespace() {
        let (url, _) = server().await;
        let mut ws = opened(&url).await;
        send(&mut ws, "40/custom,").await;
        connected_sid(&text(&mut ws).await, "40/custom,");
        assert_eq!(text(&mut ws).await, r#"42/custom,["auth",{}]"#);
    }

    #[tokio::test]
    async fn to_a_custom_namespace_with_a_payload() {
        let (url, _) = server().await;
        let mut ws = opened(&url).await;
        send(&mut ws, r#"40/custom,{"token":"abc"}"#).await;
        connected_sid(&text(&mut ws).await, "40/custom,");
        assert_eq!(text(&mut ws).await, r#"42/custom,["auth",{"token":"abc"}]"#);
    }

    #[tokio::test]
    async fn not_to_an_unknown_namespace() {
        let (url, _) = server().await;
        let mut ws = opened(&url).await;
        send(&mut ws, "40/random").await;
        assert_eq!(
            text(&mut ws).await,
            r#"44/random,{"message":"Invalid namespace"}"#
        );
    }

    #[tokio::test]
    async fn not_with_an_invalid_handshake() {
        let (url, _) = server().await;
        let mut ws = opened(&url).await;
        send(&mut ws, "4abc").await;
        closes(&mut ws).await;
    }

    #[tokio::test]
    async fn what_the_namespace_keeps_at_connect_stays_with_the_socket() {
        let (url, _) = server().await;
        let mut ws = opened(&url).await;
        send(&mut ws, r#"40{"token":"t-9"}"#).await;
        connected_sid(&text(&mut ws).await, "40");
        assert_eq!(text(&mut ws).await, r#"42["auth",{"token":"t-9"}]"#);
        send(&mut ws, r#"42["whoami"]"#).await;
        assert_eq!(text(&mut ws).await, r#"42["you-are","t-9"]"#);
    }

    #[tokio::test]
    async fn refused_by_the_namespace_with_its_message_and_data() {
        let (url, _) = server().await;
        let mut ws = opened(&url).await;
        send(&mut ws, r#"40{"refuse":"no entry"}"#).await;
        assert_eq!(
            text(&mut ws).await,
            r#"44{"data":{"why":"asked"},"message":"no entry"}"#
        );
        // The session stays: the client may try again.
        send(&mut ws, "40").await;
        connected_sid(&text(&mut ws).await, "40");
    }
}

mod disconnect {
    use super::*;

    #[tokio::test]
    async fn from_the_main_namespace() {
        let (url, mut left) = server().await;
        let mut ws = connected(&url).await;
        send(&mut ws, "41").await;
        closes(&mut ws).await;
        assert_eq!(
            left.recv().await,
            Some(("/".into(), DisconnectReason::ClientDisconnected))
        );
    }

    #[tokio::test]
    async fn from_a_custom_namespace_keeps_the_main_one() {
        let (url, _) = server().await;
        let mut ws = connected(&url).await;
        send(&mut ws, "40/custom").await;
        connected_sid(&text(&mut ws).await, "40/custom,");
        assert_eq!(text(&mut ws).await, r#"42/custom,["auth",{}]"#);
        send(&mut ws, "41/custom").await;
        send(&mut ws, r#"42["message","message to main namespace"]"#).await;
        assert_eq!(
            text(&mut ws).await,
            r#"42["message-back","message to main namespace"]"#
        );
    }

    #[tokio::test]
    async fn by_the_server() {
        let (url, mut left) = server().await;
        let mut ws = connected(&url).await;
        send(&mut ws, r#"42["kick-me"]"#).await;
        assert_eq!(text(&mut ws).await, "41");
        assert_eq!(
            left.recv().await,
            Some(("/".into(), DisconnectReason::ServerDisconnected))
        );
    }

    #[tokio::test]
    async fn when_the_connection_closes() {
        let (url, mut left) = server().await;
        let mut ws = connected(&url).await;
        ws.close(None).await.unwrap();
        let (ns, reason) = left.recv().await.unwrap();
        assert_eq!(ns, "/");
        assert!(matches!(reason, DisconnectReason::Closed(_)), "{reason:?}");
    }
}

mod message {
    use super::*;

    #[tokio::test]
    async fn a_plain_text_packet() {
        let (url, _) = server().await;
        let mut ws = connected(&url).await;
        send(&mut ws, r#"42["message",1,"2",{"3":[true]}]"#).await;
        assert_eq!(
            text(&mut ws).await,
            r#"42["message-back",1,"2",{"3":[true]}]"#
        );
    }

    #[tokio::test]
    async fn a_packet_with_binary_attachments() {
        let (url, _) = server().await;
        let mut ws = connected(&url).await;
        send(
            &mut ws,
            r#"452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
        )
        .await;
        ws.send(tungstenite::Message::binary(vec![1u8, 2, 3]))
            .await
            .unwrap();
        ws.send(tungstenite::Message::binary(vec![4u8, 5, 6]))
            .await
            .unwrap();
        assert_eq!(
            text(&mut ws).await,
            r#"452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
        );
        assert_eq!(binary(&mut ws).await, [1, 2, 3]);
        assert_eq!(binary(&mut ws).await, [4, 5, 6]);
    }

    #[tokio::test]
    async fn a_plain_text_packet_with_an_ack() {
        let (url, _) = server().await;
        let mut ws = connected(&url).await;
        send(&mut ws, r#"42456["message-with-ack",1,"2",{"3":[false]}]"#).await;
        assert_eq!(text(&mut ws).await, r#"43456[1,"2",{"3":[false]}]"#);
    }

    #[tokio::test]
    async fn a_packet_with_binary_attachments_and_an_ack() {
        let (url, _) = server().await;
        let mut ws = connected(&url).await;
        send(
            &mut ws,
            r#"452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
        )
        .await;
        ws.send(tungstenite::Message::binary(vec![1u8, 2, 3]))
            .await
            .unwrap();
        ws.send(tungstenite::Message::binary(vec![4u8, 5, 6]))
            .await
            .unwrap();
        assert_eq!(
            text(&mut ws).await,
            r#"462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
        );
        assert_eq!(binary(&mut ws).await, [1, 2, 3]);
        assert_eq!(binary(&mut ws).await, [4, 5, 6]);
    }

    #[tokio::test]
    async fn the_connection_closes_upon_an_unknown_packet_type() {
        let (url, _) = server().await;
        let mut ws = connected(&url).await;
        send(&mut ws, "4abc").await;
        closes(&mut ws).await;
    }

    #[tokio::test]
    async fn the_connection_closes_upon_an_invalid_payload() {
        let (url, _) = server().await;
        let mut ws = connected(&url).await;
        send(&mut ws, "42{}").await;
        closes(&mut ws).await;
    }

    #[tokio::test]
    async fn the_connection_closes_upon_an_invalid_ack_id() {
        let (url, _) = server().await;
        let mut ws = connected(&url).await;
        send(&mut ws, r#"42abc["message-with-ack",1,"2",{"3":[false]}]"#).await;
        closes(&mut ws).await;
    }

    #[tokio::test]
    async fn an_event_for_a_namespace_not_joined_closes_the_connection() {
        let (url, _) = server().await;
        let mut ws = connected(&url).await;
        send(&mut ws, r#"42/custom,["message"]"#).await;
        closes(&mut ws).await;
    }

    #[tokio::test]
    async fn the_server_waits_for_the_clients_ack() {
        let (url, _) = server().await;
        let mut ws = connected(&url).await;
        send(&mut ws, r#"42["ask-me"]"#).await;
        let question = text(&mut ws).await;
        let id = question
            .strip_prefix("42")
            .and_then(|rest| rest.strip_suffix(r#"["question","ready?"]"#))
            .unwrap_or_else(|| panic!("{question}"));
        send(&mut ws, &format!(r#"43{id}["yes"]"#)).await;
        assert_eq!(text(&mut ws).await, r#"42["answer",{"answered":["yes"]}]"#);
    }

    #[tokio::test]
    async fn an_unanswered_ack_times_out() {
        let (url, _) = server().await;
        let mut ws = connected(&url).await;
        send(&mut ws, r#"42["ask-me"]"#).await;
        assert!(text(&mut ws).await.ends_with(r#"["question","ready?"]"#));
        assert_eq!(
            text(&mut ws).await,
            r#"42["answer",{"error":"no acknowledgement within the timeout"}]"#
        );
    }
}

/// The official socket.io-client 4.8.4 (npm, pinned by `engine/tests/node/package-lock.json`)
/// over each transport and through the upgrade.
mod official_client {
    use super::*;

    async fn run(mode: &str) {
        let (url, _) = server().await;
        let seen = common::run_node("sio.mjs", &url, mode).await;
        let transport = if mode == "polling" {
            "polling"
        } else {
            "websocket"
        };
        assert_eq!(seen["transport"], transport, "{seen}");
        assert_eq!(seen["auth"], json!({ "token": "t-1" }), "{seen}");
        assert_eq!(
            seen["messageBack"],
            json!([1, "2", { "3": [true] }]),
            "{seen}"
        );
        assert_eq!(seen["binaryBack"], json!([[1, 2, 3], [4, 5]]), "{seen}");
        assert_eq!(seen["acked"], json!(["a", { "b": 1 }]), "{seen}");
        assert_eq!(seen["binaryAcked"], json!([9, 8]), "{seen}");
        assert_eq!(
            seen["answer"],
            json!({ "answered": ["yes to ready?"] }),
            "{seen}"
        );
        assert_eq!(seen["customAuth"], json!({}), "{seen}");
        assert_eq!(seen["customBack"], json!(["to custom"]), "{seen}");
        assert_eq!(
            seen["refused"],
            json!({ "message": "go away", "data": { "why": "asked" } }),
            "{seen}"
        );
    }

    #[tokio::test]
    async fn over_long_polling() {
        run("polling").await;
    }

    #[tokio::test]
    async fn over_websocket() {
        run("websocket").await;
    }

    #[tokio::test]
    async fn through_the_upgrade() {
        run("upgrade").await;
    }
}
