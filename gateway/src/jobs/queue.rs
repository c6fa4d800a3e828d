//! One job queue in Redis: a stream of jobs ready to run, read by the consumer group
//! [`GROUP`]; a sorted set of jobs due later (delayed jobs, retries); a capped stream of dead
//! letters. Every key carries the queue's name as its one hash tag, so each script below
//! touches a single slot of a Redis Cluster. Every call is bounded by the command deadline
//! (the blocking read by its block time plus that deadline).
//!
//! An entry leaves the stream when it is settled: acknowledged and deleted (done), moved to
//! the scheduled set (retry) or to the dead letters, in one script, and only by a worker for
//! which `XACK` still found it pending, so a job is settled once. So `XLEN` of the stream is
//! the jobs not done yet, and its first entry the oldest of them.

use std::{sync::LazyLock, time::Duration};

use redis::{
    Script,
    streams::{StreamAutoClaimReply, StreamId, StreamRangeReply, StreamReadReply},
};

use super::job::Job;
use crate::{
    Error,
    ids::now_ms,
    store::{self, COMMAND_TIMEOUT, Store},
};

/// The consumer group every worker reads through.
pub(crate) const GROUP: &str = "workers";
/// The one queue the gateway ships: every kind of job goes through it.
pub(crate) const QUEUE: &str = "default";
/// Jobs the stream may hold (not done yet); beyond it enqueues are refused, never trimmed:
/// `MAXLEN` would drop jobs that no worker has run.
pub(crate) const MAX_READY: u64 = 100_000;
/// Jobs the scheduled set may hold for later; beyond it delayed enqueues are refused
/// (retries of jobs already taken are not).
pub(crate) const MAX_SCHEDULED: u64 = 100_000;
/// Dead letters kept (`XADD MAXLEN ~`): the oldest go first.
pub(crate) const MAX_DEAD: u64 = 10_000;
/// Scheduled jobs moved into the stream by one promotion.
const PROMOTE_BATCH: u64 = 100;
/// The stream entry's field holding the job.
const FIELD_JOB: &str = "job";
/// The dead letter's field holding the last error.
const FIELD_ERROR: &str = "error";

/// KEYS: stream, scheduled. ARGV: job, due (Unix ms, 0: now), max ready, max scheduled.
/// Returns 1 when taken, 0 when the stream or the scheduled set is full.
static ENQUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if tonumber(ARGV[2]) > 0 then
  if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return 0 end
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
  return 1
end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('XADD', KEYS[1], '*', 'job', ARGV[1])
return 1
",
    )
});

/// KEYS: stream, scheduled. ARGV: now (Unix ms), max ready, batch. Moves due jobs into the
/// stream while it has room; returns how many.
static PROMOTE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local room = tonumber(ARGV[2]) - redis.call('XLEN', KEYS[1])
if room <= 0 then return 0 end
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, math.min(room, tonumber(ARGV[3])))
for _, job in ipairs(due) do
  redis.call('XADD', KEYS[1], '*', 'job', job)
  redis.call('ZREM', KEYS[2], job)
end
return #due
",
    )
});

/// KEYS: stream. ARGV: group, entry id. Done: acknowledged and deleted. Returns whether it
/// was still pending.
static ACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
",
    )
});

/// KEYS: stream, scheduled. ARGV: group, entry id, job (its new attempt), due. A retry.
static RETRY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
return 1
",
    )
});

/// KEYS: stream, dead. ARGV: group, entry id, job, error, max dead. A dead letter.
static BURY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'job', ARGV[3], 'error', ARGV[4])
return 1
",
    )
});

/// KEYS: dead, stream. ARGV: dead letter id, job, max ready. Moves one dead letter back into
/// the stream: 1 moved, 0 no such dead letter (requeued already), -1 stream full.
static REQUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('XLEN', KEYS[2]) >= tonumber(ARGV[3]) then return -1 end
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', 'job', ARGV[2])
return 1
",
    )
});

/// One delivery of a job: its stream entry id and what the entry holds.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    /// The stream entry id (settles the delivery).
    pub(crate) entry: String,
    /// The job, or why the entry is not one.
    pub(crate) job: Result<Job, String>,
    /// The entry's raw JSON, kept as is in a dead letter when it does not decode.
    pub(crate) raw: String,
}

/// One dead letter.
#[derive(Debug, Clone)]
pub(crate) struct DeadLetter {
    /// Its id in the dead-letter stream.
    pub(crate) entry: String,
    /// The job's JSON.
    pub(crate) raw: String,
    /// The last error.
    pub(crate) error: String,
}

