//! The audit log: one JSON line per event, appended to the file `--audit-log` names.
//!
//! Idempotent by event id, with a marker per event in Redis (`keys::job_done`): before the
//! append a worker takes the marker (`SET NX` of the job's id, a lease of [`LEASE`]); after
//! it the marker says `done` for [`REMEMBER`]. A delivery that finds `done` writes nothing;
//! one that finds its own job's id holds the lease (an earlier attempt took it, and its
//! answer was lost to a timeout); one that finds another job's lease fails and is retried
//! later. Redis rather than the file's tail: several
//! workers on several machines may write several files, and the marker is one round trip
//! where the tail is a read of unbounded length. The one window left: a worker that dies
//! between the append and the `done` (one round trip) has its event written again after the
//! lease ends.

use std::{path::PathBuf, time::Duration};

use tokio::{io::AsyncWriteExt, sync::Mutex};

use super::{job::AuditEvent, worker::Failure};
use crate::{keys::Keys, store::Store};

/// How long a worker may take to append one event before another may try.
const LEASE: Duration = Duration::from_secs(60);
/// How long an event's `done` marker is kept: far longer than any redelivery.
const REMEMBER: Duration = Duration::from_secs(7 * 24 * 3600);
/// The marker's value once the line is written.
const DONE: &str = "done";

/// The audit log file and the markers.
pub(crate) struct AuditLog {
    path: PathBuf,
    store: Store,
    /// One append at a time in this process: lines never interleave.
    append: Mutex<()>,
}

impl AuditLog {
    /// Appends to `path`, with markers in `store`.
    pub(crate) fn new(path: PathBuf, store: Store) -> Self {
        Self {
            path,
            store,
            append: Mutex::new(()),
        }
    }

    /// Writes `event` of job `job` once, whatever the number of deliveries (the job's id
    /// names its lease).
    pub(crate) async fn write(&self, event: &AuditEvent, job: &str) -> Result<(), Failure> {
        if !crate::tenancy::valid_id(&event.event_id) {
            return Err(Failure::Permanent(
                "an audit event id that is not an id".into(),
            ));
        }
        let marker = marker(self.store.keys(), &event.event_id);
        let mut lease = redis::cmd("SET");
        lease
            .arg(&marker)
            .arg(job)
            .arg("NX")
            .arg("PX")
            .arg(millis(LEASE));
        let leased: Option<String> = self.store.query(&lease).await.map_err(Failure::redis)?;
        if leased.is_none() {
            let mut get = redis::cmd("GET");
            get.arg(&marker);
            let state: Option<String> = self.store.query(&get).await.map_err(Failure::redis)?;
            match state.as_deref() {
                Some(DONE) => return Ok(()),
                // Our own lease: an earlier attempt took it and did not hear back.
                Some(owner) if owner == job => {}
                _ => {
                    return Err(Failure::Transient(
                        "another delivery of this event is being written".into(),
                    ));
                }
            }
        }
        if let Err(err) = self.append(event).await {
            let mut release = redis::cmd("DEL");
            release.arg(&marker);
            if let Err(err) = self.store.query::<()>(&release).await {
                tracing::debug!(%err, "audit: the lease ends by itself");
            }
            return Err(Failure::Transient(format!(
                "cannot append to {}: {err}",
                self.path.display()
            )));
        }
        let mut done = redis::cmd("SET");
        done.arg(&marker).arg(DONE).arg("PX").arg(millis(REMEMBER));
        if let Err(err) = self.store.query::<()>(&done).await {
            // Written: a redelivery after the lease would write it again, which is all this
            // can cost.
            tracing::warn!(%err, event = %event.event_id, "audit: written, not marked done");
        }
        Ok(())
    }

    async fn append(&self, event: &AuditEvent) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(event).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let _one_at_a_time = self.append.lock().await;
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .await?;
        file.write_all(&line).await?;
        file.sync_data().await
    }
}

/// The marker key of event `id`.
fn marker(keys: &Keys, id: &str) -> String {
    keys.job_done(super::queue::QUEUE, id)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
