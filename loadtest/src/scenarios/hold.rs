//! The holding engine behind `connect` and `idle`: open connections at the ramp-up rate,
//! hold them, close them; measure connect times and, for idle, memory per connection.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};

use crate::Error;
use crate::config::Common;
use crate::fleet::Fleet;
use crate::progress::Progress;
use crate::report::Report;
use crate::stats::Stats;
use crate::sysinfo;
use crate::window::{Window, bytes_per};
use socketio_client::{ClientError, EventHandler, RawEvent};

/// How long connections settle before memory is sampled (idle).
const RSS_SETTLE: Duration = Duration::from_secs(2);

/// A holding run.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub(super) scenario: &'static str,
    pub(super) common: Common,
    pub(super) connections: u32,
    pub(super) hold: Duration,
    /// Sample memory before connecting and after all connected plus [`RSS_SETTLE`], and
    /// report the growth per connection.
    pub(super) measure_memory: bool,
}

/// Runs `plan` to its end and reports.
pub(super) async fn run(plan: Plan) -> Result<Report, Error> {
    super::validate(&plan.common, plan.connections, plan.hold)?;
    let stats = Arc::new(Stats::default());
    let fleet = Arc::new(Fleet::new(&plan.common, stats.clone()));
    let polling_users = fleet.polling_users(plan.connections);
    super::prepare(&plan.common, plan.connections, polling_users)?;
    let pids = &plan.common.server_pids;
    let server_before = sysinfo::servers_usage(pids)?.rss_bytes;
    let own_before = sysinfo::own_usage()?.rss_bytes;
    let window = Window::open(pids)?;
    let progress = Progress::start(!plan.common.no_progress, stats.clone(), plan.connections);

    let (setup, mut setup_rx) = mpsc::unbounded_channel();
    let (release, released) = watch::channel(false);
    let deadline = Instant::now() + fleet.connect_budget(plan.connections) + super::SLACK;
    let mut tasks = JoinSet::new();
    for user in 0..plan.connections {
        let (fleet, stats, setup, mut released) = (
            fleet.clone(),
            stats.clone(),
            setup.clone(),
            released.clone(),
        );
        tasks.spawn(async move {
            let connection = fleet.connect(user, Idle { stats, user }).await;
            if setup.send(()).is_ok() {
                let _ = released.wait_for(|released| *released).await;
            }
            drop(connection);
        });
    }
    drop(setup);
    super::collect_setup(&mut setup_rx, plan.connections, deadline).await;
    let all_connected = Instant::now();
    let connected = super::ensure_connected(&stats)?;

    let (mut own_after, mut server_after) = (sysinfo::own_usage()?.rss_bytes, None);
    if plan.measure_memory {
        tokio::time::sleep(RSS_SETTLE).await;
        own_after = sysinfo::own_usage()?.rss_bytes;
        server_after = sysinfo::servers_usage(pids)
            .ok()
            .map(|usage| usage.rss_bytes);
    }
    sleep_until(all_connected + plan.hold).await;
    let held = all_connected.elapsed();
    let spent = window.close();
    stats.stop_counting();
    release.send_replace(true);
    let _ = tokio::time::timeout(super::SLACK, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    progress.finish();

    let mut report = Report::new(
        plan.scenario,
        &super::run_id(),
        &plan.common.urls,
        &stats,
        &spent,
    );
    report.users = u64::from(plan.connections);
    report.polling_users = polling_users;
    report.set_deliveries(0, held.as_secs_f64());
    report.loadtest_rss_per_socket_bytes = bytes_per(own_before, own_after, connected);
    if !pids.is_empty() {
        report.rss_per_connection_bytes =
            server_after.and_then(|after| bytes_per(server_before, after, connected));
    }
    Ok(report)
}

/// The handler of a held connection: ignores events, counts disconnections.
struct Idle {
    stats: Arc<Stats>,
    user: u32,
}

impl EventHandler for Idle {
    fn on_event(&mut self, _event: RawEvent<'_>) -> Result<(), ClientError> {
        Ok(())
    }

    fn on_close(&mut self, end: ClientError) {
        self.stats.disconnected(self.user, &end);
    }
}
