//! Tenant settings, read on every chat event: kept in a per-instance cache with a TTL, and
//! invalidated on every instance at once through Pub/Sub when an admin changes them.
//!
//! The guarantee: once [`SettingsCache::write`] has returned with every subscribed instance
//! confirming, no instance acts on the old value. It holds because
//! - the write stores the new value in Redis *before* publishing the invalidation;
//! - each instance, on the invalidation, bumps its cache generation and drops the entry
//!   *before* confirming (an `INCR` of the invalidation's ack key), and the writer waits for as
//!   many confirmations as `PUBLISH` reported receivers;
//! - a read that was fetching from Redis while the generation moved does not keep what it
//!   fetched (it may predate the write): it fetches again, and never inserts it;
//! - an instance whose subscription is down serves nothing from its cache (every read goes to
//!   Redis; the last known value is only the fallback when Redis cannot be read either), and
//!   empties its cache when it subscribes again, so it cannot keep a value whose invalidation
//!   it missed. A subscription that stops answering pings counts as down, and so does, on a
//!   Redis Cluster, one whose node's connection dropped (a restarted master forgets its
//!   subscribers) until it is subscribed again.
//!
//! Without confirmations (an instance slower than the writer's deadline) the TTL still bounds
//! how long an instance can act on an old value.
//!
//! A value that cannot be read (Redis down, out of memory, a key of the wrong type, JSON that
//! does not parse) is never replaced by the defaults, which are the most permissive settings:
//! the tenant keeps the last value this instance read, kept apart from the cache so that
//! neither an invalidation nor a resubscription forgets it. Only a tenant never read since
//! start falls back to the defaults.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::{Error, counters::Counters, ids, refusal::Refusal, store::Store};

/// Default `max_message_length`: the protocol's own limit.
pub(crate) const DEFAULT_MAX_MESSAGE_LENGTH: u32 = 2000;
/// Default `max_room_members`.
pub(crate) const DEFAULT_MAX_ROOM_MEMBERS: u32 = 10_000;
/// Largest `max_room_members` an admin may set.
pub(crate) const MAX_ROOM_MEMBERS_LIMIT: u32 = 1_000_000;
/// Default `history_max_messages`: messages kept per room or conversation.
pub(crate) const DEFAULT_HISTORY_MESSAGES: u32 = 1000;
/// Largest `history_max_messages` an admin may set.
pub(crate) const HISTORY_MESSAGES_LIMIT: u32 = 100_000;
/// Default `history_max_age_secs`: 7 days.
pub(crate) const DEFAULT_HISTORY_AGE_SECS: u64 = 7 * 24 * 3600;
/// Largest `history_max_age_secs` an admin may set: 90 days.
pub(crate) const HISTORY_AGE_LIMIT_SECS: u64 = 90 * 24 * 3600;
/// A fetch that raced an invalidation is retried at most this many times.
const FETCH_ATTEMPTS: usize = 3;
/// Life of an invalidation's ack counter in Redis, in seconds.
const ACK_TTL_SECS: u64 = 60;
/// Pause between two reads of the ack counter while a writer waits.
const ACK_POLL: Duration = Duration::from_millis(5);

/// One tenant's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct TenantSettings {
    /// Longest `message` or `dm` text, in characters (1 to 2000).
    pub(crate) max_message_length: u32,
    /// Most members a room may have across the cluster; a `join` beyond it is refused.
    pub(crate) max_room_members: u32,
    /// Messages kept per room and per conversation (1 to 100,000).
    pub(crate) history_max_messages: u32,
    /// Seconds a message is kept (60 to 90 days).
    pub(crate) history_max_age_secs: u64,
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            max_message_length: DEFAULT_MAX_MESSAGE_LENGTH,
            max_room_members: DEFAULT_MAX_ROOM_MEMBERS,
            history_max_messages: DEFAULT_HISTORY_MESSAGES,
            history_max_age_secs: DEFAULT_HISTORY_AGE_SECS,
        }
    }
}

