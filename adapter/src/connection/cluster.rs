//! Redis Cluster: one RESP3 cluster connection per process that both publishes (`SPUBLISH`)
//! and holds the sharded subscriptions (`SSUBSCRIBE`). redis-rs sends each channel to the
//! shard serving its hash slot, follows `MOVED` after a failover and subscribes again on the
//! node that now serves the slot on its own only when a command of that connection hits the
//! change. So the topology is also watched here: when the masters serving the slots change
//! (a failover, a resharding, also one of a master that hung with its connections open), or
//! when the probe finds the subscriptions deaf, the whole connection is rebuilt and every
//! route subscribed again on the shard now serving it. When a node's connection drops (a
//! crash, a restart in place) every route is subscribed again through the live connection,
//! in the background, so that the other shards' rooms are not interrupted.
//!
//! Either way the link says the subscriptions have a gap ([`Link::subscribed`] false) until
//! every route holds again, while publishes keep going out: through the old connection during
//! a rebuild, until an attempt fails.
//!
//! [`Link::subscribed`]: super::Link::subscribed

use std::{
    pin::pin,
    sync::{Arc, RwLock},
    time::Duration,
};

use futures_util::{Stream, StreamExt, future, stream};
use redis::{
    ProtocolVersion, PushInfo, PushKind, Value,
    cluster::{ClusterClient, ClusterClientBuilder},
    cluster_async::ClusterConnection,
};
use tokio::{
    sync::{Notify, mpsc},
    task::JoinHandle,
};

use super::{
    Credentials, RedisConfig,
    backoff::{reconnect_delays, until_connected},
    deadline::within,
    link::{self, LinkRx, LinkTx},
    routes::{Handler, Routes, Sharding},
};
use crate::{error::Error, stats::Counters};

/// Subscriptions in flight at once while every route is subscribed (again).
const RESUBSCRIBE_CONCURRENCY: usize = 256;
/// How soon an unanswered `CLUSTER SLOTS` is asked again.
const UNANSWERED_TOPOLOGY_RETRY: Duration = Duration::from_millis(250);

/// The live cluster connection, replaced when it is rebuilt; cheap to clone out.
#[derive(Clone)]
pub(crate) struct ClusterHandle(Arc<RwLock<ClusterConnection>>);

impl ClusterHandle {
    /// A clone of the current connection (clones share the connection).
    pub fn get(&self) -> ClusterConnection {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn replace(&self, conn: ClusterConnection) {
        *self
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = conn;
    }
}

/// Owner of the task that reads pushed messages; dropping it stops the task.
pub(crate) struct ClusterSubscriber {
    handle: ClusterHandle,
    routes: Routes,
    link: LinkRx,
    rebuild: Arc<Notify>,
    timeout: Duration,
    task: JoinHandle<()>,
    topology: JoinHandle<()>,
}

impl ClusterSubscriber {
    /// Connects to the cluster through `nodes` (seed URLs), failing if none answers now.
    pub async fn start(
        nodes: Vec<String>,
        config: &RedisConfig,
        counters: Arc<Counters>,
    ) -> Result<Self, Error> {
        let connector = Connector {
            nodes,
            connect_timeout: config.connect_timeout,
            response_timeout: config.command_timeout,
            credentials: config.credentials.clone(),
            tls: config.tls_certificates(),
        };
        let (mut conn, pushes) = connector.connect().await?;
        let started_on = slot_masters_of(&mut conn, config.connect_timeout).await?;
        let handle = ClusterHandle(Arc::new(RwLock::new(conn)));
        let routes = Routes::default();
        let (link_tx, link) = link::connected();
        let rebuild = Arc::new(Notify::new());
        let reader = Reader {
            connector,
            handle: handle.clone(),
            routes: routes.clone(),
            link: link_tx,
            rebuild: rebuild.clone(),
            counters,
            reconnect_bounds: config.reconnect_bounds(),
        };
        let topology = watch_topology(
            handle.clone(),
            rebuild.clone(),
            config.probe_interval,
            config.connect_timeout,
            started_on,
        );
        Ok(Self {
            handle,
            routes,
            link,
            rebuild,
            timeout: config.connect_timeout,
            task: tokio::spawn(reader.run(pushes)),
            topology: tokio::spawn(topology),
        })
    }

