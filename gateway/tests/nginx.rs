//! The deployment's nginx (`deploy/nginx.conf.template`, rendered here exactly as
//! `deploy/cluster.sh` renders it) in front of three gateway processes sharing one Redis:
//! clients pinned by nginx's address hashing to different instances chat in one room, one over
//! HTTP long-polling and one over websocket; `X-Forwarded-For` set by nginx is believed by the
//! gateways (and a client's own is not); the official `socket.io-client` works through it.
//!
//! Needs the Debian package `nginx` (besides `redis-server`, `nodejs` and `npm`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use loadtest::{ConnectOptions, SocketClient, client::Transport};
use serde_json::{Value, json};
use support::{ChildGateway, TIMEOUT, clustered_args, join, next_named, password};
use test_support::RedisServer;

/// The deployment directory of the repository.
fn deploy_dir() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy"))
        .canonicalize()
        .expect("the deploy directory")
}

/// The nginx binary (in /usr/sbin, which a user's PATH may lack).
fn nginx_binary() -> PathBuf {
    let in_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    in_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("nginx not found: install the Debian package `nginx` (apt-get install nginx)")
        })
}

/// Renders `deploy/nginx.conf.template` as `deploy/cluster.sh` does.
fn render_config(run_dir: &Path, port: u16, upstream_ports: &[u16]) -> String {
    let deploy = deploy_dir();
    let template = std::fs::read_to_string(deploy.join("nginx.conf.template"))
        .expect("reading deploy/nginx.conf.template");
    let upstreams = upstream_ports
        .iter()
        .map(|port| format!("        server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;"))
        .collect::<Vec<_>>()
        .join("\n");
    let rendered = template
        .replace("@RUN_DIR@", &run_dir.display().to_string())
        .replace("@LISTEN@", &format!("127.0.0.1:{port}"))
        .replace(
            "@PROXY_CONF@",
            &deploy.join("nginx-proxy.conf").display().to_string(),
        )
        .replace("@UPSTREAMS@", &upstreams);
    assert!(
        !rendered.contains('@'),
        "a placeholder of the template was not rendered:\n{rendered}"
    );
    rendered
}

/// nginx run from the shipped template in a run directory of its own (it daemonizes, as
/// configured); stopped when dropped.
struct Nginx {
    binary: PathBuf,
    run_dir: PathBuf,
    url: String,
}

impl Nginx {
    /// Starts nginx on a free loopback port in front of `upstream_ports`.
    async fn start(binary: PathBuf, upstream_ports: &[u16]) -> Self {
        let port = test_support::free_port();
        let run_dir =
            std::env::temp_dir().join(format!("test-nginx-{}-{port}", std::process::id()));
        std::fs::create_dir_all(run_dir.join("nginx-tmp")).expect("creating the nginx run dir");
        std::fs::write(
            run_dir.join("nginx.conf"),
            render_config(&run_dir, port, upstream_ports),
        )
        .expect("writing nginx.conf");
        let nginx = Self {
            binary,
            run_dir,
            url: format!("http://127.0.0.1:{port}"),
        };
        let output = nginx.command().output().unwrap_or_else(|err| {
            panic!("cannot run nginx ({err}): install the Debian package `nginx`")
        });
        assert!(
            output.status.success(),
            "nginx did not start: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            nginx.error_log()
        );
        let healthz = format!("{}/healthz", nginx.url);
        let ready = test_support::eventually_async(TIMEOUT, || async {
            reqwest::get(&healthz)
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
        assert!(
            ready,
            "nginx does not proxy /healthz: {}",
            nginx.error_log()
        );
        nginx
    }

    /// `nginx -p RUN -c RUN/nginx.conf -e RUN/nginx-error.log`, as deploy/cluster.sh runs it.
    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .arg("-p")
            .arg(&self.run_dir)
            .arg("-c")
            .arg(self.run_dir.join("nginx.conf"))
            .arg("-e")
            .arg(self.run_dir.join("nginx-error.log"))
            .stdin(Stdio::null());
        command
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.run_dir.join("nginx-error.log")).unwrap_or_default()
    }

    fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let pid_file = self.run_dir.join("nginx.pid");
        let pid = std::fs::read_to_string(&pid_file).unwrap_or_default();
        let _best_effort = self.command().args(["-s", "stop"]).output();
        // nginx removes its pid file once the master has exited; kill it if it lingers.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while pid_file.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let pid = pid.trim();
        if pid_file.exists() && !pid.is_empty() {
            let _best_effort = Command::new("kill").args(["-KILL", pid]).status();
        }
        let _best_effort = std::fs::remove_dir_all(&self.run_dir);
    }
}

