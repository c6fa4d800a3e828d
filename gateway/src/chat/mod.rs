//! The chat protocol on namespace `/` ([`CHAT_NS`]): connection setup and one handler per
//! event. Infrastructure is asked through the [`Mode`], never directly.
//!
//! A chat line flows: `handshake` (who, which tenant) -> `messages::message` (validate,
//! membership of the tenant's room, then the rate limit and tenant settings) ->
//! `nsp.to(room).emit` -> the engine (local members at once, the other instances through
//! the cluster bus) -> their local members.
//!
//! The engine calls [`Chat`] from the task that read each packet; every event takes its
//! place in its socket's queue there ([`order`]), in arrival order, and its handler runs in a
//! task of its own once the events before it are done.

mod budget;
mod call;
mod catch_up;
mod census;
mod deliver;
mod dm;
mod expiry;
mod handshake;
mod history;
mod identity;
mod members;
mod mend;
mod messages;
mod order;
mod payload;
mod reply;
mod rooms;
mod spooled;
mod typing;
mod unknown;

use std::sync::{Arc, Mutex, PoisonError};

use engine::sockets::{Connecting, DisconnectReason, Event, Namespace, Socket};
use redis_adapter::Room;
use serde::Serialize;

use crate::{config::Config, ids::MessageIds, metrics, mode::Mode, refusal::Refusal, tenancy};
use call::{Call, Request};
use census::{Census, Claim, Seat};
pub(crate) use expiry::spawn as spawn_session_check;
use identity::Identity;
pub(crate) use mend::spawn as spawn_mender;
use order::EventQueue;
use reply::answer;
pub(crate) use spooled::spawn as spawn_spool_drain;

/// What every chat handler shares.
#[derive(Clone)]
pub(crate) struct ChatState {
    /// This instance's id, sent to clients in `welcome`.
    instance: Arc<str>,
    /// The source of message ids.
    message_ids: Arc<MessageIds>,
    /// Standalone or clustered: joins, limits, settings and the directory go through it.
    mode: Arc<Mode>,
    /// What one socket may cost.
    limits: SocketLimits,
    /// The sockets of each user and session on this instance.
    census: Arc<Census>,
    /// The lines other instances sent to this instance's rooms, to mend gaps with.
    relayed: Arc<mend::Relayed>,
}

impl ChatState {
    /// The chat state of instance `instance` in `mode`, with the per-socket limits of `config`.
    pub(crate) fn new(instance: &str, mode: Arc<Mode>, config: &Config) -> Self {
        Self {
            instance: instance.into(),
            message_ids: Arc::new(MessageIds::new()),
            mode,
            limits: SocketLimits {
                events: order::Limits {
                    rate: config.socket_event_rate,
                    queue: config.socket_event_queue,
                },
                max_rooms: config.max_rooms_per_socket,
                per_user: config.max_sockets_per_user,
                per_session: config.max_sockets_per_session,
            },
            census: Arc::default(),
            relayed: Arc::default(),
        }
    }

    /// The census claims of a socket of `identity`: its user's cap, and its session's when
    /// it has one.
    fn claims(&self, identity: &identity::Identity) -> Vec<Claim> {
        let user = Claim {
            key: tenancy::user_room(&identity.tenant, &identity.user),
            cap: self.limits.per_user,
            what: "per user",
        };
        let session = identity.session.as_ref().map(|session| Claim {
            key: tenancy::session_room(&identity.tenant, session.as_str()),
            cap: self.limits.per_session,
            what: "per session",
        });
        std::iter::once(user).chain(session).collect()
    }
}

/// What one socket may cost, from the flags (see `Config`).
#[derive(Debug, Clone, Copy)]
struct SocketLimits {
    /// The event budget and the bound of the socket's event queue.
    events: order::Limits,
    /// Chat rooms one socket may be in (its private rooms not counted).
    max_rooms: usize,
    /// Sockets of one user on this instance.
    per_user: usize,
    /// Sockets of one session on this instance.
    per_session: usize,
}

/// The `welcome` event sent to each socket once connected.
#[derive(Debug, Serialize)]
struct Welcome<'a> {
    instance: &'a str,
    sid: &'a str,
}

/// What the chat keeps with each socket it let in (the socket's data slot): who it is, its
/// event queue, and its seat in the census, given back when it leaves.
pub(crate) struct Member {
    /// Who the socket is (shared with each of its events' requests).
    identity: Arc<Identity>,
    /// Its events, one at a time, within its budget.
    queue: EventQueue,
    /// Its seat in the census, taken when it leaves.
    seat: Mutex<Option<Seat>>,
}

