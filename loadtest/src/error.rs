//! The load tester's error type: what stops a run before it can report.

use std::path::PathBuf;

/// Why a run could not be carried out or reported.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or configuration value is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The run could not be set up (no user connected, a server pid cannot be read, ...).
    #[error("setup failed: {0}")]
    Setup(String),
    /// Writing the JSON report failed.
    #[error("{}: {source}", path.display())]
    Output {
        /// The file being written.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
}
