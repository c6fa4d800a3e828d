//! Every Redis key and channel the gateway itself uses (the adapter names its own channels),
//! all under the configured `--key-prefix`. The README lists them.

use std::sync::Arc;

/// Builds key and channel names from the prefix.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    prefix: Arc<str>,
}

impl Keys {
    /// Names under `prefix`.
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// `{prefix}:session:{id}`: one session (JSON), expiring with it. `id` is the hash of the
    /// token, never the token itself.
    pub(crate) fn session(&self, id: &str) -> String {
        format!("{}:session:{id}", self.prefix)
    }

    /// `{prefix}:rl:{scope}:{id}`: the hit counter of one fixed rate-limit window.
    pub(crate) fn rate(&self, scope: &str, id: &str) -> String {
        format!("{}:rl:{scope}:{id}", self.prefix)
    }

    /// `{prefix}:known:{{user}}`: the addresses `user` logged in from recently (a sorted set
    /// scored by time; the username is the hash tag, the slot of its login-failure keys).
    pub(crate) fn known_addresses(&self, user: &str) -> String {
        format!("{}:known:{{{user}}}", self.prefix)
    }

    /// `{prefix}:tenant:{id}:settings`: a tenant's settings (JSON), no expiry.
    pub(crate) fn tenant_settings(&self, tenant: &str) -> String {
        format!("{}:tenant:{tenant}:settings", self.prefix)
    }

    /// `{prefix}:invalidate`: the Pub/Sub channel telling every instance to drop a cached
    /// tenant's settings.
    pub(crate) fn invalidate_channel(&self) -> String {
        format!("{}:invalidate", self.prefix)
    }

    /// `{prefix}:invalidate:ack:{nonce}`: how many instances have dropped the entry named by
    /// one invalidation (expires after a minute).
    pub(crate) fn invalidate_ack(&self, nonce: &str) -> String {
        format!("{}:invalidate:ack:{nonce}", self.prefix)
    }

    /// `{prefix}:h:{{tenant}}:r:{room}`: the history of `tenant`'s chat room `room` (a
    /// stream; the tenant is the hash tag, the slot of its users' message rate counters).
    pub(crate) fn room_history(&self, tenant: &str, room: &str) -> String {
        format!("{}:h:{{{tenant}}}:r:{room}", self.prefix)
    }

    /// `{prefix}:h:{{tenant}}:d:{a}:{b}`: the direct messages between users `a` and `b` of
    /// `tenant`, the two ids in byte order (user ids hold no `:`, so the name is unambiguous).
    pub(crate) fn dm_history(&self, tenant: &str, a: &str, b: &str) -> String {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        format!("{}:h:{{{tenant}}}:d:{low}:{high}", self.prefix)
    }

    /// `{prefix}:apikey:{digest}`: one API key of the publish API (JSON `{id, tenant, name,
    /// scopes, created_ms}`), no expiry, under the hash of the key (`ids::digest`), never the
    /// key itself. Looked up from the key alone, so it cannot carry the tenant's hash tag.
    pub(crate) fn api_key(&self, digest: &str) -> String {
        format!("{}:apikey:{digest}", self.prefix)
    }

    /// `{prefix}:apikeys:{{tenant}}`: `tenant`'s API keys (a hash: key id -> JSON `{digest,
    /// name, scopes, created_ms}`), for listing and revoking; the tenant is the hash tag.
    pub(crate) fn api_key_index(&self, tenant: &str) -> String {
        format!("{}:apikeys:{{{tenant}}}", self.prefix)
    }

    /// `{prefix}:idem:{{tenant}}:{key id}:{idempotency key}`: one publish request's
    /// `Idempotency-Key` (JSON: in progress, or the first answer), expiring. The tenant is the
    /// hash tag, the slot of its histories and of its keys' rate counters.
    pub(crate) fn idempotency(&self, tenant: &str, key_id: &str, idempotency_key: &str) -> String {
        format!(
            "{}:idem:{{{tenant}}}:{key_id}:{idempotency_key}",
            self.prefix
        )
    }

    /// `{prefix}:jobs:{{queue}}:stream`: the jobs of `queue` ready to run (a stream read by
    /// the consumer group `workers`). Every key of one queue has the queue's name as its hash
    /// tag, so the queue's scripts touch one slot of a Redis Cluster.
    pub(crate) fn job_stream(&self, queue: &str) -> String {
        format!("{}:jobs:{{{queue}}}:stream", self.prefix)
    }

    /// `{prefix}:jobs:{{queue}}:scheduled`: delayed jobs and retries waiting for their time (a
    /// sorted set scored by when they are due, in Unix milliseconds).
    pub(crate) fn job_scheduled(&self, queue: &str) -> String {
        format!("{}:jobs:{{{queue}}}:scheduled", self.prefix)
    }

    /// `{prefix}:jobs:{{queue}}:dead`: the dead letters of `queue` (a stream, capped).
    pub(crate) fn job_dead(&self, queue: &str) -> String {
        format!("{}:jobs:{{{queue}}}:dead", self.prefix)
    }

    /// `{prefix}:jobs:{{queue}}:done:{id}`: the marker of one audit event written (or being
    /// written) to the audit log, so that a job delivered twice writes one line (expires).
    pub(crate) fn job_done(&self, queue: &str, id: &str) -> String {
        format!("{}:jobs:{{{queue}}}:done:{id}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let keys = Keys::new("socket.io");
        assert_eq!(keys.session("abc"), "socket.io:session:abc");
        assert_eq!(
            keys.rate("login", "127.0.0.1"),
            "socket.io:rl:login:127.0.0.1"
        );
        assert_eq!(
            keys.tenant_settings("acme"),
            "socket.io:tenant:acme:settings"
        );
        assert_eq!(keys.known_addresses("bob"), "socket.io:known:{bob}");
        assert_eq!(
            keys.room_history("acme", "general"),
            "socket.io:h:{acme}:r:general"
        );
        assert_eq!(
            keys.dm_history("acme", "bob", "al"),
            "socket.io:h:{acme}:d:al:bob"
        );
        assert_eq!(
            keys.dm_history("acme", "al", "bob"),
            keys.dm_history("acme", "bob", "al")
        );
        assert_eq!(keys.invalidate_channel(), "socket.io:invalidate");
        assert_eq!(keys.invalidate_ack("n1"), "socket.io:invalidate:ack:n1");
        assert_eq!(keys.api_key("h4sh"), "socket.io:apikey:h4sh");
        assert_eq!(keys.api_key_index("acme"), "socket.io:apikeys:{acme}");
        assert_eq!(
            keys.idempotency("acme", "0a1b2c3d4e5f", "order-7"),
            "socket.io:idem:{acme}:0a1b2c3d4e5f:order-7"
        );
        assert_eq!(keys.job_stream("q"), "socket.io:jobs:{q}:stream");
        assert_eq!(keys.job_scheduled("q"), "socket.io:jobs:{q}:scheduled");
        assert_eq!(keys.job_dead("q"), "socket.io:jobs:{q}:dead");
        assert_eq!(keys.job_done("q", "e1"), "socket.io:jobs:{q}:done:e1");
    }
}
