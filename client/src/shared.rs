//! State shared by a connection's owner and its reader task: pending acks and whether the
//! connection has ended.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;

use super::ClientError;

/// Pending acks and the end of the connection, behind one short-held lock.
#[derive(Default)]
pub(crate) struct Shared(std::sync::Mutex<State>);

#[derive(Default)]
struct State {
    next_ack_id: u64,
    acks: HashMap<u64, oneshot::Sender<Value>>,
    /// Why the connection ended, once it did.
    closed: Option<String>,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// [`ClientError::Disconnected`] with the recorded reason.
    pub(crate) fn closed_error(&self) -> ClientError {
        let reason = self.state().closed.clone();
        ClientError::Disconnected(reason.unwrap_or_else(|| "connection closed".to_owned()))
    }

    /// Whether the connection has ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.state().closed.is_some()
    }

    /// `Ok` while the connection is up, else [`ClientError::Disconnected`].
    pub(crate) fn ensure_open(&self) -> Result<(), ClientError> {
        match &self.state().closed {
            Some(reason) => Err(ClientError::Disconnected(reason.clone())),
            None => Ok(()),
        }
    }

    /// Reserves an ack id and the channel its answer will arrive on.
    pub(crate) fn register_ack(&self) -> Result<(u64, oneshot::Receiver<Value>), ClientError> {
        let mut state = self.state();
        if let Some(reason) = &state.closed {
            return Err(ClientError::Disconnected(reason.clone()));
        }
        let id = state.next_ack_id;
        state.next_ack_id = id.wrapping_add(1);
        let (tx, rx) = oneshot::channel();
        state.acks.insert(id, tx);
        Ok((id, rx))
    }

    /// Hands an ack from the server to whoever waits for it (nobody, if it timed out).
    pub(crate) fn resolve_ack(&self, id: u64, args: Vec<Value>) {
        if let Some(tx) = self.state().acks.remove(&id) {
            let _ = tx.send(args.into_iter().next().unwrap_or(Value::Null));
        }
    }

    /// Marks the connection closed; pending acks fail as their senders drop.
    pub(crate) fn close(&self, reason: String) {
        let mut state = self.state();
        state.closed = Some(reason);
        state.acks.clear();
    }
}

/// Removes a pending ack on every exit of the wait (answer, timeout, error, drop).
pub(crate) struct AckGuard(pub(crate) Arc<Shared>, pub(crate) u64);

impl Drop for AckGuard {
    fn drop(&mut self) {
        self.0.state().acks.remove(&self.1);
    }
}

/// An event that was written to the transport and whose ack has not arrived yet; returned by
/// [`Connection::emit_acked`](super::Connection::emit_acked). Dropping it forgets the ack.
pub struct PendingAck {
    rx: oneshot::Receiver<Value>,
    guard: AckGuard,
}

impl PendingAck {
    pub(crate) fn new(rx: oneshot::Receiver<Value>, guard: AckGuard) -> Self {
        Self { rx, guard }
    }

    /// Waits for the ack: its first argument (`Value::Null` if none),
    /// [`ClientError::Timeout`] after `timeout`, or [`ClientError::Disconnected`] if the
    /// connection ends first.
    pub async fn wait(self, timeout: Duration) -> Result<Value, ClientError> {
        let Self { rx, guard } = self;
        match tokio::time::timeout(timeout, rx).await {
            Err(_) => Err(ClientError::Timeout),
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => Err(guard.0.closed_error()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn acks_are_forgotten_when_the_guard_drops() {
        let shared = Arc::new(Shared::default());
        let (id, _rx) = shared.register_ack().unwrap();
        drop(AckGuard(shared.clone(), id));
        assert!(shared.state().acks.is_empty());
    }

    #[test]
    fn closing_fails_pending_and_new_acks() {
        let shared = Shared::default();
        let (_, mut rx) = shared.register_ack().unwrap();
        shared.close("bye".to_owned());
        assert!(rx.try_recv().is_err());
        assert!(shared.is_closed());
        assert!(matches!(shared.register_ack(), Err(ClientError::Disconnected(r)) if r == "bye"));
    }
}
