//! Background jobs on Redis Streams (the role BullMQ plays in Node stacks): the gateway
//! enqueues ([`Jobs`]), `gateway worker` processes run them (`worker.rs`), at least once.
//!
//! - `job.rs`: what a job is (id, kind, attempts), bounded in size;
//! - `queue.rs`: the keys and scripts: the stream, the scheduled set, the dead letters;
//! - `worker.rs`: the consume loop; `retry.rs`: the backoff; `dead.rs`: the dead letters' CLI;
//! - `audit.rs`: the audit log; `notify.rs`: DM notifications through a `Transport`;
//! - `metrics.rs`: their metrics; `admin.rs`: the worker's `/metrics`.
//!
//! While Redis cannot take a job the gateway keeps it in a bounded in-memory [`Spool`], in
//! order, and enqueues it once Redis is back: delayed, not lost (unless the gateway itself
//! stops meanwhile). Enqueueing never waits longer than the command deadline and never fails
//! its caller: a job that cannot be taken at all (spool full, too large) is logged and
//! counted (`jobs_dropped`).

mod admin;
mod audit;
mod dead;
mod job;
mod metrics;
mod notify;
mod queue;
mod retry;
mod worker;

use std::{future::Future, sync::Arc, time::Duration};

use redis_adapter::{Redis, RedisConfig};

pub(crate) use job::{AuditEvent, AuditKind, DmNotification, Fault, Work};
pub(crate) use metrics::{SPOOLED, record_depth};

use crate::{
    Error, RedisArgs,
    background::Background,
    config::{DeadCommand, JobsCommand, WorkerArgs},
    counters::Counters,
    ids,
    keys::Keys,
    spool::Spool,
    store::{COMMAND_TIMEOUT, Store},
};
use job::Job;
use queue::Queue;

/// Jobs a gateway holds while Redis cannot take them.
pub(crate) const SPOOL_CAPACITY: usize = 10_000;

/// The gateway's side of the queue: enqueue, with the spool behind it. Lives in `Accounts`
/// (jobs need Redis: a standalone gateway has none).
pub(crate) struct Jobs {
    queue: Queue,
    spool: Arc<Spool<(Job, Option<u64>)>>,
    counters: Arc<Counters>,
}

impl Jobs {
    /// Jobs on `store`; the spool's drain is added to `background`.
    pub(crate) fn start(
        store: Store,
        counters: Arc<Counters>,
        background: &mut Background,
    ) -> Self {
        let queue = Queue::new(store);
        let spool = Arc::new(Spool::new(SPOOL_CAPACITY));
        let drain = {
            let (queue, spool, counters) = (queue.clone(), spool.clone(), counters.clone());
            async move {
                spool
                    .drain(|(job, due): (Job, Option<u64>)| {
                        let (queue, counters) = (queue.clone(), counters.clone());
                        async move {
                            queue.enqueue(&job, due).await?;
                            counters.jobs_enqueued.incr();
                            Ok::<(), Error>(())
                        }
                    })
                    .await;
            }
        };
        background.push(tokio::spawn(drain));
        Self {
            queue,
            spool,
            counters,
        }
    }

    /// Appends `event` to the audit log (through a worker).
    pub(crate) async fn audit(&self, event: AuditEvent) {
        self.submit(Job::new(Work::Audit(event)), None).await;
    }

    /// Tells `notification.to_user`, who had no socket connected when the DM was sent,
    /// about it (through a worker and its transport: the outbox directory). Call it after the
    /// DM was sent; it waits at most the command deadline and never fails the caller.
    pub(crate) async fn notify_offline_dm(&self, notification: DmNotification) {
        self.submit(Job::new(Work::DmNotification(notification)), None)
            .await;
    }

    /// Runs `work` at `due` (Unix milliseconds).
    pub(crate) async fn enqueue_at(&self, work: Work, due: u64) {
        self.submit(Job::new(work), Some(due)).await;
    }

    /// Runs `work` once `delay` has passed.
    pub(crate) async fn enqueue_in(&self, work: Work, delay: Duration) {
        let delay = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.enqueue_at(work, ids::now_ms().saturating_add(delay))
            .await;
    }

    /// Runs `work` now.
    pub(crate) async fn enqueue(&self, work: Work) {
        self.submit(Job::new(work), None).await;
    }

    /// Jobs waiting in the spool.
    pub(crate) fn spooled(&self) -> usize {
        self.spool.len()
    }

    /// The queue itself (its depth, for `/metrics`).
    pub(crate) fn queue(&self) -> &Queue {
        &self.queue
    }

