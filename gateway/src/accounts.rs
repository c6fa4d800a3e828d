//! Account mode: what a gateway started with Redis adds to the chat. Users log in against the
//! directory, sessions live in Redis, limits are counted there, tenant settings are cached
//! here and invalidated through it. Standalone (development) mode has none of it.

use std::{sync::Arc, time::Duration};

use crate::background::Background;
use redis_adapter::Redis;

use crate::{
    Config, Error,
    cache::SettingsCache,
    counters::Counters,
    history::History,
    jobs::Jobs,
    keys::Keys,
    login_throttle::LoginThrottle,
    origin::OriginPolicy,
    ratelimit::{RateLimiter, Rates},
    refusal::Refusal,
    request::TrustedProxies,
    sessions::{SessionId, SessionStore, Token},
    store::Store,
    users::{Directory, User},
};

/// The refusal of a token that opens no session (unknown, expired, deleted, or its user gone).
const EXPIRED: Refusal = Refusal::Unauthorized("session expired");

/// Who presented a valid session token.
pub(crate) struct SignedIn<'a> {
    /// The session's user, as the directory has it now.
    pub(crate) user: &'a User,
    /// The session itself.
    pub(crate) session: SessionId,
}

/// Everything account mode needs, shared by the chat handlers and the HTTP routes.
pub(crate) struct Accounts {
    /// Who may log in.
    pub(crate) directory: Arc<Directory>,
    /// Sessions in Redis.
    pub(crate) sessions: SessionStore,
    /// Rate limits in Redis.
    pub(crate) limiter: RateLimiter,
    /// Failed logins per username, in Redis.
    pub(crate) throttle: LoginThrottle,
    /// Tenant settings, cached here.
    pub(crate) settings: SettingsCache,
    /// Whose `X-Forwarded-For` to believe.
    pub(crate) proxies: TrustedProxies,
    /// Which pages may use the session cookie.
    pub(crate) origins: OriginPolicy,
    /// Whether the session cookie is `Secure`.
    pub(crate) secure_cookies: bool,
    /// How long an admin's settings write waits for every instance to drop the old value.
    pub(crate) invalidation_wait: Duration,
    /// The counters.
    pub(crate) counters: Arc<Counters>,
    /// The command connection itself, for `/readyz` and `/metrics` (PING, `INFO memory`).
    pub(crate) store: Store,
    /// The background job queue: audit events, DM notifications.
    pub(crate) jobs: Jobs,
    /// The message histories, unless `--no-history`.
    pub(crate) history: Option<Arc<History>>,
}

impl Accounts {
    /// Loads the directory and puts the stores on `redis` (the task of the settings cache is
    /// added to `background`).
    pub(crate) async fn start(
        config: &Config,
        redis: Redis,
        counters: Arc<Counters>,
        background: &mut Background,
    ) -> Result<Arc<Self>, Error> {
        if config.users_file.is_none() && !config.demo_users {
            return Err(Error::NoUserDirectory);
        }
        let permits = config
            .login_verifications
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
        let directory =
            Directory::load(config.users_file.as_deref())?.limited(permits, config.login_queue);
        match &config.users_file {
            Some(path) => {
                tracing::info!(users = directory.len(), file = %path.display(), "user directory loaded")
            }
            None => tracing::warn!(
                users = directory.len(),
                "--demo-users: using the DEMO user directory with its published passwords; \
                 never do this in production"
            ),
        }
        let store = Store::new(redis, Keys::new(&config.redis.key_prefix));
        let (settings, subscription) =
            SettingsCache::start(store.clone(), config.settings_cache_ttl, counters.clone())
                .await?;
        background.push(subscription);
        let jobs = Jobs::start(store.clone(), counters.clone(), background);
        let rates = Rates {
            login: config.rate_login,
            handshake: config.rate_handshake,
            message: config.rate_message,
            dm: config.rate_dm,
            api_publish: config.api_publish_rate,
        };
        Ok(Arc::new(Self {
            directory: Arc::new(directory),
            // A session lives at least one second.
            sessions: SessionStore::new(
                store.clone(),
                config.session_ttl.max(Duration::from_secs(1)),
            ),
            limiter: RateLimiter::new(
                store.clone(),
                rates,
                config.rate_ipv6_prefix,
                counters.clone(),
            ),
            throttle: LoginThrottle::new(
                store.clone(),
                config.rate_login_failures,
                config.rate_login_user_failures,
            ),
            settings,
            proxies: TrustedProxies::new(&config.trusted_proxies),
            origins: OriginPolicy::new(
                &config.allowed_origins,
                TrustedProxies::new(&config.trusted_proxies),
            ),
            secure_cookies: config.secure_cookies,
            invalidation_wait: config.request_timeout,
            counters,
            history: (!config.no_history)
                .then(|| Arc::new(History::new(store.clone(), config.spool_capacity))),
            store,
            jobs,
        }))
    }

    /// The directory's user `id` if it still belongs to `tenant`.
    pub(crate) fn member(&self, tenant: &str, id: &str) -> Option<&User> {
        self.directory
            .user(id)
            .filter(|user| &*user.tenant == tenant)
    }

    /// The user of the session that `token` opens, or why there is none: the one check of a
    /// presented session, for the Socket.IO handshake and the HTTP routes alike.
    pub(crate) async fn user_for_token(
        &self,
        token: Option<&str>,
    ) -> Result<SignedIn<'_>, Refusal> {
        let token = token.ok_or(Refusal::Unauthorized("no session"))?;
        // Not shaped like a token: it cannot open a session, no need to ask Redis.
        let token = Token::parse(token).ok_or(EXPIRED)?;
        let session = self.sessions.get(&token).await.map_err(|err| {
            tracing::warn!(%err, "cannot read a session: refused");
            Refusal::Unavailable("session store unreachable, retry later")
        })?;
        let session = session.ok_or(EXPIRED)?;
        // A user removed from the directory since login no longer gets in.
        let user = self.member(&session.tenant, &session.user).ok_or(EXPIRED)?;
        Ok(SignedIn {
            user,
            session: token.id(),
        })
    }
}
