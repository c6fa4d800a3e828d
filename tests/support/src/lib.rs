//! The harness shared by the workspace's integration tests.
//!
//! Every test that needs Redis starts its own `redis-server` on a free loopback port with
//! [`RedisServer::start`]; nothing talks to a Redis the machine happens to run. A missing
//! prerequisite fails the test with the name of the package to install. Nothing here knows the
//! gateway: its in-process runner is `gateway::testing`.

use std::{
    net::{Ipv4Addr, TcpListener},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use socketio_client::{ClientError, SocketClient};

mod cluster;
mod killable;
mod npm;
mod secure;
pub use cluster::RedisCluster;
pub use killable::Killable;
pub use npm::npm_ci;
pub use secure::{SECURE_PASSWORD, SECURE_USER, SecureRedis};

/// How long a test waits for something that should happen.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// How long a test waits before concluding that something did not happen.
pub const QUIET: Duration = Duration::from_millis(300);

/// Asserts that `client` receives no event for [`QUIET`] (and stays connected).
pub async fn assert_quiet(client: &mut SocketClient) {
    match client.next_event(QUIET).await {
        Err(ClientError::Timeout) => {}
        other => panic!("expected no event, got {other:?}"),
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|err| panic!("no free loopback port: {err}"))
}

/// A `redis-server` command listening on 127.0.0.1:`port`, without persistence, working in
/// `dir`; callers add their own options.
fn redis_server(port: u16, dir: &std::path::Path) -> Command {
    let mut command = Command::new("redis-server");
    command
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    command
}

/// Starts `command`, failing with the package to install when `redis-server` is missing.
fn spawn_redis(command: &mut Command) -> Child {
    command.spawn().unwrap_or_else(|err| {
        panic!(
            "cannot start redis-server ({err}): install the Debian package `redis-server` \
             (apt-get install redis-server)"
        )
    })
}

/// A `redis-server` child process owned by one test; killed when dropped.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// Whether it keeps an append-only file synced on every write (`appendfsync always`).
    durable: bool,
}

impl RedisServer {
    /// Starts a throw-away Redis on a free port and waits until it answers PING.
    ///
    /// # Panics
    /// When `redis-server` is not installed (Debian package `redis-server`) or does not
    /// come up within 10 s.
    pub async fn start() -> Self {
        Self::start_with(false).await
    }

    /// Like [`RedisServer::start`], with an append-only file fsynced on every write
    /// (`--appendonly yes --appendfsync always`): what it acknowledged survives a SIGKILL
    /// and [`RedisServer::restart`].
    pub async fn start_durable() -> Self {
        Self::start_with(true).await
    }

    async fn start_with(durable: bool) -> Self {
        // A port free a moment ago may be taken by another test's server before ours binds
        // it; the server answering is then not ours, and we try another port.
        for _ in 0..5 {
            let port = free_port();
            // Unique even when two servers of this process are given the same port.
            static STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let nth = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("test-redis-{}-{port}-{nth}", std::process::id()));
            std::fs::create_dir_all(&dir)
                .unwrap_or_else(|err| panic!("creating {}: {err}", dir.display()));
            let mut server = Self {
                port,
                dir,
                child: None,
                durable,
            };
            server.spawn();
            if server.wait_ready().await {
                return server;
            }
        }
        panic!("five free ports in a row were taken by another redis-server before ours bound");
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _already_dead = child.kill();
            let _reaped = child.wait();
        }
    }

    /// Starts the server again on the same port and waits until it answers.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn();
        assert!(
            self.wait_ready().await,
            "port {} was taken by another server while ours was down",
            self.port
        );
    }

    /// A plain client connection, for tests that poke Redis directly.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap_or_else(|err| panic!("redis url: {err}"))
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|err| panic!("connecting to test redis: {err}"))
    }

    /// Makes Redis hold back the commands of `clients` (`ALL`, or `WRITE` for writes only)
    /// for `duration` (`CLIENT PAUSE`); returns once the pause is in force.
    pub async fn pause(&self, duration: Duration, clients: &str) {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        let () = redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(millis)
            .arg(clients)
            .query_async(&mut self.connection().await)
            .await
            .unwrap_or_else(|err| panic!("CLIENT PAUSE {millis} {clients}: {err}"));
    }

    /// Ends a [`RedisServer::pause`] now.
    pub async fn unpause(&self) {
        let () = redis::cmd("CLIENT")
            .arg("UNPAUSE")
            .query_async(&mut self.connection().await)
            .await
            .unwrap_or_else(|err| panic!("CLIENT UNPAUSE: {err}"));
    }

    fn spawn(&mut self) {
        let mut command = redis_server(self.port, &self.dir);
        if self.durable {
            // Later options override the defaults of `redis_server`.
            command.args(["--appendonly", "yes", "--appendfsync", "always"]);
        }
        self.child = Some(spawn_redis(&mut command));
    }

    /// Waits until the port answers PING; whether the server answering is our child
    /// (`INFO server`'s `process_id`), not another test's that took the port first.
    async fn wait_ready(&self) -> bool {
        let client = redis::Client::open(self.url()).unwrap_or_else(|err| panic!("{err}"));
        wait_for_ping(&client, &format!("redis-server on port {}", self.port)).await;
        let Some(ours) = self.child.as_ref().map(Child::id) else {
            return false;
        };
        let info: String = match client.get_multiplexed_async_connection().await {
            Ok(mut conn) => redis::cmd("INFO")
                .arg("server")
                .query_async(&mut conn)
                .await
                .unwrap_or_default(),
            Err(_) => String::new(),
        };
        process_id(&info) == Some(ours)
    }
}

