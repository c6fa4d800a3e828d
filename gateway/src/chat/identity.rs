//! Who a socket is to the others: the display name given at handshake (`auth: {name}`),
//! else its socket id. Kept in the socket's extensions for the life of the connection.

use std::sync::Arc;

use serde_json::Value;
use socketioxide::{ParserError, adapter::Adapter, socket::Socket};

use super::validate;
use crate::Error;

/// The name a socket's messages and typing notices carry in `from`.
#[derive(Clone, Debug)]
pub(crate) struct DisplayName(Arc<str>);

impl DisplayName {
    /// The name from the handshake auth payload, `Ok(None)` when none was given.
    ///
    /// A missing, non-object or unparsable auth payload and a `null` name mean "no name";
    /// a `name` that is present but not a valid string is refused.
    pub(crate) fn from_auth(auth: Result<Value, ParserError>) -> Result<Option<Self>, Error> {
        let Ok(Value::Object(auth)) = auth else {
            return Ok(None);
        };
        match auth.get("name") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(name)) => {
                validate::name(name)?;
                Ok(Some(Self(name.as_str().into())))
            }
            Some(_) => Err(Error::InvalidName("must be a string")),
        }
    }

    /// The name stored on `socket`, else its socket id.
    pub(crate) fn of<A: Adapter>(socket: &Socket<A>) -> Self {
        socket
            .extensions
            .get::<Self>()
            .unwrap_or_else(|| Self(socket.id.to_string().into()))
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

    fn name(auth: Value) -> Result<Option<String>, Error> {
        DisplayName::from_auth(Ok(auth)).map(|n| n.map(|n| n.as_str().to_owned()))
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
