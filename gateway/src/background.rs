//! The gateway's background tasks, stopped together when it stops.

use tokio::task::JoinHandle;

/// Tasks that live as long as the gateway serves; aborted when dropped.
#[derive(Default)]
pub(crate) struct Background(Vec<JoinHandle<()>>);

impl Background {
    /// Keeps `task` until this is dropped.
    pub(crate) fn push(&mut self, task: JoinHandle<()>) {
        self.0.push(task);
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}
