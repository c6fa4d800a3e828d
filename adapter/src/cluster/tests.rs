//! The bus's logic in one process: several instances over an in-memory Pub/Sub, with a
//! front end whose "sockets" are names with rooms. No redis-server involved.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{ClusterSecret, EmitterRequest, Id, Inbound, NamespaceBus, PubSub, Room};
use crate::{
    config::{EmitterConfig, RedisAdapterConfig},
    connection::{Handler, Link, LinkRx, Wait},
    error::Error,
    stats::Counters,
};

/// The handlers of each channel, with the instance that subscribed each.
type Subscribers = HashMap<String, Vec<(usize, Handler)>>;

/// An in-memory Pub/Sub shared by the instances of a test; a silenced instance hears
/// nothing.
#[derive(Clone, Default)]
struct Hub {
    subscribers: Arc<Mutex<Subscribers>>,
    silenced: Arc<Mutex<HashSet<usize>>>,
}

/// One instance's connection to the hub.
struct Memory {
    hub: Hub,
    me: usize,
    link: (watch::Sender<Link>, LinkRx),
}

impl Hub {
    fn connect(&self, me: usize) -> Arc<Memory> {
        let link = watch::channel(Link {
            connected: true,
            subscribed: true,
            generation: 0,
        });
        Arc::new(Memory {
            hub: self.clone(),
            me,
            link,
        })
    }

    fn silence(&self, instance: usize) {
        self.silenced.lock().unwrap().insert(instance);
    }

    fn deliver(&self, channel: &str, payload: &[u8]) {
        let silenced = self.silenced.lock().unwrap().clone();
        let handlers: Vec<Handler> = self
            .subscribers
            .lock()
            .unwrap()
            .get(channel)
            .into_iter()
            .flatten()
            .filter(|(instance, _)| !silenced.contains(instance))
            .map(|(_, handler)| handler.clone())
            .collect();
        for handler in handlers {
            handler(payload);
        }
    }
}

impl PubSub for Memory {
    fn publish(
        &self,
        channel: String,
        payload: Vec<u8>,
        _wait: Wait,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        // Delivered at once, in call order, like the ordered publish queue.
        self.hub.deliver(&channel, &payload);
        std::future::ready(Ok(()))
    }

    async fn subscribe(&self, channel: String, handler: Handler) -> Result<(), Error> {
        let mut subscribers = self.hub.subscribers.lock().unwrap();
        let entry = subscribers.entry(channel).or_default();
        entry.retain(|(instance, _)| *instance != self.me);
        entry.push((self.me, handler));
        Ok(())
    }

    async fn unsubscribe(&self, channel: String) {
        if let Some(entry) = self.hub.subscribers.lock().unwrap().get_mut(&channel) {
            entry.retain(|(instance, _)| *instance != self.me);
        }
    }

    fn link(&self) -> LinkRx {
        self.link.1.clone()
    }
}

/// What the test front end sends: a broadcast to rooms, a question, or a join.
#[derive(Debug, Serialize, Deserialize)]
enum Request {
    Broadcast {
        id: u32,
        rooms: Vec<String>,
        except: Vec<String>,
    },
    WhoAreYou {
        req_id: String,
    },
    Join {
        req_id: String,
        socket: String,
        room: String,
    },
}

/// A front end whose sockets are names, each in some rooms.
struct Front {
    bus: Arc<NamespaceBus<Memory>>,
    sockets: Mutex<HashMap<String, HashSet<Room>>>,
    /// (socket, broadcast id) for every delivery.
    received: Mutex<Vec<(String, u32)>>,
    /// Every emitter operation handed over.
    emitted: Mutex<Vec<EmitterRequest>>,
}

