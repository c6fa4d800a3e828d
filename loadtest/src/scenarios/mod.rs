//! The scenarios, each a library function returning a [`Report`](crate::report::Report):
//! [`chat::run`], [`broadcast::run`], [`burst::run`], [`publish::run`], [`connect::run`],
//! [`idle::run`]. Chat and broadcast share the fan-out engine (`fanout`), connect and idle the
//! holding engine (`hold`), burst and publish their listening members (`members`); every
//! scenario with rooms joins them the same way (`join`).

pub mod broadcast;
pub mod burst;
pub mod chat;
pub mod connect;
mod fanout;
mod hold;
pub mod idle;
mod join;
mod members;
pub mod publish;

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::Error;
use crate::config::Common;
use crate::stats::{Counters, Stats};
use crate::sysinfo;

/// Most users (connections) one run may simulate.
const MAX_USERS: u32 = 1_000_000;
/// Longest sending or holding time of a run.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// Extra time allowed for setup beyond the computed budget, and for teardown.
const SLACK: Duration = Duration::from_secs(5);

/// A short random id naming this run's rooms.
fn run_id() -> String {
    format!("{:06x}", rand::random::<u32>() & 0x00ff_ffff)
}

/// Checks what every scenario needs: the common flags, a user count and a duration in range.
fn validate(common: &Common, users: u32, duration: Duration) -> Result<(), Error> {
    common.validate()?;
    if !(1..=MAX_USERS).contains(&users) {
        return Err(Error::Config(format!(
            "the number of users must be between 1 and {MAX_USERS}"
        )));
    }
    if duration.is_zero() || duration > MAX_DURATION {
        return Err(Error::Config(
            "the duration must be positive and at most 24h".to_owned(),
        ));
    }
    Ok(())
}

/// Raises the open-files limit for `users` sockets (two per long-polling user) and checks
/// that it is enough and that the server pids can be read, before anything connects.
fn prepare(common: &Common, users: u32, polling_users: u64) -> Result<(), Error> {
    let sockets = u64::from(users) + polling_users;
    let limit = sysinfo::raise_open_files_limit(sockets + 1024);
    if limit < sockets + 64 {
        return Err(Error::Setup(format!(
            "{sockets} sockets need more open files than the limit of {limit} allows, and the \
             hard limit cannot be raised from here (ulimit -Hn, or CAP_SYS_RESOURCE)"
        )));
    }
    sysinfo::servers_usage(&common.server_pids)?;
    Ok(())
}

/// Receives one setup report per user until all `users` reported or `deadline` passed;
/// then closes the channel, so that users still setting up learn they are too late.
/// Returns the reports received.
async fn collect_setup<T>(
    rx: &mut mpsc::UnboundedReceiver<T>,
    users: u32,
    deadline: Instant,
) -> Vec<T> {
    let users = usize::try_from(users).unwrap_or_default();
    let mut reports = Vec::with_capacity(users);
    while reports.len() < users {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(report)) => reports.push(report),
            Ok(None) | Err(_) => break,
        }
    }
    rx.close();
    while let Ok(report) = rx.try_recv() {
        reports.push(report);
    }
    reports
}

/// Fails the run when nobody could connect, quoting the first failure.
fn ensure_connected(stats: &Stats) -> Result<u64, Error> {
    let connected = Counters::get(&stats.counters.connected);
    if connected == 0 {
        let (_, sample) = stats.connect_failures.snapshot();
        return Err(Error::Setup(format!(
            "no user could connect ({})",
            sample.unwrap_or_else(|| "no failure recorded".to_owned())
        )));
    }
    Ok(connected)
}
