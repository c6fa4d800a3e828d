//! HTTP: the accept loop, one hyper HTTP/1 connection per client, and the engine.io requests
//! (handshake, poll, post, websocket) routed from the engine's path; every other request goes
//! to the fallback service (the application's router).

use std::{convert::Infallible, future::poll_fn, net::SocketAddr, sync::Arc};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};

use super::{
    Engine, Shared, heartbeat,
    query::{self, Refusal, Transport},
    session::Session,
    sink::Sink,
    ws::{self, Role},
};

/// The fallback of a server that serves only engine.io: 404 for everything else.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotFound;

impl tower_service::Service<Request<Incoming>> for NotFound {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<Incoming>) -> Self::Future {
        std::future::ready(Ok(respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found",
        )))
    }
}

/// Whether a connection's requests on the engine's path go to the engine, or all to the
/// application (which mounts [`EngineService`] itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Routing {
    Intercept,
    Application,
}

/// A body the engine reads (a polling POST's: hyper's, or an application's) or passes on (the
/// application's answers).
pub trait HttpBody:
    hyper::body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
    + Send
    + 'static
{
}

impl<B> HttpBody for B where
    B: hyper::body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + 'static
{
}

/// The application's HTTP service: what the engine hands every request it does not answer
/// itself (every request, with [`Engine::serve_app`]).
pub trait App<B>:
    tower_service::Service<
        Request<Incoming>,
        Response = Response<B>,
        Error = Infallible,
        Future: Send,
    > + Clone
    + Send
    + 'static
{
}

impl<S, B> App<B> for S where
    S: tower_service::Service<
            Request<Incoming>,
            Response = Response<B>,
            Error = Infallible,
            Future: Send,
        > + Clone
        + Send
        + 'static
{
}

/// The engine's requests as a tower service ([`Engine::service`]).
#[derive(Clone)]
pub struct EngineService {
    engine: Engine,
}

impl<B: HttpBody> tower_service::Service<Request<B>> for EngineService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let engine = self.engine.clone();
        Box::pin(async move {
            let Some(&peer) = request.extensions().get::<SocketAddr>() else {
                tracing::error!("an engine.io request without the client's address");
                return Ok(respond(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    TEXT,
                    "no client address",
                ));
            };
            Ok(engine.answer(request, peer).await)
        })
    }
}

/// An engine.io answer, or the fallback's.
type Answer<B> = Response<Either<Full<Bytes>, B>>;

impl Engine {
    /// Accepts connections on `listener` and serves each (see [`Engine::serve_connection`])
    /// until the returned future is dropped.
    pub async fn serve<F, B>(&self, listener: TcpListener, fallback: F)
    where
        F: App<B>,
        B: HttpBody,
    {
        self.accept(listener, fallback, Routing::Intercept).await;
    }

    /// Like [`Engine::serve`], except that `app` gets every HTTP request, the engine's path
    /// included: the application mounts [`Engine::service`] there itself, inside its own
    /// layers (a CORS policy, say). A connection whose first request is a websocket is still
    /// taken before HTTP, and opens its session through the admission hook only.
    pub async fn serve_app<F, B>(&self, listener: TcpListener, app: F)
    where
        F: App<B>,
        B: HttpBody,
    {
        self.accept(listener, app, Routing::Application).await;
    }

    /// The engine.io requests as a service of its own, for [`Engine::serve_app`]: requests
    /// must carry the client's `SocketAddr` in their extensions, as the engine's connections
    /// give them.
    pub fn service(&self) -> EngineService {
        EngineService {
            engine: self.clone(),
        }
    }

