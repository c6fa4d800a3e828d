//! Graceful shutdown: what asks the gateway to stop ([`signal`]) and what it then does
//! (the crate-private `Shutdown`).

use std::{future::Future, io, pin::Pin, time::Duration};

use socketioxide::{SocketIo, adapter::Adapter};
use tokio::{sync::oneshot, task::JoinHandle};

use crate::Error;

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
/// Socket.IO (every socket, then the adapter, which tells the other instances at once that
/// this one leaves), then let the HTTP server finish its in-flight requests.
pub(crate) struct Shutdown {
    /// The Socket.IO server, whatever its adapter.
    io: Box<dyn CloseIo>,
    /// The whole sequence must end within this.
    deadline: Duration,
}

impl Shutdown {
    /// The stop sequence of `io`, bounded by `deadline`.
    pub(crate) fn new<A: Adapter>(io: SocketIo<A>, deadline: Duration) -> Self {
        Self {
            io: Box::new(io),
            deadline,
        }
    }

    /// Runs the sequence: `stop_accepting` makes `server` stop its accept loop and wind down.
    /// Past the deadline the server task is aborted and the gateway returns anyway.
    pub(crate) async fn run(
        self,
        stop_accepting: oneshot::Sender<()>,
        mut server: JoinHandle<io::Result<()>>,
    ) -> Result<(), Error> {
        tracing::info!(deadline = ?self.deadline, "shutting down");
        // An error means the server task is already gone; `server` tells why below.
        let _ = stop_accepting.send(());
        let sequence = async {
            self.io.close().await;
            tracing::info!("Socket.IO closed: sockets disconnected, adapter closed");
            (&mut server).await
        };
        match tokio::time::timeout(self.deadline, sequence).await {
            Ok(joined) => {
                joined?.map_err(Error::Serve)?;
                tracing::info!("shutdown complete");
            }
            Err(_) => {
                server.abort();
                tracing::warn!(deadline = ?self.deadline, "shutdown deadline passed, stopping anyway");
            }
        }
        Ok(())
    }
}

/// `SocketIo::close` without the adapter type.
trait CloseIo: Send + Sync {
    /// Closes every socket, then the adapters.
    fn close(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

impl<A: Adapter> CloseIo for SocketIo<A> {
    fn close(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(SocketIo::close(self))
    }
}
