//! Redis connections, reconnecting on their own: on a standalone Redis one publishing and
//! one subscribing connection; on a Redis Cluster one connection that does both with
//! sharded Pub/Sub. Namespace adapters only see [`Bus::publish`] and [`Bus::subscribe`].

mod backoff;
mod cluster;
mod link;
mod probe;
mod queue;
mod routes;
mod subscriber;
mod transport;

use std::sync::Arc;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::{sync::Notify, task::JoinHandle};

use crate::{config::RedisAdapterConfig, error::Error, stats::Counters};
pub use cluster::seed_nodes as cluster_nodes;
pub(crate) use link::LinkRx;
pub use queue::PUBLISH_DURATION;
pub(crate) use queue::Wait;
pub(crate) use routes::Handler;
use {
    cluster::ClusterSubscriber, probe::Probe, queue::PublishQueue, subscriber::Subscriber,
    transport::Transport,
};

/// The process-wide Redis connections shared by every namespace adapter.
pub(crate) struct Bus {
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

impl Bus {
    /// Connects to `url` (`redis://` or `rediss://` for a standalone Redis,
    /// `redis+cluster://host:port,host:port` for a cluster); fails if Redis cannot be reached
    /// right now.
    pub async fn connect(
        url: &str,
        config: &RedisAdapterConfig,
        counters: Arc<Counters>,
    ) -> Result<Self, Error> {
        let (subscriptions, transport) = match cluster::seed_nodes(url) {
            Some(nodes) => {
                let subscriber = ClusterSubscriber::start(nodes, config, counters.clone()).await?;
                let transport = Transport::Cluster(subscriber.handle());
                (Subscriptions::Cluster(subscriber), transport)
            }
            None => {
                let client = redis::Client::open(url)?;
                let subscriber =
                    Subscriber::start(client.clone(), config, counters.clone()).await?;
                let transport = Transport::Standalone(publishing(client, config).await?);
                (Subscriptions::Standalone(subscriber), transport)
            }
        };
        let link = subscriptions.link();
        let (queue, writer) = PublishQueue::start(transport, config, counters.clone(), link);
        let probe = Probe {
            channel: format!("{}#probe#{:016x}#", config.prefix, rand::random::<u64>()),
            queue: queue.clone(),
            link: subscriptions.link(),
            rebuild: subscriptions.rebuild_signal(),
            counters,
            interval: config.probe_interval,
            timeout: config.probe_timeout,
            received: Arc::default(),
        };
        subscriptions
            .subscribe(
                probe.channel.clone(),
                Probe::handler(probe.received.clone()),
            )
            .await?;
        Ok(Self {
            queue,
            subscriptions,
            writer,
            probe: tokio::spawn(probe.run()),
        })
    }

    /// The subscriber's connection state: adapters watch it to announce themselves again
    /// after a reconnect.
    pub fn link(&self) -> LinkRx {
        self.subscriptions.link()
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
        self.queue.publish(channel, payload, wait)
    }

    /// Routes messages of `channel` to `handler`, and returns once Redis confirmed the
    /// subscription. The subscription is kept, and restored after every reconnect, until
    /// [`Bus::unsubscribe`].
    pub async fn subscribe(&self, channel: String, handler: Handler) -> Result<(), Error> {
        self.subscriptions.subscribe(channel, handler).await
    }

    /// Stops routing `channel`.
    pub async fn unsubscribe(&self, channel: String) {
        match &self.subscriptions {
            Subscriptions::Standalone(subscriber) => subscriber.unsubscribe(channel).await,
            Subscriptions::Cluster(subscriber) => subscriber.unsubscribe(channel).await,
        }
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

    async fn subscribe(&self, channel: String, handler: Handler) -> Result<(), Error> {
        match self {
            Self::Standalone(subscriber) => subscriber.subscribe(channel, handler).await,
            Self::Cluster(subscriber) => subscriber.subscribe(channel, handler).await,
        }
    }
}

/// The publishing connection of a standalone Redis: multiplexed, reconnecting by itself.
async fn publishing(
    client: redis::Client,
    config: &RedisAdapterConfig,
) -> Result<ConnectionManager, Error> {
    let manager_config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.publish_timeout))
        .set_response_timeout(Some(config.publish_timeout))
        .set_min_delay(config.reconnect_min_delay)
        .set_max_delay(config.reconnect_max_delay)
        .set_number_of_retries(1);
    Ok(ConnectionManager::new_with_config(client, manager_config).await?)
}

impl Drop for Bus {
    fn drop(&mut self) {
        self.probe.abort();
        self.writer.abort();
    }
}
