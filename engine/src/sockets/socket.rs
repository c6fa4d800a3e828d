//! One socket: a client's membership of one namespace over its engine.io session; what it
//! emits, the acks it waits for, its disconnect.

use crate::locks::lock;
use std::{
    collections::{HashMap, HashSet},
    fmt,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;

use redis_adapter::Room;

use super::{
    DisconnectReason,
    connection::Connection,
    hold::{Delivery, Held, Holds},
    nsp::{Broadcast, Nsp},
};
use crate::{
    Error,
    server::{CloseReason, Packet, Session},
    sio::{self, BinaryPacket, Kind},
    slot::Slot,
};

/// Why an emit's acknowledgement did not come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// Not within the timeout.
    #[error("no acknowledgement within the timeout")]
    Timeout,
    /// The socket left before answering (or the emit could not be sent).
    #[error("the socket disconnected before acknowledging")]
    Disconnected,
}

/// An acknowledgement's arguments and attachments.
type Acked = (Vec<Value>, Vec<Bytes>);

/// The acks a socket waits for.
#[derive(Default)]
struct Acks {
    next: u64,
    waiting: HashMap<u64, oneshot::Sender<Acked>>,
}

/// A client's socket in one namespace.
pub struct Socket {
    id: Arc<str>,
    nsp: Arc<Nsp>,
    session: Arc<Session>,
    /// The CONNECT payload as the client sent it (a JSON object), kept as text: tens of bytes
    /// per socket where the parsed object costs hundreds.
    auth: Option<Box<str>>,
    /// The application's state for the socket (its user, say).
    data: Slot,
    rooms: Mutex<HashSet<Room>>,
    /// Its catch-up joins ([`Socket::hold`]).
    holds: Holds,
    acks: Mutex<Acks>,
    connected: AtomicBool,
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.id)
            .field("ns", &self.nsp.name())
            .finish_non_exhaustive()
    }
}

impl Socket {
    /// A socket of `ns` on `session`, asking to join with `auth`; not connected yet.
    pub(crate) fn new(nsp: Arc<Nsp>, session: Arc<Session>, auth: Option<Box<str>>) -> Arc<Self> {
        Arc::new(Self {
            id: crate::server::new_id().into(),
            nsp,
            session,
            auth,
            data: Slot::default(),
            rooms: Mutex::default(),
            holds: Holds::default(),
            acks: Mutex::default(),
            connected: AtomicBool::new(false),
        })
    }

    /// Its Socket.IO id (not the engine.io session's).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its id, shared.
    pub(crate) fn id_arc(&self) -> Arc<str> {
        self.id.clone()
    }

    /// Its namespace's name.
    pub fn ns(&self) -> &str {
        self.nsp.name()
    }

    /// Its namespace.
    pub fn nsp(&self) -> &Arc<Nsp> {
        &self.nsp
    }

    /// The rooms it is in.
    pub fn rooms(&self) -> HashSet<Room> {
        lock(&self.rooms).clone()
    }

    /// Whether it is in `room`.
    pub fn in_room(&self, room: &str) -> bool {
        lock(&self.rooms).contains(room)
    }

    /// Enters `room`. The first local socket in a room makes the cluster send this instance
    /// the room's broadcasts; this resolves once it does.
    pub async fn join(self: &Arc<Self>, room: impl Into<Room>) -> Result<(), Error> {
        let room = room.into();
        if !self.is_connected() || !lock(&self.rooms).insert(room.clone()) {
            return Ok(());
        }
        self.nsp.rooms().join(self, &room);
        if !self.is_connected() {
            // It left meanwhile, maybe before it entered the room's index: out again, or
            // the index would keep a socket that is gone.
            lock(&self.rooms).remove(&room);
            let emptied = self.nsp.rooms().leave(self, [room]);
            self.release(emptied);
            return Ok(());
        }
        // Waited for even when the room had local members: their join may still be
        // subscribing it.
        self.subscribe(&room).await
    }

    /// Enters `room` while its CONNECT is being answered (see [`Connecting::join`]): only
    /// its own room set for now, the namespace's rooms once it is let in.
    ///
    /// [`Connecting::join`]: super::Connecting::join
    pub(crate) async fn join_pending(&self, room: Room) -> Result<(), Error> {
        if self.is_connected() || !lock(&self.rooms).insert(room.clone()) {
            return Ok(());
        }
        self.nsp.rooms().pend(&room);
        let subscribed = self.subscribe(&room).await;
        if subscribed.is_err() && lock(&self.rooms).remove(&room) {
            self.nsp.rooms().unpend([&room]);
            self.release(vec![room]);
        }
        subscribed
    }

    /// Its CONNECT was refused, or its session closed first: out of the rooms it joined
    /// while connecting.
    pub(crate) fn leave_pending(&self) {
        let rooms: Vec<Room> = self.take_rooms().into_iter().collect();
        self.nsp.rooms().unpend(&rooms);
        self.release(rooms);
    }

    /// Resolves once the cluster sends this instance `room`'s broadcasts.
    async fn subscribe(&self, room: &Room) -> Result<(), Error> {
        match self.nsp.remote() {
            Some(remote) => remote
                .hold(room)
                .await
                .map_err(|err| Error::Remote(err.to_string())),
            None => Ok(()),
        }
    }

