//! Sessions on a real Redis with two gateways: login, the cookie and token handshakes,
//! refusal without a live session, expiry, deletion and logout across instances.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{io::Write, process::Stdio, time::Duration};

use crate::support::{
    QUIET, RawSocket, TestGateway, ack, assert_disconnected, cluster, cluster_sockets, clustered,
    connect_token, join, login, login_response, now_ms, password, refusal, standalone, stats,
};
use redis::AsyncCommands;
use serde_json::{Value, json};
use test_support::RedisServer;

/// The session keys in Redis.
async fn session_keys(redis: &RedisServer) -> Vec<String> {
    let mut conn = redis.connection().await;
    conn.keys("socket.io:session:*").await.unwrap()
}

fn cookie_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

#[tokio::test]
async fn login_creates_a_session_and_answers_with_a_cookie_and_the_token() {
    let redis = RedisServer::start().await;
    let [gateway] = <[_; 1]>::try_from(cluster(1, &redis.url(), |_| {}).await)
        .ok()
        .unwrap();
    let before = now_ms();

    let response = login_response(gateway.url(), "alice", &password("alice")).await;

    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    assert_eq!(token.len(), 43, "256 bits in base64url");
    assert_eq!(
        body["user"],
        json!({"id": "alice", "name": "alice", "tenant": "acme", "admin": true})
    );
    assert_eq!(body["expires_in"], 86_400);
    assert!(
        cookie.starts_with(&format!("gw_session={token}")),
        "{cookie}"
    );
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=86400"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(!cookie.contains("Secure"), "{cookie}");

    // In Redis: keyed by a hash of the token, never the token; expiring with the session.
    let keys = session_keys(&redis).await;
    assert_eq!(keys.len(), 1);
    assert!(!keys[0].contains(token));
    let mut conn = redis.connection().await;
    let stored: String = conn.get(&keys[0]).await.unwrap();
    let stored: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["user"], "alice");
    assert_eq!(stored["tenant"], "acme");
    assert_eq!(stored["ip"], "127.0.0.1");
    let created = stored["created_at"].as_u64().unwrap();
    assert!(created >= before && created <= now_ms());
    let ttl: i64 = conn.pttl(&keys[0]).await.unwrap();
    assert!(ttl > 86_390_000 && ttl <= 86_400_000, "ttl {ttl}");
}

#[tokio::test]
async fn the_cookie_is_secure_when_configured() {
    let redis = RedisServer::start().await;
    let gateway = TestGateway::start(gateway::Config {
        secure_cookies: true,
        ..clustered(&redis.url())
    })
    .await;
    let response = login_response(gateway.url(), "bob", &password("bob")).await;
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn unknown_users_and_wrong_passwords_get_the_same_401() {
    let redis = RedisServer::start().await;
    let gateway = TestGateway::start(clustered(&redis.url())).await;

    let wrong = login_response(gateway.url(), "alice", "not-her-password").await;
    let unknown = login_response(gateway.url(), "mallory", "whatever").await;

    assert_eq!(wrong.status(), 401);
    assert_eq!(unknown.status(), 401);
    let expected = json!({"error": "invalid username or password"});
    assert_eq!(wrong.json::<Value>().await.unwrap(), expected);
    assert_eq!(unknown.json::<Value>().await.unwrap(), expected);
    assert!(session_keys(&redis).await.is_empty());

    let malformed = reqwest::Client::new()
        .post(format!("{}/api/login", gateway.url()))
        .header("content-type", "application/json")
        .body("{\"username\": 1}")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
}

#[tokio::test]
async fn me_answers_with_the_cookie_or_a_bearer_token_and_401_otherwise() {
    let redis = RedisServer::start().await;
    let gateway = TestGateway::start(clustered(&redis.url())).await;
    let me = format!("{}/api/me", gateway.url());
    let browser = cookie_client();
    let login = browser
        .post(format!("{}/api/login", gateway.url()))
        .json(&json!({"username": "grace", "password": password("grace")}))
        .send()
        .await
        .unwrap();
    let token = login.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let with_cookie = browser.get(&me).send().await.unwrap();
    assert_eq!(with_cookie.status(), 200);
    assert_eq!(
        with_cookie.json::<Value>().await.unwrap(),
        json!({"id": "grace", "name": "grace", "tenant": "globex", "admin": true})
    );
    let with_bearer = reqwest::Client::new()
        .get(&me)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(with_bearer.status(), 200);

    let anonymous = reqwest::get(&me).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous.json::<Value>().await.unwrap(),
        json!({"error": "unauthorized: no session"})
    );
    let forged = reqwest::Client::new()
        .get(&me)
        .bearer_auth("A".repeat(43))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    assert_eq!(
        forged.json::<Value>().await.unwrap(),
        json!({"error": "unauthorized: session expired"})
    );
}

