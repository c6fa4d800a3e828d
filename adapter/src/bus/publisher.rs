//! The publishing connection: a multiplexed connection that reconnects by itself.

use std::{sync::Arc, time::Duration};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::link::LinkRx;
use crate::{config::RedisAdapterConfig, error::Error, stats::Counters};

/// The histogram of successful publish round trips, in seconds, recorded through the
/// `metrics` facade (a no-op unless the application installs a recorder).
pub const PUBLISH_DURATION: &str = "redis_adapter_publish_duration_seconds";

/// Publishes messages; cheap to clone into spawned tasks.
#[derive(Clone)]
pub(crate) struct Publisher {
    conn: ConnectionManager,
    timeout: Duration,
    counters: Arc<Counters>,
    /// While the subscriber cannot reach Redis, publishes fail at once instead of each
    /// waiting for its timeout.
    link: LinkRx,
}

impl Publisher {
    /// Opens the connection.
    pub async fn connect(
        client: redis::Client,
        config: &RedisAdapterConfig,
        counters: Arc<Counters>,
        link: LinkRx,
    ) -> Result<Self, Error> {
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.publish_timeout))
            .set_response_timeout(Some(config.publish_timeout))
            .set_min_delay(config.reconnect_min_delay)
            .set_max_delay(config.reconnect_max_delay)
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_with_config(client, manager_config).await?;
        Ok(Self {
            conn,
            timeout: config.publish_timeout,
            counters,
            link,
        })
    }

    /// Publishes `payload` on `channel`; the future owns everything it needs.
    pub fn publish(
        &self,
        channel: String,
        payload: Vec<u8>,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        let mut conn = self.conn.clone();
        let (timeout, counters) = (self.timeout, self.counters.clone());
        let reachable = self.link.borrow().connected;
        async move {
            let len = payload.len();
            if !reachable {
                Counters::incr(&counters.publish_failures);
                tracing::debug!(%channel, "publish refused: redis is unreachable");
                return Err(Error::NotConnected);
            }
            let started = std::time::Instant::now();
            let mut command = redis::cmd("PUBLISH");
            command.arg(&channel).arg(payload);
            let publish = command.query_async::<i64>(&mut conn);
            let result = match tokio::time::timeout(timeout, publish).await {
                Ok(Ok(_receivers)) => Ok(()),
                Ok(Err(err)) => Err(Error::Redis(err)),
                Err(_) => Err(Error::Timeout(timeout)),
            };
            match &result {
                Ok(()) => {
                    Counters::incr(&counters.published);
                    Counters::add(&counters.published_bytes, len);
                    metrics::histogram!(PUBLISH_DURATION).record(started.elapsed().as_secs_f64());
                }
                Err(err) => {
                    Counters::incr(&counters.publish_failures);
                    tracing::warn!(%channel, %err, "publish to redis failed");
                }
            }
            result
        }
    }
}
