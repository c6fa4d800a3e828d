//! Socket.IO servers using the adapter, in process, on free loopback ports.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use redis_adapter::{Redis, RedisAdapter, RedisAdapterConfig, RedisAdapterState, RedisConfig};
use serde_json::{Value, json};
use socketio_client::{ConnectOptions, Event, SocketClient};
use socketioxide::{
    SocketIo,
    adapter::Emitter,
    extract::{Data, SocketRef, State},
    handler::ConnectHandler,
};
use tokio::{net::TcpListener, task::JoinHandle};

/// The adapter as the server sees it.
pub type Adapter = RedisAdapter<Emitter>;
/// A server handle using the adapter.
pub type Io = SocketIo<Adapter>;

#[allow(unused_imports)]
pub use test_support::{TIMEOUT, assert_quiet};

/// Short heartbeats so membership tests run in about a second.
pub fn fast_config(prefix: &str) -> RedisAdapterConfig {
    RedisAdapterConfig::default()
        .with_prefix(prefix)
        .with_heartbeat(Duration::from_millis(100), Duration::from_millis(600))
        .with_request_timeout(Duration::from_millis(1000))
}

/// One server instance: its URL, its handle and its adapter state.
pub struct Instance {
    pub url: String,
    pub io: Io,
    pub state: RedisAdapterState,
    server: JoinHandle<()>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Starts an instance. Sockets join the rooms listed in their handshake's
/// `auth: {"rooms": [..]}` through the adapter's join path before their CONNECT is
/// acknowledged.
pub async fn start(redis_url: &str, config: RedisAdapterConfig) -> Instance {
    start_with(redis_url, config, RedisConfig::default()).await
}

/// socketioxide's engine.io ping interval unless a test sets another.
pub const PING_INTERVAL: Duration = Duration::from_secs(25);

/// Starts an instance whose Redis layer has the settings `redis`.
pub async fn start_with(
    redis_url: &str,
    config: RedisAdapterConfig,
    redis: RedisConfig,
) -> Instance {
    start_pinging(redis_url, config, redis, PING_INTERVAL).await
}

/// Starts an instance whose Redis layer has the settings `redis` and whose engine pings each
/// client every `ping_interval`.
pub async fn start_pinging(
    redis_url: &str,
    config: RedisAdapterConfig,
    redis: RedisConfig,
    ping_interval: Duration,
) -> Instance {
    let redis = Redis::connect(redis_url, redis).await.unwrap();
    let state = RedisAdapterState::new(redis, config);
    let (layer, io) = SocketIo::builder()
        .ping_interval(ping_interval)
        .with_state(state.clone())
        .with_adapter::<Adapter>(state.clone())
        .build_layer();
    io.ns("/", on_connect.with(join_rooms_from_auth))
        .await
        .unwrap();
    let app = axum::Router::new().layer(layer);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Instance {
        url,
        io,
        state,
        server,
    }
}

/// Starts `n` instances sharing one Redis and waits until each counts all of them.
pub async fn start_cluster(redis_url: &str, prefix: &str, n: usize) -> Vec<Instance> {
    start_cluster_with(redis_url, n, || fast_config(prefix)).await
}

/// Starts `n` instances of configuration `config()` sharing one Redis and waits until each
/// counts all of them.
pub async fn start_cluster_with(
    redis_url: &str,
    n: usize,
    config: impl Fn() -> RedisAdapterConfig,
) -> Vec<Instance> {
    start_cluster_by(n, || start(redis_url, config())).await
}

/// Starts `n` instances with `start` (sharing one Redis) and waits until each counts all of
/// them.
pub async fn start_cluster_by<F: Future<Output = Instance>>(
    n: usize,
    start: impl Fn() -> F,
) -> Vec<Instance> {
    let mut instances = Vec::new();
    for _ in 0..n {
        instances.push(start().await);
    }
    let all_see_all = test_support::eventually(TIMEOUT, || {
        instances
            .iter()
            .all(|i| i.state.server_count("/") == Some(n as u16))
    })
    .await;
    assert!(all_see_all, "instances did not all see each other");
    instances
}

async fn on_connect(_socket: SocketRef<Adapter>) {}

async fn join_rooms_from_auth(
    socket: SocketRef<Adapter>,
    Data(auth): Data<Value>,
    State(state): State<RedisAdapterState>,
) -> Result<(), redis_adapter::Error> {
    let rooms: Vec<String> = auth
        .get("rooms")
        .and_then(|r| serde_json::from_value(r.clone()).ok())
        .unwrap_or_default();
    state.join(socket.ns(), socket.id, rooms).await
}

/// A client of `instance` that is a member of `rooms`.
pub async fn client(instance: &Instance, rooms: &[&str]) -> SocketClient {
    SocketClient::connect_with(ConnectOptions::new(&instance.url).auth(json!({ "rooms": rooms })))
        .await
        .unwrap()
}

/// The next event the client receives, which must arrive within [`TIMEOUT`].
pub async fn recv(client: &mut SocketClient) -> Event {
    client.next_event(TIMEOUT).await.expect("expected an event")
}
