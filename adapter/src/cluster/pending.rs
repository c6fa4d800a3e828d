//! Request/response bookkeeping: where each remote response goes, and how long a request
//! waits for them.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use tokio::sync::mpsc;

use super::Id;
use crate::stats::Counters;

/// Where the responses of one request go.
struct Pending {
    tx: mpsc::Sender<Vec<u8>>,
    /// For a request answered once per instance: who answered already.
    responders: Option<HashSet<Id>>,
}

/// The requests of one namespace that still wait for responses: each routes the raw
/// response bodies of its id to a bounded channel.
pub(crate) struct PendingRequests {
    handlers: Mutex<HashMap<Id, Pending>>,
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
    /// receiver stops it. With `once_each`, each instance is heard once: a second answer
    /// from the same origin is dropped and counted. Requests whose receiver is gone are
    /// forgotten here.
    pub fn register(&self, req_id: Id, once_each: bool) -> mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = mpsc::channel(self.buffer);
        let mut handlers = self.lock();
        handlers.retain(|_, pending| !pending.tx.is_closed());
        let responders = once_each.then(HashSet::new);
        handlers.insert(req_id, Pending { tx, responders });
        rx
    }

    /// Stops routing `req_id`.
    pub fn forget(&self, req_id: Id) {
        self.lock().remove(&req_id);
    }

    /// Hands a response body from `origin` to its request. Late responses (the request timed
    /// out or was dropped, or was never made here), repeated ones and responses beyond the
    /// buffer are dropped and counted, never queued.
    pub fn deliver(&self, req_id: Id, origin: Id, body: &[u8]) {
        let delivered = {
            let mut handlers = self.lock();
            let sent = handlers.get_mut(&req_id).and_then(|pending| {
                let first = pending
                    .responders
                    .as_mut()
                    .is_none_or(|responders| responders.insert(origin));
                first.then(|| pending.tx.try_send(body.to_vec()))
            });
            match sent {
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
            tracing::debug!(%req_id, %origin, "response dropped: not awaited from it, or buffer full");
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

    fn lock(&self) -> MutexGuard<'_, HashMap<Id, Pending>> {
        self.handlers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_instance_is_counted_once_and_only_for_requests_made_here() {
        let counters = Arc::new(Counters::default());
        let pending = PendingRequests::new(16, counters.clone());
        let (req_id, a, b) = (Id::random(), Id::random(), Id::random());
        let rx = pending.register(req_id, true);
        pending.deliver(req_id, a, b"first");
        pending.deliver(req_id, a, b"again");
        pending.deliver(Id::random(), b, b"never asked");
        pending.deliver(req_id, b, b"second");
        let got = pending
            .collect(rx, req_id, 3, Duration::from_millis(50))
            .await;
        assert_eq!(got, [b"first".to_vec(), b"second".to_vec()]);
        let stats = counters.snapshot();
        assert_eq!((stats.dropped_responses, stats.request_timeouts), (2, 1));
    }
}
