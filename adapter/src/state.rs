//! What all namespace adapters of one process share: the Redis connections, the
//! configuration, the counters and the live-instance view of each namespace.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Weak},
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
    namespaces: Mutex<HashMap<String, Weak<Membership>>>,
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
            .and_then(Weak::upgrade)
            .map(|members| members.server_count())
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
        self.namespaces()
            .insert(ns.to_owned(), Arc::downgrade(members));
    }

    fn namespaces(&self) -> std::sync::MutexGuard<'_, HashMap<String, Weak<Membership>>> {
        self.namespaces
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