/// How much a queue holds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Depth {
    /// Jobs in the stream, not done yet (waiting or running).
    pub(crate) ready: u64,
    /// Jobs due later.
    pub(crate) scheduled: u64,
    /// Dead letters.
    pub(crate) dead: u64,
    /// Age of the oldest job not done yet, seconds (0 when none).
    pub(crate) lag_seconds: f64,
}

/// A handle on one queue's keys; cheap to clone.
#[derive(Clone)]
pub(crate) struct Queue {
    store: Store,
    stream: String,
    scheduled: String,
    dead: String,
}

impl Queue {
    /// Queue [`QUEUE`] in `store`.
    pub(crate) fn new(store: Store) -> Self {
        let keys = store.keys();
        Self {
            stream: keys.job_stream(QUEUE),
            scheduled: keys.job_scheduled(QUEUE),
            dead: keys.job_dead(QUEUE),
            store,
        }
    }

    /// Enqueues `job` to run at `due` (Unix ms; `None`: now).
    pub(crate) async fn enqueue(&self, job: &Job, due: Option<u64>) -> Result<(), Error> {
        let json = job.encode()?;
        // 0 says "now" to the script: a job due at the epoch is due at 1 ms.
        let due = due.map_or(0, |due| due.max(1));
        let mut invocation = ENQUEUE.prepare_invoke();
        invocation
            .key(&self.stream)
            .key(&self.scheduled)
            .arg(json)
            .arg(due)
            .arg(MAX_READY)
            .arg(MAX_SCHEDULED);
        let taken: i64 = self.store.invoke(&invocation).await?;
        if taken == 1 {
            Ok(())
        } else {
            Err(Error::QueueFull(if due > 0 {
                "too many scheduled jobs"
            } else {
                "too many jobs waiting"
            }))
        }
    }

