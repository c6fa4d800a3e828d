//! The gateway's own counters (sessions, rate limits, settings cache), in one struct. Read with
//! `GET /api/stats`, and exported by `GET /metrics` as `gateway_<name>_total`.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Monotonic counters since the process started; shared by every handler through an `Arc`.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Logins that created a session.
    pub(crate) logins: AtomicU64,
    /// Logins refused for a wrong username or password.
    pub(crate) login_failures: AtomicU64,
    /// Socket.IO handshakes refused (no session, expired session, rate limit, store down).
    pub(crate) handshakes_refused: AtomicU64,
    /// Sockets disconnected because their session expired or was deleted (periodic check).
    pub(crate) sessions_expired_disconnects: AtomicU64,
    /// Requests and events refused by a rate limit.
    pub(crate) rate_limited: AtomicU64,
    /// Rate-limit checks allowed because Redis could not be asked in time (fail open).
    pub(crate) rate_limit_fail_open: AtomicU64,
    /// Tenant settings served from the local cache.
    pub(crate) settings_cache_hits: AtomicU64,
    /// Tenant settings read from Redis.
    pub(crate) settings_cache_misses: AtomicU64,
    /// Tenant settings that could not be read from Redis (a stale copy or the defaults served).
    pub(crate) settings_fetch_failures: AtomicU64,
    /// Invalidations of the settings cache received over Pub/Sub.
    pub(crate) settings_invalidations: AtomicU64,
}

/// A copy of [`Stats`] at one moment, as `GET /api/stats` returns it.
#[derive(Debug, Serialize)]
pub(crate) struct StatsSnapshot {
    logins: u64,
    login_failures: u64,
    handshakes_refused: u64,
    sessions_expired_disconnects: u64,
    rate_limited: u64,
    rate_limit_fail_open: u64,
    settings_cache_hits: u64,
    settings_cache_misses: u64,
    settings_fetch_failures: u64,
    settings_invalidations: u64,
}

impl Stats {
    /// Adds one to `counter`.
    pub(crate) fn incr(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Every counter as `(metric name, value)`: `gateway_<field>_total`.
    pub(crate) fn metrics(&self) -> [(&'static str, u64); 10] {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        [
            ("gateway_logins_total", get(&self.logins)),
            ("gateway_login_failures_total", get(&self.login_failures)),
            (
                "gateway_handshakes_refused_total",
                get(&self.handshakes_refused),
            ),
            (
                "gateway_sessions_expired_disconnects_total",
                get(&self.sessions_expired_disconnects),
            ),
            ("gateway_rate_limited_total", get(&self.rate_limited)),
            (
                "gateway_rate_limit_fail_open_total",
                get(&self.rate_limit_fail_open),
            ),
            (
                "gateway_settings_cache_hits_total",
                get(&self.settings_cache_hits),
            ),
            (
                "gateway_settings_cache_misses_total",
                get(&self.settings_cache_misses),
            ),
            (
                "gateway_settings_fetch_failures_total",
                get(&self.settings_fetch_failures),
            ),
            (
                "gateway_settings_invalidations_total",
                get(&self.settings_invalidations),
            ),
        ]
    }

    /// The current values.
    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        StatsSnapshot {
            logins: get(&self.logins),
            login_failures: get(&self.login_failures),
            handshakes_refused: get(&self.handshakes_refused),
            sessions_expired_disconnects: get(&self.sessions_expired_disconnects),
            rate_limited: get(&self.rate_limited),
            rate_limit_fail_open: get(&self.rate_limit_fail_open),
            settings_cache_hits: get(&self.settings_cache_hits),
            settings_cache_misses: get(&self.settings_cache_misses),
            settings_fetch_failures: get(&self.settings_fetch_failures),
            settings_invalidations: get(&self.settings_invalidations),
        }
    }
}
