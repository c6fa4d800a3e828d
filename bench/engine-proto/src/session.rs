//! One client from its HTTP request to its close: the websocket upgrade, engine.io v4
//! (open, ping/pong, close) and Socket.IO v5 on namespace `/` (CONNECT, EVENT with acks),
//! with the benchmark peers' chat handlers (`join`, `leave`, `message`, `typing`).

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use bytes::{Bytes, BytesMut};
use redis_adapter::{Room, Wait};
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::{conn::Conn, rooms::Sid, server::Server, ws};

/// Longest websocket message read, as the gateway's `--max-payload`.
const MAX_PAYLOAD: usize = 100_000;
/// Longest HTTP request head.
const MAX_HEAD: usize = 8192;

static NEXT_SID: AtomicU64 = AtomicU64::new(1);

/// Serves one accepted TCP connection until it closes.
pub async fn serve(stream: TcpStream, server: Arc<Server>) {
    let stream = Arc::new(stream);
    let Some((head, rest)) = read_head(&stream).await else {
        return;
    };
    let conn = Conn::new(stream.clone());
    let key = match request(&head) {
        Request::Health => {
            conn.send(Bytes::from_static(
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
            ));
            return;
        }
        Request::Websocket(key) => key,
        Request::Other => {
            conn.send(Bytes::from_static(
                b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            ));
            return;
        }
    };
    let sid = NEXT_SID.fetch_add(1, Ordering::Relaxed);
    conn.send(Bytes::from(ws::upgrade_response(&key)));
    let open = format!(
        r#"0{{"sid":"{sid:016x}","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":{MAX_PAYLOAD}}}"#
    );
    conn.send(ws::frame(ws::TEXT, &[open.as_bytes()]));
    server.register(sid, &conn);
    let mut session = Session {
        sid,
        conn,
        server,
        name: None,
        rooms: HashSet::new(),
    };
    session.read_loop(&stream, rest).await;
    session.server.unregister(sid);
    session
        .server
        .rooms
        .remove(session.rooms.drain(), session.sid);
}

/// What the HTTP request asks for.
enum Request {
    Health,
    Websocket(String),
    Other,
}

fn request(head: &[u8]) -> Request {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Request::new(&mut headers);
    if !matches!(parsed.parse(head), Ok(httparse::Status::Complete(_))) {
        return Request::Other;
    }
    let path = parsed.path.unwrap_or("");
    if path == "/healthz" {
        return Request::Health;
    }
    let websocket = path.starts_with("/socket.io/")
        && path.contains("EIO=4")
        && path.contains("transport=websocket");
    let key = parsed
        .headers
        .iter()
        .find(|header| header.name.eq_ignore_ascii_case("sec-websocket-key"))
        .and_then(|header| std::str::from_utf8(header.value).ok());
    match (websocket, key) {
        (true, Some(key)) => Request::Websocket(key.trim().to_owned()),
        _ => Request::Other,
    }
}

/// Reads up to the end of the request head; what follows it is returned too.
async fn read_head(stream: &TcpStream) -> Option<(Vec<u8>, BytesMut)> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        stream.readable().await.ok()?;
        let mut chunk = [0u8; 2048];
        match stream.try_read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return None,
        }
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = BytesMut::from(&buf[end + 4..]);
            buf.truncate(end + 4);
            return Some((buf, rest));
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
    }
}

/// One connected client.
struct Session {
    sid: Sid,
    conn: Arc<Conn>,
    server: Arc<Server>,
    /// Its display name once it connected to `/`.
    name: Option<Arc<str>>,
    rooms: HashSet<Room>,
}

impl Session {
    /// Reads frames until the client or the sending side closes. An idle connection holds no
    /// read buffer: bytes are read onto the stack and kept only while a frame is partial.
    async fn read_loop(&mut self, stream: &TcpStream, mut buf: BytesMut) {
        loop {
            while let Some(frame) = match ws::parse(&mut buf, MAX_PAYLOAD) {
                Ok(frame) => frame,
                Err(_) => return,
            } {
                match frame.opcode {
                    ws::TEXT if !self.on_text(&frame.payload).await => return,
                    ws::TEXT => {}
                    ws::PING => self.conn.send(ws::frame(ws::PONG, &[&frame.payload])),
                    ws::CLOSE => return,
                    _ => {}
                }
            }
            if buf.is_empty() {
                buf = BytesMut::new();
            }
            tokio::select! {
                readable = stream.readable() => if readable.is_err() { return },
                () = self.conn.closing.notified() => return,
            }
            let mut chunk = [0u8; 4096];
            match stream.try_read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
            if self.conn.is_closed() {
                return;
            }
        }
    }

    /// Handles one engine.io packet; whether the connection stays open.
    async fn on_text(&mut self, text: &[u8]) -> bool {
        match text.first() {
            Some(b'4') => self.on_socketio(&text[1..]).await,
            Some(b'3' | b'5' | b'6') => true,
            Some(b'2') => {
                self.conn.send(ws::frame(ws::TEXT, &[b"3", &text[1..]]));
                true
            }
            _ => false,
        }
    }

