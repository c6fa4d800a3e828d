//! Test harness: in-process gateways on 127.0.0.1:0 and Socket.IO clients talking to them.
//!
//! Each integration test binary includes this module (`mod support;`) and uses a different
//! subset of it. The in-process runner, its fast-timing configurations and the test user
//! directory are `gateway::testing`'s (re-exported here); what is here needs a client or HTTP.
//! Clustered gateways (Redis) need a session for every socket: [`connect_user`] logs in before
//! connecting.
#![allow(dead_code)]

mod peer;
mod raw;

use std::time::Duration;

use gateway::Config;
use serde_json::{Value, json};
use socketio_client::{ClientError, ConnectOptions, Event, SocketClient};

#[allow(unused_imports)]
pub use gateway::testing::{
    TestGateway, UNLIMITED, clustered, clustered_args, password, standalone,
};
#[allow(unused_imports)]
pub use peer::ScriptPeer;
#[allow(unused_imports)]
pub use raw::RawSocket;
#[allow(unused_imports)]
pub use test_support::{QUIET, TIMEOUT, assert_quiet, npm_ci};

/// Connects to `url` with an optional display name and consumes the `welcome` event,
/// checking it names this socket.
pub async fn connect_as(url: &str, name: Option<&str>) -> SocketClient {
    let mut options = ConnectOptions::new(url).timeout(TIMEOUT);
    if let Some(name) = name {
        options = options.auth(json!({ "name": name }));
    }
    let client = SocketClient::connect_with(options)
        .await
        .expect("client connects");
    welcomed(client).await
}

