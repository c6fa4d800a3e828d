//! Rate limits shared by every instance: fixed-window counters in Redis.
//!
//! One check is one atomic Redis operation, a Lua script that increments the window's counter,
//! starts the window's expiry on the first hit, and returns the count and the time left. Keys
//! (`{prefix}:rl:{scope}:{id}`) expire with their window. When Redis does not answer within
//! [`SHARED_DEADLINE`] (down, slow, out of memory) the same rate is counted by this instance
//! alone ([`LocalLimiter`], bounded memory) and the check says so ([`Counted::Local`]): the
//! caller decides what a check that only this instance counted may allow (login refuses,
//! everything else goes on; see the README's failure modes). Counted in `rate_limit_local`.
//!
//! Client addresses are keyed whole for IPv4 and by their network prefix for IPv6
//! (`--rate-ipv6-prefix`, /64 by default: one subscriber's whole /64 is one bucket).

use std::{
    fmt,
    net::{IpAddr, Ipv6Addr},
    str::FromStr,
    sync::Arc,
    time::Duration,
};

use redis::Script;

use crate::{Error, counters::Counters, local_limit::LocalLimiter, refusal::Refusal, store::Store};

/// How long a check waits for Redis before the in-process limiter decides instead.
pub const SHARED_DEADLINE: Duration = Duration::from_millis(250);

/// Two Lua functions on a window's counter. `hit(key, ms, hits)` adds `hits` (a string) and
/// returns the count, starting the window's expiry on its first hits. `left(key, ms)` returns
/// the milliseconds left in the window, starting an expiry on a key that has none (one an
/// operator made persistent). Shared with the scripts that count a hit together with other
/// work (storing a chat message), which ask what is left only over the limit.
pub(crate) const WINDOW_LUA: &str = r"
local function hit(key, ms, hits)
  local count = redis.call('INCRBY', key, hits)
  if count == tonumber(hits) then
    redis.call('PEXPIRE', key, ms)
  end
  return count
end
local function left(key, ms)
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    redis.call('PEXPIRE', key, ms)
    ttl = tonumber(ms)
  end
  return ttl
end
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
    /// Messages published (and reads) through the HTTP publish API, per API key.
    ApiPublish,
}

impl Scope {
    /// The scope's part of the key.
    fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Handshake => "handshake",
            Self::Message => "message",
            Self::Dm => "dm",
            Self::ApiPublish => "api_publish",
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
    /// Publish API messages per API key.
    pub(crate) api_publish: Rate,
}

impl Rates {
    fn of(&self, scope: Scope) -> Rate {
        match scope {
            Scope::Login => self.login,
            Scope::Handshake => self.handshake,
            Scope::Message => self.message,
            Scope::Dm => self.dm,
            Scope::ApiPublish => self.api_publish,
        }
    }
}

/// Who counted an allowed hit.
#[derive(Debug)]
pub(crate) enum Counted {
    /// Redis: every instance shares the count.
    Shared,
    /// This instance alone, because Redis could not be asked (the error says why).
    Local(Error),
}

/// Checks and counts hits against the configured limits.
pub(crate) struct RateLimiter {
    store: Store,
    rates: Rates,
    script: Script,
    /// Takes over while Redis cannot be asked.
    local: LocalLimiter,
    /// IPv6 addresses are keyed by their first this many bits.
    ipv6_prefix: u8,
    counters: Arc<Counters>,
}

