//! Sessions in Redis: created at login, presented as a token (cookie or `auth.token`), gone at
//! logout or when their TTL ends.
//!
//! The token is 32 bytes (256 bits) from the OS generator, base64url without padding (43
//! characters). Redis never sees it: a session is stored under its id, the BLAKE2s-256 hash of
//! the token (`{prefix}:session:{id}`), so neither a key listing nor a room name reveals a
//! usable token. The value is JSON `{user, tenant, created_at, ip}` and expires after the
//! configured TTL, counted from login.

use std::{fmt, sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};

use crate::{Error, ids, store::Store};

/// A session token as the client holds it. Not `Debug`-printed in full.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Token(String);

impl Token {
    /// A fresh token from the OS generator.
    pub(crate) fn generate() -> Result<Self, Error> {
        ids::secret().map(Self)
    }

    /// `text` if it has the shape of a token; anything else cannot be one, and is not looked up.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        ids::is_secret_shaped(text).then(|| Self(text.to_owned()))
    }

    /// The token as sent to the client.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of the session this token opens.
    pub(crate) fn id(&self) -> SessionId {
        SessionId(ids::digest(&self.0).into())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

/// A session's id: the hash of its token, safe to use in keys, room names and logs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SessionId(Arc<str>);

impl SessionId {
    /// The id as text (43 characters of base64url).
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a session records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Session {
    /// The user id.
    pub(crate) user: String,
    /// The user's tenant id.
    pub(crate) tenant: String,
    /// When the session was created, in milliseconds since the Unix epoch.
    pub(crate) created_at: u64,
    /// The client IP that logged in, if known.
    pub(crate) ip: Option<String>,
}

/// Sessions in Redis.
pub(crate) struct SessionStore {
    store: Store,
    ttl: Duration,
}

impl SessionStore {
    /// Sessions in `store`, living `ttl` from creation.
    pub(crate) fn new(store: Store, ttl: Duration) -> Self {
        Self { store, ttl }
    }

    /// How long a session lives.
    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Stores `session` under a new token and returns the token.
    pub(crate) async fn create(&self, session: &Session) -> Result<Token, Error> {
        let token = Token::generate()?;
        let value = serde_json::to_string(session).map_err(|err| {
            tracing::error!(%err, "could not serialize a session");
            Error::Internal("a session does not serialize")
        })?;
        let ttl_ms = u64::try_from(self.ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut set = redis::cmd("SET");
        set.arg(self.store.keys().session(token.id().as_str()))
            .arg(value)
            .arg("PX")
            .arg(ttl_ms)
            .arg("NX");
        // NX: 256 random bits never collide, but never overwrite another session either.
        let created: Option<String> = self.store.query(&set).await?;
        match created {
            Some(_) => Ok(token),
            None => Err(Error::Internal("a fresh session token was taken")),
        }
    }

    /// The live session `token` opens, `None` if it expired, was deleted or never existed.
    pub(crate) async fn get(&self, token: &Token) -> Result<Option<Session>, Error> {
        let mut get = redis::cmd("GET");
        get.arg(self.store.keys().session(token.id().as_str()));
        let value: Option<String> = self.store.query(&get).await?;
        Ok(value.and_then(|value| match serde_json::from_str(&value) {
            Ok(session) => Some(session),
            Err(err) => {
                tracing::warn!(%err, "unreadable session in Redis: treated as absent");
                None
            }
        }))
    }

    /// Deletes session `id`; `true` if it existed.
    pub(crate) async fn delete(&self, id: &SessionId) -> Result<bool, Error> {
        let mut del = redis::cmd("DEL");
        del.arg(self.store.keys().session(id.as_str()));
        let deleted: u64 = self.store.query(&del).await?;
        Ok(deleted > 0)
    }

    /// For each id, whether its session still exists. The checks go out together on the
    /// multiplexed connection (one command each, so that on a cluster each goes to its own
    /// slot's master).
    pub(crate) async fn exist(&self, ids: &[SessionId]) -> Result<Vec<bool>, Error> {
        let checks = ids.iter().map(|id| {
            let mut exists = redis::cmd("EXISTS");
            exists.arg(self.store.keys().session(id.as_str()));
            async move { self.store.query::<bool>(&exists).await }
        });
        futures_util::future::try_join_all(checks).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_random_bits_and_ids_hide_them() {
        let a = Token::generate().unwrap_or_else(|err| panic!("{err}"));
        let b = Token::generate().unwrap_or_else(|err| panic!("{err}"));
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), ids::SECRET_LEN);
        assert_eq!(Token::parse(a.as_str()), Some(a.clone()));
        assert_eq!(a.id(), a.id());
        assert_ne!(a.id(), b.id());
        assert_ne!(a.id().as_str(), a.as_str());
        assert_eq!(a.id().as_str().len(), ids::SECRET_LEN);
        assert_eq!(format!("{a:?}"), "Token(..)");
    }

    #[test]
    fn only_token_shaped_text_is_looked_up() {
        for bad in [
            "",
            "short",
            &"a".repeat(42),
            &"a".repeat(44),
            &format!("{}=", "a".repeat(42)),
            &format!("{}+", "a".repeat(42)),
        ] {
            assert!(Token::parse(bad).is_none(), "{bad:?}");
        }
    }
}
