//! Rate limits shared by every instance: fixed-window counters in Redis.
//!
//! One check is one atomic Redis operation, a Lua script that increments the window's counter,
//! starts the window's expiry on the first hit, and returns the count and the time left. Keys
//! (`{prefix}:rl:{scope}:{id}`) expire with their window. When Redis does not answer within
//! [`FAIL_OPEN_AFTER`] the check allows the request and counts it in `rate_limit_fail_open`:
//! an outage of the limiter must not become an outage of the chat.

use std::{fmt, net::IpAddr, str::FromStr, sync::Arc, time::Duration};

use redis::Script;

use crate::{counters::Counters, refusal::Refusal, store::Store};

/// How long a check waits for Redis before allowing the request anyway.
pub const FAIL_OPEN_AFTER: Duration = Duration::from_millis(250);

/// INCR the window's counter; start its expiry if it has none (first hit, or a key that lost
/// its TTL); return `{count, milliseconds left}`.
const WINDOW_SCRIPT: &str = r"
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
";

/// A limit: at most `max` hits per `window`. Written `N/D` with D a duration such as `60s`,
/// `500ms`, `5m` or `1h` (`10/60s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Hits allowed in one window (at least 1).
    pub max: u32,
    /// Length of a window (at least 1 ms).
    pub window: Duration,
}

impl Rate {
    /// At most `max` hits per `window`.
    pub const fn new(max: u32, window: Duration) -> Self {
        Self { max, window }
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad =
            || format!("{text:?} is not a rate like 10/60s (N per duration in ms, s, m or h)");
        let (max, window) = text.trim().split_once('/').ok_or_else(bad)?;
        let max: u32 = max.trim().parse().map_err(|_| bad())?;
        let window = window.trim();
        let digits = window.bytes().take_while(u8::is_ascii_digit).count();
        let (amount, unit) = window.split_at(digits);
        let amount: u64 = if amount.is_empty() {
            1
        } else {
            amount.parse().map_err(|_| bad())?
        };
        let window = match unit {
            "ms" => Duration::from_millis(amount),
            "s" => Duration::from_secs(amount),
            "m" => Duration::from_secs(amount.saturating_mul(60)),
            "h" => Duration::from_secs(amount.saturating_mul(3600)),
            _ => return Err(bad()),
        };
        if max == 0 || window.is_zero() {
            return Err(format!("{text:?}: the count and the window must not be 0"));
        }
        Ok(Self { max, window })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.window.as_millis();
        if ms % 1000 == 0 {
            write!(f, "{}/{}s", self.max, ms / 1000)
        } else {
            write!(f, "{}/{ms}ms", self.max)
        }
    }
}

/// What is being limited, and so which limit applies and which key counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// `POST /api/login`, per client IP.
    Login,
    /// Socket.IO handshakes, per client IP.
    Handshake,
    /// `message` events, per user.
    Message,
    /// `dm` events, per user.
    Dm,
}

impl Scope {
    /// The scope's part of the key.
    fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Handshake => "handshake",
            Self::Message => "message",
            Self::Dm => "dm",
        }
    }
}

/// The configured limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rates {
    /// Logins per client IP.
    pub(crate) login: Rate,
    /// Socket.IO handshakes per client IP.
    pub(crate) handshake: Rate,
    /// `message` events per user.
    pub(crate) message: Rate,
    /// `dm` events per user.
    pub(crate) dm: Rate,
}

impl Rates {
    fn of(&self, scope: Scope) -> Rate {
        match scope {
            Scope::Login => self.login,
            Scope::Handshake => self.handshake,
            Scope::Message => self.message,
            Scope::Dm => self.dm,
        }
    }
}

/// Checks and counts hits against the configured limits.
pub(crate) struct RateLimiter {
    store: Store,
    rates: Rates,
    script: Script,
    counters: Arc<Counters>,
}

impl RateLimiter {
    /// A limiter counting in `store`.
    pub(crate) fn new(store: Store, rates: Rates, counters: Arc<Counters>) -> Self {
        Self {
            store,
            rates,
            script: Script::new(WINDOW_SCRIPT),
            counters,
        }
    }

    /// Counts one hit of `id` in `scope`: `Err(RateLimited)` when over the limit, `Ok` when
    /// allowed, including when Redis could not be asked (fail open, counted).
    pub(crate) async fn check(&self, scope: Scope, id: &str) -> Result<(), Refusal> {
        let rate = self.rates.of(scope);
        let key = self.store.keys().rate(scope.as_str(), id);
        let window_ms = u64::try_from(rate.window.as_millis()).unwrap_or(u64::MAX);
        let mut conn = self.store.connection();
        let mut invocation = self.script.key(&key);
        invocation.arg(window_ms);
        let hit = crate::store::deadline(
            FAIL_OPEN_AFTER,
            invocation.invoke_async::<(u64, i64)>(&mut conn),
        )
        .await;
        match hit {
            Ok((count, left_ms)) if count > u64::from(rate.max) => {
                self.counters.rate_limited.incr();
                let left = u64::try_from(left_ms).unwrap_or(window_ms).max(1);
                Err(Refusal::RateLimited {
                    retry_after: Duration::from_millis(left),
                })
            }
            Ok(_) => Ok(()),
            Err(err) => {
                self.counters.rate_limit_fail_open.incr();
                tracing::warn!(scope = scope.as_str(), %err, "rate limit not checked: allowing (fail open)");
                Ok(())
            }
        }
    }
}

/// The rate-limit id of a client address (`unknown` when the peer address is not known).
pub(crate) fn ip_id(ip: Option<IpAddr>) -> String {
    ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}

/// The rate-limit id of a user: unique across tenants.
pub(crate) fn user_id(tenant: &str, user: &str) -> String {
    format!("{tenant}:{user}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_print() {
        let cases = [
            ("10/60s", Rate::new(10, Duration::from_secs(60))),
            (" 3 / 1s ", Rate::new(3, Duration::from_secs(1))),
            ("5/500ms", Rate::new(5, Duration::from_millis(500))),
            ("2/5m", Rate::new(2, Duration::from_secs(300))),
            ("1/h", Rate::new(1, Duration::from_secs(3600))),
        ];
        for (text, rate) in cases {
            assert_eq!(text.parse::<Rate>(), Ok(rate), "{text}");
        }
        assert_eq!(Rate::new(10, Duration::from_secs(60)).to_string(), "10/60s");
        assert_eq!(
            Rate::new(5, Duration::from_millis(500)).to_string(),
            "5/500ms"
        );
        for bad in [
            "", "10", "10/", "x/1s", "10/1", "10/1d", "0/1s", "1/0s", "-1/1s",
        ] {
            assert!(bad.parse::<Rate>().is_err(), "{bad:?}");
        }
    }
}
