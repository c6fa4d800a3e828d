//! The command line: subcommands, the flags every scenario shares ([`Common`]) and the
//! output flags ([`Output`]), with their parsers and validation. Scenario-specific flags live
//! next to their scenario (`scenarios::chat::ChatConfig`, ...).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::Error;
use crate::report::Thresholds;
use crate::scenarios::{
    broadcast::BroadcastConfig, burst::BurstConfig, chat::ChatConfig, connect::ConnectConfig,
    idle::IdleConfig, publish::PublishConfig,
};
use socketio_client::Credentials;

/// Default of `--connect-concurrency`.
pub const DEFAULT_CONNECT_CONCURRENCY: u32 = 100;
/// Most source addresses a range may expand to.
const MAX_SOURCE_IPS: u32 = 65_536;

/// `loadtest`: Socket.IO fan-out load tests against loopback servers.
#[derive(Debug, Parser)]
#[command(name = "loadtest", version, about)]
pub struct Cli {
    /// The scenario to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The scenarios, each with its own flags and the output flags.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Rooms of --room-size members on several instances; every member sends at --rate and
    /// receives the others' messages.
    Chat {
        /// The scenario's flags.
        #[command(flatten)]
        config: ChatConfig,
        /// Report and threshold flags.
        #[command(flatten)]
        output: Output,
    },
    /// One room of --users members; --senders of them send at --rate each.
    Broadcast {
        /// The scenario's flags.
        #[command(flatten)]
        config: BroadcastConfig,
        /// Report and threshold flags.
        #[command(flatten)]
        output: Output,
    },
    /// --members join one room on the --url instances; the --trigger instance emits --count
    /// broadcasts to it back to back (POST /bench/burst); reports the server's emitting time
    /// and the time until every member received everything.
    Burst {
        /// The scenario's flags.
        #[command(flatten)]
        config: BurstConfig,
        /// Report and threshold flags.
        #[command(flatten)]
        output: Output,
    },
    /// --users join rooms of --room-size; a publisher outside the sockets (the gateway's HTTP
    /// publish API, or the official Redis emitter) publishes to them at --rate; reports the
    /// latency from publish to receipt, loss and the publishes per second accepted.
    Publish {
        /// The scenario's flags.
        #[command(flatten)]
        config: PublishConfig,
        /// Report and threshold flags.
        #[command(flatten)]
        output: Output,
    },
    /// Opens --connections at --connect-rate, holds them, reports connect times.
    Connect {
        /// The scenario's flags.
        #[command(flatten)]
        config: ConnectConfig,
        /// Report and threshold flags.
        #[command(flatten)]
        output: Output,
    },
    /// Holds --connections idle sockets; with --server-pid reports the server's RSS per
    /// connection.
    Idle {
        /// The scenario's flags.
        #[command(flatten)]
        config: IdleConfig,
        /// Report and threshold flags.
        #[command(flatten)]
        output: Output,
    },
}

/// Flags every scenario shares: where to connect, how, and which servers to measure.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Server base URL(s), `http://host:port`, comma separated (one URL, e.g. a proxy, or one
    /// per instance). Users are spread over them round-robin (chat: unless
    /// --instances-per-room).
    #[arg(long = "url", value_delimiter = ',', required = true)]
    pub urls: Vec<String>,

    /// Loopback source addresses to bind client sockets to, round-robin, so that many
    /// sockets do not run out of ephemeral ports: `127.0.0.1,127.0.0.2` or `127.0.0.1-127.0.0.8`.
    #[arg(long, value_parser = SourceIps::parse, default_value = "")]
    pub source_ips: SourceIps,

    /// Share of users on HTTP long-polling instead of websocket, 0.0 to 1.0.
    #[arg(long, default_value_t = 0.0)]
    pub polling_share: f64,

    /// Connection ramp-up in connections per second (`500` or `500/s`). Default: as fast as
    /// the handshakes go, within --connect-concurrency.
    #[arg(long, value_parser = parse_rate)]
    pub connect_rate: Option<f64>,

    /// Most connection handshakes in flight at once. Keep it below the server's listen
    /// backlog (often 128), or bursts overflow its accept queue and cost 1 s SYN retries.
    #[arg(long, default_value_t = DEFAULT_CONNECT_CONCURRENCY)]
    pub connect_concurrency: u32,

    /// Timeout of each connection handshake and of each message ack (`10s`, `500ms`).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub timeout: Duration,

    /// Server process ids to measure (CPU time during the measured window, RSS), comma
    /// separated; their sum is reported.
    #[arg(long = "server-pid", value_delimiter = ',')]
    pub server_pids: Vec<u32>,

    /// Log in through `POST /api/login` with this account (`USER:PASSWORD`) before the
    /// handshakes, which then carry the session token. One login per run, shared by every
    /// user like the tabs of one browser (password hashing is slow on purpose).
    #[arg(long, value_parser = Credentials::parse)]
    pub login: Option<Credentials>,

    /// No live progress line.
    #[arg(long)]
    pub no_progress: bool,

    /// Allow targets and source addresses that are not loopback. Without it the run refuses
    /// them, to protect shared machines.
    #[arg(long)]
    pub allow_remote: bool,
}

