//! The report of a run: its JSON shape ([`Report`]), the plain-text summary table (its
//! `Display`), and the thresholds a run is held to ([`Thresholds`], [`Report::judge`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::Error;
use crate::stats::{Counters, Quantiles, Stats};
use crate::window::Spent;

/// The outcome of one run. Serialized as the `--json` file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// `chat`, `broadcast`, `burst`, `publish`, `connect` or `idle`.
    pub scenario: String,
    /// The run id, part of every room name (`lt-<run_id>-<n>`).
    pub run_id: String,
    /// The target URLs.
    pub urls: Vec<String>,
    /// Users (connections) asked for.
    pub users: u64,
    /// Users on HTTP long-polling.
    pub polling_users: u64,
    /// Users connected.
    pub connected: u64,
    /// Users whose connection failed.
    pub connect_failures: u64,
    /// Connection failures by reason (`connect`, `timeout`, `connect_refused`, ...).
    pub connect_failure_reasons: BTreeMap<String, u64>,
    /// The first connection failure's message.
    pub connect_failure_sample: Option<String>,
    /// Connection handshake times.
    pub connect_ms: Quantiles,
    /// Sending duration (chat, broadcast) or hold duration (connect, idle), seconds.
    pub duration_s: f64,
    /// Messages written to a socket.
    pub sent: u64,
    /// Deliveries owed: for every message sent and not refused by an error ack, the members
    /// of its room that joined, minus the sender.
    pub expected: u64,
    /// Unique deliveries: distinct (receiver, sender, seq).
    pub received: u64,
    /// `expected - received` (negative only when members got messages that were error-acked).
    pub loss: i64,
    /// Deliveries of a message the receiver already had.
    pub duplicates: u64,
    /// Unique deliveries that came after a later message of the same sender.
    pub out_of_order: u64,
    /// `received / duration_s`.
    pub deliveries_per_sec: f64,
    /// Send-to-receipt latency of unique deliveries.
    pub latency_ms: Quantiles,
    /// Send-to-ack latency.
    pub ack_ms: Quantiles,
    /// Sum of `error_counts`.
    pub errors: u64,
    /// Errors after the connections were set up, by kind.
    pub error_counts: ErrorCounts,
    /// The first disconnection's reason, if any connection ended during the run.
    pub disconnect_sample: Option<String>,
    /// `join` attempts repeated because the ack did not come within 1 s.
    pub join_retries: u64,
    /// This process's CPU time in the measured window, seconds.
    pub loadtest_cpu_s: f64,
    /// This process's CPU time per unique delivery, microseconds (`null` without deliveries).
    pub loadtest_cpu_us_per_delivery: Option<f64>,
    /// This process's RSS at the end of the window, bytes.
    pub loadtest_rss_bytes: u64,
    /// This process's RSS growth per connected socket while connecting, bytes.
    pub loadtest_rss_per_socket_bytes: Option<f64>,
    /// The servers' figures, with `--server-pid`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerFigures>,
    /// Server RSS growth per connection (idle, with `--server-pid`), bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_per_connection_bytes: Option<f64>,
    /// The emitting server's and the members' figures of a `burst` run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst: Option<BurstFigures>,
    /// The publisher's figures of a `publish` run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish: Option<PublishFigures>,
    /// The thresholds' verdict, once judged.
    pub thresholds: Verdict,
}

/// What the servers given with `--server-pid` used, summed over them.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ServerFigures {
    /// CPU time in the measured window, seconds.
    pub server_cpu_s: f64,
    /// CPU time per unique delivery, microseconds (`null` without deliveries).
    pub server_cpu_us_per_delivery: Option<f64>,
    /// RSS at the end of the window, bytes.
    pub server_rss_bytes: u64,
}

