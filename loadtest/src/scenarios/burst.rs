//! `burst`: the members of one room connect to the `--url` instances and join it; one
//! `POST /bench/burst {room, count[, tenant]}` then makes the `--trigger` instance emit
//! `count` room broadcasts back to back, as application code does. The run waits until every
//! member has received every broadcast, or `--max-wait`, and reports how long the server's
//! emitting loop took (its own measure), how long until every member had everything, and the
//! deliveries lost, duplicated and out of order, per member.
//!
//! The server answers `{emitted, failed, elapsed_ms}` and emits `message {room, id, from,
//! text, ts}` whose text is a probe of sender 0, sequence number `0..count` and, as send time,
//! the microseconds since the server started its loop. Latencies are measured against the
//! moment the trigger was sent plus that offset: they include the trigger's own transit time
//! (well under a millisecond on loopback) and are therefore slight overestimates.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;

use super::members;
use crate::Error;
use crate::config::Common;
use crate::fleet::Fleet;
use crate::probe::{Clock, Probe, Received};
use crate::progress::Progress;
use crate::report::{BurstFigures, Report};
use crate::sequence::{Delivery, SeqTrack};
use crate::stats::{Counters, Stats};
use crate::window::Window;
use socketio_client::{ClientError, EventHandler, RawEvent, post_json};

/// Most broadcasts one burst may ask for (the servers refuse more too).
pub const MAX_COUNT: u32 = 1_000_000;
/// Most members of the room.
const MAX_MEMBERS: u32 = 10_000;
/// Longest `--max-wait`.
const MAX_WAIT: Duration = Duration::from_secs(600);
/// How often the members' progress is checked while waiting.
const POLL: Duration = Duration::from_millis(5);
/// Largest trigger answer read.
const MAX_ANSWER: usize = 16 * 1024;
/// The route the trigger instance serves.
pub const TRIGGER_PATH: &str = "/bench/burst";

/// The `burst` scenario's flags.
#[derive(Debug, Clone, Args)]
pub struct BurstConfig {
    /// Where the members connect (round-robin over the URLs): the instances other than the
    /// trigger's, so that every broadcast crosses Redis.
    #[command(flatten)]
    pub common: Common,

    /// Base URL of the instance that emits, `http://host:port`. It must serve
    /// `POST /bench/burst`: our gateway with --bench-endpoints, the bench peers with theirs.
    #[arg(long)]
    pub trigger: String,

    /// Broadcasts the trigger instance emits, 1 to 1000000.
    #[arg(long, default_value_t = 100_000)]
    pub count: u32,

    /// Members of the room, one socket each, named `u<i>`.
    #[arg(long, default_value_t = 10)]
    pub members: u32,

    /// The members' tenant, sent to the trigger as `tenant`: our gateway's rooms belong to a
    /// tenant, the one of the account the members log in with (without it the gateway takes
    /// `dev`, its standalone tenant). The peers ignore it.
    #[arg(long)]
    pub tenant: Option<String>,

    /// Longest wait, from sending the trigger, for its answer and for every delivery.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub max_wait: Duration,
}

impl BurstConfig {
    /// A burst of `count` broadcasts from `trigger` to `members` members on `common`'s URLs,
    /// waiting at most 60 s.
    pub fn new(common: Common, trigger: impl Into<String>, count: u32, members: u32) -> Self {
        Self {
            common,
            trigger: trigger.into(),
            count,
            members,
            tenant: None,
            max_wait: Duration::from_secs(60),
        }
    }

    fn validate(&self) -> Result<(), Error> {
        super::validate(&self.common, self.members, self.max_wait)?;
        self.common.validate_target("--trigger", &self.trigger)?;
        if !(1..=MAX_COUNT).contains(&self.count) {
            return Err(Error::Config(format!(
                "--count must be between 1 and {MAX_COUNT}"
            )));
        }
        if self.members > MAX_MEMBERS {
            return Err(Error::Config(format!(
                "--members must be at most {MAX_MEMBERS}"
            )));
        }
        if self.max_wait > MAX_WAIT {
            return Err(Error::Config("--max-wait must be at most 10m".to_owned()));
        }
        Ok(())
    }
}

