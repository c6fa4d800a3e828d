//! The npm modules of a test's Node scripts, installed from their lockfile when missing.

use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, PoisonError};

/// Runs `npm ci` in `dir` when `probe` (inside its node_modules) is missing; one at a time,
/// so that tests starting together do not install into the same directory at once.
///
/// # Panics
/// When npm cannot run (Debian packages `nodejs` and `npm`) or `npm ci` fails.
pub fn npm_ci(dir: &Path, probe: &str) {
    static LOCK: Mutex<()> = Mutex::new(());
    let _one_at_a_time = LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    if !dir.join("node_modules").join(probe).exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(dir)
            .status()
            .unwrap_or_else(|err| {
                panic!("cannot run npm ({err}): install the Debian packages `nodejs` and `npm`")
            });
        assert!(status.success(), "npm ci failed in {}", dir.display());
    }
}
