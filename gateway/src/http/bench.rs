//! `POST /bench/burst {room, count, tenant?}`: for benchmarks only, routed only with
//! `--bench-endpoints`. Emits `count` broadcasts of the chat's `message` event to the room
//! back to back, awaiting each emit as a chat handler does, and answers
//! `{emitted, failed, elapsed_ms}` once the loop is done (`elapsed_ms`: the loop's own time).
//!
//! The room is `tenant`'s (`dev`, the standalone tenant, when absent). Each broadcast is
//! `message {room, id, from: "bench", text, ts}` whose text is the load tester's probe:
//! sender 0, the sequence number from 0 and the microseconds since the loop started,
//! `0:<seq>:<µs>:` (see the load tester's `burst` scenario).

use std::time::Instant;

use axum::{
    Json,
    extract::{State, rejection::JsonRejection},
};
use serde::{Deserialize, Serialize};

use super::HttpState;
use crate::{ids::now_ms, refusal::Refusal, tenancy, validate};

/// Most broadcasts one request may ask for.
const MAX_COUNT: u32 = 1_000_000;

/// The request body.
#[derive(Debug, Deserialize)]
pub(super) struct BurstRequest {
    room: String,
    count: u32,
    #[serde(default)]
    tenant: Option<String>,
}

/// The answer.
#[derive(Debug, Serialize)]
pub(super) struct BurstAnswer {
    emitted: u64,
    failed: u64,
    elapsed_ms: f64,
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

/// `POST /bench/burst`.
pub(super) async fn burst(
    State(state): State<HttpState>,
    body: Result<Json<BurstRequest>, JsonRejection>,
) -> Result<Json<BurstAnswer>, Refusal> {
    let Json(request) = body.map_err(|rejection| Refusal::InvalidPayload(rejection.body_text()))?;
    let tenant = request.tenant.as_deref().unwrap_or(tenancy::DEV_TENANT);
    if !tenancy::valid_id(tenant) {
        return Err(Refusal::InvalidPayload("invalid tenant".to_owned()));
    }
    validate::room(&request.room)?;
    if !(1..=MAX_COUNT).contains(&request.count) {
        return Err(Refusal::InvalidPayload(format!("count: 1 to {MAX_COUNT}")));
    }
    let room = tenancy::room(tenant, &request.room);
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
        match state
            .chat
            .to([room.clone()])
            .emit("message", &message)
            .await
        {
            Ok(_) => emitted += 1,
            Err(_) => failed += 1,
        }
    }
    Ok(Json(BurstAnswer {
        emitted,
        failed,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
    }))
}
