//! A bounded, in-order, in-memory spool for writes Redis cannot take right now (chat messages,
//! jobs), and the task that drains it once Redis is back.
//!
//! Pushing never drops what is already spooled: a full spool refuses the new item
//! ([`Full`]), and the caller tells its client. The drain takes the oldest items (one, or a
//! batch for writers that can write several in one round trip), writes them, and removes
//! them only once the write succeeded; a failed write is retried after a backoff (doubling
//! from [`RETRY_MIN`] to [`RETRY_MAX`]), so items reach Redis in the order they were spooled. A write whose answer was lost may be retried after it took effect: writers make
//! their writes idempotent (the message script recognises a message it already stored).
//!
//! What a spool holds lives only in this process: a crash of the instance loses it (see the
//! README's failure modes).

use std::{
    collections::VecDeque,
    sync::{Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use tokio::sync::Notify;

/// First wait after a failed write.
pub(crate) const RETRY_MIN: Duration = Duration::from_millis(50);
/// Longest wait between two attempts.
pub(crate) const RETRY_MAX: Duration = Duration::from_millis(200);

/// A spool is full: the item was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

/// Items waiting for Redis, oldest first, at most `capacity` of them.
pub(crate) struct Spool<T> {
    items: Mutex<VecDeque<T>>,
    capacity: usize,
    /// Wakes the drain when an item is pushed.
    pushed: Notify,
}

impl<T: Clone> Spool<T> {
    /// An empty spool that holds at most `capacity` items.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            items: Mutex::new(VecDeque::new()),
            capacity,
            pushed: Notify::new(),
        }
    }

    /// Appends `item`, or refuses it when the spool is full (nothing spooled is dropped).
    pub(crate) fn push(&self, item: T) -> Result<(), Full> {
        let mut items = self.items();
        if items.len() >= self.capacity {
            return Err(Full);
        }
        items.push_back(item);
        drop(items);
        self.pushed.notify_one();
        Ok(())
    }

    /// Items waiting.
    pub(crate) fn len(&self) -> usize {
        self.items().len()
    }

    /// Whether nothing waits: a writer that finds items waiting spools behind them, which keeps
    /// the order of its writes.
    pub(crate) fn is_empty(&self) -> bool {
        self.items().is_empty()
    }

    /// Writes the items in order with `write`, forever: each is removed once `write` returned
    /// `Ok`, and retried after a backoff while it returns `Err`. Run as a task of its own.
    pub(crate) async fn drain<F, E>(&self, mut write: impl FnMut(T) -> F)
    where
        F: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        self.drain_batches(1, |items| {
            let written = items.into_iter().next().map(&mut write);
            async move {
                match written {
                    Some(written) => written.await.map(|()| 1),
                    None => Ok(0),
                }
            }
        })
        .await;
    }

    /// Writes the items in order, forever, up to `batch` at a time: `write` gets the oldest
    /// ones and returns how many of them, from the first, it wrote; those are removed. When
    /// it returns `Err` (or wrote none) they are retried after a backoff. Run as a task of
    /// its own.
    pub(crate) async fn drain_batches<F, E>(&self, batch: usize, mut write: impl FnMut(Vec<T>) -> F)
    where
        F: Future<Output = Result<usize, E>>,
        E: std::fmt::Display,
    {
        let mut retry = RETRY_MIN;
        loop {
            let pushed = self.pushed.notified();
            let oldest: Vec<T> = self.items().iter().take(batch.max(1)).cloned().collect();
            if oldest.is_empty() {
                pushed.await;
                continue;
            }
            let taken = oldest.len();
            match write(oldest).await {
                Ok(written) if written > 0 => {
                    // Only this task removes items, so the front still holds the ones written.
                    self.items().drain(..written.min(taken));
                    retry = RETRY_MIN;
                }
                outcome => {
                    if let Err(err) = outcome {
                        tracing::debug!(%err, waiting = self.len(), ?retry, "spool: Redis did not take the write yet");
                    }
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
        }
    }

    fn items(&self) -> MutexGuard<'_, VecDeque<T>> {
        self.items.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        },
        time::Duration,
    };

    use super::*;

    #[test]
    fn a_full_spool_refuses_the_new_item_and_keeps_the_others() {
        let spool = Spool::new(2);
        assert_eq!(spool.push(1), Ok(()));
        assert_eq!(spool.push(2), Ok(()));
        assert_eq!(spool.push(3), Err(Full));
        assert_eq!(spool.len(), 2);
    }

    #[tokio::test]
    async fn drains_in_order_retrying_failed_writes() {
        let spool = Arc::new(Spool::new(10));
        for item in 0..5 {
            assert_eq!(spool.push(item), Ok(()));
        }
        let failures = Arc::new(AtomicUsize::new(0));
        let (written_tx, mut written) = tokio::sync::mpsc::unbounded_channel();
        let task = {
            let (spool, failures) = (spool.clone(), failures.clone());
            tokio::spawn(async move {
                spool
                    .drain(|item: i32| {
                        let (failures, written_tx) = (failures.clone(), written_tx.clone());
                        async move {
                            // Every item fails twice before it is taken.
                            if failures.fetch_add(1, Ordering::Relaxed) % 3 < 2 {
                                return Err("Redis is down");
                            }
                            let _ = written_tx.send(item);
                            Ok(())
                        }
                    })
                    .await;
            })
        };
        let mut seen = Vec::new();
        while seen.len() < 5 {
            match tokio::time::timeout(Duration::from_secs(60), written.recv()).await {
                Ok(Some(item)) => seen.push(item),
                other => panic!("the drain stopped early: {other:?}"),
            }
        }
        assert_eq!(seen, [0, 1, 2, 3, 4]);
        assert!(spool.is_empty());
        // Pushed after the drain emptied the spool: still written.
        assert_eq!(spool.push(5), Ok(()));
        let mut next = None;
        for _ in 0..3 {
            if let Ok(Some(item)) =
                tokio::time::timeout(Duration::from_secs(60), written.recv()).await
            {
                next = Some(item);
                break;
            }
        }
        assert_eq!(next, Some(5));
        task.abort();
    }

    #[tokio::test]
    async fn drains_in_batches_and_keeps_what_a_batch_did_not_write() {
        let spool = Arc::new(Spool::new(10));
        for item in 0..7 {
            assert_eq!(spool.push(item), Ok(()));
        }
        let (batches_tx, mut batches) = tokio::sync::mpsc::unbounded_channel();
        let task = {
            let spool = spool.clone();
            tokio::spawn(async move {
                spool
                    .drain_batches(3, |items: Vec<i32>| {
                        let _ = batches_tx.send(items.clone());
                        // Writes two of each batch at most: the third comes again first.
                        async move { Ok::<_, &str>(items.len().min(2)) }
                    })
                    .await;
            })
        };
        let mut seen = Vec::new();
        while seen.last() != Some(&vec![6]) {
            match tokio::time::timeout(Duration::from_secs(60), batches.recv()).await {
                Ok(Some(batch)) => seen.push(batch),
                other => panic!("the drain stopped early: {other:?}"),
            }
        }
        assert_eq!(seen, [vec![0, 1, 2], vec![2, 3, 4], vec![4, 5, 6], vec![6]]);
        assert!(spool.is_empty());
        task.abort();
    }
}
