//! What all namespace adapters of one process share: the Redis layer, the configuration,
//! and each namespace's bus and join path.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{Arc, Mutex, OnceLock, Weak},
};

use socketioxide_core::{
    Sid,
    adapter::{Room, RoomParam},
    packet::Packet,
};

use super::gate::Keep;

use crate::{
    cluster::{Id, NamespaceBus},
    config::RedisAdapterConfig,
    connection::{Redis, RedisConfig},
    error::Error,
    stats::Stats,
};

/// The state given to `SocketIo::builder().with_adapter::<RedisAdapter<_>>(state)`.
///
/// Cheap to clone. Create one per process with [`RedisAdapterState::connect`], or with
/// [`RedisAdapterState::new`] over a [`Redis`] the application shares with its own code.
#[derive(Clone)]
pub struct RedisAdapterState {
    shared: Arc<Shared>,
}

struct Shared {
    config: RedisAdapterConfig,
    redis: Redis,
    namespaces: Mutex<HashMap<String, Namespace>>,
    membership: OnceLock<MembershipHook>,
}

/// Which way an emitter operation moved sockets ([`RedisAdapterState::on_emitter_membership`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipChange {
    /// `socketsJoin`: the sockets are now in the rooms.
    Joined,
    /// `socketsLeave`: the sockets are no longer in the rooms.
    Left,
}

/// What [`RedisAdapterState::on_emitter_membership`] is told: the namespace, this instance's
/// sockets that moved, the rooms, and which way.
type MembershipHook = Box<dyn Fn(&str, &[Sid], &[Room], MembershipChange) + Send + Sync>;

/// What the state reaches of one namespace's adapter.
struct Namespace {
    bus: Weak<NamespaceBus<Redis>>,
    rooms: Option<Weak<dyn NamespaceRooms>>,
}

/// The join and leave path of one namespace's adapter, whatever its socket emitter type.
pub(crate) trait NamespaceRooms: Send + Sync {
    /// Adds the socket to `rooms` here and resolves once each room's channel is subscribed.
    fn join(
        self: Arc<Self>,
        sid: Sid,
        rooms: Vec<Room>,
    ) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;
    /// Removes the socket from `rooms` here; emptied rooms are unsubscribed after the delay.
    fn leave(&self, sid: Sid, rooms: Vec<Room>);
    /// Holds back the broadcasts to `room` for `sid`, and resolves once the room's channel is
    /// subscribed, with the hold's ticket.
    fn hold(
        self: Arc<Self>,
        sid: Sid,
        room: Room,
    ) -> Pin<Box<dyn Future<Output = Result<u64, Error>> + Send>>;
    /// Ends the hold of `sid` on `room`; with `join`, sends the kept packets it accepts and
    /// makes the socket a member (filtering with it for a grace period first), returning
    /// how many were sent (`None` when some were lost to the bound, or without `join`).
    fn end_hold(self: Arc<Self>, hold: (Sid, u64), room: Room, join: Option<Keep>)
    -> Option<usize>;
}

/// A socket kept out of a room while the application sends it what it missed; see
/// [`RedisAdapterState::hold`]. Dropped without [`Hold::join`], the socket stays out of the
/// room and the held broadcasts are dropped.
pub struct Hold {
    rooms: Arc<dyn NamespaceRooms>,
    sid: Sid,
    ticket: u64,
    room: Option<Room>,
}

