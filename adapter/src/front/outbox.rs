//! Per-socket backlogs: a broadcast that finds a local socket's buffer full waits here, in
//! order, instead of being lost, and reaches the socket as its buffer takes it again.
//!
//! socketioxide gives each socket a bounded channel (`max_buffer_size`, 128 by default) and
//! drops what does not fit. Messages from Redis arrive as fast as Redis sends them, so a
//! burst fills a healthy socket's channel within one event-loop turn. Every delivery to a
//! local socket goes through [`Outbox::send`]: straight into the socket's channel while it
//! takes it; once it is full, into the socket's backlog, which a retry task empties in order
//! every [`LocalBacklog::retry_interval`]. While a socket has a backlog, its new messages
//! queue behind it, so it receives everything in order.
//!
//! A socket that stays behind is slow: its backlog outgrows [`LocalBacklog::max_bytes`],
//! sends nothing for [`LocalBacklog::max_stall`], or the namespace's backlogs together
//! outgrow [`LocalBacklog::max_total_bytes`]. Its backlog is dropped, it is sent a
//! DISCONNECT as soon as its buffer takes one, and until it is gone everything addressed to
//! it is dropped. Volatile messages are never queued: one that finds the buffer full, or the
//! socket behind, is dropped. Every drop is counted (`redis_adapter_local_drops_total`) and a
//! slow socket is logged once.

use std::{
    collections::{HashMap, VecDeque, hash_map::Entry},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use socketioxide_core::{
    Sid, Value,
    packet::{Packet, PacketData},
};

use crate::{config::LocalBacklog, stats::Counters};

/// What happened to a packet handed to a socket's channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Handoff {
    /// The channel took it.
    Taken,
    /// The channel is full: nothing was sent.
    Full,
    /// The socket is closed or gone.
    Gone,
}

/// How often a slow socket's DISCONNECT is retried while its buffer stays full.
pub(super) const SLOW_RETRY: Duration = Duration::from_millis(100);

/// Bytes a queued packet is counted for: its payload and the queue entry around it.
const ENTRY_OVERHEAD: usize = 128;

/// The backlogs of one namespace's local sockets.
pub(super) struct Outbox {
    config: LocalBacklog,
    counters: Arc<Counters>,
    /// Sockets with a backlog or marked slow: when zero, sending takes no lock.
    behind: AtomicUsize,
    inner: Mutex<Backlogs>,
}

#[derive(Default)]
struct Backlogs {
    sockets: HashMap<Sid, Backlog>,
    /// Bytes of every backlog together.
    bytes: usize,
    /// Whether a retry task runs.
    retrying: bool,
}

struct Backlog {
    packets: VecDeque<(Packet, usize)>,
    bytes: usize,
    /// When this socket last took a packet (or its backlog began).
    progress: Instant,
    /// Treated as slow: nothing more is queued, a DISCONNECT is due.
    slow: bool,
}

impl Backlog {
    fn new() -> Self {
        Self {
            packets: VecDeque::new(),
            bytes: 0,
            progress: Instant::now(),
            slow: false,
        }
    }
}

/// Why a socket was found slow.
#[derive(Debug, Clone, Copy)]
enum Slow {
    Bytes,
    Total,
    Stalled,
}

impl Slow {
    fn reason(self) -> &'static str {
        match self {
            Slow::Bytes => "its backlog outgrew max_bytes",
            Slow::Total => "the namespace's backlogs outgrew max_total_bytes",
            Slow::Stalled => "it took nothing for max_stall",
        }
    }
}

/// What a retry round leaves to do.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Retry {
    /// Backlogs remain: retry after [`LocalBacklog::retry_interval`].
    Soon,
    /// Only slow sockets waiting for their DISCONNECT remain: retry after [`SLOW_RETRY`].
    Later,
    /// Nothing is left; the retry task has ended.
    Done,
}

