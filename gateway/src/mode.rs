//! The deployment mode, decided once at startup: standalone (development) or clustered over
//! Redis. Like centrifuge's memory and Redis engines, the handlers ask the mode and never
//! which infrastructure is behind it; only the handshake, readiness and metrics, whose answer
//! *is* the infrastructure, match on it.

use std::sync::Arc;

use engine::sockets::Prepared;
use redis_adapter::{NamespaceBus, Redis};

use crate::{
    Error,
    accounts::Accounts,
    cache::TenantSettings,
    history::{Appended, History, MessageId, Page, Publishing, Record, Replay, Retention, Spooled},
    jobs::DmNotification,
    metrics,
    ratelimit::{self, Scope},
    refusal::Refusal,
    tenancy,
};

/// What became of a message handed to [`Mode::store`].
pub(crate) enum Stored {
    /// In its stream under this id, and published to the other instances with this
    /// broadcast, whose local members are still to be served.
    Published(String, Prepared),
    /// In its stream, under this id; not published yet.
    At(String),
    /// Redis could not take it: spooled, to be stored and published to the other instances
    /// once Redis is back (the local members are served now).
    Spooled,
}

/// How many ids a line is tried with in the script that stores and publishes it, before it
/// is stored under an id Redis picks and published after (fewer while ids are refused
/// often: `history::id::Contention`).
const PUBLISHING_ATTEMPTS: usize = 3;

/// How this instance runs.
pub(crate) enum Mode {
    /// Development: alone, rooms on this instance only, no accounts, no sessions, no rate
    /// limits; every socket is an anonymous user of tenant `dev`.
    Standalone,
    /// Rooms shared with the other instances through Redis, and accounts in Redis.
    Clustered {
        /// The process's Redis layer: its connection state and counters.
        redis: Redis,
        /// The chat namespace's cluster bus: the live view of the other instances.
        bus: Arc<NamespaceBus<Redis>>,
        /// Sessions, limits and tenant settings.
        accounts: Arc<Accounts>,
    },
}

impl Mode {
    /// Counts one event of `user` of `tenant` in `scope` (no limits standalone).
    pub(crate) async fn limit(
        &self,
        scope: Scope,
        tenant: &str,
        user: &str,
    ) -> Result<(), Refusal> {
        match self {
            Self::Clustered { accounts, .. } => {
                let id = ratelimit::user_id(tenant, user);
                // Counted by this instance alone while Redis cannot be asked: allowed within it.
                accounts.limiter.check(scope, &id).await.map(drop)
            }
            Self::Standalone => Ok(()),
        }
    }

    /// Counts the message hit of `user` in `scope`, then stores `message` in its stream and
    /// publishes its broadcast, which `prepare` encodes with the id it is stored under: one
    /// script when Redis answers (two on a Redis Cluster, when other instances' lines keep
    /// taking the ids tried, or while ids are refused often). When Redis cannot be reached (or older messages still
    /// wait in the spool) the hit is counted by this instance alone and the message spooled;
    /// refused `spool_full` when the spool is full.
    pub(crate) async fn store(
        &self,
        scope: Scope,
        tenant: &str,
        user: &str,
        message: &Spooled,
        prepare: impl Fn(&MessageId) -> Option<Prepared>,
    ) -> Result<Stored, Refusal> {
        let (accounts, history) = self.history().ok_or(Refusal::NoHistory)?;
        let limiter = &accounts.limiter;
        let id = ratelimit::user_id(tenant, user);
        if !history.spooled().is_empty() {
            // Behind the waiting ones, which keeps each sender's order; Redis did not take
            // the oldest yet, so the hit is counted here without waiting for it.
            let waiting = Error::NoRedis("older messages still wait in the spool");
            limiter.check_locally(scope, &id, 1, waiting)?;
            return spool(history, message);
        }
        let (key, rate) = limiter.shared(scope, &id);
        match put(history, (&key, rate), message, prepare).await {
            Ok(Put::Stored(stored)) => Ok(stored),
            Ok(Put::Limited(left_ms)) => Err(limiter.over(rate, left_ms)),
            Err(failed) if failed.err.is_redis() => {
                limiter.check_locally(scope, &id, 1, failed.err)?;
                let spooled = Spooled {
                    published_if_stored: failed.published_if_stored,
                    ..message.clone()
                };
                spool(history, &spooled)
            }
            Err(failed) => Err(failed.err.into()),
        }
    }

