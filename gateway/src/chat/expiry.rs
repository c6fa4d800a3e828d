//! Sockets outliving their session: every `--session-check-interval`, each instance asks
//! Redis, in pipelined batches, whether the sessions of its local sockets still exist, and
//! disconnects the sockets of sessions that expired or were deleted. So a socket outlives its
//! session by at most one interval (plus one Redis round trip). Logout does not wait for this:
//! it disconnects the session's room on every instance at once.
//!
//! While Redis cannot be asked nobody is disconnected: an outage of the session store must not
//! close every chat. Each session found gone is audited (`session_ended`, one event id per
//! session, however many instances notice).

use std::{collections::HashMap, sync::Arc, time::Duration};

use engine::sockets::{Nsp, Socket};
use redis_adapter::Selection;
use tokio::{task::JoinHandle, time::MissedTickBehavior};

use super::Member;
use crate::{accounts::Accounts, jobs::AuditEvent, sessions::SessionId};

/// Sessions asked about in one pipeline.
const BATCH: usize = 1000;

/// Starts the periodic check of `io`'s local sockets; abort the task to stop it.
pub(crate) fn spawn(chat: Arc<Nsp>, accounts: Arc<Accounts>, interval: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            sweep(&chat, &accounts).await;
        }
    })
}

/// One check of every local socket.
async fn sweep(chat: &Nsp, accounts: &Accounts) {
    let mut by_session: HashMap<SessionId, Vec<Arc<Socket>>> = HashMap::new();
    for socket in chat.local_sockets(&Selection::default()) {
        if let Some(session) = Member::identity(&socket).and_then(|me| me.session.clone()) {
            by_session.entry(session).or_default().push(socket);
        }
    }
    let sessions: Vec<SessionId> = by_session.keys().cloned().collect();
    for batch in sessions.chunks(BATCH) {
        let alive = match accounts.sessions.exist(batch).await {
            Ok(alive) => alive,
            Err(err) => {
                tracing::warn!(%err, "cannot check sessions: keeping their sockets for now");
                return;
            }
        };
        for (session, alive) in batch.iter().zip(alive) {
            if alive {
                continue;
            }
            let sockets = by_session.remove(session).unwrap_or_default();
            if let Some(me) = sockets.first().and_then(|s| Member::identity(s)) {
                let ended = AuditEvent::session_ended(&me.tenant, &me.user, session.as_str());
                accounts.jobs.audit(ended).await;
            }
            for socket in sockets {
                accounts.counters.sessions_expired_disconnects.incr();
                tracing::debug!(sid = %socket.id(), "session gone: disconnecting");
                socket.disconnect();
            }
        }
    }
}
