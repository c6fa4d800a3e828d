//! The gateway's own live counters (sessions, logins, rate limits, settings cache), each named once in
//! the table below: its field, its doc, and so its `GET /api/stats` key (the field name) and
//! its `GET /metrics` name (`gateway_<field>_total`). The adapter's counters are
//! [`redis_adapter::Stats`], a snapshot read from the adapter.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Serialize, Serializer, ser::SerializeMap};

/// One monotonic counter.
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub(crate) fn incr(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One counter as read at one moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reading {
    /// The key in `GET /api/stats`.
    pub(crate) key: &'static str,
    /// The Prometheus name in `GET /metrics`.
    pub(crate) metric: &'static str,
    /// The value.
    pub(crate) value: u64,
}

/// Declares [`Counters`] and [`Counters::read`] from one list of fields.
macro_rules! counters {
    ($($(#[doc = $doc:literal])+ $field:ident,)+) => {
        /// The gateway's counters since the process started; shared through an `Arc`.
        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $($(#[doc = $doc])+ pub(crate) $field: Counter,)+
        }

        impl Counters {
            /// Every counter now, in table order.
            pub(crate) fn read(&self) -> Snapshot {
                Snapshot(vec![$(Reading {
                    key: stringify!($field),
                    metric: concat!("gateway_", stringify!($field), "_total"),
                    value: self.$field.get(),
                },)+])
            }
        }
    };
}

counters! {
    /// Logins that created a session.
    logins,
    /// Logins refused for a wrong username or password.
    login_failures,
    /// Socket.IO handshakes refused (no session, expired session, rate limit, store down).
    handshakes_refused,
    /// Sockets disconnected because their session expired or was deleted (periodic check).
    sessions_expired_disconnects,
    /// Requests and events refused by a rate limit.
    rate_limited,
    /// Rate-limit checks Redis could not answer in time, counted by this instance alone.
    rate_limit_local,
    /// Password verifications started (argon2; unknown usernames verify a dummy hash).
    password_verifications,
    /// Logins refused by the failed-login throttle (per username and address, or per username
    /// from an address without a recent successful login).
    login_throttled,
    /// New engine.io sessions refused: their client address had opened
    /// `--max-opens-per-address` within one connect timeout.
    engineio_opens_refused,
    /// Tenant settings served from the local cache.
    settings_cache_hits,
    /// Tenant settings read from Redis.
    settings_cache_misses,
    /// Tenant settings that could not be read from Redis (a stale copy or the defaults served).
    settings_fetch_failures,
    /// Invalidations of the settings cache received over Pub/Sub.
    settings_invalidations,
    /// Jobs this instance put in the Redis job queue (at once, or from the spool later).
    jobs_enqueued,
    /// Jobs spooled in memory because Redis could not take them at once.
    jobs_spooled,
    /// Jobs dropped: the spool was full, or the job over the size limit.
    jobs_dropped,
}

/// Every counter at one moment; serializes as `GET /api/stats`'s `{key: value}` object.
#[derive(Debug)]
pub(crate) struct Snapshot(Vec<Reading>);

impl Snapshot {
    /// The readings, in table order.
    pub(crate) fn readings(&self) -> &[Reading] {
        &self.0
    }
}

impl Serialize for Snapshot {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for reading in &self.0 {
            map.serialize_entry(reading.key, &reading.value)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_name_per_counter() {
        let counters = Counters::default();
        counters.rate_limited.incr();
        let snapshot = counters.read();
        let limited = snapshot
            .readings()
            .iter()
            .find(|reading| reading.key == "rate_limited");
        assert_eq!(
            limited.map(|r| (r.metric, r.value)),
            Some(("gateway_rate_limited_total", 1))
        );
        let json = serde_json::to_value(&snapshot).unwrap_or_default();
        assert_eq!(json["rate_limited"], 1);
        assert_eq!(json["logins"], 0);
    }
}
