//! The subscriber connection's state, as the rest of the bus sees it.

use tokio::sync::watch;

/// Whether Redis takes publishes, whether every subscription is in place, and how many times
/// the subscriptions were whole again after a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Link {
    /// Redis is reachable: publishes go out (while false they are refused at once).
    pub connected: bool,
    /// Every subscription is in place: no message of a subscribed channel is being missed.
    /// False from the moment one may be (the subscriber's connection or one cluster node's
    /// dropped, the cluster's topology changed, the probe found the subscriber deaf) until
    /// every route is subscribed again. Never true while `connected` is false.
    pub subscribed: bool,
    /// Incremented each time the subscriptions are whole again after a gap: whatever is
    /// kept up to date by messages (a cache, a membership) may have missed some meanwhile.
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
        subscribed: true,
        generation: 0,
    })
}

/// Some subscriptions may miss messages from now on; Redis still takes publishes.
pub(crate) fn gap(link: &LinkTx) {
    link.send_if_modified(|link| std::mem::replace(&mut link.subscribed, false));
}

/// Redis cannot be reached: publishes are refused, and no subscription holds.
pub(crate) fn lost(link: &LinkTx) {
    link.send_if_modified(|link| {
        let was = (link.connected, link.subscribed);
        link.connected = false;
        link.subscribed = false;
        was != (false, false)
    });
}

/// Every subscription is in place again, on a connection that answers: a new generation.
pub(crate) fn restored(link: &LinkTx) {
    link.send_modify(|link| {
        *link = Link {
            connected: true,
            subscribed: true,
            generation: link.generation + 1,
        }
    });
}
