//! A namespace's local sockets and rooms: who is in which room on this instance, and the
//! sockets a broadcast's selection reaches here.

use crate::locks::{read, write};
use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, RwLock},
};

use redis_adapter::{Room, Selection};

use super::socket::Socket;

/// Sockets by id.
type Members = HashMap<Arc<str>, Arc<Socket>>;

/// The local sockets of one namespace and their rooms.
#[derive(Default)]
pub(crate) struct Rooms {
    sockets: RwLock<Members>,
    rooms: RwLock<HashMap<Room, Members>>,
}

impl Rooms {
    /// `socket` connected: it enters the namespace and the rooms it joined while connecting,
    /// and `announce` (its CONNECT) runs before any broadcast can select it.
    pub(crate) fn add_socket<R>(&self, socket: &Arc<Socket>, announce: impl FnOnce() -> R) -> R {
        let mut sockets = write(&self.sockets);
        let mut rooms = write(&self.rooms);
        sockets.insert(socket.id_arc(), socket.clone());
        for room in socket.rooms() {
            rooms
                .entry(room)
                .or_default()
                .insert(socket.id_arc(), socket.clone());
        }
        announce()
    }

    /// `socket` left: it leaves its rooms too; the rooms it emptied.
    pub(crate) fn remove_socket(&self, socket: &Socket) -> Vec<Room> {
        write(&self.sockets).remove(socket.id());
        self.leave(socket, socket.take_rooms())
    }

    /// Puts `socket` in `room`; whether the room had no local member before.
    pub(crate) fn join(&self, socket: &Arc<Socket>, room: &Room) -> bool {
        let mut rooms = write(&self.rooms);
        let members = rooms.entry(room.clone()).or_default();
        let first = members.is_empty();
        members.insert(socket.id_arc(), socket.clone());
        first
    }

    /// Takes `socket` out of `rooms`; those left without a local member.
    pub(crate) fn leave(
        &self,
        socket: &Socket,
        rooms: impl IntoIterator<Item = Room>,
    ) -> Vec<Room> {
        let mut held = write(&self.rooms);
        let mut emptied = Vec::new();
        for room in rooms {
            if let Some(members) = held.get_mut(&room) {
                members.remove(socket.id());
                if members.is_empty() {
                    held.remove(&room);
                    emptied.push(room);
                }
            }
        }
        emptied
    }

    /// Whether a local socket is in `room`.
    pub(crate) fn holds(&self, room: &str) -> bool {
        read(&self.rooms).contains_key(room)
    }

    /// The rooms local sockets are in.
    pub(crate) fn held(&self) -> HashSet<Room> {
        read(&self.rooms).keys().cloned().collect()
    }

    /// The local sockets `selection` reaches (each once), but `except`.
    pub(crate) fn select(&self, selection: &Selection, except: Option<&str>) -> Vec<Arc<Socket>> {
        let rooms = read(&self.rooms);
        let excluded = |socket: &Socket| {
            Some(socket.id()) == except
                || selection.except.iter().any(|room| {
                    rooms
                        .get(room)
                        .is_some_and(|members| members.contains_key(socket.id()))
                })
        };
        if selection.rooms.is_empty() {
            return read(&self.sockets)
                .values()
                .filter(|socket| !excluded(socket))
                .cloned()
                .collect();
        }
        let mut seen = HashSet::new();
        let mut selected = Vec::new();
        for room in &selection.rooms {
            for socket in rooms.get(room).into_iter().flat_map(HashMap::values) {
                let once = selection.rooms.len() == 1 || seen.insert(socket.id());
                if once && !excluded(socket) {
                    selected.push(socket.clone());
                }
            }
        }
        selected
    }
}
