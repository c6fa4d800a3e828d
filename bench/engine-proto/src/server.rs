//! The process: its connections (pinged from one task), its rooms, its message ids.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;

use crate::{conn::Conn, rooms::Rooms, rooms::Sid, ws};

/// engine.io's ping interval, as the open packet says.
const PING_INTERVAL: Duration = Duration::from_secs(25);

/// What every connection shares.
pub struct Server {
    /// A short random id of this instance, sent in `welcome`.
    pub instance: Arc<str>,
    /// The rooms and their bus.
    pub rooms: Arc<Rooms>,
    connections: Mutex<HashMap<Sid, Arc<Conn>>>,
    id_prefix: String,
    next_id: AtomicU64,
}

impl Server {
    /// A server with no connection yet.
    pub fn new(rooms: Arc<Rooms>) -> Arc<Self> {
        Arc::new(Self {
            instance: format!("{:08x}", rand::random::<u32>()).into(),
            rooms,
            connections: Mutex::default(),
            id_prefix: format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff),
            next_id: AtomicU64::new(1),
        })
    }

    /// A new message id.
    pub fn next_id(&self) -> String {
        format!(
            "{}-{}",
            self.id_prefix,
            self.next_id.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Counts `conn` among those pinged.
    pub fn register(&self, sid: Sid, conn: &Arc<Conn>) {
        lock(&self.connections).insert(sid, conn.clone());
    }

    /// Stops pinging `sid`.
    pub fn unregister(&self, sid: Sid) {
        lock(&self.connections).remove(&sid);
    }

    /// Pings every connection each interval: one task for all of them.
    pub async fn ping_all(self: Arc<Self>) {
        let ping = ws::frame(ws::TEXT, &[b"2"]);
        let mut ticker = tokio::time::interval(PING_INTERVAL);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let connections: Vec<Arc<Conn>> = lock(&self.connections).values().cloned().collect();
            for conn in connections {
                conn.send(Bytes::clone(&ping));
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
