//! Session and socket ids: 15 random bytes, base64url (20 characters, as engine.io's own),
//! unguessable so that nobody can poll or post into another's session.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

/// A new session or socket id.
pub(crate) fn new_id() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 15]>())
}
