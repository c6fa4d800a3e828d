//! Per-room subscriptions: an instance listens to a room's channel while it has at least one
//! member of the room, and only then, so a broadcast reaches only the instances that hold
//! the room.
//!
//! A join waits until Redis confirmed the subscription, so nothing published after it is
//! missed. The last member leaving releases the room; it is unsubscribed once it has stayed
//! empty for the unsubscribe delay, so join/leave churn costs nothing. Each room has its own
//! async lock, so a join and an unsubscribe of the same room never interleave.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard, Weak},
    time::{Duration, Instant},
};

use super::{PubSub, Room};
use crate::{connection::Handler, error::Error, stats::Counters};

/// Whether one room's channel is subscribed.
#[derive(Default)]
struct RoomState {
    subscribed: bool,
}

type RoomCell = Arc<tokio::sync::Mutex<RoomState>>;

/// The room subscriptions of one namespace adapter.
pub(crate) struct RoomSubscriptions {
    rooms: Mutex<HashMap<Room, RoomCell>>,
    /// Rooms that may have lost their last local member, and since when.
    released: Mutex<HashMap<Room, Instant>>,
    /// Rooms found joined around the adapter's join path, logged once each.
    noticed: Mutex<HashSet<Room>>,
    delay: Duration,
    counters: Arc<Counters>,
}

/// What the room subscriptions need from the namespace that owns them.
pub(crate) trait RoomOwner: Send + Sync + Sized + 'static {
    /// Where the room channels are subscribed.
    type PubSub: PubSub;
    /// The Pub/Sub system.
    fn pubsub(&self) -> &Self::PubSub;
    /// The owner's room subscriptions.
    fn subscriptions(&self) -> &RoomSubscriptions;
    /// The channel of `room`.
    fn channel(&self, room: &str) -> String;
    /// The handler of messages on the channel of `room`.
    fn handler(self: &Arc<Self>, room: &Room) -> Handler;
    /// The channel, subscribed with a plain `SUBSCRIBE`, where the Socket.IO Redis emitter
    /// publishes to `room` alone; `None` when the emitter is not read (or `room` cannot
    /// have such a channel).
    fn emitter_channel(&self, room: &str) -> Option<String>;
    /// The handler of messages on the emitter's channel of `room`.
    fn emitter_handler(self: &Arc<Self>, room: &Room) -> Handler;
    /// Whether this instance has a socket in `room` (exact, off the hot path).
    fn has_members(&self, room: &str) -> bool;
    /// Every room this instance's sockets are in.
    fn held_rooms(&self) -> HashSet<Room>;
}

impl RoomSubscriptions {
    /// No room subscribed; emptied rooms are unsubscribed after `delay`.
    pub fn new(delay: Duration, counters: Arc<Counters>) -> Self {
        Self {
            rooms: Mutex::default(),
            released: Mutex::default(),
            noticed: Mutex::default(),
            delay,
            counters,
        }
    }

    /// Subscribes each room not subscribed yet; returns once Redis confirmed them all, or
    /// the first error (the subscription is then retried with the others on reconnect).
    pub async fn ensure<O: RoomOwner>(&self, owner: &Arc<O>, rooms: &[Room]) -> Result<(), Error> {
        for room in rooms {
            let cell = self.cell(room);
            let mut state = cell.lock().await;
            if state.subscribed {
                continue;
            }
            state.subscribed = true;
            Counters::incr(&self.counters.room_subscriptions);
            let pubsub = owner.pubsub();
            pubsub
                .subscribe(owner.channel(room), owner.handler(room))
                .await?;
            if let Some(channel) = owner.emitter_channel(room) {
                pubsub
                    .subscribe_plain(channel, owner.emitter_handler(room))
                    .await?;
            }
        }
        Ok(())
    }

    /// Whether this instance holds `room`, answered from the subscriptions: `Some(true)`
    /// for a room subscribed and not released since, `None` when only the local sockets can
    /// tell (the room was released: its last member may have left). O(1), for every message
    /// of a room channel.
    pub fn is_held(&self, room: &str) -> Option<bool> {
        (!lock(&self.released).contains_key(room)).then_some(true)
    }

