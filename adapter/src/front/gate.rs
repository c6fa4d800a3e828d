//! Holding back a room's broadcasts for a socket that is being caught up: while an application
//! sends a joining socket what it missed (from its own store), every broadcast to the room
//! that the socket would receive as a member is kept aside for it, in arrival order. When the
//! catch-up ends, under the same lock every local delivery takes while a hold exists, the kept
//! broadcasts the application still wants are sent to the socket and the socket joins the
//! room: it sees the missed messages, then the held ones, then live ones, with no gap.
//!
//! Cost: one atomic load per broadcast while no socket is held; while some are, every local
//! delivery of this namespace takes one mutex. Memory: at most [`MAX_HELD`] packets per held
//! socket; a hold that overflows keeps nothing more and reports it when it ends.

use std::{
    collections::HashMap,
    sync::{
        Mutex, MutexGuard, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
};

use socketioxide_core::{
    Sid,
    adapter::{BroadcastFlags, BroadcastOptions, Room},
    packet::Packet,
};

/// Most broadcasts kept for one held socket.
pub const MAX_HELD: usize = 10_000;

/// The held sockets of one namespace adapter.
#[derive(Default)]
pub(crate) struct Gates {
    /// Holds open; zero keeps the delivery path lock-free.
    open: AtomicUsize,
    held: Mutex<HashMap<Room, Vec<Held>>>,
}

/// One socket held for one room.
struct Held {
    sid: Sid,
    packets: Vec<Packet>,
    overflowed: bool,
}

/// What a hold kept, handed over when it ends.
pub(crate) struct Kept {
    /// The broadcasts, in arrival order.
    pub(crate) packets: Vec<Packet>,
    /// Whether broadcasts were lost because [`MAX_HELD`] were kept already.
    pub(crate) overflowed: bool,
}

impl Gates {
    /// Starts keeping the broadcasts to `room` for `sid`.
    pub(crate) fn open(&self, sid: Sid, room: Room) {
        let mut held = self.lock();
        held.entry(room).or_default().push(Held {
            sid,
            packets: Vec::new(),
            overflowed: false,
        });
        self.open.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether some socket is held for `room`.
    pub(crate) fn holds(&self, room: &str) -> bool {
        self.open.load(Ordering::Acquire) > 0 && self.lock().contains_key(room)
    }

    /// Runs `deliver` (a broadcast of `packet` to the local sockets with `opts`), keeping a
    /// copy of `packet` first for each held socket that would receive it as a member;
    /// `reached_otherwise` tells whether a socket is already reached directly (in another of
    /// the rooms) or excluded (in one of `opts.except`).
    pub(crate) fn deliver<R>(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
        reached_otherwise: impl Fn(Sid, &BroadcastOptions) -> bool,
        deliver: impl FnOnce(Packet, BroadcastOptions) -> R,
    ) -> R {
        if self.open.load(Ordering::Acquire) == 0 || opts.has_flag(BroadcastFlags::Local) {
            return deliver(packet, opts);
        }
        let mut held = self.lock();
        for room in &opts.rooms {
            let Some(sockets) = held.get_mut(room) else {
                continue;
            };
            for socket in sockets {
                let sender =
                    opts.has_flag(BroadcastFlags::Broadcast) && opts.sid == Some(socket.sid);
                if sender || socket.overflowed || reached_otherwise(socket.sid, &opts) {
                    continue;
                }
                if socket.packets.len() >= MAX_HELD {
                    socket.overflowed = true;
                    socket.packets = Vec::new();
                } else {
                    socket.packets.push(packet.clone());
                }
            }
        }
        // Delivered under the lock: a hold cannot end between the copy and the delivery.
        deliver(packet, opts)
    }

    /// Ends the hold of `sid` on `room`: `finish` runs under the delivery lock with what was
    /// kept (it joins the socket and sends it the packets), so no broadcast can reach the
    /// socket in between. `None` when no such hold is open.
    pub(crate) fn close<R>(
        &self,
        sid: Sid,
        room: &Room,
        finish: impl FnOnce(Kept) -> R,
    ) -> Option<R> {
        let mut held = self.lock();
        let sockets = held.get_mut(room)?;
        let at = sockets.iter().position(|socket| socket.sid == sid)?;
        let socket = sockets.swap_remove(at);
        if sockets.is_empty() {
            held.remove(room);
        }
        self.open.fetch_sub(1, Ordering::AcqRel);
        Some(finish(Kept {
            packets: socket.packets,
            overflowed: socket.overflowed,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Room, Vec<Held>>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use socketioxide_core::{Value, packet::Packet};

    use super::*;

    fn event(n: u32) -> Packet {
        Packet::event("/", Value::Str(format!("[\"m\",{n}]").into(), None))
    }

    fn to(room: &str) -> BroadcastOptions {
        let mut opts = BroadcastOptions::default();
        opts.rooms.push(Room::Owned(room.to_owned()));
        opts
    }

    #[test]
    fn keeps_the_broadcasts_of_the_held_room_in_order_until_closed() {
        let gates = Gates::default();
        let (sid, other) = (Sid::new(), Sid::new());
        let room = Room::Borrowed("a");
        gates.open(sid, room.clone());
        assert!(gates.holds("a") && !gates.holds("b"));
        let mut delivered = 0;
        for n in 0..3 {
            gates.deliver(event(n), to("a"), |_, _| false, |_, _| delivered += 1);
        }
        gates.deliver(event(9), to("b"), |_, _| false, |_, _| delivered += 1);
        // Sent by the held socket itself, excluded as the sender: not kept.
        let mut own = to("a");
        own.sid = Some(sid);
        own.add_flag(BroadcastFlags::Broadcast);
        gates.deliver(event(8), own, |_, _| false, |_, _| delivered += 1);
        assert_eq!(delivered, 5);
        assert!(gates.close(other, &room, |_| ()).is_none());
        let kept = gates.close(sid, &room, |kept| kept);
        let kept = kept.map(|kept| (kept.packets, kept.overflowed));
        assert_eq!(kept, Some(((0..3).map(event).collect(), false)));
        assert!(!gates.holds("a"));
    }

    #[test]
    fn a_socket_reached_otherwise_is_not_sent_a_copy() {
        let gates = Gates::default();
        let sid = Sid::new();
        gates.open(sid, Room::Borrowed("a"));
        gates.deliver(event(1), to("a"), |_, _| true, |_, _| ());
        let kept = gates.close(sid, &Room::Borrowed("a"), |kept| kept.packets.len());
        assert_eq!(kept, Some(0));
    }

    #[test]
    fn an_overflowing_hold_keeps_nothing_and_says_so() {
        let gates = Gates::default();
        let sid = Sid::new();
        gates.open(sid, Room::Borrowed("a"));
        for n in 0..=u32::try_from(MAX_HELD).unwrap_or(u32::MAX) {
            gates.deliver(event(n), to("a"), |_, _| false, |_, _| ());
        }
        let kept = gates.close(sid, &Room::Borrowed("a"), |kept| {
            (kept.packets.len(), kept.overflowed)
        });
        assert_eq!(kept, Some((0, true)));
    }
}
