//! Any event the chat does not handle: refused with `{error: "unknown event"}` if the client
//! asked for an ack, and counted under the single label `unknown` (the client's event name
//! never becomes a metric label).

use super::{call::Request, reply::Reply};
use crate::refusal::Refusal;

/// The label of every unhandled event in the metrics.
pub(crate) const UNKNOWN: &str = "unknown";

/// The fallback handler: an error ack, in the socket's event order.
pub(crate) async fn unknown(_request: Request) -> Result<Reply, Refusal> {
    Err(Refusal::UnknownEvent)
}
