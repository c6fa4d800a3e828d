//! A namespace at run time: its application handler, its local sockets and rooms, and the
//! cluster it shares its rooms with; broadcasts encode their packet once, write it to each
//! local member, and hand it to the cluster for the members elsewhere.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
};

use bytes::Bytes;
use redis_adapter::{Outgoing, Room, Selection};
use serde::Serialize;

use super::{Namespace, hold::Delivery, rooms::Rooms, socket::Socket};
use crate::{
    Error,
    server::Packet,
    sio::{self, Kind},
};

/// What a cluster failed at.
pub type RemoteError = Box<dyn std::error::Error + Send + Sync>;

/// A future of the cluster's.
pub type Remoting = Pin<Box<dyn Future<Output = Result<(), RemoteError>> + Send>>;

/// The sockets the other instances answered a fetch with.
pub type Fetching = Pin<Box<dyn Future<Output = Result<Vec<SocketView>, RemoteError>> + Send>>;

/// A socket as any instance sees it: its id, its rooms, and what its namespace says of it
/// ([`Namespace::describe`](super::Namespace::describe)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketView {
    /// Its Socket.IO id.
    pub id: String,
    /// The rooms it is in.
    pub rooms: Vec<Room>,
    /// Its namespace's description of it.
    pub data: serde_json::Value,
}

/// How a broadcast is handed to the cluster ([`Remote::broadcast`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BroadcastOptions {
    /// It may be dropped for a socket that cannot take it at once.
    pub volatile: bool,
    /// [`Remote::broadcast`] resolves once the cluster took it (Redis answered its
    /// PUBLISH), not once it is queued; [`Remote::broadcast_now`] cannot wait, and queues it
    /// as any other.
    pub confirmed: bool,
}

/// The instances a namespace shares its rooms with (see `engine::cluster` for the Redis
/// one).
pub trait Remote: Send + Sync + 'static {
    /// Sends the Socket.IO `packet` (engine.io MESSAGE text) to the sockets of `selection`
    /// on the other instances; resolves once it is queued (or, `confirmed`, sent).
    fn broadcast(
        &self,
        selection: &Selection,
        packet: &Bytes,
        options: BroadcastOptions,
    ) -> Remoting;
    /// Like [`Remote::broadcast`], queued now without waiting: for handlers that answer from
    /// the task that read the event.
    fn broadcast_now(
        &self,
        selection: &Selection,
        packet: &Bytes,
        options: BroadcastOptions,
    ) -> Result<(), RemoteError>;
    /// The messages [`Remote::broadcast`] would publish, for a caller that publishes them
    /// itself (with the Redis write they depend on, in one script).
    fn outgoing(
        &self,
        selection: &Selection,
        packet: &Bytes,
        options: BroadcastOptions,
    ) -> Result<Vec<Outgoing>, RemoteError>;
    /// A local socket entered `room`, which had none: the other instances' broadcasts to it
    /// must reach this one from now on (resolves once they do).
    fn hold(&self, room: &Room) -> Remoting;
    /// No local socket is in `rooms` any more.
    fn release(&self, rooms: Vec<Room>);
    /// The sockets of `selection` on the other instances (those that answer within the
    /// cluster's request timeout).
    fn fetch(&self, selection: &Selection) -> Fetching;
    /// Moves the sockets of `selection` on the other instances; resolves once each has
    /// carried it out (or the cluster's request timeout passed).
    fn change(&self, selection: &Selection, change: Change) -> Remoting;
}

/// What [`Nsp::change`] does to the sockets it selects, on every instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// They join these rooms.
    Join(Vec<Room>),
    /// They leave these rooms.
    Leave(Vec<Room>),
    /// They leave the namespace (sent DISCONNECT), or, with `close`, lose their connection.
    Disconnect {
        /// Whether the whole connection is closed, not just this namespace.
        close: bool,
    },
}

/// What a namespace's deliveries cost and lost.
#[derive(Debug, Default)]
pub struct Deliveries {
    /// Packets written or queued for a local socket.
    pub sent: AtomicU64,
    /// Volatile packets dropped because a socket could not take them at once.
    pub volatile_dropped: AtomicU64,
}