    /// Notes that `rooms` may have lost their last local member.
    pub fn release(&self, rooms: impl IntoIterator<Item = Room>) {
        let now = Instant::now();
        let mut released = lock(&self.released);
        for room in rooms {
            released.entry(room).or_insert(now);
        }
    }

    /// Unsubscribes the released rooms that have been released for the delay and still
    /// have no local member.
    pub async fn sweep<O: RoomOwner>(&self, owner: &Arc<O>) {
        let due: Vec<Room> = {
            let mut released = lock(&self.released);
            let now = Instant::now();
            let due: Vec<Room> = released
                .iter()
                .filter(|(_, since)| now.duration_since(**since) >= self.delay)
                .map(|(room, _)| room.clone())
                .collect();
            for room in &due {
                released.remove(room);
            }
            due
        };
        for room in due {
            self.unsubscribe_if_empty(owner, room).await;
        }
    }

    /// Compares the subscriptions with `local_rooms`, the rooms this instance's sockets are
    /// in: subscribes what is missing (a room joined around the adapter, logged once) and
    /// releases what is subscribed without members.
    pub async fn reconcile<O: RoomOwner>(&self, owner: &Arc<O>, local_rooms: HashSet<Room>) {
        let subscribed: HashSet<Room> = lock(&self.rooms).keys().cloned().collect();
        let missing: Vec<Room> = local_rooms.difference(&subscribed).cloned().collect();
        for room in &missing {
            if lock(&self.noticed).insert(room.clone()) {
                tracing::warn!(
                    %room,
                    "room joined around the bus's join path: subscribed by reconcile"
                );
            }
        }
        if let Err(err) = self.ensure(owner, &missing).await {
            tracing::debug!(%err, "reconcile could not subscribe every room; retrying later");
        }
        self.release(subscribed.difference(&local_rooms).cloned());
    }

    /// Every subscribed room, for a clean shutdown.
    pub fn subscribed(&self) -> Vec<Room> {
        lock(&self.rooms).keys().cloned().collect()
    }

    async fn unsubscribe_if_empty<O: RoomOwner>(&self, owner: &Arc<O>, room: Room) {
        let Some(cell) = lock(&self.rooms).get(&room).cloned() else {
            return;
        };
        {
            let mut state = cell.lock().await;
            if !state.subscribed || owner.has_members(&room) {
                return;
            }
            state.subscribed = false;
            Counters::decr(&self.counters.room_subscriptions);
            owner.pubsub().unsubscribe(owner.channel(&room)).await;
            if let Some(channel) = owner.emitter_channel(&room) {
                owner.pubsub().unsubscribe_plain(channel).await;
            }
        }
        drop(cell);
        let mut rooms = lock(&self.rooms);
        // Forget the room unless a join took its cell meanwhile.
        if rooms
            .get(&room)
            .is_some_and(|cell| Arc::strong_count(cell) == 1)
        {
            rooms.remove(&room);
            lock(&self.noticed).remove(&room);
        }
    }

    fn cell(&self, room: &Room) -> RoomCell {
        lock(&self.rooms).entry(room.clone()).or_default().clone()
    }
}

/// Keeps `owner`'s room subscriptions in line with the rooms it holds: unsubscribes
/// released rooms once the delay has passed, and reconciles every `reconcile` interval. Ends
/// when the owner is gone.
pub(crate) async fn keep<O: RoomOwner>(owner: Weak<O>, delay: Duration, reconcile: Duration) {
    let tick = (delay / 2).clamp(
        Duration::from_millis(10),
        reconcile.max(Duration::from_millis(10)),
    );
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_reconcile = tokio::time::Instant::now();
    loop {
        ticker.tick().await;
        let Some(owner) = owner.upgrade() else {
            return;
        };
        let rooms = owner.subscriptions();
        if last_reconcile.elapsed() >= reconcile {
            last_reconcile = tokio::time::Instant::now();
            rooms.reconcile(&owner, owner.held_rooms()).await;
        }
        rooms.sweep(&owner).await;
    }
}

/// These maps are only held for a lookup or an insert, never across a panic that could leave
/// them half-changed; a poisoned lock is used as is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
