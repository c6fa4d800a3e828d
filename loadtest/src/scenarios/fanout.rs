//! The fan-out engine behind `chat` and `broadcast`: users connect and join their room,
//! then senders emit probes at a fixed rate while every member records what it receives.
//!
//! Accounting: a message counts as owed to its room once written to the socket, unless its
//! ack is `{error}`; `expected` is, over rooms, the messages owed times the members that
//! joined minus one. Receivers count distinct (receiver, sender, seq) deliveries only, and
//! ignore their own echoes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};

use super::join;
use crate::Error;
use crate::config::Common;
use crate::fleet::Fleet;
use crate::placement::Placement;
use crate::probe::{Clock, Probe, Received};
use crate::progress::Progress;
use crate::report::Report;
use crate::sequence::{Delivery, Peers};
use crate::stats::{Counters, Stats};
use crate::sysinfo;
use crate::window::{Window, bytes_per};
use socketio_client::{ClientError, Connection, EventHandler, RawEvent};

/// Between the schedule's publication and the first send, so every user has it in time.
const START_DELAY: Duration = Duration::from_millis(100);
/// Highest sending rate per user, messages per second.
const MAX_RATE: f64 = 10_000.0;
/// Longest settle time.
const MAX_SETTLE: Duration = Duration::from_secs(600);
/// Largest message text, bytes.
const MAX_BODY_BYTES: usize = 1 << 20;

/// Who is in which room and who sends.
#[derive(Debug, Clone, Copy)]
pub(super) enum Layout {
    /// Users `i*size .. (i+1)*size` form room `i` (the last room takes the remainder);
    /// everyone sends.
    Rooms {
        /// Members per room.
        size: u32,
        /// Each room's members on this many consecutive URLs ([`Placement::Rooms`]);
        /// `None`: every user round-robin over all URLs.
        span: Option<u32>,
    },
    /// One room of every user; users `0..senders` send.
    OneRoom {
        /// How many users send.
        senders: u32,
    },
}

/// A fan-out run, as the scenario configs describe it.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub(super) scenario: &'static str,
    pub(super) common: Common,
    pub(super) users: u32,
    pub(super) layout: Layout,
    /// Messages per second per sender.
    pub(super) rate: f64,
    pub(super) duration: Duration,
    pub(super) body_bytes: usize,
    pub(super) settle: Duration,
}

impl Plan {
    fn validate(&self) -> Result<(), Error> {
        super::validate(&self.common, self.users, self.duration)?;
        crate::config::positive("--rate", self.rate)?;
        if self.rate > MAX_RATE {
            return Err(Error::Config(format!(
                "--rate must be at most {MAX_RATE}/s"
            )));
        }
        if self.settle > MAX_SETTLE {
            return Err(Error::Config("--settle must be at most 10m".to_owned()));
        }
        if !(1..=MAX_BODY_BYTES).contains(&self.body_bytes) {
            return Err(Error::Config(format!(
                "--body-bytes must be between 1 and {MAX_BODY_BYTES}"
            )));
        }
        match self.layout {
            Layout::Rooms { size, .. } if size < 2 => {
                Err(Error::Config("--room-size must be at least 2".to_owned()))
            }
            Layout::Rooms {
                span: Some(span), ..
            } if span == 0
                || usize::try_from(span).unwrap_or(usize::MAX) > self.common.urls.len() =>
            {
                Err(Error::Config(
                    "--instances-per-room must be between 1 and the number of URLs".to_owned(),
                ))
            }
            Layout::OneRoom { senders } if senders == 0 || senders > self.users => Err(
                Error::Config("--senders must be between 1 and --users".to_owned()),
            ),
            _ => Ok(()),
        }
    }

    /// Which URL each user connects to.
    fn placement(&self) -> Placement {
        match self.layout {
            Layout::Rooms {
                size,
                span: Some(span),
            } => Placement::Rooms { size, span },
            _ => Placement::RoundRobin,
        }
    }

    fn rooms(&self) -> u32 {
        match self.layout {
            Layout::Rooms { size, .. } => self.users.div_ceil(size),
            Layout::OneRoom { .. } => 1,
        }
    }

    fn room_of(&self, user: u32) -> u32 {
        match self.layout {
            Layout::Rooms { size, .. } => user / size,
            Layout::OneRoom { .. } => 0,
        }
    }

    fn sends(&self, user: u32) -> bool {
        match self.layout {
            Layout::Rooms { .. } => true,
            Layout::OneRoom { senders } => user < senders,
        }
    }

