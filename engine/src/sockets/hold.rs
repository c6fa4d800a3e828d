//! Catch-up joins ([`Socket::hold`]): while an application sends a joining socket what it
//! missed (from its own store), the broadcasts to the room that reach the socket are kept
//! aside for it, in arrival order. [`Held::join`] ends the catch-up under the same lock
//! every delivery to a held socket takes: the kept broadcasts the application still wants are
//! sent, and the hold turns into a filter for a grace period (a message stored before the
//! catch-up read it, but published only after, must not come twice); then the socket is a
//! plain member. The socket sees the missed messages, then the held ones, then live ones,
//! with no gap and no duplicate.
//!
//! The socket is a member of the room from the start of the hold (the cluster sends the
//! room's broadcasts to this instance, the room's selections reach the socket); its holds
//! decide what a delivery does with it. Cost: one atomic load per delivery to a socket with
//! no hold; a delivery to a socket with one takes the socket's hold lock. Memory: at most
//! [`MAX_HELD`] broadcasts per hold.

use crate::locks::lock;
use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use redis_adapter::{Room, Selection};

use super::socket::Socket;
use crate::server::Packet;

/// Most broadcasts kept for one hold; more, and the hold keeps nothing (see
/// [`Held::join`]).
pub const MAX_HELD: usize = 10_000;

/// A filter's end when its window does not fit the clock: far enough.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Which broadcasts the application still wants, from their engine.io text.
type Keep = Box<dyn Fn(&[u8]) -> bool + Send + Sync>;

/// The catch-up joins of one socket.
#[derive(Default)]
pub(crate) struct Holds {
    /// How many holds are open (kept or filtering), mirrored from `state` under its lock:
    /// zero lets deliveries pass without the lock.
    open: AtomicUsize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The last hold's ticket.
    tickets: u64,
    /// At most one per room: a new hold of a room replaces the one before it.
    holds: Vec<Hold>,
}

/// One hold of one room.
struct Hold {
    /// Tells this hold from a later one of the same room.
    ticket: u64,
    room: Room,
    phase: Phase,
}

enum Phase {
    /// The catch-up runs: the broadcasts are kept (each whole: a binary one's packets).
    Keeping {
        kept: Vec<Box<[Packet]>>,
        /// More than [`MAX_HELD`] arrived: nothing is kept any more.
        overflowed: bool,
    },
    /// The catch-up ended: broadcasts pass if `keep` accepts them, until `until`.
    Filtering { keep: Keep, until: Instant },
}

/// What a delivery did for one socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Written or queued.
    Sent,
    /// Not taken: the session is closed, or (volatile) could not take it at once.
    Dropped,
    /// Kept for a catch-up, or refused by its filter.
    Held,
}

impl Delivery {
    /// A write that went through (or not).
    pub(crate) fn of(took: bool) -> Self {
        if took { Self::Sent } else { Self::Dropped }
    }
}

impl Holds {
    /// Whether the socket has a hold open: one atomic load.
    pub(crate) fn any(&self) -> bool {
        self.open.load(Ordering::Acquire) > 0
    }

    /// Starts a hold of `room`, replacing any hold of it before (whose ticket then ends
    /// nothing); `enter` runs under the hold lock, after the hold is counted, so that no
    /// delivery reaching the socket through `room` can miss it. The hold's ticket.
    pub(crate) fn open(&self, room: &Room, enter: impl FnOnce()) -> u64 {
        let mut state = lock(&self.state);
        state.tickets += 1;
        let ticket = state.tickets;
        state.holds.retain(|hold| hold.room != *room);
        state.holds.push(Hold {
            ticket,
            room: room.clone(),
            phase: Phase::Keeping {
                kept: Vec::new(),
                overflowed: false,
            },
        });
        self.count(&state);
        enter();
        ticket
    }

    /// Ends hold `ticket` (if still open) and runs `leave` under the hold lock; `R::default()`
    /// when there was no such hold.
    pub(crate) fn cancel<R: Default>(&self, ticket: u64, leave: impl FnOnce() -> R) -> R {
        let mut state = lock(&self.state);
        let Some(at) = state.holds.iter().position(|hold| hold.ticket == ticket) else {
            return R::default();
        };
        state.holds.remove(at);
        self.count(&state);
        leave()
    }

    /// Ends every hold of `room` and runs `leave` under the hold lock (the socket leaves the
    /// room: a catch-up in progress does not make it a member after all).
    pub(crate) fn leave<R>(&self, room: &str, leave: impl FnOnce() -> R) -> R {
        let mut state = lock(&self.state);
        state.holds.retain(|hold| hold.room != room);
        self.count(&state);
        leave()
    }