#[tokio::test]
async fn a_session_opens_sockets_on_every_instance_by_token_or_by_cookie() {
    let redis = RedisServer::start().await;
    let [a, b] = <[_; 2]>::try_from(cluster(2, &redis.url(), |_| {}).await)
        .ok()
        .unwrap();
    let token = login(a.url(), "alice").await;

    // Token (`auth: {token}`), on the instance that did not log the user in.
    let by_token = connect_token(b.url(), &token).await;
    join(&by_token, "lobby").await;

    // Cookie, as a browser sends it with the handshake, on both instances.
    let cookie = format!("theme=dark; gw_session={token}");
    let mut sockets = Vec::new();
    for gateway in [&a, &b] {
        let mut by_cookie = RawSocket::connect(gateway.url(), &[("cookie", &cookie)], None)
            .await
            .unwrap_or_else(|refused| panic!("cookie handshake refused: {refused}"));
        let joined = by_cookie
            .emit_with_ack("join", &json!({"room": "lobby"}))
            .await;
        assert_eq!(joined, json!({"ok": true}));
        let sent = by_cookie
            .emit_with_ack("message", &json!({"room": "lobby", "text": "hi"}))
            .await;
        assert!(sent["id"].is_string(), "{sent}");
        sockets.push(by_cookie);
    }
    assert_eq!(cluster_sockets(a.url()).await, 3);
}

#[tokio::test]
async fn a_handshake_without_a_live_session_is_refused_and_leaves_nothing() {
    let redis = RedisServer::start().await;
    let [a, b] = <[_; 2]>::try_from(cluster(2, &redis.url(), |_| {}).await)
        .ok()
        .unwrap();

    assert_eq!(refusal(a.url(), None).await, "unauthorized: no session");
    assert_eq!(
        refusal(b.url(), Some(json!({"name": "alice"}))).await,
        "unauthorized: no session"
    );
    assert_eq!(
        refusal(a.url(), Some(json!({"token": "not-a-token"}))).await,
        "unauthorized: session expired"
    );
    assert_eq!(
        refusal(b.url(), Some(json!({"token": "A".repeat(43)}))).await,
        "unauthorized: session expired"
    );
    let forged_cookie = format!("gw_session={}", "B".repeat(43));
    let refused = RawSocket::connect(a.url(), &[("cookie", &forged_cookie)], None).await;
    assert_eq!(refused.err().unwrap(), "unauthorized: session expired");

    // Nothing of them is left: no socket, so no membership in any room, anywhere.
    for gateway in [&a, &b] {
        assert_eq!(cluster_sockets(gateway.url()).await, 0);
    }
    let refused = stats(a.url()).await["handshakes_refused"].as_u64().unwrap()
        + stats(b.url()).await["handshakes_refused"].as_u64().unwrap();
    assert_eq!(refused, 5);
}

