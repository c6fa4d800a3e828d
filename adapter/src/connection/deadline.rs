//! The one timeout helper of the Redis layer: every command, pipeline, connection attempt
//! and subscription is bounded by it.

use std::time::Duration;

use crate::error::Error;

/// `command`'s result, or [`Error::Timeout`] once `limit` has passed.
///
/// ```
/// # async fn demo(mut conn: redis::aio::MultiplexedConnection) -> Result<(), redis_adapter::Error> {
/// use std::time::Duration;
/// let pong: String =
///     redis_adapter::within(Duration::from_secs(1), redis::cmd("PING").query_async(&mut conn)).await?;
/// # Ok(()) }
/// ```
pub async fn within<T>(
    limit: Duration,
    command: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, Error> {
    match tokio::time::timeout(limit, command).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(Error::Timeout(limit)),
    }
}
