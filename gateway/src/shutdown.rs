//! Graceful shutdown: what asks the gateway to stop ([`signal`]) and what it then does
//! (the crate-private `Shutdown`).

use std::{sync::Arc, time::Duration};

use engine::server::Engine;
use redis_adapter::{NamespaceBus, Redis};
use tokio::task::JoinHandle;

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

/// The stop sequence of one gateway, bounded by a deadline: stop accepting connections, close
/// every session (each client is sent CLOSE), then leave the cluster, which tells the other
/// instances at once that this one leaves.
pub(crate) struct Shutdown {
    /// The engine serving the sockets.
    engine: Engine,
    /// The chat namespace's cluster bus, when clustered.
    bus: Option<Arc<NamespaceBus<Redis>>>,
    /// The whole sequence must end within this.
    deadline: Duration,
}

impl Shutdown {
    /// The stop sequence of `engine` and `bus`, bounded by `deadline`.
    pub(crate) fn new(
        engine: Engine,
        bus: Option<Arc<NamespaceBus<Redis>>>,
        deadline: Duration,
    ) -> Self {
        Self {
            engine,
            bus,
            deadline,
        }
    }

    /// Runs the sequence: `accepting`, the accept loop, is stopped first (its listener
    /// closes). Past the deadline the gateway returns anyway.
    pub(crate) async fn run(self, accepting: JoinHandle<()>) {
        tracing::info!(deadline = ?self.deadline, "shutting down");
        accepting.abort();
        let sequence = async {
            // Whatever the accept loop's end, nothing is accepted any more.
            let _ = accepting.await;
            self.engine.close_all();
            tracing::info!("every session closed");
            if let Some(bus) = &self.bus
                && let Err(err) = bus.close().await
            {
                tracing::warn!(%err, "could not tell the cluster that this instance leaves");
            }
        };
        match tokio::time::timeout(self.deadline, sequence).await {
            Ok(()) => tracing::info!("shutdown complete"),
            Err(_) => {
                tracing::warn!(deadline = ?self.deadline, "shutdown deadline passed, stopping anyway");
            }
        }
    }
}