    /// The highest sequence number a sender can reach; anything above is garbage.
    fn max_seq(&self) -> u32 {
        let most = (self.rate * self.duration.as_secs_f64()).ceil() + 1.0;
        if most >= f64::from(u32::MAX) {
            u32::MAX
        } else {
            most as u32
        }
    }
}

/// When sending starts and stops, and when the run ends.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    start: Instant,
    stop_sending: Instant,
    end: Instant,
}

/// A user's setup outcome.
enum Setup {
    Joined { room: u32 },
    Failed,
}

/// What every user task and receiver of one run shares.
struct Run {
    plan: Plan,
    fleet: Fleet,
    stats: Arc<Stats>,
    clock: Clock,
    /// [`Plan::max_seq`], computed once.
    max_seq: u32,
    room_names: Vec<String>,
    /// Per room: messages sent and not refused by an error ack.
    owed: Vec<AtomicU64>,
    setup: mpsc::UnboundedSender<Setup>,
}

/// Runs `plan` to its end and reports.
pub(super) async fn run(plan: Plan) -> Result<Report, Error> {
    plan.validate()?;
    let stats = Arc::new(Stats::default());
    let fleet = Fleet::new(&plan.common, stats.clone()).with_placement(plan.placement());
    let polling_users = fleet.polling_users(plan.users);
    super::prepare(&plan.common, plan.users, polling_users)?;
    let run_id = super::run_id();
    let rss_before = sysinfo::own_usage()?.rss_bytes;
    let progress = Progress::start(!plan.common.no_progress, stats.clone(), plan.users);

    let (setup, mut setup_rx) = mpsc::unbounded_channel();
    let (schedule_tx, schedule_rx) = watch::channel(None);
    let setup_deadline =
        Instant::now() + fleet.connect_budget(plan.users) + join::BUDGET + super::SLACK;
    let run = Arc::new(Run {
        room_names: (0..plan.rooms())
            .map(|n| format!("lt-{run_id}-{n}"))
            .collect(),
        owed: (0..plan.rooms()).map(|_| AtomicU64::new(0)).collect(),
        max_seq: plan.max_seq(),
        plan,
        fleet,
        stats: stats.clone(),
        clock: Clock::start(),
        setup,
    });
    let mut users = JoinSet::new();
    for user in 0..run.plan.users {
        users.spawn(user_task(run.clone(), user, schedule_rx.clone()));
    }

    let mut joined = vec![0u64; run.room_names.len()];
    for report in super::collect_setup(&mut setup_rx, run.plan.users, setup_deadline).await {
        if let Setup::Joined { room } = report {
            if let Some(members) = joined.get_mut(usize::try_from(room).unwrap_or(usize::MAX)) {
                *members += 1;
            }
        }
    }
    let connected = super::ensure_connected(&stats)?;
    let rss_after = sysinfo::own_usage()?.rss_bytes;

    let window = Window::open(&run.plan.common.server_pids)?;
    let start = Instant::now() + START_DELAY;
    let stop_sending = start + run.plan.duration;
    let schedule = Schedule {
        start,
        stop_sending,
        end: stop_sending + run.plan.settle,
    };
    schedule_tx.send_replace(Some(schedule));
    sleep_until(schedule.end).await;
    let spent = window.close();
    stats.stop_counting();
    // Users stop at the end by themselves, after counting their missing acks.
    let _ = tokio::time::timeout(super::SLACK, async {
        while users.join_next().await.is_some() {}
    })
    .await;
    users.abort_all();
    progress.finish();

    let expected = run
        .owed
        .iter()
        .zip(&joined)
        .map(|(owed, members)| owed.load(Relaxed) * members.saturating_sub(1))
        .sum();
    let mut report = Report::new(
        run.plan.scenario,
        &run_id,
        &run.plan.common.urls,
        &stats,
        &spent,
    );
    report.users = u64::from(run.plan.users);
    report.polling_users = polling_users;
    report.loadtest_rss_per_socket_bytes = bytes_per(rss_before, rss_after, connected);
    report.set_deliveries(expected, run.plan.duration.as_secs_f64());
    Ok(report)
}

