//! The failed-login throttle per username, built so that nobody can lock a user out from
//! another address.
//!
//! Two budgets of failures, both in Redis (shared by every instance), both checked before a
//! password is verified:
//! - per (username, client address), `--rate-login-failures`: an address that keeps guessing
//!   one user's password is refused (429) for that user until its window ends. Another
//!   address is unaffected, so an attacker only ever throttles themselves;
//! - per username from anywhere, `--rate-login-user-failures`: guesses spread over many
//!   addresses. Over it, the user's logins are only verified from an address that logged in
//!   as that user successfully within [`KNOWN_ADDRESS_TTL`] (kept in a sorted set of at most
//!   [`KNOWN_ADDRESSES`]); any other address gets 429 without its password being verified.
//!   The user keeps logging in from where they usually do; a brand-new address waits out the
//!   window while the attack lasts.
//!
//! A success from an address clears that address's failures for the user. Unknown usernames
//! are throttled exactly like known ones, so the throttle reveals nothing about who exists.
//! The three keys share the username as hash tag (`{alice}`), so one script reaches them on
//! a Redis Cluster too.

use std::time::Duration;

use redis::Script;

use crate::{Error, ids::now_ms, ratelimit::Rate, store::Store};

/// How long an address stays known for a user after a successful login.
pub(crate) const KNOWN_ADDRESS_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Most addresses remembered per user (the most recent successes).
pub(crate) const KNOWN_ADDRESSES: u32 = 32;

/// Reads both failure counts with their time left, and whether the address is known.
const PEEK_SCRIPT: &str = r"
local pair = tonumber(redis.call('GET', KEYS[1]) or '0')
local user = tonumber(redis.call('GET', KEYS[2]) or '0')
local known = redis.call('ZSCORE', KEYS[3], ARGV[1]) and 1 or 0
return {pair, redis.call('PTTL', KEYS[1]), user, redis.call('PTTL', KEYS[2]), known}
";

/// Counts one failure in both windows (each started on its first failure).
const FAILED_SCRIPT: &str = r"
for i = 1, 2 do
  redis.call('INCR', KEYS[i])
  if redis.call('PTTL', KEYS[i]) < 0 then
    redis.call('PEXPIRE', KEYS[i], ARGV[i])
  end
end
return 1
";

/// Clears the address's failures and remembers it as known (the newest few only).
const SUCCEEDED_SCRIPT: &str = r"
redis.call('DEL', KEYS[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -1 - tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
";

/// Whether a login may have its password verified.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Within both budgets, or over the per-user one from a known address.
    Verify,
    /// Refused without verifying; the same request is allowed again after this.
    Throttled(Duration),
}

/// The failed-login throttle.
pub(crate) struct LoginThrottle {
    store: Store,
    /// Failures per (username, address).
    pair: Rate,
    /// Failures per username from anywhere.
    user: Rate,
    peek: Script,
    failed: Script,
    succeeded: Script,
}

impl LoginThrottle {
    /// A throttle counting in `store`.
    pub(crate) fn new(store: Store, pair: Rate, user: Rate) -> Self {
        Self {
            store,
            pair,
            user,
            peek: Script::new(PEEK_SCRIPT),
            failed: Script::new(FAILED_SCRIPT),
            succeeded: Script::new(SUCCEEDED_SCRIPT),
        }
    }

    /// The keys of `username` (failures from `address`, failures, known addresses).
    fn keys(&self, username: &str, address: &str) -> [String; 3] {
        let keys = self.store.keys();
        [
            keys.rate("login_fail", &format!("{{{username}}}:{address}")),
            keys.rate("login_fail", &format!("{{{username}}}")),
            keys.known_addresses(username),
        ]
    }

    /// Whether a login of `username` from `address` may be verified.
    pub(crate) async fn admit(&self, username: &str, address: &str) -> Result<Admission, Error> {
        let [pair_key, user_key, known_key] = self.keys(username, address);
        let mut invocation = self.peek.key(&pair_key);
        invocation.key(&user_key).key(&known_key).arg(address);
        let mut conn = self.store.connection();
        let (pair, pair_left, user, user_left, known): (u64, i64, u64, i64, u8) =
            crate::store::deadline(
                crate::store::COMMAND_TIMEOUT,
                invocation.invoke_async(&mut conn),
            )
            .await?;
        let left = |ms: i64, rate: Rate| {
            u64::try_from(ms)
                .map_or(rate.window, Duration::from_millis)
                .max(Duration::from_millis(1))
        };
        if pair >= u64::from(self.pair.max) {
            return Ok(Admission::Throttled(left(pair_left, self.pair)));
        }
        if user >= u64::from(self.user.max) && known == 0 {
            return Ok(Admission::Throttled(left(user_left, self.user)));
        }
        Ok(Admission::Verify)
    }

    /// Counts a wrong password (or unknown username) for `username` from `address`.
    pub(crate) async fn failed(&self, username: &str, address: &str) -> Result<(), Error> {
        let [pair_key, user_key, _] = self.keys(username, address);
        let mut invocation = self.failed.key(&pair_key);
        invocation
            .key(&user_key)
            .arg(millis(self.pair.window))
            .arg(millis(self.user.window));
        self.store.invoke::<i64>(&invocation).await.map(drop)
    }

    /// Records a successful login of `username` from `address`.
    pub(crate) async fn succeeded(&self, username: &str, address: &str) -> Result<(), Error> {
        let [pair_key, _, known_key] = self.keys(username, address);
        let mut invocation = self.succeeded.key(&pair_key);
        invocation
            .key(&known_key)
            .arg(address)
            .arg(now_ms())
            .arg(KNOWN_ADDRESSES)
            .arg(millis(KNOWN_ADDRESS_TTL));
        self.store.invoke::<i64>(&invocation).await.map(drop)
    }
}

/// A duration in whole milliseconds, for `PEXPIRE`.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
