//! What a job is, as stored in Redis: one JSON object with its id, its work (the kind and its
//! payload), how many attempts failed so far and the last error.

use serde::{Deserialize, Serialize};

use crate::{Error, ids};

/// Largest encoded job, in bytes; a larger one is refused at enqueue.
pub(crate) const MAX_JOB_BYTES: usize = 64 * 1024;

/// One job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Job {
    /// Random, unique: the job's identity in logs and dead letters.
    pub(crate) id: String,
    /// What to do.
    pub(crate) work: Work,
    /// Attempts that failed so far (0 on the first delivery).
    #[serde(default)]
    pub(crate) attempt: u32,
    /// When it was first enqueued, Unix milliseconds.
    pub(crate) enqueued_at: u64,
    /// Why the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_error: Option<String>,
}

/// The kinds of job, each with its payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub(crate) enum Work {
    /// Append an event to the audit log.
    Audit(AuditEvent),
    /// Tell an offline user about a direct message.
    DmNotification(DmNotification),
    /// Tests only: fails `fail` times, holding each attempt `hold_ms`. Enqueued only through
    /// `gateway::testing`, run only by a worker started with `--test-faults` (any other
    /// worker sends it to the dead letters at once).
    Fault(Fault),
}

impl Work {
    /// The kind, as a metric label.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Audit(_) => "audit",
            Self::DmNotification(_) => "dm_notification",
            Self::Fault(_) => "fault",
        }
    }
}

/// What happened, for the audit log; written to it as one JSON line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AuditEvent {
    /// Unique per event: a job delivered twice writes one line.
    pub(crate) event_id: String,
    /// What happened.
    pub(crate) event: AuditKind,
    /// When, Unix milliseconds.
    pub(crate) ts: u64,
    /// The tenant it happened in.
    pub(crate) tenant: String,
    /// The user who did it, or whose session ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) user: Option<String>,
    /// The session id (the hash of the token, never the token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) session: Option<String>,
    /// Anything else the event carries (the client address, the new settings).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub(crate) detail: serde_json::Value,
}

/// The audited events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AuditKind {
    /// A login created a session.
    Login,
    /// A logout deleted one.
    Logout,
    /// An admin changed the tenant's settings.
    SettingsChanged,
    /// An instance found the session of a connected socket gone (expired or deleted).
    SessionEnded,
}

impl AuditEvent {
    /// An event of `event` now, with a fresh id.
    pub(crate) fn new(event: AuditKind, tenant: &str, user: Option<&str>) -> Self {
        Self {
            event_id: ids::random_id(),
            event,
            ts: ids::now_ms(),
            tenant: tenant.to_owned(),
            user: user.map(str::to_owned),
            session: None,
            detail: serde_json::Value::Null,
        }
    }

    /// The end of `session` of `user`: its id comes from the session's, so the instances
    /// that each find the session gone enqueue one event, written once.
    pub(crate) fn session_ended(tenant: &str, user: &str, session: &str) -> Self {
        Self {
            event_id: format!("session_ended-{session}"),
            session: Some(session.to_owned()),
            ..Self::new(AuditKind::SessionEnded, tenant, Some(user))
        }
    }
}

/// A direct message its recipient was not connected to receive, to be sent on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DmNotification {
    /// The tenant of both users.
    pub(crate) tenant: String,
    /// The recipient's user id.
    pub(crate) to_user: String,
    /// The sender's display name.
    pub(crate) from_name: String,
    /// The message.
    pub(crate) text: String,
    /// The message id (the one the sender's ack carried): the outbox file's name.
    pub(crate) id: String,
    /// When it was sent, Unix milliseconds.
    pub(crate) ts: u64,
}

/// The test-only failure injection ([`Work::Fault`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Fault {
    /// Attempts that fail before one succeeds (`u32::MAX`: every one).
    pub(crate) fail: u32,
    /// How long each attempt takes, milliseconds.
    pub(crate) hold_ms: u64,
}

impl Job {
    /// A new job doing `work`, with a fresh id.
    pub(crate) fn new(work: Work) -> Self {
        Self {
            id: ids::random_id(),
            work,
            attempt: 0,
            enqueued_at: ids::now_ms(),
            last_error: None,
        }
    }

    /// The JSON stored in Redis; refused beyond [`MAX_JOB_BYTES`].
    pub(crate) fn encode(&self) -> Result<String, Error> {
        let json = serde_json::to_string(self).map_err(|err| {
            tracing::error!(%err, "a job does not serialize");
            Error::Internal("a job does not serialize")
        })?;
        if json.len() > MAX_JOB_BYTES {
            return Err(Error::JobTooLarge(json.len()));
        }
        Ok(json)
    }

    /// The job in `json`, if it is one.
    pub(crate) fn decode(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_is_bounded() {
        let job = Job::new(Work::Fault(Fault {
            fail: 2,
            hold_ms: 0,
        }));
        let json = job.encode().unwrap_or_else(|err| panic!("{err}"));
        assert!(json.contains(r#""kind":"fault""#), "{json}");
        assert_eq!(Job::decode(&json).ok(), Some(job));
        let big = Job::new(Work::DmNotification(DmNotification {
            tenant: "acme".into(),
            to_user: "bob".into(),
            from_name: "alice".into(),
            text: "x".repeat(MAX_JOB_BYTES),
            id: "m-1".into(),
            ts: 1,
        }));
        assert!(matches!(big.encode(), Err(Error::JobTooLarge(_))));
        assert!(Job::decode("{\"id\":1}").is_err());
    }
}
