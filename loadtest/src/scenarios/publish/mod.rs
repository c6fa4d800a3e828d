//! `publish`: `--users` members join rooms of `--room-size` (`lt-<run id>-<n>`, the last
//! room takes the remainder), then a publisher from outside the Socket.IO connections
//! publishes event `--event` to those rooms at `--rate` per second (publish `i` to room
//! `i mod rooms`), for `--duration` and at most `--count` publishes, and the members record
//! what they receive: latency from the publish call to receipt, loss, duplicates and
//! out-of-order deliveries, and the publishes per second the publisher got accepted.
//!
//! Publishers (`--via`): `http`, our gateway's `POST /api/v1/publish` from this process
//! ([`http`]); `emitter`, the official `@socket.io/redis-emitter` in a Node script
//! ([`emitter`]), for Node's socket.io with `@socket.io/redis-adapter` and for a gateway that
//! reads the emitter. Each event's data is a [`Tick`] whose send time is the wall clock, the
//! one clock this process and the emitter script share.

mod emitter;
mod http;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::Error;
use crate::config::{Common, parse_rate};
use crate::fleet::Fleet;
use crate::pacing::Pacing;
use crate::progress::Progress;
use crate::report::{PublishFigures, Report};
use crate::sequence::{Delivery, SeqTrack};
use crate::stats::{Counters, Reasons, Stats};
use crate::tick::{Heard, Tick, wall_micros};
use crate::window::Window;
use socketio_client::{ClientError, EventHandler, RawEvent};

use super::members;

/// Highest publishing rate, publishes per second.
const MAX_RATE: f64 = 100_000.0;
/// Longest settle time.
const MAX_SETTLE: Duration = Duration::from_secs(600);
/// Largest padding of an event's data, bytes.
const MAX_PAD_BYTES: usize = 1 << 20;
/// Most HTTP requests in flight at once.
const MAX_IN_FLIGHT: u32 = 10_000;

/// Who publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Via {
    /// Our gateway's HTTP publish API, `POST /api/v1/publish`, from this process.
    Http,
    /// The official `@socket.io/redis-emitter`, in a Node script publishing to Redis.
    Emitter,
}

/// The `publish` scenario's flags.
#[derive(Debug, Clone, Args)]
pub struct PublishConfig {
    /// Where the members connect, and how.
    #[command(flatten)]
    pub common: Common,

    /// Members (one socket each), named `u<i>`.
    #[arg(long)]
    pub users: u32,

    /// Members per room; rooms are `lt-<run id>-<n>`, the last one takes the remainder.
    #[arg(long)]
    pub room_size: u32,

    /// Publishes per second over all rooms (`100` or `100/s`); publish i goes to room
    /// i mod rooms.
    #[arg(long, value_parser = parse_rate)]
    pub rate: f64,

    /// How long the publisher publishes (`20s`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Duration,

    /// Most publishes; default: --rate × --duration.
    #[arg(long)]
    pub count: Option<u64>,

    /// The published event's name.
    #[arg(long, default_value = "tick")]
    pub event: String,

    /// Bytes of padding in each event's data (`pad`), on top of the tick.
    #[arg(long, default_value_t = 0)]
    pub pad_bytes: usize,

    /// How long to wait for late deliveries after the last publish was answered.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub settle: Duration,

    /// Who publishes: `http` (our gateway's publish API) or `emitter` (the official
    /// @socket.io/redis-emitter, from a Node script).
    #[arg(long, value_enum)]
    pub via: Via,

    /// `--via http`: the API's base URL (default: the first --url).
    #[arg(long)]
    pub api_url: Option<String>,

    /// `--via http`: the API key, sent as `Authorization: Bearer <key>` (`gateway api-key
    /// create` prints one).
    #[arg(long, env = "LOADTEST_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// `--via http`: most publish requests in flight at once, each on a kept-alive
    /// connection of its own.
    #[arg(long, default_value_t = 64)]
    pub max_in_flight: u32,

    /// `--via emitter`: the Redis the Socket.IO servers share, `redis://host:port`.
    #[arg(long)]
    pub redis_url: Option<String>,

    /// `--via emitter`: the room name the emitter publishes to, `{room}` standing for the
    /// members' room: `{room}` for Node's socket.io with @socket.io/redis-adapter,
    /// `t:<tenant>:r:{room}` for our gateway.
    #[arg(long, default_value = "{room}")]
    pub room_template: String,