/// Redis, three clustered gateway processes trusting nginx's `X-Forwarded-For`, and nginx.
/// Fields drop in order: nginx first, Redis last.
struct Stack {
    nginx: Nginx,
    /// Kept running until the stack is dropped.
    _gateways: Vec<ChildGateway>,
    redis: RedisServer,
}

impl Stack {
    async fn start() -> Self {
        let nginx_binary = nginx_binary();
        let redis = RedisServer::start().await;
        let mut gateways = Vec::new();
        for i in 1..=3 {
            let mut args = clustered_args(&redis.url());
            args.extend(
                ["--trusted-proxies", "127.0.0.1", "--instance-id"]
                    .map(str::to_owned)
                    .into_iter()
                    .chain([format!("gw{i}")]),
            );
            gateways.push(ChildGateway::start(&args).await);
        }
        for gateway in &gateways {
            let all_seen = test_support::eventually_async(TIMEOUT, || async {
                support::cluster_info(gateway.url()).await["servers"] == 3
            })
            .await;
            assert!(all_seen, "{} does not see 3 servers", gateway.url());
        }
        let ports: Vec<u16> = gateways.iter().map(|g| port_of(g.url())).collect();
        let nginx = Nginx::start(nginx_binary, &ports).await;
        Self {
            nginx,
            _gateways: gateways,
            redis,
        }
    }

    fn url(&self) -> &str {
        self.nginx.url()
    }
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

/// An HTTP client whose connections leave from `ip`.
fn http_from(ip: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip)
        .timeout(TIMEOUT)
        .build()
        .expect("an HTTP client")
}

/// The instance nginx sends requests from `ip` to (`GET /api/cluster` names it).
async fn instance_for(url: &str, ip: IpAddr) -> String {
    let body: Value = http_from(ip)
        .get(format!("{url}/api/cluster"))
        .send()
        .await
        .expect("GET /api/cluster through nginx")
        .json()
        .await
        .expect("a JSON body");
    body["instance"]
        .as_str()
        .expect("an instance id")
        .to_owned()
}

/// Logs test user `user` in through `url` from `ip`, with extra `headers`; returns the token.
async fn login_from(url: &str, ip: IpAddr, user: &str, headers: &[(&str, &str)]) -> String {
    let mut request = http_from(ip)
        .post(format!("{url}/api/login"))
        .json(&json!({"username": user, "password": password(user)}));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("POST /api/login through nginx");
    assert_eq!(response.status(), 200, "login of {user} from {ip}");
    let body: Value = response.json().await.expect("a JSON body");
    body["token"].as_str().expect("a token").to_owned()
}

/// Connects from `ip` through nginx with `token` over the chosen transport; returns the
/// client and the instance its `welcome` names.
async fn connect_from(url: &str, ip: IpAddr, token: &str, polling: bool) -> (SocketClient, String) {
    let options = ConnectOptions::new(url)
        .timeout(TIMEOUT)
        .local_addr(ip)
        .polling(polling)
        .auth(json!({ "token": token }));
    let mut client = SocketClient::connect_with(options)
        .await
        .unwrap_or_else(|err| panic!("connecting from {ip} through nginx: {err}"));
    let welcome = next_named(&mut client, "welcome").await;
    assert_eq!(
        welcome.data["sid"],
        client.sid(),
        "welcome names the socket"
    );
    let instance = welcome.data["instance"]
        .as_str()
        .expect("welcome names the instance")
        .to_owned();
    (client, instance)
}

/// The `ip` recorded in Redis for `user`'s sessions (they hold `{user, tenant, created_at,
/// ip}` under `socket.io:session:*`).
async fn session_ips(redis: &RedisServer, user: &str) -> Vec<String> {
    let mut conn = redis.connection().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("socket.io:session:*")
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    let mut ips = Vec::new();
    for key in keys {
        let record: String = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("GET session");
        let record: Value = serde_json::from_str(&record).expect("a JSON session");
        if record["user"] == user {
            ips.push(record["ip"].as_str().unwrap_or("none").to_owned());
        }
    }
    ips.sort();
    ips
}

/// The next `message` event for `room` carrying `id`, skipping typing notices.
async fn expect_message(client: &mut SocketClient, room: &str, id: &Value, text: &str) {
    loop {
        let event = client
            .next_event(TIMEOUT)
            .await
            .unwrap_or_else(|err| panic!("waiting for message {text:?}: {err}"));
        if event.name != "message" {
            continue;
        }
        if &event.data["id"] == id {
            assert_eq!(event.data["room"], room);
            assert_eq!(event.data["text"], text);
            return;
        }
    }
}

