//! Harness of the load tester's integration tests: in-process gateways clustered over a real
//! Redis, one of which can be killed abruptly.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use std::path::PathBuf;
use std::sync::OnceLock;

use gateway::{Config, Rate};
use loadtest::config::Common;
use socketio_client::Credentials;
use tokio::sync::oneshot;

/// The account every simulated user logs in with on a clustered gateway.
pub const ACCOUNT: (&str, &str) = ("loadtest", "loadtest-password");

/// Limits high enough never to interfere with a load test.
const UNLIMITED: Rate = Rate::new(1_000_000, Duration::from_secs(60));

/// A gateway configuration on a free loopback port, clustered on `redis_url` (when given)
/// with heartbeats fast enough for tests.
/// Clustered gateways require a login: they get a directory holding [`ACCOUNT`], and rate
/// limits out of the way.
pub fn config(redis_url: Option<&str>) -> Config {
    Config {
        listen: "127.0.0.1:0".into(),
        redis_url: redis_url.map(str::to_owned),
        heartbeat_interval_ms: 100,
        heartbeat_timeout_ms: 600,
        request_timeout_ms: 1_000,
        shutdown_timeout_ms: 2_000,
        users_file: redis_url.map(|_| users_file()),
        rate_login: UNLIMITED,
        rate_handshake: UNLIMITED,
        rate_message: UNLIMITED,
        rate_dm: UNLIMITED,
        ..Config::default()
    }
}

/// A directory with [`ACCOUNT`], hashed at argon2id's cheapest parameters, written once per
/// test process.
fn users_file() -> PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let cheap = gateway::users::Params::new(8, 1, 1, None).expect("argon2 parameters");
        let (username, password) = ACCOUNT;
        let user = gateway::users::UserRecord {
            username: username.to_owned(),
            tenant: "bench".to_owned(),
            name: username.to_owned(),
            roles: Vec::new(),
            password_hash: gateway::users::hash_password(password, cheap).expect("hashing"),
        };
        let file = gateway::users::UsersFile { users: vec![user] };
        let path = std::env::temp_dir().join(format!("loadtest-users-{}.json", std::process::id()));
        std::fs::write(&path, serde_json::to_vec(&file).expect("users JSON")).expect("users file");
        path
    })
    .clone()
}

/// A gateway served on the test's runtime until dropped.
pub struct Gateway {
    pub url: String,
    _stop: oneshot::Sender<()>,
}

impl Gateway {
    pub async fn start(config: Config) -> Self {
        let gateway = gateway::bind(config).await.expect("gateway binds");
        let url = format!("http://{}", gateway.local_addr());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(gateway.serve(async {
            let _ = stopped.await;
        }));
        Self { url, _stop: stop }
    }
}

/// A gateway on a runtime of its own, in a thread of its own, so that it can die at once:
/// [`Killable::kill`] drops the runtime, which closes every socket without a goodbye, as a
/// crash would.
pub struct Killable {
    pub url: String,
    kill: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Killable {
    pub async fn start(config: Config) -> Self {
        let (url_tx, url_rx) = oneshot::channel();
        let (kill, killed) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let gateway = gateway::bind(config).await.expect("gateway binds");
                url_tx
                    .send(format!("http://{}", gateway.local_addr()))
                    .unwrap();
                tokio::spawn(gateway.serve(std::future::pending()));
                let _ = killed.await;
            });
            runtime.shutdown_background();
        });
        Self {
            url: url_rx.await.unwrap(),
            kill: Some(kill),
            thread: Some(thread),
        }
    }

    /// Kills the gateway and waits until its runtime is gone.
    pub fn kill(&mut self) {
        let _ = self.kill.take().map(|kill| kill.send(()));
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for Killable {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The common flags for `urls`, with a short timeout.
pub fn common(urls: &[&str]) -> Common {
    let mut common = Common::new(urls.iter().copied());
    common.timeout = Duration::from_secs(5);
    common
}

/// [`common`] for clustered gateways: every user logs in with [`ACCOUNT`].
pub fn logged_in(urls: &[&str]) -> Common {
    let (username, password) = ACCOUNT;
    let mut common = common(urls);
    common.login = Some(Credentials {
        username: username.to_owned(),
        password: password.to_owned(),
    });
    common
}

/// Runs `future`, failing the test if it takes longer than `limit`: no run may hang.
pub async fn bounded<T>(limit: Duration, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, future)
        .await
        .expect("the run ended in time")
}
