//! `--via http`: publishes through the gateway's HTTP publish API from this process:
//! `POST {api}/api/v1/publish` with `Authorization: Bearer <key>` and
//! `{"room": <room>, "event": <event>, "data": <tick>}`, answered `202 {"key": ...}`.
//!
//! One HTTP client whose connections are kept alive, and at most `--max-in-flight` requests
//! at once (so at most as many connections). Publish `i` starts when it is due and a request
//! slot is free: one late for lack of a slot goes as soon as one frees, the later ones keep
//! their due times. The time from the send to the answer goes into the report's `ack_ms`.
//!
//! Accounting: a 2xx answer is accepted and owed to the room's members; another status is
//! refused, owed to nobody, and counted by status; a request that could not connect was not
//! sent; one without an answer in time (`timeout`) or that failed after it was sent (`http`)
//! is in doubt and owed, as an unanswered chat message is.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, RequestBuilder, header::AUTHORIZATION};
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until, timeout_at};

use super::{PublishConfig, Published};
use crate::Error;
use crate::pacing::Pacing;
use crate::stats::Stats;
use crate::tick::{Tick, wall_micros};

/// The publish API's route.
pub(super) const PATH: &str = "/api/v1/publish";
/// Longest part of a refusal's body kept as the failure sample.
const SAMPLE_BYTES: usize = 200;

/// How one publish request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// A 2xx answer.
    Accepted,
    /// Another status, with the start of the body.
    Refused { status: u16, body: String },
    /// No connection: not sent.
    NotSent(String),
    /// Sent, no answer (`timeout`, `http`): in doubt.
    InDoubt { kind: &'static str, error: String },
}

/// One finished request: its room, when its answer came, its time from send to answer and
/// how it ended.
struct Done {
    room: usize,
    answered: Instant,
    took: Duration,
    outcome: Outcome,
}

/// Publishes on `pacing`'s schedule to `rooms` (publish `i` to room `i mod rooms`), then
/// waits up to `--timeout` for the last answers.
pub(super) async fn publish(
    config: &PublishConfig,
    rooms: &[Arc<str>],
    pacing: Pacing,
    stats: &Stats,
) -> Result<Published, Error> {
    let timeout = config.common.timeout;
    let slots = usize::try_from(config.max_in_flight).unwrap_or(1).max(1);
    let client = Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(slots)
        .timeout(timeout)
        .build()
        .map_err(|e| Error::Setup(format!("the HTTP client: {e}")))?;
    let base = config
        .api_url
        .as_deref()
        .or_else(|| config.common.urls.first().map(String::as_str))
        .unwrap_or_default();
    let endpoint = format!("{}{PATH}", base.trim_end_matches('/'));
    let bearer = format!("Bearer {}", config.api_key.as_deref().unwrap_or_default());
    let free = Arc::new(Semaphore::new(slots));
    let room_count = u64::try_from(rooms.len().max(1)).unwrap_or(u64::MAX);
    let mut published = Published {
        owed: vec![0; rooms.len()],
        ..Published::default()
    };
    let mut requests = JoinSet::new();
    let mut last_answer = None;
    let start = Instant::now();
    let mut i = 0u64;
    while let Some(due) = pacing.due(i) {
        sleep_until(start + due).await;
        let Ok(slot) = free.clone().acquire_owned().await else {
            break;
        };
        let room = usize::try_from(i % room_count).unwrap_or_default();
        let tick = Tick {
            room: u32::try_from(room).unwrap_or(u32::MAX),
            seq: u32::try_from(i / room_count).unwrap_or(u32::MAX),
            sent_us: wall_micros(),
        };
        let body = json!({
            "room": rooms.get(room).map_or("", |name| &**name),
            "event": config.event,
            "data": tick.data(config.pad_bytes),
        });
        let request = client
            .post(&endpoint)
            .header(AUTHORIZATION, &bearer)
            .json(&body);
        let sent = Instant::now();
        requests.spawn(async move {
            let outcome = send(request).await;
            drop(slot);
            let answered = Instant::now();
            Done {
                room,
                answered,
                took: answered - sent,
                outcome,
            }
        });
        published.attempted += 1;
        i += 1;
        while let Some(done) = requests.try_join_next() {
            tally(&mut published, &mut last_answer, stats, done.ok());
        }
    }
    let deadline = Instant::now() + timeout + super::super::SLACK;
    while let Ok(Some(done)) = timeout_at(deadline, requests.join_next()).await {
        tally(&mut published, &mut last_answer, stats, done.ok());
    }
    requests.abort_all();
    published.elapsed = last_answer.map_or(Duration::ZERO, |at: Instant| at - start);
    Ok(published)
}

/// Sends one request and reads its answer.
async fn send(request: RequestBuilder) -> Outcome {
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            // Read to the end, so that the connection can carry the next request.
            let body = response.bytes().await.unwrap_or_default();
            if status.is_success() {
                Outcome::Accepted
            } else {
                let text = String::from_utf8_lossy(&body);
                Outcome::Refused {
                    status: status.as_u16(),
                    body: text.chars().take(SAMPLE_BYTES).collect(),
                }
            }
        }
        Err(e) if e.is_connect() => Outcome::NotSent(e.to_string()),
        Err(e) => Outcome::InDoubt {
            kind: if e.is_timeout() { "timeout" } else { "http" },
            error: e.to_string(),
        },
    }
}