/// The trigger's answer.
#[derive(Debug, Deserialize)]
struct Answer {
    emitted: u64,
    failed: u64,
    elapsed_ms: f64,
}

/// One member's receipts, written by its reader task, read by the run.
#[derive(Debug, Default)]
struct Tally {
    received: AtomicU64,
    out_of_order: AtomicU64,
    /// [`Clock::micros`] of the last new delivery.
    last_us: AtomicU64,
}

/// What the members' reader tasks share.
struct Shared {
    stats: Arc<Stats>,
    clock: Clock,
    count: u32,
    /// [`Clock::micros`] when the trigger was sent.
    trigger_us: AtomicU64,
    tallies: Vec<Tally>,
}

/// Runs the burst to its end. Fails when it cannot be set up (invalid flags, nobody
/// connected, a trigger that refuses or does not answer in time); losses are in the report.
pub async fn run(config: &BurstConfig) -> Result<Report, Error> {
    config.validate()?;
    let stats = Arc::new(Stats::default());
    let fleet = Arc::new(Fleet::new(&config.common, stats.clone()));
    let polling = fleet.polling_users(config.members);
    super::prepare(&config.common, config.members, polling)?;
    let run_id = super::run_id();
    let room: Arc<str> = format!("lt-{run_id}-burst").into();
    let progress = Progress::start(!config.common.no_progress, stats.clone(), config.members);
    let shared = Arc::new(Shared {
        stats: stats.clone(),
        clock: Clock::start(),
        count: config.count,
        trigger_us: AtomicU64::new(u64::MAX),
        tallies: (0..config.members).map(|_| Tally::default()).collect(),
    });

    let members = members::join_all(
        &fleet,
        &stats,
        config.members,
        |_| room.clone(),
        |member| Member {
            shared: shared.clone(),
            member,
            track: SeqTrack::default(),
        },
    )
    .await?;

    let window = Window::open(&config.common.server_pids)?;
    let outcome = trigger_and_wait(config, &shared, &room, &members.joined).await;
    let spent = window.close();
    stats.stop_counting();
    let joined = members.release().await;
    progress.finish();
    let (answer, trigger_ms, all_received_us) = outcome?;

    let tally = |member: &u32| {
        shared
            .tallies
            .get(usize::try_from(*member).unwrap_or(usize::MAX))
    };
    let per_member = |read: fn(&Tally) -> u64| -> Vec<u64> {
        joined.iter().filter_map(tally).map(read).collect()
    };
    let received_per_member = per_member(|t| t.received.load(Relaxed));
    let trigger_us = shared.trigger_us.load(Relaxed);
    let last_us = joined
        .iter()
        .filter_map(tally)
        .map(|t| t.last_us.load(Relaxed))
        .max()
        .unwrap_or(trigger_us);
    let mut report = Report::new("burst", &run_id, &config.common.urls, &stats, &spent);
    report.users = u64::from(config.members);
    report.polling_users = polling;
    report.sent = answer.emitted;
    let expected = answer.emitted.saturating_mul(joined.len() as u64);
    report.set_deliveries(expected, micros_to_s(last_us.saturating_sub(trigger_us)));
    report.burst = Some(BurstFigures {
        trigger: config.trigger.clone(),
        count: u64::from(config.count),
        emitted: answer.emitted,
        failed: answer.failed,
        emit_ms: answer.elapsed_ms,
        trigger_ms,
        all_received_ms: all_received_us.map(|us| us as f64 / 1000.0),
        last_delivery_ms: (report.received > 0)
            .then(|| last_us.saturating_sub(trigger_us) as f64 / 1000.0),
        received_per_member,
        out_of_order_per_member: per_member(|t| t.out_of_order.load(Relaxed)),
    });
    Ok(report)
}

fn micros_to_s(micros: u64) -> f64 {
    micros as f64 / 1e6
}

