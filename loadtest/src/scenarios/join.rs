//! Joining a room the way the chat protocol asks: `join {room}` with an ack, sent again when
//! the ack is late, because a server may drop events that arrive before its handlers exist.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::stats::{Counters, Stats};
use socketio_client::{ClientError, Connection};

/// How long a `join` ack may take before the join is sent again.
const ACK_TIMEOUT: Duration = Duration::from_secs(1);
/// How many times a `join` is sent again.
const RETRIES: u32 = 5;
/// The longest [`join`] can take, for setup deadlines.
pub(super) const BUDGET: Duration = ACK_TIMEOUT.saturating_mul(RETRIES + 1);

/// Emits `join {room}` and waits for its ack; sent again when the ack does not come within
/// 1 s, up to [`RETRIES`] times, each repeat counted in `join_retries`. True when the server
/// answered `{ok: true}`.
pub(super) async fn join(connection: &Connection, room: &str, stats: &Stats) -> bool {
    #[derive(Serialize)]
    struct Join<'a> {
        room: &'a str,
    }
    for attempt in 0..=RETRIES {
        if attempt > 0 {
            Counters::bump(&stats.counters.join_retries);
        }
        let Ok(pending) = connection.emit_acked("join", &Join { room }).await else {
            return false;
        };
        match pending.wait(ACK_TIMEOUT).await {
            Ok(ack) => return ack.get("ok") == Some(&Value::Bool(true)),
            Err(ClientError::Timeout) => {}
            Err(_) => return false,
        }
    }
    false
}
