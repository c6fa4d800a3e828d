//! Helpers for tests that run gateways in process: the fast-timing [`Config`] every test starts
//! from, a test user directory hashed at argon2id's cheapest cost, and [`TestGateway`], a
//! gateway served on the test's own runtime.
//!
//! Built on the crate's public API only ([`crate::bind`], [`crate::users`]), so that the load
//! tester's tests start gateways exactly as the gateway's own tests do. Failures panic with the
//! reason: these helpers exist for tests, where a panic is the failure report.
//!
//! ```no_run
//! # async fn demo() {
//! use gateway::testing::{TestGateway, clustered, password};
//!
//! let gateway = TestGateway::start(clustered("redis://127.0.0.1:6379")).await;
//! println!("{} serves alice (password {})", gateway.url(), password("alice"));
//! gateway.stop().await.ok();
//! # }
//! ```

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Mutex, OnceLock, PoisonError},
    time::Duration,
};

use tokio::{sync::oneshot, task::JoinHandle};

use crate::{Config, Error, Rate, RedisArgs, users};

/// The test directory: `(username, tenant, admin)`. Display names are the usernames, and
/// passwords [`password`]. `loadtest` is the account of the load tester's simulated users.
pub const TEST_USERS: [(&str, &str, bool); 7] = [
    ("alice", "acme", true),
    ("bob", "acme", false),
    ("carol", "acme", false),
    ("dave", "acme", false),
    ("grace", "globex", true),
    ("heidi", "globex", false),
    ("loadtest", "bench", false),
];

/// A rate high enough never to be reached by a test that is not about rate limits.
pub const UNLIMITED: Rate = Rate::new(1_000_000, Duration::from_secs(60));

/// A socket count high enough never to be reached by a test that is not about socket caps.
pub const MANY_SOCKETS: usize = 1_000_000;
/// Engine.io opens per address high enough never to be reached by a test that is not about
/// them (every test client connects from loopback).
pub const MANY_OPENS: u32 = 1_000_000;

/// Heartbeat interval of test gateways: instances see each other within a few hundred ms.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(100);
/// Heartbeat timeout of test gateways: how soon a killed instance stops being counted.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(600);
/// Request timeout of test gateways: the longest a cluster-wide request waits for a dead one.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(1_000);
/// Graceful shutdown deadline of test gateways.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_millis(3_000);

/// The password of test user `user`.
pub fn password(user: &str) -> String {
    format!("{user}-password")
}

/// A standalone configuration: any free loopback port (for the admin listener too),
/// [`SHUTDOWN_TIMEOUT`], nothing read from the environment, and the per-socket event budget,
/// the sockets per user and per session and the opens per address out of the way
/// ([`UNLIMITED`], [`MANY_SOCKETS`], [`MANY_OPENS`]: the load tester's users share one
/// session and one address).
pub fn standalone() -> Config {
    Config {
        listen: "127.0.0.1:0".into(),
        admin_listen: "127.0.0.1:0".into(),
        shutdown_timeout: SHUTDOWN_TIMEOUT,
        socket_event_rate: UNLIMITED,
        max_sockets_per_user: MANY_SOCKETS,
        max_sockets_per_session: MANY_SOCKETS,
        max_opens_per_address: MANY_OPENS,
        ..Config::default()
    }
}

/// [`standalone`] joining the cluster on `redis_url`, with the fast timings above, the test
/// directory ([`users_file`]) and rate limits out of the way ([`UNLIMITED`]).
pub fn clustered(redis_url: &str) -> Config {
    Config {
        redis: RedisArgs {
            redis_url: Some(redis_url.to_owned()),
            ..RedisArgs::default()
        },
        heartbeat_interval: HEARTBEAT_INTERVAL,
        heartbeat_timeout: HEARTBEAT_TIMEOUT,
        request_timeout: REQUEST_TIMEOUT,
        users_file: Some(users_file()),
        rate_login: UNLIMITED,
        rate_handshake: UNLIMITED,
        rate_message: UNLIMITED,
        rate_dm: UNLIMITED,
        api_publish_rate: UNLIMITED,
        rate_login_failures: UNLIMITED,
        rate_login_user_failures: UNLIMITED,
        ..standalone()
    }
}

