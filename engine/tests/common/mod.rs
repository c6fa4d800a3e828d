//! What the engine's integration tests share: a server on a free loopback port and a
//! websocket client speaking raw engine.io frames.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use engine::server::{Engine, NotFound};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite};

/// How long a test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(5);

/// Serves `engine` on a free loopback port; its base URL (`http://127.0.0.1:P`).
pub async fn serve(engine: Engine) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { engine.serve(listener, NotFound).await });
    url
}

/// The engine.io endpoint of `url` with `query`.
pub fn endpoint(url: &str, query: &str) -> String {
    format!("{url}/socket.io/?{query}")
}

/// A raw websocket client.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a websocket to the engine.io endpoint of `url` with `query`.
pub async fn websocket(url: &str, query: &str) -> Result<Ws, tungstenite::Error> {
    let ws_url = endpoint(&url.replace("http://", "ws://"), query);
    tokio_tungstenite::connect_async(ws_url)
        .await
        .map(|(ws, _)| ws)
}

/// The next data frame, or `None` when the connection closes first.
pub async fn next(ws: &mut Ws) -> Option<tungstenite::Message> {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame or the close within the wait");
        match message {
            Some(Ok(tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_))) => {}
            Some(Ok(tungstenite::Message::Close(_))) | Some(Err(_)) | None => return None,
            Some(Ok(message)) => return Some(message),
        }
    }
}

/// Asserts that nothing arrives on `ws` for 300 ms.
pub async fn quiet(ws: &mut Ws) {
    let next = tokio::time::timeout(Duration::from_millis(300), next(ws)).await;
    assert!(next.is_err(), "expected nothing, got {next:?}");
}

/// The next data frame, which must be text.
pub async fn next_text(ws: &mut Ws) -> String {
    match next(ws).await {
        Some(tungstenite::Message::Text(text)) => text.to_string(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// Sends one text frame.
pub async fn send(ws: &mut Ws, text: &str) {
    ws.send(tungstenite::Message::text(text)).await.unwrap();
}

/// Asserts that the server closes the connection (after an engine.io CLOSE packet, or
/// without one).
pub async fn closes(ws: &mut Ws) {
    match next(ws).await {
        None => {}
        Some(message) if message == tungstenite::Message::text("1") => {
            assert_eq!(
                next(ws).await,
                None,
                "the connection should close after CLOSE"
            );
        }
        Some(message) => panic!("the connection should close, got {message:?}"),
    }
}

/// Runs `node <script> <url> <mode>` in `engine/tests/node` (its pinned modules installed
/// with `npm ci` when missing) and returns the JSON line it prints; fails the test when the
/// script fails.
pub async fn run_node(script: &str, url: &str, mode: &str) -> serde_json::Value {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node"));
    test_support::npm_ci(dir, "socket.io-client");
    let run = tokio::process::Command::new("node")
        .args([script, url, mode])
        .current_dir(dir)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the client ends by itself")
        .unwrap_or_else(|err| {
            panic!("cannot run node ({err}): install the Debian package `nodejs`")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} {mode}: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|err| panic!("{err}: {stdout}"))
}

/// A namespace whose sockets join nothing by themselves: the tests move them.
pub struct Quiet;

impl engine::sockets::Namespace for Quiet {
    fn connected(&self, _: &std::sync::Arc<engine::sockets::Socket>) {}
    fn event(&self, _: &std::sync::Arc<engine::sockets::Socket>, _: engine::sockets::Event) {}
    fn disconnected(
        &self,
        _: &std::sync::Arc<engine::sockets::Socket>,
        _: engine::sockets::DisconnectReason,
    ) {
    }
}

/// A raw websocket client connected to `/` of `url`, and its socket on the server, found
/// in `nsp` by the id its CONNECT answer gives.
pub async fn socket_client(
    url: &str,
    nsp: &engine::sockets::Nsp,
) -> (Ws, std::sync::Arc<engine::sockets::Socket>) {
    let mut ws = websocket(url, "EIO=4&transport=websocket").await.unwrap();
    assert!(next_text(&mut ws).await.starts_with('0'));
    send(&mut ws, "40").await;
    let connect = next_text(&mut ws).await;
    let welcome: serde_json::Value =
        serde_json::from_str(connect.strip_prefix("40").unwrap()).unwrap();
    let sid = welcome["sid"].as_str().unwrap();
    let socket = nsp
        .local_sockets(&redis_adapter::Selection::default())
        .into_iter()
        .find(|socket| socket.id() == sid)
        .unwrap();
    (ws, socket)
}

/// One instance serving [`Quiet`] on `/`, sharing its rooms through the Redis at
/// `redis_url` (its Redis layer configured by `config`).
pub struct Instance {
    /// Its base URL.
    pub url: String,
    /// Its namespace `/`.
    pub nsp: std::sync::Arc<engine::sockets::Nsp>,
    /// Its bus front end.
    pub front: std::sync::Arc<engine::cluster::ClusterFront<redis_adapter::Redis>>,
}

impl Instance {
    /// Starts it.
    pub async fn start(redis_url: &str, config: redis_adapter::RedisConfig) -> Self {
        use std::sync::Arc;
        let io = Arc::new(engine::sockets::SocketIo::new().namespace("/", Quiet));
        let connection = Arc::new(
            redis_adapter::Redis::connect(redis_url, config)
                .await
                .unwrap(),
        );
        let bus = redis_adapter::NamespaceBus::new(
            connection,
            &redis_adapter::RedisAdapterConfig::default().with_prefix("engine-quiet"),
            Arc::new(redis_adapter::Counters::default()),
            "/",
            redis_adapter::Id::random(),
        );
        let nsp = io.of("/").unwrap().clone();
        let front = engine::cluster::ClusterFront::attach(&nsp, bus)
            .await
            .unwrap();
        let url = serve(Engine::new(engine::server::Config::default(), io)).await;
        Self { url, nsp, front }
    }

    /// Waits until each of `instances` counts them all.
    pub async fn see_each_other(instances: &[&Self]) {
        let count = u16::try_from(instances.len()).unwrap();
        let seen = test_support::eventually(Duration::from_secs(10), || {
            instances
                .iter()
                .all(|instance| instance.front.bus().server_count() == count)
        })
        .await;
        assert!(seen, "the instances did not see each other");
    }
}
