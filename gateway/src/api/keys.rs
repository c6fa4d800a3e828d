//! API keys of the publish API: their format, what each may do (its [`Scopes`]), and where
//! they are kept.
//!
//! A key is `gk_<id>_<secret>`: `id` is 12 random hex digits, public (listed, used to revoke,
//! part of the sender of the key's chat messages); `secret` is 256 random bits from the OS
//! generator as base64url (43 characters). Redis never holds a key: its record lives under the
//! key's hash (`ids::digest`, BLAKE2s-256, enough for a high-entropy secret: no salt, no slow
//! hash needed), `{prefix}:apikey:{digest}`, and the tenant's index
//! `{prefix}:apikeys:{{tenant}}` lists its keys by id. The tenant a key publishes to is the
//! record's, never anything a request says.
//!
//! Lookups are not cached: every request reads the record (one `GET`; a batch of 1,000
//! messages is one request), so a revocation (`DEL` of the record) holds on every instance
//! from the next request on, with no invalidation to miss while a subscription is down.

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::{Error, ids, refusal::Refusal, request, store::Store, tenancy, validate};

/// What every key starts with.
const KEY_PREFIX: &str = "gk_";
/// Hex digits of a key id.
const ID_LEN: usize = 12;
/// Attempts at drawing an id not yet used in the tenant.
const ID_ATTEMPTS: usize = 3;
/// The `events` scope that allows every event name.
pub(crate) const ANY_EVENT: &str = "*";

/// What a key may do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Scopes {
    /// Event names it may publish (to rooms, and to the targets below when allowed); `["*"]`
    /// for any.
    pub(crate) events: Vec<String>,
    /// It may address users (`"user"`).
    pub(crate) users: bool,
    /// It may address every socket of the tenant (`"tenant": true`).
    pub(crate) tenant_wide: bool,
    /// It may read who is in a room.
    pub(crate) presence: bool,
    /// It may read rooms' histories.
    pub(crate) history: bool,
}

impl Scopes {
    /// Refuses event names no publish could use: each must pass `validate::event`, or be `*`
    /// alone.
    pub(crate) fn validate(&self) -> Result<(), Refusal> {
        if self.events.iter().any(|event| event == ANY_EVENT) {
            return match self.events.len() {
                1 => Ok(()),
                _ => Err(Refusal::InvalidEvent(
                    "`*` allows every event: give it alone",
                )),
            };
        }
        self.events
            .iter()
            .try_for_each(|event| validate::event(event))
    }

    /// Whether the key may publish `event`.
    pub(crate) fn may_publish(&self, event: &str) -> bool {
        self.events
            .iter()
            .any(|allowed| allowed == ANY_EVENT || allowed == event)
    }

    /// The scopes in one line, for the command line: `events=a,b users tenant-wide`.
    pub(crate) fn describe(&self) -> String {
        let events = match self.events.as_slice() {
            [] => "events=(none)".to_owned(),
            events => format!("events={}", events.join(",")),
        };
        let flags = [
            (self.users, "users"),
            (self.tenant_wide, "tenant-wide"),
            (self.presence, "presence"),
            (self.history, "history"),
        ];
        std::iter::once(events)
            .chain(
                flags
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, name)| (*name).to_owned()),
            )
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A key as stored: everything but the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ApiKey {
    /// The public id.
    pub(crate) id: String,
    /// The tenant it publishes to, and only to.
    pub(crate) tenant: String,
    /// Its name: the `from` of the chat messages it sends.
    pub(crate) name: String,
    /// What it may do.
    pub(crate) scopes: Scopes,
    /// When it was created, ms since the Unix epoch.
    pub(crate) created_ms: u64,
}

/// One entry of a tenant's index: what `list` shows, and the hash `revoke` deletes.
#[derive(Debug, Serialize, Deserialize)]
struct Listed {
    digest: String,
    name: String,
    scopes: Scopes,
    created_ms: u64,
}

/// The key `text` if it has the shape of one: `(id, the whole key)`.
fn parse(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_at_checked(ID_LEN)?;
    let secret = secret.strip_prefix('_')?;
    let id_ok = id
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (id_ok && ids::is_secret_shaped(secret)).then_some((id, text))
}

