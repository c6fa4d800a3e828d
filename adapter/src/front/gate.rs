//! Holding back a room's broadcasts for a socket that is being caught up: while an application
//! sends a joining socket what it missed (from its own store), every broadcast to the room
//! that the socket would receive as a member is kept aside for it, in arrival order. When the
//! catch-up ends, under the same lock every local delivery takes while a hold exists, the kept
//! broadcasts the application still wants are sent to the socket, and the hold turns into a
//! filter: for a grace period each new broadcast is sent to the socket at once if the
//! application still wants it (a message stored before the catch-up read it, but published
//! only after, must not come twice). Then the socket joins the room. It sees the missed
//! messages, then the held ones, then live ones, with no gap and no duplicate.
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
    /// The last hold's ticket.
    tickets: std::sync::atomic::AtomicU64,
    held: Mutex<HashMap<Room, Vec<Held>>>,
}

/// Which broadcasts an application still wants for a socket it caught up.
pub(crate) type Keep = Box<dyn Fn(&Packet) -> bool + Send + Sync>;

/// One socket held for one room.
struct Held {
    /// Tells this hold from a later one of the same socket and room.
    ticket: u64,
    sid: Sid,
    packets: Vec<Packet>,
    overflowed: bool,
    /// Set once the catch-up ended: broadcasts pass straight to the socket if it keeps them.
    filter: Option<Keep>,
}

/// What a hold kept, handed over when it ends.
pub(crate) struct Kept {
    /// The broadcasts, in arrival order.
    pub(crate) packets: Vec<Packet>,
    /// Whether broadcasts were lost because [`MAX_HELD`] were kept already.
    pub(crate) overflowed: bool,
}

