//! The Redis layer: every Redis connection of a process, opened in one place and shared by
//! everything that talks to Redis (the cluster bus, and the application's own commands and
//! subscriptions).
//!
//! One [`Redis`] holds
//! - one multiplexed command connection ([`Redis::commands`], [`Redis::query`]);
//! - one subscriber that reconnects with backoff and restores every subscription
//!   ([`Redis::subscribe`]), watched by one Pub/Sub probe;
//! - one ordered, bounded publish pipeline ([`Redis::publish`]).
//!
//! On a standalone Redis that is a publishing/command connection and a subscribing one; on
//! a Redis Cluster one RESP3 connection that does both with sharded Pub/Sub. Which of the
//! two it is, is decided once, here, from the URL; nothing above this module asks.

mod backoff;
mod cluster;
mod command;
mod config;
mod deadline;
mod link;
mod probe;
mod queue;
mod routes;
mod share;
mod subscriber;
mod transport;
mod url;

use std::sync::Arc;

use redis::{
    FromRedisValue,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use tokio::{sync::Notify, task::JoinHandle};

use crate::{error::Error, stats::Counters};
pub use command::Commands;
pub use config::{Credentials, RedisConfig};
pub use deadline::within;
pub use link::{Link, LinkRx};
pub use queue::{PUBLISH_DURATION, Wait};
pub use routes::Handler;
pub use url::seed_nodes as cluster_nodes;
use {
    cluster::ClusterSubscriber, probe::Probe, queue::PublishQueue, routes::Sharding,
    subscriber::Subscriber, transport::Transport, url::RedisUrl,
};

/// Every Redis connection of a process; cheap to clone (clones share the connections).
/// Dropping the last clone stops its background tasks.
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

struct Inner {
    config: RedisConfig,
    counters: Arc<Counters>,
    transport: Transport,
    queue: PublishQueue,
    subscriptions: Subscriptions,
    writer: JoinHandle<()>,
    probe: JoinHandle<()>,
}

/// The subscribing side, by kind of deployment.
enum Subscriptions {
    Standalone(Subscriber),
    Cluster(ClusterSubscriber),
}

impl Redis {
    /// Connects to `url` (`redis://` or `rediss://` for a standalone Redis,
    /// `redis+cluster://host:port,host:port` for a cluster); fails if Redis cannot be reached
    /// right now. Once connected, every connection comes back by itself after a loss.
    pub async fn connect(url: &str, config: RedisConfig) -> Result<Self, Error> {
        let counters = Arc::new(Counters::default());
        let (subscriptions, transport) = match RedisUrl::parse(url) {
            RedisUrl::Cluster(nodes) => {
                let subscriber = ClusterSubscriber::start(nodes, &config, counters.clone()).await?;
                let transport = Transport::Cluster(subscriber.handle());
                (Subscriptions::Cluster(subscriber), transport)
            }
            RedisUrl::Standalone(url) => {
                let client = standalone_client(&url, &config)?;
                let subscriber =
                    Subscriber::start(client.clone(), &config, counters.clone()).await?;
                let transport = Transport::Standalone(commanding(client, &config).await?);
                (Subscriptions::Standalone(subscriber), transport)
            }
        };
        let link = subscriptions.link();
        let (queue, writer) =
            PublishQueue::start(transport.clone(), &config, counters.clone(), link);
        let probe = Probe {
            channel: format!(
                "{}#probe#{:016x}#",
                config.probe_prefix,
                rand::random::<u64>()
            ),
            queue: queue.clone(),
            link: subscriptions.link(),
            rebuild: subscriptions.rebuild_signal(),
            counters: counters.clone(),
            interval: config.probe_interval,
            timeout: config.probe_timeout,
            received: Arc::default(),
            // One connection delivers everything in order: while it delivers anything it is
            // alive. A cluster's pushes mix every shard's, so one deaf shard would hide.
            patient: matches!(subscriptions, Subscriptions::Standalone(_)),
        };
        subscriptions
            .subscribe(
                probe.channel.clone(),
                Probe::handler(probe.received.clone()),
                Sharding::Sharded,
            )
            .await?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                counters,
                transport,
                queue,
                subscriptions,
                writer,
                probe: tokio::spawn(probe.run()),
            }),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &RedisConfig {
        &self.inner.config
    }

    /// The command connection, for any command, pipeline or script; bound each call with
    /// [`within`] (as [`Redis::query`] does).
    pub fn commands(&self) -> Commands {
        self.inner.transport.commands()
    }

    /// Whether this is a Redis Cluster (channels published with `SPUBLISH`, by hash slot)
    /// rather than one Redis.
    pub fn is_cluster(&self) -> bool {
        matches!(self.inner.transport, Transport::Cluster(_))
    }

    /// Runs `command` within [`RedisConfig::command_timeout`].
    pub async fn query<T: FromRedisValue>(&self, command: &redis::Cmd) -> Result<T, Error> {
        let mut conn = self.commands();
        within(
            self.inner.config.command_timeout,
            command.query_async(&mut conn),
        )
        .await
    }

    /// Runs `pipeline` within [`RedisConfig::command_timeout`]. On a cluster its keys must
    /// share a slot.
    pub async fn pipeline<T: FromRedisValue>(
        &self,
        pipeline: &redis::Pipeline,
    ) -> Result<T, Error> {
        let mut conn = self.commands();
        within(
            self.inner.config.command_timeout,
            pipeline.query_async(&mut conn),
        )
        .await
    }

    /// Publishes `payload` on `channel` now, outside the pipeline, and returns how many
    /// subscribers received it (on a cluster: of the channel's shard, where all its
    /// subscribers are). For messages whose receipt the caller counts.
    pub async fn publish_now(&self, channel: &str, payload: &[u8]) -> Result<usize, Error> {
        let mut command = redis::cmd(self.inner.transport.publish_command());
        command.arg(channel).arg(payload);
        self.query(&command).await
    }

    /// Queues `payload` for `channel` now, behind every earlier publish of this process, and
    /// returns a future resolving as `wait` says. Fails at once when Redis is unreachable or
    /// the queue is full.
    pub fn publish(
        &self,
        channel: String,
        payload: Vec<u8>,
        wait: Wait,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        self.inner.queue.publish(channel, payload, wait)
    }

    /// Routes messages of `channel` to `handler`, and returns once Redis confirmed the
    /// subscription. The subscription is kept, and restored after every reconnect, until
    /// [`Redis::unsubscribe`]; if Redis is unreachable now this fails, and the subscription
    /// is made as soon as it is back.
    pub async fn subscribe(&self, channel: String, handler: Handler) -> Result<(), Error> {
        self.inner
            .subscriptions
            .subscribe(channel, handler, Sharding::Sharded)
            .await
    }

    /// Like [`Redis::subscribe`], but with a plain `SUBSCRIBE` on a Redis Cluster too (on a
    /// standalone Redis the two are the same): for channels that others publish with
    /// `PUBLISH`, which a cluster forwards to every node, such as the Socket.IO Redis
    /// emitter's.
    pub async fn subscribe_plain(&self, channel: String, handler: Handler) -> Result<(), Error> {
        self.inner
            .subscriptions
            .subscribe(channel, handler, Sharding::Plain)
            .await
    }

    /// Stops routing `channel` subscribed with [`Redis::subscribe`].
    pub async fn unsubscribe(&self, channel: String) {
        self.unsubscribe_as(channel, Sharding::Sharded).await;
    }

    /// Stops routing `channel` subscribed with [`Redis::subscribe_plain`].
    pub async fn unsubscribe_plain(&self, channel: String) {
        self.unsubscribe_as(channel, Sharding::Plain).await;
    }

    async fn unsubscribe_as(&self, channel: String, sharding: Sharding) {
        match &self.inner.subscriptions {
            Subscriptions::Standalone(subscriber) => subscriber.unsubscribe(channel).await,
            Subscriptions::Cluster(subscriber) => subscriber.unsubscribe(channel, sharding).await,
        }
    }

    /// The subscriber's state, to watch: subscribers re-announce themselves or drop caches
    /// when the subscriptions are whole again (a new [`Link::generation`]).
    pub fn link(&self) -> LinkRx {
        self.inner.subscriptions.link()
    }

    /// Whether Redis takes publishes (false while the subscriber reconnects after a loss).
    /// Publishes fail at once while this is false. Whether every subscription holds is
    /// [`Link::subscribed`], in [`Redis::link`].
    pub fn is_connected(&self) -> bool {
        self.link().borrow().connected
    }

    /// The counters of this Redis layer and of every bus on it (a [`NamespaceBus`] counts
    /// into them when given them): what [`Stats`] snapshots.
    ///
    /// [`NamespaceBus`]: crate::NamespaceBus
    /// [`Stats`]: crate::Stats
    pub fn counters(&self) -> &Arc<Counters> {
        &self.inner.counters
    }
}

