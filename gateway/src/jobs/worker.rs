//! The consume loop of `gateway worker`: read jobs through the consumer group, run each, and
//! settle it (done, retried later, or dead), at least once.
//!
//! Each turn the loop moves due scheduled jobs into the stream, takes over the deliveries of
//! dead workers (idle longer than the visibility timeout, `XAUTOCLAIM`) and reads new ones
//! (`XREADGROUP ... BLOCK`, on a connection of its own), at most `concurrency` jobs running
//! at once. A running job's idle time is reset every third of the visibility timeout, so only
//! a worker that stopped has its jobs claimed. A failed Redis call is logged and the loop
//! waits (doubling up to [`PAUSE_MAX`]) and goes on: Redis going away never stops a worker.
//! Shutdown stops reading and waits for the running jobs to settle.

use std::{
    future::Future,
    pin::pin,
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::FutureExt;
use tokio::task::JoinSet;

use super::{
    audit::AuditLog,
    job::{Job, Work},
    metrics,
    notify::{self, Transport},
    queue::{Delivery, Queue},
    retry::RetryPolicy,
};
use crate::{Error, ids::now_ms, store::Store};

/// How long one read waits for a new job.
pub(crate) const READ_BLOCK: Duration = Duration::from_millis(500);
/// First pause after a failed Redis call.
const PAUSE_MIN: Duration = Duration::from_millis(100);
/// Longest pause between two turns while Redis fails.
const PAUSE_MAX: Duration = Duration::from_secs(2);
/// Attempts at settling one delivery before it is left pending (and redelivered after the
/// visibility timeout).
const SETTLE_TRIES: u32 = 5;

/// Why a job failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Worth another attempt (Redis, a full disk, a transport down).
    Transient(String),
    /// Never worth one (a payload no attempt can run): a dead letter at once.
    Permanent(String),
}

impl Failure {
    /// A failed Redis call: transient.
    pub(crate) fn redis(err: Error) -> Self {
        Self::Transient(err.to_string())
    }

