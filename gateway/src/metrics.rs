//! Prometheus metrics: the process-wide recorder, every metric name the gateway exports, and
//! the helpers the chat handlers call. `GET /metrics` (`http::metrics`) renders the recorder
//! and first sets the values that are read at scrape time (gauges, and counters kept
//! elsewhere: the adapter's [`redis_adapter::Stats`] and the gateway's `counters.rs`).
//!
//! The recorder is installed once per process through the `metrics` facade, so the adapter's
//! own recordings (its publish latency histogram) land in the same registry. There is no
//! exporter HTTP listener: the gateway's axum router serves the text.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Events received from clients, by event name (`unknown` for any name the chat does not
/// handle: a client-chosen name never becomes a label).
pub(crate) const EVENTS_IN: &str = "socketio_events_in_total";
/// Events the gateway emits, by event name; a room broadcast counts once.
pub(crate) const EVENTS_OUT: &str = "socketio_events_out_total";
/// Events refused with an error ack, by event name and reason (see `Error::reason`).
pub(crate) const EVENTS_REJECTED: &str = "socketio_events_rejected_total";
/// Sockets connected to this instance's chat namespace (gauge).
pub(crate) const SOCKETS: &str = "socketio_connected_sockets";
/// Chat rooms with at least one member on this instance (gauge; private user and session
/// rooms are not counted).
pub(crate) const ROOMS: &str = "socketio_rooms";
/// 1 when the gateway's Redis command connection answered a scrape-time `INFO memory` within
/// [`SCRAPE_REDIS_TIMEOUT`], else 0 (gauge; absent in standalone mode).
pub(crate) const REDIS_UP: &str = "redis_up";
/// `used_memory` of `INFO memory`, only present when Redis answered the scrape in time.
pub(crate) const REDIS_MEMORY: &str = "redis_memory_used_bytes";
/// `maxmemory` of `INFO memory` (0: no limit), present when `REDIS_MEMORY` is.
pub(crate) const REDIS_MAXMEMORY: &str = "redis_maxmemory_bytes";
/// `evicted_keys` of `INFO stats`: keys Redis evicted for `maxmemory`, present when
/// `REDIS_MEMORY` is.
pub(crate) const REDIS_EVICTED: &str = "redis_evicted_keys_total";
/// 1 when `GET /readyz` would answer 200 (gauge).
pub(crate) const READY: &str = "gateway_ready";

/// How long a scrape waits for Redis before reporting it down.
pub(crate) const SCRAPE_REDIS_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(250);

/// The Prometheus text format's content type.
pub(crate) const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Length of a room's or conversation's stream after each append (histogram).
pub(crate) const HISTORY_STREAM_LENGTH: &str = "history_stream_length";
/// Messages spooled while Redis could not store them (counter).
pub(crate) const HISTORY_SPOOLED: &str = "history_spooled_total";
/// Messages refused because the spool was full (counter).
pub(crate) const HISTORY_SPOOL_REFUSED: &str = "history_spool_refused_total";
/// Spooled messages stored and published once Redis was back (counter).
pub(crate) const HISTORY_SPOOL_FLUSHED: &str = "history_spool_flushed_total";
/// Messages waiting in the spool (gauge).
pub(crate) const HISTORY_SPOOL_DEPTH: &str = "history_spool_depth";
/// Messages replayed to clients that joined with `since` (counter).
pub(crate) const HISTORY_REPLAYED: &str = "history_replayed_total";
/// Joins with `since` answered `recovered: false` (counter).
pub(crate) const HISTORY_RECOVERY_FAILED: &str = "history_recovery_failures_total";
/// Lines of other instances sent to this instance's members from the streams after a gap
/// in its subscriptions, which they had missed (counter).
pub(crate) const HISTORY_MENDED: &str = "history_mended_total";
/// Lines from other instances dropped because a mend had sent them already (counter).
pub(crate) const HISTORY_MEND_DUPLICATES: &str = "history_mend_duplicates_dropped_total";
/// Rooms a mend could not read, or whose gap was longer than it reads (counter).
pub(crate) const HISTORY_MEND_FAILED: &str = "history_mend_failures_total";
/// Stream entries that did not decode as messages, skipped (counter).
pub(crate) const HISTORY_UNDECODABLE: &str = "history_undecodable_entries_total";
/// Ids this instance chose for a line that its stream refused, a later id being there
/// already (counter).
pub(crate) const HISTORY_ID_REFUSED: &str = "history_id_refusals_total";
/// Chat lines stored, then published by a second command, on one Redis where the script that
/// stores a line can publish it too (ids refused 3 times, or often lately): such a line may
/// reach other instances after a line stored later (counter).
pub(crate) const HISTORY_PUBLISHED_AFTER_STORE: &str = "history_published_after_store_total";

/// Publish API requests (`POST /api/v1/publish[/batch]`) by outcome: `stored`, `live`,
/// `batch`, `replayed`, or the refusal's reason (counter).
pub(crate) const API_PUBLISH: &str = "gateway_api_publish_total";
/// Messages the publish API delivered, by kind: `stored` (chat messages) or `live` (counter).
pub(crate) const API_MESSAGES: &str = "gateway_api_messages_total";

/// Buckets of the stream length histogram: 1 to 100,000 messages.
const LENGTH_BUCKETS: [f64; 11] = [
    1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 10_000.0, 50_000.0, 100_000.0,
];