    async fn accept<F, B>(&self, listener: TcpListener, fallback: F, routing: Routing)
    where
        F: App<B>,
        B: HttpBody,
    {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, most likely: wait rather than spin.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            tokio::spawn(
                self.clone()
                    .connection(stream, peer, fallback.clone(), routing),
            );
        }
    }

    /// Serves one HTTP/1 connection from `peer`: engine.io on the engine's path, `fallback`
    /// for the rest, each of its requests carrying `peer` (a `SocketAddr`) in its extensions.
    /// A websocket upgrade takes the connection over.
    pub async fn serve_connection<F, B>(self, stream: TcpStream, peer: SocketAddr, fallback: F)
    where
        F: App<B>,
        B: HttpBody,
    {
        self.connection(stream, peer, fallback, Routing::Intercept)
            .await;
    }

    async fn connection<F, B>(
        self,
        stream: TcpStream,
        peer: SocketAddr,
        fallback: F,
        routing: Routing,
    ) where
        F: App<B>,
        B: HttpBody,
    {
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(%err, "cannot set TCP_NODELAY");
        }
        let stream = match super::direct::take_websocket(&self, stream, peer).await {
            super::direct::Taken::Websocket | super::direct::Taken::Gone => return,
            super::direct::Taken::Http(stream) => stream,
        };
        let head_timeout = self.shared.config.request_head_timeout;
        let service = service_fn(move |mut request: Request<Incoming>| {
            let engine = self.clone();
            let mut fallback = fallback.clone();
            async move {
                if routing == Routing::Intercept
                    && request.uri().path() == engine.shared.config.path
                {
                    let answer = engine.answer(request, peer).await;
                    return Ok::<Answer<B>, Infallible>(answer.map(Either::Left));
                }
                // The application reads the client's address as axum's `ConnectInfo` would.
                request.extensions_mut().insert(peer);
                poll_fn(|cx| fallback.poll_ready(cx)).await?;
                let answer = fallback.call(request).await?;
                Ok(answer.map(Either::Right))
            }
        });
        let served = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(head_timeout)
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades()
            .await;
        if let Err(err) = served {
            tracing::debug!(%err, %peer, "HTTP connection ended");
        }
    }

    /// Answers one engine.io request.
    async fn answer<B: HttpBody>(
        &self,
        request: Request<B>,
        peer: SocketAddr,
    ) -> Response<Full<Bytes>> {
        match self.route(request, peer).await {
            Ok(response) => response,
            Err(refusal) => respond(refusal.status(), "application/json", refusal.body()),
        }
    }

    async fn route<B: HttpBody>(
        &self,
        request: Request<B>,
        peer: SocketAddr,
    ) -> Result<Response<Full<Bytes>>, Refusal> {
        let query = request.uri().query().unwrap_or_default().to_owned();
        let query = query::parse(&query)?;
        let shared = &self.shared;
        match (query.transport, query.sid) {
            (Transport::Websocket, sid) => {
                let sid = sid.map(str::to_owned);
                self.websocket(request, peer, sid.as_deref())
            }
            (Transport::Polling, None) if request.method() == Method::GET => {
                let (parts, _body) = request.into_parts();
                if let Err(denial) = self.admit(&parts, peer) {
                    return Ok(denied(denial));
                }
                let session = self.open(parts, peer, None)?;
                let open = session_open(&shared.config, &session, &["websocket"]);
                shared.handler.on_open(&session);
                Ok(respond(StatusCode::OK, TEXT, open))
            }
            (Transport::Polling, None) => Err(Refusal::BadHandshakeMethod),
            (Transport::Polling, Some(sid)) => {
                let session = shared.session(sid).ok_or(Refusal::UnknownSession)?;
                match *request.method() {
                    Method::GET => {
                        let payload = session.poll().await?;
                        Ok(respond(StatusCode::OK, TEXT, payload))
                    }
                    Method::POST => post(shared, &session, request.into_body()).await,
                    _ => Err(Refusal::BadRequest),
                }
            }
        }
    }

    /// Opens a session for the request `parts` from `peer`, on `websocket` or on polling.
    fn open(
        &self,
        parts: http::request::Parts,
        peer: SocketAddr,
        websocket: Option<Arc<Sink>>,
    ) -> Result<Arc<Session>, Refusal> {
        let shared = &self.shared;
        let sid: Arc<str> = super::ids::new_id().into();
        let session = Session::new(sid.clone(), parts, peer, websocket, Arc::downgrade(shared));
        {
            let mut sessions = crate::locks::lock(&shared.sessions);
            if sessions.len() >= shared.config.max_sessions {
                return Err(Refusal::Full);
            }
            sessions.insert(sid, session.clone());
        }
        tokio::spawn(heartbeat(
            Arc::downgrade(&session),
            shared.config.ping_interval,
            shared.config.ping_timeout,
            shared.config.connect_timeout,
        ));
        Ok(session)
    }

    /// Checks a websocket request (`method`, `headers`) for a new session, or for the
    /// upgrade of polling session `sid` (which then begins): its `Sec-WebSocket-Key`, and the
    /// session it upgrades.
    pub(crate) fn websocket_target(
        &self,
        method: &Method,
        headers: &http::HeaderMap,
        sid: Option<&str>,
    ) -> Result<(header::HeaderValue, Option<Arc<Session>>), Refusal> {
        let upgrade = headers
            .get(header::UPGRADE)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"));
        let key = headers.get(header::SEC_WEBSOCKET_KEY).cloned();
        let (Some(key), true, true) = (key, upgrade, method == Method::GET) else {
            return Err(Refusal::BadRequest);
        };
        let upgrading = match sid {
            Some(sid) => {
                let session = self.shared.session(sid).ok_or(Refusal::UnknownSession)?;
                session.begin_upgrade()?;
                Some(session)
            }
            None => None,
        };
        Ok((key, upgrading))
    }

    /// A websocket request that reached hyper (one after another request on a kept-alive
    /// connection; a connection's first is taken before hyper, see `direct`): answered 101 by
    /// hyper, then run on the TCP stream hyper gives back.
    fn websocket<B>(
        &self,
        mut request: Request<B>,
        peer: SocketAddr,
        sid: Option<&str>,
    ) -> Result<Response<Full<Bytes>>, Refusal> {
        let (key, upgrading) = self.websocket_target(request.method(), request.headers(), sid)?;
        if upgrading.is_none() {
            let (parts, body) = request.into_parts();
            if let Err(denial) = self.admit(&parts, peer) {
                return Ok(denied(denial));
            }
            request = Request::from_parts(parts, body);
        }
        let on_upgrade = hyper::upgrade::on(&mut request);
        // Only a new session keeps its request (without the body); an upgrade needs none.
        let opening = upgrading.is_none().then(|| request.into_parts().0);
        let engine = self.clone();
        tokio::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(err) => {
                    tracing::debug!(%err, "websocket upgrade failed");
                    if let Some(session) = &upgrading {
                        session.abort_upgrade();
                    }
                    return;
                }
            };
            let Ok(parts) = upgraded.downcast::<TokioIo<TcpStream>>() else {
                tracing::error!("a websocket on a connection the engine did not accept itself");
                return;
            };
            engine.start_websocket(
                parts.io.into_inner(),
                parts.read_buf,
                opening,
                upgrading,
                peer,
            );
        });
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_ACCEPT, ws::accept_key(key.as_bytes()))
            .body(Full::new(Bytes::new()))
            .map_err(|_| Refusal::BadRequest)
    }

    /// Starts an accepted websocket (its 101 sent; `read`, what was read past the request):
    /// the session `opening` asked for, or the probe of the `upgrading` one. Its reader is a
    /// task of its own, sized for reading alone: the task that accepted the connection (sized
    /// for the HTTP it might have been) ends here, so an idle websocket holds only the
    /// reader's few hundred bytes.
    pub(crate) fn start_websocket(
        &self,
        stream: TcpStream,
        read: Bytes,
        opening: Option<http::request::Parts>,
        upgrading: Option<Arc<Session>>,
        peer: SocketAddr,
    ) {
        let stream = Arc::new(stream);
        let config = &self.shared.config;
        let sink = Sink::new(stream.clone(), config.max_buffered, config.max_stall);
        let (session, role) = match (upgrading, opening) {
            (Some(session), _) => (session, Role::Probing),
            (None, Some(request)) => {
                let Ok(session) = self.open(request, peer, Some(sink.clone())) else {
                    return;
                };
                let open = session_open(config, &session, &[]);
                let _sent = sink.text(&Bytes::from(open));
                self.shared.handler.on_open(&session);
                (session, Role::Session)
            }
            (None, None) => return,
        };
        tokio::spawn(ws::read(
            session,
            stream,
            sink,
            read,
            role,
            config.max_payload,
        ));
    }
}