impl RateLimiter {
    /// A limiter counting in `store`, keying IPv6 clients by their `/ipv6_prefix` network.
    pub(crate) fn new(
        store: Store,
        rates: Rates,
        ipv6_prefix: u8,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            store,
            rates,
            script: Script::new(&format!(
                "{WINDOW_LUA}return {{hit(KEYS[1], ARGV[1], ARGV[2]), left(KEYS[1], ARGV[1])}}"
            )),
            local: LocalLimiter::new(crate::local_limit::CAPACITY),
            ipv6_prefix,
            counters,
        }
    }

    /// Counts one hit of `id` in `scope`: `Err(RateLimited)` when over the limit, else who
    /// counted it (this instance alone when Redis could not be asked in time).
    pub(crate) async fn check(&self, scope: Scope, id: &str) -> Result<Counted, Refusal> {
        self.check_many(scope, id, 1).await
    }

    /// Counts `hits` hits of `id` in `scope` at once (a batch of messages): refused as a whole
    /// when the window's count goes over the limit with them.
    pub(crate) async fn check_many(
        &self,
        scope: Scope,
        id: &str,
        hits: u32,
    ) -> Result<Counted, Refusal> {
        let (key, rate) = self.shared(scope, id);
        let window_ms = window_ms(rate);
        let mut conn = self.store.connection();
        let mut invocation = self.script.key(&key);
        invocation.arg(window_ms).arg(hits);
        let hit = crate::store::deadline(
            SHARED_DEADLINE,
            invocation.invoke_async::<(u64, i64)>(&mut conn),
        )
        .await;
        match hit {
            Ok(hit) => self.judge(rate, hit).map(|()| Counted::Shared),
            Err(err) => self.check_locally(scope, id, hits, err),
        }
    }

    /// The Redis key counting `id` in `scope`, and the rate it is held to: for scripts that
    /// count the hit themselves (`hit` of [`WINDOW_LUA`]), in the same slot as their keys.
    pub(crate) fn shared(&self, scope: Scope, id: &str) -> (String, Rate) {
        let key = self.store.keys().rate(scope.as_str(), id);
        (key, self.rates.of(scope))
    }

    /// Whether a `{count, milliseconds left}` hit counted in Redis is within `rate`.
    fn judge(&self, rate: Rate, (count, left_ms): (u64, i64)) -> Result<(), Refusal> {
        if count <= u64::from(rate.max) {
            return Ok(());
        }
        Err(self.over(rate, left_ms))
    }

    /// The refusal, counted, of a hit over `rate` whose window ends in `left_ms`.
    pub(crate) fn over(&self, rate: Rate, left_ms: i64) -> Refusal {
        let left = u64::try_from(left_ms).unwrap_or(window_ms(rate)).max(1);
        self.limited(Duration::from_millis(left))
    }

    /// Counts `hits` hits of `id` in `scope` by this instance alone, because Redis could not
    /// be asked (`err` says why).
    pub(crate) fn check_locally(
        &self,
        scope: Scope,
        id: &str,
        hits: u32,
        err: Error,
    ) -> Result<Counted, Refusal> {
        let (key, rate) = self.shared(scope, id);
        self.counters.rate_limit_local.incr();
        tracing::warn!(scope = scope.as_str(), %err, "shared rate limit unavailable: counted by this instance alone");
        self.local
            .hit(&key, rate.max, rate.window, hits)
            .map_err(|left| self.limited(left.max(Duration::from_millis(1))))?;
        Ok(Counted::Local(err))
    }

    /// A refusal for a limit reached, counted.
    fn limited(&self, retry_after: Duration) -> Refusal {
        self.counters.rate_limited.incr();
        Refusal::RateLimited { retry_after }
    }

    /// The rate-limit id of a client address: IPv4 whole, IPv6 as its network of the configured
    /// prefix (`2001:db8:1:2::/64`), `unknown` when the peer address is not known.
    pub(crate) fn ip_id(&self, ip: Option<IpAddr>) -> String {
        match ip.map(|ip| ip.to_canonical()) {
            None => "unknown".to_owned(),
            Some(IpAddr::V4(ip)) => ip.to_string(),
            Some(IpAddr::V6(ip)) => ipv6_network(ip, self.ipv6_prefix),
        }
    }
}

/// A rate's window in milliseconds.
pub(crate) fn window_ms(rate: Rate) -> u64 {
    u64::try_from(rate.window.as_millis()).unwrap_or(u64::MAX)
}

/// `ip`'s network of `prefix` bits (1 to 128; larger is taken as 128), as `addr/prefix`.
fn ipv6_network(ip: Ipv6Addr, prefix: u8) -> String {
    let prefix = prefix.clamp(1, 128);
    let mask = u128::MAX << (128 - u32::from(prefix));
    format!("{}/{prefix}", Ipv6Addr::from(u128::from(ip) & mask))
}

/// Parses `--rate-ipv6-prefix`: 1 to 128 bits.
pub(crate) fn parse_ipv6_prefix(text: &str) -> Result<u8, String> {
    match text.trim().parse::<u8>() {
        Ok(bits) if (1..=128).contains(&bits) => Ok(bits),
        _ => Err(format!("{text:?} is not a prefix length from 1 to 128")),
    }
}

/// The rate-limit id of a user: unique across tenants, with the tenant as the key's hash
/// tag, so that a user's message and dm counters share a Redis Cluster slot with the
/// tenant's message histories (one script counts the hit and stores the message).
pub(crate) fn user_id(tenant: &str, user: &str) -> String {
    format!("{{{tenant}}}:{user}")
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

    #[test]
    fn ipv6_is_keyed_by_its_network() {
        let ip: Ipv6Addr = "2001:db8:1:2:aaaa:bbbb:cccc:dddd"
            .parse()
            .unwrap_or(Ipv6Addr::LOCALHOST);
        assert_eq!(ipv6_network(ip, 64), "2001:db8:1:2::/64");
        assert_eq!(ipv6_network(ip, 48), "2001:db8:1::/48");
        assert_eq!(
            ipv6_network(ip, 128),
            "2001:db8:1:2:aaaa:bbbb:cccc:dddd/128"
        );
        assert_eq!(parse_ipv6_prefix("64"), Ok(64));
        for bad in ["0", "129", "x", ""] {
            assert!(parse_ipv6_prefix(bad).is_err(), "{bad:?}");
        }
    }
}
