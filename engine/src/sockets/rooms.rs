//! A namespace's local sockets and rooms: who is in which room on this instance, and the
//! sockets a broadcast's selection reaches here.

use crate::locks::{lock, read, write};
use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, RwLock},
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
    /// Rooms that sockets whose CONNECT is being answered joined, with how many: held for
    /// the cluster (it keeps their subscription) though none of them is a member yet.
    pending: Mutex<HashMap<Room, usize>>,
}

impl Rooms {
    /// `socket` connected: it enters the namespace and the rooms it joined while connecting,
    /// and `announce` (its CONNECT) runs before any broadcast can select it.
    pub(crate) fn add_socket<R>(&self, socket: &Arc<Socket>, announce: impl FnOnce() -> R) -> R {
        let joined = socket.rooms();
        let announced = {
            let mut sockets = write(&self.sockets);
            let mut rooms = write(&self.rooms);
            sockets.insert(socket.id_arc(), socket.clone());
            for room in &joined {
                enter(&mut rooms, socket, room);
            }
            announce()
        };
        // Members now: no longer pending (in this order, so the rooms stay held throughout).
        self.unpend(&joined);
        announced
    }

    /// A socket whose CONNECT is being answered joined `room`.
    pub(crate) fn pend(&self, room: &Room) {
        *lock(&self.pending).entry(room.clone()).or_insert(0) += 1;
    }

    /// Sockets whose CONNECT was being answered are in `rooms` no more (let in, refused or
    /// gone).
    pub(crate) fn unpend<'a>(&self, rooms: impl IntoIterator<Item = &'a Room>) {
        let mut pending = lock(&self.pending);
        for room in rooms {
            if let Some(count) = pending.get_mut(room) {
                *count -= 1;
                if *count == 0 {
                    pending.remove(room);
                }
            }
        }
    }

    /// `socket` left: it leaves its rooms too; the rooms it emptied.
    pub(crate) fn remove_socket(&self, socket: &Socket) -> Vec<Room> {
        write(&self.sockets).remove(socket.id());
        self.leave(socket, socket.take_rooms())
    }

    /// Puts `socket` in `room`.
    pub(crate) fn join(&self, socket: &Arc<Socket>, room: &Room) {
        enter(&mut write(&self.rooms), socket, room);
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

    /// Whether a local socket is in `room`, or joined it while connecting.
    pub(crate) fn holds(&self, room: &str) -> bool {
        read(&self.rooms).contains_key(room) || lock(&self.pending).contains_key(room)
    }

    /// The rooms local sockets are in, or joined while connecting.
    pub(crate) fn held(&self) -> HashSet<Room> {
        let mut held: HashSet<Room> = read(&self.rooms).keys().cloned().collect();
        held.extend(lock(&self.pending).keys().cloned());
        held
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

/// Puts `socket` among `room`'s members in the index `rooms`.
fn enter(rooms: &mut HashMap<Room, Members>, socket: &Arc<Socket>, room: &Room) {
    rooms
        .entry(room.clone())
        .or_default()
        .insert(socket.id_arc(), socket.clone());
}
