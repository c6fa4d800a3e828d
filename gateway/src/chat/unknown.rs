//! Any event the chat does not handle: refused with `{error: "unknown event"}` if the client
//! asked for an ack, and counted under the single label `unknown` (the client's event name
//! never becomes a metric label).

use super::{call::Call, reply::answer};
use crate::refusal::Refusal;

/// The label of every unhandled event in the metrics.
const UNKNOWN: &str = "unknown";

/// The fallback handler: an error ack, in the socket's event order.
pub(crate) async fn unknown(call: Call) {
    answer(UNKNOWN, call.turn, call.ack, async {
        Err(Refusal::UnknownEvent)
    })
    .await;
}
