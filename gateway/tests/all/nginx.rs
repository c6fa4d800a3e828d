//! The deployment's nginx (`deploy/nginx.conf.template`, rendered here exactly as
//! `deploy/cluster.sh` renders it) in front of three gateway processes sharing one Redis:
//! clients pinned by nginx's address hashing to different instances chat in one room, one over
//! HTTP long-polling and one over websocket; `X-Forwarded-For` set by nginx is believed by the
//! gateways (and a client's own is not); the official `socket.io-client` works through it.
//!
//! Needs the Debian package `nginx` (besides `redis-server`, `nodejs` and `npm`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr},
};

use crate::nginx_support::{Nginx, gateways_behind_nginx};
use crate::support::{
    ChildGateway, TIMEOUT, clustered_args, join, next_named, password, with_flag,
};
use serde_json::{Value, json};
use socketio_client::{ConnectOptions, SocketClient, Transport};
use test_support::RedisServer;

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
        Self::start_with(|args| args).await
    }

    /// A stack whose gateways' flags are `flags(clustered_args)`.
    async fn start_with(flags: impl Fn(Vec<String>) -> Vec<String>) -> Self {
        let redis = RedisServer::start().await;
        let args = flags(clustered_args(&redis.url()));
        let (gateways, nginx) = gateways_behind_nginx(&args, &["gw1", "gw2", "gw3"]).await;
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

/// An HTTP client whose connections leave from `ip`.
fn http_from(ip: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip)
        .timeout(TIMEOUT)
        .build()
        .expect("an HTTP client")
}

