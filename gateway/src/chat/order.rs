//! One socket's events run one at a time, in the order they arrived.
//!
//! socketioxide spawns a task per incoming event, and tokio may run two tasks spawned back to
//! back in either order (the newest task takes the worker's LIFO slot; other workers steal). So a
//! client that emits `join` then `message` without waiting for the first ack could see its
//! message refused as "not a member", and two messages from one sender could reach the room
//! swapped. Extractors, however, run synchronously on the socket's read path, in arrival order:
//! the [`Turn`] extractor takes its place in the socket's queue there, and the handler body waits
//! for the previous event's turn to end before it starts.

use std::{
    convert::Infallible,
    sync::{Arc, Mutex, PoisonError},
};

use socketioxide::{
    adapter::Adapter,
    handler::{FromMessageParts, Value},
    socket::Socket,
};
use tokio::sync::oneshot;

/// The tail of one socket's event queue: the signal that the latest event's turn has ended.
/// Stored in the socket's extensions by the connect middleware.
#[derive(Clone, Default)]
pub(crate) struct EventQueue(Arc<Mutex<Option<oneshot::Receiver<()>>>>);

/// An event's place in its socket's queue; see [`Turn::run`].
pub(crate) struct Turn {
    /// Resolves (or errors, the same to us) once the previous event's turn has ended.
    previous: Option<oneshot::Receiver<()>>,
    /// Dropped when this turn ends, which lets the next event start.
    done: oneshot::Sender<()>,
}

impl EventQueue {
    /// Appends an event to the queue.
    fn push(&self) -> Turn {
        let (done, ended) = oneshot::channel();
        let previous = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(ended);
        Turn { previous, done }
    }
}

impl Turn {
    /// Waits for the previous events of this socket to finish, then runs `work`.
    pub(crate) async fn run<F: Future>(self, work: F) -> F::Output {
        if let Some(previous) = self.previous {
            // An error only means the previous turn's task is gone: its turn is over too.
            let _ = previous.await;
        }
        let output = work.await;
        drop(self.done);
        output
    }
}

impl<A: Adapter> FromMessageParts<A> for Turn {
    type Error = Infallible;

    fn from_message_parts(
        socket: &Arc<Socket<A>>,
        _: &mut Value,
        _: &Option<i64>,
    ) -> Result<Self, Infallible> {
        // The connect middleware installs the queue before any handler exists; a socket without
        // one (impossible today) still gets a turn, just not an ordered one.
        let queue = socket.extensions.get::<EventQueue>().unwrap_or_default();
        Ok(queue.push())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn turns_run_in_queue_order_whatever_the_spawn_order() {
        let queue = EventQueue::default();
        let log = Arc::new(Mutex::new(Vec::new()));
        let turns: Vec<Turn> = (0..5).map(|_| queue.push()).collect();
        let mut tasks = Vec::new();
        // Spawn in reverse; the first turns are also the slowest.
        for (i, turn) in turns.into_iter().enumerate().rev() {
            let log = log.clone();
            tasks.push(tokio::spawn(turn.run(async move {
                tokio::time::sleep(Duration::from_millis(10 * (5 - i as u64))).await;
                log.lock().unwrap_or_else(PoisonError::into_inner).push(i);
            })));
        }
        for task in tasks {
            task.await.unwrap_or_default();
        }
        assert_eq!(
            *log.lock().unwrap_or_else(PoisonError::into_inner),
            [0, 1, 2, 3, 4]
        );
    }

    #[tokio::test]
    async fn a_dropped_turn_releases_the_next() {
        let queue = EventQueue::default();
        let first = queue.push();
        let second = queue.push();
        drop(first);
        let done = tokio::time::timeout(Duration::from_secs(1), second.run(async { 7 })).await;
        assert_eq!(done.ok(), Some(7));
    }
}