/// One namespace of the server.
pub struct Nsp {
    name: Arc<str>,
    handler: Arc<dyn Namespace>,
    rooms: Rooms,
    remote: OnceLock<Arc<dyn Remote>>,
    deliveries: Deliveries,
}

impl Nsp {
    /// Namespace `name` handled by `handler`.
    pub(crate) fn new(name: &str, handler: Arc<dyn Namespace>) -> Arc<Self> {
        Arc::new(Self {
            name: name.into(),
            handler,
            rooms: Rooms::default(),
            remote: OnceLock::new(),
            deliveries: Deliveries::default(),
        })
    }

    /// Its name (`/`, `/admin`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What its deliveries did.
    pub fn deliveries(&self) -> &Deliveries {
        &self.deliveries
    }

    /// Its deliveries as metrics, under the adapter's names where they mean the same:
    /// packets written or queued for local sockets, volatile packets dropped.
    pub fn readings(&self) -> Vec<redis_adapter::Reading> {
        let counter = |name, label, value: &AtomicU64| redis_adapter::Reading {
            name,
            label,
            kind: redis_adapter::MetricKind::Counter,
            value: value.load(Ordering::Relaxed),
        };
        vec![
            counter("engine_deliveries_total", None, &self.deliveries.sent),
            counter(
                "redis_adapter_local_drops_total",
                Some(("reason", "volatile")),
                &self.deliveries.volatile_dropped,
            ),
        ]
    }

    /// Shares its rooms with `remote`, once (before sockets join).
    pub fn set_remote(&self, remote: Arc<dyn Remote>) -> Result<(), Arc<dyn Remote>> {
        self.remote.set(remote)
    }

    pub(crate) fn handler(&self) -> &Arc<dyn Namespace> {
        &self.handler
    }

    pub(crate) fn rooms(&self) -> &Rooms {
        &self.rooms
    }

    pub(crate) fn remote(&self) -> Option<&Arc<dyn Remote>> {
        self.remote.get()
    }

    /// Whether a local socket is in `room`.
    pub fn holds(&self, room: &str) -> bool {
        self.rooms.holds(room)
    }

    /// The rooms local sockets are in.
    pub fn held_rooms(&self) -> std::collections::HashSet<Room> {
        self.rooms.held()
    }

    /// The local sockets of `selection`.
    pub fn local_sockets(&self, selection: &Selection) -> Vec<Arc<Socket>> {
        self.rooms.select(selection, None)
    }

    /// The local sockets of `selection` as the cluster sees them.
    pub fn local_views(&self, selection: &Selection) -> Vec<SocketView> {
        self.rooms
            .select(selection, None)
            .into_iter()
            .map(|socket| SocketView {
                id: socket.id().to_owned(),
                rooms: socket.rooms().into_iter().collect(),
                data: self.handler.describe(&socket),
            })
            .collect()
    }

    /// Moves the sockets of `selection` on every instance (a user's sockets into a room, a
    /// room's sockets out of the namespace); resolves once each instance carried it out.
    pub async fn change(&self, selection: &Selection, change: Change) -> Result<(), Error> {
        self.change_locally(selection, &change).await;
        if let Some(remote) = self.remote() {
            remote
                .change(selection, change)
                .await
                .map_err(|err| Error::Remote(err.to_string()))?;
        }
        Ok(())
    }

    /// Moves the local sockets of `selection` as `change` says (a join the cluster could not
    /// hold is logged: the socket is in the room here, and a retry completes it).
    pub(crate) async fn change_locally(&self, selection: &Selection, change: &Change) {
        for socket in self.local_sockets(selection) {
            match change {
                Change::Join(rooms) => {
                    for room in rooms {
                        if let Err(err) = socket.join(room.clone()).await {
                            tracing::warn!(%err, %room, "a join was not held by the cluster");
                        }
                    }
                }
                Change::Leave(rooms) => {
                    for room in rooms {
                        socket.leave(room);
                    }
                }
                Change::Disconnect { close: true } => socket.session().close(),
                Change::Disconnect { close: false } => socket.disconnect(),
            }
        }
    }