impl TenantSettings {
    /// How long this tenant keeps its messages.
    pub(crate) fn retention(&self) -> crate::history::Retention {
        crate::history::Retention {
            messages: self.history_max_messages,
            age: Duration::from_secs(self.history_max_age_secs),
        }
    }

    /// Refuses values outside their bounds.
    pub(crate) fn validate(&self) -> Result<(), Refusal> {
        if !(1..=DEFAULT_MAX_MESSAGE_LENGTH).contains(&self.max_message_length) {
            return Err(Refusal::InvalidSettings(format!(
                "max_message_length must be 1 to {DEFAULT_MAX_MESSAGE_LENGTH}"
            )));
        }
        if !(1..=MAX_ROOM_MEMBERS_LIMIT).contains(&self.max_room_members) {
            return Err(Refusal::InvalidSettings(format!(
                "max_room_members must be 1 to {MAX_ROOM_MEMBERS_LIMIT}"
            )));
        }
        if !(1..=HISTORY_MESSAGES_LIMIT).contains(&self.history_max_messages) {
            return Err(Refusal::InvalidSettings(format!(
                "history_max_messages must be 1 to {HISTORY_MESSAGES_LIMIT}"
            )));
        }
        if !(60..=HISTORY_AGE_LIMIT_SECS).contains(&self.history_max_age_secs) {
            return Err(Refusal::InvalidSettings(format!(
                "history_max_age_secs must be 60 to {HISTORY_AGE_LIMIT_SECS}"
            )));
        }
        Ok(())
    }
}

/// How far an invalidation got before [`SettingsCache::write`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Invalidation {
    /// Instances subscribed when it was published.
    pub(crate) expected: u64,
    /// Instances that confirmed they dropped the old value.
    pub(crate) confirmed: u64,
}

/// The invalidation message on `{prefix}:invalidate`.
#[derive(Debug, Serialize, Deserialize)]
struct InvalidateMessage {
    /// The tenant whose settings changed.
    tenant: String,
    /// Names the ack counter to increment.
    nonce: String,
}

/// The per-instance settings cache; cheap to share through an `Arc`.
pub(crate) struct SettingsCache {
    inner: Arc<Inner>,
}

/// What the cache and its subscriber task share.
struct Inner {
    store: Store,
    ttl: Duration,
    counters: Arc<Counters>,
    state: Mutex<State>,
}

/// Everything a read must see consistently, behind one lock that is never held across an
/// await.
#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    /// Bumped by every invalidation and every subscription loss or recovery: a fetch that
    /// started under another generation may be stale.
    generation: u64,
    /// The invalidation subscription is in place: only then may entries be used or kept.
    live: bool,
    /// The last value read from Redis per tenant, whatever happened since: the fallback when
    /// Redis cannot be read. One entry per tenant of a signed-in user (the directory's tenants).
    last_known: HashMap<String, TenantSettings>,
}

struct Entry {
    settings: TenantSettings,
    fetched: Instant,
}

impl SettingsCache {
    /// Subscribes to the invalidation channel through the process's Redis layer (failing if
    /// Redis is unreachable now) and starts the task that follows the subscriber's state.
    /// Abort the task to stop it.
    pub(crate) async fn start(
        store: Store,
        ttl: Duration,
        counters: Arc<Counters>,
    ) -> Result<(Self, JoinHandle<()>), Error> {
        let inner = Arc::new(Inner {
            store,
            ttl,
            counters,
            state: Mutex::default(),
        });
        let redis = inner.store.redis();
        let link = redis.link();
        let handler = {
            let inner = Arc::downgrade(&inner);
            Arc::new(move |payload: &[u8]| {
                if let Some(inner) = inner.upgrade() {
                    inner.on_message(payload);
                }
            })
        };
        redis
            .subscribe(inner.store.keys().invalidate_channel(), handler)
            .await?;
        inner.went_live();
        let task = tokio::spawn(follow_subscriber(Arc::downgrade(&inner), link));
        Ok((Self { inner }, task))
    }

