//! Security by default: sessions and JWTs, CSRF, CORS, rate limits, passwords.
//!
//! One [`Security`] value holds every setting and store; [`crate::App`] hands it to the front
//! layer, which runs the security gate around every request (WebSocket handshakes from a
//! foreign `Origin` or `Sec-Fetch-Site: cross-site` refused as CSRF, CORS preflights, credentials →
//! [`Identity`], `no-store`; a bearer token that does not check out is 401 wherever a handler
//! asks who is calling — [`Auth`] or [`MaybeAuth`] — while a session cookie that no longer names
//! a session is 401 only for [`Auth`] and otherwise leaves the request anonymous, as browsers
//! keep sending stale cookies; code of your own, such as a `middleware.rs`, asks the same way
//! through [`Caller`]), and the per-route layer enforces each route's CSRF and rate limit
//! from it. Each default is changed in one visible place — [`SecuritySettings`], read
//! from the environment with [`SecuritySettings::from_env`]:
//!
//! | setting | default | variable |
//! |---|---|---|
//! | CORS origins | none (no CORS) | `CORS_ORIGINS` |
//! | trusted proxies | none (`X-Forwarded-For` ignored) | `TRUSTED_PROXIES` |
//! | default rate limit | 300 per 60 s window per user / IP (an IPv6 client by its /64) and route (a fixed window: exactly that many reach the route's handlers in it; OPTIONS and 405 are not counted; the policy is named `"default"` in `RateLimit-Policy`, a route's own limit after its pattern) | `RATE_LIMIT_DEFAULT` (`off` disables) |
//! | JWT secret | random per start (with a warning) | `JWT_SECRET` |
//! | JWT lifetime | 1 h | `JWT_TTL` |
//! | session lifetime | 7 days | `SESSION_TTL` |
//! | session idle timeout (a session unused this long ends) | 24 h | `SESSION_IDLE_TIMEOUT` (`off` disables) |
//! | `Secure` cookies | off | `WAYPOST_SECURE_COOKIES` |

mod app_security;
mod auth;
mod cors;
pub mod csrf;
mod jwt;
pub(crate) mod layer;
pub mod password;
pub mod rate_limit;

use std::{sync::Arc, time::Duration};

use axum_extra::extract::cookie::Cookie;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use ipnet::IpNet;
use rand::RngCore;

pub use app_security::AppSecurity;
pub use auth::{Auth, AuthUser, Caller, Credential, CredentialRejected, Identity, MaybeAuth};
pub use cors::CorsPolicy;
pub use csrf::CsrfKeys;
pub use jwt::{Claims, JwtKeys};
pub use rate_limit::ClientIp;

use crate::{
    config::{ConfigError, Env},
    response,
    store::{
        IdempotencyStore, MemoryIdempotencyStore, MemoryRateLimitStore, MemorySessionStore,
        RateLimitStore, SessionRecord, SessionStore,
    },
    ApiError, RateLimit,
};

/// The cookie that carries the session id.
pub const SESSION_COOKIE: &str = "session";

/// Every security setting, before the stores are attached.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SecuritySettings {
    /// Origins allowed to call from a browser.
    pub cors_origins: Vec<String>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// The limit of routes that set none; `None` turns the default off.
    pub default_rate_limit: Option<RateLimit>,
    /// The HS256 secret; random per start when `None`.
    pub jwt_secret: Option<Vec<u8>>,
    /// How long issued JWTs live.
    pub jwt_ttl: Duration,
    /// How long a session lives, however much it is used.
    pub session_ttl: Duration,
    /// How long a session may go unused before it ends; `None` lets it live out its TTL.
    pub session_idle_timeout: Option<Duration>,
    /// Mark cookies `Secure` (serve over HTTPS).
    pub secure_cookies: bool,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        Self {
            cors_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            default_rate_limit: Some(RateLimit::new(300, Duration::from_secs(60))),
            jwt_secret: None,
            jwt_ttl: Duration::from_secs(3600),
            session_ttl: Duration::from_secs(7 * 24 * 3600),
            session_idle_timeout: Some(Duration::from_secs(24 * 3600)),
            secure_cookies: false,
        }
    }
}