/// The `process_id` of an `INFO server` answer: tells whether the server answering on a port
/// is the one a test started.
fn process_id(info: &str) -> Option<u32> {
    info.lines()
        .find_map(|line| line.strip_prefix("process_id:"))
        .and_then(|pid| pid.trim().parse().ok())
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _best_effort = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits until `client` answers PING, for at most 10 s.
///
/// # Panics
/// When it does not, naming `what`.
async fn wait_for_ping(client: &redis::Client, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut conn) = client.get_multiplexed_async_connection().await
            && redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .is_ok()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not answer within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `check` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub async fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Like [`eventually`], for checks that must await (an HTTP request, a Redis command).
pub async fn eventually_async<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A TCP proxy in front of a Redis, able to make its Pub/Sub connections go silent without
/// closing them: the network fault a Pub/Sub probe exists for.
pub struct SilencingProxy {
    port: u16,
    connections: std::sync::Arc<std::sync::Mutex<Vec<std::sync::Arc<ProxiedConnection>>>>,
    task: tokio::task::JoinHandle<()>,
}

/// What the proxy knows of one client connection.
#[derive(Default)]
struct ProxiedConnection {
    /// The client sent SUBSCRIBE: this is a Pub/Sub connection.
    subscriber: std::sync::atomic::AtomicBool,
    /// Bytes are swallowed in both directions; the sockets stay open.
    silent: std::sync::atomic::AtomicBool,
}

impl SilencingProxy {
    /// Listens on a free loopback port and forwards every connection to `target_port`.
    pub async fn start(target_port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap_or_else(|err| panic!("proxy bind: {err}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|err| panic!("proxy addr: {err}"))
            .port();
        let connections = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let registry = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) =
                    tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, target_port)).await
                else {
                    continue;
                };
                let state = std::sync::Arc::new(ProxiedConnection::default());
                if let Ok(mut all) = registry.lock() {
                    all.push(state.clone());
                }
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pump(client_read, server_write, state.clone(), true));
                tokio::spawn(pump(server_read, client_write, state, false));
            }
        });
        Self {
            port,
            connections,
            task,
        }
    }

    /// `redis://127.0.0.1:PORT` of the proxy.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Silences every Pub/Sub connection open now; returns how many.
    pub fn silence_subscribers(&self) -> usize {
        use std::sync::atomic::Ordering::SeqCst;
        let all = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        all.iter()
            .filter(|c| c.subscriber.load(SeqCst))
            .inspect(|c| c.silent.store(true, SeqCst))
            .count()
    }
}

impl Drop for SilencingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    state: std::sync::Arc<ProxiedConnection>,
    from_client: bool,
) {
    use std::sync::atomic::Ordering::SeqCst;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        if from_client
            && chunk
                .windows(9)
                .any(|w| w.eq_ignore_ascii_case(b"SUBSCRIBE"))
        {
            state.subscriber.store(true, SeqCst);
        }
        if state.silent.load(SeqCst) {
            continue;
        }
        if to.write_all(chunk).await.is_err() {
            return;
        }
    }
}
