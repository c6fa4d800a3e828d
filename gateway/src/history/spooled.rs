//! A message accepted while Redis could not store it: kept in the instance's spool with
//! everything needed to store and publish it once Redis is back.

use super::{Record, Retention};

/// Where a spooled message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Audience {
    /// A chat room: its internal name and the name its clients use.
    Room { room: String, name: String },
    /// A direct message, to the recipient's user room.
    Dm { room: String },
}

/// A message waiting in the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spooled {
    /// Who receives it.
    pub(crate) audience: Audience,
    /// Its stream.
    pub(crate) stream: String,
    /// What is stored.
    pub(crate) record: Record,
    /// Its tenant's retention when it was accepted.
    pub(crate) retention: Retention,
    /// Its last attempt was the script that stores and publishes a line together, and its
    /// answer came too late: if the spool finds it stored, that script ran and published
    /// it, and it is not published again.
    pub(crate) published_if_stored: bool,
}

impl Audience {
    /// The internal room its members are in.
    pub(crate) fn room(&self) -> &str {
        match self {
            Self::Room { room, .. } | Self::Dm { room } => room,
        }
    }

    /// The event its members receive: `message` or `dm`.
    pub(crate) fn event(&self) -> &'static str {
        match self {
            Self::Room { .. } => "message",
            Self::Dm { .. } => "dm",
        }
    }

    /// The room name clients see in the message (`None` for a DM).
    pub(crate) fn client_room(&self) -> Option<&str> {
        match self {
            Self::Room { name, .. } => Some(name),
            Self::Dm { .. } => None,
        }
    }
}