/// The instance nginx sends requests from `ip` to (`GET /healthz` names it in
/// `x-gateway-instance`; `/api/cluster` is not behind nginx).
async fn instance_for(url: &str, ip: IpAddr) -> String {
    let response = http_from(ip)
        .get(format!("{url}/healthz"))
        .send()
        .await
        .expect("GET /healthz through nginx");
    response.headers()["x-gateway-instance"]
        .to_str()
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

/// Two loopback source addresses (127.0.0.2, .3, ...) that nginx's address hashing sends to
/// different instances, by instance: every client here comes from the loopback.
async fn two_pinned_addresses(url: &str) -> HashMap<String, IpAddr> {
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
    by_instance
}

#[tokio::test]
async fn nginx_pins_clients_to_instances_and_they_chat_across_them() {
    let stack = Stack::start().await;
    let url = stack.url();

    let by_instance = two_pinned_addresses(url).await;
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
        let sent = crate::support::ack(&a, "message", json!({"room": "lobby", "text": text})).await;
        expect_message(&mut b, "lobby", &sent["id"], &text).await;
        expect_message(&mut a, "lobby", &sent["id"], &text).await;

        let text = format!("from B over websocket, round {round}");
        let sent = crate::support::ack(&b, "message", json!({"room": "lobby", "text": text})).await;
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
    let token_a = crate::support::login(url, "alice").await;
    let token_b = crate::support::login(url, "bob").await;
    let args = [
        "--a",
        url,
        "--b",
        url,
        "--transport",
        transport,
        &format!("--token-a={token_a}"),
        &format!("--token-b={token_b}"),
    ]
    .map(str::to_owned);
    let summary = crate::support::run_chat_mjs(&format!("through nginx, {transport}"), &args).await;
    assert_eq!(summary["transport"], transport);
}

/// The official client, one long-polling and one websocket socket, from two source addresses
/// that nginx pins to different instances, chatting in one room through nginx.
#[tokio::test]
async fn official_clients_pinned_to_different_instances_chat_through_nginx() {
    let stack = Stack::start().await;
    let url = stack.url();
    let pinned: Vec<(String, IpAddr)> = two_pinned_addresses(url).await.into_iter().collect();
    let [(instance_a, ip_a), (instance_b, ip_b)] = [pinned[0].clone(), pinned[1].clone()];
    let token_a = login_from(url, ip_a, "alice", &[]).await;
    let token_b = login_from(url, ip_b, "bob", &[]).await;
    let args = [
        "--a",
        url,
        "--b",
        url,
        "--transport",
        "polling",
        "--transport-b",
        "websocket",
        "--local-a",
        &ip_a.to_string(),
        "--local-b",
        &ip_b.to_string(),
        &format!("--token-a={token_a}"),
        &format!("--token-b={token_b}"),
    ]
    .map(str::to_owned);
    let summary = crate::support::run_chat_mjs("pinned through nginx", &args).await;
    assert_eq!(summary["transport"], "polling");
    assert_eq!(summary["transport_b"], "websocket");
    assert_eq!(summary["a_instance"], instance_a.as_str(), "{summary}");
    assert_eq!(summary["b_instance"], instance_b.as_str(), "{summary}");
}

#[tokio::test]
async fn official_client_chats_through_nginx_over_polling_and_websocket() {
    let stack = Stack::start().await;
    official_client_through_nginx(&stack, "polling").await;
    official_client_through_nginx(&stack, "websocket").await;
}

/// Through the shipped nginx, a client cannot pick its rate-limit bucket: nginx overwrites
/// `X-Forwarded-For` with the client's address, so 11 wrong logins from one client, each with
/// another forged address, share one bucket and the 11th is over the limit of 10 per minute.
/// (With `$proxy_add_x_forwarded_for`, a client on the loopback that the gateways trust got 11
/// buckets and no 429.)
#[tokio::test]
async fn forged_forwarded_for_through_nginx_does_not_escape_the_login_limit() {
    let stack = Stack::start_with(|args| with_flag(args, "--rate-login", "10/60s")).await;
    let client = http_from(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let mut statuses = Vec::new();
    for i in 1..=11 {
        let response = client
            .post(format!("{}/api/login", stack.url()))
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .json(&json!({"username": "alice", "password": "wrong"}))
            .send()
            .await
            .expect("POST /api/login through nginx");
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses[..10], [401; 10], "{statuses:?}");
    assert_eq!(statuses[10], 429, "the 11th wrong login: {statuses:?}");
}

/// nginx passes only what browsers and backends need: the operational routes are not
/// reachable through it (they are on each gateway's admin listener), while the page,
/// Socket.IO, the account routes and the publish API are; the page's own origin (nginx's, through `X-Forwarded-Host`) may use the
/// session cookie, another may not.
#[tokio::test]
async fn nginx_serves_only_browser_routes_and_the_cookie_only_to_its_origin() {
    let stack = Stack::start().await;
    let url = stack.url();
    for path in [
        "/metrics",
        "/api/stats",
        "/api/cluster",
        "/api/cluster/sockets",
        "/bench/burst",
        "/readyz",
    ] {
        let status = reqwest::get(format!("{url}{path}")).await.unwrap().status();
        assert_eq!(status, 404, "{path} through nginx");
    }
    for path in ["/", "/healthz", "/assets/app.js"] {
        let status = reqwest::get(format!("{url}{path}")).await.unwrap().status();
        assert_eq!(status, 200, "{path} through nginx");
    }
    // The publish API is proxied: its own 401 for a request without a key, not nginx's 404.
    let publish = reqwest::Client::new()
        .post(format!("{url}/api/v1/publish"))
        .json(&json!({"room": "general", "event": "tick", "data": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(publish.status(), 401, "the publish API through nginx");
    let body: Value = publish.json().await.unwrap();
    assert!(
        body.get("error").is_some(),
        "the gateway's own answer: {body}"
    );
    let token = crate::support::login(url, "alice").await;
    for polling in [false, true] {
        let page = |origin: &str| {
            ConnectOptions::new(url)
                .timeout(TIMEOUT)
                .polling(polling)
                .header("cookie", format!("gw_session={token}"))
                .header("origin", origin)
        };
        let mut own = SocketClient::connect_with(page(url))
            .await
            .unwrap_or_else(|err| panic!("the page's own origin through nginx: {err}"));
        next_named(&mut own, "welcome").await;
        own.close().await;
        let foreign = SocketClient::connect_with(page("http://127.0.0.1:1")).await;
        assert!(
            matches!(&foreign, Err(socketio_client::ClientError::ConnectRefused(m)) if m == "forbidden: origin"),
            "polling {polling}: {:?}",
            foreign.err()
        );
    }
}