impl Inbound for Front {
    fn on_request(self: Arc<Self>, origin: Id, body: &[u8], _room: Option<&Room>) {
        match serde_json::from_slice(body).unwrap() {
            Request::Broadcast { id, rooms, except } => {
                let sockets = self.sockets.lock().unwrap();
                for (socket, joined) in sockets.iter() {
                    let wanted = rooms.iter().any(|room| joined.contains(room.as_str()));
                    let excluded = except.iter().any(|room| joined.contains(room.as_str()));
                    if wanted && !excluded {
                        self.received.lock().unwrap().push((socket.clone(), id));
                    }
                }
            }
            Request::WhoAreYou { req_id } => {
                let req_id = Id::parse(req_id.as_bytes()).unwrap();
                let me = self.bus.node().to_string();
                let answer = self
                    .bus
                    .response(origin, req_id, |buf| {
                        buf.extend_from_slice(me.as_bytes());
                        Ok::<_, Error>(())
                    })
                    .unwrap();
                tokio::spawn(self.bus.publish(answer, Wait::Queued));
            }
            Request::Join {
                req_id,
                socket,
                room,
            } => {
                let room = Room::Owned(room);
                self.sockets
                    .lock()
                    .unwrap()
                    .entry(socket)
                    .or_default()
                    .insert(room.clone());
                let req_id = Id::parse(req_id.as_bytes()).unwrap();
                self.bus
                    .remote_change_applied(origin, req_id, true, vec![room]);
            }
        }
    }

    fn holds(&self, room: &str) -> bool {
        self.sockets
            .lock()
            .unwrap()
            .values()
            .any(|rooms| rooms.contains(room))
    }

    fn held_rooms(&self) -> HashSet<Room> {
        self.sockets
            .lock()
            .unwrap()
            .values()
            .flatten()
            .cloned()
            .collect()
    }

    fn on_emitter(self: Arc<Self>, request: EmitterRequest) {
        self.emitted.lock().unwrap().push(request);
    }
}

fn config() -> RedisAdapterConfig {
    RedisAdapterConfig {
        heartbeat_interval: Duration::from_secs(60),
        heartbeat_timeout: Duration::from_secs(120),
        request_timeout: Duration::from_millis(300),
        unsubscribe_delay: Duration::from_millis(50),
        reconcile_interval: Duration::from_secs(60),
        ..RedisAdapterConfig::default()
    }
}

/// `count` started instances of namespace "/" on one hub.
async fn cluster(hub: &Hub, count: usize) -> Vec<Arc<Front>> {
    cluster_with(hub, 0..count, None).await
}

/// The instances numbered `instances` on `hub`, all with `secret`.
async fn cluster_with(
    hub: &Hub,
    instances: std::ops::Range<usize>,
    secret: Option<ClusterSecret>,
) -> Vec<Arc<Front>> {
    let config = RedisAdapterConfig {
        cluster_secret: secret,
        ..config()
    };
    cluster_of(hub, instances, &config).await
}

/// The instances numbered `instances` on `hub`, all with `config`.
async fn cluster_of(
    hub: &Hub,
    instances: std::ops::Range<usize>,
    config: &RedisAdapterConfig,
) -> Vec<Arc<Front>> {
    let mut fronts = Vec::new();
    for me in instances {
        let bus = NamespaceBus::new(
            hub.connect(me),
            config,
            Arc::new(Counters::default()),
            "/",
            Id::random(),
        );
        let front = Arc::new(Front {
            bus: bus.clone(),
            sockets: Mutex::default(),
            received: Mutex::default(),
            emitted: Mutex::default(),
        });
        bus.start(Arc::downgrade(&front) as Weak<dyn Inbound>)
            .await
            .unwrap();
        fronts.push(front);
    }
    fronts
}

async fn join(front: &Front, socket: &str, rooms: &[&str]) {
    let rooms: Vec<Room> = rooms
        .iter()
        .map(|room| Room::Owned((*room).to_owned()))
        .collect();
    front
        .sockets
        .lock()
        .unwrap()
        .entry(socket.to_owned())
        .or_default()
        .extend(rooms.iter().cloned());
    front.bus.join(&rooms).await.unwrap();
}

fn json(request: &Request) -> impl FnOnce(&mut Vec<u8>) -> Result<(), Error> + '_ {
    |buf| {
        buf.extend_from_slice(&serde_json::to_vec(request).unwrap());
        Ok(())
    }
}

/// Broadcast `id` to room "a" from `front`, as the messages its bus would publish.
fn to_room_a(front: &Front, id: u32) -> Vec<super::Outgoing> {
    let request = Request::Broadcast {
        id,
        rooms: vec!["a".to_owned()],
        except: vec![],
    };
    front
        .bus
        .room_requests(&[Room::Borrowed("a")], |_, _, buf| json(&request)(buf))
        .unwrap()
}

fn received(front: &Front) -> Vec<(String, u32)> {
    let mut received = front.received.lock().unwrap().clone();
    received.sort();
    received
}