    /// Ends the catch-up of hold `ticket` (see [`Held::join`]); `socket` is the hold's.
    fn pass(&self, socket: &Socket, ticket: u64, keep: Keep, window: Duration) -> Option<usize> {
        let mut state = lock(&self.state);
        let at = state.holds.iter().position(|hold| hold.ticket == ticket)?;
        let Phase::Keeping { kept, overflowed } = &mut state.holds[at].phase else {
            return None;
        };
        let (kept, overflowed) = (std::mem::take(kept), *overflowed);
        let recovered = !overflowed && socket.is_connected();
        // Under the lock: the kept broadcasts go before any new one.
        let (mut sent, mut refused) = (0, None);
        for packets in kept
            .iter()
            .filter(|packets| recovered && keep(text(packets)))
        {
            match socket.try_write(packets, false) {
                Ok(true) => sent += 1,
                Ok(false) => break,
                Err(reason) => {
                    refused = Some(reason);
                    break;
                }
            }
        }
        if recovered && !window.is_zero() {
            let now = Instant::now();
            // A window too long for the clock filters for as long as the socket lives.
            let until = now.checked_add(window).unwrap_or(now + FOREVER);
            state.holds[at].phase = Phase::Filtering { keep, until };
        } else {
            state.holds.remove(at);
            self.count(&state);
        }
        drop(state);
        // Closed, if its transport refused a packet, once no lock is held.
        if let Some(reason) = refused {
            socket.session().close_with(reason);
        }
        if !recovered {
            return None;
        }
        socket
            .nsp()
            .deliveries()
            .sent
            .fetch_add(sent as u64, Ordering::Relaxed);
        Some(sent)
    }

    /// Delivers `packets` (for `selection`) to `socket`, which has a hold open: kept or
    /// filtered when the hold's room is what reaches the socket, written otherwise.
    pub(crate) fn deliver(
        &self,
        socket: &Socket,
        selection: &Selection,
        packets: &[Packet],
        volatile: bool,
    ) -> Delivery {
        let mut state = lock(&self.state);
        let now = Instant::now();
        let before = state.holds.len();
        state
            .holds
            .retain(|hold| !matches!(hold.phase, Phase::Filtering { until, .. } if until <= now));
        if state.holds.len() != before {
            self.count(&state);
        }
        let write = match through(&mut state, socket, selection) {
            None => true,
            Some(Phase::Keeping { .. }) if volatile => return Delivery::Dropped,
            Some(Phase::Keeping { kept, overflowed }) => {
                if !*overflowed {
                    if kept.len() >= MAX_HELD {
                        *overflowed = true;
                        *kept = Vec::new();
                    } else {
                        kept.push(packets.into());
                    }
                }
                false
            }
            Some(Phase::Filtering { keep, .. }) => keep(text(packets)),
        };
        if !write {
            return Delivery::Held;
        }
        let written = socket.try_write(packets, volatile);
        drop(state);
        // Closed, if its transport refused it, once no lock is held.
        Delivery::of(socket.session().settle(written))
    }

    /// Mirrors the number of holds open for the lock-free check.
    fn count(&self, state: &State) {
        self.open.store(state.holds.len(), Ordering::Release);
    }
}

/// The phase of the hold a delivery to `selection` reaches `socket` through: the first of
/// its held rooms the selection names, unless the socket is a plain member of another room
/// the selection names (it is reached through that one). `None`: a plain delivery.
fn through<'s>(
    state: &'s mut State,
    socket: &Socket,
    selection: &Selection,
) -> Option<&'s mut Phase> {
    let held = |room: &Room| state.holds.iter().position(|hold| hold.room == *room);
    let at = selection.rooms.iter().find_map(held)?;
    let otherwise = selection
        .rooms
        .iter()
        .any(|room| held(room).is_none() && socket.in_room(room));
    if otherwise {
        return None;
    }
    state.holds.get_mut(at).map(|hold| &mut hold.phase)
}

/// The engine.io text of a broadcast (a binary one's first packet).
fn text(packets: &[Packet]) -> &[u8] {
    match packets.first() {
        Some(Packet::Text(bytes) | Packet::Binary(bytes)) => bytes,
        None => &[],
    }
}

/// A catch-up join in progress (see [`Socket::hold`]). Dropped without [`Held::join`], the
/// socket leaves the room (and the room is released if it was the last).
#[must_use = "dropped, the socket leaves the room"]
pub struct Held {
    socket: Arc<Socket>,
    /// `None` once ended (or when the socket had left already).
    ticket: Option<u64>,
    room: Room,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("socket", &self.socket.id())
            .field("room", &self.room)
            .field("ticket", &self.ticket)
            .finish()
    }
}

impl Held {
    /// A hold of `room` by `socket` as `ticket` (none: the socket could not be held).
    pub(crate) fn new(socket: Arc<Socket>, ticket: Option<u64>, room: Room) -> Self {
        Self {
            socket,
            ticket,
            room,
        }
    }

    /// The room being joined.
    pub fn room(&self) -> &Room {
        &self.room
    }

    /// Sends the held packets that `keep` accepts (in order), then makes the socket a plain
    /// member of the room; for `window` after that, new broadcasts to the room reaching this
    /// socket pass through `keep` too (a message stored before the application's replay read
    /// but published after it). `keep` sees each packet's engine.io text (e.g.
    /// `42["message",{...}]`; a binary broadcast's first packet); it runs under the socket's
    /// delivery lock, so it must only look at the packet.
    ///
    /// Returns how many held packets were sent, or `None` when more than [`MAX_HELD`] were
    /// held (they are dropped: the caller must treat the catch-up as not recovered, the
    /// socket is still a member). `None` too when the hold ended before (the socket left the
    /// room or the namespace, or a later hold of the same room replaced this one): the
    /// socket is then not made a member by this call.
    pub fn join(
        mut self,
        keep: impl Fn(&[u8]) -> bool + Send + Sync + 'static,
        window: Duration,
    ) -> Option<usize> {
        let ticket = self.ticket.take()?;
        self.socket
            .holds()
            .pass(&self.socket, ticket, Box::new(keep), window)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.socket.cancel_hold(ticket, &self.room);
        }
    }
}