/// A polling POST: its body (at most `maxPayload`) handed to the session.
async fn post<B: HttpBody>(
    shared: &Shared,
    session: &Session,
    body: B,
) -> Result<Response<Full<Bytes>>, Refusal> {
    let posting = session.begin_post()?;
    let body = match Limited::new(body, shared.config.max_payload)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            drop(posting);
            session.close_with(super::CloseReason::InvalidPacket);
            return Ok(respond(
                StatusCode::PAYLOAD_TOO_LARGE,
                TEXT,
                "payload too large",
            ));
        }
    };
    session.post(&posting, &body)?;
    Ok(respond(StatusCode::OK, "text/html", "ok"))
}

/// The OPEN packet of `session`, offering `upgrades`.
fn session_open(config: &super::Config, session: &Session, upgrades: &[&str]) -> String {
    let open = serde_json::json!({
        "sid": session.sid(),
        "upgrades": upgrades,
        "pingInterval": config.ping_interval.as_millis(),
        "pingTimeout": config.ping_timeout.as_millis(),
        "maxPayload": config.max_payload,
    });
    crate::eio::encode(crate::eio::Kind::Open, &open.to_string())
}

/// The answer of a [`super::Denial`].
fn denied(denial: super::Denial) -> Response<Full<Bytes>> {
    respond(denial.status, denial.content_type, denial.body)
}

/// engine.io's content type for payloads.
const TEXT: &str = "text/plain; charset=UTF-8";

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}
