//! What all namespace adapters of one process share: the Redis connections, the
//! configuration, the counters and the live-instance view of each namespace.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{Arc, Mutex, Weak},
};

use socketioxide_core::{
    Sid,
    adapter::{Room, RoomParam},
};

use crate::{
    bus::Bus,
    config::RedisAdapterConfig,
    error::Error,
    membership::Membership,
    stats::{Counters, Stats},
};

/// The state given to `SocketIo::builder().with_adapter::<RedisAdapter<_>>(state)`.
///
/// Cheap to clone. Create one per process with [`RedisAdapterState::connect`].
#[derive(Clone)]
pub struct RedisAdapterState {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub config: RedisAdapterConfig,
    pub bus: Bus,
    pub counters: Arc<Counters>,
    namespaces: Mutex<HashMap<String, Namespace>>,
}

/// What the state reaches of one namespace's adapter.
#[derive(Default)]
struct Namespace {
    members: Weak<Membership>,
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
}

impl RedisAdapterState {
    /// Connects to the Redis at `redis_url` (for example `redis://127.0.0.1:6379`).
    ///
    /// Fails when Redis cannot be reached now; once connected, every connection
    /// reconnects on its own and restores its subscriptions.
    pub async fn connect(redis_url: &str, config: RedisAdapterConfig) -> Result<Self, Error> {
        let counters = Arc::new(Counters::default());
        let bus = Bus::connect(redis_url, &config, counters.clone()).await?;
        Ok(Self {
            shared: Arc::new(Shared {
                config,
                bus,
                counters,
                namespaces: Mutex::default(),
            }),
        })
    }

    /// The number of live instances serving namespace `ns`, this one included, or `None`
    /// when this process has no adapter for `ns`.
    pub fn server_count(&self, ns: &str) -> Option<u16> {
        self.shared
            .namespaces()
            .get(ns)
            .and_then(|namespace| namespace.members.upgrade())
            .map(|members| members.server_count())
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
        self.shared.bus.link().borrow().connected
    }

    /// A snapshot of the adapter's counters.
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// The configuration in use.
    pub fn config(&self) -> &RedisAdapterConfig {
        &self.shared.config
    }
}

impl Shared {
    /// Makes the membership of `ns` visible through [`RedisAdapterState::server_count`].
    pub fn register_namespace(&self, ns: &str, members: &Arc<Membership>) {
        self.namespaces().insert(
            ns.to_owned(),
            Namespace {
                members: Arc::downgrade(members),
                rooms: None,
            },
        );
    }

    /// Makes the join path of `ns` reachable through [`RedisAdapterState::join`].
    pub fn register_rooms(&self, ns: &str, rooms: Weak<dyn NamespaceRooms>) {
        self.namespaces().entry(ns.to_owned()).or_default().rooms = Some(rooms);
    }

    fn namespaces(&self) -> std::sync::MutexGuard<'_, HashMap<String, Namespace>> {
        self.namespaces
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