    /// `--via emitter`: the emitter's `key`, the channel prefix the servers' adapter uses.
    #[arg(long, default_value = "socket.io")]
    pub emitter_key: String,

    /// `--via emitter`: the publisher script.
    #[arg(long, default_value = emitter::DEFAULT_SCRIPT)]
    pub emitter_script: PathBuf,

    /// `--via emitter`: the Node.js binary that runs it.
    #[arg(long, default_value = "node")]
    pub node: PathBuf,
}

impl PublishConfig {
    /// A run of `users` in rooms of `room_size`, published to at `rate` for `duration` by
    /// `via`, with every other flag at its default (`--via http` still needs `api_key`,
    /// `--via emitter` `redis_url`).
    pub fn new(
        common: Common,
        users: u32,
        room_size: u32,
        rate: f64,
        duration: Duration,
        via: Via,
    ) -> Self {
        Self {
            common,
            users,
            room_size,
            rate,
            duration,
            count: None,
            event: "tick".to_owned(),
            pad_bytes: 0,
            settle: Duration::from_secs(2),
            via,
            api_url: None,
            api_key: None,
            max_in_flight: 64,
            redis_url: None,
            room_template: "{room}".to_owned(),
            emitter_key: "socket.io".to_owned(),
            emitter_script: PathBuf::from(emitter::DEFAULT_SCRIPT),
            node: PathBuf::from("node"),
        }
    }

    /// Planned publishes: [`Pacing::planned`] of the rate, duration and count.
    fn pacing(&self) -> Pacing {
        Pacing {
            rate: self.rate,
            count: self.count.unwrap_or(u64::MAX),
            duration: self.duration,
        }
    }

    fn rooms(&self) -> u32 {
        self.users.div_ceil(self.room_size.max(1))
    }