    /// The connection, for the publisher.
    pub fn handle(&self) -> ClusterHandle {
        self.handle.clone()
    }

    /// The connection state, to watch.
    pub fn link(&self) -> LinkRx {
        self.link.clone()
    }

    /// The signal that makes the task rebuild the connection.
    pub fn rebuild_signal(&self) -> Arc<Notify> {
        self.rebuild.clone()
    }

    /// Adds a route and subscribes, on the shard of `channel` when `sharding` says so;
    /// returns once Redis confirmed. On failure the route is kept, and subscribed again with
    /// the others when the connection is rebuilt.
    pub async fn subscribe(
        &self,
        channel: String,
        handler: Handler,
        sharding: Sharding,
    ) -> Result<(), Error> {
        self.routes.insert(channel.clone(), handler, sharding);
        let mut conn = self.handle.get();
        within(self.timeout, subscribe(&mut conn, &channel, sharding)).await
    }

    /// Removes the route of `channel` subscribed as `sharding` says, and unsubscribes it.
    pub async fn unsubscribe(&self, channel: String, sharding: Sharding) {
        if !self.routes.remove(&channel, sharding) {
            return;
        }
        let mut conn = self.handle.get();
        let unsubscribed = match sharding {
            Sharding::Sharded => within(self.timeout, conn.sunsubscribe(&channel)).await,
            Sharding::Plain => within(self.timeout, conn.unsubscribe(&channel)).await,
        };
        if let Err(err) = unsubscribed {
            tracing::debug!(%channel, %err, "unsubscribe failed; the connection is going away");
        }
    }
}

impl Drop for ClusterSubscriber {
    fn drop(&mut self) {
        self.task.abort();
        self.topology.abort();
    }
}

/// Asks the cluster which master serves which slots every `interval`, and has the
/// connection rebuilt when that changed since the last answer, the first one compared with
/// `known` (read when the connection was made: a master that fails over before the first
/// question must count as a change too). An unanswered question is asked again soon, of
/// another node with luck (each goes to a random one): the node asked may be the one that
/// hung, whose failover is what must be seen.
async fn watch_topology(
    handle: ClusterHandle,
    rebuild: Arc<Notify>,
    interval: Duration,
    timeout: Duration,
    mut known: Vec<String>,
) {
    let mut wait = interval;
    loop {
        tokio::time::sleep(wait).await;
        let mut conn = handle.get();
        let Ok(current) = slot_masters_of(&mut conn, timeout).await else {
            wait = interval.min(UNANSWERED_TOPOLOGY_RETRY);
            continue;
        };
        wait = interval;
        if current != known {
            tracing::warn!("redis cluster topology changed; moving subscriptions");
            rebuild.notify_one();
            known = current;
        }
    }
}

/// Which master serves which slots, as the node `conn` asks (any one) answers within `timeout`.
async fn slot_masters_of(
    conn: &mut ClusterConnection,
    timeout: Duration,
) -> Result<Vec<String>, Error> {
    let mut command = redis::cmd("CLUSTER");
    command.arg("SLOTS");
    let answer: Value = within(timeout, command.query_async(conn)).await?;
    Ok(slot_masters(&answer))
}

/// The slot ranges of a `CLUSTER SLOTS` answer with the address of the master serving each,
/// sorted; replicas and node ids are left out.
fn slot_masters(answer: &Value) -> Vec<String> {
    let Value::Array(ranges) = answer else {
        return Vec::new();
    };
    let mut masters: Vec<String> = ranges
        .iter()
        .filter_map(|range| match range {
            Value::Array(parts) => match parts.as_slice() {
                [start, end, Value::Array(master), ..] => {
                    Some(format!("{start:?}-{end:?}@{:?}", master.get(..2)))
                }
                _ => None,
            },
            _ => None,
        })
        .collect();
    masters.sort();
    masters
}

/// How to open a connection to the cluster.
struct Connector {
    nodes: Vec<String>,
    connect_timeout: Duration,
    response_timeout: Duration,
    credentials: Option<Credentials>,
    tls: Option<redis::TlsCertificates>,
}

impl Connector {
    /// A new RESP3 connection and the receiver of what it pushes (messages of subscribed
    /// channels).
    async fn connect(
        &self,
    ) -> Result<(ClusterConnection, mpsc::UnboundedReceiver<PushInfo>), Error> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut builder = ClusterClientBuilder::new(self.nodes.clone())
            .use_protocol(ProtocolVersion::RESP3)
            .push_sender(tx)
            .connection_timeout(self.connect_timeout)
            .response_timeout(self.response_timeout);
        if let Some(credentials) = &self.credentials {
            builder = builder.password(&credentials.password);
            if let Some(username) = &credentials.username {
                builder = builder.username(username);
            }
        }
        if let Some(certificates) = &self.tls {
            super::install_crypto_provider();
            builder = builder.certs(certificates.clone());
        }
        let client: ClusterClient = builder.build()?;
        // Each node's connection may take `connect_timeout`, and a node that accepts but never
        // answers (hung, cut off) takes all of it: the seeds are connected to together, then
        // the slots asked, then the slot map's nodes connected to together.
        let whole = self.connect_timeout * 2 + self.response_timeout;
        let conn = within(whole, client.get_async_connection()).await?;
        Ok((conn, rx))
    }
}