    fn message(&self) -> &str {
        match self {
            Self::Transient(message) | Self::Permanent(message) => message,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// What runs each kind of job.
pub(crate) struct Handlers {
    /// `--audit-log`; without it audit jobs fail (and wait in the dead letters for a worker
    /// that has one).
    pub(crate) audit: Option<AuditLog>,
    /// `--outbox` (or another transport); without it DM notifications fail likewise.
    pub(crate) transport: Option<Box<dyn Transport>>,
    /// `--test-faults`: whether [`Work::Fault`] jobs run (tests only).
    pub(crate) test_faults: bool,
}

impl Handlers {
    /// Runs `job` once.
    async fn run(&self, job: &Job) -> Result<(), Failure> {
        match &job.work {
            Work::Audit(event) => match &self.audit {
                Some(log) => log.write(event, &job.id).await,
                None => Err(Failure::Transient("this worker has no --audit-log".into())),
            },
            Work::DmNotification(dm) => {
                let transport = self
                    .transport
                    .as_ref()
                    .ok_or_else(|| Failure::Transient("this worker has no --outbox".into()))?;
                transport.deliver(&notify::render(dm)?).await
            }
            Work::Fault(fault) => {
                if !self.test_faults {
                    return Err(Failure::Permanent(
                        "a test fault, and this worker runs without --test-faults".into(),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(fault.hold_ms)).await;
                if job.attempt < fault.fail {
                    return Err(Failure::Transient(format!(
                        "injected failure {}",
                        job.attempt + 1
                    )));
                }
                Ok(())
            }
        }
    }
}

/// How a worker runs jobs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// Attempts and backoff.
    pub(crate) retry: RetryPolicy,
    /// How long a delivery may stay idle before another worker takes it over.
    pub(crate) visibility_timeout: Duration,
    /// Jobs running at once.
    pub(crate) concurrency: usize,
}

/// One worker process's consumer.
pub(crate) struct Worker {
    queue: Queue,
    /// The connection of the blocking reads.
    reader: Store,
    consumer: String,
    handlers: Handlers,
    settings: Settings,
}

impl Worker {
    /// A consumer named `consumer` of `queue`, reading through `reader`.
    pub(crate) fn new(
        queue: Queue,
        reader: Store,
        consumer: String,
        handlers: Handlers,
        settings: Settings,
    ) -> Arc<Self> {
        Arc::new(Self {
            queue,
            reader,
            consumer,
            handlers,
            settings,
        })
    }

    /// Consumes until `shutdown` resolves, then waits for the running jobs.
    pub(crate) async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        let mut shutdown = pin!(shutdown.fuse());
        let mut running = JoinSet::new();
        let mut pause = PAUSE_MIN;
        let mut grouped = false;
        let mut cursor = "0-0".to_owned();
        let claim_every = (self.settings.visibility_timeout / 2).max(Duration::from_millis(100));
        let mut last_claim: Option<Instant> = None;
        tracing::info!(consumer = %self.consumer, ?self.settings, "worker started");
        loop {
            while running.try_join_next().is_some() {}
            if (&mut shutdown).now_or_never().is_some() {
                break;
            }
            let free = self
                .settings
                .concurrency
                .max(1)
                .saturating_sub(running.len());
            if free == 0 {
                tokio::select! {
                    _ = running.join_next() => {}
                    () = &mut shutdown => break,
                }
                continue;
            }
            let claim = last_claim.is_none_or(|at| at.elapsed() >= claim_every);
            match self.turn(&mut grouped, claim, &mut cursor, free).await {
                Ok(deliveries) => {
                    pause = PAUSE_MIN;
                    if claim {
                        last_claim = Some(Instant::now());
                    }
                    for delivery in deliveries {
                        running.spawn(self.clone().handle(delivery));
                    }
                }
                Err(err) => {
                    tracing::warn!(%err, retry_in = ?pause, "worker: Redis failed, going on");
                    grouped = false;
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = &mut shutdown => break,
                    }
                    pause = (pause * 2).min(PAUSE_MAX);
                }
            }
        }
        tracing::info!(
            running = running.len(),
            "worker stopping: finishing the running jobs"
        );
        while running.join_next().await.is_some() {}
        tracing::info!("worker stopped");
    }

    /// One turn: the group, due jobs, claims (when `claim`), then new deliveries.
    async fn turn(
        &self,
        grouped: &mut bool,
        claim: bool,
        cursor: &mut String,
        free: usize,
    ) -> Result<Vec<Delivery>, Error> {
        if !*grouped {
            self.queue.ensure_group().await?;
            *grouped = true;
        }
        self.queue.promote().await?;
        if claim {
            let (claimed, next) = self
                .queue
                .claim(
                    &self.consumer,
                    self.settings.visibility_timeout,
                    cursor,
                    free,
                )
                .await?;
            *cursor = next;
            if !claimed.is_empty() {
                tracing::info!(
                    jobs = claimed.len(),
                    "claimed the jobs of a worker that stopped"
                );
                metrics::claimed(claimed.len());
                return Ok(claimed);
            }
        }
        self.queue
            .read(&self.reader, &self.consumer, free, READ_BLOCK)
            .await
    }

    /// Runs one delivery and settles it.
    async fn handle(self: Arc<Self>, delivery: Delivery) {
        let entry = delivery.entry.as_str();
        let job = match delivery.job {
            Ok(job) => job,
            Err(why) => {
                tracing::warn!(%entry, %why, "not a job: a dead letter");
                self.settle("bury", || self.queue.bury(entry, &delivery.raw, &why))
                    .await;
                metrics::dead("unknown");
                return;
            }
        };
        let kind = job.work.kind();
        let outcome = {
            let mut work = pin!(self.handlers.run(&job));
            let mut touch = tokio::time::interval(
                (self.settings.visibility_timeout / 3).max(Duration::from_millis(10)),
            );
            touch.tick().await;
            loop {
                tokio::select! {
                    outcome = &mut work => break outcome,
                    _ = touch.tick() => {
                        if let Err(err) = self.queue.touch(&self.consumer, entry).await {
                            tracing::debug!(%err, "a running job's idle time was not reset");
                        }
                    }
                }
            }
        };
        let failure = match outcome {
            Ok(()) => {
                self.settle("ack", || self.queue.ack(entry)).await;
                metrics::processed(kind);
                return;
            }
            Err(failure) => failure,
        };
        let failed = job.attempt.saturating_add(1);
        let next = Job {
            attempt: failed,
            last_error: Some(failure.message().to_owned()),
            ..job
        };
        let retry = matches!(failure, Failure::Transient(_)) && self.settings.retry.retries(failed);
        if retry {
            let wait = self.settings.retry.backoff(failed);
            let due = now_ms().saturating_add(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
            tracing::info!(job = %next.id, kind, attempt = failed, %failure, ?wait, "job failed: retried later");
            self.settle("retry", || self.queue.retry(entry, &next, due))
                .await;
            metrics::retried(kind);
        } else {
            tracing::warn!(job = %next.id, kind, attempts = failed, %failure, "job failed for good: a dead letter");
            let raw = next.encode().unwrap_or(delivery.raw);
            self.settle("bury", || self.queue.bury(entry, &raw, failure.message()))
                .await;
            metrics::dead(kind);
        }
    }

    /// Runs `settle` until Redis takes it (a few tries); past them the delivery stays
    /// pending, and another worker runs it again after the visibility timeout.
    async fn settle<F, Fut>(&self, what: &'static str, mut settle: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<bool, Error>>,
    {
        let mut pause = PAUSE_MIN;
        for _ in 0..SETTLE_TRIES {
            match settle().await {
                Ok(true) => return,
                Ok(false) => {
                    tracing::info!(what, "settled already by a worker that took it over");
                    return;
                }
                Err(err) => {
                    tracing::warn!(%err, what, "cannot settle a job yet");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(PAUSE_MAX);
                }
            }
        }
        tracing::warn!(
            what,
            "job left pending: it runs again after the visibility timeout"
        );
    }
}
