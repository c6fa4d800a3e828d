//! Who a socket is: its tenant, user, display name and session, settled by the handshake and
//! kept with the socket (`chat::Member`) for the life of the connection.

use std::sync::Arc;

use serde_json::Value;

use crate::{refusal::Refusal, sessions::SessionId, tenancy, validate};

/// A connected socket's identity.
#[derive(Clone, Debug)]
pub(crate) struct Identity {
    /// The tenant every room of this socket belongs to.
    pub(crate) tenant: Arc<str>,
    /// The user id (in standalone mode, the socket id: every socket is its own anonymous user).
    pub(crate) user: Arc<str>,
    /// The name the socket's messages carry in `from`.
    pub(crate) name: DisplayName,
    /// The session the socket was opened with (none in standalone mode).
    pub(crate) session: Option<SessionId>,
}

impl Identity {
    /// The rooms the gateway itself puts the socket in: its user's, its session's (when it
    /// has one), and its tenant's, in this order.
    pub(crate) fn private_rooms(&self) -> Vec<String> {
        let mut rooms = vec![tenancy::user_room(&self.tenant, &self.user)];
        if let Some(session) = &self.session {
            rooms.push(tenancy::session_room(&self.tenant, session.as_str()));
        }
        rooms.push(tenancy::tenant_room(&self.tenant));
        rooms
    }
}

/// The name a socket's messages and typing notices carry in `from`.
#[derive(Clone, Debug)]
pub(crate) struct DisplayName(Arc<str>);

impl DisplayName {
    /// The name from the handshake auth payload, `Ok(None)` when none was given.
    ///
    /// A missing or non-object auth payload and a `null` name mean "no name";
    /// a `name` that is present but not a valid string is refused.
    pub(crate) fn from_auth(auth: Option<&Value>) -> Result<Option<Self>, Refusal> {
        let Some(Value::Object(auth)) = auth else {
            return Ok(None);
        };
        match auth.get("name") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(name)) => {
                validate::name(name)?;
                Ok(Some(Self(name.as_str().into())))
            }
            Some(_) => Err(Refusal::InvalidName("must be a string")),
        }
    }

    /// A name taken as is (from the user directory, validated when it was loaded).
    pub(crate) fn trusted(name: Arc<str>) -> Self {
        Self(name)
    }

    /// The name as text.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn name(auth: Value) -> Result<Option<String>, Refusal> {
        DisplayName::from_auth(Some(&auth)).map(|n| n.map(|n| n.as_str().to_owned()))
    }

    #[test]
    fn names_from_auth() {
        assert_eq!(
            name(json!({"name": "alice"})).ok(),
            Some(Some("alice".into()))
        );
        assert_eq!(name(json!({})).ok(), Some(None));
        assert_eq!(name(json!({"name": null})).ok(), Some(None));
        assert_eq!(name(json!("alice")).ok(), Some(None));
        assert!(name(json!({"name": 42})).is_err());
        assert!(name(json!({"name": ""})).is_err());
        assert!(name(json!({"name": "a\u{1b}[31m"})).is_err());
    }
}