/// What a `burst` run measured beyond the common fields: how long the emitting instance took
/// to emit, and how long until every member had every broadcast.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BurstFigures {
    /// The emitting instance's base URL.
    pub trigger: String,
    /// Broadcasts asked for.
    pub count: u64,
    /// Broadcasts the server emitted successfully (its `emitted`).
    pub emitted: u64,
    /// Broadcasts whose emit returned an error (its `failed`).
    pub failed: u64,
    /// The server's own measure of its emitting loop, milliseconds (its `elapsed_ms`).
    pub emit_ms: f64,
    /// From sending the trigger request to its answer, milliseconds.
    pub trigger_ms: f64,
    /// From sending the trigger request to the last member's receipt of its last missing
    /// broadcast, milliseconds; `null` when some member did not get everything in time.
    pub all_received_ms: Option<f64>,
    /// From sending the trigger request to the last delivery counted, complete or not,
    /// milliseconds; `null` when nothing arrived.
    pub last_delivery_ms: Option<f64>,
    /// Unique deliveries per member that joined, in member order.
    pub received_per_member: Vec<u64>,
    /// Out-of-order deliveries per member that joined, in member order.
    pub out_of_order_per_member: Vec<u64>,
}

/// What a `publish` run's publisher did, beyond the common fields (whose `sent` is the
/// publishes attempted and `ack_ms` the HTTP answer times of `--via http`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PublishFigures {
    /// `http` or `emitter`.
    pub via: String,
    /// The published event's name.
    pub event: String,
    /// Rooms published to.
    pub rooms: u64,
    /// Members per room asked for (the last room takes the remainder).
    pub room_size: u64,
    /// Publishes per second asked for.
    pub rate: f64,
    /// Publishes the schedule held (rate × duration, at most the count).
    pub planned: u64,
    /// Publishes handed to the server.
    pub attempted: u64,
    /// Publishes the server accepted: a 2xx answer (http), a PUBLISH Redis answered (emitter).
    pub accepted: u64,
    /// Publishing time, seconds: the schedule's length (planned / rate), or from the first
    /// publish to the last answer when that is longer.
    pub publishing_s: f64,
    /// `accepted / publishing_s`: the publishes per second sustained.
    pub publishes_per_sec: f64,
    /// Publishes refused or failed, by HTTP status (`429`, `503`) or kind (`timeout`,
    /// `connect`, `http`, `redis`).
    pub failures: BTreeMap<String, u64>,
    /// The first failure's message.
    pub failure_sample: Option<String>,
}

impl PublishFigures {
    /// `accepted` publishes over `seconds`, per second (0 for no time).
    pub fn per_second(accepted: u64, seconds: f64) -> f64 {
        if seconds > 0.0 {
            accepted as f64 / seconds
        } else {
            0.0
        }
    }
}

/// Errors after setup, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ErrorCounts {
    /// Users whose `join` failed.
    pub join_failed: u64,
    /// Sends that could not be written (connection gone).
    pub send_failed: u64,
    /// `{error}` acks.
    pub ack_error: u64,
    /// Acks not received within the timeout or before the end.
    pub ack_timeout: u64,
    /// Acks lost to a connection that ended.
    pub ack_lost: u64,
    /// Connections ended by the server or the network during the run.
    pub disconnected: u64,
    /// Unreadable `message` events.
    pub bad_message: u64,
}

impl ErrorCounts {
    /// The counts with their JSON names.
    fn named(&self) -> [(&'static str, u64); 7] {
        [
            ("join_failed", self.join_failed),
            ("send_failed", self.send_failed),
            ("ack_error", self.ack_error),
            ("ack_timeout", self.ack_timeout),
            ("ack_lost", self.ack_lost),
            ("disconnected", self.disconnected),
            ("bad_message", self.bad_message),
        ]
    }

    fn total(&self) -> u64 {
        self.named().iter().map(|(_, count)| count).sum()
    }
}

impl fmt::Display for ErrorCounts {
    /// The non-zero counts, `name count` separated by commas.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, count) in self.named().into_iter().filter(|(_, count)| *count > 0) {
            write!(f, "{}{name} {count}", if first { "" } else { ", " })?;
            first = false;
        }
        Ok(())
    }
}