impl Outbox {
    /// An empty outbox with `config`'s limits, counting drops in `counters`.
    pub fn new(config: LocalBacklog, counters: Arc<Counters>) -> Self {
        Self {
            config,
            counters,
            behind: AtomicUsize::new(0),
            inner: Mutex::new(Backlogs::default()),
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &LocalBacklog {
        &self.config
    }

    /// Sends `packet` to each of `sids` with `try_send`, in order behind what each one already
    /// has waiting; a volatile packet is dropped where it cannot be sent now. Returns whether
    /// a retry task must be started (see [`Outbox::retry`]).
    pub fn send(
        &self,
        sids: impl IntoIterator<Item = Sid>,
        packet: &Packet,
        volatile: bool,
        try_send: impl Fn(Sid, Packet) -> Handoff,
    ) -> bool {
        let mut sids = sids.into_iter();
        if self.behind.load(Ordering::Acquire) == 0 {
            // Nobody is behind: straight to each socket until one is full.
            loop {
                let Some(sid) = sids.next() else {
                    return false;
                };
                if try_send(sid, packet.clone()) != Handoff::Full {
                    continue;
                }
                let mut inner = self.lock();
                self.hold_back(&mut inner, sid, packet, volatile);
                return self.send_locked(inner, sids, packet, volatile, try_send);
            }
        }
        let inner = self.lock();
        self.send_locked(inner, sids, packet, volatile, try_send)
    }

    fn send_locked(
        &self,
        mut inner: MutexGuard<'_, Backlogs>,
        sids: impl Iterator<Item = Sid>,
        packet: &Packet,
        volatile: bool,
        try_send: impl Fn(Sid, Packet) -> Handoff,
    ) -> bool {
        for sid in sids {
            match inner.sockets.get(&sid).map(|backlog| backlog.slow) {
                Some(true) => Counters::incr(&self.counters.local_drops_slow),
                // Behind: waits after what is already there.
                Some(false) => self.hold_back(&mut inner, sid, packet, volatile),
                None if try_send(sid, packet.clone()) == Handoff::Full => {
                    self.hold_back(&mut inner, sid, packet, volatile);
                }
                None => {}
            }
        }
        self.start_retrying(&mut inner)
    }

    /// `packet` for `sid`, which cannot go straight to its channel (full, or a backlog
    /// waiting): queued at the end of the backlog, or dropped if volatile.
    fn hold_back(&self, inner: &mut Backlogs, sid: Sid, packet: &Packet, volatile: bool) {
        if volatile {
            Counters::incr(&self.counters.local_drops_volatile);
        } else {
            self.queue(inner, sid, packet.clone());
        }
    }

    /// Queues `packet` at the end of `sid`'s backlog, which it starts if needed; a socket
    /// that outgrows a limit becomes slow.
    fn queue(&self, inner: &mut Backlogs, sid: Sid, packet: Packet) {
        let size = packet_bytes(&packet);
        let total = inner.bytes + size;
        let backlog = match inner.sockets.entry(sid) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                self.behind.fetch_add(1, Ordering::AcqRel);
                Counters::incr(&self.counters.local_backlogged_sockets);
                entry.insert(Backlog::new())
            }
        };
        let over = if backlog.bytes + size > self.config.max_bytes {
            Some(Slow::Bytes)
        } else if total > self.config.max_total_bytes {
            Some(Slow::Total)
        } else {
            None
        };
        backlog.packets.push_back((packet, size));
        backlog.bytes += size;
        inner.bytes += size;
        Counters::incr(&self.counters.local_deferred);
        Counters::add(&self.counters.local_backlog_bytes, size);
        if let Some(why) = over {
            self.make_slow(inner, sid, why);
        }
    }

    /// Marks `sid` slow: its backlog is dropped and counted, and it is logged.
    fn make_slow(&self, inner: &mut Backlogs, sid: Sid, why: Slow) {
        let Some(backlog) = inner.sockets.get_mut(&sid) else {
            return;
        };
        let dropped = backlog.packets.len();
        let bytes = std::mem::take(&mut backlog.bytes);
        backlog.packets = VecDeque::new();
        backlog.slow = true;
        inner.bytes -= bytes;
        Counters::sub(&self.counters.local_backlog_bytes, bytes);
        Counters::add(&self.counters.local_drops_slow, dropped);
        Counters::incr(&self.counters.local_slow_sockets);
        tracing::warn!(
            %sid,
            dropped,
            reason = why.reason(),
            "a local socket stays behind: its backlog is dropped and it is disconnected"
        );
    }

