//! `GET` and `PUT /api/admin/tenants/{id}/settings`: a tenant's settings. Any user of the
//! tenant may read them; only its admins may change them, and a change is enforced on every
//! instance before the `PUT` is answered (see `cache`).

use axum::{
    Json,
    extract::{Path, State, rejection::JsonRejection},
    http::HeaderMap,
};
use serde::{Deserialize, Serialize};

use super::{AccountRoutes, auth::current_user};
use crate::{
    cache::{Invalidation, TenantSettings},
    jobs::{AuditEvent, AuditKind},
    refusal::Refusal,
    request::Peer,
};

/// The body of the `PUT`: every setting, nothing else (the history retention may be left out:
/// the defaults then apply).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SettingsBody {
    max_message_length: u32,
    max_room_members: u32,
    #[serde(default = "default_history_messages")]
    history_max_messages: u32,
    #[serde(default = "default_history_age")]
    history_max_age_secs: u64,
}

fn default_history_messages() -> u32 {
    crate::cache::DEFAULT_HISTORY_MESSAGES
}

fn default_history_age() -> u64 {
    crate::cache::DEFAULT_HISTORY_AGE_SECS
}

/// The answer of the `GET`.
#[derive(Debug, Serialize)]
pub(super) struct SettingsView {
    tenant: String,
    settings: TenantSettings,
}

/// The answer of the `PUT`: the stored settings and how many instances confirmed dropping the
/// old ones.
#[derive(Debug, Serialize)]
pub(super) struct SettingsWritten {
    tenant: String,
    settings: TenantSettings,
    invalidation: Invalidation,
}

/// `GET /api/admin/tenants/{id}/settings`: for users of that tenant.
pub(super) async fn get_settings(
    State(state): State<AccountRoutes>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Result<Json<SettingsView>, Refusal> {
    let accounts = &state.accounts;
    let user = current_user(accounts, &headers).await?;
    if *user.tenant != *tenant {
        return Err(Refusal::Forbidden("not a user of this tenant"));
    }
    let settings = accounts.settings.get(&tenant).await;
    Ok(Json(SettingsView { tenant, settings }))
}

/// `PUT /api/admin/tenants/{id}/settings {max_message_length, max_room_members,
/// history_max_messages?, history_max_age_secs?}`: for admins
/// of that tenant.
pub(super) async fn put_settings(
    State(state): State<AccountRoutes>,
    Path(tenant): Path<String>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Result<Json<SettingsBody>, JsonRejection>,
) -> Result<Json<SettingsWritten>, Refusal> {
    let accounts = &state.accounts;
    // With the cookie, only from a page that may use it (403 `forbidden: origin`).
    accounts.origins.guard_cookie(peer, &headers)?;
    let user = current_user(accounts, &headers).await?;
    if *user.tenant != *tenant || !user.admin {
        return Err(Refusal::Forbidden("admin role of this tenant required"));
    }
    let Json(body) = body.map_err(|rejection| Refusal::InvalidPayload(rejection.body_text()))?;
    let settings = TenantSettings {
        max_message_length: body.max_message_length,
        max_room_members: body.max_room_members,
        history_max_messages: body.history_max_messages,
        history_max_age_secs: body.history_max_age_secs,
    };
    settings.validate()?;
    let invalidation = accounts
        .settings
        .write(&tenant, &settings, accounts.invalidation_wait)
        .await?;
    tracing::info!(%tenant, admin = %user.id, ?settings, ?invalidation, "tenant settings changed");
    let mut event = AuditEvent::new(AuditKind::SettingsChanged, &tenant, Some(&user.id));
    event.detail = serde_json::json!({ "settings": settings });
    accounts.jobs.audit(event).await;
    Ok(Json(SettingsWritten {
        tenant,
        settings,
        invalidation,
    }))
}