impl Member {
    /// The identity of `socket`, once it was let in.
    pub(crate) fn identity(socket: &Socket) -> Option<&Identity> {
        socket.data::<Self>().map(|member| &*member.identity)
    }
}

/// The chat namespace as the engine serves it.
pub(crate) struct Chat {
    state: ChatState,
}

impl Chat {
    /// The chat of `state`.
    pub(crate) fn new(state: ChatState) -> Self {
        Self { state }
    }
}

impl Namespace for Chat {
    /// Everything a socket needs before its first event, then CONNECT.
    ///
    /// Authentication comes first (`handshake`): a refused socket (CONNECT_ERROR with the
    /// reason) has joined no room. Then the socket takes its seat in the census (refused
    /// `too_many_sockets` beyond the caps, before any Redis subscription), and an accepted one
    /// joins its user's, its session's and its tenant's rooms before it is let in, so that
    /// nothing sent to them after its CONNECT is missed.
    fn connect(&self, connecting: Connecting) {
        let chat = self.state.clone();
        tokio::spawn(async move {
            match admit(&connecting, &chat).await {
                Ok(member) => {
                    if connecting.socket().set_data(member).is_err() {
                        tracing::error!("a socket was admitted twice");
                        return;
                    }
                    connecting.accept();
                }
                Err(refusal) => connecting.refuse(&refusal.to_string(), None),
            }
        });
    }

    /// Tells the client which instance serves it.
    fn connected(&self, socket: &Arc<Socket>) {
        tracing::debug!(sid = %socket.id(), "socket connected");
        let welcome = Welcome {
            instance: &self.state.instance,
            sid: socket.id(),
        };
        metrics::event_out("welcome");
        if let Err(err) = socket.emit("welcome", &welcome) {
            tracing::debug!(sid = %socket.id(), %err, "could not send welcome");
        }
    }

    /// Takes the event's place in the socket's queue now, in arrival order, and runs its
    /// handler in a task of its own. An event behind a running one waits in a small task and
    /// makes its handler's state (4 KB for a chat line) only when its turn comes, so a
    /// socket's backlog under load costs little memory.
    fn event(&self, socket: &Arc<Socket>, event: Event) {
        let Some(member) = socket.data::<Member>() else {
            return;
        };
        let mut call = Call {
            request: Request {
                socket: socket.clone(),
                chat: self.state.clone(),
                identity: member.identity.clone(),
                payload: event.args.into_iter().next(),
            },
            turn: member.queue.push(),
            ack: event.ack,
        };
        if call.turn.waits() {
            tokio::spawn(async move {
                call.turn = call.turn.ready().await;
                Box::pin(dispatch(event.name, call)).await;
            });
        } else {
            tokio::spawn(dispatch(event.name, call));
        }
    }

    /// Gives the socket's seat in the census back.
    fn disconnected(&self, socket: &Arc<Socket>, _reason: DisconnectReason) {
        if let Some(member) = socket.data::<Member>() {
            member
                .seat
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
        }
    }

    /// Keeps the id of each line another instance relays, and drops one already mended.
    fn relayed(&self, rooms: &[Room], data: &str) -> bool {
        self.state.relayed.admit(rooms, data)
    }
}

/// The identity, seat and private rooms of the socket `connecting`, or why it is refused.
async fn admit(connecting: &Connecting, chat: &ChatState) -> Result<Member, Refusal> {
    let socket = connecting.socket();
    let identity = handshake::identify(socket, chat).await?;
    let seat = chat.census.admit(chat.claims(&identity))?;
    for room in identity.private_rooms() {
        connecting
            .join(room)
            .await
            .map_err(Refusal::from_subscribe)?;
    }
    Ok(Member {
        identity: Arc::new(identity),
        queue: EventQueue::new(chat.limits.events),
        seat: Mutex::new(Some(seat)),
    })
}

/// Answers `call`, an event named `name`, with its handler.
async fn dispatch(name: String, call: Call) {
    match name.as_str() {
        "join" => answer("join", call, rooms::join).await,
        "leave" => answer("leave", call, rooms::leave).await,
        "message" => answer("message", call, messages::message).await,
        "typing" => answer("typing", call, typing::typing).await,
        "dm" => answer("dm", call, dm::dm).await,
        "members" => answer("members", call, members::members).await,
        "history" => answer("history", call, history::history).await,
        _ => answer(unknown::UNKNOWN, call, unknown::unknown).await,
    }
}