    /// Handles one Socket.IO packet of namespace `/`.
    async fn on_socketio(&mut self, packet: &[u8]) -> bool {
        match packet.first() {
            Some(b'0') => self.on_connect(&packet[1..]),
            Some(b'1') => false,
            Some(b'2') if self.name.is_some() => {
                let digits = packet[1..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                let ack = std::str::from_utf8(&packet[1..1 + digits])
                    .ok()
                    .and_then(|digits| digits.parse::<u64>().ok());
                match serde_json::from_slice::<Vec<Value>>(&packet[1 + digits..]) {
                    Ok(event) => {
                        self.on_event(event, ack).await;
                        true
                    }
                    Err(_) => false,
                }
            }
            _ => false,
        }
    }

    fn on_connect(&mut self, auth: &[u8]) -> bool {
        let auth: Value = serde_json::from_slice(auth).unwrap_or(Value::Null);
        let name = match auth.get("name") {
            Some(Value::String(name)) if !name.is_empty() => name.as_str().into(),
            _ => format!("{:016x}", self.sid).into(),
        };
        self.name = Some(name);
        let sid = format!("{:016x}", self.sid);
        self.send_packet(&format!(r#"0{{"sid":"{sid}"}}"#));
        let welcome = json!(["welcome", {"instance": &*self.server.instance, "sid": sid}]);
        self.send_packet(&format!("2{welcome}"));
        true
    }

    async fn on_event(&mut self, mut event: Vec<Value>, ack: Option<u64>) {
        let name = match event.first() {
            Some(Value::String(name)) => name.clone(),
            _ => return,
        };
        let data = if event.len() > 1 {
            event.swap_remove(1)
        } else {
            Value::Null
        };
        let reply = match name.as_str() {
            "join" => self.join(&data).await,
            "leave" => self.leave(&data),
            "message" => self.message(&data).await,
            "typing" => self.typing(&data).await,
            _ => return,
        };
        if let Some(ack) = ack {
            self.send_packet(&format!("3{ack}[{reply}]"));
        }
    }

    async fn join(&mut self, data: &Value) -> Value {
        let Some(room) = room_of(data) else {
            return error("invalid room");
        };
        let room = Room::Owned(room.to_owned());
        self.server.rooms.add(&room, self.sid, &self.conn);
        // Always asked: a room being subscribed by another join is waited for too.
        if let Some(bus) = self.server.rooms.bus()
            && bus.join(std::slice::from_ref(&room)).await.is_err()
        {
            self.server.rooms.remove([room], self.sid);
            return error("cluster unavailable");
        }
        self.rooms.insert(room);
        json!({"ok": true})
    }

    fn leave(&mut self, data: &Value) -> Value {
        let Some(room) = room_of(data) else {
            return error("invalid room");
        };
        if let Some(room) = self.rooms.take(room) {
            self.server.rooms.remove([room], self.sid);
        }
        json!({"ok": true})
    }

    async fn message(&mut self, data: &Value) -> Value {
        let Some(room) = room_of(data) else {
            return error("invalid room");
        };
        let Some(text) = data
            .get("text")
            .and_then(Value::as_str)
            .filter(|t| valid_text(t))
        else {
            return error("invalid text");
        };
        if !self.rooms.contains(room) {
            return error("not a member of this room");
        }
        let id = self.server.next_id();
        let ts = now_ms();
        let from = self.name.as_deref().unwrap_or("");
        let message =
            json!(["message", {"room": room, "id": id, "from": from, "text": text, "ts": ts}]);
        let packet = format!("2{message}");
        match self.broadcast(room, &packet, None).await {
            true => json!({"id": id, "ts": ts}),
            false => error("cluster unavailable"),
        }
    }

    async fn typing(&mut self, data: &Value) -> Value {
        let Some(room) = room_of(data) else {
            return error("invalid room");
        };
        if !self.rooms.contains(room) {
            return error("not a member of this room");
        }
        let from = self.name.as_deref().unwrap_or("");
        let packet = format!("2{}", json!(["typing", {"room": room, "from": from}]));
        self.broadcast(room, &packet, Some(self.sid)).await;
        json!({"ok": true})
    }

    /// Sends Socket.IO `packet` to `room` on every instance (but `except` here): framed once
    /// for the local members, published once for the others.
    async fn broadcast(&self, room: &str, packet: &str, except: Option<Sid>) -> bool {
        let frame = ws::frame(ws::TEXT, &[b"4", packet.as_bytes()]);
        self.server.rooms.deliver(room, &frame, except);
        let Some(bus) = self.server.rooms.bus() else {
            return true;
        };
        let outgoing = bus.room_requests(&[Room::Owned(room.to_owned())], |_, _, buf| {
            buf.extend_from_slice(packet.as_bytes());
            Ok::<_, std::convert::Infallible>(())
        });
        match outgoing {
            Ok(outgoing) => bus.send(outgoing, Wait::Queued).await.is_ok(),
            Err(never) => match never {},
        }
    }

    fn send_packet(&self, packet: &str) {
        self.conn
            .send(ws::frame(ws::TEXT, &[b"4", packet.as_bytes()]));
    }
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
