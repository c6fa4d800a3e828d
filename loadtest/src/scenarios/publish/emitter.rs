//! `--via emitter`: the official `@socket.io/redis-emitter` publishes, in a Node script of
//! its own (`bench/peers/node/emitter-publisher.mjs`, the protocol in its header): started
//! before the members connect, it connects to Redis and says `{"ready":true}`; `go` on its
//! stdin starts the schedule (the same [`Pacing`] as `--via http`), and its last line counts
//! what Redis accepted, per room. The emitter's PUBLISH has no answer from the servers: every
//! accepted publish is owed to its room.

use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::{PublishConfig, Published};
use crate::Error;
use crate::pacing::Pacing;

/// The script, in this checkout.
pub(super) const DEFAULT_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../bench/peers/node/emitter-publisher.mjs"
);
/// Longest wait for the script to connect to Redis.
const READY_WITHIN: Duration = Duration::from_secs(15);
/// How long the script may take beyond the schedule: it waits up to 10 s for Redis's last
/// answers.
const DRAIN: Duration = Duration::from_secs(15);

/// The script's last line.
#[derive(Debug, Deserialize)]
struct Summary {
    attempted: u64,
    published: u64,
    failed: u64,
    per_room: Vec<u64>,
    elapsed_ms: f64,
    first_error: Option<String>,
}

/// A started script, connected to Redis, waiting for `go`.
pub(super) struct Emitter {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    /// The script, for messages.
    label: String,
    /// From `go` to the script's last line, at most.
    budget: Duration,
}

impl Emitter {
    /// Starts the script for `rooms` rooms `lt-<run_id>-<n>` (named through
    /// `--room-template`) on `pacing`'s schedule, and waits until it is connected to Redis.
    pub(super) async fn start(
        config: &PublishConfig,
        run_id: &str,
        rooms: u32,
        pacing: Pacing,
    ) -> Result<Self, Error> {
        let script = &config.emitter_script;
        let template = config
            .room_template
            .replace("{room}", &format!("lt-{run_id}-{{n}}"));
        let mut child = Command::new(&config.node)
            .arg(script)
            .args([
                "--redis-url",
                config.redis_url.as_deref().unwrap_or_default(),
            ])
            .args(["--key", &config.emitter_key])
            .args(["--template", &template])
            .args(["--rooms", &rooms.to_string()])
            .args(["--rate", &config.rate.to_string()])
            .args(["--count", &pacing.planned().to_string()])
            .args(["--duration-ms", &pacing.duration.as_millis().to_string()])
            .args(["--event", &config.event])
            .args(["--pad-bytes", &config.pad_bytes.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                Error::Setup(format!(
                    "cannot run {} {} ({e}): install the Debian package `nodejs`, and run \
                     `npm ci` in bench/peers/node",
                    config.node.display(),
                    script.display()
                ))
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(Error::Setup("the emitter script's pipes".to_owned()));
        };
        let mut emitter = Self {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
            label: format!("the emitter script {}", script.display()),
            budget: pacing.duration + DRAIN,
        };
        let ready = emitter.next_line(READY_WITHIN).await?;
        if !ready.contains("\"ready\":true") {
            return Err(Error::Setup(format!("{}: {ready:.300}", emitter.label)));
        }
        Ok(emitter)
    }

    /// Starts the schedule and waits for the script's count.
    pub(super) async fn publish(mut self) -> Result<Published, Error> {
        self.stdin
            .write_all(b"go\n")
            .await
            .map_err(|e| Error::Setup(format!("starting {}: {e}", self.label)))?;
        let line = self.next_line(self.budget).await?;
        let _ = tokio::time::timeout(DRAIN, self.child.wait()).await;
        let summary: Summary = serde_json::from_str(&line)
            .map_err(|e| Error::Setup(format!("{} ({e}): {line:.300}", self.label)))?;
        Ok(summary.into())
    }

    /// The script's next line, within `within`.
    async fn next_line(&mut self, within: Duration) -> Result<String, Error> {
        let label = &self.label;
        match tokio::time::timeout(within, self.lines.next_line()).await {
            Ok(Ok(Some(line))) => Ok(line),
            Ok(Ok(None)) => Err(Error::Setup(format!("{label} ended early"))),
            Ok(Err(e)) => Err(Error::Setup(format!("reading {label}: {e}"))),
            Err(_) => Err(Error::Setup(format!(
                "{label} said nothing within {within:?}"
            ))),
        }
    }
}

impl From<Summary> for Published {
    /// The script's count as the publisher's outcome: PUBLISH commands Redis failed are
    /// counted as `redis` failures.
    fn from(summary: Summary) -> Self {
        let published = Self {
            attempted: summary.attempted,
            accepted: summary.published,
            owed: summary.per_room,
            elapsed: Duration::try_from_secs_f64(summary.elapsed_ms / 1000.0).unwrap_or_default(),
            ..Self::default()
        };
        if summary.failed > 0 {
            let error = summary.first_error.unwrap_or_default();
            published
                .failures
                .add_many("redis", summary.failed, || format!("PUBLISH: {error}"));
        }
        published
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_scripts_count_is_the_outcome() {
        let line = r#"{"attempted":10,"published":9,"failed":1,"per_room":[5,4],
                       "elapsed_ms":1500,"first_error":"READONLY"}"#;
        let published: Published = serde_json::from_str::<Summary>(line).unwrap().into();
        assert_eq!((published.attempted, published.accepted), (10, 9));
        assert_eq!(published.owed, vec![5, 4]);
        assert_eq!(published.elapsed, Duration::from_millis(1500));
        let (failures, sample) = published.failures.snapshot();
        assert_eq!(failures.get("redis"), Some(&1));
        assert_eq!(sample.as_deref(), Some("PUBLISH: READONLY"));

        let odd = r#"{"attempted":0,"published":0,"failed":0,"per_room":[],"elapsed_ms":-3,
                      "first_error":null}"#;
        let published: Published = serde_json::from_str::<Summary>(odd).unwrap().into();
        assert_eq!(published.elapsed, Duration::ZERO);
    }
}