    /// Whether the invalidation subscription is in place (the Redis layer's subscriber is
    /// connected and answering its probes).
    pub(crate) fn is_live(&self) -> bool {
        self.inner.lock().live
    }

    /// `tenant`'s settings: from the cache while fresh, else from Redis (the defaults when
    /// none are stored). When they cannot be read, the last value read (the defaults only for
    /// a tenant never read).
    pub(crate) async fn get(&self, tenant: &str) -> TenantSettings {
        let inner = &self.inner;
        let (mut generation, last_known) = {
            let state = inner.lock();
            if let Some(entry) = state.entries.get(tenant) {
                if state.live && entry.fetched.elapsed() < inner.ttl {
                    inner.counters.settings_cache_hits.incr();
                    return entry.settings;
                }
            }
            (state.generation, state.last_known.get(tenant).copied())
        };
        let mut fetched = None;
        for _ in 0..FETCH_ATTEMPTS {
            inner.counters.settings_cache_misses.incr();
            match inner.fetch(tenant).await {
                Ok(settings) => {
                    let mut state = inner.lock();
                    if state.generation == generation {
                        state.last_known.insert(tenant.to_owned(), settings);
                        if state.live {
                            state.entries.insert(
                                tenant.to_owned(),
                                Entry {
                                    settings,
                                    fetched: Instant::now(),
                                },
                            );
                        }
                        return settings;
                    }
                    // Invalidated while fetching: what came back may predate the write.
                    generation = state.generation;
                    fetched = Some(settings);
                }
                Err(err) => {
                    inner.counters.settings_fetch_failures.incr();
                    tracing::warn!(%tenant, %err, "cannot read tenant settings; using the last known ones");
                    return fetched.or(last_known).unwrap_or_default();
                }
            }
        }
        fetched.or(last_known).unwrap_or_default()
    }

