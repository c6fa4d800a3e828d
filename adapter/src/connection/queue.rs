//! The publish pipeline: every publish of the process goes through one bounded, ordered
//! queue; one task sends whatever is waiting as one pipeline, so a burst of emits costs a
//! few round trips instead of one each.

use std::{sync::Arc, time::Duration};

use tokio::sync::{mpsc, oneshot};

use super::{
    RedisConfig,
    link::LinkRx,
    share::{Over, Shares, Taken},
    transport::{Message, Transport},
};
use crate::{error::Error, stats::Counters};

/// The histogram of successful pipeline round trips, in seconds, recorded through the
/// `metrics` facade (a no-op unless the application installs a recorder).
pub const PUBLISH_DURATION: &str = "redis_adapter_publish_duration_seconds";

/// How long a caller waits for its publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Until it is queued: the queue keeps the order, the writer reports failures.
    Queued,
    /// Until Redis answered the pipeline that carried it.
    Confirmed,
}

/// A queued publish and, when the caller waits for it, where its outcome goes.
struct Publish {
    message: Message,
    reply: Option<oneshot::Sender<Result<(), Error>>>,
    /// Its place in the queue's counts, given back when the writer takes it.
    taken: Taken,
}

/// The sending side of the queue; cheap to clone.
#[derive(Clone)]
pub(crate) struct PublishQueue {
    tx: mpsc::Sender<Publish>,
    shares: Arc<Shares>,
    counters: Arc<Counters>,
    /// While the subscriber cannot reach Redis, publishes fail at once instead of each
    /// waiting for its timeout.
    link: LinkRx,
}

impl PublishQueue {
    /// Starts the writer task; it ends when every sender is gone.
    pub fn start(
        transport: Transport,
        config: &RedisConfig,
        counters: Arc<Counters>,
        link: LinkRx,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let capacity = config.publish_queue_capacity.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        let shares = Arc::new(Shares::new(
            capacity,
            config.publish_queue_max_bytes,
            config.publish_channel_share,
        ));
        let writer = Writer {
            transport,
            shares: shares.clone(),
            counters: counters.clone(),
            timeout: config.command_timeout,
            max_pipeline: config.max_pipeline.max(1),
        };
        let task = tokio::spawn(writer.run(rx));
        (
            Self {
                tx,
                shares,
                counters,
                link,
            },
            task,
        )
    }

    /// Queues `payload` for `channel` now, in call order, and returns a future that resolves
    /// as `wait` says. Fails at once when Redis is unreachable, or when the queue is full:
    /// all its messages or bytes, or the channel's share of them
    /// ([`RedisConfig::publish_channel_share`], counted per bucket of channels), so that a
    /// burst on one room keeps out only the other rooms of its bucket (1 in 1,024).
    pub fn publish(
        &self,
        channel: String,
        payload: Vec<u8>,
        wait: Wait,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        let queued = self.enqueue(Message { channel, payload }, wait);
        async move {
            match queued? {
                Some(reply) => reply.await.unwrap_or(Err(Error::NotConnected)),
                None => Ok(()),
            }
        }
    }

    fn enqueue(
        &self,
        message: Message,
        wait: Wait,
    ) -> Result<Option<oneshot::Receiver<Result<(), Error>>>, Error> {
        if !self.link.borrow().connected {
            Counters::incr(&self.counters.publish_failures);
            tracing::debug!(channel = %message.channel, "publish refused: redis is unreachable");
            return Err(Error::NotConnected);
        }
        let (reply, outcome) = match wait {
            Wait::Queued => (None, None),
            Wait::Confirmed => {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            }
        };
        let taken = match self.shares.take(&message.channel, message.payload.len()) {
            Ok(taken) => taken,
            Err(over) => return Err(self.refuse(&message.channel, over)),
        };
        match self.tx.try_send(Publish {
            message,
            reply,
            taken,
        }) {
            Ok(()) => Ok(outcome),
            Err(mpsc::error::TrySendError::Full(publish)) => {
                self.shares.release(publish.taken);
                Err(self.refuse(&publish.message.channel, Over::Messages))
            }
            Err(mpsc::error::TrySendError::Closed(publish)) => {
                self.shares.release(publish.taken);
                Err(Error::NotConnected)
            }
        }
    }

    /// Counts and logs a publish on `channel` refused because of `over`.
    fn refuse(&self, channel: &str, over: Over) -> Error {
        Counters::incr(&self.counters.publish_failures);
        Counters::incr(&self.counters.publish_queue_full);
        match over {
            Over::Share => Counters::incr(&self.counters.publish_queue_share_full),
            Over::Bytes | Over::Messages => {}
        }
        tracing::warn!(%channel, why = over.reason(), "publish refused: the publish queue is full");
        Error::QueueFull
    }
}

/// The task that drains the queue.
struct Writer {
    transport: Transport,
    shares: Arc<Shares>,
    counters: Arc<Counters>,
    timeout: Duration,
    max_pipeline: usize,
}

impl Writer {
    async fn run(self, mut rx: mpsc::Receiver<Publish>) {
        let mut batch = Vec::with_capacity(self.max_pipeline);
        while rx.recv_many(&mut batch, self.max_pipeline).await > 0 {
            self.send(&mut batch).await;
        }
    }

    /// Sends one batch as a pipeline and hands each waiting caller its outcome.
    async fn send(&self, batch: &mut Vec<Publish>) {
        let (messages, replies): (Vec<Message>, Vec<_>) = batch
            .drain(..)
            .map(|publish| {
                self.shares.release(publish.taken);
                (publish.message, publish.reply)
            })
            .unzip();
        let started = std::time::Instant::now();
        let results = self.transport.publish(&messages, self.timeout).await;
        Counters::incr(&self.counters.pipelines);
        let mut failed = false;
        for ((message, reply), result) in messages.iter().zip(replies).zip(results) {
            match &result {
                Ok(()) => {
                    Counters::incr(&self.counters.published);
                    Counters::add(&self.counters.published_bytes, message.payload.len());
                }
                Err(err) => {
                    Counters::incr(&self.counters.publish_failures);
                    if !failed {
                        tracing::warn!(channel = %message.channel, %err, "publish to redis failed");
                    }
                    failed = true;
                }
            }
            if let Some(reply) = reply {
                let _caller_may_be_gone = reply.send(result);
            }
        }
        if !failed {
            metrics::histogram!(PUBLISH_DURATION).record(started.elapsed().as_secs_f64());
        }
    }
}