impl Hold {
    /// Ends the catch-up: the broadcasts to the room held back meanwhile that `keep` accepts
    /// are sent to the socket in arrival order, with no delivery in between. Then, for the
    /// Redis layer's command timeout (the longest a message stored before the catch-up read
    /// can take to be published), each new broadcast is sent at once if `keep` accepts it;
    /// after that the socket is a plain member. Returns how many held broadcasts were sent,
    /// or `None` when more than [`MAX_HELD`](super::MAX_HELD) arrived and some were lost, or
    /// the hold had ended meanwhile (the socket left or disconnected): the hold is then
    /// cancelled and the socket is not in the room (join it again, or hold it again to retry
    /// the catch-up). Must run inside a Tokio runtime.
    pub fn join(mut self, keep: impl Fn(&Packet) -> bool + Send + Sync + 'static) -> Option<usize> {
        let room = self.room.take()?;
        self.rooms
            .clone()
            .end_hold((self.sid, self.ticket), room, Some(Box::new(keep)))
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if let Some(room) = self.room.take() {
            self.rooms
                .clone()
                .end_hold((self.sid, self.ticket), room, None);
        }
    }
}

impl RedisAdapterState {
    /// Connects to the Redis at `redis_url` (for example `redis://127.0.0.1:6379`, or
    /// `redis+cluster://host:port,host:port`) with the Redis layer's defaults.
    ///
    /// Fails when Redis cannot be reached now; once connected, every connection
    /// reconnects on its own and restores its subscriptions.
    pub async fn connect(redis_url: &str, config: RedisAdapterConfig) -> Result<Self, Error> {
        let redis_config = RedisConfig {
            probe_prefix: config.prefix.clone(),
            ..RedisConfig::default()
        };
        Ok(Self::new(
            Redis::connect(redis_url, redis_config).await?,
            config,
        ))
    }