/// Sends the trigger and waits for its answer, then for every joined member to hold every
/// emitted broadcast, all within `--max-wait`. Returns the answer, the trigger's round trip
/// in milliseconds, and, when everything arrived, the time from the trigger to the last
/// member's last missing broadcast in microseconds.
async fn trigger_and_wait(
    config: &BurstConfig,
    shared: &Shared,
    room: &str,
    joined: &[u32],
) -> Result<(Answer, f64, Option<u64>), Error> {
    let mut body = json!({ "room": room, "count": config.count });
    if let Some(tenant) = &config.tenant {
        body["tenant"] = json!(tenant);
    }
    let deadline = Instant::now() + config.max_wait;
    let trigger_us = shared.clock.micros();
    shared.trigger_us.store(trigger_us, Relaxed);
    let answer = post_json(
        &config.trigger,
        TRIGGER_PATH,
        None,
        &body,
        MAX_ANSWER,
        config.max_wait,
    )
    .await;
    let trigger_ms = shared.clock.micros().saturating_sub(trigger_us) as f64 / 1000.0;
    let answer = read_answer(&config.trigger, answer)?;
    let tallies: Vec<&Tally> = joined
        .iter()
        .filter_map(|member| {
            shared
                .tallies
                .get(usize::try_from(*member).unwrap_or(usize::MAX))
        })
        .collect();
    let complete = || {
        tallies
            .iter()
            .all(|tally| tally.received.load(Relaxed) >= answer.emitted)
    };
    while !complete() && Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
    }
    let all_received = complete().then(|| {
        tallies
            .iter()
            .map(|tally| tally.last_us.load(Relaxed))
            .max()
            .unwrap_or(trigger_us)
            .saturating_sub(trigger_us)
    });
    Ok((answer, trigger_ms, all_received))
}

/// The trigger's answer, or why the run cannot go on.
fn read_answer(
    trigger: &str,
    answer: Result<(hyper::StatusCode, bytes::Bytes), ClientError>,
) -> Result<Answer, Error> {
    let (status, body) = answer.map_err(|e| match e {
        ClientError::Timeout => Error::Setup(format!(
            "{trigger}{TRIGGER_PATH} did not answer within --max-wait"
        )),
        other => Error::Setup(format!("{trigger}{TRIGGER_PATH}: {other}")),
    })?;
    if !status.is_success() {
        return Err(Error::Setup(format!(
            "{trigger}{TRIGGER_PATH}: HTTP {status}: {:.200} (is the server started with its \
             bench endpoints enabled?)",
            String::from_utf8_lossy(&body)
        )));
    }
    serde_json::from_slice(&body).map_err(|e| {
        Error::Setup(format!(
            "{trigger}{TRIGGER_PATH}: unexpected answer ({e}): {:.200}",
            String::from_utf8_lossy(&body)
        ))
    })
}

/// One member's receiving side, run on its connection's reader task.
struct Member {
    shared: Arc<Shared>,
    member: u32,
    track: SeqTrack,
}

impl EventHandler for Member {
    fn on_event(&mut self, event: RawEvent<'_>) -> Result<(), ClientError> {
        let shared = &self.shared;
        if !shared.stats.counting() {
            return Ok(());
        }
        let counters = &shared.stats.counters;
        let probe = match Probe::in_message(event) {
            Received::Other => return Ok(()),
            Received::Probe(probe) if probe.sender == 0 && probe.seq < shared.count => probe,
            Received::Probe(_) | Received::Unreadable => {
                Counters::bump(&counters.bad_message);
                return Ok(());
            }
        };
        let Some(tally) = shared
            .tallies
            .get(usize::try_from(self.member).unwrap_or(usize::MAX))
        else {
            return Ok(());
        };
        let delivery = self.track.observe(probe.seq);
        if delivery == Delivery::Duplicate {
            Counters::bump(&counters.duplicates);
            return Ok(());
        }
        let now = shared.clock.micros();
        Counters::bump(&counters.received);
        tally.received.fetch_add(1, Relaxed);
        tally.last_us.store(now, Relaxed);
        if delivery == Delivery::OutOfOrder {
            Counters::bump(&counters.out_of_order);
            tally.out_of_order.fetch_add(1, Relaxed);
        }
        let sent = shared
            .trigger_us
            .load(Relaxed)
            .saturating_add(probe.sent_us);
        shared
            .stats
            .latency
            .record_micros(self.member, now.saturating_sub(sent));
        Ok(())
    }

    fn on_close(&mut self, end: ClientError) {
        self.shared.stats.disconnected(self.member, &end);
    }
}