/// Counts one finished request (`None`: its task failed) into `published` and `stats`.
fn tally(
    published: &mut Published,
    last_answer: &mut Option<Instant>,
    stats: &Stats,
    done: Option<Done>,
) {
    let Some(done) = done else {
        published
            .failures
            .add("task", || "a request task failed".to_owned());
        return;
    };
    *last_answer = (*last_answer).max(Some(done.answered));
    let owed = match done.outcome {
        Outcome::Accepted => {
            published.accepted += 1;
            let stripe = u32::try_from(done.room).unwrap_or_default();
            stats.ack.record(stripe, done.took);
            true
        }
        Outcome::Refused { status, body } => {
            published
                .failures
                .add(&status.to_string(), || format!("HTTP {status}: {body}"));
            false
        }
        Outcome::NotSent(error) => {
            published.failures.add("connect", || error);
            false
        }
        Outcome::InDoubt { kind, error } => {
            published.failures.add(kind, || error);
            true
        }
    };
    if owed {
        if let Some(count) = published.owed.get_mut(done.room) {
            *count += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::{Json, Router, routing::post};
    use serde_json::Value;

    use super::*;
    use crate::config::Common;
    use crate::scenarios::publish::Via;

    /// What the fake API saw.
    #[derive(Default)]
    struct Seen {
        bodies: Mutex<Vec<Value>>,
        authorizations: Mutex<Vec<String>>,
        in_flight: AtomicUsize,
        most_in_flight: AtomicUsize,
    }

    /// A fake publish API on a free loopback port: 202 `{key}`, except 429 for room 0's
    /// second publish; each answer waits 20 ms.
    async fn fake_api() -> (String, Arc<Seen>) {
        async fn handle(
            State(seen): State<Arc<Seen>>,
            headers: HeaderMap,
            Json(body): Json<Value>,
        ) -> (StatusCode, Json<Value>) {
            let now = seen.in_flight.fetch_add(1, SeqCst) + 1;
            seen.most_in_flight.fetch_max(now, SeqCst);
            let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
            seen.authorizations
                .lock()
                .unwrap()
                .push(auth.unwrap_or_default().to_owned());
            let refused = body["data"]["room"] == 0 && body["data"]["seq"].as_u64() == Some(1);
            seen.bodies.lock().unwrap().push(body);
            tokio::time::sleep(Duration::from_millis(20)).await;
            seen.in_flight.fetch_sub(1, SeqCst);
            if refused {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(json!({"error": "rate_limited"})),
                )
            } else {
                (StatusCode::ACCEPTED, Json(json!({"key": "k"})))
            }
        }
        let seen = Arc::new(Seen::default());
        let app = Router::new()
            .route(PATH, post(handle))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, seen)
    }

    fn config(url: &str, max_in_flight: u32) -> PublishConfig {
        let common = Common::new([url]);
        let duration = Duration::from_millis(100);
        let mut config = PublishConfig::new(common, 4, 2, 200.0, duration, Via::Http);
        config.pad_bytes = 3;
        config.api_key = Some("secret".to_owned());
        config.max_in_flight = max_in_flight;
        config
    }

    #[tokio::test]
    async fn publishes_carry_the_key_and_the_tick_and_refusals_are_counted_by_status() {
        let (url, seen) = fake_api().await;
        let config = config(&url, 2);
        let rooms: Vec<Arc<str>> = vec!["r0".into(), "r1".into()];
        let stats = Stats::default();
        let published = publish(&config, &rooms, config.pacing(), &stats)
            .await
            .unwrap();
        // 200/s for 100 ms: 20 publishes, 10 per room; room 0's seq 1 refused.
        assert_eq!((published.attempted, published.accepted), (20, 19));
        assert_eq!(published.owed, vec![9, 10]);
        let (failures, sample) = published.failures.snapshot();
        assert_eq!(
            failures.into_iter().collect::<Vec<_>>(),
            [("429".to_owned(), 1)]
        );
        assert!(sample.unwrap().contains("rate_limited"));
        assert_eq!(stats.ack.quantiles().count, 19);
        // At 20 ms an answer, two slots hold the rate to about 100/s: 20 take about 200 ms.
        assert!(
            published.elapsed >= Duration::from_millis(180),
            "{published:?}"
        );
        assert_eq!(seen.most_in_flight.load(SeqCst), 2);

        let bodies = seen.bodies.lock().unwrap();
        let first = bodies
            .iter()
            .find(|b| b["data"]["seq"] == 0 && b["room"] == "r1");
        let first = first.expect("room 1's first publish");
        assert_eq!(first["event"], "tick");
        assert_eq!(first["data"]["room"], 1);
        assert_eq!(first["data"]["pad"], "xxx");
        assert!(first["data"]["sent_us"].as_u64().unwrap() > 0);
        let auths = seen.authorizations.lock().unwrap();
        assert!(auths.iter().all(|a| a == "Bearer secret"), "{auths:?}");
    }

    #[tokio::test]
    async fn an_api_that_is_not_there_is_counted_as_not_sent_and_owed_to_nobody() {
        let port = test_support::free_port();
        let config = config(&format!("http://127.0.0.1:{port}"), 4);
        let stats = Stats::default();
        let rooms: Vec<Arc<str>> = vec!["r0".into()];
        let published = publish(&config, &rooms, config.pacing(), &stats)
            .await
            .unwrap();
        assert_eq!((published.attempted, published.accepted), (20, 0));
        assert_eq!(published.owed, vec![0]);
        let (failures, _) = published.failures.snapshot();
        assert_eq!(failures.get("connect"), Some(&20), "{failures:?}");
    }
}
