//! Redis connections: one publisher and one subscriber per process, both reconnecting on
//! their own. Namespace adapters only see [`Bus::publish`] and [`Bus::subscribe`].

mod backoff;
mod link;
mod probe;
mod publisher;
mod subscriber;

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::{config::RedisAdapterConfig, error::Error, stats::Counters};
pub(crate) use link::LinkRx;
pub use publisher::PUBLISH_DURATION;
pub(crate) use subscriber::Handler;
use {probe::Probe, publisher::Publisher, subscriber::Subscriber};

/// The process-wide Redis connections shared by every namespace adapter.
pub(crate) struct Bus {
    publisher: Publisher,
    subscriber: Subscriber,
    probe: JoinHandle<()>,
}

impl Bus {
    /// Connects both connections; fails if Redis cannot be reached right now.
    pub async fn connect(
        url: &str,
        config: &RedisAdapterConfig,
        counters: Arc<Counters>,
    ) -> Result<Self, Error> {
        let client = redis::Client::open(url)?;
        let subscriber = Subscriber::start(client.clone(), config, counters.clone()).await?;
        let publisher =
            Publisher::connect(client, config, counters.clone(), subscriber.link()).await?;
        let probe = Probe {
            channel: format!("{}#probe#{:016x}#", config.prefix, rand::random::<u64>()),
            publisher: publisher.clone(),
            link: subscriber.link(),
            rebuild: subscriber.rebuild_signal(),
            counters,
            interval: config.probe_interval,
            timeout: config.probe_timeout,
            received: Arc::default(),
        };
        subscriber
            .subscribe(
                probe.channel.clone(),
                Probe::handler(probe.received.clone()),
            )
            .await?;
        Ok(Self {
            publisher,
            subscriber,
            probe: tokio::spawn(probe.run()),
        })
    }

    /// The subscriber's connection state: adapters watch it to announce themselves again
    /// after a reconnect.
    pub fn link(&self) -> LinkRx {
        self.subscriber.link()
    }

    /// Publishes `payload` on `channel`, failing fast when Redis is slow or gone.
    pub fn publish(
        &self,
        channel: String,
        payload: Vec<u8>,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        self.publisher.publish(channel, payload)
    }

    /// Routes messages of `channel` to `handler`, and returns once Redis confirmed the
    /// subscription. The subscription is kept, and restored after every reconnect, until
    /// [`Bus::unsubscribe`].
    pub async fn subscribe(&self, channel: String, handler: Handler) -> Result<(), Error> {
        self.subscriber.subscribe(channel, handler).await
    }

    /// Stops routing `channel`.
    pub async fn unsubscribe(&self, channel: String) {
        self.subscriber.unsubscribe(channel).await;
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        self.probe.abort();
    }
}