/// State of the task that reads pushed messages.
struct Reader {
    connector: Connector,
    handle: ClusterHandle,
    routes: Routes,
    link: LinkTx,
    rebuild: Arc<Notify>,
    counters: Arc<Counters>,
    reconnect_bounds: (Duration, Duration),
}

impl Reader {
    async fn run(self, mut pushes: mpsc::UnboundedReceiver<PushInfo>) {
        loop {
            self.dispatch(&mut pushes).await;
            // Publishes keep going through the old connection (it follows `MOVED`) until an
            // attempt to rebuild fails; what the old subscriptions receive is no longer read.
            link::gap(&self.link);
            tracing::warn!("redis cluster subscriptions deaf or moved; rebuilding the connection");
            pushes = self.reconnect().await;
            Counters::incr(&self.counters.reconnects);
            link::restored(&self.link);
            tracing::info!("redis cluster connection rebuilt; subscriptions restored");
        }
    }

    /// Routes pushed messages until a rebuild is asked for or the connection is gone. When a
    /// node's connection drops, the link says so until every route is subscribed again.
    async fn dispatch(&self, pushes: &mut mpsc::UnboundedReceiver<PushInfo>) {
        let mut resubscribing: Option<JoinHandle<()>> = None;
        loop {
            let event = tokio::select! {
                push = pushes.recv() => match push {
                    Some(push) => Event::Push(push),
                    None => break,
                },
                () = self.rebuild.notified() => break,
                done = finished(&mut resubscribing) => Event::Resubscribed(done.is_ok()),
            };
            match event {
                Event::Push(push) if push.kind == PushKind::Disconnection => {
                    // A node's process went away (a crash, a restart in place: same slots, so
                    // no topology change). redis-rs reconnects to it once, at once, and
                    // subscribes again only if that succeeds: every route is subscribed again
                    // here, in the background and until it holds, while the other nodes'
                    // routes keep working.
                    tracing::warn!("a redis cluster node's connection dropped; subscribing again");
                    link::gap(&self.link);
                    if let Some(task) = resubscribing.take() {
                        task.abort();
                    }
                    resubscribing = Some(self.subscribe_again());
                }
                Event::Push(push) => {
                    if let Some((sharding, channel, payload)) = message(&push) {
                        self.routes
                            .dispatch(&self.counters, sharding, channel, payload);
                    }
                }
                Event::Resubscribed(true) => {
                    resubscribing = None;
                    link::restored(&self.link);
                }
                Event::Resubscribed(false) => {
                    tracing::error!(
                        "the redis cluster re-subscription task failed; starting it again"
                    );
                    resubscribing = Some(self.subscribe_again());
                }
            }
        }
        if let Some(task) = resubscribing {
            task.abort();
        }
    }

    /// Subscribes every route again in the background, until each holds.
    fn subscribe_again(&self) -> JoinHandle<()> {
        tokio::spawn(subscribe_again(
            self.handle.clone(),
            self.routes.clone(),
            self.connector.connect_timeout,
            self.reconnect_bounds,
        ))
    }