/// The API keys in Redis.
#[derive(Clone)]
pub(crate) struct KeyStore {
    store: Store,
}

impl KeyStore {
    /// Keys in `store`.
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }

    /// Creates a key of `tenant` called `name` with `scopes`: the key (shown once, never
    /// stored) and its record.
    pub(crate) async fn create(
        &self,
        tenant: &str,
        name: &str,
        scopes: Scopes,
    ) -> Result<(String, ApiKey), Error> {
        if !tenancy::valid_id(tenant) {
            return Err(Error::ApiKey(format!(
                "--tenant {tenant:?}: 1 to 64 characters of A-Z a-z 0-9 _ . -"
            )));
        }
        validate::name(name).map_err(|err| Error::ApiKey(format!("--name: {err}")))?;
        scopes
            .validate()
            .map_err(|err| Error::ApiKey(format!("--events: {err}")))?;
        let keys = self.store.keys();
        for _ in 0..ID_ATTEMPTS {
            let id = random_id()?;
            let key = format!("{KEY_PREFIX}{id}_{}", ids::secret()?);
            let digest = ids::digest(&key);
            let record = ApiKey {
                id: id.clone(),
                tenant: tenant.to_owned(),
                name: name.to_owned(),
                scopes: scopes.clone(),
                created_ms: ids::now_ms(),
            };
            let listed = Listed {
                digest: digest.clone(),
                name: record.name.clone(),
                scopes: record.scopes.clone(),
                created_ms: record.created_ms,
            };
            // The index first: a key that works is always listed, so it can be revoked.
            let mut index = redis::cmd("HSETNX");
            index
                .arg(keys.api_key_index(tenant))
                .arg(&id)
                .arg(to_json(&listed)?);
            if self.store.query::<u8>(&index).await? == 0 {
                continue; // That id is taken in this tenant: draw another.
            }
            let mut set = redis::cmd("SET");
            set.arg(keys.api_key(&digest))
                .arg(to_json(&record)?)
                .arg("NX");
            let created: Option<String> = self.store.query(&set).await?;
            if created.is_none() {
                return Err(Error::Internal("a fresh API key was already stored"));
            }
            return Ok((key, record));
        }
        Err(Error::ApiKey(
            "no unused key id after several draws, try again".into(),
        ))
    }

    /// `tenant`'s keys, oldest first.
    pub(crate) async fn list(&self, tenant: &str) -> Result<Vec<ApiKey>, Error> {
        let mut all = redis::cmd("HGETALL");
        all.arg(self.store.keys().api_key_index(tenant));
        let entries: Vec<(String, String)> = self.store.query(&all).await?;
        let mut keys: Vec<ApiKey> = entries
            .into_iter()
            .filter_map(|(id, json)| {
                let listed: Listed = serde_json::from_str(&json)
                    .inspect_err(
                        |err| tracing::warn!(%id, %err, "an API key index entry does not parse"),
                    )
                    .ok()?;
                Some(ApiKey {
                    id,
                    tenant: tenant.to_owned(),
                    name: listed.name,
                    scopes: listed.scopes,
                    created_ms: listed.created_ms,
                })
            })
            .collect();
        keys.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        Ok(keys)
    }

    /// Revokes `tenant`'s key `id`: its record is deleted (the next request with it, on any
    /// instance, is refused), then its index entry. `false` when the tenant has no such key.
    pub(crate) async fn revoke(&self, tenant: &str, id: &str) -> Result<bool, Error> {
        let keys = self.store.keys();
        let index = keys.api_key_index(tenant);
        let mut get = redis::cmd("HGET");
        get.arg(&index).arg(id);
        let Some(json) = self.store.query::<Option<String>>(&get).await? else {
            return Ok(false);
        };
        // An entry that does not parse is removed from the index all the same.
        if let Ok(listed) = serde_json::from_str::<Listed>(&json) {
            let mut delete = redis::cmd("DEL");
            delete.arg(keys.api_key(&listed.digest));
            self.store.query::<u64>(&delete).await?;
        }
        let mut forget = redis::cmd("HDEL");
        forget.arg(&index).arg(id);
        self.store.query::<u64>(&forget).await?;
        Ok(true)
    }

    /// The record of the key `presented`, `None` for anything that is not a live key (not
    /// shaped like one: not looked up; unknown; revoked).
    pub(crate) async fn lookup(&self, presented: &str) -> Result<Option<ApiKey>, Error> {
        let Some((id, key)) = parse(presented) else {
            return Ok(None);
        };
        let mut get = redis::cmd("GET");
        get.arg(self.store.keys().api_key(&ids::digest(key)));
        let Some(json) = self.store.query::<Option<String>>(&get).await? else {
            return Ok(None);
        };
        match serde_json::from_str::<ApiKey>(&json) {
            Ok(record) if record.id == id => Ok(Some(record)),
            Ok(_) | Err(_) => {
                tracing::warn!(%id, "an API key record does not match its key: refused");
                Ok(None)
            }
        }
    }

    /// The key `headers` present (`Authorization: Bearer <key>`), or why the request is
    /// refused: 401 without a key or with one that is not live, 503 when Redis cannot say.
    pub(crate) async fn authenticate(&self, headers: &HeaderMap) -> Result<ApiKey, Refusal> {
        let presented = request::bearer(headers).ok_or(Refusal::Unauthorized("no API key"))?;
        self.lookup(&presented)
            .await
            .map_err(|err| {
                tracing::warn!(%err, "cannot read an API key: refused");
                Refusal::Unavailable("API key store unreachable, retry later")
            })?
            .ok_or(Refusal::Unauthorized("unknown or revoked API key"))
    }
}