/// Limits a run must stay within.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Thresholds {
    /// Highest acceptable p99, milliseconds: delivery latency for chat, broadcast and burst,
    /// connect time for connect and idle.
    pub max_p99_ms: Option<f64>,
    /// Highest acceptable loss, deliveries.
    pub max_loss: Option<u64>,
}

/// Whether the run met its thresholds, and which it missed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// True when every threshold held (or none was set).
    pub passed: bool,
    /// One line per missed threshold.
    pub violations: Vec<String>,
}

impl Default for Verdict {
    /// Passed: a report not judged yet has missed nothing.
    fn default() -> Self {
        Self {
            passed: true,
            violations: Vec::new(),
        }
    }
}

impl Report {
    /// The fields every scenario fills the same way, from the run's stats and window;
    /// deliveries and per-delivery costs are taken from the counters.
    pub fn new(
        scenario: &str,
        run_id: &str,
        urls: &[String],
        stats: &Stats,
        spent: &Spent,
    ) -> Self {
        let c = &stats.counters;
        let get = Counters::get;
        let (reasons, sample) = stats.connect_failures.snapshot();
        let (_, disconnect_sample) = stats.disconnects.snapshot();
        let error_counts = ErrorCounts {
            join_failed: get(&c.join_failed),
            send_failed: get(&c.send_failed),
            ack_error: get(&c.ack_error),
            ack_timeout: get(&c.ack_timeout),
            ack_lost: get(&c.ack_lost),
            disconnected: get(&c.disconnected),
            bad_message: get(&c.bad_message),
        };
        let received = get(&c.received);
        let per_delivery = |cpu: std::time::Duration| {
            (received > 0).then(|| cpu.as_secs_f64() * 1e6 / received as f64)
        };
        Self {
            scenario: scenario.to_owned(),
            run_id: run_id.to_owned(),
            urls: urls.to_vec(),
            connected: get(&c.connected),
            connect_failures: get(&c.connect_failed),
            connect_failure_reasons: reasons,
            connect_failure_sample: sample,
            connect_ms: stats.connect.quantiles(),
            sent: get(&c.sent),
            received,
            duplicates: get(&c.duplicates),
            out_of_order: get(&c.out_of_order),
            latency_ms: stats.latency.quantiles(),
            ack_ms: stats.ack.quantiles(),
            errors: error_counts.total(),
            error_counts,
            disconnect_sample,
            join_retries: get(&c.join_retries),
            loadtest_cpu_s: spent.own_cpu.as_secs_f64(),
            loadtest_cpu_us_per_delivery: per_delivery(spent.own_cpu),
            loadtest_rss_bytes: spent.own_rss_bytes,
            server: spent.servers.map(|servers| ServerFigures {
                server_cpu_s: servers.cpu.as_secs_f64(),
                server_cpu_us_per_delivery: per_delivery(servers.cpu),
                server_rss_bytes: servers.rss_bytes,
            }),
            ..Self::default()
        }
    }

