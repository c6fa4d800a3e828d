//! The chat protocol on namespace `/` (see the gateway's README), as a typical socketioxide
//! application writes it: handlers registered in the async connect handler.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use socketioxide::{
    adapter::Adapter,
    extract::{AckSender, Extension, SocketRef, State, TryData},
};

/// Shared by every handler (socketioxide state).
#[derive(Debug, Clone)]
pub struct ChatState {
    /// A short random id of this instance, sent in `welcome`.
    pub instance: Arc<str>,
    /// Message ids: a random per-process prefix and a counter.
    id_prefix: Arc<str>,
    next_id: Arc<AtomicU64>,
}

impl ChatState {
    pub fn new() -> Self {
        Self {
            instance: format!("{:08x}", rand::random::<u32>()).into(),
            id_prefix: format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff).into(),
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    fn next_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.id_prefix)
    }
}

/// The socket's display name (`from`), kept in the socket's extensions.
#[derive(Debug, Clone)]
struct Name(Arc<str>);

#[derive(Debug, Deserialize)]
struct RoomReq {
    room: String,
}

#[derive(Debug, Deserialize)]
struct MessageReq {
    room: String,
    text: String,
}

#[derive(Serialize)]
struct Welcome<'a> {
    instance: &'a str,
    sid: String,
}

#[derive(Serialize)]
struct ChatMessage<'a> {
    room: &'a str,
    id: &'a str,
    from: &'a str,
    text: &'a str,
    ts: u64,
}

#[derive(Serialize)]
struct Typing<'a> {
    room: &'a str,
    from: &'a str,
}

/// The connect handler: welcome, display name, then the event handlers.
pub async fn on_connect<A: Adapter>(
    socket: SocketRef<A>,
    State(chat): State<ChatState>,
    TryData(auth): TryData<Value>,
) {
    let name: Arc<str> = match auth.ok().as_ref().and_then(|a| a.get("name")) {
        Some(Value::String(n)) if !n.is_empty() => n.as_str().into(),
        _ => socket.id.to_string().into(),
    };
    socket.extensions.insert(Name(name));
    let _ = socket.emit(
        "welcome",
        &Welcome {
            instance: &chat.instance,
            sid: socket.id.to_string(),
        },
    );

    socket.on("join", on_join::<A>);
    socket.on("leave", on_leave::<A>);
    socket.on("message", on_message::<A>);
    socket.on("typing", on_typing::<A>);
}

fn error(reason: &str) -> Value {
    json!({ "error": reason })
}

fn ok() -> Value {
    json!({ "ok": true })
}

/// Room names: 1 to 64 characters of `[A-Za-z0-9_.:-]`.
fn valid_room(room: &str) -> bool {
    (1..=64).contains(&room.len())
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// Texts: 1 to 2000 characters, no control characters other than newline and tab.
fn valid_text(text: &str) -> bool {
    let mut n = 0usize;
    for c in text.chars() {
        n += 1;
        if n > 2000 || (c.is_control() && c != '\n' && c != '\t') {
            return false;
        }
    }
    n > 0
}

fn is_member<A: Adapter>(socket: &SocketRef<A>, room: &str) -> bool {
    socket.rooms().iter().any(|r| r == room)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

async fn on_join<A: Adapter>(
    socket: SocketRef<A>,
    ack: AckSender<A>,
    TryData(req): TryData<RoomReq>,
) {
    let reply = match req {
        Err(_) => error("invalid payload"),
        Ok(req) if !valid_room(&req.room) => error("invalid room"),
        Ok(req) => {
            socket.join(req.room);
            ok()
        }
    };
    let _ = ack.send(&reply);
}

async fn on_leave<A: Adapter>(
    socket: SocketRef<A>,
    ack: AckSender<A>,
    TryData(req): TryData<RoomReq>,
) {
    let reply = match req {
        Err(_) => error("invalid payload"),
        Ok(req) if !valid_room(&req.room) => error("invalid room"),
        Ok(req) => {
            socket.leave(req.room);
            ok()
        }
    };
    let _ = ack.send(&reply);
}

async fn on_message<A: Adapter>(
    socket: SocketRef<A>,
    ack: AckSender<A>,
    State(chat): State<ChatState>,
    Extension(Name(from)): Extension<Name>,
    TryData(req): TryData<MessageReq>,
) {
    let req = match req {
        Ok(req) => req,
        Err(_) => return drop(ack.send(&error("invalid payload"))),
    };
    if !valid_room(&req.room) {
        return drop(ack.send(&error("invalid room")));
    }
    if !valid_text(&req.text) {
        return drop(ack.send(&error("invalid text")));
    }
    if !is_member(&socket, &req.room) {
        return drop(ack.send(&error("not a member of this room")));
    }
    let id = chat.next_id();
    let ts = now_ms();
    let msg = ChatMessage {
        room: &req.room,
        id: &id,
        from: &from,
        text: &req.text,
        ts,
    };
    // `within` keeps the sender among the recipients.
    let reply = match socket.within(req.room.clone()).emit("message", &msg).await {
        Ok(()) => json!({ "id": id, "ts": ts }),
        Err(err) => {
            tracing::warn!(%err, "message broadcast failed");
            error("cluster unavailable")
        }
    };
    let _ = ack.send(&reply);
}

async fn on_typing<A: Adapter>(
    socket: SocketRef<A>,
    ack: AckSender<A>,
    Extension(Name(from)): Extension<Name>,
    TryData(req): TryData<RoomReq>,
) {
    let reply = match req {
        Err(_) => error("invalid payload"),
        Ok(req) if !valid_room(&req.room) => error("invalid room"),
        Ok(req) if !is_member(&socket, &req.room) => error("not a member of this room"),
        Ok(req) => {
            let notice = Typing {
                room: &req.room,
                from: &from,
            };
            let _ = socket
                .to(req.room.clone())
                .volatile()
                .emit("typing", &notice)
                .await;
            ok()
        }
    };
    // Only sent if the client asked for an ack.
    let _ = ack.send(&reply);
}