impl Gates {
    /// Starts keeping the broadcasts to `room` for `sid`; the ticket names this hold.
    pub(crate) fn open(&self, sid: Sid, room: Room) -> u64 {
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed) + 1;
        let mut held = self.lock();
        held.entry(room).or_default().push(Held {
            ticket,
            sid,
            packets: Vec::new(),
            overflowed: false,
            filter: None,
        });
        self.open.fetch_add(1, Ordering::AcqRel);
        ticket
    }

    /// Whether some socket is held for `room`.
    pub(crate) fn holds(&self, room: &str) -> bool {
        self.open.load(Ordering::Acquire) > 0 && self.lock().contains_key(room)
    }

    /// Runs `deliver` (a broadcast of `packet` to the local sockets with `opts`), keeping a
    /// copy of `packet` first for each held socket that would receive it as a member, once
    /// per socket (in the hold of the first of its held rooms that `opts` names);
    /// `reached_otherwise` tells whether a socket is already reached directly (in another of
    /// the rooms) or excluded (in one of `opts.except`).
    /// A filtering socket is sent the packet with `send_to` instead, if its filter keeps it.
    pub(crate) fn deliver<R>(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
        reached_otherwise: impl Fn(Sid, &BroadcastOptions) -> bool,
        send_to: impl Fn(Sid, Packet),
        deliver: impl FnOnce(Packet, BroadcastOptions) -> R,
    ) -> R {
        if self.open.load(Ordering::Acquire) == 0 || opts.has_flag(BroadcastFlags::Local) {
            return deliver(packet, opts);
        }
        let mut held = self.lock();
        // The sockets this broadcast reached through a hold already (few: a list will do).
        let mut reached: Vec<Sid> = Vec::new();
        for room in &opts.rooms {
            let Some(sockets) = held.get_mut(room) else {
                continue;
            };
            for socket in sockets {
                let sender =
                    opts.has_flag(BroadcastFlags::Broadcast) && opts.sid == Some(socket.sid);
                if sender || reached.contains(&socket.sid) {
                    continue;
                }
                reached.push(socket.sid);
                if socket.overflowed || reached_otherwise(socket.sid, &opts) {
                    continue;
                }
                if let Some(keep) = &socket.filter {
                    if keep(&packet) {
                        send_to(socket.sid, packet.clone());
                    }
                } else if socket.packets.len() >= MAX_HELD {
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

    /// Ends the catch-up of hold `ticket` on `room`: hands what was kept to `send` under the delivery
    /// lock (nothing can reach the socket in between), then filters later broadcasts with
    /// `keep` until [`Gates::close`]. `None` when no such hold is open.
    pub(crate) fn pass<R>(
        &self,
        ticket: u64,
        room: &Room,
        keep: Keep,
        send: impl FnOnce(Kept, &Keep) -> R,
    ) -> Option<R> {
        let mut held = self.lock();
        let socket = held
            .get_mut(room)?
            .iter_mut()
            .find(|socket| socket.ticket == ticket)?;
        let kept = Kept {
            packets: std::mem::take(&mut socket.packets),
            overflowed: socket.overflowed,
        };
        let sent = send(kept, &keep);
        socket.filter = Some(keep);
        Some(sent)
    }

    /// Ends hold `ticket` on `room`: `finish` runs under the delivery lock (it makes the
    /// socket a member), so no broadcast can reach the socket twice or not at all. `None`
    /// when no such hold is open.
    pub(crate) fn close<R>(
        &self,
        ticket: u64,
        room: &Room,
        finish: impl FnOnce() -> R,
    ) -> Option<R> {
        self.close_where(room, |socket| socket.ticket == ticket, finish)
    }

    /// Ends every hold of `sid` on `room` (the socket left it).
    pub(crate) fn close_all(&self, sid: Sid, room: &Room) {
        while self
            .close_where(room, |socket| socket.sid == sid, || ())
            .is_some()
        {}
    }

    /// Removes the first hold on `room` that `which` selects, then runs `finish`, all under
    /// the delivery lock.
    fn close_where<R>(
        &self,
        room: &Room,
        which: impl Fn(&Held) -> bool,
        finish: impl FnOnce() -> R,
    ) -> Option<R> {
        let mut held = self.lock();
        let sockets = held.get_mut(room)?;
        let at = sockets.iter().position(which)?;
        sockets.swap_remove(at);
        if sockets.is_empty() {
            held.remove(room);
        }
        self.open.fetch_sub(1, Ordering::AcqRel);
        let finished = finish();
        drop(held);
        Some(finished)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Room, Vec<Held>>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

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

    fn keep_all() -> Keep {
        Box::new(|_| true)
    }

    #[test]
    fn keeps_the_broadcasts_of_the_held_room_in_order_then_filters_then_closes() {
        let gates = Gates::default();
        let (sid, other) = (Sid::new(), Sid::new());
        let room = Room::Borrowed("a");
        let ticket = gates.open(sid, room.clone());
        assert!(gates.holds("a") && !gates.holds("b"));
        let mut delivered = 0;
        let direct = Mutex::new(Vec::new());
        let send_to = |to: Sid, packet: Packet| {
            direct
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((to, packet))
        };
        for n in 0..3 {
            gates.deliver(
                event(n),
                to("a"),
                |_, _| false,
                send_to,
                |_, _| delivered += 1,
            );
        }
        gates.deliver(
            event(9),
            to("b"),
            |_, _| false,
            send_to,
            |_, _| delivered += 1,
        );
        // Sent by the held socket itself, excluded as the sender: not kept.
        let mut own = to("a");
        own.sid = Some(sid);
        own.add_flag(BroadcastFlags::Broadcast);
        gates.deliver(event(8), own, |_, _| false, send_to, |_, _| delivered += 1);
        assert_eq!(delivered, 5);
        assert!(
            gates
                .pass(ticket + 1, &room, keep_all(), |_, _| ())
                .is_none()
        );
        let _ = other;
        // Keeps only even numbers from now on.
        let even: Keep = Box::new(|packet| packet == &event(4) || packet == &event(6));
        let kept = gates.pass(ticket, &room, even, |kept, _| {
            (kept.packets, kept.overflowed)
        });
        assert_eq!(kept, Some(((0..3).map(event).collect(), false)));
        for n in 4..7 {
            gates.deliver(event(n), to("a"), |_, _| false, send_to, |_, _| ());
        }
        assert_eq!(
            *direct
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            [(sid, event(4)), (sid, event(6))]
        );
        // A later hold of the same socket is not closed by the earlier one's ticket.
        let later = gates.open(sid, room.clone());
        assert_eq!(gates.close(ticket, &room, || "member"), Some("member"));
        assert!(gates.close(ticket, &room, || ()).is_none());
        assert!(gates.holds("a"));
        gates.close_all(sid, &room);
        assert!(!gates.holds("a"));
        assert!(gates.close(later, &room, || ()).is_none());
    }

    #[test]
    fn a_socket_reached_otherwise_is_not_sent_a_copy() {
        let gates = Gates::default();
        let sid = Sid::new();
        let ticket = gates.open(sid, Room::Borrowed("a"));
        gates.deliver(event(1), to("a"), |_, _| true, |_, _| (), |_, _| ());
        let kept = gates.pass(ticket, &Room::Borrowed("a"), keep_all(), |kept, _| {
            kept.packets.len()
        });
        assert_eq!(kept, Some(0));
    }

    #[test]
    fn a_socket_held_in_two_rooms_of_one_broadcast_keeps_it_once() {
        let gates = Gates::default();
        let sid = Sid::new();
        let (a, b) = (Room::Borrowed("a"), Room::Borrowed("b"));
        let (ticket_a, ticket_b) = (gates.open(sid, a.clone()), gates.open(sid, b.clone()));
        let mut both = to("a");
        both.rooms.push(b.clone());
        gates.deliver(event(1), both, |_, _| false, |_, _| (), |_, _| ());
        let count = |kept: Kept, _: &Keep| kept.packets.len();
        assert_eq!(gates.pass(ticket_a, &a, keep_all(), count), Some(1));
        assert_eq!(gates.pass(ticket_b, &b, keep_all(), count), Some(0));
    }

    #[test]
    fn an_overflowing_hold_keeps_nothing_and_says_so() {
        let gates = Gates::default();
        let sid = Sid::new();
        let ticket = gates.open(sid, Room::Borrowed("a"));
        for n in 0..=u32::try_from(MAX_HELD).unwrap_or(u32::MAX) {
            gates.deliver(event(n), to("a"), |_, _| false, |_, _| (), |_, _| ());
        }
        let kept = gates.pass(ticket, &Room::Borrowed("a"), keep_all(), |kept, _| {
            (kept.packets.len(), kept.overflowed)
        });
        assert_eq!(kept, Some((0, true)));
    }
}