#[tokio::test]
async fn nginx_pins_clients_to_instances_and_they_chat_across_them() {
    let stack = Stack::start().await;
    let url = stack.url();

    // Every client here comes from the loopback: source addresses 127.0.0.2, .3, ... are
    // hashed by nginx; find two that it sends to different instances.
    let mut by_instance: HashMap<String, IpAddr> = HashMap::new();
    for last in 2..=60u8 {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, last));
        let instance = instance_for(url, ip).await;
        // The hash is stable: the same address lands on the same instance every time.
        for _ in 0..3 {
            assert_eq!(instance_for(url, ip).await, instance, "{ip} is not pinned");
        }
        by_instance.entry(instance).or_insert(ip);
        if by_instance.len() == 2 {
            break;
        }
    }
    assert_eq!(
        by_instance.len(),
        2,
        "nginx sent addresses 127.0.0.2-60 to fewer than two instances: {by_instance:?}"
    );
    let mut pinned: Vec<(String, IpAddr)> = by_instance.into_iter().collect();
    pinned.sort();
    let (instance_a, ip_a) = pinned[0].clone();
    let (instance_b, ip_b) = pinned[1].clone();

    // A on long-polling (every request must reach the instance that holds its engine.io
    // session), B on websocket (the upgrade must pass nginx).
    let token_a = login_from(url, ip_a, "alice", &[]).await;
    let token_b = login_from(url, ip_b, "bob", &[]).await;
    let (mut a, welcomed_a) = connect_from(url, ip_a, &token_a, true).await;
    let (mut b, welcomed_b) = connect_from(url, ip_b, &token_b, false).await;
    assert_eq!(a.transport(), Transport::Polling);
    assert_eq!(b.transport(), Transport::WebSocket);
    assert_eq!(
        welcomed_a, instance_a,
        "A is served by the instance nginx pins {ip_a} to"
    );
    assert_eq!(
        welcomed_b, instance_b,
        "B is served by the instance nginx pins {ip_b} to"
    );
    assert_ne!(welcomed_a, welcomed_b);
    println!(
        "through nginx: A ({ip_a}, polling) on {welcomed_a}, B ({ip_b}, websocket) on {welcomed_b}"
    );

    join(&a, "lobby").await;
    join(&b, "lobby").await;
    // Several rounds both ways: many long-polling requests, all to A's instance.
    for round in 0..5 {
        let text = format!("from A over polling, round {round}");
        let sent = support::ack(&a, "message", json!({"room": "lobby", "text": text})).await;
        expect_message(&mut b, "lobby", &sent["id"], &text).await;
        expect_message(&mut a, "lobby", &sent["id"], &text).await;

        let text = format!("from B over websocket, round {round}");
        let sent = support::ack(&b, "message", json!({"room": "lobby", "text": text})).await;
        expect_message(&mut a, "lobby", &sent["id"], &text).await;
        expect_message(&mut b, "lobby", &sent["id"], &text).await;
    }

    // X-Forwarded-For: nginx appends the client's address and the gateways trust nginx
    // (127.0.0.1), so the sessions record the clients' own addresses, not nginx's.
    assert_eq!(session_ips(&stack.redis, "alice").await, [ip_a.to_string()]);
    assert_eq!(session_ips(&stack.redis, "bob").await, [ip_b.to_string()]);
    // What a client writes in the header itself is not believed: the gateway reads it right
    // to left and stops at the first address nginx did not vouch for.
    let spoofer = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 77));
    login_from(url, spoofer, "carol", &[("x-forwarded-for", "203.0.113.9")]).await;
    assert_eq!(
        session_ips(&stack.redis, "carol").await,
        [spoofer.to_string()]
    );

    a.close().await;
    b.close().await;
}

/// The official client (`tests/node/chat.mjs`): both of its clients connect to nginx's URL.
/// Node's client cannot be given a source address from the command line, so both come from
/// 127.0.0.1 and land on one instance; the pinning itself is tested above.
async fn official_client_through_nginx(stack: &Stack, transport: &str) {
    let url = stack.url();
    let token_a = support::login(url, "alice").await;
    let token_b = support::login(url, "bob").await;
    let output = tokio::process::Command::new("node")
        .arg("chat.mjs")
        .args(["--a", url, "--b", url, "--transport", transport])
        .arg(format!("--token-a={token_a}"))
        .arg(format!("--token-b={token_b}"))
        .args(["--timeout-ms", "15000"])
        .current_dir(support::node_client_dir())
        .output()
        .await
        .unwrap_or_else(|err| {
            panic!("cannot run node ({err}): install the Debian package `nodejs`")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("node chat.mjs through nginx ({transport}): {stdout}");
    assert!(
        output.status.success(),
        "the official client failed through nginx over {transport}: {stdout}\n{stderr}"
    );
    let summary: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["transport"], transport);
}

#[tokio::test]
async fn official_client_chats_through_nginx_over_polling_and_websocket() {
    let stack = Stack::start().await;
    official_client_through_nginx(&stack, "polling").await;
    official_client_through_nginx(&stack, "websocket").await;
}