/// A fresh key id: [`ID_LEN`] hex digits from the OS generator.
fn random_id() -> Result<String, Error> {
    let mut bytes = [0u8; ID_LEN / 2];
    ids::os_random(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// `value` as JSON.
fn to_json(value: &impl Serialize) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|err| {
        tracing::error!(%err, "could not serialize an API key");
        Error::Internal("an API key does not serialize")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(events: &[&str]) -> Scopes {
        Scopes {
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            ..Scopes::default()
        }
    }

    #[test]
    fn only_key_shaped_text_is_looked_up() {
        let secret = ids::secret().unwrap_or_default();
        let key = format!("gk_0123456789ab_{secret}");
        assert_eq!(parse(&key), Some(("0123456789ab", key.as_str())));
        for bad in [
            String::new(),
            "gk_".to_owned(),
            format!("gk_0123456789AB_{secret}"),
            format!("gk_0123456789a_{secret}"),
            format!("gk_0123456789ab{secret}"),
            format!("gk_0123456789ab_{secret}x"),
            format!("xx_0123456789ab_{secret}"),
            format!("gk_é123456789ab_{secret}"),
            secret.clone(),
        ] {
            assert_eq!(parse(&bad), None, "{bad:?}");
        }
        let id = random_id().unwrap_or_default();
        assert_eq!(id.len(), ID_LEN);
        assert!(parse(&format!("gk_{id}_{secret}")).is_some());
    }

    #[test]
    fn event_scopes() {
        assert!(scopes(&["*"]).validate().is_ok());
        assert!(scopes(&[]).validate().is_ok());
        assert!(scopes(&["order.created", "message"]).validate().is_ok());
        for bad in [&["*", "a"][..], &["connect"], &["a b"], &[""]] {
            assert!(scopes(bad).validate().is_err(), "{bad:?}");
        }
        assert!(scopes(&["*"]).may_publish("anything"));
        assert!(scopes(&["a", "b"]).may_publish("b"));
        assert!(!scopes(&["a", "b"]).may_publish("c"));
        assert!(!scopes(&[]).may_publish("a"));
        let all = Scopes {
            events: vec!["a".into(), "b".into()],
            users: true,
            tenant_wide: true,
            presence: true,
            history: true,
        };
        assert_eq!(
            all.describe(),
            "events=a,b users tenant-wide presence history"
        );
        assert_eq!(Scopes::default().describe(), "events=(none)");
    }
}
