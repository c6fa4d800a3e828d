//! A test script run as a child process that a test drives line by line: it prints one JSON
//! object per line on stdout and reads commands on stdin. Used for the official clients'
//! scripts that take part in a conversation (`tests/node/*.mjs`, `tests/python/peer.py`).

use std::process::{ExitStatus, Stdio};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::{TIMEOUT, node_client_dir, python_venv};

/// A running script; killed when dropped.
pub struct ScriptPeer {
    label: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
}

impl ScriptPeer {
    /// Runs `tests/node/{script}` with `args` (the official client, installed by
    /// [`node_client_dir`]).
    pub fn node(label: &str, script: &str, args: &[String]) -> Self {
        let mut command = Command::new("node");
        command
            .arg(script)
            .args(args)
            .current_dir(node_client_dir());
        Self::spawn(label, command, "install the Debian package `nodejs`")
    }

    /// Runs `tests/python/{script}` with `args` in the venv of [`python_venv`]
    /// (python-socketio).
    pub fn python(label: &str, script: &str, args: &[String]) -> Self {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");
        let mut command = Command::new(python_venv());
        command.arg(script).args(args).current_dir(dir);
        Self::spawn(
            label,
            command,
            "install the Debian packages `python3` and `python3-venv`",
        )
    }

    /// Starts `command` with piped stdin and stdout (stderr goes to the test's output);
    /// `missing` says what to install when it cannot start.
    fn spawn(label: &str, mut command: Command, missing: &str) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {label} ({err}): {missing}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("a piped stdout");
        Self {
            label: label.to_owned(),
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// The script's next line (within twice [`TIMEOUT`]), as JSON; a failure it reports
    /// (`{"ok": false, "error": ...}`) fails the test with its reason.
    pub async fn next(&mut self, waiting_for: &str) -> Value {
        let label = &self.label;
        let line = tokio::time::timeout(TIMEOUT * 2, self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no line from {label} ({waiting_for})"))
            .unwrap_or_else(|err| panic!("reading {label}'s output: {err}"))
            .unwrap_or_else(|| panic!("{label} ended early ({waiting_for})"));
        println!("{label}: {line}");
        let value: Value =
            serde_json::from_str(&line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"));
        assert_ne!(
            value["ok"], false,
            "{label} failed ({waiting_for}): {value}"
        );
        value
    }

    /// The next line, which must be step `step`.
    pub async fn step(&mut self, step: &str) -> Value {
        let value = self.next(step).await;
        assert_eq!(value["step"], step, "{}: {value}", self.label);
        value
    }

    /// Writes `command` and a newline to the script's stdin.
    pub async fn send(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap_or_else(|err| panic!("writing to {}: {err}", self.label));
    }

    /// Closes stdin and waits (within [`TIMEOUT`]) for the script to exit.
    pub async fn finish(mut self) -> ExitStatus {
        drop(self.stdin.take());
        tokio::time::timeout(TIMEOUT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit", self.label))
            .unwrap_or_else(|err| panic!("waiting for {}: {err}", self.label))
    }
}
