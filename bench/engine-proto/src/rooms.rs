//! Which local connections are in which room, the fan-out to them, and the prototype's
//! front end of the cluster bus: a remote broadcast's body is the Socket.IO packet text,
//! framed once here and written to every local member.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, OnceLock, RwLock},
};

use bytes::Bytes;
use redis_adapter::{EmitterRequest, Id, Inbound, NamespaceBus, Redis, Room};

use crate::{conn::Conn, ws};

/// A connection's id, unique in this process.
pub type Sid = u64;

/// The local members of one room.
type Members = Vec<(Sid, Arc<Conn>)>;

/// The rooms of this instance and the cluster bus they are shared through.
#[derive(Default)]
pub struct Rooms {
    members: RwLock<HashMap<Room, Members>>,
    bus: OnceLock<Arc<NamespaceBus<Redis>>>,
}

impl Rooms {
    /// Gives the rooms their bus (once, at start).
    pub fn set_bus(&self, bus: Arc<NamespaceBus<Redis>>) {
        let _first = self.bus.set(bus);
    }

    /// The bus.
    pub fn bus(&self) -> Option<&Arc<NamespaceBus<Redis>>> {
        self.bus.get()
    }

    /// Adds `sid` to `room`.
    pub fn add(&self, room: &Room, sid: Sid, conn: &Arc<Conn>) {
        let mut members = write(&self.members);
        let list = members.entry(room.clone()).or_default();
        if !list.iter().any(|(member, _)| *member == sid) {
            list.push((sid, conn.clone()));
        }
    }

    /// Takes `sid` out of each of `rooms`, and lets the bus release the emptied ones.
    pub fn remove(&self, rooms: impl IntoIterator<Item = Room>, sid: Sid) {
        let mut emptied = Vec::new();
        {
            let mut members = write(&self.members);
            for room in rooms {
                if let Some(list) = members.get_mut(&room) {
                    list.retain(|(member, _)| *member != sid);
                    if list.is_empty() {
                        members.remove(&room);
                        emptied.push(room);
                    }
                }
            }
        }
        if let Some(bus) = self.bus() {
            bus.release(emptied);
        }
    }

    /// Writes `frame` to every local member of `room` but `except`.
    pub fn deliver(&self, room: &str, frame: &Bytes, except: Option<Sid>) {
        let members = read(&self.members);
        for (sid, conn) in members.get(room).into_iter().flatten() {
            if Some(*sid) != except {
                conn.send(frame.clone());
            }
        }
    }
}

impl Inbound for Rooms {
    fn on_request(self: Arc<Self>, origin: Id, body: &[u8], room: Option<&Room>) {
        match room {
            Some(room) => self.deliver(room, &ws::frame(ws::TEXT, &[b"4", body]), None),
            None => {
                if let Some(bus) = self.bus() {
                    bus.drop_malformed(origin, &"the prototype only sends room broadcasts");
                }
            }
        }
    }

    fn holds(&self, room: &str) -> bool {
        read(&self.members).contains_key(room)
    }

    fn held_rooms(&self) -> HashSet<Room> {
        read(&self.members).keys().cloned().collect()
    }

    fn on_emitter(self: Arc<Self>, _request: EmitterRequest) {}
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