    /// Sets `expected`, `loss`, `duration_s` and `deliveries_per_sec` for `expected` owed
    /// deliveries over a sending time of `duration_s`.
    pub fn set_deliveries(&mut self, expected: u64, duration_s: f64) {
        self.expected = expected;
        self.loss = i64::try_from(expected)
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::try_from(self.received).unwrap_or(i64::MAX));
        self.duration_s = duration_s;
        self.deliveries_per_sec = if duration_s > 0.0 {
            self.received as f64 / duration_s
        } else {
            0.0
        };
    }

    /// The p99 the `--max-p99` threshold applies to, with what it measures.
    fn judged_latency(&self) -> (&'static str, &Quantiles) {
        match self.scenario.as_str() {
            "connect" | "idle" => ("connect time", &self.connect_ms),
            _ => ("delivery latency", &self.latency_ms),
        }
    }

    /// Holds the report to `thresholds`, records the verdict in it and returns it.
    pub fn judge(&mut self, thresholds: &Thresholds) -> &Verdict {
        let mut violations = Vec::new();
        if let Some(limit) = thresholds.max_p99_ms {
            let (what, quantiles) = self.judged_latency();
            if quantiles.count == 0 {
                violations.push(format!("{what} p99: no samples (limit {limit} ms)"));
            } else if quantiles.p99 > limit {
                violations.push(format!(
                    "{what} p99 {:.3} ms > limit {limit} ms",
                    quantiles.p99
                ));
            }
        }
        if let Some(limit) = thresholds.max_loss {
            if self.loss > i64::try_from(limit).unwrap_or(i64::MAX) {
                violations.push(format!("loss {} > limit {limit}", self.loss));
            }
        }
        self.thresholds = Verdict {
            passed: violations.is_empty(),
            violations,
        };
        &self.thresholds
    }

    /// Writes the report as pretty JSON to `path`.
    pub fn write_json(&self, path: &Path) -> Result<(), Error> {
        let io = |source| Error::Output {
            path: path.to_owned(),
            source,
        };
        let json = serde_json::to_vec_pretty(self).map_err(|e| io(e.into()))?;
        std::fs::write(path, json).map_err(io)
    }
}

impl fmt::Display for Report {
    /// The plain-text summary table.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let row = |f: &mut fmt::Formatter<'_>, name: &str, value: String| {
            writeln!(f, "  {name:<22} {value}")
        };
        let q = |q: &Quantiles| {
            format!(
                "p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  (n={})",
                q.p50, q.p90, q.p99, q.p999, q.max, q.count
            )
        };
        writeln!(f, "loadtest {} (run {})", self.scenario, self.run_id)?;
        row(f, "targets", self.urls.join(", "))?;
        row(
            f,
            "users",
            format!(
                "{} asked, {} connected ({} long-polling), {} failed{}",
                self.users,
                self.connected,
                self.polling_users,
                self.connect_failures,
                reasons(&self.connect_failure_reasons)
            ),
        )?;
        if let Some(sample) = &self.connect_failure_sample {
            row(f, "first failure", sample.clone())?;
        }
        row(f, "connect ms", q(&self.connect_ms))?;
        row(f, "duration", format!("{:.1} s", self.duration_s))?;
        if self.sent > 0 || self.expected > 0 {
            row(f, "sent", self.sent.to_string())?;
            row(
                f,
                "deliveries",
                format!(
                    "{} expected, {} received, loss {}, {} duplicates, {} out of order",
                    self.expected, self.received, self.loss, self.duplicates, self.out_of_order
                ),
            )?;
            row(f, "deliveries/s", format!("{:.0}", self.deliveries_per_sec))?;
            row(f, "latency ms", q(&self.latency_ms))?;
            match (self.publish.is_some(), self.ack_ms.count) {
                (false, _) => row(f, "ack ms", q(&self.ack_ms))?,
                (true, 0) => {}
                (true, _) => row(f, "answer ms", q(&self.ack_ms))?,
            }
            row(f, "join retries", self.join_retries.to_string())?;
        }
        row(
            f,
            "errors",
            if self.errors == 0 {
                "0".to_owned()
            } else {
                format!("{} ({})", self.errors, self.error_counts)
            },
        )?;
        if let Some(sample) = &self.disconnect_sample {
            row(f, "first disconnect", sample.clone())?;
        }
        if let Some(burst) = &self.burst {
            burst_rows(f, burst)?;
        }
        if let Some(publish) = &self.publish {
            publish_rows(f, publish)?;
        }
        let per = |value: Option<f64>, unit: &str| {
            value.map_or_else(String::new, |v| format!(", {v:.1} {unit}"))
        };
        row(
            f,
            "loadtest",
            format!(
                "cpu {:.2} s{}, rss {:.1} MiB{}",
                self.loadtest_cpu_s,
                per(self.loadtest_cpu_us_per_delivery, "µs/delivery"),
                mib(self.loadtest_rss_bytes),
                per(self.loadtest_rss_per_socket_bytes, "B/socket"),
            ),
        )?;
        if let Some(server) = &self.server {
            row(
                f,
                "server",
                format!(
                    "cpu {:.2} s{}, rss {:.1} MiB{}",
                    server.server_cpu_s,
                    per(server.server_cpu_us_per_delivery, "µs/delivery"),
                    mib(server.server_rss_bytes),
                    per(self.rss_per_connection_bytes, "B/connection"),
                ),
            )?;
        }
        if self.thresholds.passed {
            row(f, "thresholds", "passed".to_owned())
        } else {
            row(
                f,
                "thresholds",
                format!("MISSED: {}", self.thresholds.violations.join("; ")),
            )
        }
    }
}