    /// The adapter over `redis`, which the application may use for its own commands and
    /// subscriptions too.
    pub fn new(redis: Redis, config: RedisAdapterConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                config,
                redis,
                namespaces: Mutex::default(),
                membership: OnceLock::new(),
            }),
        }
    }

    /// Tells `hook` of every `socketsJoin` and `socketsLeave` of the Socket.IO Redis emitter
    /// carried out on this instance's sockets, after the sockets moved: for applications that
    /// keep their own record of who is in which room. Set once; `false` if one already was.
    pub fn on_emitter_membership(
        &self,
        hook: impl Fn(&str, &[Sid], &[Room], MembershipChange) + Send + Sync + 'static,
    ) -> bool {
        self.shared.membership.set(Box::new(hook)).is_ok()
    }

    /// Runs the membership hook, if any, for `sids` of namespace `ns`.
    pub(crate) fn tell_membership(
        &self,
        ns: &str,
        sids: &[Sid],
        rooms: &[Room],
        change: MembershipChange,
    ) {
        if let Some(hook) = self.shared.membership.get() {
            if !sids.is_empty() {
                hook(ns, sids, rooms, change);
            }
        }
    }

    /// The number of live instances serving namespace `ns`, this one included, or `None`
    /// when this process has no adapter for `ns`.
    pub fn server_count(&self, ns: &str) -> Option<u16> {
        self.shared
            .namespaces()
            .get(ns)
            .and_then(|namespace| namespace.bus.upgrade())
            .map(|bus| bus.server_count())
    }

    /// Puts socket `sid` of namespace `ns` in `rooms`, and returns once this instance is
    /// subscribed to each room's channel: every broadcast to the rooms published after this
    /// returns reaches the socket, from any instance.
    ///
    /// Use this instead of socketioxide's `socket.join(..)`, which cannot tell the adapter:
    /// a room joined that way is only subscribed by the next reconcile
    /// ([`RedisAdapterConfig::reconcile_interval`]), and messages sent before that are
    /// missed. On error (Redis unreachable) the socket is not in the rooms.
    ///
    /// ```no_run
    /// # use redis_adapter::{RedisAdapter, RedisAdapterState};
    /// # use socketioxide::{adapter::Emitter, extract::SocketRef};
    /// async fn on_join(socket: SocketRef<RedisAdapter<Emitter>>, state: RedisAdapterState) {
    ///     match state.join(socket.ns(), socket.id, "lobby").await {
    ///         Ok(()) => socket.emit("joined", "lobby").ok(),
    ///         Err(err) => socket.emit("error", &err.to_string()).ok(),
    ///     };
    /// }
    /// ```
    pub async fn join(&self, ns: &str, sid: Sid, rooms: impl RoomParam) -> Result<(), Error> {
        let adapter = self.rooms_of(ns)?;
        adapter.join(sid, rooms.into_room_iter().collect()).await
    }

    /// Starts a catch-up join of socket `sid` of namespace `ns` to `room`: returns once this
    /// instance is subscribed to the room's channel, and from then on keeps every broadcast
    /// to the room that the socket would receive, instead of sending it. The application
    /// then sends the socket what it missed from its own store (a message history) and ends
    /// with [`Hold::join`], which sends the held broadcasts it still wants (those not in the
    /// history it sent) and makes the socket a member: no gap, no duplicate at the seam.
    ///
    /// Broadcasts with acknowledgements are not held. While any socket of `ns` is held,
    /// each local delivery of `ns` takes one mutex; at most [`MAX_HELD`](super::MAX_HELD)
    /// broadcasts are kept per hold.
    pub async fn hold(&self, ns: &str, sid: Sid, room: impl Into<Room>) -> Result<Hold, Error> {
        let rooms = self.rooms_of(ns)?;
        let room = room.into();
        let ticket = rooms.clone().hold(sid, room.clone()).await?;
        Ok(Hold {
            rooms,
            sid,
            ticket,
            room: Some(room),
        })
    }

    /// Takes socket `sid` of namespace `ns` out of `rooms`. A room left without local member
    /// is unsubscribed after [`RedisAdapterConfig::unsubscribe_delay`].
    pub fn leave(&self, ns: &str, sid: Sid, rooms: impl RoomParam) -> Result<(), Error> {
        self.rooms_of(ns)?
            .leave(sid, rooms.into_room_iter().collect());
        Ok(())
    }

    fn rooms_of(&self, ns: &str) -> Result<Arc<dyn NamespaceRooms>, Error> {
        self.shared
            .namespaces()
            .get(ns)
            .and_then(|namespace| namespace.rooms.as_ref()?.upgrade())
            .ok_or_else(|| Error::UnknownNamespace(ns.to_owned()))
    }

    /// Whether the subscriber connection is up with every subscription in place (false while
    /// it reconnects). Publishes fail at once while this is false.
    pub fn is_connected(&self) -> bool {
        self.shared.redis.is_connected()
    }

    /// A snapshot of the counters of the adapter and its Redis layer.
    pub fn stats(&self) -> Stats {
        self.shared.redis.counters().snapshot()
    }

    /// The configuration in use.
    pub fn config(&self) -> &RedisAdapterConfig {
        &self.shared.config
    }

    /// The Redis layer the adapter runs on.
    pub fn redis(&self) -> &Redis {
        &self.shared.redis
    }

    /// The bus of namespace `ns` for instance `node`, visible through
    /// [`RedisAdapterState::server_count`].
    pub(crate) fn namespace_bus(&self, ns: &str, node: Id) -> Arc<NamespaceBus<Redis>> {
        let redis = &self.shared.redis;
        let bus = NamespaceBus::new(
            Arc::new(redis.clone()),
            &self.shared.config,
            redis.counters().clone(),
            ns,
            node,
        );
        self.shared.namespaces().insert(
            ns.to_owned(),
            Namespace {
                bus: Arc::downgrade(&bus),
                rooms: None,
            },
        );
        bus
    }

    /// Makes the join path of `ns` reachable through [`RedisAdapterState::join`].
    pub(crate) fn register(
        &self,
        ns: &str,
        bus: &Arc<NamespaceBus<Redis>>,
        rooms: Weak<dyn NamespaceRooms>,
    ) {
        self.shared.namespaces().insert(
            ns.to_owned(),
            Namespace {
                bus: Arc::downgrade(bus),
                rooms: Some(rooms),
            },
        );
    }
}

impl Shared {
    fn namespaces(&self) -> std::sync::MutexGuard<'_, HashMap<String, Namespace>> {
        self.namespaces
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
