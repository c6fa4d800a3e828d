//! Harness of the load tester's integration tests: in-process gateways clustered over a real
//! Redis, one of which can be killed abruptly.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use gateway::Config;
use loadtest::config::Common;
use tokio::sync::oneshot;

/// A gateway configuration on a free loopback port, clustered on `redis_url` (when given)
/// with heartbeats fast enough for tests.
pub fn config(redis_url: Option<&str>) -> Config {
    Config {
        listen: "127.0.0.1:0".into(),
        redis_url: redis_url.map(str::to_owned),
        heartbeat_interval_ms: 100,
        heartbeat_timeout_ms: 600,
        request_timeout_ms: 1_000,
        shutdown_timeout_ms: 2_000,
        ..Config::default()
    }
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

/// Runs `future`, failing the test if it takes longer than `limit`: no run may hang.
pub async fn bounded<T>(limit: Duration, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, future)
        .await
        .expect("the run ended in time")
}
