//! `POST /bench/burst {room, count}`: for benchmarks only, routed only with
//! `--bench-endpoints`. Emits `count` broadcasts of the chat's `message` event to the room
//! back to back, awaiting each `io.to(room).emit(..)` as application code does, and answers
//! `{emitted, failed, elapsed_ms}` once the loop is done (`elapsed_ms`: the loop's own time).
//! Each text is the load tester's probe `0:<seq>:<µs since the loop started>:` (loadtest
//! `burst`); a `tenant` field, which our gateway reads, is ignored.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::{
    Json,
    extract::{State, rejection::JsonRejection},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use socketioxide::{SocketIo, adapter::Adapter};

/// Most broadcasts one request may ask for.
const MAX_COUNT: u32 = 1_000_000;

/// The request body.
#[derive(Debug, Deserialize)]
pub struct BurstRequest {
    room: String,
    count: u32,
}

/// One broadcast, shaped like the chat's `message`.
#[derive(Serialize)]
struct Message<'a> {
    room: &'a str,
    id: &'a str,
    from: &'a str,
    text: &'a str,
    ts: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// `POST /bench/burst`.
pub async fn burst<A: Adapter>(
    State(io): State<SocketIo<A>>,
    body: Result<Json<BurstRequest>, JsonRejection>,
) -> (StatusCode, Json<Value>) {
    let bad = |why: String| (StatusCode::BAD_REQUEST, Json(json!({ "error": why })));
    let request = match body {
        Ok(Json(request)) => request,
        Err(rejection) => return bad(rejection.body_text()),
    };
    if !(1..=MAX_COUNT).contains(&request.count) {
        return bad(format!("count: 1 to {MAX_COUNT}"));
    }
    let started = Instant::now();
    let (mut emitted, mut failed) = (0u64, 0u64);
    for seq in 0..request.count {
        let micros = started.elapsed().as_micros();
        let text = format!("0:{seq}:{micros}:");
        let id = format!("bench-{seq}");
        let message = Message {
            room: &request.room,
            id: &id,
            from: "bench",
            text: &text,
            ts: now_ms(),
        };
        let Some(chat) = io.of("/") else {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "error": "no chat namespace" })),
            );
        };
        match chat
            .to(request.room.clone())
            .emit("message", &message)
            .await
        {
            Ok(()) => emitted += 1,
            Err(_) => failed += 1,
        }
    }
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    (
        StatusCode::OK,
        Json(json!({ "emitted": emitted, "failed": failed, "elapsed_ms": elapsed_ms })),
    )
}