    /// Stores every `(stream, record)` of `entries`, in order and in one script (the streams
    /// of one tenant, kept for `retention`), and returns their ids: the publish API's stored
    /// messages. No rate limit is counted (the API counts its own) and nothing is spooled:
    /// when Redis cannot store them, none is stored and the refusal says `unavailable`. With
    /// `dedupe`, a record already stored by an earlier attempt keeps its id.
    pub(crate) async fn store_all(
        &self,
        entries: &[(String, Record)],
        retention: Retention,
        dedupe: bool,
    ) -> Result<Vec<String>, Refusal> {
        let (_, history) = self.history().ok_or(Refusal::NoHistory)?;
        let stored = history.append_all(entries, retention, dedupe).await?;
        Ok(stored
            .into_iter()
            .map(|written| {
                metrics::stream_length(written.length);
                written.id
            })
            .collect())
    }

    /// Spools a message that is stored but whose publish failed: the spool publishes it to
    /// the other instances once Redis is back (storing it again finds it already stored).
    pub(crate) fn spool_publish(&self, message: &Spooled) -> Result<(), Refusal> {
        match self.history() {
            Some((_, history)) => spool(history, message).map(drop),
            None => Ok(()),
        }
    }

    /// The stream of `tenant`'s chat room `room` (client name), `None` without history.
    pub(crate) fn room_stream(&self, tenant: &str, room: &str) -> Option<String> {
        let (_, history) = self.history()?;
        Some(history.keys().room_history(tenant, room))
    }

    /// The stream of the conversation of users `a` and `b` of `tenant`, `None` without history.
    pub(crate) fn dm_stream(&self, tenant: &str, a: &str, b: &str) -> Option<String> {
        let (_, history) = self.history()?;
        Some(history.keys().dm_history(tenant, a, b))
    }

    /// A page of `stream`'s history (see `History::page`).
    pub(crate) async fn history_page(
        &self,
        stream: &str,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Page, Refusal> {
        let (_, history) = self.history().ok_or(Refusal::NoHistory)?;
        let (page, skipped) = history.page(stream, before, limit).await?;
        metrics::undecodable_entries(skipped);
        Ok(page)
    }

    /// Every message of `stream` after `since`, at most `max` (see `History::replay`).
    pub(crate) async fn replay(
        &self,
        stream: &str,
        since: MessageId,
        max: usize,
    ) -> Result<Replay, Refusal> {
        let (_, history) = self.history().ok_or(Refusal::NoHistory)?;
        let (replay, skipped) = history.replay(stream, since, max).await?;
        metrics::undecodable_entries(skipped);
        Ok(replay)
    }

    /// The messages of `stream` from millisecond `from_ms` on, at most `max` (see
    /// `History::lines_from`).
    pub(crate) async fn lines_from(
        &self,
        stream: &str,
        from_ms: u64,
        max: usize,
    ) -> Result<Vec<(String, Record)>, Refusal> {
        let (_, history) = self.history().ok_or(Refusal::NoHistory)?;
        let (lines, skipped) = history.lines_from(stream, from_ms, max).await?;
        metrics::undecodable_entries(skipped);
        Ok(lines)
    }

    /// The accounts and the history, when messages are stored.
    fn history(&self) -> Option<(&Accounts, &History)> {
        match self {
            Self::Clustered { accounts, .. } => Some((accounts, accounts.history.as_deref()?)),
            Self::Standalone => None,
        }
    }

    /// `tenant`'s settings (the defaults standalone).
    pub(crate) async fn settings(&self, tenant: &str) -> TenantSettings {
        match self {
            Self::Clustered { accounts, .. } => accounts.settings.get(tenant).await,
            Self::Standalone => TenantSettings::default(),
        }
    }

    /// Whether `user` is a user of `tenant` (standalone, where users are sockets: whether it
    /// could be a socket id).
    pub(crate) fn knows(&self, tenant: &str, user: &str) -> bool {
        match self {
            Self::Clustered { accounts, .. } => accounts.member(tenant, user).is_some(),
            Self::Standalone => tenancy::valid_id(user),
        }
    }

    /// The display name of `user` in `tenant`: the directory's, else (standalone, or a user
    /// removed since) the id itself.
    pub(crate) fn display_name(&self, tenant: &str, user: &str) -> String {
        let found = match self {
            Self::Clustered { accounts, .. } => accounts.member(tenant, user),
            Self::Standalone => None,
        };
        found.map_or_else(|| user.to_owned(), |found| found.name.to_string())
    }

    /// Tells `notification.to_user`, who has no socket connected, about a DM through the
    /// background jobs (nothing standalone, which has no jobs). Waits at most the Redis
    /// command deadline; never fails the caller (see `jobs::Jobs::notify_offline_dm`).
    pub(crate) async fn notify_offline_dm(&self, notification: DmNotification) {
        if let Self::Clustered { accounts, .. } = self {
            accounts.jobs.notify_offline_dm(notification).await;
        }
    }

    /// Live instances serving the chat, this one included.
    pub(crate) fn servers(&self) -> u16 {
        match self {
            Self::Standalone => 1,
            Self::Clustered { bus, .. } => bus.server_count(),
        }
    }
}

/// Why [`put`] failed.
struct PutFailed {
    err: Error,
    /// The failure was the deadline of the script that stores and publishes the line
    /// together: it may have run, and then it published the line (Redis, still up, sends what
    /// it published even when this instance stopped waiting for the answer).
    published_if_stored: bool,
}

impl PutFailed {
    /// `err` of the script that stores and publishes a line together.
    fn publishing(err: Error) -> Self {
        let published_if_stored = err.is_redis_timeout();
        Self {
            err,
            published_if_stored,
        }
    }

