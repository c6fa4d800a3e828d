//! Rooms joined while a CONNECT is being answered (`Connecting::join`): held for the cluster
//! meanwhile, the socket receives the room's broadcasts from its CONNECT on, none before it,
//! and a refused socket leaves the rooms it joined.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use engine::{
    server::{Config, Engine},
    sockets::{Connecting, DisconnectReason, Event, Namespace, Socket, SocketIo},
};
use redis_adapter::Selection;
use tokio::sync::{mpsc, oneshot};

mod common;
use common::{next_text, send, websocket};

/// Joins `room` while connecting, tells the test, then lets the socket in or refuses it
/// as the test says.
struct Gatekeeper {
    joined: mpsc::UnboundedSender<oneshot::Sender<bool>>,
}

impl Namespace for Gatekeeper {
    fn connect(&self, connecting: Connecting) {
        let joined = self.joined.clone();
        tokio::spawn(async move {
            connecting.join("room").await.unwrap();
            let (answer, decided) = oneshot::channel();
            joined.send(answer).unwrap();
            if decided.await.unwrap() {
                connecting.accept();
            } else {
                connecting.refuse("no", None);
            }
        });
    }
    fn connected(&self, _: &Arc<Socket>) {}
    fn event(&self, _: &Arc<Socket>, _: Event) {}
    fn disconnected(&self, _: &Arc<Socket>, _: DisconnectReason) {}
}

/// A server whose `/` is a [`Gatekeeper`]: its URL, its namespace and the decisions it waits
/// for.
async fn gatekept() -> (
    String,
    Arc<engine::sockets::Nsp>,
    mpsc::UnboundedReceiver<oneshot::Sender<bool>>,
) {
    let (joined, waiting) = mpsc::unbounded_channel();
    let io = Arc::new(SocketIo::new().namespace("/", Gatekeeper { joined }));
    let nsp = io.of("/").unwrap().clone();
    let url = common::serve(Engine::new(Config::default(), io)).await;
    (url, nsp, waiting)
}

/// A websocket client of `url` whose CONNECT to `/` waits for the decision it returns.
async fn connecting(
    url: &str,
    waiting: &mut mpsc::UnboundedReceiver<oneshot::Sender<bool>>,
) -> (common::Ws, oneshot::Sender<bool>) {
    let mut ws = websocket(url, "EIO=4&transport=websocket").await.unwrap();
    assert!(next_text(&mut ws).await.starts_with('0'));
    send(&mut ws, "40").await;
    (ws, waiting.recv().await.unwrap())
}

#[tokio::test]
async fn a_room_joined_while_connecting_delivers_from_the_connect_on() {
    let (url, nsp, mut waiting) = gatekept().await;
    let (mut ws, decide) = connecting(&url, &mut waiting).await;

    // Held for the cluster (its subscription is kept), not yet a member: the broadcast
    // reaches no one.
    assert!(nsp.holds("room"));
    assert!(nsp.held_rooms().contains("room"));
    assert_eq!(nsp.to(["room"]).emit("early", &1).await.unwrap(), 0);
    decide.send(true).unwrap();
    assert!(next_text(&mut ws).await.starts_with("40{"), "CONNECT first");
    assert_eq!(nsp.to(["room"]).emit("late", &2).await.unwrap(), 1);
    assert_eq!(next_text(&mut ws).await, r#"42["late",2]"#);
    let members = nsp.local_sockets(&Selection::room("room"));
    assert_eq!(members.len(), 1);
    assert!(members[0].in_room("room"));
}

#[tokio::test]
async fn a_refused_socket_leaves_the_rooms_it_joined_while_connecting() {
    let (url, nsp, mut waiting) = gatekept().await;
    let (mut ws, decide) = connecting(&url, &mut waiting).await;
    assert!(nsp.holds("room"));
    decide.send(false).unwrap();
    assert_eq!(next_text(&mut ws).await, r#"44{"message":"no"}"#);
    assert!(!nsp.holds("room"));
    assert_eq!(nsp.to(["room"]).emit("after", &3).await.unwrap(), 0);
}