/// Consumes the `welcome` event, checking it names this socket.
async fn welcomed(mut client: SocketClient) -> SocketClient {
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

/// The `error` field of an error ack, which must be one.
pub fn error_of(reply: &Value) -> &str {
    reply["error"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error ack, got {reply}"))
}

/// `POST /api/login` with `username` and `password`.
pub async fn login_response(url: &str, username: &str, password: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{url}/api/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .expect("POST /api/login")
}

/// Logs test user `user` in on the gateway at `url` and returns the session token.
pub async fn login(url: &str, user: &str) -> String {
    let response = login_response(url, user, &password(user)).await;
    assert_eq!(response.status(), 200, "login of {user}");
    let body: Value = response.json().await.expect("a JSON body");
    body["token"].as_str().expect("a token").to_owned()
}

/// Connects with `auth: {token}` and consumes the `welcome` event.
pub async fn connect_token(url: &str, token: &str) -> SocketClient {
    let options = ConnectOptions::new(url)
        .timeout(TIMEOUT)
        .auth(json!({ "token": token }));
    welcomed(
        SocketClient::connect_with(options)
            .await
            .expect("client connects"),
    )
    .await
}

/// Logs test user `user` in at `url`, then connects with the token.
pub async fn connect_user(url: &str, user: &str) -> SocketClient {
    let token = login(url, user).await;
    connect_token(url, &token).await
}

/// Tries to connect with `auth`, without consuming anything.
pub async fn try_connect(url: &str, auth: Option<Value>) -> Result<SocketClient, ClientError> {
    let mut options = ConnectOptions::new(url).timeout(TIMEOUT);
    if let Some(auth) = auth {
        options = options.auth(auth);
    }
    SocketClient::connect_with(options).await
}

/// The `connect_error` message of a refused connection.
pub async fn refusal(url: &str, auth: Option<Value>) -> String {
    match try_connect(url, auth).await {
        Err(ClientError::ConnectRefused(message)) => message,
        Err(other) => panic!("expected a connect_error, got {other}"),
        Ok(_) => panic!("expected a connect_error, got a connection"),
    }
}

/// Waits until the server ends `client`'s connection.
pub async fn assert_disconnected(client: &mut SocketClient, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match client.next_event(left).await {
            Err(ClientError::Disconnected(_)) => return,
            Err(ClientError::Timeout) => panic!("still connected after {within:?}"),
            Err(other) => panic!("unexpected client error {other}"),
            Ok(_) => {}
        }
    }
}

/// `GET {path}` of the gateway at `url`, as JSON.
pub async fn get_json(url: &str, path: &str) -> Value {
    reqwest::get(format!("{url}{path}"))
        .await
        .unwrap_or_else(|err| panic!("GET {path}: {err}"))
        .json()
        .await
        .unwrap_or_else(|err| panic!("GET {path}: not JSON: {err}"))
}

/// `GET {path}` of the admin listener of the gateway at `url` (registered by
/// `TestGateway::start` and `ChildGateway::start`), as JSON.
pub async fn admin_json(url: &str, path: &str) -> Value {
    get_json(&gateway::testing::admin_url(url), path).await
}

/// `GET /api/stats` of the gateway at `url` (from its admin listener).
pub async fn stats(url: &str) -> Value {
    admin_json(url, "/api/stats").await
}

/// Starts `n` clustered gateways on `redis_url` with `config` applied to each, and waits
/// until each sees the others.
pub async fn cluster(n: usize, redis_url: &str, config: impl Fn(&mut Config)) -> Vec<TestGateway> {
    let gateways = TestGateway::start_many(n, |_| {
        let mut c = clustered(redis_url);
        config(&mut c);
        c
    })
    .await;
    for gateway in &gateways {
        let all_seen = test_support::eventually_async(TIMEOUT, || async {
            cluster_info(gateway.url()).await["servers"] == n
        })
        .await;
        assert!(all_seen, "{} does not see {n} servers", gateway.url());
    }
    gateways
}

/// `GET /api/cluster` of the gateway at `url` (from its admin listener).
pub async fn cluster_info(url: &str) -> Value {
    admin_json(url, "/api/cluster").await
}

/// `GET /api/cluster/sockets` of the gateway at `url` (from its admin listener): the
/// cluster-wide socket count.
pub async fn cluster_sockets(url: &str) -> Value {
    admin_json(url, "/api/cluster/sockets").await["sockets"].clone()
}

/// The `gateway` binary run as a child process, as an operator would run it; killed with
/// SIGKILL when dropped.
pub struct ChildGateway {
    url: String,
    child: std::process::Child,
}

impl ChildGateway {
    /// Starts the binary on port 0 (and its admin listener on another) with `args`, reads the
    /// ports it bound from its stdout, and waits until `/healthz` answers. Binding port 0 in
    /// the child itself means no other test can take the port between picking and binding.
    pub async fn start(args: &[String]) -> Self {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"));
        command
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(args);
        let (child, line) = spawn_announcing(command).await;
        let (url, admin) = line
            .strip_prefix("listening on ")
            .and_then(|rest| rest.split_once(" admin "))
            .unwrap_or_else(|| panic!("not the gateway's address line: {line:?}"));
        let gateway = Self {
            url: format!("http://{url}"),
            child,
        };
        gateway::testing::register_admin(&gateway.url, &format!("http://{admin}"));
        assert!(
            becomes_healthy(&gateway.url).await,
            "gateway child at {url} did not become healthy"
        );
        gateway
    }

    /// Starts `gateway worker` with its admin listener on port 0 and `args`, reads the port
    /// from its stdout, and waits until its `/healthz` answers; [`ChildGateway::url`] is then
    /// the admin listener's (`/metrics`, `/healthz`).
    pub async fn worker(args: &[String]) -> Self {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"));
        command
            .arg("worker")
            .args(["--admin-listen", "127.0.0.1:0"])
            .args(args);
        let (child, line) = spawn_announcing(command).await;
        let admin = line
            .strip_prefix("admin listening on ")
            .unwrap_or_else(|| panic!("not the worker's address line: {line:?}"));
        let worker = Self {
            url: format!("http://{admin}"),
            child,
        };
        assert!(
            becomes_healthy(&worker.url).await,
            "worker child at {admin} did not become healthy"
        );
        worker
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .try_wait()
            .expect("polling the gateway child")
            .is_none()
    }

    /// Asks the process to stop gracefully (SIGTERM, through `kill -TERM <pid>`: no unsafe
    /// code in tests either).
    pub fn terminate(&self) {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(sent.success(), "kill -TERM failed: {sent}");
    }

    /// Waits up to `within` for the process to exit; its exit status, or `None` if it still
    /// runs.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("polling the gateway child") {
                return Some(status);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
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

/// Spawns `command` (logging at `warn`) and returns it with the first line it prints on
/// stdout, its bound addresses; the rest of its stdout is drained so that a later print never
/// meets a closed pipe.
async fn spawn_announcing(mut command: std::process::Command) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = command
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the gateway binary starts");
    let stdout = child.stdout.take().expect("the child's stdout is piped");
    let (first, line) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut reader = std::io::BufReader::new(stdout);
        let mut line = String::new();
        let _read = reader.read_line(&mut line);
        let _gone = first.send(line.trim_end().to_owned());
        let _drained = std::io::copy(&mut reader, &mut std::io::sink());
    });
    let line = tokio::time::timeout(Duration::from_secs(30), line)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    if line.is_empty() {
        let status = child.try_wait().ok().flatten();
        panic!("the gateway child printed no address line within 30 s (exit status: {status:?})");
    }
    (child, line)
}

/// `args` with the value of `flag` replaced by `value` (added if absent).
pub fn with_flag(mut args: Vec<String>, flag: &str, value: &str) -> Vec<String> {
    match args.iter().position(|arg| arg == flag) {
        Some(at) => args[at + 1] = value.to_owned(),
        None => args.extend([flag.to_owned(), value.to_owned()]),
    }
    args
}