    /// The sockets of `selection` on every instance: the local ones, and those the others
    /// answer with.
    pub async fn fetch_sockets(&self, selection: &Selection) -> Result<Vec<SocketView>, Error> {
        let mut sockets = self.local_views(selection);
        if let Some(remote) = self.remote() {
            let others = remote
                .fetch(selection)
                .await
                .map_err(|err| Error::Remote(err.to_string()))?;
            sockets.extend(others);
        }
        Ok(sockets)
    }

    /// A broadcast to the sockets in any of `rooms`, on every instance.
    pub fn to(self: &Arc<Self>, rooms: impl IntoIterator<Item = impl Into<Room>>) -> Broadcast {
        Broadcast {
            nsp: self.clone(),
            selection: Selection {
                rooms: rooms.into_iter().map(Into::into).collect(),
                except: Vec::new(),
            },
            except_socket: None,
            reach: Reach::Everywhere,
            options: BroadcastOptions::default(),
        }
    }

    /// A broadcast to every socket of the namespace, on every instance.
    pub fn everyone(self: &Arc<Self>) -> Broadcast {
        self.to(std::iter::empty::<Room>())
    }

    /// Writes `packets` (one, or a binary packet and its attachments) to the local sockets
    /// of `selection` but `except`; how many took them. A volatile single packet is dropped
    /// for a socket that cannot take it at once. A socket in a catch-up join of a room of
    /// the selection ([`Socket::hold`]) may have them held instead.
    pub fn deliver(
        &self,
        selection: &Selection,
        except: Option<&str>,
        packets: &[Packet],
        volatile: bool,
    ) -> usize {
        let mut sent = 0;
        for socket in self.rooms.select(selection, except) {
            match socket.deliver(selection, packets, volatile) {
                Delivery::Sent => sent += 1,
                Delivery::Dropped if volatile => {
                    self.deliveries
                        .volatile_dropped
                        .fetch_add(1, Ordering::Relaxed);
                }
                Delivery::Dropped | Delivery::Held => {}
            }
        }
        self.deliveries
            .sent
            .fetch_add(sent as u64, Ordering::Relaxed);
        sent
    }
}

/// A broadcast being set up: [`Nsp::to`], [`Socket::to`].
pub struct Broadcast {
    nsp: Arc<Nsp>,
    selection: Selection,
    except_socket: Option<Arc<str>>,
    reach: Reach,
    options: BroadcastOptions,
}

/// Which instances a broadcast reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// This one and the others.
    Everywhere,
    /// This one only.
    Local,
    /// The others only.
    Remote,
}

impl Broadcast {
    /// Leaves out the sockets in `rooms`.
    #[must_use]
    pub fn except(mut self, rooms: impl IntoIterator<Item = impl Into<Room>>) -> Self {
        self.selection
            .except
            .extend(rooms.into_iter().map(Into::into));
        self
    }

    /// Leaves out the socket `id` (the sender, for [`Socket::to`]).
    #[must_use]
    pub(crate) fn except_socket(mut self, id: Arc<str>) -> Self {
        self.except_socket = Some(id);
        self
    }

    /// May be dropped for a socket that cannot take it at once (typing notices).
    #[must_use]
    pub fn volatile(mut self) -> Self {
        self.options.volatile = true;
        self
    }

    /// Reaches this instance's sockets only (replaces [`Broadcast::remote_only`]).
    #[must_use]
    pub fn local(mut self) -> Self {
        self.reach = Reach::Local;
        self
    }

    /// Is handed to the cluster only: no socket of this instance gets it (its members here
    /// were sent it earlier, while the cluster could not take it, say). Without a cluster it
    /// reaches no one. Replaces [`Broadcast::local`].
    #[must_use]
    pub fn remote_only(mut self) -> Self {
        self.reach = Reach::Remote;
        self
    }