/// The `burst` rows of the summary table.
fn burst_rows(f: &mut fmt::Formatter<'_>, burst: &BurstFigures) -> fmt::Result {
    let list = |values: &[u64]| {
        let values: Vec<String> = values.iter().map(u64::to_string).collect();
        values.join(" ")
    };
    writeln!(
        f,
        "  {:<22} {}: {} asked, {} emitted, {} failed",
        "trigger", burst.trigger, burst.count, burst.emitted, burst.failed
    )?;
    writeln!(
        f,
        "  {:<22} {:.1} ms emitting (server), answered after {:.1} ms",
        "emit loop", burst.emit_ms, burst.trigger_ms
    )?;
    let last = burst.last_delivery_ms.map_or_else(
        || "nothing arrived".to_owned(),
        |ms| format!("last delivery {ms:.1} ms"),
    );
    let all = burst.all_received_ms.map_or_else(
        || format!("not every member got everything in time ({last})"),
        |ms| format!("{ms:.1} ms after the trigger"),
    );
    writeln!(f, "  {:<22} {all}", "all received")?;
    writeln!(
        f,
        "  {:<22} {}",
        "received per member",
        list(&burst.received_per_member)
    )?;
    writeln!(
        f,
        "  {:<22} {}",
        "out of order / member",
        list(&burst.out_of_order_per_member)
    )
}

/// The `publish` rows of the summary table.
fn publish_rows(f: &mut fmt::Formatter<'_>, publish: &PublishFigures) -> fmt::Result {
    writeln!(
        f,
        "  {:<22} via {}, event {:?} to {} rooms of {}, {}/s asked",
        "publisher", publish.via, publish.event, publish.rooms, publish.room_size, publish.rate
    )?;
    writeln!(
        f,
        "  {:<22} {} planned, {} attempted, {} accepted{}",
        "publishes",
        publish.planned,
        publish.attempted,
        publish.accepted,
        reasons(&publish.failures)
    )?;
    writeln!(
        f,
        "  {:<22} {:.1} accepted/s over {:.1} s",
        "publishes/s", publish.publishes_per_sec, publish.publishing_s
    )?;
    if let Some(sample) = &publish.failure_sample {
        writeln!(f, "  {:<22} {sample}", "first refusal")?;
    }
    Ok(())
}

