//! Background jobs on a real Redis, run by `gateway worker` child processes: retries,
//! dead letters and their requeue, a killed worker's job taken over, jobs spooled through a
//! Redis outage, graceful stop, the audit log (once per event id) and the outbox.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use gateway::testing::TestJobs;
use serde_json::{Value, json};
use test_support::{RedisServer, eventually_async};

use crate::support::{
    ChildGateway, TestGateway, assert_disconnected, clustered, connect_token, login, metric,
};

/// Long enough for a few retries and a takeover with the timings below.
const WAIT: Duration = Duration::from_secs(20);
/// The visibility timeout of the test workers.
const VISIBILITY: &str = "1s";
const STREAM: &str = "socket.io:jobs:{default}:stream";

/// A directory of this test's own, emptied.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gateway-jobs-{}-{name}", std::process::id()));
    let _fresh = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
    dir
}

/// The flags of a test worker on `redis`: fast timings, test faults on, plus `extra`.
fn worker_args(redis: &RedisServer, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--redis-url",
        &redis.url(),
        "--job-visibility-timeout",
        VISIBILITY,
        "--job-backoff",
        "100ms",
        "--test-faults",
    ]
    .iter()
    .map(|arg| (*arg).to_owned())
    .collect();
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    args
}

/// The value of `series` on the worker's `/metrics` (`None` when absent).
async fn worker_metric(worker: &ChildGateway, series: &str) -> Option<f64> {
    let body = reqwest::get(format!("{}/metrics", worker.url()))
        .await
        .expect("GET /metrics of the worker")
        .text()
        .await
        .expect("a text body");
    metric(&body, series)
}

/// Waits until `series` on `worker` is `value`.
async fn wait_metric(worker: &ChildGateway, series: &str, value: f64) {
    let reached = eventually_async(WAIT, || async {
        worker_metric(worker, series).await == Some(value)
    })
    .await;
    assert!(
        reached,
        "{series} is {:?}, not {value}",
        worker_metric(worker, series).await
    );
}

/// Deliveries read by a worker and not settled yet.
async fn pending(redis: &RedisServer) -> u64 {
    let mut conn = redis.connection().await;
    let summary: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg(STREAM)
        .arg("workers")
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    match summary.first() {
        Some(redis::Value::Int(n)) => u64::try_from(*n).unwrap_or_default(),
        _ => 0,
    }
}

/// Jobs in the stream: not done yet.
async fn not_done(redis: &RedisServer) -> u64 {
    let mut conn = redis.connection().await;
    redis::cmd("XLEN")
        .arg(STREAM)
        .query_async(&mut conn)
        .await
        .expect("XLEN of the job stream")
}

