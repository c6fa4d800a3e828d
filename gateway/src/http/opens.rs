//! New engine.io sessions per client address, capped in process through the engine's admission
//! hook, before a session exists.
//!
//! An engine.io session is open, unauthenticated, from its first request (a polling `GET` or a
//! websocket upgrade without `sid`) until it joins the chat namespace; the engine closes one
//! that has not joined within `--connect-timeout`. So the sessions one address opened within
//! the last connect timeout bound the unauthenticated sessions it holds: beyond
//! `--max-opens-per-address` of them the open is refused with 429 `rate_limited` and counted
//! in `gateway_engineio_opens_refused_total`. Counted per instance, in fixed windows of one
//! connect timeout, in a table of at most [`MAX_ADDRESSES`] addresses (when full of live
//! windows, opens from new addresses are let through uncounted rather than refused).

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use engine::server::Admission;

use crate::{counters::Counters, refusal::Refusal, request::TrustedProxies};

/// Addresses tracked at once: bounds the table's memory (a few MB).
const MAX_ADDRESSES: usize = 100_000;

/// The opens of each client address in its current window.
pub(crate) struct Opens {
    /// Length of one window: the connect timeout.
    window: Duration,
    /// Opens allowed per address and window.
    max: u32,
    /// Whose `X-Forwarded-For` names the client.
    proxies: TrustedProxies,
    /// Where refusals are counted.
    counters: Arc<Counters>,
    /// Per address: when its window started, and its opens in it.
    table: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Opens {
    /// At most `max` opens per client address per `window`.
    pub(crate) fn new(
        window: Duration,
        max: u32,
        proxies: TrustedProxies,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            window: window.max(Duration::from_millis(1)),
            max,
            proxies,
            counters,
            table: Mutex::default(),
        }
    }

    /// Counts one open from `ip` at `now`, or refuses it with the wait until its window ends.
    fn admit(&self, ip: IpAddr, now: Instant) -> Result<(), Refusal> {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if table.len() >= MAX_ADDRESSES && !table.contains_key(&ip) {
            table.retain(|_, (start, _)| now.duration_since(*start) < self.window);
            if table.len() >= MAX_ADDRESSES {
                return Ok(());
            }
        }
        let (start, count) = table.entry(ip).or_insert((now, 0));
        if now.duration_since(*start) >= self.window {
            *start = now;
            *count = 0;
        }
        if *count >= self.max {
            let retry_after = self.window.saturating_sub(now.duration_since(*start));
            return Err(Refusal::RateLimited { retry_after });
        }
        *count += 1;
        Ok(())
    }
}

/// The engine's admission hook: refuses a new session beyond its address's cap (429
/// `rate_limited`, counted).
pub(crate) fn admission(opens: Arc<Opens>) -> Admission {
    Arc::new(move |parts, peer| {
        let Some(ip) = opens.proxies.client_ip(Some(peer), &parts.headers) else {
            return Ok(());
        };
        opens.admit(ip, Instant::now()).map_err(|refusal| {
            opens.counters.engineio_opens_refused.incr();
            tracing::debug!(%ip, "engine.io open refused: too many from this address");
            refusal.denial()
        })
    })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn opens_per_address_per_window() {
        let opens = Opens::new(
            Duration::from_secs(5),
            2,
            TrustedProxies::default(),
            Arc::default(),
        );
        let (a, b) = (
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        );
        let t0 = Instant::now();
        assert!(opens.admit(a, t0).is_ok());
        assert!(opens.admit(a, t0).is_ok());
        let refused = opens.admit(a, t0 + Duration::from_secs(1));
        assert!(
            matches!(refused, Err(Refusal::RateLimited { retry_after }) if retry_after == Duration::from_secs(4))
        );
        assert!(opens.admit(b, t0).is_ok());
        assert!(opens.admit(a, t0 + Duration::from_secs(5)).is_ok());
    }
}
