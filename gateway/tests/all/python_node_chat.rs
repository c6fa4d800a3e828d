//! python-socketio (pinned in `tests/python/requirements.txt`) on one gateway process and the
//! official JavaScript `socket.io-client` (pinned by `tests/node/package-lock.json`) on
//! another, clustered over one Redis, in one conversation: Alice (Python) and Bob (Node), two
//! users of tenant `acme`, join one room, each sends messages and a `dm` to the other, and
//! each receives the other's exactly once, in order, with the right `from`.
//!
//! Each client is a script driven line by line (`tests/python/peer.py`, `tests/node/peer.mjs`,
//! one protocol): the test waits for both to be in the room before anyone sends, and for both
//! to have sent before it asks what they received. The Python client runs over websocket and
//! over HTTP long-polling (the Node client over the other transport). Needs the Debian
//! packages `redis-server`, `python3`, `python3-venv`, `nodejs` and `npm`.

use serde_json::{Value, json};
use test_support::RedisServer;

use crate::support::{ChildGateway, ScriptPeer, clustered_args, login};

/// Messages each client sends to the room.
const MESSAGES: usize = 5;

/// What one client sent: its room messages' texts and ids, and its `dm`'s id.
struct Sent {
    texts: Vec<String>,
    ids: Vec<Value>,
    dm: Value,
}

/// The script's arguments: connect to `url` as the holder of `token` over `transport`.
fn peer_args(url: &str, token: &str, transport: &str, room: &str) -> Vec<String> {
    [
        "--url",
        url,
        &format!("--token={token}"),
        "--transport",
        transport,
        "--room",
        room,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Has `peer` send [`MESSAGES`] texts tagged `tag`, then a `dm` to `to`.
async fn send_both(peer: &mut ScriptPeer, tag: &str, to: &str) -> Sent {
    let texts: Vec<String> = (0..MESSAGES).map(|i| format!("{tag} says {i}")).collect();
    peer.send(&json!({ "send": texts }).to_string()).await;
    let ids = peer.step("sent").await["ids"]
        .as_array()
        .expect("the acked ids")
        .clone();
    let dm = json!({"dm": {"to": to, "text": format!("a dm from {tag}")}});
    peer.send(&dm.to_string()).await;
    let dm = peer.step("dm_sent").await["id"].clone();
    Sent { texts, ids, dm }
}

/// Checks `report` (what `user` received) against what `user` and `other` sent: every
/// message of each, exactly once and in its sender's order, with the sender's `from`, and
/// `other`'s `dm` exactly once.
fn check_received(report: &Value, user: &str, own: &Sent, other: &str, theirs: &Sent) {
    let messages = report["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2 * MESSAGES, "{user} received {report}");
    for (sender, sent) in [(user, own), (other, theirs)] {
        let from: Vec<&Value> = messages.iter().filter(|m| m["user"] == sender).collect();
        let texts: Vec<&str> = from.iter().filter_map(|m| m["text"].as_str()).collect();
        assert_eq!(
            texts, sent.texts,
            "{user}'s messages from {sender}: {report}"
        );
        let ids: Vec<&Value> = from.iter().map(|m| &m["id"]).collect();
        assert_eq!(ids, sent.ids.iter().collect::<Vec<_>>(), "{user}: {report}");
        assert!(from.iter().all(|m| m["from"] == sender), "{report}");
    }
    let dms = report["dms"].as_array().expect("dms");
    assert_eq!(dms.len(), 1, "{user} received {report}");
    assert_eq!(dms[0]["id"], theirs.dm, "{report}");
    assert_eq!(dms[0]["from"], other, "{report}");
    assert_eq!(dms[0]["user"], other, "{report}");
    assert_eq!(dms[0]["text"], format!("a dm from {other}"), "{report}");
}

async fn python_and_node_chat(python_transport: &str, node_transport: &str) {
    let redis = RedisServer::start().await;
    let args = clustered_args(&redis.url());
    let a = ChildGateway::start(&args).await;
    let b = ChildGateway::start(&args).await;
    let room = format!("py-node-{python_transport}");
    let (alice, bob) = (login(a.url(), "alice").await, login(b.url(), "bob").await);
    let mut python = ScriptPeer::python(
        "peer.py (alice)",
        "peer.py",
        &peer_args(a.url(), &alice, python_transport, &room),
    );
    let mut node = ScriptPeer::node(
        "peer.mjs (bob)",
        "peer.mjs",
        &peer_args(b.url(), &bob, node_transport, &room),
    );
    let python_ready = python.step("ready").await;
    let node_ready = node.step("ready").await;
    assert_eq!(python_ready["transport"], python_transport);
    assert_eq!(node_ready["transport"], node_transport);
    assert_ne!(
        python_ready["instance"], node_ready["instance"],
        "the clients are on two instances"
    );

    // Both talk at once: each one's messages in its own order, interleaved with the other's.
    let (from_alice, from_bob) = tokio::join!(
        send_both(&mut python, "alice", "bob"),
        send_both(&mut node, "bob", "alice"),
    );
    let wanted = json!({"await": {"messages": 2 * MESSAGES, "dms": 1}}).to_string();
    python.send(&wanted).await;
    node.send(&wanted).await;
    let python_report = python.step("report").await;
    let node_report = node.step("report").await;
    check_received(&python_report, "alice", &from_alice, "bob", &from_bob);
    check_received(&node_report, "bob", &from_bob, "alice", &from_alice);

    for mut peer in [python, node] {
        peer.send(r#"{"bye": true}"#).await;
        assert!(peer.finish().await.success());
    }
}

#[tokio::test]
async fn python_over_websocket_and_node_chat_across_instances() {
    python_and_node_chat("websocket", "polling").await;
}

#[tokio::test]
async fn python_over_polling_and_node_chat_across_instances() {
    python_and_node_chat("polling", "websocket").await;
}