/// One user: connect, join, then send (if a sender) until the schedule ends.
async fn user_task(run: Arc<Run>, user: u32, mut schedule: watch::Receiver<Option<Schedule>>) {
    let receiver = Receiver {
        run: run.clone(),
        user,
        peers: Peers::default(),
    };
    let Some(connection) = run.fleet.connect(user, receiver).await else {
        let _ = run.setup.send(Setup::Failed);
        return;
    };
    let room = run.plan.room_of(user);
    let room_name = run
        .room_names
        .get(usize::try_from(room).unwrap_or(usize::MAX))
        .map_or("", String::as_str);
    if !join::join(&connection, room_name, &run.stats).await {
        Counters::bump(&run.stats.counters.join_failed);
        let _ = run.setup.send(Setup::Failed);
        return;
    }
    if run.setup.send(Setup::Joined { room }).is_err() {
        return; // setup is over: the run goes on without this user
    }
    let Ok(schedule) = schedule.wait_for(Option::is_some).await.map(|s| *s) else {
        return;
    };
    let Some(schedule) = schedule else {
        return;
    };
    if run.plan.sends(user) {
        send_loop(&run, &connection, user, room, room_name, schedule).await;
    } else {
        sleep_until(schedule.end).await;
    }
}

/// Sends probes at the plan's rate from a random phase until `stop_sending`, without waiting
/// for acks between sends; accounts acks as they come; stops at the schedule's end.
async fn send_loop(
    run: &Run,
    connection: &Connection,
    user: u32,
    room: u32,
    room_name: &str,
    schedule: Schedule,
) {
    #[derive(Serialize)]
    struct Message<'a> {
        room: &'a str,
        text: &'a str,
    }
    let counters = &run.stats.counters;
    let owed = run.owed.get(usize::try_from(room).unwrap_or(usize::MAX));
    let period = Duration::from_secs_f64(1.0 / run.plan.rate);
    let mut next = schedule.start + period.mul_f64(rand::random::<f64>());
    let mut seq = 0u32;
    let mut writable = true;
    let mut acks = FuturesUnordered::new();
    let end = sleep_until(schedule.end);
    tokio::pin!(end);
    loop {
        tokio::select! {
            () = &mut end => break,
            () = sleep_until(next), if writable && next < schedule.stop_sending => {
                next += period;
                let sent_at = Instant::now();
                let text = Probe { sender: user, seq, sent_us: run.clock.micros() }
                    .encode(run.plan.body_bytes);
                match connection.emit_acked("message", &Message { room: room_name, text: &text }).await {
                    Ok(pending) => {
                        seq += 1;
                        Counters::bump(&counters.sent);
                        if let Some(owed) = owed {
                            owed.fetch_add(1, Relaxed);
                        }
                        let timeout = run.plan.common.timeout;
                        acks.push(async move { (sent_at, pending.wait(timeout).await) });
                    }
                    Err(_) => {
                        Counters::bump(&counters.send_failed);
                        writable = false;
                    }
                }
            }
            Some((sent_at, ack)) = acks.next(), if !acks.is_empty() => match ack {
                Ok(ack) if ack.get("error").is_some() => {
                    Counters::bump(&counters.ack_error);
                    if let Some(owed) = owed {
                        owed.fetch_sub(1, Relaxed);
                    }
                }
                Ok(_) => run.stats.ack.record(user, sent_at.elapsed()),
                Err(ClientError::Timeout) => Counters::bump(&counters.ack_timeout),
                Err(_) => Counters::bump(&counters.ack_lost),
            },
        }
    }
    counters.ack_timeout.fetch_add(acks.len() as u64, Relaxed);
}

/// One user's receiving side, run on its connection's reader task.
struct Receiver {
    run: Arc<Run>,
    user: u32,
    peers: Peers,
}

impl EventHandler for Receiver {
    fn on_event(&mut self, event: RawEvent<'_>) -> Result<(), ClientError> {
        let run = &self.run;
        if !run.stats.counting() {
            return Ok(());
        }
        let probe = match Probe::in_message(event) {
            Received::Other => return Ok(()), // welcome, typing, ...
            Received::Probe(probe) => Some(probe),
            Received::Unreadable => None,
        };
        let counters = &run.stats.counters;
        match probe.filter(|p| p.sender < run.plan.users && p.seq <= run.max_seq) {
            None => Counters::bump(&counters.bad_message),
            Some(probe) if probe.sender == self.user => {} // our own echo
            Some(probe) => match self.peers.observe(probe.sender, probe.seq) {
                Delivery::Duplicate => Counters::bump(&counters.duplicates),
                delivery => {
                    Counters::bump(&counters.received);
                    if delivery == Delivery::OutOfOrder {
                        Counters::bump(&counters.out_of_order);
                    }
                    let latency = run.clock.micros().saturating_sub(probe.sent_us);
                    run.stats.latency.record_micros(self.user, latency);
                }
            },
        }
        Ok(())
    }

    fn on_close(&mut self, end: ClientError) {
        self.run.stats.disconnected(self.user, &end);
    }
}