/// Command-line flags equivalent to [`clustered`], for gateways run as child processes.
pub fn clustered_args(redis_url: &str) -> Vec<String> {
    let mut args = vec!["--redis-url".to_owned(), redis_url.to_owned()];
    for (flag, value) in [
        ("--heartbeat-interval", HEARTBEAT_INTERVAL),
        ("--heartbeat-timeout", HEARTBEAT_TIMEOUT),
        ("--request-timeout", REQUEST_TIMEOUT),
    ] {
        args.extend([
            flag.to_owned(),
            humantime::format_duration(value).to_string(),
        ]);
    }
    args.extend([
        "--users-file".to_owned(),
        users_file().display().to_string(),
    ]);
    for flag in [
        "--rate-login",
        "--rate-handshake",
        "--rate-message",
        "--rate-dm",
        "--api-publish-rate",
        "--rate-login-failures",
        "--rate-login-user-failures",
        "--socket-event-rate",
    ] {
        args.extend([flag.to_owned(), UNLIMITED.to_string()]);
    }
    args.extend([
        "--max-sockets-per-user".to_owned(),
        MANY_SOCKETS.to_string(),
        "--max-sockets-per-session".to_owned(),
        MANY_SOCKETS.to_string(),
        "--max-opens-per-address".to_owned(),
        MANY_OPENS.to_string(),
    ]);
    args
}

/// The test directory ([`TEST_USERS`]), written once per process (argon2id at its cheapest:
/// a debug build verifies it in microseconds; the PHC strings carry the parameters).
///
/// # Panics
/// When the file cannot be written to the temporary directory.
pub fn users_file() -> PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| write_users_file().unwrap_or_else(|err| panic!("test users file: {err}")))
        .clone()
}

/// Writes [`TEST_USERS`] to a file of this process's own (tests of other checkouts may run at
/// the same time with other users).
fn write_users_file() -> Result<PathBuf, Error> {
    let cheap =
        users::Params::new(8, 1, 1, None).map_err(|err| Error::InvalidUser(err.to_string()))?;
    let users = TEST_USERS
        .iter()
        .map(|(user, tenant, admin)| {
            Ok(users::UserRecord {
                username: (*user).to_owned(),
                tenant: (*tenant).to_owned(),
                name: (*user).to_owned(),
                roles: if *admin {
                    vec![users::ADMIN_ROLE.to_owned()]
                } else {
                    Vec::new()
                },
                password_hash: users::hash_password(&password(user), cheap.clone())?,
            })
        })
        .collect::<Result<_, Error>>()?;
    let path = std::env::temp_dir().join(format!("gateway-test-users-{}.json", std::process::id()));
    let failed = |reason: String| Error::UsersFile {
        path: path.display().to_string(),
        reason,
    };
    let json = serde_json::to_vec_pretty(&users::UsersFile { users })
        .map_err(|err| failed(err.to_string()))?;
    std::fs::write(&path, json).map_err(|err| failed(err.to_string()))?;
    Ok(path)
}

/// The admin listeners of the gateways this process started, by base URL.
fn admin_urls() -> std::sync::MutexGuard<'static, HashMap<String, String>> {
    static ADMIN: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    ADMIN
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Records that the gateway at `url` serves its operational routes at `admin_url` (done by
/// [`TestGateway::start`]; a test running the binary calls it for its child).
pub fn register_admin(url: &str, admin_url: &str) {
    admin_urls().insert(url.to_owned(), admin_url.to_owned());
}

/// The admin listener's base URL of the gateway whose base URL is `url`, so that tests reach
/// `/metrics`, `/api/stats` and `/api/cluster` knowing only the gateway's URL.
///
/// # Panics
/// When no gateway of this process was registered at `url`.
pub fn admin_url(url: &str) -> String {
    admin_urls()
        .get(url)
        .cloned()
        .unwrap_or_else(|| panic!("no admin listener registered for {url}"))
}

/// One gateway served on the test's runtime. Dropping it starts its graceful shutdown.
pub struct TestGateway {
    url: String,
    instance: String,
    /// Ends `serve` gracefully when sent or dropped.
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), Error>>,
}

