//! socketioxide's ids on the bus: a `Uid` or `Sid` is 16 URL-safe base64 characters, the
//! same shape as the bus's [`Id`], so each converts as is.

use socketioxide_core::{Sid, Uid};

use crate::cluster::Id;

/// The bus id of instance `uid`.
pub(crate) fn node(uid: Uid) -> Id {
    request(*uid)
}

/// The bus id of request `sid`.
pub(crate) fn request(sid: Sid) -> Id {
    // A Sid is always 16 URL-safe base64 characters: the fallback is never taken, and would
    // only make the request unanswerable, never reach another one.
    Id::parse(sid.as_str().as_bytes()).unwrap_or_else(Id::random)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_as_is() {
        let sid = Sid::new();
        assert_eq!(request(sid).as_str(), sid.as_str());
        let uid = Uid::new();
        assert_eq!(node(uid).to_string(), uid.to_string());
    }
}