    /// Starts a catch-up join of `room`: the cluster is made to send this instance the
    /// room's broadcasts (as [`Socket::join`] does), but the broadcasts to `room` that reach
    /// this socket are held back (not written) until [`Held::join`]. Resolves once the
    /// cluster sends them (always waited for, even when other local sockets are in the room
    /// already, so that the application's replay read that follows misses nothing).
    ///
    /// The socket is in the room from now on ([`Socket::in_room`], [`Nsp::fetch_sockets`]);
    /// only deliveries whose selection names the room, and reach the socket through it alone,
    /// are held: a broadcast to the whole namespace, or to another room the socket is a
    /// member of too, is written as usual. Held broadcasts are kept whole (a binary one with
    /// its attachments), at most [`MAX_HELD`](super::MAX_HELD); volatile ones are dropped.
    /// Holding a room held already replaces the earlier hold (its [`Held`] ends nothing);
    /// [`Socket::leave`] ends the hold. On error the socket is not in the room.
    pub async fn hold(self: &Arc<Self>, room: impl Into<Room>) -> Result<Held, Error> {
        let room = room.into();
        if !self.is_connected() {
            return Ok(Held::new(self.clone(), None, room));
        }
        let ticket = self.holds.open(&room, || {
            if lock(&self.rooms).insert(room.clone()) {
                self.nsp.rooms().join(self, &room);
            }
        });
        if !self.is_connected() {
            // It left meanwhile, maybe before it entered the room: out again.
            self.cancel_hold(ticket, &room);
            return Ok(Held::new(self.clone(), None, room));
        }
        // Dropped on error (or if this future is), it takes the socket out of the room.
        let held = Held::new(self.clone(), Some(ticket), room);
        self.subscribe(held.room()).await?;
        Ok(held)
    }

    /// Leaves `room` (a catch-up join of it in progress ends: the socket is not made a
    /// member by its [`Held::join`]).
    pub fn leave(&self, room: &str) {
        let emptied = self.holds.leave(room, || self.leave_now(room));
        self.release(emptied);
    }

    /// Takes the socket out of `room`; the rooms that emptied.
    fn leave_now(&self, room: &str) -> Vec<Room> {
        let Some(room) = lock(&self.rooms).take(room) else {
            return Vec::new();
        };
        self.nsp.rooms().leave(self, [room])
    }

    /// Hold `ticket` of `room` ends without joining: the socket leaves the room (unless the
    /// hold ended before).
    pub(crate) fn cancel_hold(&self, ticket: u64, room: &str) {
        let emptied = self.holds.cancel(ticket, || self.leave_now(room));
        self.release(emptied);
    }

    /// Its catch-up joins.
    pub(crate) fn holds(&self) -> &Holds {
        &self.holds
    }

    /// Delivers a broadcast to `selection` (`packets`: one, or a binary packet and its
    /// attachments): written, unless a catch-up join holds it. One atomic load for a socket
    /// with no hold.
    pub(crate) fn deliver(
        &self,
        selection: &redis_adapter::Selection,
        packets: &[Packet],
        volatile: bool,
    ) -> Delivery {
        if self.holds.any() {
            return self.holds.deliver(self, selection, packets, volatile);
        }
        Delivery::of(self.session.settle(self.try_write(packets, volatile)))
    }

    /// Writes `packets` (a volatile single packet only if the transport takes it at once),
    /// leaving the close of a session its transport refused to the caller (see
    /// `Session::try_send_all`).
    pub(crate) fn try_write(
        &self,
        packets: &[Packet],
        volatile: bool,
    ) -> Result<bool, CloseReason> {
        match packets {
            [packet] if volatile => self.session.try_send_volatile(packet),
            packets => self.session.try_send_all(packets),
        }
    }

    /// A broadcast to the sockets in `rooms` but this one.
    pub fn to(&self, rooms: impl IntoIterator<Item = impl Into<Room>>) -> Broadcast {
        self.nsp.to(rooms).except_socket(self.id.clone())
    }

    /// Every room it was in, emptied.
    pub(crate) fn take_rooms(&self) -> HashSet<Room> {
        std::mem::take(&mut *lock(&self.rooms))
    }

    /// Tells the cluster of the rooms no local socket is in any more.
    pub(crate) fn release(&self, emptied: Vec<Room>) {
        if !emptied.is_empty()
            && let Some(remote) = self.nsp.remote()
        {
            remote.release(emptied);
        }
    }

    /// The engine.io session it is carried by (its request, peer address, transport).
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// Whether it is connected (answered, and not disconnected since).
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// Marks it connected; whether it was not before.
    pub(crate) fn mark_connected(&self) -> bool {
        !self.connected.swap(true, Ordering::AcqRel)
    }