impl TestGateway {
    /// Binds and serves `config` (its `listen` should be `127.0.0.1:0`).
    ///
    /// # Panics
    /// When the gateway does not bind (the reason is in the message).
    pub async fn start(config: Config) -> Self {
        let gateway = crate::bind(config)
            .await
            .unwrap_or_else(|err| panic!("the test gateway does not bind: {err}"));
        let url = format!("http://{}", gateway.local_addr());
        register_admin(&url, &format!("http://{}", gateway.admin_addr()));
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

    /// The base URL of the admin listener (`/metrics`, `/api/stats`, `/api/cluster`).
    pub fn admin_url(&self) -> String {
        admin_url(&self.url)
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
        (&mut self.task).await?
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The job queue of the cluster on a Redis, for tests: enqueues jobs as a gateway does
/// (through the same spool), and the failure-injection jobs no gateway ever enqueues, which
/// only a worker started with the hidden `--test-faults` flag runs.
pub struct TestJobs {
    jobs: crate::jobs::Jobs,
    /// The spool's drain.
    _background: crate::background::Background,
}

impl TestJobs {
    /// The queue under the default key prefix of the Redis at `redis_url`.
    ///
    /// # Panics
    /// When Redis cannot be reached.
    pub async fn connect(redis_url: &str) -> Self {
        let args = RedisArgs {
            redis_url: Some(redis_url.to_owned()),
            ..RedisArgs::default()
        };
        let config =
            crate::redis_config(&args).unwrap_or_else(|err| panic!("test Redis config: {err}"));
        let redis = redis_adapter::Redis::connect(redis_url, config)
            .await
            .unwrap_or_else(|err| panic!("test jobs: cannot reach Redis: {err}"));
        let mut background = crate::background::Background::default();
        let store = crate::store::Store::new(redis, crate::keys::Keys::new(&args.key_prefix));
        let jobs = crate::jobs::Jobs::start(
            store,
            std::sync::Arc::new(crate::counters::Counters::default()),
            &mut background,
        );
        Self {
            jobs,
            _background: background,
        }
    }

    /// A job failing its first `fail` attempts (`u32::MAX`: all), each taking `hold`.
    pub async fn fault(&self, fail: u32, hold: Duration) {
        self.jobs.enqueue(fault(fail, hold)).await;
    }

    /// [`TestJobs::fault`], due once `delay` has passed.
    pub async fn fault_in(&self, fail: u32, hold: Duration, delay: Duration) {
        self.jobs.enqueue_in(fault(fail, hold), delay).await;
    }

    /// A `login` audit event of `user` of `tenant` with the id `event_id` (enqueue it twice
    /// to deliver one event twice).
    pub async fn audit_login(&self, event_id: &str, tenant: &str, user: &str) {
        let mut event =
            crate::jobs::AuditEvent::new(crate::jobs::AuditKind::Login, tenant, Some(user));
        event.event_id = event_id.to_owned();
        self.jobs.audit(event).await;
    }

    /// A DM notification, as the gateway enqueues it for an offline recipient.
    pub async fn dm_notification(
        &self,
        tenant: &str,
        to_user: &str,
        from_name: &str,
        text: &str,
        id: &str,
    ) {
        let notification = crate::jobs::DmNotification {
            tenant: tenant.to_owned(),
            to_user: to_user.to_owned(),
            from_name: from_name.to_owned(),
            text: text.to_owned(),
            id: id.to_owned(),
            ts: crate::ids::now_ms(),
        };
        self.jobs.notify_offline_dm(notification).await;
    }

    /// Jobs waiting in the spool for Redis.
    pub fn spooled(&self) -> usize {
        self.jobs.spooled()
    }
}

/// The failure-injection job.
fn fault(fail: u32, hold: Duration) -> crate::jobs::Work {
    crate::jobs::Work::Fault(crate::jobs::Fault {
        fail,
        hold_ms: u64::try_from(hold.as_millis()).unwrap_or(u64::MAX),
    })
}
