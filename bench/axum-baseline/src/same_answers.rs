//! `BASELINE_SAME_ANSWERS=1`: what the showcase contract asks of every answer on the benched
//! routes, hand-written in plain axum and tower, so that this server's answers to the bench's
//! requests are the showcase's, header for header (its error answers, which the bench does not
//! ask for, keep the bare server's shape).
//!
//! The contract's rules for these `GET`s: every answer carries `X-Request-Id` (the client's own
//! when it sent a sane one, else a fresh one) and `X-Content-Type-Options: nosniff`; every
//! `/api` route is rate-limited per client IP (`RATE_LIMIT_DEFAULT`, each route with its own
//! count) and says so in `RateLimit-Policy` and `RateLimit`, answering 429 past the limit; a
//! panic is a 500 in the error shape and the server goes on. Written the way an engineer who
//! cares for speed would: two small tower services with named futures (no `from_fn`), one
//! wrapping the router as a whole and one each handler (`Handler::layer`), so neither adds a box
//! to axum's own; a fixed-window count under one lock with a seeded fast hash; header values
//! made with `itoa`; request ids from a per-thread generator. These are the showcase's own
//! techniques, so the ratio measures the framework, not a slower way of writing the same thing.

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    hash::{BuildHasher, BuildHasherDefault, Hasher},
    net::{IpAddr, SocketAddr},
    panic::{catch_unwind, AssertUnwindSafe},
    pin::Pin,
    sync::Mutex,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{
    extract::{ConnectInfo, Request},
    http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use pin_project_lite::pin_project;
use rand::{rngs::SmallRng, RngCore, SeedableRng};
use tower::{Layer, Service};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");

/// The routes' rate limits: one count per route and client, all under one limit. The limiter
/// lives as long as the process and is shared by reference: axum clones a route's service for
/// each request, and a reference count would bounce between the workers' caches.
#[derive(Clone, Copy)]
pub(crate) struct RateLimits(&'static Limiter);

impl RateLimits {
    /// `RATE_LIMIT_DEFAULT` as the showcase reads it: `<requests>/<window>`, the window a number
    /// (1 when left out) and a unit of `s`, `m` or `h` (`300/60s`, its default, when unset).
    pub(crate) fn from_env() -> Result<Self, String> {
        let text = std::env::var("RATE_LIMIT_DEFAULT").unwrap_or_else(|_| "300/60s".to_owned());
        let invalid =
            || format!("RATE_LIMIT_DEFAULT={text:?} is not <requests>/<window>, like 300/60s");
        let (requests, window) = text.trim().split_once('/').ok_or_else(invalid)?;
        let requests: u32 = requests.trim().parse().map_err(|_| invalid())?;
        let window = window.trim();
        let digits = window
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(invalid)?;
        let count: u64 = match &window[..digits] {
            "" => 1,
            count => count.parse().map_err(|_| invalid())?,
        };
        let unit = match &window[digits..] {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            _ => return Err(invalid()),
        };
        if requests == 0 || count == 0 {
            return Err(invalid());
        }
        let window = Duration::from_secs(count.saturating_mul(unit));
        Ok(Self(Box::leak(Box::new(Limiter::new(
            u64::from(requests),
            window,
        )))))
    }

    /// The layer that counts the requests of `route`.
    pub(crate) fn on(self, route: &'static str) -> RateLimitLayer {
        RateLimitLayer {
            limiter: self.0,
            route,
        }
    }
}

/// The request id, the `nosniff` header and panics caught.
#[derive(Clone, Copy)]
pub(crate) struct AnswerLayer;

impl<S> Layer<S> for AnswerLayer {
    type Service = Answer<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Answer { inner }
    }
}

#[derive(Clone)]
pub(crate) struct Answer<S> {
    inner: S,
}

impl<S> Service<Request> for Answer<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = AnswerFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let id = RequestId::of(request.headers());
        match catch_unwind(AssertUnwindSafe(|| self.inner.call(request))) {
            Ok(future) => AnswerFuture::Running { future, id },
            Err(_) => AnswerFuture::Panicked { id },
        }
    }
}