    /// Whether a retry task must be started now (and marks it started).
    fn start_retrying(&self, inner: &mut Backlogs) -> bool {
        let start = !inner.retrying && !inner.sockets.is_empty();
        inner.retrying |= start;
        start
    }

    /// One retry round: each backlog goes to its socket with `try_send` until the socket is
    /// full again; then each slow socket gets `disconnect` (outside the lock: closing a
    /// socket may run handlers that broadcast), which answers whether it went out. When
    /// nothing is left the retry task is marked ended ([`Retry::Done`]).
    pub fn retry(
        &self,
        try_send: impl Fn(Sid, Packet) -> Handoff,
        disconnect: impl Fn(Sid) -> bool,
    ) -> Retry {
        let slow = self.drain(try_send);
        let gone: Vec<Sid> = slow.into_iter().filter(|&sid| disconnect(sid)).collect();
        let mut inner = self.lock();
        for sid in gone {
            self.forget(&mut inner, sid);
        }
        if inner.sockets.is_empty() {
            inner.retrying = false;
            Retry::Done
        } else if inner.sockets.values().all(|backlog| backlog.slow) {
            Retry::Later
        } else {
            Retry::Soon
        }
    }

    /// Sends each backlog as far as its socket takes it, forgets the emptied ones, makes the
    /// stalled ones slow; returns the slow sockets. The lock is taken once per socket, so a
    /// delivery waits at most for one socket's refill.
    fn drain(&self, try_send: impl Fn(Sid, Packet) -> Handoff) -> Vec<Sid> {
        let sids: Vec<Sid> = self.lock().sockets.keys().copied().collect();
        let now = Instant::now();
        let mut slow = Vec::new();
        for sid in sids {
            let mut inner = self.lock();
            let Some(backlog) = inner.sockets.get_mut(&sid) else {
                continue;
            };
            if backlog.slow {
                slow.push(sid);
                continue;
            }
            let sent_bytes = send_backlog(sid, backlog, &try_send, now);
            let emptied = backlog.packets.is_empty();
            let stalled = now.duration_since(backlog.progress) > self.config.max_stall;
            inner.bytes -= sent_bytes;
            Counters::sub(&self.counters.local_backlog_bytes, sent_bytes);
            if emptied {
                self.forget(&mut inner, sid);
            } else if stalled {
                self.make_slow(&mut inner, sid, Slow::Stalled);
                slow.push(sid);
            }
        }
        slow
    }