#[tokio::test]
async fn every_instance_counts_the_others_and_forgets_one_that_leaves() {
    let hub = Hub::default();
    let fronts = cluster(&hub, 3).await;
    assert_eq!(fronts[0].bus.server_count(), 3, "hellos and their replies");
    assert_eq!(fronts[2].bus.server_count(), 3);
    fronts[1].bus.close().await.unwrap();
    assert_eq!(fronts[0].bus.server_count(), 2);
    assert_eq!(fronts[2].bus.expected_responses(None), 1);
}

#[tokio::test]
async fn a_broadcast_to_several_rooms_reaches_each_socket_once() {
    let hub = Hub::default();
    let fronts = cluster(&hub, 3).await;
    join(&fronts[1], "s1", &["a", "b"]).await;
    join(&fronts[2], "s2", &["b"]).await;
    join(&fronts[2], "s3", &["c"]).await;
    join(&fronts[2], "s4", &["d"]).await;
    let rooms: Vec<Room> = ["c", "b", "a", "b"].map(Room::Borrowed).to_vec();
    let outgoing = fronts[0]
        .bus
        .room_requests(&rooms, |room, before, buf| {
            let request = Request::Broadcast {
                id: 7,
                rooms: vec![room.to_string()],
                except: before.iter().map(ToString::to_string).collect(),
            };
            json(&request)(buf)
        })
        .unwrap();
    assert_eq!(outgoing.len(), 3, "one message per distinct room");
    fronts[0].bus.send(outgoing, Wait::Queued).await.unwrap();
    assert_eq!(received(&fronts[1]), [("s1".to_owned(), 7)]);
    assert_eq!(
        received(&fronts[2]),
        [("s2".to_owned(), 7), ("s3".to_owned(), 7)]
    );
}

#[tokio::test]
async fn a_room_left_by_its_last_member_is_discarded_then_unsubscribed() {
    let hub = Hub::default();
    let fronts = cluster(&hub, 2).await;
    join(&fronts[1], "s1", &["a"]).await;
    fronts[1].sockets.lock().unwrap().clear();
    fronts[1].bus.release([Room::Borrowed("a")]);
    fronts[0]
        .bus
        .send(to_room_a(&fronts[0], 1), Wait::Queued)
        .await
        .unwrap();
    assert!(received(&fronts[1]).is_empty());
    let counters = &fronts[1].bus.counters;
    assert_eq!(counters.snapshot().room_messages_discarded, 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        counters.snapshot().room_subscriptions,
        0,
        "unsubscribed after the delay"
    );
    let channel = fronts[1].bus.channels.room("a");
    assert!(hub.subscribers.lock().unwrap()[&channel].is_empty());
}

#[tokio::test]
async fn a_query_gathers_one_answer_per_other_instance() {
    let hub = Hub::default();
    let fronts = cluster(&hub, 3).await;
    let req_id = Id::random();
    let request = Request::WhoAreYou {
        req_id: req_id.to_string(),
    };
    let bus = &fronts[0].bus;
    let outgoing = bus.request(None, json(&request)).unwrap();
    let answers = tokio::time::timeout(
        Duration::from_secs(5),
        bus.query(outgoing, req_id, bus.expected_responses(None)),
    )
    .await
    .expect("answered before the request timeout")
    .unwrap();
    let mut answers: Vec<String> = answers
        .into_iter()
        .map(|body| String::from_utf8(body).unwrap())
        .collect();
    answers.sort();
    let mut expected = vec![
        fronts[1].bus.node().to_string(),
        fronts[2].bus.node().to_string(),
    ];
    expected.sort();
    assert_eq!(answers, expected);
    assert_eq!(bus.counters.snapshot().request_timeouts, 0);
}

#[tokio::test]
async fn a_query_to_a_silent_instance_ends_at_the_request_timeout_with_what_arrived() {
    let hub = Hub::default();
    let fronts = cluster(&hub, 3).await;
    hub.silence(2);
    let bus = &fronts[0].bus;
    let req_id = Id::random();
    let request = Request::WhoAreYou {
        req_id: req_id.to_string(),
    };
    let outgoing = bus.request(None, json(&request)).unwrap();
    let started = tokio::time::Instant::now();
    let answers = bus.query(outgoing, req_id, 2).await.unwrap();
    assert!(started.elapsed() >= config().request_timeout);
    assert_eq!(answers, [fronts[1].bus.node().to_string().into_bytes()]);
    assert_eq!(bus.counters.snapshot().request_timeouts, 1);
    bus.deliver_late_for_test(req_id);
    assert_eq!(
        bus.counters.snapshot().dropped_responses,
        1,
        "a late answer is dropped"
    );
}

