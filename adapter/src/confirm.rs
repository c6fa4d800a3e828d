//! Waiting for Redis: by default an emit returns once its message is queued for Redis, in
//! order; code that must know Redis accepted the message wraps the emit in [`confirmed`].

use std::future::Future;

tokio::task_local! {
    static CONFIRMED: ();
}

/// Runs `work` so that every broadcast it makes through this adapter returns only after Redis
/// answered the pipeline that carried it, and fails if Redis refused it or did not answer in
/// time ([`RedisAdapterConfig::publish_timeout`](crate::RedisAdapterConfig::publish_timeout)).
///
/// ```no_run
/// # async fn send(io: socketioxide::SocketIo<redis_adapter::RedisAdapter<socketioxide::adapter::Emitter>>) {
/// // Acknowledge a chat message only once every instance can see it.
/// let sent = redis_adapter::confirmed(io.to("lobby").emit("message", "hi")).await;
/// # }
/// ```
pub async fn confirmed<F: Future>(work: F) -> F::Output {
    CONFIRMED.scope((), work).await
}

/// Whether the current task runs inside [`confirmed`].
pub(crate) fn wanted() -> bool {
    CONFIRMED.try_with(|()| ()).is_ok()
}