    /// Removes `sid`'s (empty) backlog.
    fn forget(&self, inner: &mut Backlogs, sid: Sid) {
        if let Some(backlog) = inner.sockets.remove(&sid) {
            inner.bytes -= backlog.bytes;
            Counters::sub(&self.counters.local_backlog_bytes, backlog.bytes);
            self.behind.fetch_sub(1, Ordering::AcqRel);
            Counters::decr(&self.counters.local_backlogged_sockets);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Backlogs> {
        // A panic while holding the lock leaves consistent counts: keep going.
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// Sends `backlog` to socket `sid` with `try_send` until it is full or gone; returns the
/// bytes that left the backlog.
fn send_backlog(
    sid: Sid,
    backlog: &mut Backlog,
    try_send: impl Fn(Sid, Packet) -> Handoff,
    now: Instant,
) -> usize {
    let before = backlog.bytes;
    while let Some((packet, size)) = backlog.packets.pop_front() {
        match try_send(sid, packet.clone()) {
            Handoff::Taken => {
                backlog.bytes -= size;
                backlog.progress = now;
            }
            Handoff::Full => {
                backlog.packets.push_front((packet, size));
                break;
            }
            Handoff::Gone => {
                backlog.packets.clear();
                backlog.bytes = 0;
            }
        }
    }
    before - backlog.bytes
}

/// What `packet` is counted for in a backlog: its payload's bytes plus [`ENTRY_OVERHEAD`].
/// Payloads are shared between the backlogs holding the same packet, so this overstates
/// the memory of a broadcast queued for several sockets.
fn packet_bytes(packet: &Packet) -> usize {
    let payload = match &packet.inner {
        PacketData::Event(value, _)
        | PacketData::EventAck(value, _)
        | PacketData::BinaryEvent(value, _)
        | PacketData::BinaryAck(value, _) => value_bytes(value),
        PacketData::Connect(Some(value)) => value_bytes(value),
        _ => 0,
    };
    payload + packet.ns.len() + ENTRY_OVERHEAD
}

fn value_bytes(value: &Value) -> usize {
    match value {
        Value::Str(text, binaries) => {
            text.len()
                + binaries
                    .iter()
                    .flatten()
                    .map(|bin| bin.len())
                    .sum::<usize>()
        }
        Value::Bytes(bytes) => bytes.len(),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};

    use super::*;

    fn outbox(max_bytes: usize) -> Outbox {
        let config = LocalBacklog {
            max_bytes,
            ..LocalBacklog::default()
        };
        Outbox::new(config, Arc::new(Counters::default()))
    }

    fn event(n: u32) -> Packet {
        Packet::event("/", Value::Str(n.to_string().into(), None))
    }

    fn number(packet: &Packet) -> u32 {
        match &packet.inner {
            PacketData::Event(Value::Str(text, _), _) => text.parse().unwrap_or(u32::MAX),
            _ => u32::MAX,
        }
    }

    /// A socket whose channel takes `room` more packets; what it took, in order.
    struct Socket {
        room: Cell<usize>,
        got: RefCell<Vec<u32>>,
    }

    impl Socket {
        fn new(room: usize) -> Self {
            Self {
                room: Cell::new(room),
                got: RefCell::new(Vec::new()),
            }
        }

        fn try_send(&self, packet: Packet) -> Handoff {
            if self.room.get() == 0 {
                return Handoff::Full;
            }
            self.room.set(self.room.get() - 1);
            self.got.borrow_mut().push(number(&packet));
            Handoff::Taken
        }
    }

    #[test]
    fn a_full_socket_gets_everything_in_order_once_it_takes_packets_again() {
        let outbox = outbox(1 << 20);
        let (a, b) = (Sid::new(), Sid::new());
        let sockets = [Socket::new(3), Socket::new(1000)];
        let send = |sid: Sid, packet: Packet| sockets[usize::from(sid != a)].try_send(packet);
        let mut start = false;
        for n in 0..10 {
            start |= outbox.send([a, b], &event(n), false, send);
        }
        assert!(start, "a backlog starts the retry task");
        assert_eq!(*sockets[0].got.borrow(), [0, 1, 2]);
        assert_eq!(sockets[1].got.borrow().len(), 10);
        assert_eq!(outbox.retry(send, |_| true), Retry::Soon);
        sockets[0].room.set(4);
        assert_eq!(outbox.retry(send, |_| true), Retry::Soon);
        // Later packets wait behind the backlog even when the socket could take them.
        outbox.send([a], &event(10), false, send);
        sockets[0].room.set(100);
        assert_eq!(outbox.retry(send, |_| true), Retry::Done);
        assert_eq!(*sockets[0].got.borrow(), (0..=10).collect::<Vec<_>>());
        assert_eq!(outbox.behind.load(Ordering::Acquire), 0);
        let stats = outbox.counters.snapshot();
        assert_eq!(stats.local_deferred, 8);
        assert_eq!(stats.local_backlog_bytes, 0);
        assert_eq!(stats.local_backlogged_sockets, 0);
        assert_eq!(stats.local_drops_slow + stats.local_drops_volatile, 0);
    }

    #[test]
    fn volatile_packets_are_never_queued_and_their_drops_are_counted() {
        let outbox = outbox(1 << 20);
        let a = Sid::new();
        let socket = Socket::new(1);
        let send = |_: Sid, packet: Packet| socket.try_send(packet);
        outbox.send([a], &event(0), true, send);
        assert!(!outbox.send([a], &event(1), true, send));
        outbox.send([a], &event(2), false, send);
        // Behind: a volatile packet is dropped even though it could wait.
        outbox.send([a], &event(3), true, send);
        socket.room.set(10);
        assert_eq!(outbox.retry(send, |_| true), Retry::Done);
        assert_eq!(*socket.got.borrow(), [0, 2]);
        assert_eq!(outbox.counters.snapshot().local_drops_volatile, 2);
    }

    #[test]
    fn a_socket_over_its_byte_limit_is_dropped_counted_and_disconnected() {
        let outbox = outbox(10 * (ENTRY_OVERHEAD + 2));
        let (a, b) = (Sid::new(), Sid::new());
        let sockets = [Socket::new(0), Socket::new(1000)];
        let send = |sid: Sid, packet: Packet| sockets[usize::from(sid != a)].try_send(packet);
        for n in 0..50 {
            outbox.send([a, b], &event(n), false, send);
        }
        assert_eq!(sockets[1].got.borrow().len(), 50);
        let stats = outbox.counters.snapshot();
        assert_eq!(stats.local_slow_sockets, 1);
        assert_eq!(stats.local_drops_slow, 50);
        assert_eq!(stats.local_backlog_bytes, 0);
        let tried = Cell::new(0);
        let disconnect = |sid: Sid| {
            assert_eq!(sid, a);
            tried.set(tried.get() + 1);
            tried.get() > 1
        };
        // The DISCONNECT does not fit at first: retried, and nothing is sent meanwhile.
        assert_eq!(outbox.retry(send, disconnect), Retry::Later);
        sockets[0].room.set(10);
        outbox.send([a], &event(99), false, send);
        assert_eq!(outbox.retry(send, disconnect), Retry::Done);
        assert!(sockets[0].got.borrow().is_empty());
        assert_eq!(outbox.counters.snapshot().local_drops_slow, 51);
    }

    #[test]
    fn a_socket_that_takes_nothing_for_max_stall_is_slow() {
        let config = LocalBacklog {
            max_stall: Duration::ZERO,
            ..LocalBacklog::default()
        };
        let outbox = Outbox::new(config, Arc::new(Counters::default()));
        let a = Sid::new();
        let full = |_: Sid, _: Packet| Handoff::Full;
        outbox.send([a], &event(0), false, full);
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(outbox.retry(full, |_| false), Retry::Later);
        assert_eq!(outbox.counters.snapshot().local_drops_slow, 1);
    }

    #[test]
    fn the_namespace_total_bounds_every_backlog_together() {
        let config = LocalBacklog {
            max_total_bytes: 5 * (ENTRY_OVERHEAD + 2),
            ..LocalBacklog::default()
        };
        let outbox = Outbox::new(config, Arc::new(Counters::default()));
        let sids: Vec<Sid> = (0..3).map(|_| Sid::new()).collect();
        let full = |_: Sid, _: Packet| Handoff::Full;
        outbox.send(sids.clone(), &event(10), false, full);
        outbox.send(sids.clone(), &event(11), false, full);
        let stats = outbox.counters.snapshot();
        assert_eq!(stats.local_slow_sockets, 1);
        assert!(stats.local_backlog_bytes <= 5 * (ENTRY_OVERHEAD + 2) as u64);
    }

    #[test]
    fn a_gone_socket_releases_its_backlog() {
        let outbox = outbox(1 << 20);
        let a = Sid::new();
        outbox.send([a], &event(0), false, |_, _| Handoff::Full);
        outbox.send([a], &event(1), false, |_, _| Handoff::Full);
        assert_eq!(outbox.retry(|_, _| Handoff::Gone, |_| true), Retry::Done);
        let stats = outbox.counters.snapshot();
        assert_eq!(stats.local_backlog_bytes, 0);
        assert_eq!(stats.local_drops_slow, 0);
    }
}