impl SecuritySettings {
    /// Reads the variables in the module table.
    ///
    /// # Errors
    /// A variable with a value that does not parse; the message names it.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let default_rate_limit = match env.get("RATE_LIMIT_DEFAULT") {
            None => defaults.default_rate_limit,
            Some(raw) if raw.trim().eq_ignore_ascii_case("off") => None,
            Some(raw) => Some(rate_limit::parse_rate_limit("RATE_LIMIT_DEFAULT", &raw)?),
        };
        let jwt_secret = env.get("JWT_SECRET").map(String::into_bytes);
        if jwt_secret.as_ref().is_some_and(|secret| secret.len() < 32) {
            // Short secrets still work (test setups use them); production ones should not be.
            tracing::warn!(
                "JWT_SECRET is shorter than 32 bytes: HS256 tokens are only as strong as it"
            );
        }
        let settings = Self {
            cors_origins: env.list("CORS_ORIGINS"),
            trusted_proxies: rate_limit::parse_trusted_proxies(&env.list("TRUSTED_PROXIES"))?,
            default_rate_limit,
            jwt_secret,
            jwt_ttl: checked_lifetime(env, "JWT_TTL", env.duration("JWT_TTL", defaults.jwt_ttl)?)?,
            session_ttl: checked_lifetime(
                env,
                "SESSION_TTL",
                env.duration("SESSION_TTL", defaults.session_ttl)?,
            )?,
            session_idle_timeout: env
                .duration_or_off("SESSION_IDLE_TIMEOUT", defaults.session_idle_timeout)?
                .map(|idle| checked_lifetime(env, "SESSION_IDLE_TIMEOUT", idle))
                .transpose()?,
            secure_cookies: env.flag("WAYPOST_SECURE_COOKIES", false)?,
        };
        // Validate the origins now, so a bad list stops start-up.
        CorsPolicy::new(&settings.cors_origins)?;
        Ok(settings)
    }
}

/// The longest lifetime a token or session may be given: ten years. Past it, adding it to the
/// clock could overflow, and no credential should live that long.
const LONGEST_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// `lifetime`, read from variable `name`, when it is above zero and at most ten years: a typo
/// must not hand out credentials that are dead on arrival or never end.
fn checked_lifetime(env: &Env, name: &str, lifetime: Duration) -> Result<Duration, ConfigError> {
    if !lifetime.is_zero() && lifetime <= LONGEST_LIFETIME {
        return Ok(lifetime);
    }
    Err(ConfigError::invalid(
        name,
        &env.get(name).unwrap_or_default(),
        "expected a duration above zero and at most ten years, like 30m, 24h or 7d",
    ))
}

/// `start` plus `span`; ten years on when that overflows (settings built in code do not pass
/// through [`checked_lifetime`] as those read from the environment do).
fn later(start: std::time::SystemTime, span: Duration) -> std::time::SystemTime {
    start
        .checked_add(span)
        .unwrap_or_else(|| start + LONGEST_LIFETIME)
}

/// Whether a session used now, whose idle end should be `wanted`, needs a store write to get
/// there. Moving it on is a write, so it is done once a tenth of the timeout has passed since the
/// last one, not on every request: a session ends between 90% and 100% of the timeout after its
/// last use. Two more cases are written at once: near the session's lifetime, where `wanted` stops
/// at the lifetime's end (else the last tenth before it would be cut off), and an idle end
/// further out than the timeout allows (a session from before the timeout was set or lowered).
fn idle_end_is_stale(
    record: &SessionRecord,
    wanted: std::time::SystemTime,
    idle: Duration,
) -> bool {
    match wanted.duration_since(record.idle_until) {
        Ok(behind) => {
            behind > idle / 10 || (wanted == record.expires_at && behind > Duration::from_secs(1))
        }
        Err(ahead) => ahead.duration() > idle / 10,
    }
}

