//! Request/response bookkeeping: where each remote response goes, and how long a request
//! waits for them.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use tokio::sync::mpsc;

use super::Id;
use crate::stats::Counters;

/// The requests of one namespace that still wait for responses: each routes the raw
/// response bodies of its id to a bounded channel.
pub(crate) struct PendingRequests {
    handlers: Mutex<HashMap<Id, mpsc::Sender<Vec<u8>>>>,
    buffer: usize,
    counters: Arc<Counters>,
}

impl PendingRequests {
    /// No pending request; each will buffer at most `buffer` responses.
    pub fn new(buffer: usize, counters: Arc<Counters>) -> Self {
        Self {
            handlers: Mutex::default(),
            buffer: buffer.max(1),
            counters,
        }
    }

    /// Starts routing the responses of `req_id` to the returned receiver; dropping the
    /// receiver stops it. Requests whose receiver is gone are forgotten here.
    pub fn register(&self, req_id: Id) -> mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = mpsc::channel(self.buffer);
        let mut handlers = self.lock();
        handlers.retain(|_, tx| !tx.is_closed());
        handlers.insert(req_id, tx);
        rx
    }

    /// Stops routing `req_id`.
    pub fn forget(&self, req_id: Id) {
        self.lock().remove(&req_id);
    }

    /// Hands a response body to its request. Late responses (the request timed out or was
    /// dropped) and responses beyond the buffer are dropped and counted, never queued.
    pub fn deliver(&self, req_id: Id, body: &[u8]) {
        let delivered = {
            let mut handlers = self.lock();
            match handlers.get(&req_id).map(|tx| tx.try_send(body.to_vec())) {
                Some(Ok(())) => true,
                Some(Err(mpsc::error::TrySendError::Closed(_))) => {
                    handlers.remove(&req_id);
                    false
                }
                Some(Err(mpsc::error::TrySendError::Full(_))) | None => false,
            }
        };
        if !delivered {
            Counters::incr(&self.counters.dropped_responses);
            tracing::debug!(%req_id, "response dropped: no pending request or buffer full");
        }
    }

    /// Waits for `expected` responses to `req_id`, for at most `timeout`, then stops routing
    /// it; returns the bodies that arrived.
    pub async fn collect(
        &self,
        mut rx: mpsc::Receiver<Vec<u8>>,
        req_id: Id,
        expected: usize,
        timeout: Duration,
    ) -> Vec<Vec<u8>> {
        let mut arrived = Vec::with_capacity(expected);
        let deadline = tokio::time::Instant::now() + timeout;
        while arrived.len() < expected {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(body)) => arrived.push(body),
                Ok(None) | Err(_) => break,
            }
        }
        self.forget(req_id);
        if arrived.len() < expected {
            Counters::incr(&self.counters.request_timeouts);
            tracing::debug!(%req_id, got = arrived.len(), expected, "request timed out");
        }
        arrived
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Id, mpsc::Sender<Vec<u8>>>> {
        self.handlers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