#[tokio::test]
async fn a_remote_join_returns_once_every_instance_applied_it() {
    let hub = Hub::default();
    let fronts = cluster(&hub, 3).await;
    let bus = &fronts[0].bus;
    for (target, socket) in [(1, "s1"), (2, "s2")] {
        let req_id = Id::random();
        let request = Request::Join {
            req_id: req_id.to_string(),
            socket: socket.to_owned(),
            room: "r".to_owned(),
        };
        let node = fronts[target].bus.node();
        let outgoing = bus.request(Some(node), json(&request)).unwrap();
        let expected = bus.expected_responses(Some(node));
        assert_eq!(expected, 1, "a targeted request expects one answer");
        tokio::time::timeout(
            Duration::from_secs(5),
            bus.apply_remotely(outgoing, req_id, expected),
        )
        .await
        .expect("applied before the request timeout")
        .unwrap();
    }
    assert_eq!(bus.counters.snapshot().request_timeouts, 0);
    // Both joins are in place: the room's channel is subscribed on both instances.
    let channel = bus.channels.room("r");
    assert_eq!(hub.subscribers.lock().unwrap()[&channel].len(), 2);
}

#[tokio::test]
async fn with_a_secret_only_the_instances_holding_it_are_heard() {
    let hub = Hub::default();
    let secret = ClusterSecret::new(b"the deployment's secret, 32 byte");
    let fronts = cluster_with(&hub, 0..2, secret).await;
    join(&fronts[1], "s1", &["a"]).await;
    // Strangers with Redis access: one with another secret, one with none.
    let other = cluster_with(
        &hub,
        2..3,
        ClusterSecret::new(b"a guess at the secret, 32 bytes!"),
    )
    .await;
    let plain = cluster_with(&hub, 3..4, None).await;
    assert_eq!(
        fronts[0].bus.server_count(),
        2,
        "their hellos are not counted"
    );
    assert_eq!(fronts[1].bus.server_count(), 2);
    for stranger in other.iter().chain(&plain) {
        let request = Request::Broadcast {
            id: 9,
            rooms: vec!["a".to_owned()],
            except: vec![],
        };
        let on_room = to_room_a(stranger, 9);
        let on_namespace = stranger.bus.request(None, json(&request)).unwrap();
        let to_node = stranger
            .bus
            .request(Some(fronts[1].bus.node()), json(&request))
            .unwrap();
        let mut forged = on_room;
        forged.extend([on_namespace, to_node]);
        stranger.bus.send(forged, Wait::Queued).await.unwrap();
    }
    assert!(
        received(&fronts[1]).is_empty(),
        "no forged request carried out"
    );
    assert!(fronts[1].bus.counters.snapshot().dropped_unverified >= 6);
    // The instances holding the secret still hear each other.
    fronts[0]
        .bus
        .send(to_room_a(&fronts[0], 1), Wait::Queued)
        .await
        .unwrap();
    assert_eq!(received(&fronts[1]), [("s1".to_owned(), 1)]);
}

/// `[uid, packet, opts]` of an emit of `event` to `rooms`, as `@socket.io/redis-emitter`
/// writes it.
fn emitted(event: &str, rooms: &[&str]) -> Vec<u8> {
    let map = |entries: Vec<(&str, rmpv::Value)>| {
        rmpv::Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    };
    let rooms = rmpv::Value::Array(rooms.iter().map(|room| (*room).into()).collect());
    let packet = map(vec![
        ("type", 2.into()),
        ("data", rmpv::Value::Array(vec![event.into(), 1.into()])),
        ("nsp", "/".into()),
    ]);
    let opts = map(vec![
        ("rooms", rooms),
        ("except", rmpv::Value::Array(vec![])),
        ("flags", map(vec![])),
    ]);
    let mut buf = Vec::new();
    rmpv::encode::write_value(
        &mut buf,
        &rmpv::Value::Array(vec!["emitter".into(), packet, opts]),
    )
    .unwrap();
    buf
}

fn emitted_events(front: &Front) -> Vec<String> {
    front
        .emitted
        .lock()
        .unwrap()
        .iter()
        .map(|request| match request {
            EmitterRequest::Broadcast { event, .. } => event.clone(),
            other => format!("{other:?}"),
        })
        .collect()
}

