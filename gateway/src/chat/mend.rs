//! Mending a gap in this instance's subscriptions, so that live members miss nothing.
//!
//! While a subscription is broken (the subscriber reconnecting to Redis, a Redis Cluster
//! node restarted or failed over) the lines other instances publish to this instance's rooms
//! do not reach it, although the rooms' streams hold them. Once every subscription holds
//! again (the Redis layer's link says `subscribed`, in a new generation), each chat room with
//! members here is read from [`MARGIN_MS`] before the gap was seen on, and its members are
//! sent the lines of other instances this instance did not relay (its own lines reached its
//! members at once). A mended line may come after later ones: its `id` orders it.
//!
//! So that nobody gets a line twice, the ids of the lines relayed or replayed to each room are
//! kept for [`MARGIN_MS`] (from the gap's start on while one is open, at most [`KEPT_MAX`] per
//! room), and a line whose id was mended already is dropped when it is relayed after all (a
//! line published late: spooled through an outage, or stored then published). Nor is a line
//! older than the moment this instance began to hold the room mended: its members joined
//! after it.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use engine::sockets::Nsp;
use redis_adapter::{LinkRx, Room};
use tokio::task::JoinHandle;

use super::ChatState;
use crate::{
    history::{Message, MessageId, stamped_id},
    ids::now_ms,
    metrics,
    tenancy::{self, Kind},
};

/// How long before the moment a gap was seen a mend reads the streams from: a gap is seen
/// late (a cluster's topology is looked at every probe interval, a deaf subscriber found
/// after a probe timeout), and a line is published up to a command deadline after its id
/// was picked.
const MARGIN_MS: u64 = 10_000;
/// Most lines one room is mended with; a longer gap counts as a failed mend.
const MEND_MAX: usize = 1_000;
/// Most relayed ids kept per room.
const KEPT_MAX: usize = 4_096;

/// The ids of the lines relayed to each room here, and when the open gap began.
#[derive(Default)]
pub(crate) struct Relayed(Mutex<Lines>);

#[derive(Default)]
struct Lines {
    /// Per room (internal name) held here, what its members were sent.
    rooms: HashMap<Room, Kept>,
    /// When the open gap was seen, ms since the epoch.
    gap_since: Option<u64>,
}

/// What one room's members here were sent.
#[derive(Default)]
struct Kept {
    /// Since when (ms) this instance holds the room: nothing older is mended, its members
    /// joined after it (0: not known, everything a mend reads counts).
    since: u64,
    /// The ids relayed, replayed or mended, in arrival order.
    ids: VecDeque<MessageId>,
    /// The same ids, to look one up in constant time on every relayed line.
    known: HashSet<MessageId>,
}

impl Kept {
    /// Keeps `id`, dropping the oldest ones beyond [`KEPT_MAX`] or before `cutoff` (ms);
    /// false when it was kept already.
    fn keep(&mut self, id: MessageId, cutoff: u64) -> bool {
        if !self.known.insert(id) {
            return false;
        }
        self.ids.push_back(id);
        while self.ids.len() > KEPT_MAX || self.ids.front().is_some_and(|first| first.ms() < cutoff)
        {
            if let Some(first) = self.ids.pop_front() {
                self.known.remove(&first);
            }
        }
        true
    }

    /// Drops every id before `cutoff` (ms), wherever it stands.
    fn forget_before(&mut self, cutoff: u64) {
        self.ids.retain(|id| id.ms() >= cutoff);
        self.known.retain(|id| id.ms() >= cutoff);
    }
}

impl Relayed {
    /// Whether a broadcast from another instance to `rooms` (its event `data`) is delivered:
    /// every one but a `message` to one chat room whose id was mended already. The id of
    /// each delivered one is kept.
    pub(crate) fn admit(&self, rooms: &[Room], data: &str) -> bool {
        let [room] = rooms else {
            return true;
        };
        // The prefix spares parsing every other event (typing notices, say) on this hot path.
        if !data.starts_with(r#"["message","#) || !tenancy::is_chat_room(room) {
            return true;
        }
        let Some(id) = stamped_id(data) else {
            return true;
        };
        let fresh = self.keep(room, id);
        if !fresh {
            metrics::mend_duplicate();
        }
        fresh
    }

    /// A socket is about to join `room`: if this instance did not hold it, nothing sent to
    /// it before now is mended.
    pub(crate) fn joining(&self, room: &str) {
        let mut lines = self.lock();
        if !lines.rooms.contains_key(room) {
            let kept = Kept {
                since: now_ms(),
                ..Kept::default()
            };
            lines.rooms.insert(Room::Owned(room.to_owned()), kept);
        }
    }

