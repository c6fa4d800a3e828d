//! Test harness: in-process gateways on 127.0.0.1:0 and Socket.IO clients talking to them.
//!
//! Each integration test file includes this module (`mod support;`) and uses a different
//! subset of it.
#![allow(dead_code)]

use std::time::Duration;

use gateway::{Config, Error};
use loadtest::{ClientError, ConnectOptions, Event, SocketClient};
use serde_json::{Value, json};
use tokio::{sync::oneshot, task::JoinHandle};

/// How long a test waits for something that should happen.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// How long a test waits before concluding that something did not happen.
pub const QUIET: Duration = Duration::from_millis(300);

/// A standalone configuration for tests: any free loopback port, a short shutdown deadline,
/// nothing read from the environment.
pub fn standalone() -> Config {
    Config {
        listen: "127.0.0.1:0".into(),
        shutdown_timeout_ms: 3_000,
        ..Config::default()
    }
}

/// One gateway running in this process. Dropping it starts its graceful shutdown.
pub struct TestGateway {
    url: String,
    instance: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), Error>>,
}

impl TestGateway {
    /// Binds and serves `config` (its `listen` should be `127.0.0.1:0`).
    pub async fn start(config: Config) -> Self {
        let gateway = gateway::bind(config).await.expect("gateway binds");
        let url = format!("http://{}", gateway.local_addr());
        let instance = gateway.instance_id().to_owned();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(gateway.serve(async {
            let _ = stopped.await;
        }));
        Self {
            url,
            instance,
            stop: Some(stop),
            task,
        }
    }

    /// Starts `n` gateways, the i-th with `config(i)`.
    pub async fn start_many(n: usize, config: impl Fn(usize) -> Config) -> Vec<Self> {
        let mut gateways = Vec::with_capacity(n);
        for i in 0..n {
            gateways.push(Self::start(config(i)).await);
        }
        gateways
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The instance id clients see in `welcome`.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Asks for a graceful shutdown and waits for `serve` to return.
    pub async fn stop(mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.expect("gateway task did not panic")
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Connects to `url` with an optional display name and consumes the `welcome` event,
/// checking it names this socket.
pub async fn connect_as(url: &str, name: Option<&str>) -> SocketClient {
    let mut options = ConnectOptions::new(url).timeout(TIMEOUT);
    if let Some(name) = name {
        options = options.auth(json!({ "name": name }));
    }
    let mut client = SocketClient::connect_with(options)
        .await
        .expect("client connects");
    let welcome = next_named(&mut client, "welcome").await;
    assert_eq!(
        welcome.data["sid"],
        client.sid(),
        "welcome names the socket"
    );
    client
}

/// Connects anonymously; see [`connect_as`].
pub async fn connect(url: &str) -> SocketClient {
    connect_as(url, None).await
}

/// Emits `event` with `data` and returns the ack's first argument.
pub async fn ack(client: &SocketClient, event: &str, data: Value) -> Value {
    client
        .emit_with_ack(event, data, TIMEOUT)
        .await
        .unwrap_or_else(|err| panic!("no ack for {event}: {err}"))
}

/// Joins `room`, asserting success.
pub async fn join(client: &SocketClient, room: &str) {
    assert_eq!(
        ack(client, "join", json!({ "room": room })).await,
        json!({"ok": true}),
        "join {room}"
    );
}

/// The next event, which must be named `name`.
pub async fn next_named(client: &mut SocketClient, name: &str) -> Event {
    let event = client
        .next_event(TIMEOUT)
        .await
        .unwrap_or_else(|err| panic!("waiting for {name}: {err}"));
    assert_eq!(event.name, name, "unexpected event {event:?}");
    event
}

/// Asserts that no event arrives for a little while.
pub async fn assert_quiet(client: &mut SocketClient) {
    match client.next_event(QUIET).await {
        Err(ClientError::Timeout) => {}
        other => panic!("expected no event, got {other:?}"),
    }
}

/// The `error` field of an error ack, which must be one.
pub fn error_of(reply: &Value) -> &str {
    reply["error"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error ack, got {reply}"))
}

/// A configuration joining the cluster on `redis_url`, with heartbeats fast enough for tests.
pub fn clustered(redis_url: &str) -> Config {
    Config {
        redis_url: Some(redis_url.to_owned()),
        heartbeat_interval_ms: 100,
        heartbeat_timeout_ms: 600,
        request_timeout_ms: 1_000,
        ..standalone()
    }
}

/// Command-line flags equivalent to [`clustered`], for gateways run as child processes.
pub fn clustered_args(redis_url: &str) -> Vec<String> {
    [
        "--redis-url",
        redis_url,
        "--heartbeat-interval-ms",
        "100",
        "--heartbeat-timeout-ms",
        "600",
        "--request-timeout-ms",
        "1000",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// `GET /api/cluster` of the gateway at `url`.
pub async fn cluster_info(url: &str) -> Value {
    reqwest::get(format!("{url}/api/cluster"))
        .await
        .expect("GET /api/cluster")
        .json()
        .await
        .expect("a JSON body")
}

/// `GET /api/cluster/sockets` of the gateway at `url`: the cluster-wide socket count.
pub async fn cluster_sockets(url: &str) -> Value {
    reqwest::get(format!("{url}/api/cluster/sockets"))
        .await
        .expect("GET /api/cluster/sockets")
        .json::<Value>()
        .await
        .expect("a JSON body")["sockets"]
        .clone()
}

/// The `gateway` binary run as a child process, as an operator would run it; killed with
/// SIGKILL when dropped.
pub struct ChildGateway {
    url: String,
    child: std::process::Child,
}

impl ChildGateway {
    /// Starts the binary on a free loopback port with `args` and waits until `/healthz`
    /// answers.
    pub async fn start(args: &[String]) -> Self {
        let port = test_support::free_port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("the gateway binary starts");
        let gateway = Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
        };
        let healthz = format!("{}/healthz", gateway.url);
        let ready = test_support::eventually_async(TIMEOUT, || async {
            reqwest::get(&healthz)
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
        assert!(ready, "gateway child on port {port} did not become healthy");
        gateway
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _already_dead = self.child.kill();
        let _reaped = self.child.wait();
    }
}

impl Drop for ChildGateway {
    fn drop(&mut self) {
        self.kill();
    }
}