/// Two instances reading the emitter of key `key`, refusing emits to rooms named `secret*`.
async fn emitter_cluster(hub: &Hub, key: &str) -> Vec<Arc<Front>> {
    let emitter = EmitterConfig {
        max_message_bytes: 400,
        ..EmitterConfig::new(key).with_accept(|request| {
            match request
                .selection()
                .rooms
                .iter()
                .any(|room| room.starts_with("secret"))
            {
                true => Err("secret room".to_owned()),
                false => Ok(()),
            }
        })
    };
    let config = RedisAdapterConfig {
        emitter: Some(emitter),
        ..config()
    };
    cluster_of(hub, 0..2, &config).await
}

#[tokio::test]
async fn emitter_room_emits_reach_the_instances_holding_the_room_only() {
    for key in ["socket.io", "backend"] {
        let hub = Hub::default();
        let fronts = emitter_cluster(&hub, key).await;
        join(&fronts[1], "s1", &["a"]).await;
        hub.deliver(&format!("{key}#/#a#"), &emitted("to-a", &["a"]));
        hub.deliver(&format!("{key}#/#b#"), &emitted("to-b", &["b"]));
        assert!(emitted_events(&fronts[0]).is_empty(), "key {key}");
        assert_eq!(emitted_events(&fronts[1]), ["to-a"], "key {key}");
        // The namespace channel reaches both, next to the bus's own messages when the key is
        // the prefix.
        hub.deliver(&format!("{key}#/#"), &emitted("everyone", &[]));
        assert_eq!(emitted_events(&fronts[0]), ["everyone"], "key {key}");
        assert_eq!(fronts[0].bus.server_count(), 2, "the bus's own still read");
        fronts[1].sockets.lock().unwrap().clear();
        fronts[1].bus.release([Room::Borrowed("a")]);
        tokio::time::sleep(Duration::from_millis(150)).await;
        hub.deliver(&format!("{key}#/#a#"), &emitted("after-leave", &["a"]));
        assert_eq!(
            emitted_events(&fronts[1]),
            ["to-a", "everyone"],
            "key {key}"
        );
    }
}

#[tokio::test]
async fn emitter_messages_out_of_shape_over_size_or_refused_are_dropped_and_counted() {
    let hub = Hub::default();
    let fronts = emitter_cluster(&hub, "socket.io").await;
    join(&fronts[0], "s1", &["a", "secret-1"]).await;
    // On a's channel an emit to other rooms; a refused room; an oversized one; garbage.
    hub.deliver("socket.io#/#a#", &emitted("x", &["a", "b"]));
    hub.deliver("socket.io#/#secret-1#", &emitted("x", &["secret-1"]));
    hub.deliver("socket.io#/#a#", &emitted(&"x".repeat(500), &["a"]));
    hub.deliver("socket.io#/#a#", b"\x93garbage");
    hub.deliver(
        "socket.io-request#/#",
        br#"{"uid":"emitter","type":6,"data":[]}"#,
    );
    hub.deliver(
        "socket.io-request#/#",
        br#"{"type":2,"opts":{"rooms":["a"]},"rooms":["c"]}"#,
    );
    let stats = fronts[0].bus.counters.snapshot();
    assert_eq!(emitted_events(&fronts[0]).len(), 1, "only the join");
    assert_eq!(stats.emitter_received, 6);
    assert_eq!(stats.emitter_dropped_malformed, 2);
    assert_eq!(stats.emitter_dropped_refused, 1);
    assert_eq!(stats.emitter_dropped_oversized, 1);
    assert_eq!(stats.emitter_dropped_unsupported, 1);
    assert_eq!(
        stats.dropped_malformed, 0,
        "the bus's own counters untouched"
    );
}

#[tokio::test]
async fn without_an_emitter_config_its_channels_are_not_read() {
    let hub = Hub::default();
    let fronts = cluster(&hub, 1).await;
    join(&fronts[0], "s1", &["a"]).await;
    hub.deliver("socket.io#/#a#", &emitted("x", &["a"]));
    hub.deliver("socket.io#/#", &emitted("x", &[]));
    let stats = fronts[0].bus.counters.snapshot();
    assert!(emitted_events(&fronts[0]).is_empty());
    assert_eq!(stats.emitter_received, 0);
    assert_eq!(
        stats.dropped_unknown_version, 1,
        "on the bus's channel, read as an envelope of version 0x93"
    );
}
