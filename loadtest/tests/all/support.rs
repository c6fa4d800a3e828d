//! Harness of the load tester's integration tests: the load tester's flags for gateways run in
//! process by `gateway::testing` (clustered over a real Redis, one of which can be killed
//! abruptly with `test_support::Killable`).
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use gateway::testing::{TestGateway, password};
use loadtest::config::Common;
use socketio_client::Credentials;
use test_support::Killable;

/// The test user every simulated user logs in as on a clustered gateway (one of
/// `gateway::testing::TEST_USERS`).
pub const USER: &str = "loadtest";

/// `--login` for [`USER`]: `user:password`.
pub fn login_flag() -> String {
    format!("{USER}:{}", password(USER))
}

/// Starts a gateway with `config` on a runtime and thread of its own, to be killed.
pub async fn killable(config: gateway::Config) -> Killable {
    Killable::start(move || async move {
        let gateway = TestGateway::start(config).await;
        (gateway.url().to_owned(), gateway)
    })
    .await
}

/// The common flags for `urls`, with a short timeout.
pub fn common(urls: &[&str]) -> Common {
    let mut common = Common::new(urls.iter().copied());
    common.timeout = Duration::from_secs(5);
    common
}

/// [`common`] for clustered gateways: every user logs in as [`USER`].
pub fn logged_in(urls: &[&str]) -> Common {
    let mut common = common(urls);
    common.login = Some(Credentials {
        username: USER.to_owned(),
        password: password(USER),
    });
    common
}

/// Runs `future`, failing the test if it takes longer than `limit`: no run may hang.
pub async fn bounded<T>(limit: Duration, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, future)
        .await
        .expect("the run ended in time")
}