/// ` (reason count, ...)`, or nothing without failures.
fn reasons(reasons: &BTreeMap<String, u64>) -> String {
    if reasons.is_empty() {
        return String::new();
    }
    let list: Vec<String> = reasons
        .iter()
        .map(|(reason, count)| format!("{reason} {count}"))
        .collect();
    format!(" ({})", list.join(", "))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn chat_report(p99: f64, expected: u64, received: u64) -> Report {
        let mut report = Report {
            scenario: "chat".to_owned(),
            received,
            latency_ms: Quantiles {
                count: 10,
                p99,
                ..Quantiles::default()
            },
            ..Report::default()
        };
        report.set_deliveries(expected, 2.0);
        report
    }

    #[test]
    fn thresholds_pass_and_miss() {
        let mut report = chat_report(5.0, 100, 100);
        assert_eq!(report.deliveries_per_sec, 50.0);
        assert!(report.judge(&Thresholds::default()).passed);
        let strict = Thresholds {
            max_p99_ms: Some(0.001),
            max_loss: Some(0),
        };
        let verdict = report.judge(&strict).clone();
        assert!(!verdict.passed);
        assert_eq!(verdict.violations.len(), 1, "{verdict:?}");
        assert!(verdict.violations[0].contains("p99"));

        let mut lossy = chat_report(5.0, 100, 90);
        assert_eq!(lossy.loss, 10);
        let verdict = lossy.judge(&Thresholds {
            max_p99_ms: Some(10.0),
            max_loss: Some(9),
        });
        assert_eq!(verdict.violations, vec!["loss 10 > limit 9".to_owned()]);
        assert!(
            lossy
                .judge(&Thresholds {
                    max_p99_ms: None,
                    max_loss: Some(10)
                })
                .passed
        );
    }

    #[test]
    fn a_p99_threshold_without_samples_fails_and_connect_runs_use_connect_time() {
        let mut report = Report {
            scenario: "chat".to_owned(),
            ..Report::default()
        };
        let limit = Thresholds {
            max_p99_ms: Some(100.0),
            max_loss: None,
        };
        assert!(!report.judge(&limit).passed);
        report.scenario = "connect".to_owned();
        report.connect_ms = Quantiles {
            count: 1,
            p99: 3.0,
            ..Quantiles::default()
        };
        assert!(report.judge(&limit).passed);
    }

    #[test]
    fn publish_figures_count_accepted_publishes_per_second_and_show_refusals() {
        assert_eq!(PublishFigures::per_second(300, 2.0), 150.0);
        assert_eq!(PublishFigures::per_second(5, 0.0), 0.0);
        let mut report = chat_report(3.0, 40, 38);
        report.scenario = "publish".to_owned();
        report.publish = Some(PublishFigures {
            via: "http".to_owned(),
            event: "tick".to_owned(),
            rooms: 2,
            room_size: 5,
            rate: 10.0,
            planned: 10,
            attempted: 10,
            accepted: 8,
            publishing_s: 1.0,
            publishes_per_sec: 8.0,
            failures: [("429".to_owned(), 2)].into_iter().collect(),
            failure_sample: Some("HTTP 429: slow down".to_owned()),
        });
        assert_eq!((report.loss, report.deliveries_per_sec), (2, 19.0));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["publish"]["failures"]["429"], 2);
        assert_eq!(json["publish"]["publishes_per_sec"], 8.0);
        let text = report.to_string();
        assert!(text.contains("8 accepted (429 2)"), "{text}");
        assert!(text.contains("8.0 accepted/s"), "{text}");
        assert!(text.contains("HTTP 429: slow down"), "{text}");
    }

    #[test]
    fn json_has_the_contract_keys() {
        let mut report = chat_report(1.0, 10, 10);
        report.server = Some(ServerFigures::default());
        let json = serde_json::to_value(&report).unwrap();
        for key in [
            "scenario",
            "deliveries_per_sec",
            "expected",
            "received",
            "duplicates",
            "out_of_order",
            "errors",
            "join_retries",
            "latency_ms",
            "connect_ms",
            "connect_failures",
            "sent",
            "duration_s",
            "loadtest_cpu_us_per_delivery",
            "server_cpu_s",
            "server_cpu_us_per_delivery",
            "server_rss_bytes",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        for key in ["p50", "p90", "p99", "p999", "max"] {
            assert!(
                json["latency_ms"].get(key).is_some(),
                "missing latency_ms.{key}"
            );
        }
        assert!(json.get("rss_per_connection_bytes").is_none());
        let text = report.to_string();
        assert!(text.contains("deliveries"), "{text}");
    }
}
