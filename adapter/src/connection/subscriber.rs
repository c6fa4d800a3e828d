//! The subscribing connection of a standalone Redis: one task that owns it, reconnects with
//! backoff, restores every subscription and routes each message to the handler of its
//! channel.

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::{
    sync::{Mutex, Notify},
    task::JoinHandle,
};

use super::{
    RedisConfig,
    backoff::until_connected,
    deadline::within,
    link::{self, LinkRx, LinkTx},
    routes::{Handler, Routes, Sharding},
};
use crate::{error::Error, stats::Counters};

/// Owner of the subscriber task; dropping it stops the task.
pub(crate) struct Subscriber {
    routes: Routes,
    /// The live connection's command half, `None` while Redis is unreachable. Held locked
    /// while subscriptions are restored, so that a concurrent `subscribe` cannot slip
    /// between the snapshot of the routes and the connection going live.
    sink: Arc<Mutex<Option<PubSubSink>>>,
    link: LinkRx,
    /// Tells the task to drop its connection and build a new one.
    rebuild: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Subscriber {
    /// Connects now (failing if Redis is unreachable), then keeps the connection alive.
    pub async fn start(
        client: redis::Client,
        config: &RedisConfig,
        counters: Arc<Counters>,
    ) -> Result<Self, Error> {
        let (sink, stream) = connect(&client, config.connect_timeout).await?;
        let routes = Routes::default();
        let slot = Arc::new(Mutex::new(Some(sink)));
        let (link_tx, link) = link::connected();
        let rebuild = Arc::new(Notify::new());
        let connection = Connection {
            client,
            routes: routes.clone(),
            slot: slot.clone(),
            link: link_tx,
            rebuild: rebuild.clone(),
            counters,
            connect_timeout: config.connect_timeout,
            reconnect_bounds: config.reconnect_bounds(),
        };
        let task = tokio::spawn(connection.run(stream));
        Ok(Self {
            routes,
            sink: slot,
            link,
            rebuild,
            task,
        })
    }

    /// The connection state, to watch.
    pub fn link(&self) -> LinkRx {
        self.link.clone()
    }

    /// The signal that makes the task rebuild its connection.
    pub fn rebuild_signal(&self) -> Arc<Notify> {
        self.rebuild.clone()
    }

    /// Adds a route and subscribes. A standalone Redis has one kind of subscription (its
    /// `PUBLISH` reaches them all), so `_sharding` changes nothing here. When Redis is down
    /// the route is kept and restored on reconnect, and this returns [`Error::NotConnected`].
    pub async fn subscribe(
        &self,
        channel: String,
        handler: Handler,
        _sharding: Sharding,
    ) -> Result<(), Error> {
        self.routes
            .insert(channel.clone(), handler, Sharding::Plain);
        let mut slot = self.sink.lock().await;
        let sink = slot.as_mut().ok_or(Error::NotConnected)?;
        sink.subscribe(&channel).await.map_err(Error::Redis)
    }

    /// Removes a route and unsubscribes if connected.
    pub async fn unsubscribe(&self, channel: String) {
        self.routes.remove(&channel, Sharding::Plain);
        if let Some(sink) = self.sink.lock().await.as_mut() {
            if let Err(err) = sink.unsubscribe(&channel).await {
                tracing::debug!(%channel, %err, "unsubscribe failed; the connection is going away");
            }
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// State of the subscriber task.
struct Connection {
    client: redis::Client,
    routes: Routes,
    slot: Arc<Mutex<Option<PubSubSink>>>,
    link: LinkTx,
    rebuild: Arc<Notify>,
    counters: Arc<Counters>,
    connect_timeout: Duration,
    /// The first and the largest delay between reconnect attempts.
    reconnect_bounds: (Duration, Duration),
}

impl Connection {
    async fn run(self, mut stream: PubSubStream) {
        loop {
            self.dispatch(&mut stream).await;
            *self.slot.lock().await = None;
            drop(stream);
            link::lost(&self.link);
            tracing::warn!("redis subscriber connection lost; reconnecting");
            stream = self.reconnect().await;
            Counters::incr(&self.counters.reconnects);
            link::restored(&self.link);
            tracing::info!("redis subscriber reconnected; subscriptions restored");
        }
    }

    /// Routes messages until the connection ends or a rebuild is asked for.
    async fn dispatch(&self, stream: &mut PubSubStream) {
        loop {
            let msg = tokio::select! {
                msg = stream.next() => match msg {
                    Some(msg) => msg,
                    None => return,
                },
                () = self.rebuild.notified() => return,
            };
            self.routes.dispatch(
                &self.counters,
                Sharding::Plain,
                msg.get_channel_name().as_bytes(),
                msg.get_payload_bytes(),
            );
        }
    }

    /// Retries until connected and every route is subscribed again.
    async fn reconnect(&self) -> PubSubStream {
        until_connected(self.reconnect_bounds, "redis subscriber", || self.restore()).await
    }

    async fn restore(&self) -> Result<PubSubStream, Error> {
        let (mut sink, stream) = connect(&self.client, self.connect_timeout).await?;
        let mut slot = self.slot.lock().await;
        let channels: Vec<String> = self
            .routes
            .channels()
            .into_iter()
            .map(|(channel, _)| channel)
            .collect();
        if !channels.is_empty() {
            sink.subscribe(&channels).await?;
        }
        *slot = Some(sink);
        Ok(stream)
    }
}

async fn connect(
    client: &redis::Client,
    timeout: Duration,
) -> Result<(PubSubSink, PubSubStream), Error> {
    Ok(within(timeout, client.get_async_pubsub()).await?.split())
}
