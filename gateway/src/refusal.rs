//! Why a client's request is refused: the one type every handler returns. At the edge a
//! [`Refusal`] becomes the `{error: "<Display>"}` ack (`chat::reply`), the `connect_error`
//! message of a refused handshake, or an HTTP status with a JSON body (`http::error`).

use std::time::Duration;

use crate::Error;

/// A refusal, with the reason the client is told.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    /// A client event did not have the expected shape (not an object, missing or mistyped field).
    #[error("invalid payload: {0}")]
    InvalidPayload(String),
    /// A room name broke the naming rules.
    #[error("invalid room: {0}")]
    InvalidRoom(&'static str),
    /// An event name (publish API, API key scope) broke the event-name rules.
    #[error("invalid event: {0}")]
    InvalidEvent(&'static str),
    /// A message text broke the text rules.
    #[error("invalid text: {0}")]
    InvalidText(&'static str),
    /// The handshake `auth.name` broke the display-name rules.
    #[error("invalid name: {0}")]
    InvalidName(&'static str),
    /// The client addressed a room it has not joined.
    #[error("not a member of this room")]
    NotAMember,
    /// The adapter could not hand the event to the other instances; local members were served.
    #[error("cluster unavailable")]
    ClusterUnavailable,
    /// A message text is longer than its tenant's `max_message_length`.
    #[error("invalid text: longer than this tenant's limit of {0} characters")]
    TextTooLong(u32),
    /// The client emitted an event the chat does not handle.
    #[error("unknown event")]
    UnknownEvent,
    /// A `join` found the room already holding its tenant's `max_room_members`.
    #[error("room_full")]
    RoomFull,
    /// A `join` beyond the socket's `--max-rooms-per-socket` chat rooms.
    #[error("too_many_rooms: at most {0} per socket")]
    TooManyRooms(usize),
    /// A handshake beyond `--max-sockets-per-user` or `--max-sockets-per-session` sockets on
    /// this instance; says which (`per user`, `per session`).
    #[error("too_many_sockets: {0}")]
    TooManySockets(&'static str),
    /// An event arrived while `--socket-event-queue` events of the same socket were waiting.
    #[error("queue_full")]
    QueueFull,
    /// A `dm` named a user that does not exist in the sender's tenant (whether it exists in
    /// another tenant is not revealed).
    #[error("unknown user")]
    UnknownUser,
    /// A login with an unknown username or a wrong password: one message for both.
    #[error("invalid username or password")]
    BadCredentials,
    /// No valid session: `"no session"` when none was presented, `"session expired"` when the
    /// one presented is unknown, expired or deleted.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// A valid session without the right to do this.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// Over a rate limit; the same request is allowed again after `retry_after`.
    #[error("rate_limited: retry in {}s", whole_seconds(*.retry_after))]
    RateLimited {
        /// Time left in the current window.
        retry_after: Duration,
    },
    /// A dependency needed to answer (Redis, the session store) cannot be reached; try again
    /// later.
    #[error("unavailable: {0}")]
    Unavailable(&'static str),
    /// Redis cannot store a message now and this instance's spool is full: the message was
    /// not accepted (nothing spooled before it is lost).
    #[error(
        "spool_full: Redis is unreachable and this instance holds all the messages it may, retry later"
    )]
    SpoolFull,
    /// `history` or `join` with `since` on a server that keeps no history (standalone, or
    /// `--no-history`).
    #[error("no_history: this server keeps no message history")]
    NoHistory,
    /// Tenant settings outside their bounds.
    #[error("invalid settings: {0}")]
    InvalidSettings(String),
    /// A request body over its size limit (the publish API: one message, a batch).
    #[error("too_large: {0}")]
    TooLarge(&'static str),
    /// A request with the same `Idempotency-Key` is still being carried out; retry later.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// An `Idempotency-Key` already used with another request (another body or route).
    #[error("idempotency_key_reused: this Idempotency-Key was used for another request")]
    IdempotencyKeyReused,
    /// The refusal of one message of a batch, which refuses the whole batch: its index, and
    /// what is wrong with it (the status is that refusal's).
    #[error("messages[{index}]: {refusal}")]
    InBatch {
        /// The message's index in the batch, from 0.
        index: usize,
        /// Why it was refused.
        refusal: Box<Refusal>,
    },
    /// A server-side bug; details are in the logs.
    #[error("internal error")]
    Internal,
}

/// A wait rounded up to whole seconds, at least 1 (as in `Retry-After`).
pub(crate) fn whole_seconds(wait: Duration) -> u64 {
    wait.as_millis()
        .div_ceil(1000)
        .max(1)
        .try_into()
        .unwrap_or(u64::MAX)
}

/// A failure of the gateway while answering: logged here, told as `unavailable` (Redis) or
/// `internal error` (anything else).
impl From<Error> for Refusal {
    fn from(err: Error) -> Self {
        if err.is_redis_oom() {
            tracing::warn!(%err, "request failed: Redis is out of memory");
            Self::Unavailable("Redis out of memory, retry later")
        } else if err.is_redis() {
            tracing::warn!(%err, "request failed on Redis");
            Self::Unavailable("Redis unreachable, retry later")
        } else {
            tracing::error!(%err, "request failed");
            Self::Internal
        }
    }
}

impl Refusal {
    /// A short, fixed label for the refusal: the `reason` of the
    /// `socketio_events_rejected_total` metric (never client-supplied text).
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::InvalidPayload(_) => "invalid_payload",
            Self::InvalidRoom(_) => "invalid_room",
            Self::InvalidEvent(_) => "invalid_event",
            Self::InvalidText(_) | Self::TextTooLong(_) => "invalid_text",
            Self::InvalidName(_) => "invalid_name",
            Self::NotAMember => "not_a_member",
            Self::ClusterUnavailable => "cluster_unavailable",
            Self::RoomFull => "room_full",
            Self::TooManyRooms(_) => "too_many_rooms",
            Self::TooManySockets(_) => "too_many_sockets",
            Self::QueueFull => "queue_full",
            Self::UnknownUser => "unknown_user",
            Self::UnknownEvent => "unknown_event",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unauthorized(_) | Self::BadCredentials => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::TooLarge(_) => "too_large",
            Self::Conflict(_) => "conflict",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::InBatch { refusal, .. } => refusal.reason(),
            Self::Unavailable(_) => "unavailable",
            Self::SpoolFull => "spool_full",
            Self::NoHistory => "no_history",
            Self::InvalidSettings(_) | Self::Internal => "internal",
        }
    }

    /// Sorts the outcome of a room broadcast (the local members it reached) from the
    /// sender's point of view.
    ///
    /// Only a refusal of the cluster concerns the sender: the broadcast reached no one, so it
    /// may be retried or spooled. A local member that could not take the packet (closing, or
    /// too slow) is that member's problem.
    pub(crate) fn from_broadcast(result: Result<usize, engine::Error>) -> Result<(), Self> {
        match result {
            Ok(_) => Ok(()),
            Err(engine::Error::Remote(err)) => {
                // The Redis layer already warns about each failed publish.
                tracing::debug!(%err, "broadcast refused by the cluster");
                Err(Self::ClusterUnavailable)
            }
            Err(err) => {
                tracing::error!(%err, "could not encode a broadcast");
                Err(Self::Internal)
            }
        }
    }

    /// A join (or a socket's private rooms, before it is let in) whose room the cluster
    /// could not subscribe: the socket is not in the room, and the caller is told the
    /// cluster is unavailable.
    pub(crate) fn from_subscribe(err: engine::Error) -> Self {
        tracing::debug!(%err, "room not subscribed: refused");
        Self::ClusterUnavailable
    }
}