    /// `err` of a script that only stores.
    fn storing(err: Error) -> Self {
        Self {
            err,
            published_if_stored: false,
        }
    }
}

/// What [`put`] did with a line.
enum Put {
    /// Stored (and published, or not yet).
    Stored(Stored),
    /// Over the rate limit, nothing stored: the window ends in this many milliseconds.
    Limited(i64),
}

/// Counts `hit` and stores `message`: with its broadcast in one script where Redis can
/// publish it there (the broadcast `prepare` encodes for an id; `None` when it cannot),
/// otherwise under an id Redis picks, unpublished.
async fn put(
    history: &History,
    hit: (&str, ratelimit::Rate),
    message: &Spooled,
    prepare: impl Fn(&MessageId) -> Option<Prepared>,
) -> Result<Put, PutFailed> {
    let mut hit = Some(hit);
    let mut refused = None;
    for _ in 0..PUBLISHING_ATTEMPTS {
        let Some(id) = history.own_id(refused) else {
            break;
        };
        let Some(prepared) = prepare(&id) else { break };
        let [broadcast] = prepared.outgoing() else {
            break;
        };
        let publishing = history
            .append_publishing(
                hit,
                &message.stream,
                &message.record,
                message.retention,
                id,
                broadcast,
            )
            .await
            .map_err(PutFailed::publishing)?;
        match publishing {
            Publishing::Done(length) => {
                metrics::stream_length(length);
                return Ok(Put::Stored(Stored::Published(id.to_string(), prepared)));
            }
            Publishing::Limited(left_ms) => return Ok(Put::Limited(left_ms)),
            Publishing::Behind(last) => {
                // Counted already; another instance's line took the id.
                hit = None;
                refused = Some(last);
            }
        }
    }
    let appended = history
        .append(hit, &message.stream, &message.record, message.retention)
        .await
        .map_err(PutFailed::storing)?;
    Ok(match appended {
        Appended::Stored { id, length } => {
            metrics::stream_length(length);
            Put::Stored(Stored::At(id))
        }
        Appended::Limited(left_ms) => Put::Limited(left_ms),
    })
}

/// Spools `message` in `history`'s spool, counted.
fn spool(history: &History, message: &Spooled) -> Result<Stored, Refusal> {
    history.spool(message).map_err(|_| {
        metrics::spool_refused();
        Refusal::SpoolFull
    })?;
    metrics::spooled();
    Ok(Stored::Spooled)
}
