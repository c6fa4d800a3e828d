//! Request/response bookkeeping: where each remote response goes, and how long a request
//! waits for them.

use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use futures_util::{StreamExt, future};
use serde::de::DeserializeOwned;
use socketioxide_core::{
    Sid,
    adapter::{
        remote_packet::{Response, ResponseTypeId},
        stream::{ChanStream, ResponseHandlers, wait_responses},
    },
};
use tokio::sync::mpsc;

use crate::stats::Counters;

/// Raw msgpack responses waiting for the request that asked for them, by request id.
pub(crate) type Handlers = Arc<Mutex<ResponseHandlers<Vec<u8>>>>;

/// The requests of one namespace adapter that still wait for responses.
pub(crate) struct PendingRequests {
    handlers: Handlers,
    buffer: usize,
    counters: Arc<Counters>,
}

impl PendingRequests {
    /// No pending request; each will buffer at most `buffer` responses.
    pub fn new(buffer: usize, counters: Arc<Counters>) -> Self {
        Self {
            handlers: Handlers::default(),
            buffer: buffer.max(1),
            counters,
        }
    }

    /// The shared map, for socketioxide's streams that unregister a request when dropped.
    pub fn handlers(&self) -> Handlers {
        self.handlers.clone()
    }

    /// Starts routing the responses of `req_id` to the returned receiver.
    pub fn register(&self, req_id: Sid) -> mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = mpsc::channel(self.buffer);
        self.lock().insert(req_id, tx);
        rx
    }

    /// Stops routing `req_id`.
    pub fn forget(&self, req_id: Sid) {
        self.lock().remove(&req_id);
    }

    /// Hands a response body to its request. Late responses (the request timed out or was
    /// dropped) and responses beyond the buffer are dropped and counted, never queued.
    pub fn deliver(&self, req_id: Sid, body: &[u8]) {
        let delivered = self
            .lock()
            .get(&req_id)
            .is_some_and(|tx| tx.try_send(body.to_vec()).is_ok());
        if !delivered {
            Counters::incr(&self.counters.dropped_responses);
            tracing::debug!(%req_id, "response dropped: no pending request or buffer full");
        }
    }

    /// Waits for `expected` responses of type `kind` to `req_id`, for at most `timeout`;
    /// returns those that arrived. Malformed responses are dropped and counted.
    pub async fn collect<D: DeserializeOwned>(
        &self,
        rx: mpsc::Receiver<Vec<u8>>,
        req_id: Sid,
        kind: ResponseTypeId,
        expected: usize,
        timeout: Duration,
    ) -> Vec<Response<D>> {
        let counters = self.counters.clone();
        let decoded = ChanStream::new(rx)
            .filter_map(move |bytes| future::ready(decode_response(&bytes, &counters)));
        let responses: Vec<Response<D>> =
            wait_responses(decoded, self.handlers(), req_id, kind, expected, timeout)
                .collect()
                .await;
        if responses.len() < expected {
            Counters::incr(&self.counters.request_timeouts);
            tracing::debug!(%req_id, got = responses.len(), expected, "request timed out");
        }
        responses
    }

    /// Waits for `expected` answers to `req_id` that carry nothing but their arrival, for at
    /// most `timeout`, then stops routing `req_id`; returns how many arrived.
    pub async fn count(
        &self,
        mut rx: mpsc::Receiver<Vec<u8>>,
        req_id: Sid,
        expected: usize,
        timeout: Duration,
    ) -> usize {
        let mut arrived = 0;
        let deadline = tokio::time::Instant::now() + timeout;
        while arrived < expected {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(_)) => arrived += 1,
                Ok(None) | Err(_) => break,
            }
        }
        self.forget(req_id);
        if arrived < expected {
            Counters::incr(&self.counters.request_timeouts);
            tracing::debug!(%req_id, arrived, expected, "request timed out");
        }
        arrived
    }

    fn lock(&self) -> MutexGuard<'_, ResponseHandlers<Vec<u8>>> {
        self.handlers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Decodes one msgpack response, counting it as malformed when it is not one.
pub(crate) fn decode_response<D: DeserializeOwned>(
    bytes: &[u8],
    counters: &Counters,
) -> Option<Response<D>> {
    match rmp_serde::from_slice(bytes) {
        Ok(response) => Some(response),
        Err(err) => {
            Counters::incr(&counters.dropped_malformed);
            tracing::warn!(%err, "malformed response dropped");
            None
        }
    }
}
