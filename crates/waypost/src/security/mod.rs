//! Security by default: sessions and JWTs, CSRF, CORS, rate limits, passwords.
//!
//! One [`Security`] value holds every setting and store; [`crate::App`] hands it to the front
//! layer, which runs the security gate around every request (CORS preflights, credentials →
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
//! | session idle timeout: a session unused this long ends (each use moves it on, at most one store write per tenth of it) | 24 h | `SESSION_IDLE_TIMEOUT` (`off` disables) |
//! | `Secure` cookies | off | `WAYPOST_SECURE_COOKIES` |

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
            jwt_ttl: env.duration("JWT_TTL", defaults.jwt_ttl)?,
            session_ttl: env.duration("SESSION_TTL", defaults.session_ttl)?,
            session_idle_timeout: idle_timeout(env, defaults.session_idle_timeout)?,
            secure_cookies: env.flag("WAYPOST_SECURE_COOKIES", false)?,
        };
        // Validate the origins now, so a bad list stops start-up.
        CorsPolicy::new(&settings.cors_origins)?;
        Ok(settings)
    }
}

/// `SESSION_IDLE_TIMEOUT`: a duration above zero, or `off`.
fn idle_timeout(env: &Env, default: Option<Duration>) -> Result<Option<Duration>, ConfigError> {
    let Some(raw) = env.get("SESSION_IDLE_TIMEOUT") else {
        return Ok(default);
    };
    if raw.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match crate::config::parse_duration(&raw) {
        Some(idle) if !idle.is_zero() => Ok(Some(idle)),
        _ => Err(ConfigError::invalid(
            "SESSION_IDLE_TIMEOUT",
            &raw,
            "expected a duration above zero like 30m or 24h, or off",
        )),
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
        let expires_at = now + self.settings.session_ttl;
        let record = SessionRecord {
            user_id: user_id.to_owned(),
            expires_at,
            idle_until: self
                .settings
                .session_idle_timeout
                .map_or(expires_at, |idle| (now + idle).min(expires_at)),
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
            // This use moves the idle end on. That is a store write, so it is done once a tenth
            // of the timeout has passed since the last one, not on every request: a session
            // then ends between 90% and 100% of the timeout after its last use.
            let wanted = (std::time::SystemTime::now() + idle).min(record.expires_at);
            if wanted > record.idle_until + idle / 10 {
                self.sessions.touch(id, wanted).await?;
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
