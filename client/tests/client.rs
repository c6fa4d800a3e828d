//! Integration tests of the client against an in-process axum + socketioxide server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::extract::ConnectInfo;
use serde_json::{Value, json};
use socketio_client::Transport;
use socketio_client::{ClientError, ConnectOptions, SocketClient};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::handler::ConnectHandler;

const WAIT: Duration = Duration::from_secs(5);
/// Both transports: the tests that take a transport run over each.
const TRANSPORTS: [Transport; 2] = [Transport::WebSocket, Transport::Polling];

/// Connects to `url` over `transport`.
async fn connect_over(url: &str, transport: Transport) -> SocketClient {
    let options = ConnectOptions::new(url).polling(transport == Transport::Polling);
    let client = SocketClient::connect_with(options).await.unwrap();
    assert_eq!(client.transport(), transport);
    client
}

/// Starts the test server on an ephemeral loopback port and returns its base url.
async fn start_server() -> String {
    let (layer, io) = SocketIo::builder()
        .ping_interval(Duration::from_millis(100))
        .ping_timeout(Duration::from_millis(300))
        .build_layer();
    io.ns("/", on_connect.with(check_auth));
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}")
}

async fn check_auth(Data(auth): Data<Value>) -> Result<(), String> {
    if auth["reject"] == json!(true) {
        Err("rejected by test middleware".to_owned())
    } else {
        Ok(())
    }
}

async fn on_connect(socket: SocketRef) {
    socket.on("echo", async |Data(data): Data<Value>, ack: AckSender| {
        ack.send(&data).ok();
    });
    socket.on("push", async |s: SocketRef, Data(data): Data<Value>| {
        s.emit("pushed", &(data, "second")).ok();
    });
    socket.on(
        "ask",
        async |s: SocketRef, Data(question): Data<Value>, ack: AckSender| {
            let answer = match s.emit_with_ack::<_, Value>("question", &question) {
                Ok(stream) => stream
                    .await
                    .unwrap_or_else(|e| json!(format!("ack error: {e}"))),
                Err(e) => json!(format!("emit error: {e}")),
            };
            ack.send(&answer).ok();
        },
    );
    socket.on("kick", async |s: SocketRef| {
        s.disconnect().ok();
    });
    socket.on("whoami", async |s: SocketRef, ack: AckSender| {
        let peer = s
            .req_parts()
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip().to_string());
        ack.send(&peer).ok();
    });
}

#[tokio::test]
async fn connects_and_gets_a_sid() {
    let url = start_server().await;
    for transport in TRANSPORTS {
        let a = connect_over(&url, transport).await;
        let b = connect_over(&url, transport).await;
        assert!(!a.sid().is_empty());
        assert_ne!(a.sid(), b.sid());
        a.close().await;
        b.close().await;
    }
}

#[tokio::test]
async fn emit_with_ack_round_trips() {
    let url = start_server().await;
    for transport in TRANSPORTS {
        let client = connect_over(&url, transport).await;
        for data in [
            json!({"hello": "wörld", "n": [1, 2]}),
            json!("text"),
            json!(null),
        ] {
            let echoed = client
                .emit_with_ack("echo", data.clone(), WAIT)
                .await
                .unwrap();
            assert_eq!(echoed, data);
        }
        // Concurrent emits share one POST connection (batched) or the websocket.
        let echoes = futures_util::future::join_all(
            (0..50).map(|i| client.emit_with_ack("echo", json!(i), WAIT)),
        )
        .await;
        for (i, echoed) in echoes.into_iter().enumerate() {
            assert_eq!(echoed.unwrap(), json!(i));
        }
        client.close().await;
    }
}

#[tokio::test]
async fn receives_server_pushed_events() {
    let url = start_server().await;
    for transport in TRANSPORTS {
        receives_pushed_events_over(&url, transport).await;
    }
}