    /// Keeps `id` as sent to `room`'s members; false when it was already. What is older than
    /// any mend reads goes from the front (ids come about in time order; [`Relayed::sweep`]
    /// catches the rest).
    pub(crate) fn keep(&self, room: &str, id: MessageId) -> bool {
        let mut lines = self.lock();
        let cutoff = lines.cutoff(now_ms());
        if let Some(kept) = lines.rooms.get_mut(room) {
            return kept.keep(id, cutoff);
        }
        let mut kept = Kept::default();
        kept.keep(id, cutoff);
        lines.rooms.insert(Room::Owned(room.to_owned()), kept);
        true
    }

    /// Since when (ms) `room`'s lines are mended: not before this instance held it.
    fn mended_since(&self, room: &str) -> u64 {
        self.lock().rooms.get(room).map_or(0, |kept| kept.since)
    }

    /// Forgets the rooms no longer `held`, and what is older than any mend reads.
    fn sweep(&self, held: &HashSet<Room>) {
        let mut lines = self.lock();
        let cutoff = lines.cutoff(now_ms());
        lines.rooms.retain(|room, kept| {
            kept.forget_before(cutoff);
            held.contains(room)
        });
    }

    /// A gap was seen now (the first moment counts while it stays open).
    fn gap_began(&self) {
        self.lock().gap_since.get_or_insert_with(now_ms);
    }

    /// The gap is over: the moment a mend reads from. A gap that opened and closed between
    /// two looks at the link began just now.
    fn gap_ended(&self) -> u64 {
        let since = self.lock().gap_since.take();
        since.unwrap_or_else(now_ms).saturating_sub(MARGIN_MS)
    }

    fn lock(&self) -> MutexGuard<'_, Lines> {
        // Only map and queue updates happen under the lock.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Lines {
    /// Ids older than this (ms) can no longer be read by a mend.
    fn cutoff(&self, now: u64) -> u64 {
        let since = self.gap_since.unwrap_or(now);
        since.min(now).saturating_sub(MARGIN_MS)
    }
}

/// Follows `link` and mends `nsp`'s rooms after each gap; sweeps the kept ids meanwhile.
pub(crate) fn spawn(nsp: Arc<Nsp>, chat: ChatState, mut link: LinkRx) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut sweep = tokio::time::interval(Duration::from_millis(MARGIN_MS));
        let mut generation = link.borrow().generation;
        loop {
            tokio::select! {
                changed = link.changed() => if changed.is_err() { return },
                _ = sweep.tick() => {
                    chat.relayed.sweep(&nsp.held_rooms());
                    continue;
                }
            }
            let now = *link.borrow_and_update();
            if !now.subscribed {
                chat.relayed.gap_began();
            } else if now.generation != generation {
                generation = now.generation;
                mend(&nsp, &chat, chat.relayed.gap_ended()).await;
            }
        }
    })
}

