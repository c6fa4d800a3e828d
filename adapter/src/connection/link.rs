//! The subscriber connection's state, as the rest of the bus sees it.

use tokio::sync::watch;

/// Whether the subscriber is connected, and how many times it (re)connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// Subscriptions are in place and messages flow.
    pub connected: bool,
    /// Incremented on every successful (re)connection.
    pub generation: u64,
}

/// The sending side, owned by the subscriber task.
pub(crate) type LinkTx = watch::Sender<Link>;
/// A receiving side, for the publisher (fail fast while down) and the adapters (say hello
/// again after a reconnect).
pub type LinkRx = watch::Receiver<Link>;

/// A link that is up, first generation.
pub(crate) fn connected() -> (LinkTx, LinkRx) {
    watch::channel(Link {
        connected: true,
        generation: 0,
    })
}
