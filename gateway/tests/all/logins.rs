//! Logins that cannot be turned against users: no password oracle while Redis is down, a
//! failed-login throttle per username that cannot lock a user out from their own address,
//! IPv6 clients keyed by /64, and a verification cap that aborted requests cannot bypass.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use crate::support::{TestGateway, clustered, login_response, password, stats};
use gateway::{Config, Rate, users};
use serde_json::{Value, json};
use test_support::RedisServer;

/// `password_verifications` of the gateway at `url`.
async fn verifications(url: &str) -> u64 {
    stats(url).await["password_verifications"].as_u64().unwrap()
}

/// The status and body of a login.
async fn answer(url: &str, username: &str, password: &str) -> (u16, Value) {
    let response = login_response(url, username, password).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn while_redis_is_down_every_login_gets_the_same_503_and_no_password_is_verified() {
    let mut redis = RedisServer::start().await;
    let gateway = TestGateway::start(clustered(&redis.url())).await;
    let url = gateway.url();
    assert_eq!(answer(url, "bob", "wrong").await.0, 401);
    assert_eq!(verifications(url).await, 1, "the counter counts");

    redis.kill();

    let mut answers = Vec::new();
    for _ in 0..50 {
        answers.push(answer(url, "bob", "wrong").await);
    }
    answers.push(answer(url, "bob", &password("bob")).await);
    let first = answers[0].clone();
    assert_eq!(first.0, 503, "{first:?}");
    for (n, other) in answers.iter().enumerate() {
        assert_eq!(other, &first, "login {n} answered differently");
    }
    assert_eq!(verifications(url).await, 1, "a password was verified");
}

/// A gateway trusting the in-process peer's `X-Forwarded-For`, with `config` applied.
async fn behind_proxy(redis: &RedisServer, config: impl FnOnce(&mut Config)) -> TestGateway {
    let mut c = Config {
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        ..clustered(&redis.url())
    };
    config(&mut c);
    TestGateway::start(c).await
}

/// The status of a login of `username` with `password` from client address `from`.
async fn login_from(gateway: &TestGateway, from: &str, username: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/api/login", gateway.url()))
        .header("x-forwarded-for", from)
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn failed_logins_throttle_the_guessing_address_and_never_the_users_own() {
    let redis = RedisServer::start().await;
    let gateway = behind_proxy(&redis, |config| {
        config.rate_login_failures = Rate::new(2, Duration::from_secs(60));
        config.rate_login_user_failures = Rate::new(3, Duration::from_secs(60));
    })
    .await;
    let right = password("bob");
    // Bob's own address, known from a successful login.
    assert_eq!(login_from(&gateway, "10.0.0.1", "bob", &right).await, 200);

    // One address guessing: throttled for bob after two failures, even with the right
    // password (it is not verified any more)...
    assert_eq!(login_from(&gateway, "10.0.0.9", "bob", "guess1").await, 401);
    assert_eq!(login_from(&gateway, "10.0.0.9", "bob", "guess2").await, 401);
    assert_eq!(login_from(&gateway, "10.0.0.9", "bob", &right).await, 429);
    // ...and only for bob.
    assert_eq!(
        login_from(&gateway, "10.0.0.9", "carol", &password("carol")).await,
        200
    );

    // Guesses spread over addresses: past bob's budget of 3 failures, an address bob never
    // logged in from is throttled even with the right password...
    assert_eq!(
        login_from(&gateway, "10.0.0.10", "bob", "guess3").await,
        401
    );
    assert_eq!(login_from(&gateway, "10.0.0.11", "bob", &right).await, 429);
    assert_eq!(
        login_from(&gateway, "10.0.0.12", "bob", "guess4").await,
        429
    );
    // ...while bob, from his own address, still gets in.
    assert_eq!(login_from(&gateway, "10.0.0.1", "bob", &right).await, 200);

    // An unknown username is throttled exactly like a real one.
    for expected in [401, 401, 429] {
        assert_eq!(
            login_from(&gateway, "10.0.0.20", "nobody", "x").await,
            expected
        );
    }

    // Throttled logins cost no verification: 8 answered 200 or 401, 4 answered 429.
    assert_eq!(verifications(gateway.url()).await, 8);
    assert_eq!(stats(gateway.url()).await["login_throttled"], 4);
}

#[tokio::test]
async fn ipv6_clients_are_keyed_by_their_network() {
    let redis = RedisServer::start().await;
    let once = Rate::new(1, Duration::from_secs(60));
    let by_64 = behind_proxy(&redis, |config| config.rate_login = once).await;
    let right = password("alice");
    assert_eq!(
        login_from(&by_64, "2001:db8:1:2::1", "alice", &right).await,
        200
    );
    // Another address of the same /64 is the same client.
    assert_eq!(
        login_from(&by_64, "2001:db8:1:2:ffff:eeee:dddd:9", "alice", &right).await,
        429
    );
    assert_eq!(
        login_from(&by_64, "2001:db8:1:3::1", "alice", &right).await,
        200
    );

    // The prefix is configurable.
    let by_128 = behind_proxy(&redis, |config| {
        config.rate_login = once;
        config.rate_ipv6_prefix = 128;
    })
    .await;
    assert_eq!(
        login_from(&by_128, "2001:db8:5:5::1", "alice", &right).await,
        200
    );
    assert_eq!(
        login_from(&by_128, "2001:db8:5:5::2", "alice", &right).await,
        200
    );
    assert_eq!(
        login_from(&by_128, "2001:db8:5:5::2", "alice", &right).await,
        429
    );
}

/// A directory of one user, `slow`, whose password takes a long verification (argon2id with
/// many passes), written for this test.
fn slow_users_file(name: &str) -> std::path::PathBuf {
    let params = users::Params::new(8 * 1024, 40, 1, None).unwrap();
    let record = users::UserRecord {
        username: "slow".into(),
        tenant: "acme".into(),
        name: "Slow".into(),
        roles: Vec::new(),
        password_hash: users::hash_password("slow-password", params).unwrap(),
    };
    let path = std::env::temp_dir().join(format!(
        "gateway-slow-users-{name}-{}.json",
        std::process::id()
    ));
    let file = users::UsersFile {
        users: vec![record],
    };
    std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
    path
}

/// A gateway serving [`slow_users_file`] with `permits` verifications and `queue` waiting,
/// and how long one verification takes there (the quicker of two logins).
async fn slow_gateway(
    redis: &RedisServer,
    permits: usize,
    queue: usize,
) -> (TestGateway, Duration) {
    let gateway = TestGateway::start(Config {
        users_file: Some(slow_users_file(&format!("{permits}-{queue}"))),
        login_verifications: Some(permits),
        login_queue: queue,
        ..clustered(&redis.url())
    })
    .await;
    let mut cost = Duration::MAX;
    for _ in 0..2 {
        let started = Instant::now();
        assert_eq!(answer(gateway.url(), "slow", "slow-password").await.0, 200);
        cost = cost.min(started.elapsed());
    }
    (gateway, cost)
}

#[tokio::test]
async fn aborted_logins_never_run_more_verifications_than_permits() {
    let redis = RedisServer::start().await;
    let (gateway, cost) = slow_gateway(&redis, 2, 16).await;
    let url = gateway.url().to_owned();
    let before = verifications(&url).await;

    // Eight logins, each given up by its client long before any verification could end: the
    // i-th after (i + 1) / 32 of one.
    let client = reqwest::Client::new();
    let mut logins = Vec::new();
    for i in 0..8u32 {
        let request = client
            .post(format!("{url}/api/login"))
            .timeout(cost * (i + 1) / 32)
            .json(&json!({"username": "slow", "password": "wrong"}));
        logins.push(tokio::spawn(request.send()));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for login in logins {
        assert!(
            login.await.unwrap().is_err(),
            "a login was answered in time"
        );
    }
    // The verifications that started end.
    tokio::time::sleep(cost * 3).await;
    let ran = verifications(&url).await - before;
    println!("8 aborted logins ran {ran} verifications with 2 permits (one takes {cost:?})");
    assert!(ran <= 2, "{ran} verifications for 2 permits");
    // The permits are back.
    assert_eq!(answer(&url, "slow", "slow-password").await.0, 200);
}

#[tokio::test]
async fn a_full_verification_queue_refuses_at_once_with_503() {
    let redis = RedisServer::start().await;
    let (gateway, cost) = slow_gateway(&redis, 1, 1).await;
    let url = gateway.url().to_owned();
    // One verifying, one waiting: the third is refused at once.
    let mut logins = Vec::new();
    for _ in 0..2 {
        let url = url.clone();
        logins.push(tokio::spawn(async move {
            answer(&url, "slow", "slow-password").await.0
        }));
        tokio::time::sleep(cost / 10).await;
    }
    let started = Instant::now();
    let (status, body) = answer(&url, "slow", "slow-password").await;
    let waited = started.elapsed();
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["error"],
        "unavailable: too many logins in progress, retry later"
    );
    assert!(
        waited < cost / 2,
        "refused after {waited:?} (one verification: {cost:?})"
    );
    for login in logins {
        assert_eq!(login.await.unwrap(), 200);
    }
}
