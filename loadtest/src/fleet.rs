//! The simulated users' connections: which URL, source address and transport each user
//! gets, when it may start connecting (ramp-up), and the recording of connect times and
//! failures.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::{OnceCell, Semaphore};
use tokio::time::Instant;

use crate::config::Common;
use crate::placement::Placement;
use crate::stats::{Counters, Stats};
use socketio_client::{ConnectOptions, Connection, EventHandler, login};

/// How the users of one run connect.
pub struct Fleet {
    common: Common,
    stats: Arc<Stats>,
    /// When user 0 may connect; user `i` waits `i / connect_rate` more.
    start: Instant,
    /// Handshakes in flight (`--connect-concurrency`).
    connecting: Semaphore,
    /// The session token of `--login`, obtained once and shared by every user.
    token: OnceCell<String>,
    /// Which URL each user connects to.
    placement: Placement,
}

impl Fleet {
    /// A fleet starting to connect now.
    pub fn new(common: &Common, stats: Arc<Stats>) -> Self {
        Self {
            common: common.clone(),
            stats,
            start: Instant::now(),
            connecting: Semaphore::new(
                usize::try_from(common.connect_concurrency.max(1)).unwrap_or(1),
            ),
            token: OnceCell::new(),
            placement: Placement::RoundRobin,
        }
    }

    /// The same fleet with users spread over the URLs by `placement` instead of round-robin.
    pub fn with_placement(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
    }

    /// Whether `user` uses long-polling: spread evenly, `floor(users * share)` of them.
    pub fn is_polling(&self, user: u32) -> bool {
        let share = self.common.polling_share;
        (f64::from(user) * share).floor() < (f64::from(user + 1) * share).floor()
    }

    /// How many of `users` use long-polling.
    pub fn polling_users(&self, users: u32) -> u64 {
        (0..users).filter(|&user| self.is_polling(user)).count() as u64
    }

    /// User `user`'s connection options: URL by the placement (round-robin unless set),
    /// source address round-robin, auth name `u<user>`.
    pub fn options(&self, user: u32) -> ConnectOptions {
        let index = usize::try_from(user).unwrap_or_default();
        let urls = &self.common.urls;
        let url = urls
            .get(self.placement.url_index(user, urls.len()))
            .cloned()
            .unwrap_or_default();
        let options = ConnectOptions::new(url)
            .timeout(self.common.timeout)
            .auth(json!({ "name": format!("u{user}") }))
            .polling(self.is_polling(user));
        let ips = &self.common.source_ips.0;
        match ips.get(index % ips.len().max(1)) {
            Some(ip) => options.local_addr(*ip),
            None => options,
        }
    }

    /// An upper bound of the time `users` need to connect, for setup deadlines: the ramp-up,
    /// plus one timeout per wave of concurrent handshakes.
    pub fn connect_budget(&self, users: u32) -> Duration {
        let waves = (users / self.common.connect_concurrency.max(1)).saturating_add(1);
        self.ramp_up(users) + self.common.timeout.saturating_mul(waves)
    }

    /// When the last of `users` may start connecting, from the start.
    fn ramp_up(&self, users: u32) -> Duration {
        match self.common.connect_rate {
            Some(rate) => Duration::from_secs_f64(f64::from(users) / rate),
            None => Duration::ZERO,
        }
    }

    /// `user`'s connection options, with the session token in its handshake when the run
    /// logs in. The login happens once, through the first user's URL and source address, and
    /// every user shares the session, as the tabs of one browser do: password hashing is
    /// deliberately slow and must not dominate the server's work during a load test.
    async fn log_in(&self, user: u32) -> Result<ConnectOptions, socketio_client::ClientError> {
        let options = self.options(user);
        let Some(credentials) = &self.common.login else {
            return Ok(options);
        };
        let first = self.options(0);
        let token = self
            .token
            .get_or_try_init(|| {
                login(
                    &first.url,
                    first.local_addr,
                    credentials,
                    self.common.timeout,
                )
            })
            .await?;
        let auth = json!({ "name": format!("u{user}"), "token": token });
        Ok(options.auth(auth))
    }

    /// Connects `user` at its ramp-up slot, its events going to `handler`. Records the
    /// handshake time, or the failure by reason; `None` when it failed.
    pub async fn connect(&self, user: u32, handler: impl EventHandler) -> Option<Connection> {
        tokio::time::sleep_until(self.start + self.ramp_up(user)).await;
        let _permit = self.connecting.acquire().await.ok()?;
        let began = Instant::now();
        let counters = &self.stats.counters;
        let options = match self.log_in(user).await {
            Ok(options) => options,
            Err(e) => {
                Counters::bump(&counters.connect_failed);
                self.stats
                    .connect_failures
                    .add("login", || format!("user {user}: {e}"));
                return None;
            }
        };
        match Connection::connect(&options, handler).await {
            Ok(connection) => {
                self.stats.connect.record(user, began.elapsed());
                Counters::bump(&counters.connected);
                Some(connection)
            }
            Err(e) => {
                Counters::bump(&counters.connect_failed);
                self.stats
                    .connect_failures
                    .add(e.kind(), || format!("user {user}: {e}"));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceIps;
    use socketio_client::Transport;

    #[test]
    fn users_are_spread_over_urls_addresses_and_transports() {
        let mut common = Common::new(["http://127.0.0.1:1", "http://127.0.0.1:2"]);
        common.polling_share = 0.5;
        common.source_ips = SourceIps::parse("127.0.0.1-127.0.0.3").unwrap_or_default();
        let fleet = Fleet::new(&common, Arc::default());
        let options: Vec<_> = (0..6).map(|user| fleet.options(user)).collect();
        let urls: Vec<_> = options.iter().map(|o| o.url.as_str()).collect();
        assert_eq!(
            urls[..3],
            [
                "http://127.0.0.1:1",
                "http://127.0.0.1:2",
                "http://127.0.0.1:1"
            ]
        );
        let ips: Vec<_> = options.iter().filter_map(|o| o.local_addr).collect();
        assert_eq!(ips.len(), 6);
        assert_eq!(ips[0], ips[3]);
        assert_ne!(ips[0], ips[1]);
        let polling = options
            .iter()
            .filter(|o| o.transport == Transport::Polling)
            .count();
        assert_eq!(polling, 3);
        assert_eq!(fleet.polling_users(6), 3);
        assert_eq!(options[4].auth, Some(json!({"name": "u4"})));

        common.polling_share = 0.0;
        assert_eq!(Fleet::new(&common, Arc::default()).polling_users(100), 0);
        common.polling_share = 1.0;
        assert_eq!(Fleet::new(&common, Arc::default()).polling_users(100), 100);
    }
}
