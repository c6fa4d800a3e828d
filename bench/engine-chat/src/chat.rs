//! The peers' chat handlers: `welcome` on connect; `join` / `leave` a room (1 to 64
//! characters of `[A-Za-z0-9_.:-]`); `message` to a room the socket is in (1 to 2,000
//! characters, acked with its id and time, delivered to every member, the sender included);
//! `typing` to the room's other members. Answered from the task that read the event, but
//! `join`, which waits for the cluster.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use engine::sockets::{Connecting, DisconnectReason, Event, Namespace, Socket};
use serde_json::{Value, json};

/// The chat namespace of one instance.
pub struct Chat {
    instance: Arc<str>,
    id_prefix: String,
    next_id: AtomicU64,
}

impl Chat {
    /// The chat of instance `instance` (sent in `welcome`).
    pub fn new(instance: Arc<str>) -> Self {
        Self {
            instance,
            id_prefix: format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff),
            next_id: AtomicU64::new(1),
        }
    }

    fn next_id(&self) -> String {
        format!(
            "{}-{}",
            self.id_prefix,
            self.next_id.fetch_add(1, Ordering::Relaxed)
        )
    }

    fn message(&self, socket: &Arc<Socket>, data: &Value) -> Value {
        let Some(room) = room_of(data) else {
            return error("invalid room");
        };
        let Some(text) = data
            .get("text")
            .and_then(Value::as_str)
            .filter(|text| valid_text(text))
        else {
            return error("invalid text");
        };
        if !socket.in_room(room) {
            return error("not a member of this room");
        }
        let id = self.next_id();
        let ts = now_ms();
        let message = json!({"room": room, "id": id, "from": name(socket), "text": text, "ts": ts});
        match socket
            .nsp()
            .to([room.to_owned()])
            .emit_now("message", &message)
        {
            Ok(_) => json!({"id": id, "ts": ts}),
            Err(_) => error("cluster unavailable"),
        }
    }

    fn typing(socket: &Arc<Socket>, data: &Value) -> Value {
        let Some(room) = room_of(data) else {
            return error("invalid room");
        };
        if !socket.in_room(room) {
            return error("not a member of this room");
        }
        let notice = json!({"room": room, "from": name(socket)});
        let _best_effort = socket.to([room.to_owned()]).emit_now("typing", &notice);
        json!({"ok": true})
    }
}

impl Namespace for Chat {
    fn connect(&self, connecting: Connecting) {
        let socket = connecting.socket();
        let name = socket
            .auth()
            .as_ref()
            .and_then(|auth| auth.get("name"))
            .and_then(Value::as_str)
            .filter(|name| !name.is_empty())
            .map(|name| Name(name.into()));
        if let Some(name) = name {
            // A socket's data is set once, here: it cannot be taken already.
            let _set = socket.set_data(name);
        }
        connecting.accept();
    }

    fn connected(&self, socket: &Arc<Socket>) {
        let welcome = json!({"instance": &*self.instance, "sid": socket.id()});
        let _gone = socket.emit("welcome", &welcome);
    }

    fn event(&self, socket: &Arc<Socket>, event: Event) {
        let data = event.args.first().cloned().unwrap_or(Value::Null);
        let reply = match event.name.as_str() {
            "join" => {
                let socket = socket.clone();
                tokio::spawn(async move {
                    let reply = join(&socket, &data).await;
                    if let Some(ack) = event.ack {
                        let _gone = ack.send(&json!([reply]));
                    }
                });
                return;
            }
            "leave" => match room_of(&data) {
                Some(room) => {
                    socket.leave(room);
                    json!({"ok": true})
                }
                None => error("invalid room"),
            },
            "message" => self.message(socket, &data),
            "typing" => Self::typing(socket, &data),
            _ => return,
        };
        if let Some(ack) = event.ack {
            let _gone = ack.send(&json!([reply]));
        }
    }

    fn disconnected(&self, _: &Arc<Socket>, _: DisconnectReason) {}
}

async fn join(socket: &Arc<Socket>, data: &Value) -> Value {
    let Some(room) = room_of(data) else {
        return error("invalid room");
    };
    match socket.join(room.to_owned()).await {
        Ok(()) => json!({"ok": true}),
        Err(_) => {
            socket.leave(room);
            error("cluster unavailable")
        }
    }
}

/// A socket's display name, from its CONNECT's `auth.name`.
struct Name(Box<str>);

/// The socket's display name: `auth.name` (kept at CONNECT), else its id.
fn name(socket: &Socket) -> &str {
    socket.data::<Name>().map_or(socket.id(), |Name(name)| name)
}

/// The room of `{room}`: 1 to 64 characters of `[A-Za-z0-9_.:-]`.
fn room_of(data: &Value) -> Option<&str> {
    data.get("room").and_then(Value::as_str).filter(|room| {
        (1..=64).contains(&room.len())
            && room
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
    })
}

/// Texts: 1 to 2000 characters, no control characters other than newline and tab.
fn valid_text(text: &str) -> bool {
    let count = text.chars().count();
    (1..=2000).contains(&count)
        && !text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
}

fn error(reason: &str) -> Value {
    json!({ "error": reason })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}