    /// Creates the consumer group (and the stream) if missing; from the stream's start, so
    /// jobs enqueued before any worker ran are read too.
    pub(crate) async fn ensure_group(&self) -> Result<(), Error> {
        let mut create = redis::cmd("XGROUP");
        create
            .arg("CREATE")
            .arg(&self.stream)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM");
        match self.store.query::<()>(&create).await {
            Err(Error::Redis(err)) if err.code() == Some("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    /// Moves the scheduled jobs that are due into the stream; how many.
    pub(crate) async fn promote(&self) -> Result<u64, Error> {
        let mut invocation = PROMOTE.prepare_invoke();
        invocation
            .key(&self.stream)
            .key(&self.scheduled)
            .arg(now_ms())
            .arg(MAX_READY)
            .arg(PROMOTE_BATCH);
        self.store.invoke(&invocation).await
    }

    /// Up to `count` new deliveries for `consumer`, waiting up to `block` for one, through
    /// `reader`: a connection of its own, since a blocked read holds its connection.
    pub(crate) async fn read(
        &self,
        reader: &Store,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>, Error> {
        let mut read = redis::cmd("XREADGROUP");
        read.arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(u64::try_from(block.as_millis()).unwrap_or(u64::MAX))
            .arg("STREAMS")
            .arg(&self.stream)
            .arg(">");
        let mut conn = reader.connection();
        let reply: Option<StreamReadReply> =
            store::deadline(block + COMMAND_TIMEOUT, read.query_async(&mut conn)).await?;
        Ok(reply
            .into_iter()
            .flat_map(|reply| reply.keys)
            .flat_map(|key| key.ids)
            .map(delivery)
            .collect())
    }

    /// Takes over up to `count` deliveries idle for `min_idle` (their worker died) for
    /// `consumer`, scanning from `cursor`; returns them and the next cursor.
    pub(crate) async fn claim(
        &self,
        consumer: &str,
        min_idle: Duration,
        cursor: &str,
        count: usize,
    ) -> Result<(Vec<Delivery>, String), Error> {
        let mut claim = redis::cmd("XAUTOCLAIM");
        claim
            .arg(&self.stream)
            .arg(GROUP)
            .arg(consumer)
            .arg(u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX))
            .arg(cursor)
            .arg("COUNT")
            .arg(count);
        let reply: StreamAutoClaimReply = self.store.query(&claim).await?;
        let claimed = reply.claimed.into_iter().map(delivery).collect();
        Ok((claimed, reply.next_stream_id))
    }

    /// Resets the idle time of `entry`, which `consumer` is still working on, so that no
    /// other worker claims it.
    pub(crate) async fn touch(&self, consumer: &str, entry: &str) -> Result<(), Error> {
        let mut claim = redis::cmd("XCLAIM");
        claim
            .arg(&self.stream)
            .arg(GROUP)
            .arg(consumer)
            .arg(0)
            .arg(entry)
            .arg("JUSTID");
        self.store.query::<redis::Value>(&claim).await.map(drop)
    }

    /// Settles `entry` as done. `false`: it was settled already (by a worker that claimed it).
    pub(crate) async fn ack(&self, entry: &str) -> Result<bool, Error> {
        let mut invocation = ACK.prepare_invoke();
        invocation.key(&self.stream).arg(GROUP).arg(entry);
        self.store.invoke(&invocation).await
    }

    /// Settles `entry` as failed: `job` (with its new attempt count) runs again at `due`.
    pub(crate) async fn retry(&self, entry: &str, job: &Job, due: u64) -> Result<bool, Error> {
        let mut invocation = RETRY.prepare_invoke();
        invocation
            .key(&self.stream)
            .key(&self.scheduled)
            .arg(GROUP)
            .arg(entry)
            .arg(job.encode()?)
            .arg(due);
        self.store.invoke(&invocation).await
    }

    /// Settles `entry` as dead: `raw` (the job's JSON) goes to the dead letters with `error`.
    pub(crate) async fn bury(&self, entry: &str, raw: &str, error: &str) -> Result<bool, Error> {
        let mut invocation = BURY.prepare_invoke();
        invocation
            .key(&self.stream)
            .key(&self.dead)
            .arg(GROUP)
            .arg(entry)
            .arg(raw)
            .arg(error)
            .arg(MAX_DEAD);
        self.store.invoke(&invocation).await
    }

    /// Up to `count` dead letters, oldest first.
    pub(crate) async fn dead_letters(&self, count: usize) -> Result<Vec<DeadLetter>, Error> {
        let mut range = redis::cmd("XRANGE");
        range
            .arg(&self.dead)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(count);
        let reply: StreamRangeReply = self.store.query(&range).await?;
        Ok(reply
            .ids
            .into_iter()
            .map(|entry| DeadLetter {
                raw: entry.get(FIELD_JOB).unwrap_or_default(),
                error: entry.get(FIELD_ERROR).unwrap_or_default(),
                entry: entry.id,
            })
            .collect())
    }

    /// Moves dead letter `entry` back into the stream as `raw`. `false`: no such dead letter.
    pub(crate) async fn requeue(&self, entry: &str, raw: &str) -> Result<bool, Error> {
        let mut invocation = REQUEUE.prepare_invoke();
        invocation
            .key(&self.dead)
            .key(&self.stream)
            .arg(entry)
            .arg(raw)
            .arg(MAX_READY);
        match self.store.invoke::<i64>(&invocation).await? {
            -1 => Err(Error::QueueFull("too many jobs waiting")),
            moved => Ok(moved == 1),
        }
    }

    /// How much the queue holds, if Redis answers within `limit`.
    pub(crate) async fn depth(&self, limit: Duration) -> Option<Depth> {
        let mut pipe = redis::pipe();
        pipe.cmd("XLEN")
            .arg(&self.stream)
            .cmd("ZCARD")
            .arg(&self.scheduled)
            .cmd("XLEN")
            .arg(&self.dead)
            .cmd("XRANGE")
            .arg(&self.stream)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1);
        let mut conn = self.store.connection();
        let (ready, scheduled, dead, oldest): (u64, u64, u64, StreamRangeReply) =
            store::deadline(limit, pipe.query_async(&mut conn))
                .await
                .ok()?;
        let lag_seconds = oldest
            .ids
            .first()
            .and_then(|entry| entry_ms(&entry.id))
            .map_or(0.0, |ms| now_ms().saturating_sub(ms) as f64 / 1000.0);
        Some(Depth {
            ready,
            scheduled,
            dead,
            lag_seconds,
        })
    }
}

/// The delivery in a stream entry.
fn delivery(entry: StreamId) -> Delivery {
    let raw: Option<String> = entry.get(FIELD_JOB);
    let job = match &raw {
        Some(raw) => Job::decode(raw).map_err(|err| format!("not a job: {err}")),
        None => Err("an entry without a job field".to_owned()),
    };
    Delivery {
        entry: entry.id,
        job,
        raw: raw.unwrap_or_default(),
    }
}

/// The milliseconds part of a stream entry id (`<ms>-<seq>`): when it was added.
fn entry_ms(id: &str) -> Option<u64> {
    id.split('-').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn entry_ids_carry_their_time() {
        assert_eq!(super::entry_ms("1700000000123-4"), Some(1_700_000_000_123));
        assert_eq!(super::entry_ms("x-1"), None);
    }
}