pin_project! {
    #[project = AnswerProjection]
    pub(crate) enum AnswerFuture<F> {
        Running { #[pin] future: F, id: RequestId },
        Panicked { id: RequestId },
    }
}

impl<F> Future for AnswerFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (polled, id) = match self.project() {
            AnswerProjection::Running { future, id } => {
                (catch_unwind(AssertUnwindSafe(|| future.poll(cx))).ok(), *id)
            }
            AnswerProjection::Panicked { id } => (None, *id),
        };
        let mut response = match polled {
            Some(Poll::Pending) => return Poll::Pending,
            Some(Poll::Ready(Ok(response))) => response,
            None => internal_error(&id),
        };
        let headers = response.headers_mut();
        headers.insert(REQUEST_ID, id.header_value());
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
        Poll::Ready(Ok(response))
    }
}

/// The 500 in the contract's error shape, with no word of the panic.
fn internal_error(id: &RequestId) -> Response {
    let body = serde_json::json!({
        "error": "Internal server error.",
        "code": "internal_error",
        "requestId": id.as_str(),
    });
    (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
}

/// A request id held inline: the client's (at most 64 of `[A-Za-z0-9._-]`) or 32 fresh hex
/// digits.
#[derive(Clone, Copy)]
struct RequestId {
    bytes: [u8; 64],
    len: usize,
}

impl RequestId {
    fn of(headers: &HeaderMap) -> Self {
        let sent = headers.get(REQUEST_ID).map(HeaderValue::as_bytes);
        match sent.filter(|id| {
            !id.is_empty()
                && id.len() <= 64
                && id
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        }) {
            Some(id) => {
                let mut bytes = [0; 64];
                bytes[..id.len()].copy_from_slice(id);
                Self {
                    bytes,
                    len: id.len(),
                }
            }
            None => Self::fresh(),
        }
    }

    fn fresh() -> Self {
        thread_local! {
            static IDS: std::cell::RefCell<SmallRng> =
                std::cell::RefCell::new(SmallRng::from_rng(&mut rand::rng()));
        }
        let random = IDS.with(|ids| {
            let mut ids = ids.borrow_mut();
            u128::from(ids.next_u64()) << 64 | u128::from(ids.next_u64())
        });
        let mut bytes = [0; 64];
        for (pair, byte) in bytes[..32].chunks_exact_mut(2).zip(random.to_le_bytes()) {
            pair.copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
        }
        Self { bytes, len: 32 }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("-")
    }

    fn header_value(&self) -> HeaderValue {
        HeaderValue::from_bytes(&self.bytes[..self.len]).unwrap_or(HeaderValue::from_static("-"))
    }
}

/// Each byte's two lowercase hex digits, a table load per byte of a fresh id.
const HEX_PAIRS: [[u8; 2]; 256] = {
    let digits = b"0123456789abcdef";
    let mut pairs = [[0; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        pairs[byte] = [digits[byte >> 4], digits[byte & 0xf]];
        byte += 1;
    }
    pairs
};

/// One route's rate limit, per client IP.
#[derive(Clone, Copy)]
pub(crate) struct RateLimitLayer {
    limiter: &'static Limiter,
    route: &'static str,
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimited<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimited {
            inner,
            limiter: self.limiter,
            route: self.route,
        }
    }
}

#[derive(Clone)]
pub(crate) struct RateLimited<S> {
    inner: S,
    limiter: &'static Limiter,
    route: &'static str,
}

impl<S> Service<Request> for RateLimited<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = RateLimitedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let client = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip());
        let decision = self.limiter.count(self.route, client);
        if decision.remaining.is_none() {
            let mut refused = (
                StatusCode::TOO_MANY_REQUESTS,
                Json(serde_json::json!({
                    "error": "Too many requests; try again later.",
                    "code": "rate_limited",
                })),
            )
                .into_response();
            let headers = refused.headers_mut();
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(decision.reset_seconds),
            );
            self.limiter.set_headers(headers, &decision);
            return RateLimitedFuture::Refused {
                response: Some(refused),
            };
        }
        RateLimitedFuture::Counted {
            future: self.inner.call(request),
            limiter: self.limiter,
            decision,
        }
    }
}

pin_project! {
    #[project = RateLimitedProjection]
    pub(crate) enum RateLimitedFuture<F> {
        Counted { #[pin] future: F, limiter: &'static Limiter, decision: Decision },
        Refused { response: Option<Response> },
    }
}

impl<F> Future for RateLimitedFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            RateLimitedProjection::Counted {
                future,
                limiter,
                decision,
            } => future.poll(cx).map_ok(|mut response| {
                limiter.set_headers(response.headers_mut(), decision);
                response
            }),
            RateLimitedProjection::Refused { response } => {
                Poll::Ready(Ok(response.take().expect("polled after completion")))
            }
        }
    }
}