impl Subscriptions {
    fn link(&self) -> LinkRx {
        match self {
            Self::Standalone(subscriber) => subscriber.link(),
            Self::Cluster(subscriber) => subscriber.link(),
        }
    }

    fn rebuild_signal(&self) -> Arc<Notify> {
        match self {
            Self::Standalone(subscriber) => subscriber.rebuild_signal(),
            Self::Cluster(subscriber) => subscriber.rebuild_signal(),
        }
    }

    async fn subscribe(
        &self,
        channel: String,
        handler: Handler,
        sharding: Sharding,
    ) -> Result<(), Error> {
        match self {
            Self::Standalone(subscriber) => subscriber.subscribe(channel, handler, sharding).await,
            Self::Cluster(subscriber) => subscriber.subscribe(channel, handler, sharding).await,
        }
    }
}

/// The client of a standalone Redis at `url`, with the configured credentials and CA.
fn standalone_client(url: &str, config: &RedisConfig) -> Result<redis::Client, Error> {
    use redis::IntoConnectionInfo;
    let mut info = url.into_connection_info()?;
    if let Some(credentials) = &config.credentials {
        let mut settings = info
            .redis_settings()
            .clone()
            .set_password(&credentials.password);
        if let Some(username) = &credentials.username {
            settings = settings.set_username(username);
        }
        info = info.set_redis_settings(settings);
    }
    Ok(match config.tls_certificates() {
        Some(certificates) => {
            install_crypto_provider();
            redis::Client::build_with_tls(info, certificates)?
        }
        None => redis::Client::open(info)?,
    })
}

/// Makes rustls use ring for `rediss://` (redis-rs leaves the choice to the application);
/// a provider installed earlier by the application is kept.
pub(crate) fn install_crypto_provider() {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}

/// The command (and publishing) connection of a standalone Redis: multiplexed,
/// reconnecting by itself.
async fn commanding(
    client: redis::Client,
    config: &RedisConfig,
) -> Result<ConnectionManager, Error> {
    let manager_config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.command_timeout))
        .set_response_timeout(Some(config.command_timeout))
        .set_min_delay(config.reconnect_min_delay)
        .set_max_delay(config.reconnect_max_delay)
        .set_number_of_retries(1);
    within(
        config.connect_timeout,
        ConnectionManager::new_with_config(client, manager_config),
    )
    .await
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.probe.abort();
        self.writer.abort();
    }
}