/// Sends each chat room's local members the lines of other instances from `from_ms` on that
/// were not relayed to them.
async fn mend(nsp: &Arc<Nsp>, chat: &ChatState, from_ms: u64) {
    let mut mended = 0;
    for room in nsp.held_rooms() {
        let Some((tenant, Kind::Room, name)) = tenancy::parse(&room) else {
            continue;
        };
        let Some(stream) = chat.mode.room_stream(tenant, name) else {
            return;
        };
        let from_ms = from_ms.max(chat.relayed.mended_since(&room));
        let lines = match chat.mode.lines_from(&stream, from_ms, MEND_MAX).await {
            Ok(lines) => lines,
            Err(err) => {
                tracing::warn!(%room, %err, "cannot read a room's stream to mend a gap");
                metrics::mend_failed();
                continue;
            }
        };
        if lines.len() == MEND_MAX {
            tracing::warn!(%room, "a gap longer than a mend reads: members re-join with since");
            metrics::mend_failed();
        }
        for (id, record) in lines {
            let Ok(parsed) = id.parse::<MessageId>() else {
                continue;
            };
            if chat.message_ids.gave(&record.key) || !chat.relayed.keep(&room, parsed) {
                continue;
            }
            let message = Message::new(record, Some(id), Some(name));
            if let Err(err) = nsp.to([room.clone()]).local().emit_now("message", &message) {
                tracing::warn!(%room, %err, "a mended line was not sent");
                continue;
            }
            mended += 1;
        }
    }
    if mended > 0 {
        tracing::info!(
            mended,
            "lines missed during a gap in the subscriptions sent"
        );
    }
    metrics::mended(mended);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str) -> Room {
        Room::Owned(name.to_owned())
    }

    fn line(id: &str) -> String {
        format!(r#"["message",{{"room":"a","id":"{id}","key":"k-1","text":"hi"}}]"#)
    }

    fn id(ms: u64) -> MessageId {
        format!("{ms}-0").parse().unwrap_or_else(|_| unreachable!())
    }

    fn kept(relayed: &Relayed, room: &str) -> usize {
        relayed
            .lock()
            .rooms
            .get(room)
            .map_or(0, |kept| kept.ids.len())
    }

    #[test]
    fn a_line_mended_first_is_dropped_when_relayed_and_relayed_ones_once_only() {
        let relayed = Relayed::default();
        let lobby = [room("t:acme:r:lobby")];
        let now = now_ms();
        assert!(relayed.keep(&lobby[0], id(now)));
        assert!(!relayed.admit(&lobby, &line(&format!("{now}-0"))));
        assert!(relayed.admit(&lobby, &line(&format!("{now}-1"))));
        assert!(!relayed.admit(&lobby, &line(&format!("{now}-1"))));
        // The same id in another room is another line.
        assert!(relayed.admit(&[room("t:acme:r:other")], &line(&format!("{now}-1"))));
    }

    #[test]
    fn anything_but_a_stamped_line_to_one_chat_room_is_let_through_unkept() {
        let relayed = Relayed::default();
        let lobby = room("t:acme:r:lobby");
        let stamped = line(&format!("{}-0", now_ms()));
        for _ in 0..2 {
            assert!(relayed.admit(&[lobby.clone(), room("t:acme:r:b")], &stamped));
            assert!(relayed.admit(&[room("t:acme:u:bob")], &stamped));
            let one = std::slice::from_ref(&lobby);
            assert!(relayed.admit(one, r#"["typing",{"room":"a"}]"#));
            assert!(relayed.admit(one, r#"["message",{"id":null,"pending":true}]"#));
            assert!(relayed.admit(one, r#"["message",{"id":"x"}]"#));
            assert!(relayed.admit(one, r#"["message",{"id":"#));
        }
        assert!(relayed.lock().rooms.is_empty());
    }

    #[test]
    fn ids_are_kept_for_the_margin_and_from_an_open_gap_on() {
        let relayed = Relayed::default();
        let lobby = room("t:acme:r:lobby");
        let held = HashSet::from([lobby.clone()]);
        let now = now_ms();
        assert!(relayed.keep(&lobby, id(now - MARGIN_MS - 5_000)));
        assert!(relayed.keep(&lobby, id(now - 1_000)));
        relayed.sweep(&held);
        assert_eq!(kept(&relayed, &lobby), 1);

        relayed.gap_began();
        let since = relayed.lock().gap_since;
        relayed.gap_began();
        assert_eq!(relayed.lock().gap_since, since, "the first moment counts");
        // While the gap is open, what a mend will read stays kept.
        relayed.lock().gap_since = Some(now - 60_000);
        assert!(relayed.keep(&lobby, id(now - 65_000)));
        relayed.sweep(&held);
        assert_eq!(kept(&relayed, &lobby), 2);
        assert_eq!(relayed.gap_ended(), now - 60_000 - MARGIN_MS);
        assert!(
            relayed.gap_ended() >= now - MARGIN_MS,
            "none open: one just now"
        );
        relayed.sweep(&held);
        assert_eq!(kept(&relayed, &lobby), 1);
        assert!(relayed.keep(&lobby, id(now - 65_000)), "swept: new again");
        // A room no longer held is forgotten.
        relayed.sweep(&HashSet::new());
        assert!(relayed.lock().rooms.is_empty());
    }

    #[test]
    fn a_room_is_mended_from_when_it_was_first_joined_here_only() {
        let relayed = Relayed::default();
        let before = now_ms();
        relayed.joining("t:acme:r:new");
        let since = relayed.mended_since("t:acme:r:new");
        assert!(since >= before);
        relayed.joining("t:acme:r:new");
        assert_eq!(
            relayed.mended_since("t:acme:r:new"),
            since,
            "a later join changes nothing"
        );
        // A room held without a join seen here (the emitter joined its sockets, say).
        assert!(relayed.keep("t:acme:r:old", id(before)));
        assert_eq!(relayed.mended_since("t:acme:r:old"), 0);
        assert_eq!(relayed.mended_since("t:acme:r:unknown"), 0);
    }

    #[test]
    fn a_room_keeps_at_most_its_bound_of_ids() {
        let relayed = Relayed::default();
        let now = now_ms();
        for seq in 0..KEPT_MAX + 10 {
            let id = format!("{now}-{seq}")
                .parse()
                .unwrap_or_else(|_| unreachable!());
            assert!(relayed.keep("t:acme:r:lobby", id));
        }
        assert_eq!(kept(&relayed, "t:acme:r:lobby"), KEPT_MAX);
        // The first ids were forgotten whole: one of them counts as new again.
        let first = format!("{now}-0")
            .parse()
            .unwrap_or_else(|_| unreachable!());
        assert!(relayed.keep("t:acme:r:lobby", first));
        let newest = format!("{now}-{}", KEPT_MAX + 9)
            .parse()
            .unwrap_or_else(|_| unreachable!());
        assert!(!relayed.keep("t:acme:r:lobby", newest));
    }
}
