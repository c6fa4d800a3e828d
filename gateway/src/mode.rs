//! The deployment mode, decided once at startup: standalone (development) or clustered over
//! Redis. Like centrifuge's memory and Redis engines, the handlers ask the mode and never
//! which infrastructure is behind it; only the handshake, readiness and metrics, whose answer
//! *is* the infrastructure, match on it.

use std::sync::Arc;

use redis_adapter::RedisAdapterState;
use socketioxide::{adapter::Adapter, socket::Socket};

use crate::{
    accounts::Accounts,
    cache::TenantSettings,
    jobs::DmNotification,
    ratelimit::{self, Scope},
    refusal::Refusal,
    tenancy::{self, CHAT_NS},
};

/// How this instance runs.
pub(crate) enum Mode {
    /// Development: alone on socketioxide's in-memory adapter, no accounts, no sessions, no
    /// rate limits; every socket is an anonymous user of tenant `dev`.
    Standalone,
    /// Rooms shared with the other instances through Redis, and accounts in Redis.
    Clustered {
        /// The Redis adapter's join path and live view of the cluster.
        adapter: RedisAdapterState,
        /// Sessions, limits and tenant settings.
        accounts: Arc<Accounts>,
    },
}

impl Mode {
    /// Puts `socket` in `room`. Over Redis this returns once this instance is subscribed to
    /// the room, so the socket misses nothing sent after it joined.
    pub(crate) async fn join<A: Adapter>(
        &self,
        socket: &Socket<A>,
        room: String,
    ) -> Result<(), Refusal> {
        match self {
            Self::Clustered { adapter, .. } => adapter
                .join(socket.ns(), socket.id, room)
                .await
                .map_err(|err| {
                    tracing::debug!(%err, "room not subscribed: the join is refused");
                    Refusal::ClusterUnavailable
                }),
            Self::Standalone => {
                socket.join(room);
                Ok(())
            }
        }
    }

    /// Takes `socket` out of `room`; over Redis the room is let go once empty for a moment.
    pub(crate) fn leave<A: Adapter>(&self, socket: &Socket<A>, room: String) {
        match self {
            Self::Clustered { adapter, .. } => {
                if let Err(err) = adapter.leave(socket.ns(), socket.id, room.clone()) {
                    tracing::debug!(%err, "leaving through socketioxide");
                    socket.leave(room);
                }
            }
            Self::Standalone => socket.leave(room),
        }
    }

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
    #[expect(
        dead_code,
        reason = "called by chat/dm.rs for an offline recipient once its rewrite lands"
    )]
    pub(crate) async fn notify_offline_dm(&self, notification: DmNotification) {
        if let Self::Clustered { accounts, .. } = self {
            accounts.jobs.notify_offline_dm(notification).await;
        }
    }

    /// Live instances serving the chat, this one included.
    pub(crate) fn servers(&self) -> u16 {
        match self {
            Self::Standalone => 1,
            // `None` only before the namespace is registered; by then this instance serves it.
            Self::Clustered { adapter, .. } => adapter.server_count(CHAT_NS).unwrap_or(1),
        }
    }
}
