//! Reconnect delays, exponential with jitter (from the `backon` crate), and the retry loop
//! both subscribers reconnect with.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

use crate::error::Error;

/// Delays doubling from about `min` up to `max`, randomised so that many instances do not
/// reconnect in lockstep. backon's jitter adds up to the delay itself again, so the bounds
/// are halved: every delay lies within `min / 2 ..= max`. Never runs out.
pub(crate) fn reconnect_delays(min: Duration, max: Duration) -> ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(min / 2)
        .with_max_delay(max.max(min) / 2)
        .with_jitter()
        .without_max_times()
        .build()
}

/// Calls `attempt` after each reconnect delay until it succeeds, logging each failure with
/// `what`; never gives up.
pub(crate) async fn until_connected<T, F, Fut>(
    (min, max): (Duration, Duration),
    what: &str,
    mut attempt: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut delays = reconnect_delays(min, max);
    loop {
        tokio::time::sleep(delays.next().unwrap_or(max)).await;
        match attempt().await {
            Ok(connected) => return connected,
            Err(err) => tracing::debug!(%err, "{what} reconnect failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_within_the_bounds_and_never_ends() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(1));
        let delays: Vec<Duration> = reconnect_delays(min, max).take(50).collect();
        assert_eq!(delays.len(), 50);
        assert!(delays.iter().all(|d| *d >= min / 2 && *d <= max));
        assert!(delays[0] <= min);
        assert!(delays[49] >= max / 2);
    }
}