impl Common {
    /// The defaults for `urls`, without a progress line (for embedding and tests).
    pub fn new(urls: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            urls: urls.into_iter().map(Into::into).collect(),
            source_ips: SourceIps::default(),
            polling_share: 0.0,
            connect_rate: None,
            connect_concurrency: DEFAULT_CONNECT_CONCURRENCY,
            timeout: Duration::from_secs(10),
            server_pids: Vec::new(),
            login: None,
            no_progress: true,
            allow_remote: false,
        }
    }

    /// Checks the values clap cannot: loopback targets, ranges.
    pub fn validate(&self) -> Result<(), Error> {
        if self.urls.is_empty() {
            return Err(Error::Config(
                "--url: at least one URL is needed".to_owned(),
            ));
        }
        for url in &self.urls {
            self.validate_target("--url", url)?;
        }
        if let Some(ip) = self.source_ips.0.iter().find(|ip| !ip.is_loopback()) {
            if !self.allow_remote {
                return Err(Error::Config(format!(
                    "--source-ips: {ip} is not a loopback address"
                )));
            }
        }
        if !(0.0..=1.0).contains(&self.polling_share) {
            return Err(Error::Config(
                "--polling-share must be between 0.0 and 1.0".to_owned(),
            ));
        }
        if let Some(rate) = self.connect_rate {
            positive("--connect-rate", rate)?;
        }
        if !(1..=100_000).contains(&self.connect_concurrency) {
            return Err(Error::Config(
                "--connect-concurrency must be between 1 and 100000".to_owned(),
            ));
        }
        if self.timeout.is_zero() {
            return Err(Error::Config("--timeout must be positive".to_owned()));
        }
        Ok(())
    }
}

impl Common {
    /// Checks a target named by `flag`, an `http://host:port` base URL: loopback unless
    /// --allow-remote.
    pub fn validate_target(&self, flag: &str, url: &str) -> Result<(), Error> {
        let host =
            socketio_client::host_port(url).map_err(|e| Error::Config(format!("{flag}: {e}")))?;
        self.loopback(flag, url, host)
    }

    /// Checks a `redis://[user:password@]host:port[/db]` URL named by `flag`: loopback unless
    /// --allow-remote.
    pub fn validate_redis_url(&self, flag: &str, url: &str) -> Result<(), Error> {
        let rest = url.strip_prefix("redis://").ok_or_else(|| {
            Error::Config(format!("{flag}: expected redis://host:port, got {url}"))
        })?;
        let authority = rest
            .split_once('/')
            .map_or(rest, |(authority, _)| authority);
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        self.loopback(flag, url, host)
    }

    fn loopback(&self, flag: &str, url: &str, host_port: &str) -> Result<(), Error> {
        if self.allow_remote || is_loopback_host(host_port) {
            return Ok(());
        }
        Err(Error::Config(format!(
            "{flag} {url}: not a loopback address (127.x.x.x, localhost, [::1]); pass \
             --allow-remote to target it anyway"
        )))
    }
}

/// Flags about the report: where to write it and which thresholds to hold the run to.
#[derive(Debug, Clone, Default, Args)]
pub struct Output {
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// Fail (exit 1) when the p99 latency exceeds this many milliseconds: delivery latency
    /// for chat, broadcast, burst and publish, connect time for connect and idle.
    #[arg(long)]
    pub max_p99: Option<f64>,

    /// Fail (exit 1) when more than this many deliveries were lost.
    #[arg(long)]
    pub max_loss: Option<u64>,
}

impl Output {
    /// The thresholds these flags ask for.
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            max_p99_ms: self.max_p99,
            max_loss: self.max_loss,
        }
    }
}

/// Source addresses for client sockets, in the order they are used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceIps(pub Vec<IpAddr>);

impl SourceIps {
    /// Parses a comma list of addresses and IPv4 ranges `A-B` (inclusive); empty is none.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut ips = Vec::new();
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            match item.split_once('-') {
                None => ips.push(parse_ip(item)?),
                Some((first, last)) => {
                    let (first, last) = (parse_v4(first)?, parse_v4(last)?);
                    let (first, last) = (u32::from(first), u32::from(last));
                    if last < first || last - first >= MAX_SOURCE_IPS {
                        return Err(format!(
                            "{item}: expected an ascending range of at most {MAX_SOURCE_IPS} addresses"
                        ));
                    }
                    ips.extend((first..=last).map(|ip| IpAddr::V4(Ipv4Addr::from(ip))));
                }
            }
        }
        Ok(Self(ips))
    }
}

fn parse_ip(text: &str) -> Result<IpAddr, String> {
    text.parse()
        .map_err(|_| format!("{text}: not an IP address"))
}

fn parse_v4(text: &str) -> Result<Ipv4Addr, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{text}: not an IPv4 address"))
}

