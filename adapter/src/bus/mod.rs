//! Redis connections: one publisher and one subscriber per process, both reconnecting on
//! their own. Namespace adapters only see [`Bus::publish`] and [`Bus::subscribe`].

mod backoff;
mod publisher;
mod subscriber;

use std::sync::Arc;

use crate::{config::RedisAdapterConfig, error::Error, stats::Counters};
pub(crate) use subscriber::Handler;
use {publisher::Publisher, subscriber::Subscriber};

/// The process-wide Redis connections shared by every namespace adapter.
pub(crate) struct Bus {
    publisher: Publisher,
    subscriber: Subscriber,
}

impl Bus {
    /// Connects both connections; fails if Redis cannot be reached right now.
    pub async fn connect(
        url: &str,
        config: &RedisAdapterConfig,
        counters: Arc<Counters>,
    ) -> Result<Self, Error> {
        let client = redis::Client::open(url)?;
        let publisher = Publisher::connect(client.clone(), config, counters.clone()).await?;
        let subscriber = Subscriber::start(client, config, counters).await?;
        Ok(Self {
            publisher,
            subscriber,
        })
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
