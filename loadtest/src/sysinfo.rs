//! Process measurements from `/proc`: CPU time (`/proc/PID/stat` utime + stime) and resident
//! memory (`/proc/PID/status` VmRSS), for this process and the servers under test; and the
//! open-files limit.

use std::time::Duration;

use crate::Error;

/// Clock ticks per second of `/proc/PID/stat` times (USER_HZ): 100 on every Linux
/// architecture this runs on; a constant of the kernel ABI, not the kernel's HZ.
const USER_HZ: u64 = 100;

/// CPU time and resident memory of a process, or the sum over several.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// User + system CPU time used since the process started.
    pub cpu: Duration,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
}

/// This process's usage.
pub fn own_usage() -> Result<Usage, Error> {
    usage_at("/proc/self")
}

/// The summed usage of `pids` (zero for an empty list).
pub fn servers_usage(pids: &[u32]) -> Result<Usage, Error> {
    pids.iter().try_fold(Usage::default(), |total, pid| {
        let one = usage_at(&format!("/proc/{pid}"))?;
        Ok(Usage {
            cpu: total.cpu + one.cpu,
            rss_bytes: total.rss_bytes + one.rss_bytes,
        })
    })
}

fn usage_at(dir: &str) -> Result<Usage, Error> {
    let read = |file: &str| {
        std::fs::read_to_string(format!("{dir}/{file}"))
            .map_err(|e| Error::Setup(format!("reading {dir}/{file}: {e}")))
    };
    let ticks = parse_stat_ticks(&read("stat")?)
        .ok_or_else(|| Error::Setup(format!("{dir}/stat: unexpected format")))?;
    let rss_bytes = parse_status_rss(&read("status")?)
        .ok_or_else(|| Error::Setup(format!("{dir}/status: no VmRSS line")))?;
    Ok(Usage {
        cpu: Duration::from_micros(ticks.saturating_mul(1_000_000 / USER_HZ)),
        rss_bytes,
    })
}

/// utime + stime, in ticks, from the text of `/proc/PID/stat`. The command name (field 2)
/// may hold spaces and parentheses, so fields are counted after its last `)`.
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace();
    // After the name: state (field 3) ... utime is field 14, stime field 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime.saturating_add(stime))
}

/// VmRSS in bytes from the text of `/proc/PID/status` (`VmRSS:   1234 kB`).
fn parse_status_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// Raises the soft limit of open files to the hard limit, and both to `wanted` when that is
/// higher and the process may (root); returns the soft limit in force afterwards.
pub fn raise_open_files_limit(wanted: u64) -> u64 {
    use rlimit::Resource;
    let Ok((_, hard)) = Resource::NOFILE.get() else {
        return 0;
    };
    if wanted > hard && Resource::NOFILE.set(wanted, wanted).is_ok() {
        return wanted;
    }
    let _ = Resource::NOFILE.set(hard, hard);
    Resource::NOFILE.get().map_or(0, |(soft, _)| soft)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn stat_times_are_counted_after_the_name() {
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 \
                    4 0 100 1000000 500 18446744073709551615";
        assert_eq!(parse_stat_ticks(stat), Some(300));
        assert_eq!(parse_stat_ticks("1 (x) S 1"), None);
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn rss_is_read_in_bytes() {
        let status = "Name:\tx\nVmPeak:\t 9 kB\nVmRSS:\t    2048 kB\nThreads:\t1\n";
        assert_eq!(parse_status_rss(status), Some(2048 * 1024));
        assert_eq!(parse_status_rss("Name: x\n"), None);
    }

    #[test]
    fn reads_this_process() {
        let usage = own_usage().unwrap();
        assert!(usage.rss_bytes > 0);
        assert_eq!(servers_usage(&[]).unwrap(), Usage::default());
        assert!(servers_usage(&[u32::MAX]).is_err());
    }
}