    /// [`Broadcast::emit`] resolves only once the cluster took the broadcast (Redis answered
    /// its PUBLISH) rather than once it is queued, so that the caller learns of a broadcast
    /// lost with the connection and may retry or keep it. [`Broadcast::emit_now`] cannot
    /// wait: it queues a confirmed broadcast as any other.
    #[must_use]
    pub fn confirmed(mut self) -> Self {
        self.options.confirmed = true;
        self
    }

    /// Like [`Broadcast::emit`], without waiting: the cluster queues the packet now (or
    /// refuses it, and then no one gets it).
    pub fn emit_now<T: Serialize + ?Sized>(self, event: &str, data: &T) -> Result<usize, Error> {
        let packet = self.packet(event, data)?;
        if let Some(remote) = self.remote() {
            remote
                .broadcast_now(&self.selection, &packet, self.options)
                .map_err(|err| Error::Remote(err.to_string()))?;
        }
        Ok(self.deliver_locally(packet))
    }

    /// Encodes `event` with `data` for a caller that publishes it itself: the messages the
    /// cluster would publish (none without a cluster, or for a local broadcast), and the
    /// packet for the local members, written by [`Prepared::deliver_locally`] once the
    /// messages are published. The cluster's publish queue is not involved.
    pub fn prepare<T: Serialize + ?Sized>(self, event: &str, data: &T) -> Result<Prepared, Error> {
        let packet = self.packet(event, data)?;
        let outgoing = match self.remote() {
            Some(remote) => remote
                .outgoing(&self.selection, &packet, self.options)
                .map_err(|err| Error::Remote(err.to_string()))?,
            None => Vec::new(),
        };
        Ok(Prepared {
            broadcast: self,
            packet,
            outgoing,
        })
    }

    /// The cluster, if the broadcast goes to it.
    fn remote(&self) -> Option<&Arc<dyn Remote>> {
        match self.reach {
            Reach::Local => None,
            Reach::Everywhere | Reach::Remote => self.nsp.remote(),
        }
    }

    fn packet<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<Bytes, Error> {
        let text = sio::encode_message(Kind::Event, &self.nsp.name, None, Some(&(event, data)))?;
        Ok(Bytes::from(text))
    }

    fn deliver_locally(&self, packet: Bytes) -> usize {
        if self.reach == Reach::Remote {
            return 0;
        }
        self.nsp.deliver(
            &self.selection,
            self.except_socket.as_deref(),
            &[Packet::Text(packet)],
            self.options.volatile,
        )
    }

    /// Emits `event` with `data`: the packet is encoded once, handed to the cluster for the
    /// members elsewhere, then written to the local members. A broadcast the cluster refuses
    /// (its publish queue full, Redis unreachable; with [`Broadcast::confirmed`], a publish
    /// Redis did not answer in time) is an error and reaches no one here, so that the caller
    /// may retry it; the number of local sockets that took it otherwise.
    pub async fn emit<T: Serialize + ?Sized>(self, event: &str, data: &T) -> Result<usize, Error> {
        let packet = self.packet(event, data)?;
        if let Some(remote) = self.remote() {
            remote
                .broadcast(&self.selection, &packet, self.options)
                .await
                .map_err(|err| Error::Remote(err.to_string()))?;
        }
        Ok(self.deliver_locally(packet))
    }
}

/// A broadcast encoded by [`Broadcast::prepare`], whose cluster messages the caller publishes.
pub struct Prepared {
    broadcast: Broadcast,
    packet: Bytes,
    outgoing: Vec<Outgoing>,
}

impl Prepared {
    /// The messages to publish for the members on the other instances: one per room of the
    /// broadcast (or one on the namespace channel), none without a cluster.
    pub fn outgoing(&self) -> &[Outgoing] {
        &self.outgoing
    }

    /// The messages to publish, for a broadcast that has no members here to serve (one made
    /// [`Broadcast::remote_only`]).
    pub fn into_outgoing(self) -> Vec<Outgoing> {
        self.outgoing
    }

    /// Writes the packet to this instance's members, once the messages are published; how
    /// many took it.
    pub fn deliver_locally(self) -> usize {
        self.broadcast.deliver_locally(self.packet)
    }
}