    /// Enqueues `job` now if nothing is spooled and Redis takes it within the deadline, else
    /// spools it behind the others.
    async fn submit(&self, job: Job, due: Option<u64>) {
        if let Err(err) = job.encode() {
            tracing::warn!(%err, job = %job.id, "job dropped");
            self.counters.jobs_dropped.incr();
            return;
        }
        if self.spool.is_empty() {
            match self.queue.enqueue(&job, due).await {
                Ok(()) => {
                    self.counters.jobs_enqueued.incr();
                    return;
                }
                Err(err) => {
                    tracing::warn!(%err, job = %job.id, "job spooled until Redis takes it");
                }
            }
        }
        let id = job.id.clone();
        match self.spool.push((job, due)) {
            Ok(()) => self.counters.jobs_spooled.incr(),
            Err(_full) => {
                tracing::error!(job = %id, capacity = SPOOL_CAPACITY, "job spool full: job dropped");
                self.counters.jobs_dropped.incr();
            }
        }
    }
}

/// `gateway worker`: runs jobs until `shutdown` resolves (then lets the running ones
/// finish). Waits for Redis as long as it takes, at start as later. `announce` is given the
/// admin listener's bound address (the real port when `--admin-listen` asked for port 0).
pub async fn run_worker(
    args: &WorkerArgs,
    announce: impl FnOnce(std::net::SocketAddr),
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    // Before the first job: a count made before the first scrape would be lost otherwise.
    crate::metrics::install_recorder();
    let url = redis_url(&args.redis)?;
    let config = crate::redis_config(&args.redis)?;
    // The blocking reads get a connection of their own, with room for the block.
    let reader_config = RedisConfig {
        command_timeout: worker::READ_BLOCK + COMMAND_TIMEOUT,
        ..config.clone()
    };
    let audit_path = args.audit_log.clone();
    let outbox = match &args.outbox {
        None => None,
        Some(dir) => Some(
            notify::Outbox::open(dir.clone())
                .map_err(|err| Error::Jobs(format!("--outbox {}: {err}", dir.display())))?,
        ),
    };
    let admin = match &args.admin_listen {
        None => None,
        Some(addr) => {
            let bind_error = |source| Error::Bind {
                addr: addr.clone(),
                source,
            };
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(bind_error)?;
            announce(listener.local_addr().map_err(bind_error)?);
            Some(listener)
        }
    };
    let mut shutdown = std::pin::pin!(shutdown);
    let keys = Keys::new(&args.redis.key_prefix);
    let connect = async {
        let commands = connect_patiently(url, config).await;
        let reader = connect_patiently(url, reader_config).await;
        (commands, reader)
    };
    let (commands, reader) = tokio::select! {
        connected = connect => connected,
        () = &mut shutdown => return Ok(()),
    };
    let store = Store::new(commands, keys.clone());
    let queue = Queue::new(store.clone());
    // Stops the admin listener when the worker returns.
    let mut background = Background::default();
    if let Some(listener) = admin {
        background.push(admin::serve(listener, queue.clone()));
    }
    let handlers = worker::Handlers {
        audit: audit_path.map(|path| audit::AuditLog::new(path, store.clone())),
        transport: outbox.map(|outbox| Box::new(outbox) as Box<dyn notify::Transport>),
        test_faults: args.test_faults,
    };
    if args.test_faults {
        tracing::warn!("--test-faults: failure-injection jobs run; never in production");
    }
    let settings = worker::Settings {
        retry: retry::RetryPolicy {
            attempts: args.job_attempts,
            first_backoff: args.job_backoff,
        },
        visibility_timeout: args.job_visibility_timeout,
        concurrency: args.concurrency,
    };
    let consumer = format!("{}-{}", ids::instance_id(), std::process::id());
    worker::Worker::new(
        queue,
        Store::new(reader, keys),
        consumer,
        handlers,
        settings,
    )
    .run(shutdown)
    .await;
    Ok(())
}

/// `gateway jobs ...`: what to print, a line each.
pub async fn run_jobs_command(command: &JobsCommand) -> Result<Vec<String>, Error> {
    let JobsCommand::Dead { command } = command;
    match command {
        DeadCommand::List { redis, limit } => {
            dead::list(&connect_queue(redis).await?, *limit).await
        }
        DeadCommand::Requeue { redis, id, all } => {
            let queue = connect_queue(redis).await?;
            let id = if *all { None } else { id.as_deref() };
            let requeued = dead::requeue(&queue, id).await?;
            Ok(vec![format!("requeued {requeued} dead letter(s)")])
        }
    }
}

/// The queue over a connection made from `redis` (failing at once if Redis is down).
async fn connect_queue(redis: &RedisArgs) -> Result<Queue, Error> {
    let store = crate::connect_store(redis_url(redis)?, redis).await?;
    Ok(Queue::new(store))
}

/// `--redis-url`, which jobs cannot do without.
fn redis_url(redis: &RedisArgs) -> Result<&str, Error> {
    redis
        .redis_url
        .as_deref()
        .ok_or_else(|| Error::Jobs("jobs live in Redis: pass --redis-url".into()))
}

/// The Redis layer at `url`, retrying (with backoff) until it connects.
async fn connect_patiently(url: &str, config: RedisConfig) -> Redis {
    let mut pause = Duration::from_millis(100);
    loop {
        match Redis::connect(url, config.clone()).await {
            Ok(redis) => return redis,
            Err(err) => {
                tracing::warn!(%err, retry_in = ?pause, "worker: Redis unreachable, waiting");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    }
}
