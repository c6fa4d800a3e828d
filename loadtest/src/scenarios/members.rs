//! Room members that only listen (`burst`, `publish`): each connects, joins its room and
//! stays connected, its events going to its handler, until the run releases them.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::join;
use crate::Error;
use crate::fleet::Fleet;
use crate::stats::{Counters, Stats};
use socketio_client::EventHandler;

/// The members of a run, connected and in their rooms until [`Members::release`].
pub(super) struct Members {
    tasks: JoinSet<()>,
    release: watch::Sender<bool>,
    /// The members that joined their room, in the order they did.
    pub(super) joined: Vec<u32>,
}

/// Connects members `0..count` through `fleet`, member `m` with `handler(m)`, and joins
/// each to `room_of(m)`, within the fleet's connect budget. Fails when nobody could connect
/// or nobody could join.
pub(super) async fn join_all<H: EventHandler>(
    fleet: &Arc<Fleet>,
    stats: &Arc<Stats>,
    count: u32,
    room_of: impl Fn(u32) -> Arc<str>,
    handler: impl Fn(u32) -> H,
) -> Result<Members, Error> {
    let deadline = Instant::now() + fleet.connect_budget(count) + join::BUDGET + super::SLACK;
    let (setup, mut setup_rx) = mpsc::unbounded_channel();
    let (release, released) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for member in 0..count {
        let (fleet, stats, setup, mut released) = (
            fleet.clone(),
            stats.clone(),
            setup.clone(),
            released.clone(),
        );
        let (room, handler) = (room_of(member), handler(member));
        tasks.spawn(async move {
            let Some(connection) = fleet.connect(member, handler).await else {
                let _ = setup.send(None);
                return;
            };
            if !join::join(&connection, &room, &stats).await {
                Counters::bump(&stats.counters.join_failed);
                let _ = setup.send(None);
                return;
            }
            if setup.send(Some(member)).is_ok() {
                let _ = released.wait_for(|released| *released).await;
            }
            connection.close().await;
        });
    }
    drop(setup);
    let joined: Vec<u32> = super::collect_setup(&mut setup_rx, count, deadline)
        .await
        .into_iter()
        .flatten()
        .collect();
    super::ensure_connected(stats)?;
    if joined.is_empty() {
        return Err(Error::Setup("no member could join its room".to_owned()));
    }
    Ok(Members {
        tasks,
        release,
        joined,
    })
}

impl Members {
    /// Lets every member close its connection, waits a little for them to, and returns the
    /// members that joined.
    pub(super) async fn release(mut self) -> Vec<u32> {
        self.release.send_replace(true);
        let _ = tokio::time::timeout(super::SLACK, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        self.tasks.abort_all();
        self.joined
    }
}