/// The security settings with their keys and stores: shared by the layers and the handlers.
pub struct Security {
    settings: SecuritySettings,
    cors: CorsPolicy,
    csrf: CsrfKeys,
    jwt: JwtKeys,
    sessions: Arc<dyn SessionStore>,
    rate_limits: Arc<dyn RateLimitStore>,
    idempotency: Arc<dyn IdempotencyStore>,
    /// `default_rate_limit` with its policy header rendered once.
    default_rate_policy: Option<&'static rate_limit::RatePolicy>,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("settings", &"..")
            .field("cors", &self.cors)
            .finish_non_exhaustive()
    }
}

impl Security {
    /// Security with `settings` and the in-process stores.
    ///
    /// # Errors
    /// An invalid CORS origin list.
    pub fn new(settings: SecuritySettings) -> Result<Self, ConfigError> {
        let secret = settings.jwt_secret.clone().unwrap_or_else(|| {
            tracing::warn!(
                "JWT_SECRET is not set: using a random secret; tokens will not survive a restart"
            );
            random_bytes(32)
        });
        Ok(Self {
            cors: CorsPolicy::new(&settings.cors_origins)?,
            csrf: CsrfKeys::new(&secret),
            jwt: JwtKeys::new(&secret, settings.jwt_ttl),
            sessions: Arc::new(MemorySessionStore::new()),
            rate_limits: Arc::new(MemoryRateLimitStore::new()),
            idempotency: Arc::new(MemoryIdempotencyStore::new()),
            default_rate_policy: settings
                .default_rate_limit
                .map(|limit| rate_limit::RatePolicy::of(rate_limit::DEFAULT_POLICY_NAME, limit)),
            settings,
        })
    }

    /// Security from the environment (see the module table).
    ///
    /// # Errors
    /// A variable with a value that does not parse; the message names it.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Self::new(SecuritySettings::from_env(env)?)
    }

    /// Keeps sessions in `store` instead of in process memory.
    pub fn with_session_store(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.sessions = store;
        self
    }

    /// Counts rate limits in `store` instead of in process memory.
    pub fn with_rate_limit_store(mut self, store: Arc<dyn RateLimitStore>) -> Self {
        self.rate_limits = store;
        self
    }

    /// Keeps idempotency keys and their answers in `store` instead of in process memory.
    pub fn with_idempotency_store(mut self, store: Arc<dyn IdempotencyStore>) -> Self {
        self.idempotency = store;
        self
    }

    /// The settings in force.
    pub fn settings(&self) -> &SecuritySettings {
        &self.settings
    }

    /// The JWT keys.
    pub fn jwt(&self) -> &JwtKeys {
        &self.jwt
    }

    /// The CSRF keys.
    pub fn csrf(&self) -> &CsrfKeys {
        &self.csrf
    }

    /// The CORS policy.
    pub fn cors(&self) -> &CorsPolicy {
        &self.cors
    }

    pub(crate) fn rate_limits(&self) -> &dyn RateLimitStore {
        self.rate_limits.as_ref()
    }

    pub(crate) fn idempotency(&self) -> &Arc<dyn IdempotencyStore> {
        &self.idempotency
    }

    pub(crate) fn default_rate_policy(&self) -> Option<&'static rate_limit::RatePolicy> {
        self.default_rate_policy
    }

    /// Starts a session for `user_id` and returns the cookie to set. A session the client
    /// already had (`previous`) is ended first, so a session id is never carried across a
    /// login (no fixation).
    ///
    /// # Errors
    /// The session store is unavailable.
    pub async fn start_session(
        &self,
        user_id: &str,
        previous: Option<&str>,
    ) -> Result<Cookie<'static>, ApiError> {
        if let Some(previous) = previous {
            self.sessions.remove(previous).await?;
        }
        // 256 bits from the OS-seeded CSPRNG.
        let id = URL_SAFE_NO_PAD.encode(random_bytes(32));
        let now = std::time::SystemTime::now();
        let expires_at = later(now, self.settings.session_ttl);
        let record = SessionRecord {
            user_id: user_id.to_owned(),
            expires_at,
            idle_until: self
                .settings
                .session_idle_timeout
                .map_or(expires_at, |idle| later(now, idle).min(expires_at)),
        };
        self.sessions.insert(&id, record).await?;
        let mut cookie = response::secure_cookie(SESSION_COOKIE, id, self.settings.secure_cookies);
        cookie.set_max_age(
            time::Duration::try_from(self.settings.session_ttl).unwrap_or(time::Duration::WEEK),
        );
        Ok(cookie)
    }

    /// Ends the session `id` server-side and returns the cookie that clears it.
    ///
    /// # Errors
    /// The session store is unavailable.
    pub async fn end_session(&self, id: Option<&str>) -> Result<Cookie<'static>, ApiError> {
        if let Some(id) = id {
            self.sessions.remove(id).await?;
        }
        Ok(response::removal_cookie(
            SESSION_COOKIE,
            self.settings.secure_cookies,
        ))
    }

    /// The user of the live session `id`.
    ///
    /// # Errors
    /// The session store is unavailable.
    pub async fn session_user(&self, id: &str) -> Result<Option<String>, ApiError> {
        let Some(record) = self.sessions.get(id).await? else {
            return Ok(None);
        };
        if let Some(idle) = self.settings.session_idle_timeout {
            let wanted = later(std::time::SystemTime::now(), idle).min(record.expires_at);
            if idle_end_is_stale(&record, wanted, idle) {
                // The read succeeded: a store that cannot take the write now costs the session
                // at most the part of its idle time this use would have added, and the next
                // request tries again.
                if let Err(error) = self.sessions.touch(id, wanted).await {
                    tracing::warn!(%error, "a session's idle end could not be moved on");
                }
            }
        }
        Ok(Some(record.user_id))
    }

    /// A CSRF token for the client whose `csrf` cookie is `cookie`; when it has none, a new
    /// cookie value is made and returned with the `Set-Cookie` to send.
    pub fn csrf_token(&self, cookie: Option<&str>) -> (String, Option<Cookie<'static>>) {
        match cookie.filter(|value| !value.is_empty()) {
            Some(cookie) => (self.csrf.token_for(cookie), None),
            None => {
                let value = CsrfKeys::new_cookie_value();
                let token = self.csrf.token_for(&value);
                let cookie =
                    response::secure_cookie(csrf::CSRF_COOKIE, value, self.settings.secure_cookies);
                (token, Some(cookie))
            }
        }
    }
}