async fn receives_pushed_events_over(url: &str, transport: Transport) {
    let mut client = connect_over(url, transport).await;
    assert!(client.try_next_event().is_none());
    client.emit("push", json!({"k": 1})).await.unwrap();
    let event = client.next_event(WAIT).await.unwrap();
    assert_eq!(event.name, "pushed");
    assert_eq!(event.data, json!({"k": 1}));
    assert_eq!(event.args, vec![json!({"k": 1}), json!("second")]);
    assert_eq!(event.ack_id, None);

    client.emit("push", json!(2)).await.unwrap();
    let polled = tokio::time::timeout(WAIT, async {
        loop {
            match client.try_next_event() {
                Some(event) => break event,
                None => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    });
    assert_eq!(polled.await.unwrap().data, json!(2));
    client.close().await;
}

#[tokio::test]
async fn answers_server_ack_requests() {
    let url = start_server().await;
    let mut client = SocketClient::connect(&url).await.unwrap();
    // The server acks "ask" only after the client answered its "question".
    let ask = client.emit_with_ack("ask", json!("how much?"), WAIT);
    let (answer, ()) = tokio::join!(ask, async {
        let question = client.next_event(WAIT).await.unwrap();
        assert_eq!(question.name, "question");
        assert_eq!(question.data, json!("how much?"));
        let ack_id = question.ack_id.expect("the server asked for an ack");
        client.ack(ack_id, json!(42)).await.unwrap();
    });
    assert_eq!(answer.unwrap(), json!(42));

    // A spawned ack call works too.
    let ask = tokio::spawn(client.emit_with_ack("ask", json!("again?"), WAIT));
    let question = client.next_event(WAIT).await.unwrap();
    client
        .ack(question.ack_id.unwrap(), json!({"yes": true}))
        .await
        .unwrap();
    assert_eq!(ask.await.unwrap().unwrap(), json!({"yes": true}));
    client.close().await;
}

#[tokio::test]
async fn ack_timeout_when_the_server_never_acks() {
    let url = start_server().await;
    let mut client = SocketClient::connect(&url).await.unwrap();
    // The server waits for our answer to "question", which we never give.
    let err = client
        .emit_with_ack("ask", json!("?"), Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Timeout), "{err:?}");
    assert_eq!(client.next_event(WAIT).await.unwrap().name, "question");
    client.close().await;
}

#[tokio::test]
async fn disconnected_after_kick() {
    let url = start_server().await;
    for transport in TRANSPORTS {
        disconnected_after_kick_over(&url, transport).await;
    }
}

async fn disconnected_after_kick_over(url: &str, transport: Transport) {
    let mut client = connect_over(url, transport).await;
    client.emit("kick", Value::Null).await.unwrap();
    let err = client.next_event(WAIT).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Disconnected(reason) if reason == "server disconnected the socket"),
        "{err:?}"
    );
    // Every later call reports the disconnection.
    let err = client.next_event(WAIT).await.unwrap_err();
    assert!(matches!(err, ClientError::Disconnected(_)), "{err:?}");
    let err = client.emit("echo", json!(1)).await.unwrap_err();
    assert!(matches!(err, ClientError::Disconnected(_)), "{err:?}");
    let err = client.emit_with_ack("echo", json!(1), WAIT).await;
    assert!(matches!(err, Err(ClientError::Disconnected(_))), "{err:?}");
}

#[tokio::test]
async fn refused_with_the_middleware_message() {
    let url = start_server().await;
    for polling in [false, true] {
        let options = ConnectOptions::new(&url)
            .auth(json!({"reject": true}))
            .polling(polling);
        match SocketClient::connect_with(options).await.unwrap_err() {
            ClientError::ConnectRefused(message) => {
                assert_eq!(message, "rejected by test middleware")
            }
            other => panic!("expected ConnectRefused, got {other:?}"),
        }
    }
    let accepted =
        SocketClient::connect_with(ConnectOptions::new(&url).auth(json!({"reject": false})))
            .await
            .unwrap();
    accepted.close().await;
}

#[tokio::test]
async fn next_event_times_out_and_pings_keep_the_socket_alive() {
    let url = start_server().await;
    for transport in TRANSPORTS {
        let mut client = connect_over(&url, transport).await;
        // Several ping intervals and longer than interval + timeout: the reader must answer
        // pings.
        let err = client
            .next_event(Duration::from_millis(800))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Timeout), "{err:?}");
        assert_eq!(
            client.emit_with_ack("echo", json!(1), WAIT).await.unwrap(),
            json!(1)
        );
        client.close().await;
    }
}

#[tokio::test]
async fn binds_the_requested_source_address() {
    let url = start_server().await;
    let local = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    for transport in TRANSPORTS {
        let options = ConnectOptions::new(&url)
            .local_addr(local)
            .polling(transport == Transport::Polling);
        let client = SocketClient::connect_with(options).await.unwrap();
        let peer = client
            .emit_with_ack("whoami", Value::Null, WAIT)
            .await
            .unwrap();
        assert_eq!(peer, json!("127.0.0.2"));
        client.close().await;
    }
}

#[tokio::test]
async fn connect_errors_are_reported() {
    // Nothing listens on port 1 of loopback.
    let err = SocketClient::connect("http://127.0.0.1:1")
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Connect(_)), "{err:?}");
    let err = SocketClient::connect("https://127.0.0.1:1")
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Connect(_)), "{err:?}");
    let err = SocketClient::connect_with(ConnectOptions::new("http://127.0.0.1:1").polling(true))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Connect(_)), "{err:?}");
}

#[tokio::test]
async fn connects_200_clients_concurrently() {
    let url = start_server().await;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                let client = SocketClient::connect(&url).await.unwrap();
                let echoed = client.emit_with_ack("echo", json!(i), WAIT).await.unwrap();
                assert_eq!(echoed, json!(i));
                client
            })
        })
        .collect();
    let mut sids = std::collections::HashSet::new();
    for task in tasks {
        let client = task.await.unwrap();
        assert!(sids.insert(client.sid().to_owned()));
    }
    assert_eq!(sids.len(), 200);
}