/// A rate per second: `500`, `500/s` or `0.5`.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let number = text.trim().strip_suffix("/s").unwrap_or(text.trim());
    let rate: f64 = number
        .parse()
        .map_err(|_| format!("{text}: expected a rate like 500 or 500/s"))?;
    if rate.is_finite() && rate > 0.0 {
        Ok(rate)
    } else {
        Err(format!("{text}: the rate must be positive"))
    }
}

/// Fails unless `value` is a positive finite number.
pub(crate) fn positive(flag: &str, value: f64) -> Result<(), Error> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::Config(format!("{flag} must be positive")))
    }
}

/// Whether `host:port` names this machine: `localhost`, 127.0.0.0/8 or `[::1]`.
fn is_loopback_host(host_port: &str) -> bool {
    let host = match host_port.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or(rest, |(host, _)| host),
        None => host_port
            .rsplit_once(':')
            .map_or(host_port, |(host, _)| host),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
        || host.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn source_ips_take_lists_and_ranges() {
        assert_eq!(SourceIps::parse("").unwrap(), SourceIps(vec![]));
        let ips = SourceIps::parse("127.0.0.1-127.0.0.3, ::1").unwrap().0;
        let expected: Vec<IpAddr> = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "::1"]
            .iter()
            .map(|ip| ip.parse().unwrap())
            .collect();
        assert_eq!(ips, expected);
        assert_eq!(
            SourceIps::parse("127.0.0.1-127.0.1.0").unwrap().0.len(),
            256
        );
        for bad in [
            "127.0.0.3-127.0.0.1",
            "x",
            "127.0.0.1-::1",
            "1.0.0.0-2.0.0.0",
        ] {
            assert!(SourceIps::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rates_accept_a_per_second_suffix() {
        assert_eq!(parse_rate("500").unwrap(), 500.0);
        assert_eq!(parse_rate("2.5/s").unwrap(), 2.5);
        for bad in ["0", "-1", "x/s", "inf", "NaN"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_loopback_targets_unless_allowed() {
        for host in [
            "127.0.0.1:80",
            "127.3.2.1:1",
            "localhost:3000",
            "[::1]:3000",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["10.0.0.1:80", "example.com:80", "[::2]:1", "128.0.0.1:1"] {
            assert!(!is_loopback_host(host), "{host}");
        }
        let mut common = Common::new(["http://10.1.2.3:3000"]);
        assert!(matches!(common.validate(), Err(Error::Config(_))));
        common.allow_remote = true;
        assert!(common.validate().is_ok());
        let mut common = Common::new(["http://127.0.0.1:3000"]);
        assert!(common.validate().is_ok());
        common.source_ips = SourceIps::parse("192.168.1.1").unwrap();
        assert!(common.validate().is_err());
        common.source_ips = SourceIps::default();
        common.polling_share = 1.5;
        assert!(common.validate().is_err());
    }

    #[test]
    fn the_command_line_parses() {
        let cli = Cli::try_parse_from([
            "loadtest",
            "chat",
            "--url",
            "http://127.0.0.1:1,http://127.0.0.1:2",
            "--users",
            "10",
            "--room-size",
            "5",
            "--rate",
            "2/s",
            "--duration",
            "3s",
            "--server-pid",
            "1,2",
            "--max-p99",
            "50",
        ])
        .unwrap();
        let Command::Chat { config, output } = cli.command else {
            panic!("expected chat");
        };
        assert_eq!(config.common.urls.len(), 2);
        assert_eq!(config.common.server_pids, vec![1, 2]);
        assert_eq!(config.rate, 2.0);
        assert_eq!(config.duration, Duration::from_secs(3));
        assert_eq!(config.body_bytes, 64);
        assert_eq!(output.max_p99, Some(50.0));
    }

    #[test]
    fn sparse_rooms_and_bursts_parse() {
        let cli = Cli::try_parse_from([
            "loadtest",
            "chat",
            "--url",
            "http://127.0.0.1:1,http://127.0.0.1:2",
            "--users",
            "20",
            "--room-size",
            "10",
            "--rate",
            "1",
            "--duration",
            "1s",
            "--instances-per-room",
            "2",
        ])
        .unwrap();
        let Command::Chat { config, .. } = cli.command else {
            panic!("expected chat");
        };
        assert_eq!(config.instances_per_room, Some(2));

        let cli = Cli::try_parse_from([
            "loadtest",
            "burst",
            "--url",
            "http://127.0.0.1:2,http://127.0.0.1:3",
            "--trigger",
            "http://127.0.0.1:1",
            "--count",
            "1000",
            "--tenant",
            "bench",
        ])
        .unwrap();
        let Command::Burst { config, .. } = cli.command else {
            panic!("expected burst");
        };
        assert_eq!(config.trigger, "http://127.0.0.1:1");
        assert_eq!((config.count, config.members), (1000, 10));
        assert_eq!(config.tenant.as_deref(), Some("bench"));
        assert_eq!(config.max_wait, Duration::from_secs(60));
    }
}
