//! The measured window of a run: this process's and the servers' CPU time and memory at its
//! start and end.

use std::time::Duration;

use tokio::time::Instant;

use crate::Error;
use crate::sysinfo::{self, Usage};

/// An open window.
pub struct Window {
    started: Instant,
    own: Usage,
    pids: Vec<u32>,
    servers: Usage,
}

/// What was used during a window.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spent {
    /// Wall time of the window.
    pub elapsed: Duration,
    /// This process's CPU time.
    pub own_cpu: Duration,
    /// This process's RSS at the end, bytes.
    pub own_rss_bytes: u64,
    /// The servers' summed CPU time and RSS at the end; `None` without `--server-pid`, or
    /// when a server could no longer be read (it died during the run).
    pub servers: Option<Usage>,
}

impl Window {
    /// Opens a window now. Fails when a server pid cannot be read: a wrong pid is a setup
    /// error, found before the run rather than after it.
    pub fn open(pids: &[u32]) -> Result<Self, Error> {
        Ok(Self {
            started: Instant::now(),
            own: sysinfo::own_usage()?,
            pids: pids.to_vec(),
            servers: sysinfo::servers_usage(pids)?,
        })
    }

    /// Closes the window and returns what was used in it.
    pub fn close(self) -> Spent {
        let own = sysinfo::own_usage().unwrap_or_default();
        let servers = if self.pids.is_empty() {
            None
        } else {
            sysinfo::servers_usage(&self.pids).ok().map(|end| Usage {
                cpu: end.cpu.saturating_sub(self.servers.cpu),
                rss_bytes: end.rss_bytes,
            })
        };
        Spent {
            elapsed: self.started.elapsed(),
            own_cpu: own.cpu.saturating_sub(self.own.cpu),
            own_rss_bytes: own.rss_bytes,
            servers,
        }
    }
}

/// RSS growth per item between two readings (`None` for no items).
pub fn bytes_per(before: u64, after: u64, items: u64) -> Option<f64> {
    (items > 0).then(|| (after as f64 - before as f64) / items as f64)
}
