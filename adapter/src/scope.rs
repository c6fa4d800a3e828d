//! Emit scopes: by default an emit returns once its message is queued for Redis, in order,
//! and reaches the local members at once. Code that must know Redis accepted the message
//! wraps the emit in [`confirmed`]; code that already served the local members (a message
//! spooled through a Redis outage, published once Redis is back) wraps it in [`remote_only`].

use std::future::Future;

tokio::task_local! {
    static CONFIRMED: ();
    static REMOTE_ONLY: ();
}

/// Runs `work` so that every broadcast it makes through this adapter returns only after Redis
/// answered the pipeline that carried it, and fails if Redis refused it or did not answer in
/// time ([`RedisConfig::command_timeout`](crate::RedisConfig::command_timeout)).
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

/// Runs `work` so that every broadcast it makes through this adapter goes to the other
/// instances only: this instance's sockets are not sent it again. Combine it with
/// [`confirmed`] to learn whether Redis took it.
///
/// ```no_run
/// # async fn send(io: socketioxide::SocketIo<redis_adapter::RedisAdapter<socketioxide::adapter::Emitter>>) {
/// // The local members already have this message: only the other instances need it.
/// let sent = redis_adapter::remote_only(redis_adapter::confirmed(
///     io.to("lobby").emit("message", "sent during the outage"),
/// ))
/// .await;
/// # }
/// ```
pub async fn remote_only<F: Future>(work: F) -> F::Output {
    REMOTE_ONLY.scope((), work).await
}

/// Whether the current task runs inside [`confirmed`].
pub(crate) fn confirm_wanted() -> bool {
    CONFIRMED.try_with(|()| ()).is_ok()
}

/// Whether the current task runs inside [`remote_only`].
pub(crate) fn local_skipped() -> bool {
    REMOTE_ONLY.try_with(|()| ()).is_ok()
}