    /// Retries until a new connection holds every route's subscription.
    async fn reconnect(&self) -> mpsc::UnboundedReceiver<PushInfo> {
        until_connected(self.reconnect_bounds, "redis cluster", || async {
            let restored = self.restore().await;
            if restored.is_err() {
                // Redis may be out of reach: publishes fail at once until a rebuild holds.
                link::lost(&self.link);
            }
            restored
        })
        .await
    }

    async fn restore(&self) -> Result<mpsc::UnboundedReceiver<PushInfo>, Error> {
        let (conn, pushes) = self.connector.connect().await?;
        let mut outcomes = pin!(subscriptions(
            conn.clone(),
            &self.routes,
            self.routes.channels(),
            self.connector.connect_timeout,
        ));
        // The first failure ends the attempt (and the subscriptions still in flight).
        while let Some((_, subscribed)) = outcomes.next().await {
            subscribed?;
        }
        self.handle.replace(conn);
        Ok(pushes)
    }
}

/// What the reading task waits for.
enum Event {
    /// A message, a subscription's confirmation or a node's disconnection.
    Push(PushInfo),
    /// The background re-subscription ended: every route holds (`true`), or it failed.
    Resubscribed(bool),
}

/// The outcome of `task` once it ends; never, while there is none.
async fn finished(task: &mut Option<JoinHandle<()>>) -> Result<(), tokio::task::JoinError> {
    match task {
        Some(task) => task.await,
        None => future::pending().await,
    }
}

/// Subscribes every route again through the live connection (subscribing a channel twice
/// is harmless), then, after each reconnect delay, those that failed and are still routed,
/// until none is left.
async fn subscribe_again(
    handle: ClusterHandle,
    routes: Routes,
    timeout: Duration,
    (min, max): (Duration, Duration),
) {
    let mut pending = routes.channels();
    let mut delays = reconnect_delays(min, max);
    loop {
        let failed: Vec<_> = subscriptions(handle.get(), &routes, pending, timeout)
            .filter_map(|(route, subscribed)| future::ready(subscribed.is_err().then_some(route)))
            .collect()
            .await;
        if failed.is_empty() {
            tracing::info!("redis cluster routes subscribed again");
            return;
        }
        pending = failed;
        tokio::time::sleep(delays.next().unwrap_or(max)).await;
    }
}

/// Subscribes each of `pending` still in `routes` on `conn` (clones of it), each within `timeout`, up to
/// [`RESUBSCRIBE_CONCURRENCY`] at once (one at a time, thousands of rooms would cost as many
/// round trips, or timeouts on a dead shard, in turn); yields each route with its outcome as
/// it comes.
fn subscriptions<'a>(
    conn: ClusterConnection,
    routes: &'a Routes,
    pending: Vec<(String, Sharding)>,
    timeout: Duration,
) -> impl Stream<Item = ((String, Sharding), Result<(), Error>)> + 'a {
    stream::iter(pending)
        .filter(|(channel, sharding)| future::ready(routes.holds(channel, *sharding)))
        .map(move |(channel, sharding)| {
            let mut conn = conn.clone();
            async move {
                let subscribed = within(timeout, subscribe(&mut conn, &channel, sharding)).await;
                ((channel, sharding), subscribed)
            }
        })
        .buffer_unordered(RESUBSCRIBE_CONCURRENCY)
}

/// Subscribes `channel` on `conn` as `sharding` says.
async fn subscribe(
    conn: &mut ClusterConnection,
    channel: &str,
    sharding: Sharding,
) -> redis::RedisResult<()> {
    match sharding {
        Sharding::Sharded => conn.ssubscribe(channel).await,
        Sharding::Plain => conn.subscribe(channel).await,
    }
}

/// The kind of subscription, channel and payload of a pushed message; `None` for anything
/// else (subscription confirmations, disconnection notices).
fn message(push: &PushInfo) -> Option<(Sharding, &[u8], &[u8])> {
    let sharding = match push.kind {
        PushKind::SMessage => Sharding::Sharded,
        PushKind::Message => Sharding::Plain,
        _ => return None,
    };
    match push.data.as_slice() {
        [Value::BulkString(channel), Value::BulkString(payload)] => {
            Some((sharding, channel, payload))
        }
        _ => None,
    }
}
