//! One socket's events run one at a time, in the order they arrived, within the socket's
//! budget and queue bound.
//!
//! Each event's handler runs in a task of its own, and tokio may run two tasks spawned back to
//! back in either order (the newest task takes the worker's LIFO slot; other workers steal). So
//! a client that emits `join` then `message` without waiting for the first ack could see its
//! message refused as "not a member", and two messages from one sender could reach the room
//! swapped. The engine, however, hands over a socket's events on its read path, in arrival
//! order: each takes its [`Turn`] in the socket's queue there ([`EventQueue::push`]), and the
//! handler body waits for the previous event's turn to end before it starts.
//!
//! The same step admits the event: an event beyond the socket's [`Budget`] is refused
//! `rate_limited`, and one arriving while [`Limits::queue`] events of the socket are admitted
//! and not yet finished is refused `queue_full`. A refused event never enters the queue: its
//! handler acks the refusal at once (possibly before the acks of earlier events) and does no
//! other work, so it costs no Redis round trip.

use std::{
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use tokio::sync::oneshot;

use super::budget::Budget;
use crate::{ratelimit::Rate, refusal::Refusal};

/// What one socket may cost: its event budget and how many of its events may wait.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Events per socket (every event, handled or not).
    pub(crate) rate: Rate,
    /// Events of one socket admitted and not yet finished (the running one included).
    pub(crate) queue: usize,
}

/// One socket's event queue, budget and count of waiting events. Stored in the socket's
/// data by the chat's connect step.
#[derive(Clone)]
pub(crate) struct EventQueue(Arc<Queue>);

/// The shared part of an [`EventQueue`].
struct Queue {
    /// The queue's tail and the budget, locked together once per event (by this socket only).
    state: Mutex<State>,
    /// Events admitted whose turn has not ended.
    waiting: AtomicUsize,
    /// Bound of `waiting`.
    bound: usize,
}

/// What an event's admission reads and changes.
struct State {
    /// The signal that the latest event's turn has ended.
    tail: Option<oneshot::Receiver<()>>,
    /// The socket's event budget.
    budget: Budget,
}

/// An event's place in its socket's queue, or why it was refused; see [`Turn::start`].
pub(crate) struct Turn(Result<Slot, Refusal>);

/// An admitted event's place in the queue.
struct Slot {
    /// Resolves (or errors, the same to us) once the previous event's turn has ended.
    previous: Option<oneshot::Receiver<()>>,
    /// Dropped when this turn ends, which lets the next event start.
    done: oneshot::Sender<()>,
    /// Counts the event in `waiting` until this turn ends.
    waiting: Waiting,
}

/// One event counted in its queue's `waiting`, until dropped.
struct Waiting(Arc<Queue>);

impl EventQueue {
    /// An empty queue with a full budget.
    pub(crate) fn new(limits: Limits) -> Self {
        Self(Arc::new(Queue {
            state: Mutex::new(State {
                tail: None,
                budget: Budget::new(limits.rate),
            }),
            waiting: AtomicUsize::new(0),
            bound: limits.queue,
        }))
    }