/// Fixed windows of `window_nanos` per route and client, each letting `requests` through.
pub(crate) struct Limiter {
    requests: u64,
    /// The window's length in nanoseconds, the unit the windows are kept in.
    window_nanos: u64,
    epoch: Instant,
    /// `"default";q=<requests>;w=<seconds>`, made once, over static bytes: cloned onto each answer
    /// without a reference count (which both workers would bounce between their caches).
    policy: HeaderValue,
    hasher: foldhash::quality::RandomState,
    windows: Mutex<Windows>,
}

struct Windows {
    /// By the hash of route and client: the end of the window (ns since the epoch) and its count.
    counts: HashMap<u64, (u64, u64), BuildHasherDefault<KeyIsHash>>,
    inserts_since_sweep: u32,
}

/// The map's hasher: its keys are already seeded hashes, taken as they are.
#[derive(Default)]
struct KeyIsHash(u64);

impl Hasher for KeyIsHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys are hashed");
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }
}

/// What one count found: the requests left (`None`: refused) and when the window ends.
#[derive(Clone, Copy)]
struct Decision {
    remaining: Option<u64>,
    reset_seconds: u64,
}

impl Limiter {
    fn new(requests: u64, window: Duration) -> Self {
        let policy: &'static str =
            format!("\"default\";q={requests};w={}", window.as_secs()).leak();
        Self {
            requests,
            window_nanos: u64::try_from(window.as_nanos()).unwrap_or(u64::MAX),
            epoch: Instant::now(),
            policy: HeaderValue::from_static(policy),
            hasher: foldhash::quality::RandomState::default(),
            windows: Mutex::new(Windows {
                counts: HashMap::default(),
                inserts_since_sweep: 0,
            }),
        }
    }

    fn count(&self, route: &'static str, client: Option<IpAddr>) -> Decision {
        // One seeded hash of the key, kept as the map's key: the route's address (its pattern is
        // static, so the address names it; the showcase hashes the pattern's bytes) and the
        // client's address.
        let mut key = self.hasher.build_hasher();
        key.write_usize(route.as_ptr() as usize);
        match client {
            Some(IpAddr::V4(v4)) => key.write_u32(v4.to_bits()),
            Some(IpAddr::V6(v6)) => key.write_u128(v6.to_bits()),
            None => {}
        }
        let key = key.finish();
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let length = self.window_nanos;
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let windows = &mut *windows;
        let known = windows.counts.len();
        let (ends_at, counted) = windows
            .counts
            .entry(key)
            .or_insert((now.saturating_add(length), 0));
        if *ends_at <= now {
            *ends_at = now.saturating_add(length);
            *counted = 0;
        }
        let left = (ends_at.saturating_sub(now)).div_ceil(1_000_000_000);
        let remaining = (*counted < self.requests).then(|| {
            *counted += 1;
            self.requests - *counted
        });
        if windows.counts.len() > known {
            windows.inserts_since_sweep += 1;
            if windows.inserts_since_sweep >= 1024 {
                windows.counts.retain(|_, (ends_at, _)| *ends_at > now);
                windows.inserts_since_sweep = 0;
            }
        }
        Decision {
            remaining,
            reset_seconds: left,
        }
    }

    /// `RateLimit-Policy` and `RateLimit`: `"default";r=<remaining>;t=<seconds>`.
    fn set_headers(&self, headers: &mut HeaderMap, decision: &Decision) {
        let mut remaining = itoa::Buffer::new();
        let mut reset = itoa::Buffer::new();
        let remaining = remaining.format(decision.remaining.unwrap_or(0)).as_bytes();
        let reset = reset.format(decision.reset_seconds).as_bytes();
        const NAME: &[u8] = b"\"default\";r=";
        // Exactly as long as the value: a `Vec` with room to spare would cost `Bytes` a second
        // allocation.
        let mut state = Vec::with_capacity(NAME.len() + remaining.len() + 3 + reset.len());
        state.extend_from_slice(NAME);
        state.extend_from_slice(remaining);
        state.extend_from_slice(b";t=");
        state.extend_from_slice(reset);
        if let Ok(state) = HeaderValue::from_maybe_shared(bytes::Bytes::from(state)) {
            headers.insert(RATELIMIT_POLICY, self.policy.clone());
            headers.insert(RATELIMIT, state);
        }
    }
}