    /// Stores `settings` for `tenant`, then invalidates every instance's cache and waits up to
    /// `wait` for each subscribed instance to confirm.
    pub(crate) async fn write(
        &self,
        tenant: &str,
        settings: &TenantSettings,
        wait: Duration,
    ) -> Result<Invalidation, Error> {
        let store = &self.inner.store;
        let keys = store.keys();
        let value = serde_json::to_string(settings)
            .map_err(|_| Error::Internal("settings do not serialize"))?;
        let mut set = redis::cmd("SET");
        set.arg(keys.tenant_settings(tenant)).arg(value);
        let () = store.query(&set).await?;

        let mut nonce = [0u8; 12];
        ids::os_random(&mut nonce)?;
        let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        let message = InvalidateMessage {
            tenant: tenant.to_owned(),
            nonce: nonce.clone(),
        };
        let payload = serde_json::to_string(&message)
            .map_err(|_| Error::Internal("settings do not serialize"))?;
        let channel = keys.invalidate_channel();
        let expected = store.publish_counted(&channel, payload.as_bytes()).await?;

        let ack_key = keys.invalidate_ack(&nonce);
        let deadline = Instant::now() + wait;
        let mut get = redis::cmd("GET");
        get.arg(&ack_key);
        loop {
            let confirmed = store.query::<Option<u64>>(&get).await?.unwrap_or(0);
            if confirmed >= expected || Instant::now() >= deadline {
                if confirmed < expected {
                    tracing::warn!(%tenant, expected, confirmed, "not every instance confirmed the settings invalidation in time");
                }
                return Ok(Invalidation {
                    expected,
                    confirmed,
                });
            }
            tokio::time::sleep(ACK_POLL).await;
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Only plain map and counter updates happen under the lock: a panic elsewhere cannot
        // leave it inconsistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads `tenant`'s settings from Redis.
    async fn fetch(&self, tenant: &str) -> Result<TenantSettings, Error> {
        let mut get = redis::cmd("GET");
        get.arg(self.store.keys().tenant_settings(tenant));
        let value: Option<String> = self.store.query(&get).await?;
        match value {
            None => Ok(TenantSettings::default()),
            Some(value) => serde_json::from_str(&value)
                .map_err(|_| Error::Internal("unreadable tenant settings in Redis")),
        }
    }

    /// The subscription is (again) in place: start from an empty cache, since invalidations
    /// may have been missed.
    fn went_live(&self) {
        let mut state = self.lock();
        state.entries.clear();
        state.generation += 1;
        state.live = true;
    }

    /// The subscription is lost: stop serving from the cache until it is back (a read that
    /// cannot reach Redis meanwhile falls back to the last known value).
    fn went_dark(&self) {
        let mut state = self.lock();
        state.generation += 1;
        state.live = false;
    }

    /// Handles one message of the invalidation channel: drop the entry, then confirm.
    fn on_message(&self, payload: &[u8]) {
        let message: InvalidateMessage = match serde_json::from_slice(payload) {
            Ok(message) => message,
            Err(err) => {
                tracing::warn!(%err, "malformed settings invalidation ignored");
                return;
            }
        };
        {
            let mut state = self.lock();
            state.generation += 1;
            state.entries.remove(&message.tenant);
        }
        self.counters.settings_invalidations.incr();
        tracing::debug!(tenant = %message.tenant, "tenant settings invalidated");
        let store = self.store.clone();
        tokio::spawn(async move {
            let key = store.keys().invalidate_ack(&message.nonce);
            let mut pipe = redis::pipe();
            pipe.atomic()
                .cmd("INCR")
                .arg(&key)
                .ignore()
                .cmd("EXPIRE")
                .arg(&key)
                .arg(ACK_TTL_SECS)
                .ignore();
            if let Err(err) = store.pipeline::<()>(&pipe).await {
                tracing::debug!(%err, "could not confirm a settings invalidation");
            }
        });
    }
}

/// Follows the subscriber's state: while a subscription may miss messages (the subscriber
/// is down, or on a Redis Cluster a node's connection dropped or the topology changed) the
/// cache serves nothing, since an invalidation may be missed, and once every subscription
/// holds again the cache starts empty.
async fn follow_subscriber(inner: std::sync::Weak<Inner>, mut link: redis_adapter::LinkRx) {
    while link.changed().await.is_ok() {
        let subscribed = link.borrow_and_update().subscribed;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if subscribed {
            tracing::info!("settings invalidation subscription restored");
            inner.went_live();
        } else {
            tracing::warn!("settings invalidation subscription lost: not caching until it is back");
            inner.went_dark();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_bounds_and_defaults() {
        assert!(TenantSettings::default().validate().is_ok());
        let stored: TenantSettings =
            serde_json::from_str(r#"{"max_message_length": 10}"#).unwrap_or_default();
        assert_eq!(stored.max_message_length, 10);
        assert_eq!(stored.max_room_members, DEFAULT_MAX_ROOM_MEMBERS);
        for bad in [(0, 1), (2001, 1), (1, 0), (1, MAX_ROOM_MEMBERS_LIMIT + 1)] {
            let settings = TenantSettings {
                max_message_length: bad.0,
                max_room_members: bad.1,
                ..TenantSettings::default()
            };
            assert!(settings.validate().is_err(), "{bad:?}");
        }
        assert_eq!(stored.history_max_messages, DEFAULT_HISTORY_MESSAGES);
        for (messages, age) in [(0, 60), (HISTORY_MESSAGES_LIMIT + 1, 60), (1, 59)] {
            let settings = TenantSettings {
                history_max_messages: messages,
                history_max_age_secs: age,
                ..TenantSettings::default()
            };
            assert!(settings.validate().is_err(), "{messages} {age}");
        }
    }
}
