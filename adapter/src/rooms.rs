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
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use socketioxide_core::adapter::Room;

use crate::{
    bus::{Bus, Handler},
    error::Error,
    stats::Counters,
};

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

/// What a room subscription needs from its adapter.
pub(crate) trait RoomChannels {
    /// The channel of `room`.
    fn channel(&self, room: &Room) -> String;
    /// The handler of messages on the channel of `room`.
    fn handler(&self, room: &Room) -> Handler;
    /// Whether this instance has a socket in `room`.
    fn has_members(&self, room: &Room) -> bool;
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
    pub async fn ensure(
        &self,
        bus: &Bus,
        owner: &impl RoomChannels,
        rooms: &[Room],
    ) -> Result<(), Error> {
        for room in rooms {
            let cell = self.cell(room);
            let mut state = cell.lock().await;
            if state.subscribed {
                continue;
            }
            state.subscribed = true;
            Counters::incr(&self.counters.room_subscriptions);
            bus.subscribe(owner.channel(room), owner.handler(room))
                .await?;
        }
        Ok(())
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
    pub async fn sweep(&self, bus: &Bus, owner: &impl RoomChannels) {
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
            self.unsubscribe_if_empty(bus, owner, room).await;
        }
    }

    /// Compares the subscriptions with `local_rooms`, the rooms this instance's sockets are
    /// in: subscribes what is missing (a room joined around the adapter, logged once) and
    /// releases what is subscribed without members.
    pub async fn reconcile(
        &self,
        bus: &Bus,
        owner: &impl RoomChannels,
        local_rooms: HashSet<Room>,
    ) {
        let subscribed: HashSet<Room> = lock(&self.rooms).keys().cloned().collect();
        let missing: Vec<Room> = local_rooms.difference(&subscribed).cloned().collect();
        for room in &missing {
            if lock(&self.noticed).insert(room.clone()) {
                tracing::warn!(
                    %room,
                    "room joined without RedisAdapterState::join: subscribed by reconcile"
                );
            }
        }
        if let Err(err) = self.ensure(bus, owner, &missing).await {
            tracing::debug!(%err, "reconcile could not subscribe every room; retrying later");
        }
        self.release(subscribed.difference(&local_rooms).cloned());
    }

    /// Every subscribed room, for a clean shutdown.
    pub fn subscribed(&self) -> Vec<Room> {
        lock(&self.rooms).keys().cloned().collect()
    }

    async fn unsubscribe_if_empty(&self, bus: &Bus, owner: &impl RoomChannels, room: Room) {
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
            bus.unsubscribe(owner.channel(&room)).await;
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

/// These maps are only held for a lookup or an insert, never across a panic that could leave
/// them half-changed; a poisoned lock is used as is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