    /// Emits `event` with one argument, `data`. `false` when the session cannot take it.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<bool, Error> {
        let text = sio::encode_message(Kind::Event, self.nsp.name(), None, Some(&(event, data)))?;
        Ok(self.session.send(&Packet::Text(text.into())))
    }

    /// Emits `event` with `args`, which hold placeholders for `attachments` (if any).
    pub fn emit_args(
        &self,
        event: &str,
        args: Vec<Value>,
        attachments: Vec<Bytes>,
    ) -> Result<bool, Error> {
        let data = event_data(event, args);
        if attachments.is_empty() {
            let text = sio::encode_message(Kind::Event, self.nsp.name(), None, Some(&data))?;
            return Ok(self.session.send(&Packet::Text(text.into())));
        }
        self.send_binary(Kind::BinaryEvent, None, data, attachments)
    }

    /// Keeps the application's `value` with the socket, once (in [`Namespace::connect`],
    /// typically: who the socket is); `Err` gives it back when it has one already.
    ///
    /// [`Namespace::connect`]: super::Namespace::connect
    pub fn set_data<T: std::any::Any + Send + Sync>(&self, value: T) -> Result<(), T> {
        self.data.set(value)
    }

    /// What [`Socket::set_data`] kept, if it is a `T`.
    pub fn data<T: std::any::Any + Send + Sync>(&self) -> Option<&T> {
        self.data.get()
    }

    /// The CONNECT payload it joined with (`None` without one), parsed at each call: keep
    /// what the application needs of it for later with [`Socket::set_data`].
    pub fn auth(&self) -> Option<Value> {
        self.auth
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok())
    }

    /// Emits `event` with `data` and waits up to `timeout` for the client's acknowledgement:
    /// its arguments.
    pub async fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
        timeout: Duration,
    ) -> Result<Vec<Value>, AckError> {
        let (id, acked) = self.wait_ack();
        let sent =
            sio::encode_message(Kind::Event, self.nsp.name(), Some(id), Some(&(event, data)))
                .is_ok_and(|text| self.session.send(&Packet::Text(text.into())));
        if !sent {
            lock(&self.acks).waiting.remove(&id);
            return Err(AckError::Disconnected);
        }
        match tokio::time::timeout(timeout, acked).await {
            Ok(Ok((args, _attachments))) => Ok(args),
            Ok(Err(_)) => Err(AckError::Disconnected),
            Err(_) => {
                lock(&self.acks).waiting.remove(&id);
                Err(AckError::Timeout)
            }
        }
    }

    /// Leaves the namespace from the server's side: the client is sent DISCONNECT.
    pub fn disconnect(&self) {
        if let Ok(text) = sio::encode_message::<()>(Kind::Disconnect, self.nsp.name(), None, None) {
            self.session.send(&Packet::Text(text.into()));
        }
        if let Some(connection) = self.session.extension::<Connection>() {
            connection.remove(self.nsp.name(), DisconnectReason::ServerDisconnected);
        }
    }

    /// An ack id and the receiver of its answer.
    fn wait_ack(&self) -> (u64, oneshot::Receiver<Acked>) {
        let (answer, acked) = oneshot::channel();
        let mut acks = lock(&self.acks);
        let id = acks.next;
        acks.next = acks.next.wrapping_add(1);
        acks.waiting.insert(id, answer);
        (id, acked)
    }

    /// The client acknowledged emit `id`; an unknown id (timed out, or never asked) is
    /// ignored.
    pub(crate) fn receive_ack(&self, id: u64, args: Vec<Value>, attachments: Vec<Bytes>) {
        if let Some(answer) = lock(&self.acks).waiting.remove(&id) {
            let _late = answer.send((args, attachments));
        }
    }

    /// Answers the client's ack request `id` with `args` (a JSON array).
    pub(crate) fn send_ack(
        &self,
        id: u64,
        args: &Value,
        attachments: Vec<Bytes>,
    ) -> Result<(), Error> {
        if attachments.is_empty() {
            let text = sio::encode_message(Kind::Ack, self.nsp.name(), Some(id), Some(args))?;
            self.session.send(&Packet::Text(text.into()));
            return Ok(());
        }
        self.send_binary(Kind::BinaryAck, Some(id), args.clone(), attachments)
            .map(|_| ())
    }

    fn send_binary(
        &self,
        kind: Kind,
        ack: Option<u64>,
        data: Value,
        attachments: Vec<Bytes>,
    ) -> Result<bool, Error> {
        let packet = BinaryPacket {
            kind,
            ns: self.nsp.name().to_owned(),
            ack,
            data,
            attachments,
        };
        let header = packet.encode_message()?;
        let packets: Vec<Packet> = std::iter::once(Packet::Text(header.into()))
            .chain(packet.attachments.into_iter().map(Packet::Binary))
            .collect();
        Ok(self.session.send_all(&packets))
    }

    /// It left: out of its rooms, nothing more is sent, and the acks it was waiting for
    /// fail.
    pub(crate) fn left(&self) {
        self.connected.store(false, Ordering::Release);
        let emptied = self.nsp.rooms().remove_socket(self);
        self.release(emptied);
        lock(&self.acks).waiting.clear();
    }
}

/// The data array of an event: its name, then its arguments.
fn event_data(event: &str, args: Vec<Value>) -> Value {
    Value::Array(std::iter::once(Value::from(event)).chain(args).collect())
}