    fn validate(&self) -> Result<(), Error> {
        super::validate(&self.common, self.users, self.duration)?;
        crate::config::positive("--rate", self.rate)?;
        if self.rate > MAX_RATE {
            return Err(Error::Config(format!(
                "--rate must be at most {MAX_RATE}/s"
            )));
        }
        if self.room_size == 0 {
            return Err(Error::Config("--room-size must be at least 1".to_owned()));
        }
        if self.pacing().planned() == 0 {
            return Err(Error::Config(
                "--count and --duration leave nothing to publish".to_owned(),
            ));
        }
        if self.event.is_empty() {
            return Err(Error::Config("--event must not be empty".to_owned()));
        }
        if self.pad_bytes > MAX_PAD_BYTES {
            return Err(Error::Config(format!(
                "--pad-bytes must be at most {MAX_PAD_BYTES}"
            )));
        }
        if self.settle > MAX_SETTLE {
            return Err(Error::Config("--settle must be at most 10m".to_owned()));
        }
        match self.via {
            Via::Http => {
                if self.api_key.as_deref().is_none_or(str::is_empty) {
                    return Err(Error::Config(
                        "--via http needs --api-key (or LOADTEST_API_KEY)".to_owned(),
                    ));
                }
                if let Some(url) = &self.api_url {
                    self.common.validate_target("--api-url", url)?;
                }
                if !(1..=MAX_IN_FLIGHT).contains(&self.max_in_flight) {
                    return Err(Error::Config(format!(
                        "--max-in-flight must be between 1 and {MAX_IN_FLIGHT}"
                    )));
                }
            }
            Via::Emitter => {
                let url = self
                    .redis_url
                    .as_deref()
                    .ok_or_else(|| Error::Config("--via emitter needs --redis-url".to_owned()))?;
                self.common.validate_redis_url("--redis-url", url)?;
                if !self.room_template.contains("{room}") {
                    return Err(Error::Config(
                        "--room-template must contain {room}".to_owned(),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// What a publisher did.
#[derive(Debug, Default)]
struct Published {
    /// Publishes handed to the server (requests sent, emits made).
    attempted: u64,
    /// Publishes the server accepted (2xx, PUBLISH answered).
    accepted: u64,
    /// Per room: publishes its members are owed, accepted or in doubt (no answer in time).
    owed: Vec<u64>,
    /// From the first publish to the last answer.
    elapsed: Duration,
    /// Publishes refused or failed, by status (`429`, `503`, `timeout`, `connect`, ...).
    failures: Reasons,
}

/// Runs the publish scenario to its end. Fails when it cannot be set up (invalid flags,
/// nobody connected or joined, an emitter script that does not start); losses and refused
/// publishes are in the report.
pub async fn run(config: &PublishConfig) -> Result<Report, Error> {
    config.validate()?;
    let stats = Arc::new(Stats::default());
    let fleet = Arc::new(Fleet::new(&config.common, stats.clone()));
    let polling = fleet.polling_users(config.users);
    super::prepare(&config.common, config.users, polling)?;
    let run_id = super::run_id();
    let rooms = config.rooms();
    let names: Vec<Arc<str>> = (0..rooms)
        .map(|n| format!("lt-{run_id}-{n}").into())
        .collect();
    let pacing = config.pacing();
    // Started first: a script that cannot start fails the run before anyone connects.
    let emitter = match config.via {
        Via::Emitter => Some(emitter::Emitter::start(config, &run_id, rooms, pacing).await?),
        Via::Http => None,
    };
    let progress = Progress::start(!config.common.no_progress, stats.clone(), config.users);
    let heard = Arc::new(Hearing {
        stats: stats.clone(),
        event: config.event.clone(),
        rooms,
        seq_limit: seq_limit(pacing.planned(), rooms),
    });
    let room_of = |member: u32| member / config.room_size.max(1);
    let members = members::join_all(
        &fleet,
        &stats,
        config.users,
        |member| {
            names
                .get(index(room_of(member)))
                .cloned()
                .unwrap_or_default()
        },
        |member| Listener {
            heard: heard.clone(),
            member,
            room: room_of(member),
            track: SeqTrack::default(),
        },
    )
    .await?;

    let window = Window::open(&config.common.server_pids)?;
    let published = match emitter {
        Some(emitter) => emitter.publish().await?,
        None => http::publish(config, &names, pacing, &stats).await?,
    };
    tokio::time::sleep(config.settle).await;
    let spent = window.close();
    stats.stop_counting();
    let joined = members.release().await;
    progress.finish();

    let mut in_room = vec![0u64; names.len()];
    for member in joined {
        if let Some(count) = in_room.get_mut(index(room_of(member))) {
            *count += 1;
        }
    }
    let mut report = Report::new("publish", &run_id, &config.common.urls, &stats, &spent);
    report.users = u64::from(config.users);
    report.polling_users = polling;
    report.sent = published.attempted;
    // The schedule's length, or longer when the answers trailed beyond it: a publisher that
    // kept up is credited with the rate it was asked for, not with n over n - 1 intervals.
    let publishing_s = published
        .elapsed
        .as_secs_f64()
        .max(pacing.planned() as f64 / config.rate);
    report.set_deliveries(expected(&published.owed, &in_room), publishing_s);
    let (failures, failure_sample) = published.failures.snapshot();
    report.publish = Some(PublishFigures {
        via: config
            .via
            .to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_owned()),
        event: config.event.clone(),
        rooms: u64::from(rooms),
        room_size: u64::from(config.room_size),
        rate: config.rate,
        planned: pacing.planned(),
        attempted: published.attempted,
        accepted: published.accepted,
        publishing_s,
        publishes_per_sec: PublishFigures::per_second(published.accepted, publishing_s),
        failures,
        failure_sample,
    });
    Ok(report)
}

/// Deliveries owed: over rooms, the publishes owed to the room times the members that
/// joined it.
fn expected(owed: &[u64], members: &[u64]) -> u64 {
    owed.iter()
        .zip(members)
        .map(|(owed, members)| owed.saturating_mul(*members))
        .fold(0, u64::saturating_add)
}

/// One past the highest per-room sequence number `planned` publishes over `rooms` rooms
/// can reach.
fn seq_limit(planned: u64, rooms: u32) -> u32 {
    let per_room = planned.div_ceil(u64::from(rooms.max(1)));
    u32::try_from(per_room).unwrap_or(u32::MAX)
}

fn index(room: u32) -> usize {
    usize::try_from(room).unwrap_or(usize::MAX)
}

/// What every member's listener shares.
struct Hearing {
    stats: Arc<Stats>,
    event: String,
    rooms: u32,
    seq_limit: u32,
}

/// One member's receiving side, run on its connection's reader task.
struct Listener {
    heard: Arc<Hearing>,
    member: u32,
    room: u32,
    track: SeqTrack,
}

impl EventHandler for Listener {
    fn on_event(&mut self, event: RawEvent<'_>) -> Result<(), ClientError> {
        let heard = &self.heard;
        if !heard.stats.counting() {
            return Ok(());
        }
        let counters = &heard.stats.counters;
        let tick = match Tick::heard(event, &heard.event) {
            Heard::Other => return Ok(()),
            Heard::Tick(tick)
                if tick.room == self.room
                    && tick.room < heard.rooms
                    && tick.seq < heard.seq_limit =>
            {
                tick
            }
            Heard::Tick(_) | Heard::Unreadable => {
                Counters::bump(&counters.bad_message);
                return Ok(());
            }
        };
        match self.track.observe(tick.seq) {
            Delivery::Duplicate => Counters::bump(&counters.duplicates),
            delivery => {
                Counters::bump(&counters.received);
                if delivery == Delivery::OutOfOrder {
                    Counters::bump(&counters.out_of_order);
                }
                let latency = wall_micros().saturating_sub(tick.sent_us);
                heard.stats.latency.record_micros(self.member, latency);
            }
        }
        Ok(())
    }

    fn on_close(&mut self, end: ClientError) {
        self.heard.stats.disconnected(self.member, &end);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use clap::Parser;

    use super::*;
    use crate::config::{Cli, Command};

    fn parse(args: &[&str]) -> PublishConfig {
        let base = ["loadtest", "publish", "--url", "http://127.0.0.1:1"];
        let cli = Cli::try_parse_from(base.iter().chain(args)).unwrap();
        let Command::Publish { config, .. } = cli.command else {
            panic!("expected publish");
        };
        config
    }

    #[test]
    fn expected_deliveries_are_the_publishes_owed_times_the_members_in_each_room() {
        assert_eq!(expected(&[10, 10, 9], &[5, 5, 2]), 10 * 5 + 10 * 5 + 9 * 2);
        assert_eq!(expected(&[7, 3], &[0, 4]), 12);
        assert_eq!(expected(&[], &[]), 0);
    }

    #[test]
    fn sequence_numbers_above_the_rooms_share_are_garbage() {
        // 10 publishes over 3 rooms: room 0 gets seq 0..=3, the others 0..=2.
        assert_eq!(seq_limit(10, 3), 4);
        assert_eq!(seq_limit(9, 3), 3);
        assert_eq!(seq_limit(0, 3), 0);
    }

    #[test]
    fn the_command_line_parses_and_is_checked() {
        let config = parse(&[
            "--users",
            "25",
            "--room-size",
            "10",
            "--rate",
            "100/s",
            "--duration",
            "2s",
            "--via",
            "http",
            "--api-key",
            "k",
        ]);
        assert_eq!(config.rooms(), 3);
        assert_eq!(config.pacing().planned(), 200);
        assert_eq!(config.max_in_flight, 64);
        assert_eq!(config.event, "tick");
        assert!(config.validate().is_ok());

        let mut no_key = config.clone();
        no_key.api_key = None;
        assert!(no_key.validate().is_err());
        let mut remote = config.clone();
        remote.api_url = Some("http://10.0.0.1:3000".to_owned());
        assert!(remote.validate().is_err());

        let emitter = parse(&[
            "--users",
            "4",
            "--room-size",
            "2",
            "--rate",
            "10",
            "--duration",
            "1s",
            "--count",
            "5",
            "--via",
            "emitter",
            "--redis-url",
            "redis://127.0.0.1:6379",
            "--room-template",
            "t:bench:r:{room}",
        ]);
        assert_eq!(emitter.pacing().planned(), 5);
        assert!(emitter.validate().is_ok());
        let mut remote = emitter.clone();
        remote.redis_url = Some("redis://user:pw@192.168.1.2:6379/0".to_owned());
        assert!(remote.validate().is_err());
        let mut untemplated = emitter.clone();
        untemplated.room_template = "t:bench:r:x".to_owned();
        assert!(untemplated.validate().is_err());
        let mut none = emitter;
        none.count = Some(0);
        assert!(none.validate().is_err());
    }
}
