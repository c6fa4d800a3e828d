//! A server run on a runtime of its own, in a thread of its own, so that a test can kill it.

use std::future::Future;

use tokio::sync::oneshot;

/// A server on its own runtime and thread. [`Killable::kill`] drops the runtime, which closes
/// every socket and stops every task without the goodbye of a clean close, as a crash would.
pub struct Killable {
    url: String,
    kill: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Killable {
    /// Runs `start` on a new one-worker runtime; it returns the server's URL and what keeps the
    /// server running (held, never dropped, until the kill).
    ///
    /// # Panics
    /// When the runtime cannot be built or `start` panics.
    pub async fn start<F, Fut, Keep>(start: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = (String, Keep)>,
        Keep: 'static,
    {
        let (url_tx, url_rx) = oneshot::channel();
        let (kill, killed) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap_or_else(|err| panic!("a runtime for the killable server: {err}"));
            runtime.block_on(async move {
                let (url, keep) = start().await;
                let _ = url_tx.send(url);
                let _ = killed.await;
                // No drop glue: a crash says no goodbye.
                std::mem::forget(keep);
            });
            runtime.shutdown_background();
        });
        let url = url_rx
            .await
            .unwrap_or_else(|_| panic!("the killable server did not start"));
        Self {
            url,
            kill: Some(kill),
            thread: Some(thread),
        }
    }

    /// The URL `start` returned.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Kills the server and waits until its runtime is gone.
    pub fn kill(&mut self) {
        let _ = self.kill.take().map(|kill| kill.send(()));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Killable {
    fn drop(&mut self) {
        self.kill();
    }
}
