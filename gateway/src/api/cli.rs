//! `gateway api-key create|list|revoke`: the API keys of the publish API, from the command
//! line. `create` prints the key alone on the first line of stdout (so that
//! `KEY=$(gateway api-key create ... | head -1)` works) and its details on stderr; Redis
//! keeps only its hash, so it is never shown again.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::json;

use super::keys::{KeyStore, Scopes};
use crate::{Error, RedisArgs, config::ApiKeyCommand};

/// What a command prints: lines for stdout, lines for stderr.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CommandOutput {
    /// The answer (a key, one line per key, a confirmation).
    pub stdout: Vec<String>,
    /// What a person reads next to it.
    pub stderr: Vec<String>,
}

/// `gateway api-key ...`.
pub async fn run_api_key_command(command: &ApiKeyCommand) -> Result<CommandOutput, Error> {
    match command {
        ApiKeyCommand::Create {
            redis,
            tenant,
            name,
            events,
            users,
            tenant_wide,
            presence,
            history,
        } => {
            let scopes = Scopes {
                events: events.clone(),
                users: *users,
                tenant_wide: *tenant_wide,
                presence: *presence,
                history: *history,
            };
            let (key, record) = connect(redis).await?.create(tenant, name, scopes).await?;
            Ok(CommandOutput {
                stdout: vec![key],
                stderr: vec![
                    format!(
                        "created API key {} ({:?}) of tenant {}: {}",
                        record.id,
                        record.name,
                        record.tenant,
                        record.scopes.describe()
                    ),
                    "the key above is shown this once: Redis keeps only its hash".to_owned(),
                ],
            })
        }
        ApiKeyCommand::List { redis, tenant } => {
            let keys = connect(redis).await?.list(tenant).await?;
            let stdout = keys
                .iter()
                .map(|key| {
                    let created = UNIX_EPOCH + Duration::from_millis(key.created_ms);
                    json!({
                        "id": key.id,
                        "name": key.name,
                        "scopes": key.scopes,
                        "created": humantime::format_rfc3339_seconds(created).to_string(),
                    })
                    .to_string()
                })
                .collect();
            Ok(CommandOutput {
                stdout,
                stderr: Vec::new(),
            })
        }
        ApiKeyCommand::Revoke { redis, tenant, id } => {
            if !connect(redis).await?.revoke(tenant, id).await? {
                return Err(Error::ApiKey(format!("no API key {id} in tenant {tenant}")));
            }
            Ok(CommandOutput {
                stdout: vec![format!("revoked API key {id}")],
                stderr: Vec::new(),
            })
        }
    }
}

/// The keys in the Redis `redis` names.
async fn connect(redis: &RedisArgs) -> Result<KeyStore, Error> {
    let url = redis
        .redis_url
        .as_deref()
        .ok_or_else(|| Error::ApiKey("API keys live in Redis: pass --redis-url".into()))?;
    Ok(KeyStore::new(crate::connect_store(url, redis).await?))
}