    /// Admits an event at the tail of the queue, or refuses it.
    pub(crate) fn push(&self) -> Turn {
        let mut state = self.0.state.lock().unwrap_or_else(PoisonError::into_inner);
        if self.0.waiting.load(Ordering::Relaxed) >= self.0.bound {
            return Turn(Err(Refusal::QueueFull));
        }
        if let Err(retry_after) = state.budget.take(Instant::now()) {
            return Turn(Err(Refusal::RateLimited { retry_after }));
        }
        self.0.waiting.fetch_add(1, Ordering::Relaxed);
        let (done, ended) = oneshot::channel();
        let previous = state.tail.replace(ended);
        Turn(Ok(Slot {
            previous,
            done,
            waiting: Waiting(self.0.clone()),
        }))
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Turn {
    /// Whether an earlier event of the socket is still running, so that this one must wait.
    pub(crate) fn waits(&mut self) -> bool {
        let Ok(slot) = &mut self.0 else {
            return false;
        };
        let Some(previous) = &mut slot.previous else {
            return false;
        };
        // The previous turn's sender is only ever dropped: anything but `Empty` means over.
        if matches!(
            previous.try_recv(),
            Err(oneshot::error::TryRecvError::Empty)
        ) {
            return true;
        }
        slot.previous = None;
        false
    }

    /// Waits for the earlier events of the socket to finish; [`Turn::start`] then returns at
    /// once.
    pub(crate) async fn ready(mut self) -> Self {
        if let Ok(Slot { previous, .. }) = &mut self.0
            && let Some(previous) = previous.take()
        {
            // An error only means the previous turn's task is gone: its turn is over too.
            let _ = previous.await;
        }
        self
    }

    /// Waits for the previous events of this socket to finish and starts this event's turn,
    /// which lasts until the returned [`Running`] is dropped; a refused event gets its
    /// refusal at once. (The caller runs its handler between the two, rather than handing
    /// the handler's future to an `async fn` that would hold it twice.)
    pub(crate) async fn start(self) -> Result<Running, Refusal> {
        let Slot { done, waiting, .. } = self.ready().await.0?;
        Ok(Running {
            _done: done,
            _waiting: waiting,
        })
    }
}

/// An event's turn in progress: the socket's next event starts once it is dropped.
pub(crate) struct Running {
    _done: oneshot::Sender<()>,
    _waiting: Waiting,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Runs `work` in `turn`, as the chat's handlers are run.
    async fn run<T>(
        turn: Turn,
        work: impl Future<Output = Result<T, Refusal>>,
    ) -> Result<T, Refusal> {
        let running = turn.start().await?;
        let output = work.await;
        drop(running);
        output
    }

    /// Limits out of the way of the ordering tests.
    const ROOMY: Limits = Limits {
        rate: Rate::new(1_000, Duration::from_secs(1)),
        queue: 100,
    };

    #[tokio::test]
    async fn turns_run_in_queue_order_whatever_the_spawn_order() {
        let queue = EventQueue::new(ROOMY);
        let log = Arc::new(Mutex::new(Vec::new()));
        let turns: Vec<Turn> = (0..5).map(|_| queue.push()).collect();
        let mut tasks = Vec::new();
        // Spawn in reverse; the first turns are also the slowest.
        for (i, turn) in turns.into_iter().enumerate().rev() {
            let log = log.clone();
            tasks.push(tokio::spawn(run(turn, async move {
                tokio::time::sleep(Duration::from_millis(10 * (5 - i as u64))).await;
                log.lock().unwrap_or_else(PoisonError::into_inner).push(i);
                Ok(())
            })));
        }
        for task in tasks {
            assert!(matches!(task.await, Ok(Ok(()))));
        }
        assert_eq!(
            *log.lock().unwrap_or_else(PoisonError::into_inner),
            [0, 1, 2, 3, 4]
        );
    }

    #[tokio::test]
    async fn a_turn_waits_only_while_an_earlier_one_runs() {
        let queue = EventQueue::new(ROOMY);
        let mut first = queue.push();
        assert!(!first.waits(), "nothing ran before the first event");
        let mut second = queue.push();
        assert!(second.waits(), "the first event has not run yet");
        assert!(matches!(run(first, async { Ok(()) }).await, Ok(())));
        assert!(!second.waits(), "the first event's turn is over");
        let second = tokio::time::timeout(Duration::from_secs(1), second.ready()).await;
        assert!(second.is_ok(), "a turn free to run waited");
    }

    #[tokio::test]
    async fn a_dropped_turn_releases_the_next() {
        let queue = EventQueue::new(ROOMY);
        let first = queue.push();
        let second = queue.push();
        drop(first);
        let done = tokio::time::timeout(Duration::from_secs(1), run(second, async { Ok(7) })).await;
        assert!(matches!(done, Ok(Ok(7))));
    }

    #[tokio::test]
    async fn events_beyond_the_queue_bound_are_refused_until_one_ends() {
        let queue = EventQueue::new(Limits { queue: 2, ..ROOMY });
        let first = queue.push();
        let _second = queue.push();
        let refused = run(queue.push(), async { Ok(()) }).await;
        assert!(matches!(refused, Err(Refusal::QueueFull)));
        assert!(matches!(run(first, async { Ok(()) }).await, Ok(())));
        assert!(queue.push().0.is_ok());
    }

    #[tokio::test]
    async fn events_beyond_the_budget_are_refused_without_running() {
        let queue = EventQueue::new(Limits {
            rate: Rate::new(3, Duration::from_secs(60)),
            ..ROOMY
        });
        for _ in 0..3 {
            assert!(run(queue.push(), async { Ok(()) }).await.is_ok());
        }
        let ran = Arc::new(AtomicUsize::new(0));
        let refused = run(queue.push(), async {
            ran.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
        .await;
        assert!(matches!(refused, Err(Refusal::RateLimited { .. })));
        assert_eq!(ran.load(Ordering::Relaxed), 0);
    }
}
