//! Per-route settings a `route.rs` declares with `pub const CONFIG: RouteConfig = …;`.
//!
//! Every method is `const`, so the generated route table can hold the configs in a `static` and
//! `waypost routes` can show them without running the app.

use std::time::Duration;

/// The default request body limit: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// The default number of pairs a query string or form body may hold: 1000, as Django's
/// `DATA_UPLOAD_MAX_NUMBER_FIELDS` and PHP's `max_input_vars` have it.
pub const DEFAULT_MAX_FIELDS: usize = 1000;

/// A per-route request budget: `requests` per `window`, counted per user (or client IP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// How many requests pass within one window.
    pub requests: u32,
    /// The window length.
    pub window: Duration,
}

impl RateLimit {
    /// `requests` per `window`.
    pub const fn new(requests: u32, window: Duration) -> Self {
        Self { requests, window }
    }

    /// `requests` per minute.
    pub const fn per_minute(requests: u32) -> Self {
        Self::new(requests, Duration::from_secs(60))
    }

    /// `requests` per second.
    pub const fn per_second(requests: u32) -> Self {
        Self::new(requests, Duration::from_secs(1))
    }
}

/// How a route's rate limit is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitSetting {
    /// The app-wide default (`RATE_LIMIT_DEFAULT`).
    Default,
    /// A limit of the route's own.
    Custom(RateLimit),
    /// No limit on this route.
    Disabled,
}

/// Settings of one route. Start from [`RouteConfig::new`] and chain what differs.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use waypost::{RateLimit, RouteConfig};
///
/// pub const CONFIG: RouteConfig = RouteConfig::new()
///     .body_limit(8 * 1024 * 1024)
///     .max_duration(Duration::from_secs(30))
///     .rate_limit(RateLimit::per_minute(10));
/// assert_eq!(CONFIG.body_limit, 8 * 1024 * 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RouteConfig {
    /// Largest accepted request body in bytes, streamed bodies included.
    pub body_limit: usize,
    /// Longest time the handler may run before the client gets 504 `timeout`.
    pub max_duration: Option<Duration>,
    /// Whether unsafe methods carrying cookies must present a CSRF token.
    pub csrf: bool,
    /// The rate limit of this route.
    pub rate_limit: RateLimitSetting,
    /// Whether signed-in callers are counted by user id (else every caller by client IP).
    pub rate_limit_by_user: bool,
    /// Whether an unsafe request carrying `Idempotency-Key` is answered once per key.
    pub idempotent: bool,
    /// How long anonymous callers and shared caches may keep a GET's answer (`None`: not
    /// marked, so not kept by well-behaved caches).
    pub cache: Option<Duration>,
    /// The most `key=value` pairs `Query` and `Form` read from one query string or body.
    pub max_fields: usize,
}

impl RouteConfig {
    /// The defaults: 1 MiB body limit, no max duration beyond the server's, CSRF on, the
    /// app-wide rate limit.
    pub const fn new() -> Self {
        Self {
            body_limit: DEFAULT_BODY_LIMIT,
            max_duration: None,
            csrf: true,
            rate_limit: RateLimitSetting::Default,
            rate_limit_by_user: true,
            idempotent: false,
            cache: None,
            max_fields: DEFAULT_MAX_FIELDS,
        }
    }

    /// Accept request bodies up to `bytes`.
    pub const fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Answer 504 `timeout` when the handler runs longer than `duration`.
    pub const fn max_duration(mut self, duration: Duration) -> Self {
        self.max_duration = Some(duration);
        self
    }

    /// Turn the CSRF check off for this route (webhooks, server-to-server endpoints).
    pub const fn skip_csrf(mut self) -> Self {
        self.csrf = false;
        self
    }

    /// Give this route a rate limit of its own. Its `RateLimit-Policy` and `RateLimit` headers
    /// name it after the route's pattern (`"/api/auth/login";q=10;w=60`), where the app-wide
    /// limit is named `"default"`.
    pub const fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = RateLimitSetting::Custom(limit);
        self
    }

    /// Count this route's rate limit per client IP even for signed-in users.
    pub const fn rate_limit_per_ip(mut self) -> Self {
        self.rate_limit_by_user = false;
        self
    }

    /// Honour the `Idempotency-Key` header on this route's unsafe methods (POST, PUT, PATCH,
    /// DELETE): the first request with a key runs, and a retry with the same key — from the same
    /// caller, with the same method, URL and body — gets the first answer again, marked
    /// `Idempotent-Replayed: true`, without running the handler. While the first still runs a
    /// retry is 409 `idempotency_in_progress`; the key with another request is 422
    /// `idempotency_key_reused`. Successful answers are kept for 24 hours; an error (which
    /// changed nothing) or a panic is not, so its retry runs again. A success streamed, too
    /// large, or past the store's room to keep is never run again: its retry is 409
    /// `idempotency_answer_not_kept`. When
    /// the store can keep no more keys, a request with a new one is refused before it runs
    /// (503 `idempotency_unavailable`). A handler with a key finishes even when its client goes away or `max_duration` answers
    /// 504 first — work cut short may have committed — and the retry gets its answer. Requests
    /// without the header run as usual.
    pub const fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// Let browsers and shared caches keep this route's GET answers for `max_age`: a 200 to a
    /// caller who is not signed in carries `Cache-Control: public, max-age=<seconds>` and an
    /// `ETag` (a hash of the body), and a request whose `If-None-Match` names that tag is
    /// answered `304 Not Modified` without the body. For answers that are the same for every
    /// caller (documentation, reference data): a signed-in caller's answer stays `no-store`, an
    /// answer that sets a cookie or its own `Cache-Control` is left as it is, and a streamed
    /// answer gets `Cache-Control` without an `ETag`.
    pub const fn cache(mut self, max_age: Duration) -> Self {
        self.cache = Some(max_age);
        self
    }

    /// Let `Query` and `Form` read up to `pairs` `key=value` pairs from one query string or body
    /// (default [`DEFAULT_MAX_FIELDS`]); past it the request is 400 `validation_failed`, before
    /// anything is decoded. The body limit still bounds a form's size.
    pub const fn max_fields(mut self, pairs: usize) -> Self {
        self.max_fields = pairs;
        self
    }

    /// Take this route out of rate limiting.
    pub const fn no_rate_limit(mut self) -> Self {
        self.rate_limit = RateLimitSetting::Disabled;
        self
    }
}

impl Default for RouteConfig {
    fn default() -> Self {
        Self::new()
    }
}