/// Buckets of the adapter's publish latency histogram, in seconds: 100 µs to 1 s.
const PUBLISH_BUCKETS: [f64; 13] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// The recorder's handle, installing the recorder on first use. `None` when another global
/// recorder was installed first (metrics are then not ours to render).
pub(crate) fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE.get_or_init(install).as_ref()
}

/// Installs the recorder now, before anything records: what is counted before the recorder
/// exists is lost. Called first thing by the gateway and by `gateway worker`.
pub(crate) fn install_recorder() {
    if handle().is_none() {
        tracing::warn!("metrics are not recorded: another recorder is installed");
    }
}

fn install() -> Option<PrometheusHandle> {
    let installed = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(redis_adapter::PUBLISH_DURATION.to_owned()),
            &PUBLISH_BUCKETS,
        )
        .and_then(|builder| {
            builder.set_buckets_for_metric(
                Matcher::Full(HISTORY_STREAM_LENGTH.to_owned()),
                &LENGTH_BUCKETS,
            )
        })
        .and_then(PrometheusBuilder::install_recorder);
    match installed {
        Ok(handle) => Some(handle),
        Err(err) => {
            tracing::warn!(%err, "cannot install the Prometheus recorder: /metrics stays empty");
            None
        }
    }
}

/// Counts one incoming event `event`.
pub(crate) fn event_in(event: &'static str) {
    metrics::counter!(EVENTS_IN, "event" => event).increment(1);
}

/// Counts one emit of `event` (to one socket or one room).
pub(crate) fn event_out(event: &'static str) {
    metrics::counter!(EVENTS_OUT, "event" => event).increment(1);
}

/// Counts one `event` refused for `reason`.
pub(crate) fn rejected(event: &'static str, reason: &'static str) {
    metrics::counter!(EVENTS_REJECTED, "event" => event, "reason" => reason).increment(1);
}

/// Sets counter `name` to `value`, for counters kept elsewhere and read at scrape time.
pub(crate) fn counter_at(name: &'static str, value: u64) {
    metrics::counter!(name).absolute(value);
}

/// Sets gauge `name` to `value`.
pub(crate) fn gauge(name: &'static str, value: f64) {
    metrics::gauge!(name).set(value);
}

/// Counts one publish API request that ended with `outcome`.
pub(crate) fn api_publish(outcome: &'static str) {
    metrics::counter!(API_PUBLISH, "outcome" => outcome).increment(1);
}

/// Counts `count` messages of `kind` the publish API delivered.
pub(crate) fn api_messages(kind: &'static str, count: usize) {
    if count > 0 {
        metrics::counter!(API_MESSAGES, "kind" => kind)
            .increment(u64::try_from(count).unwrap_or(u64::MAX));
    }
}

/// Records a stream's length after an append.
pub(crate) fn stream_length(length: u64) {
    #[expect(clippy::cast_precision_loss, reason = "a histogram of lengths")]
    metrics::histogram!(HISTORY_STREAM_LENGTH).record(length as f64);
}

/// Counts one id a stream refused (another instance's line took it, or this clock is behind).
pub(crate) fn id_refused() {
    metrics::counter!(HISTORY_ID_REFUSED).increment(1);
}

/// Counts one chat line stored, then published by a second command, on one Redis.
pub(crate) fn published_after_store() {
    metrics::counter!(HISTORY_PUBLISHED_AFTER_STORE).increment(1);
}

/// Counts one message spooled.
pub(crate) fn spooled() {
    metrics::counter!(HISTORY_SPOOLED).increment(1);
}

/// Counts one message refused for a full spool.
pub(crate) fn spool_refused() {
    metrics::counter!(HISTORY_SPOOL_REFUSED).increment(1);
}

/// Counts one spooled message stored and published.
pub(crate) fn spool_flushed() {
    metrics::counter!(HISTORY_SPOOL_FLUSHED).increment(1);
}

/// Counts `count` messages replayed.
pub(crate) fn replayed(count: usize) {
    metrics::counter!(HISTORY_REPLAYED).increment(u64::try_from(count).unwrap_or(u64::MAX));
}

/// Counts `count` lines mended after a gap in the subscriptions.
pub(crate) fn mended(count: usize) {
    metrics::counter!(HISTORY_MENDED).increment(u64::try_from(count).unwrap_or(u64::MAX));
}

/// Counts one line from another instance dropped as already mended.
pub(crate) fn mend_duplicate() {
    metrics::counter!(HISTORY_MEND_DUPLICATES).increment(1);
}

/// Counts one room a mend could not mend whole.
pub(crate) fn mend_failed() {
    metrics::counter!(HISTORY_MEND_FAILED).increment(1);
}

/// Counts one join with `since` that could not recover.
pub(crate) fn recovery_failed() {
    metrics::counter!(HISTORY_RECOVERY_FAILED).increment(1);
}

/// Counts `count` stream entries skipped because they did not decode.
pub(crate) fn undecodable_entries(count: usize) {
    if count > 0 {
        tracing::warn!(
            count,
            "history: skipped stream entries that are not messages"
        );
        metrics::counter!(HISTORY_UNDECODABLE).increment(u64::try_from(count).unwrap_or(u64::MAX));
    }
}