#[tokio::test]
async fn an_expired_session_opens_nothing_and_its_sockets_are_disconnected() {
    let redis = RedisServer::start().await;
    let [a, b] = <[_; 2]>::try_from(
        cluster(2, &redis.url(), |config| {
            config.session_ttl = Duration::from_secs(1);
            config.session_check_interval = Duration::from_secs(1);
        })
        .await,
    )
    .ok()
    .unwrap();
    let token = login(a.url(), "bob").await;
    let mut socket = connect_token(b.url(), &token).await;
    join(&socket, "lobby").await;

    // TTL (1 s) + check interval (1 s) + a Redis round trip, with slack.
    assert_disconnected(&mut socket, Duration::from_secs(4)).await;

    assert_eq!(
        refusal(a.url(), Some(json!({"token": token}))).await,
        "unauthorized: session expired"
    );
    let me = reqwest::Client::new()
        .get(format!("{}/api/me", a.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);
    assert_eq!(stats(b.url()).await["sessions_expired_disconnects"], 1);
}

#[tokio::test]
async fn a_session_deleted_in_redis_loses_its_sockets_within_the_check_interval() {
    let redis = RedisServer::start().await;
    let gateway = TestGateway::start(gateway::Config {
        session_check_interval: Duration::from_secs(1),
        ..clustered(&redis.url())
    })
    .await;
    let mut doomed = connect_token(gateway.url(), &login(gateway.url(), "carol").await).await;
    let keys = session_keys(&redis).await;
    assert_eq!(keys.len(), 1);
    let kept = connect_token(gateway.url(), &login(gateway.url(), "carol").await).await;

    let mut conn = redis.connection().await;
    let deleted: u64 = conn.del(&keys[0]).await.unwrap();
    assert_eq!(deleted, 1);

    // The check interval (1 s) and a Redis round trip, with slack.
    assert_disconnected(&mut doomed, Duration::from_secs(3)).await;
    join(&kept, "still-here").await;
}

#[tokio::test]
async fn logout_deletes_the_session_and_disconnects_its_sockets_on_every_instance() {
    let redis = RedisServer::start().await;
    // The default check interval (30 s): whatever disconnects within the test is logout.
    let [a, b] = <[_; 2]>::try_from(cluster(2, &redis.url(), |_| {}).await)
        .ok()
        .unwrap();
    let browser = cookie_client();
    let login = browser
        .post(format!("{}/api/login", a.url()))
        .json(&json!({"username": "dave", "password": password("dave")}))
        .send()
        .await
        .unwrap();
    let token = login.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut on_a = connect_token(a.url(), &token).await;
    let mut on_b = connect_token(b.url(), &token).await;
    join(&on_b, "lobby").await;
    // Another session of the same user is not affected.
    let other = connect_token(b.url(), &crate::support::login(b.url(), "dave").await).await;

    let logout = browser
        .post(format!("{}/api/logout", a.url()))
        .send()
        .await
        .unwrap();

    assert_eq!(logout.status(), 204);
    let cleared = logout.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.starts_with("gw_session=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_disconnected(&mut on_b, Duration::from_secs(2)).await;
    assert_disconnected(&mut on_a, Duration::from_secs(2)).await;
    assert_eq!(
        ack(&other, "join", json!({"room": "lobby"})).await,
        json!({"ok": true})
    );
    assert_eq!(
        session_keys(&redis).await.len(),
        1,
        "only the other session is left"
    );
    let me = browser
        .get(format!("{}/api/me", b.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);
    assert_eq!(
        refusal(b.url(), Some(json!({"token": token}))).await,
        "unauthorized: session expired"
    );
    // Logging out again is harmless.
    let again = browser
        .post(format!("{}/api/logout", b.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 204);
    tokio::time::sleep(QUIET).await;
    assert_eq!(cluster_sockets(a.url()).await, 1);
}

#[tokio::test]
async fn add_user_writes_a_user_who_can_log_in() {
    let redis = RedisServer::start().await;
    let file =
        std::env::temp_dir().join(format!("gateway-add-user-test-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["add-user", "--users-file"])
        .arg(&file)
        .args([
            "--username",
            "zoe",
            "--tenant",
            "initech",
            "--name",
            "Zoë",
            "--admin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery staple\n")
        .unwrap();
    assert!(child.wait().unwrap().success());

    let gateway = TestGateway::start(gateway::Config {
        users_file: Some(file.clone()),
        ..clustered(&redis.url())
    })
    .await;
    let response = login_response(gateway.url(), "zoe", "correct horse battery staple").await;
    let _ = std::fs::remove_file(&file);
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["user"],
        json!({"id": "zoe", "name": "Zoë", "tenant": "initech", "admin": true})
    );
}

#[tokio::test]
async fn standalone_mode_has_no_accounts() {
    let gateway = TestGateway::start(standalone()).await;
    let response = login_response(gateway.url(), "alice", &password("alice")).await;
    assert_eq!(response.status(), 404);
    // Anonymous sockets of tenant `dev` connect as before.
    crate::support::connect(gateway.url()).await;
}
