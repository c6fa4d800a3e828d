//! What the gateway accepts from the official Socket.IO Redis emitter
//! (`@socket.io/redis-emitter`, enabled with `--emitter-key`): the tenant rules of
//! [`tenancy`] applied to the raw room names backends write.
//!
//! - every room an operation names (selected, excepted, joined or left) must be a name the
//!   gateway builds, `t:{tenant}:{r|u|s|a}:{name}` ([`tenancy::parse`]);
//! - `socketsJoin` / `socketsLeave` select sockets by rooms of one tenant and move them in or
//!   out of that tenant's chat rooms (`r`) only: never across tenants, never into a user's,
//!   session's or tenant's room, which the gateway alone manages;
//! - an emit or a disconnect with no room is for the whole namespace: every tenant. The
//!   emitter is trusted as far as Redis access is, like the operator.
//!
//! Anything else is dropped and counted by the adapter
//! (`redis_adapter_emitter_dropped_total{reason="refused"}`).

use redis_adapter::{EmitterConfig, EmitterRequest, Room};

use crate::tenancy::{self, Kind};

/// The adapter's emitter settings for emitter key `key`, with the gateway's rules.
pub(crate) fn config(key: &str) -> EmitterConfig {
    EmitterConfig::new(key).with_accept(accept)
}

/// Whether the gateway carries out `request`; `Err` names the first rule it breaks.
fn accept(request: &EmitterRequest) -> Result<(), String> {
    let selection = request.selection();
    let selected = tenants_of(&selection.rooms)?;
    tenants_of(&selection.except)?;
    let (EmitterRequest::Join { rooms, .. } | EmitterRequest::Leave { rooms, .. }) = request else {
        return Ok(());
    };
    let Some(tenant) = selected.first() else {
        return Err("a join or leave must select sockets by room".to_owned());
    };
    let targets = rooms
        .iter()
        .map(|room| match tenancy::parse(room) {
            Some((tenant, Kind::Room, _)) => Ok(tenant),
            _ => Err(format!("{room:?} is not a tenant's chat room")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    match selected.iter().chain(&targets).all(|other| other == tenant) {
        true => Ok(()),
        false => Err("a join or leave crosses tenants".to_owned()),
    }
}

/// The tenant of each of `rooms`, or the first that is not a tenant-scoped name.
fn tenants_of(rooms: &[Room]) -> Result<Vec<&str>, String> {
    rooms
        .iter()
        .map(|room| {
            tenancy::parse(room)
                .map(|(tenant, _, _)| tenant)
                .ok_or_else(|| format!("{room:?} is not a tenant-scoped room name"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use redis_adapter::{EventArgs, Selection};

    use super::*;

    fn selection(rooms: &[&str], except: &[&str]) -> Selection {
        let owned = |names: &[&str]| names.iter().map(|n| Room::Owned((*n).to_owned())).collect();
        Selection {
            rooms: owned(rooms),
            except: owned(except),
        }
    }

    fn emit(rooms: &[&str], except: &[&str]) -> EmitterRequest {
        EmitterRequest::Broadcast {
            selection: selection(rooms, except),
            event: "news".to_owned(),
            args: EventArgs(vec![]),
            volatile: false,
        }
    }

    fn join(rooms: &[&str], targets: &[&str]) -> EmitterRequest {
        EmitterRequest::Join {
            selection: selection(rooms, &[]),
            rooms: targets
                .iter()
                .map(|n| Room::Owned((*n).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn emits_to_tenant_scoped_rooms_and_the_namespace_are_accepted() {
        for ok in [
            emit(&["t:acme:r:general"], &[]),
            emit(&["t:acme:r:general"], &["t:acme:u:bob"]),
            emit(&["t:acme:u:bob", "t:acme:a:all"], &[]),
            emit(&["t:acme:s:abc-_1"], &[]),
            emit(&[], &[]),
            join(&["t:acme:u:bob"], &["t:acme:r:news"]),
        ] {
            assert_eq!(accept(&ok), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn raw_crafted_or_cross_tenant_names_are_refused() {
        for bad in [
            emit(&["general"], &[]),
            emit(&["t:acme:r:general", "lobby"], &[]),
            emit(&["t:acme:r:general"], &["everyone"]),
            emit(&["t:acme:x:general"], &[]),
            emit(&["t:ac:me:r:general"], &[]),
            emit(&["t:acme:r:"], &[]),
            emit(&["t:acme:r:gén"], &[]),
            emit(&["t:acme:a:everyone"], &[]),
            join(&[], &["t:acme:r:news"]),
            join(&["t:acme:u:bob"], &["t:globex:r:news"]),
            join(&["t:acme:u:bob", "t:globex:u:eve"], &["t:acme:r:news"]),
            join(&["t:acme:u:bob"], &["t:acme:u:alice"]),
            join(&["t:acme:u:bob"], &["t:acme:a:all"]),
            join(&["t:acme:u:bob"], &["news"]),
        ] {
            assert!(accept(&bad).is_err(), "{bad:?}");
        }
    }
}
