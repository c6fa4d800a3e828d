//! The seam between the cluster bus and Redis: the four things the bus needs of a Pub/Sub
//! system. [`Redis`] is the real one; the bus's tests run several instances in one process
//! over an in-memory one.

use crate::{
    connection::{Handler, LinkRx, Redis, Wait},
    error::Error,
};

/// A Pub/Sub system the cluster bus can run over.
pub trait PubSub: Send + Sync + 'static {
    /// Queues `payload` for `channel` in call order; resolves as `wait` says.
    fn publish(
        &self,
        channel: String,
        payload: Vec<u8>,
        wait: Wait,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static;

    /// Routes messages of `channel` to `handler`; resolves once the subscription holds.
    fn subscribe(
        &self,
        channel: String,
        handler: Handler,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Stops routing `channel`.
    fn unsubscribe(&self, channel: String) -> impl Future<Output = ()> + Send;

    /// Like [`PubSub::subscribe`], for a channel others publish on with a plain `PUBLISH`
    /// (a Redis Cluster keeps those apart from sharded channels). The same by default.
    fn subscribe_plain(
        &self,
        channel: String,
        handler: Handler,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        self.subscribe(channel, handler)
    }

    /// Stops routing `channel` subscribed with [`PubSub::subscribe_plain`].
    fn unsubscribe_plain(&self, channel: String) -> impl Future<Output = ()> + Send {
        self.unsubscribe(channel)
    }

    /// Whether the subscriptions are in place, and how often they were restored.
    fn link(&self) -> LinkRx;
}

impl PubSub for Redis {
    fn publish(
        &self,
        channel: String,
        payload: Vec<u8>,
        wait: Wait,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        Redis::publish(self, channel, payload, wait)
    }

    fn subscribe(
        &self,
        channel: String,
        handler: Handler,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        Redis::subscribe(self, channel, handler)
    }

    fn unsubscribe(&self, channel: String) -> impl Future<Output = ()> + Send {
        Redis::unsubscribe(self, channel)
    }

    fn subscribe_plain(
        &self,
        channel: String,
        handler: Handler,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        Redis::subscribe_plain(self, channel, handler)
    }

    fn unsubscribe_plain(&self, channel: String) -> impl Future<Output = ()> + Send {
        Redis::unsubscribe_plain(self, channel)
    }

    fn link(&self) -> LinkRx {
        Redis::link(self)
    }
}
