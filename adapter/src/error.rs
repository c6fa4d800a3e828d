//! The adapter's one error type.

/// Everything that can go wrong in the adapter.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Redis answered with an error or the connection failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis did not answer in time.
    #[error("redis did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The subscriber connection is down; the subscription is restored once Redis is back.
    #[error("redis subscriber is not connected")]
    NotConnected,
    /// The publish queue is full: Redis does not keep up with this instance's publishes.
    #[error("the publish queue is full")]
    QueueFull,
    /// No adapter of this process serves the namespace.
    #[error("no redis adapter serves namespace {0}")]
    UnknownNamespace(String),
    /// A message could not be encoded.
    #[error("encoding a message: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
}