/// Whether `GET /healthz` at `url` answers 200 within [`TIMEOUT`].
pub async fn becomes_healthy(url: &str) -> bool {
    let healthz = format!("{url}/healthz");
    test_support::eventually_async(TIMEOUT, || async {
        reqwest::get(&healthz)
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await
}

/// `GET /healthz` of the gateway at `url`: its status, or `None` if it did not answer.
pub async fn healthz(url: &str) -> Option<u16> {
    reqwest::get(format!("{url}/healthz"))
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// `GET /readyz` of the gateway at `url`: status and body.
pub async fn readyz(url: &str) -> (u16, Value) {
    let response = reqwest::get(format!("{url}/readyz"))
        .await
        .expect("GET /readyz");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

/// `GET /metrics` of the gateway at `url` (from its admin listener): the Prometheus text.
pub async fn metrics(url: &str) -> String {
    let admin = gateway::testing::admin_url(url);
    let response = reqwest::get(format!("{admin}/metrics"))
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), 200, "GET /metrics");
    response.text().await.expect("a text body")
}

/// The value of the sample `series` (the name with its labels exactly as rendered, e.g.
/// `socketio_events_in_total{event="join"}`) in a Prometheus text `body`.
pub fn metric(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// `tests/node` (the official client's test script), with its pinned modules installed
/// (`npm ci`) when they are missing.
pub fn node_client_dir() -> &'static std::path::Path {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node"));
    npm_ci(dir, "socket.io-client");
    dir
}

/// What every browser test needs: Debian's Chromium, the page scripts' npm modules and the
/// chat page's (socket.io-client). Returns the scripts' directory (`tests/browser`) and the
/// flags that point a gateway at the page's modules (`--web-modules-dir`).
pub fn browser_ready() -> (std::path::PathBuf, [String; 2]) {
    const CHROMIUM: &str = "/usr/bin/chromium";
    assert!(
        std::path::Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: install the Debian package `chromium` (apt-get install chromium)"
    );
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let browser_dir = manifest.join("tests/browser");
    npm_ci(&browser_dir, "playwright-core");
    let web_dir = manifest.join("web");
    npm_ci(&web_dir, "socket.io-client/dist/socket.io.min.js");
    let modules = web_dir.join("node_modules").display().to_string();
    (browser_dir, ["--web-modules-dir".to_owned(), modules])
}

/// Runs the official client's `tests/node/chat.mjs` with `args` (at most 15 s), prints its
/// summary under `label`, and returns it once it says `ok`; a failure shows its output.
pub async fn run_chat_mjs(label: &str, args: &[String]) -> Value {
    let output = tokio::process::Command::new("node")
        .arg("chat.mjs")
        .args(args)
        .args(["--timeout-ms", "15000"])
        .current_dir(node_client_dir())
        .output()
        .await
        .unwrap_or_else(|err| {
            panic!("cannot run node ({err}): install the Debian package `nodejs`")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("node chat.mjs ({label}): {stdout}");
    assert!(
        output.status.success(),
        "the official client failed ({label}): {stdout}\n{stderr}"
    );
    let summary: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(summary["ok"], true, "{summary}");
    summary
}

/// The Python interpreter of `tests/python/.venv`, with `tests/python/requirements.txt`
/// (python-socketio and its dependencies, pinned) installed: the venv is made with
/// `python3 -m venv` and filled with `pip install -r` when missing or when the requirements
/// changed since. Needs the Debian packages `python3` and `python3-venv`.
pub fn python_venv() -> std::path::PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python"));
    let venv = dir.join(".venv");
    let python = venv.join("bin/python");
    let requirements = std::fs::read_to_string(dir.join("requirements.txt"))
        .expect("reading tests/python/requirements.txt");
    let stamp = venv.join("installed-requirements.txt");
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&requirements) {
        return python;
    }
    let made = std::process::Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&venv)
        .status();
    assert!(
        made.is_ok_and(|status| status.success()),
        "cannot make a venv with `python3 -m venv`: install the Debian packages `python3` and \
         `python3-venv`"
    );
    let installed = std::process::Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(dir.join("requirements.txt"))
        .status()
        .expect("running pip in tests/python/.venv");
    assert!(
        installed.success(),
        "pip install -r tests/python/requirements.txt failed"
    );
    std::fs::write(&stamp, requirements).expect("writing the venv's requirements stamp");
    python
}

/// Runs `tests/python/chat.py` (python-socketio) with `args` and returns its JSON summary,
/// which must say `ok`; a failure shows its output.
pub async fn run_chat_py(label: &str, args: &[String]) -> Value {
    let python = python_venv();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/chat.py");
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(python)
            .arg(script)
            .args(args)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("chat.py ({label}) did not finish within 30 s"))
    .unwrap_or_else(|err| panic!("cannot run chat.py ({label}): {err}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("python chat.py ({label}): {stdout}");
    assert!(
        output.status.success(),
        "python-socketio failed ({label}): {stdout}\n{stderr}"
    );
    let summary: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(summary["ok"], true, "{summary}");
    summary
}

/// Milliseconds since the Unix epoch, by this machine's clock (the gateways').
pub fn now_ms() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    u64::try_from(since.as_millis()).unwrap()
}