/// Runs `gateway jobs dead <args> --redis-url <redis>`; its stdout lines.
fn dead(redis: &RedisServer, args: &[&str]) -> Vec<String> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["jobs", "dead"])
        .args(args)
        .args(["--redis-url", &redis.url()])
        .output()
        .expect("running gateway jobs dead");
    assert!(
        output.status.success(),
        "gateway jobs dead {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The dead letters, as `gateway jobs dead list` prints them.
fn dead_letters(redis: &RedisServer) -> Vec<Value> {
    dead(redis, &["list"])
        .iter()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

/// The audit log's events, once it has at least `n`.
async fn audit_lines(path: &Path, n: usize) -> Vec<Value> {
    let read = || {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON line"))
            .collect::<Vec<Value>>()
    };
    let enough = eventually_async(WAIT, || async { read().len() >= n }).await;
    assert!(enough, "the audit log has {:?}", read());
    read()
}

#[tokio::test]
async fn a_job_failing_twice_succeeds_on_the_third_attempt() {
    let redis = RedisServer::start().await;
    let worker = ChildGateway::worker(&worker_args(&redis, &[])).await;
    let jobs = TestJobs::connect(&redis.url()).await;
    jobs.fault(2, Duration::ZERO).await;
    wait_metric(&worker, r#"jobs_processed_total{kind="fault"}"#, 1.0).await;
    assert_eq!(
        worker_metric(&worker, r#"jobs_retries_total{kind="fault"}"#).await,
        Some(2.0)
    );
    assert_eq!(
        worker_metric(&worker, r#"jobs_dead_total{kind="fault"}"#).await,
        None
    );
    // Done means gone from the stream: nothing waits, nothing is late.
    assert_eq!(worker_metric(&worker, "jobs_queue_depth").await, Some(0.0));
    assert_eq!(worker_metric(&worker, "jobs_scheduled").await, Some(0.0));
    assert!(dead_letters(&redis).is_empty());
}

#[tokio::test]
async fn jobs_done_before_the_first_scrape_are_counted() {
    let redis = RedisServer::start().await;
    let worker = ChildGateway::worker(&worker_args(&redis, &[])).await;
    let jobs = TestJobs::connect(&redis.url()).await;
    jobs.fault(0, Duration::ZERO).await;
    // Done as Redis sees it (settled: gone from the stream), and only then scraped.
    let done = eventually_async(WAIT, || async {
        not_done(&redis).await == 0 && pending(&redis).await == 0
    })
    .await;
    assert!(done, "the worker did not run the job");
    assert_eq!(
        worker_metric(&worker, r#"jobs_processed_total{kind="fault"}"#).await,
        Some(1.0)
    );
}

#[tokio::test]
async fn a_delayed_job_runs_once_due() {
    let redis = RedisServer::start().await;
    let worker = ChildGateway::worker(&worker_args(&redis, &[])).await;
    let jobs = TestJobs::connect(&redis.url()).await;
    let enqueued = std::time::Instant::now();
    jobs.fault_in(0, Duration::ZERO, Duration::from_millis(1500))
        .await;
    assert_eq!(worker_metric(&worker, "jobs_scheduled").await, Some(1.0));
    wait_metric(&worker, r#"jobs_processed_total{kind="fault"}"#, 1.0).await;
    assert!(
        enqueued.elapsed() >= Duration::from_millis(1500),
        "ran after {:?}",
        enqueued.elapsed()
    );
}

#[tokio::test]
async fn a_job_failing_every_attempt_is_a_dead_letter_and_requeue_brings_it_back() {
    let redis = RedisServer::start().await;
    let worker = ChildGateway::worker(&worker_args(&redis, &["--job-attempts", "3"])).await;
    let jobs = TestJobs::connect(&redis.url()).await;
    jobs.fault(u32::MAX, Duration::ZERO).await;
    wait_metric(&worker, r#"jobs_dead_total{kind="fault"}"#, 1.0).await;
    // A retry is counted once Redis took it, which a busy machine may do after the job's
    // next attempt already ran: waited for, not read once.
    wait_metric(&worker, r#"jobs_retries_total{kind="fault"}"#, 2.0).await;
    let letters = dead_letters(&redis);
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter["kind"], "fault", "{letter}");
    assert_eq!(letter["attempts"], 3, "{letter}");
    assert_eq!(letter["error"], "injected failure 3", "{letter}");
    let job_id = letter["job_id"].as_str().expect("a job id").to_owned();

    assert_eq!(
        dead(&redis, &["requeue", &job_id]),
        ["requeued 1 dead letter(s)"]
    );
    // Back with its attempts from zero: three more attempts, then dead again.
    wait_metric(&worker, r#"jobs_dead_total{kind="fault"}"#, 2.0).await;
    assert_eq!(
        worker_metric(&worker, r#"jobs_retries_total{kind="fault"}"#).await,
        Some(4.0)
    );
    let letters = dead_letters(&redis);
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["job_id"], job_id.as_str());
    assert_eq!(
        dead(&redis, &["requeue", "--all"]),
        ["requeued 1 dead letter(s)"]
    );
}

#[tokio::test]
async fn a_killed_workers_job_is_taken_over_by_another_worker() {
    let redis = RedisServer::start().await;
    let mut first = ChildGateway::worker(&worker_args(&redis, &[])).await;
    let jobs = TestJobs::connect(&redis.url()).await;
    jobs.fault(0, Duration::from_secs(4)).await;
    let taken = eventually_async(WAIT, || async { pending(&redis).await == 1 }).await;
    assert!(taken, "the first worker did not take the job");
    let second = ChildGateway::worker(&worker_args(&redis, &[])).await;
    // Longer than the visibility timeout: the running job is kept alive, not taken over.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(worker_metric(&second, "jobs_claimed_total").await, None);

    first.kill();
    wait_metric(&second, "jobs_claimed_total", 1.0).await;
    wait_metric(&second, r#"jobs_processed_total{kind="fault"}"#, 1.0).await;
    assert_eq!(pending(&redis).await, 0);
}

#[tokio::test]
async fn sigterm_lets_the_running_job_finish() {
    let redis = RedisServer::start().await;
    let mut worker = ChildGateway::worker(&worker_args(&redis, &[])).await;
    let jobs = TestJobs::connect(&redis.url()).await;
    jobs.fault(0, Duration::from_millis(1500)).await;
    let taken = eventually_async(WAIT, || async { pending(&redis).await == 1 }).await;
    assert!(taken, "the worker did not take the job");
    worker.terminate();
    let status = worker.wait_exit(Duration::from_secs(10)).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    // Finished and settled before the exit.
    assert_eq!(pending(&redis).await, 0);
    assert_eq!(not_done(&redis).await, 0);
}

#[tokio::test]
async fn jobs_enqueued_while_redis_is_down_run_once_it_is_back() {
    let mut redis = RedisServer::start().await;
    let dir = scratch("outage");
    let audit = dir.join("audit.jsonl");
    // One job at a time: the lines are in the order the jobs reached Redis.
    let mut worker = ChildGateway::worker(&worker_args(
        &redis,
        &[
            "--audit-log",
            audit.to_str().expect("a UTF-8 path"),
            "--concurrency",
            "1",
        ],
    ))
    .await;
    let jobs = TestJobs::connect(&redis.url()).await;
    jobs.audit_login("before", "acme", "alice").await;
    assert_eq!(audit_lines(&audit, 1).await.len(), 1);

    // Redis persists what it holds (the consumer group), then crashes.
    let mut conn = redis.connection().await;
    let _: () = redis::cmd("SAVE").query_async(&mut conn).await.unwrap();
    redis.kill();
    for i in 0..3 {
        jobs.audit_login(&format!("during-{i}"), "acme", "alice")
            .await;
    }
    assert_eq!(jobs.spooled(), 3, "enqueued during the outage: spooled");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(worker.is_running(), "the worker died with Redis");

    redis.restart().await;
    let lines = audit_lines(&audit, 4).await;
    let ids: Vec<&str> = lines
        .iter()
        .map(|line| line["event_id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ids, ["before", "during-0", "during-1", "during-2"]);
    assert_eq!(jobs.spooled(), 0);
    assert!(worker.is_running());
}

#[tokio::test]
async fn an_audit_event_delivered_twice_is_written_once() {
    let redis = RedisServer::start().await;
    let dir = scratch("twice");
    let audit = dir.join("audit.jsonl");
    let worker = ChildGateway::worker(&worker_args(
        &redis,
        &["--audit-log", audit.to_str().expect("a UTF-8 path")],
    ))
    .await;
    let jobs = TestJobs::connect(&redis.url()).await;
    jobs.audit_login("evt-1", "acme", "alice").await;
    jobs.audit_login("evt-1", "acme", "alice").await;
    jobs.audit_login("evt-2", "acme", "bob").await;
    wait_metric(&worker, r#"jobs_processed_total{kind="audit"}"#, 3.0).await;
    let lines = audit_lines(&audit, 2).await;
    let ids: Vec<&str> = lines
        .iter()
        .map(|line| line["event_id"].as_str().unwrap_or_default())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["evt-1", "evt-2"], "{lines:?}");
    assert_eq!(lines[0]["event"], "login");
}

#[tokio::test]
async fn the_gateway_audits_logins_settings_logouts_and_ended_sessions() {
    let redis = RedisServer::start().await;
    let dir = scratch("gateway");
    let audit = dir.join("audit.jsonl");
    let _worker = ChildGateway::worker(&worker_args(
        &redis,
        &["--audit-log", audit.to_str().expect("a UTF-8 path")],
    ))
    .await;
    let gateway = TestGateway::start(gateway::Config {
        session_check_interval: Duration::from_secs(1),
        ..clustered(&redis.url())
    })
    .await;
    let url = gateway.url();
    let alice = login(url, "alice").await;
    let http = reqwest::Client::new();
    let put = http
        .put(format!("{url}/api/admin/tenants/acme/settings"))
        .bearer_auth(&alice)
        .json(&json!({"max_message_length": 500, "max_room_members": 100}))
        .send()
        .await
        .expect("PUT settings");
    assert_eq!(put.status(), 200);
    let logout = http
        .post(format!("{url}/api/logout"))
        .bearer_auth(&alice)
        .send()
        .await
        .expect("POST /api/logout");
    assert_eq!(logout.status(), 204);

    // Bob's session deleted behind the gateway's back: the session check ends it.
    let bob = login(url, "bob").await;
    let mut socket = connect_token(url, &bob).await;
    let mut conn = redis.connection().await;
    let sessions: Vec<String> = redis::cmd("KEYS")
        .arg("socket.io:session:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1, "only bob's session is left");
    let _: () = redis::cmd("DEL")
        .arg(&sessions[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_disconnected(&mut socket, Duration::from_secs(5)).await;

    // Audit jobs run concurrently: the log holds each event once, in no promised order.
    let lines = audit_lines(&audit, 5).await;
    let mut events: Vec<(&str, &str)> = lines
        .iter()
        .map(|line| {
            (
                line["event"].as_str().unwrap_or_default(),
                line["user"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    events.sort_unstable();
    assert_eq!(
        events,
        [
            ("login", "alice"),
            ("login", "bob"),
            ("logout", "alice"),
            ("session_ended", "bob"),
            ("settings_changed", "alice"),
        ]
    );
    let line = |event: &str, user: &str| {
        lines
            .iter()
            .find(|line| line["event"] == event && line["user"] == user)
            .unwrap_or_else(|| panic!("no {event} of {user} in {lines:?}"))
    };
    assert!(lines.iter().all(|line| line["tenant"] == "acme"));
    assert_eq!(
        line("settings_changed", "alice")["detail"]["settings"]["max_message_length"],
        500
    );
    assert_eq!(
        line("login", "alice")["session"],
        line("logout", "alice")["session"]
    );
    let stats = crate::support::stats(url).await;
    assert_eq!(stats["jobs_enqueued"], 5, "{stats}");
    assert_eq!(stats["jobs_dropped"], 0, "{stats}");
}

#[tokio::test]
async fn a_dm_notification_is_rendered_into_the_outbox_once() {
    let redis = RedisServer::start().await;
    let outbox = scratch("outbox");
    let worker = ChildGateway::worker(&worker_args(
        &redis,
        &["--outbox", outbox.to_str().expect("a UTF-8 path")],
    ))
    .await;
    let jobs = TestJobs::connect(&redis.url()).await;
    for _ in 0..2 {
        jobs.dm_notification("acme", "bob", "alice", "are you there?\nping", "abc123-7")
            .await;
    }
    wait_metric(
        &worker,
        r#"jobs_processed_total{kind="dm_notification"}"#,
        2.0,
    )
    .await;
    let files: Vec<String> = std::fs::read_dir(&outbox)
        .expect("the outbox")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(files, ["abc123-7.eml"], "one file, no temporary left");
    let mail = std::fs::read_to_string(outbox.join("abc123-7.eml")).expect("the mail");
    assert!(mail.contains("To: bob@acme\r\n"), "{mail}");
    assert!(
        mail.contains("Subject: New message from alice\r\n"),
        "{mail}"
    );
    assert!(mail.ends_with("are you there?\r\nping\r\n"), "{mail}");
}

#[tokio::test]
async fn a_dm_to_an_offline_user_lands_in_the_outbox() {
    let redis = RedisServer::start().await;
    let outbox = scratch("offline-dm");
    let _worker = ChildGateway::worker(&worker_args(
        &redis,
        &["--outbox", outbox.to_str().expect("a UTF-8 path")],
    ))
    .await;
    let gateway = TestGateway::start(clustered(&redis.url())).await;
    let alice = crate::support::connect_user(gateway.url(), "alice").await;
    let ack = crate::support::ack(&alice, "dm", json!({"to": "bob", "text": "call me"})).await;
    let id = ack["id"].as_str().expect("a message id").to_owned();
    let file = outbox.join(format!("{id}.eml"));
    let written = eventually_async(WAIT, || async { file.exists() }).await;
    assert!(written, "no {}", file.display());
    let mail = std::fs::read_to_string(&file).expect("the mail");
    assert!(
        mail.contains("To: bob@acme\r\n") && mail.contains("call me"),
        "{mail}"
    );
}