fn random_bytes(count: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; count];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// The value of the request's cookie `name`.
pub fn request_cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    csrf::cookie_named(headers, name)
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            atomic::{AtomicBool, AtomicUsize, Ordering},
            Arc,
        },
        time::{Duration, SystemTime},
    };

    use super::{Security, SecuritySettings};
    use crate::store::{MemorySessionStore, SessionRecord, SessionStore, StoreError, StoreFuture};

    const IDLE: Duration = Duration::from_secs(24 * 3600);

    /// The in-process store, counting the touches it is asked for, and refusing them on demand.
    #[derive(Default)]
    struct Counting {
        inner: MemorySessionStore,
        touches: AtomicUsize,
        refuse: AtomicBool,
    }

    impl SessionStore for Counting {
        fn insert<'a>(&'a self, id: &'a str, record: SessionRecord) -> StoreFuture<'a, ()> {
            self.inner.insert(id, record)
        }
        fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<SessionRecord>> {
            self.inner.get(id)
        }
        fn touch<'a>(&'a self, id: &'a str, idle_until: SystemTime) -> StoreFuture<'a, ()> {
            self.touches.fetch_add(1, Ordering::SeqCst);
            if self.refuse.load(Ordering::SeqCst) {
                return Box::pin(std::future::ready(Err(StoreError::Unavailable(
                    "refused".into(),
                ))));
            }
            self.inner.touch(id, idle_until)
        }
        fn remove<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
            self.inner.remove(id)
        }
    }

    fn security() -> (Security, Arc<Counting>) {
        let store = Arc::new(Counting::default());
        let settings = SecuritySettings {
            session_idle_timeout: Some(IDLE),
            jwt_secret: Some(vec![7; 32]),
            ..SecuritySettings::default()
        };
        let security = Security::new(settings)
            .unwrap()
            .with_session_store(store.clone());
        (security, store)
    }

    /// A session whose lifetime ends `expires_in` from now and whose idle end is `idle_in`.
    async fn stored(store: &Counting, id: &str, expires_in: Duration, idle_in: Duration) {
        let now = SystemTime::now();
        let record = SessionRecord {
            user_id: format!("user-{id}"),
            expires_at: now + expires_in,
            idle_until: now + idle_in,
        };
        store.insert(id, record).await.unwrap();
    }

    async fn idle_end(store: &Counting, id: &str) -> Duration {
        let record = store.get(id).await.unwrap().unwrap();
        record
            .idle_until
            .duration_since(SystemTime::now())
            .unwrap_or_default()
    }

    fn close(a: Duration, b: Duration) -> bool {
        a.abs_diff(b) < Duration::from_secs(60)
    }

    #[tokio::test]
    async fn a_use_moves_the_idle_end_on_at_most_once_a_tenth_of_the_timeout() {
        let (security, store) = security();
        let week = Duration::from_secs(7 * 24 * 3600);
        // Touched an hour ago: well within the tenth, no write.
        stored(&store, "recent", week, IDLE - Duration::from_secs(3600)).await;
        let user = security.session_user("recent").await.unwrap();
        assert_eq!(user.as_deref(), Some("user-recent"));
        assert_eq!(store.touches.load(Ordering::SeqCst), 0);
        // Touched three hours ago: past the tenth (2.4 h), moved on to a whole timeout.
        stored(&store, "older", week, IDLE - Duration::from_secs(3 * 3600)).await;
        security.session_user("older").await.unwrap().unwrap();
        assert_eq!(store.touches.load(Ordering::SeqCst), 1);
        assert!(close(idle_end(&store, "older").await, IDLE));
        security.session_user("older").await.unwrap().unwrap();
        assert_eq!(store.touches.load(Ordering::SeqCst), 1, "once");
    }

    #[tokio::test]
    async fn an_idle_end_past_the_timeout_is_brought_in_and_one_near_the_lifetime_reaches_it() {
        let (security, store) = security();
        // From before the timeout existed: its idle end is its lifetime, a week out.
        let week = Duration::from_secs(7 * 24 * 3600);
        stored(&store, "old", week, week).await;
        security.session_user("old").await.unwrap().unwrap();
        assert!(
            close(idle_end(&store, "old").await, IDLE),
            "limited from this use on"
        );

        // Its lifetime ends in an hour: each use keeps it to the lifetime's end, not short of it.
        let hour = Duration::from_secs(3600);
        stored(&store, "ending", hour, Duration::from_secs(1800)).await;
        let touches = store.touches.load(Ordering::SeqCst);
        security.session_user("ending").await.unwrap().unwrap();
        assert_eq!(store.touches.load(Ordering::SeqCst), touches + 1);
        let record = store.get("ending").await.unwrap().unwrap();
        assert_eq!(record.idle_until, record.expires_at);
        security.session_user("ending").await.unwrap().unwrap();
        assert_eq!(
            store.touches.load(Ordering::SeqCst),
            touches + 1,
            "already there"
        );
    }

    #[tokio::test]
    async fn a_store_that_refuses_the_touch_still_lets_the_session_through() {
        let (security, store) = security();
        let week = Duration::from_secs(7 * 24 * 3600);
        stored(&store, "s", week, IDLE - Duration::from_secs(5 * 3600)).await;
        store.refuse.store(true, Ordering::SeqCst);
        let user = security.session_user("s").await.unwrap();
        assert_eq!(user.as_deref(), Some("user-s"));
        assert_eq!(store.touches.load(Ordering::SeqCst), 1);
        // Not moved on; the next use tries again.
        assert!(close(
            idle_end(&store, "s").await,
            IDLE - Duration::from_secs(5 * 3600)
        ));
        store.refuse.store(false, Ordering::SeqCst);
        security.session_user("s").await.unwrap().unwrap();
        assert!(close(idle_end(&store, "s").await, IDLE));
    }
}
