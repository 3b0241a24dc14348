//! The per-route guard: what a route's [`RouteConfig`](crate::RouteConfig) asks for, enforced
//! before the handler runs, in this order — a path whose parameter is an empty segment answered
//! 404 as no route's, an unsafe request's provenance (403 `csrf_invalid` for one a browser sent
//! from another site, before it is counted), the rate limit (429 with `Retry-After`), the CSRF
//! token on unsafe methods (403 `csrf_invalid`), the body limit, declared and streamed (413),
//! and the max duration (504). The rate limit counts the requests that reach a handler: the
//! framework's own answers on a route's behalf (OPTIONS 204, 405) cost it nothing, so they
//! never use up, say, a login's ten attempts.
//!
//! It is applied in one of two places, decided by [`RouteInfo::guards_each_handler`]: around
//! each handler ([`Guarded`], what a plain route gets — no boxing beyond what axum does for any
//! handler), or as a layer around the route's whole method router ([`RouteLayer`]) when the
//! route has `middleware.rs` files, which must run inside the guard, or a body limit above
//! axum's own default, which the layer lifts.
//!
//! Whatever can be decided on the spot is: the in-process rate limiter answers inline, so a GET
//! without a max duration goes straight to the handler in a named future. Only a shared store,
//! a CSRF check, an oversized declared body or a max duration take the boxed, async path.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll},
    time::Duration,
};

use axum::{
    body::Body,
    extract::Request,
    handler::Handler,
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
};
use http_body::Body as _;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::{
    caching::{self, Revalidation},
    idempotency,
};
use crate::{
    context::RequestContext,
    routing::{Method, RouteInfo},
    security::{
        csrf,
        layer::CorsPreflight,
        rate_limit::{self, RatePolicy},
        Identity, Security,
    },
    store::{Decision, RateKey, Subject},
    ApiError, RateLimitSetting,
};

/// One route's checks, ready to run on its requests.
#[derive(Clone, Debug)]
pub struct RouteGuard {
    route: &'static RouteInfo,
    /// The route's own limit with its rendered policy header (`None`: the default or none).
    custom_policy: Option<&'static RatePolicy>,
    /// The methods one of the route's handlers answers, a [`bit`] each; the framework's
    /// own answers to the others — OPTIONS 204, 405 — pass no check and are not counted.
    handled: u8,
    /// The `Cache-Control` of a route declared [`cache`](crate::RouteConfig::cache).
    cache_control: Option<HeaderValue>,
    /// Whether the route's path has parameters, which axum matches to an empty segment too
    /// (`{id}` in `/api/tools//use`) and to dot segments (`{*path}` in `/api/files/../../etc`):
    /// paths no route means to serve, answered as the fallback answers every other.
    has_params: bool,
}

/// What a segment of an axum path pattern matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PatternSegment {
    /// Itself.
    Static,
    /// One segment: `{id}`.
    Param,
    /// This segment and every one after it: `{*rest}`.
    CatchAll,
}

impl PatternSegment {
    fn of(segment: &str) -> Self {
        if segment.starts_with("{*") {
            Self::CatchAll
        } else if segment.starts_with('{') {
            Self::Param
        } else {
            Self::Static
        }
    }
}

/// Whether the path segment `segment` (as sent) is a dot segment, or holds one however a
/// handler may come to read it: decoded once (`%2E%2E`; `..%2F..` in a catch-all, where axum
/// decodes `%2F` into a separator) or twice (`%252e%252e`, which a handler that puts the value
/// into a URL hands to a parser that reads `%2e` as a dot), with `\` counted as a separator (URL
/// parsers and Windows paths take it for one) and a `;` parameter ignored (`..;x`, as Java
/// servers read it).
fn holds_a_dot_segment(segment: &str) -> bool {
    let mut value: Vec<u8> = segment.as_bytes().to_vec();
    for _ in 0..3 {
        let decoded: Vec<u8> = percent_encoding::percent_decode(&value).collect();
        let dotted = decoded
            .split(|&byte| byte == b'/' || byte == b'\\')
            .map(|piece| piece.split(|&byte| byte == b';').next().unwrap_or_default())
            .any(|piece| piece == b"." || piece == b"..");
        if dotted {
            return true;
        }
        if decoded == value {
            return false;
        }
        value = decoded;
    }
    // Still changing after three decodings: no value a client means.
    true
}

/// Whether a path (as sent) may hold a parameter no route means to serve: an empty segment
/// (`//`), or a dot, plain or escaped (an escaped one needs a `%`). Most paths have none of
/// these and are let through on this one look — a vectorised search, then a glance after each
/// slash — which runs on every request to a route with parameters.
fn may_hold_an_unservable_param(path: &[u8]) -> bool {
    memchr::memchr2(b'.', b'%', path).is_some()
        || memchr::memchr_iter(b'/', path).any(|slash| path.get(slash + 1) == Some(&b'/'))
}

impl RouteGuard {
    /// The guard of `route`.
    pub fn new(route: &'static RouteInfo) -> Self {
        let custom_policy = match route.config.rate_limit {
            RateLimitSetting::Custom(limit) => Some(RatePolicy::of(route.pattern, limit)),
            RateLimitSetting::Default | RateLimitSetting::Disabled => None,
        };
        let handled = route
            .handlers
            .iter()
            .map(|handler| match handler.method {
                // HEAD is answered by the GET handler.
                Method::Get => bit(Method::Get) | bit(Method::Head),
                method => bit(method),
            })
            .fold(0, |bits, bit| bits | bit);
        Self {
            route,
            custom_policy,
            handled,
            cache_control: route.config.cache.map(caching::cache_control),
            has_params: route.paths.iter().any(|path| path.contains('{')),
        }
    }

    /// Whether a parameter of `request`'s path is one no route means to serve: a one-segment
    /// parameter matched to an empty segment, or any parameter holding a dot segment (`..`, as
    /// sent or escaped), which would hand a handler that builds a file path or an upstream URL
    /// from it a way out of its folder. Read off the path the router matched and the pattern it
    /// matched, both whole (`OriginalUri` and `MatchedPath`, which axum's router sets): a nested
    /// router's route sees its own part of the path only, and axum hands it that part with empty
    /// segments dropped.
    fn has_an_unservable_param(&self, request: &Request) -> bool {
        if !self.has_params {
            return false;
        }
        let extensions = request.extensions();
        let original = extensions.get::<axum::extract::OriginalUri>();
        let path = original.map_or_else(|| request.uri().path(), |original| original.path());
        if !may_hold_an_unservable_param(path.as_bytes()) {
            return false;
        }
        let own_pattern = self.route.paths.first().copied().unwrap_or_default();
        let pattern = match (original, extensions.get::<axum::extract::MatchedPath>()) {
            (Some(_), Some(matched)) => matched.as_str(),
            _ => own_pattern,
        };
        let mut kinds = pattern
            .trim_start_matches('/')
            .split('/')
            .map(PatternSegment::of);
        let mut kind = PatternSegment::Static;
        for segment in path.strip_prefix('/').unwrap_or(path).split('/') {
            // Past a catch-all, every segment is its.
            if kind != PatternSegment::CatchAll {
                kind = kinds.next().unwrap_or(PatternSegment::Static);
            }
            let unservable = match kind {
                PatternSegment::Static => false,
                PatternSegment::Param => segment.is_empty() || holds_a_dot_segment(segment),
                // A catch-all may hold an empty segment (`a//b`), not a dot one.
                PatternSegment::CatchAll => holds_a_dot_segment(segment),
            };
            if unservable {
                return true;
            }
        }
        false
    }

    /// Whether a request with `method` reaches one of the route's handlers.
    #[inline]
    fn reaches_a_handler(&self, method: &http::Method) -> bool {
        Method::of(method).is_some_and(|method| self.handled & bit(method) != 0)
    }

    /// The limit in force on this route under `security`'s settings.
    fn policy(&self, security: &Security) -> Option<&'static RatePolicy> {
        match self.route.config.rate_limit {
            RateLimitSetting::Default => security.default_rate_policy(),
            RateLimitSetting::Custom(_) => self.custom_policy,
            RateLimitSetting::Disabled => None,
        }
    }

    /// Runs the checks, then `call` with the admitted request; on a cached route, the answer
    /// to an anonymous GET is marked cacheable (or is 304, see [`caching`]).
    pub(crate) fn run<F, C>(&self, request: Request, call: C) -> GuardedFuture<F>
    where
        C: FnOnce(Request) -> F + Send + 'static,
        F: Future<Output = Response> + Send + 'static,
    {
        let revalidation = self
            .cache_control
            .as_ref()
            .and_then(|cache_control| Revalidation::of(cache_control, &request));
        let guarded = self.check_then_call(request, call);
        match revalidation {
            None => guarded,
            Some(revalidation) => GuardedFuture::boxed(revalidation.apply(guarded)),
        }
    }

    /// The checks, then `call`.
    fn check_then_call<F, C>(&self, mut request: Request, call: C) -> GuardedFuture<F>
    where
        C: FnOnce(Request) -> F + Send + 'static,
        F: Future<Output = Response> + Send + 'static,
    {
        if self.has_an_unservable_param(&request) {
            return GuardedFuture::ready(crate::routing::not_found_fallback_response());
        }
        if request.method() == http::Method::OPTIONS
            && request.extensions().get::<CorsPreflight>().is_some()
        {
            // The front layer makes this the preflight's answer (see `CorsPreflight`).
            return GuardedFuture::ready(axum::http::StatusCode::NO_CONTENT.into_response());
        }
        let config = &self.route.config;
        if config.max_fields != crate::DEFAULT_MAX_FIELDS {
            // For `Query` and `Form`, which see only the request.
            crate::context::set_max_fields(config.max_fields);
        }
        let limit = config.body_limit;
        // A request without a body (most GETs) has no length to check.
        let has_body = !request.body().is_end_stream();
        if !self.reaches_a_handler(request.method()) {
            // The framework's own answer (the automatic OPTIONS 204, or 405): no check made for
            // a handler — rate limit, CSRF, idempotency key, 413 for a declared length — changes
            // it, whatever the request carries. A `middleware.rs` may still run before it, so
            // the body stays bounded and the time limit holds.
            if has_body {
                request = bounded(request, limit);
            }
            return match config.max_duration {
                None => GuardedFuture::direct(call(request), None),
                max => GuardedFuture::boxed(within(max, call(request))),
            };
        }
        let declared = has_body
            .then(|| crate::extract::declared_length(request.headers()))
            .flatten();
        let too_large = declared.is_some_and(|length| length > limit as u64);
        if !too_large && has_body {
            request = bounded(request, limit);
        }
        if needs_csrf(self.route, request.method()) {
            // A request a browser sent from another site is refused before it is counted: a
            // page could otherwise spend its visitors' login attempts (counted per IP) with
            // forms they never see, and lock everyone behind their address out.
            let foreign = crate::context::with_current(|context| {
                let security = &context?.connection.as_ref()?.security;
                csrf::check_provenance(request.uri(), request.headers(), security.cors()).err()
            });
            if let Some(refusal) = foreign {
                return GuardedFuture::ready(refusal.into_response());
            }
        }
        let step = crate::context::with_current(|context| {
            let Some(context) = context else {
                return RateStep::Unlimited;
            };
            let Some(security) = context.connection.as_ref().map(|shared| &shared.security) else {
                return RateStep::Unlimited;
            };
            let Some(policy) = self.policy(security) else {
                return RateStep::Unlimited;
            };
            let counted = Counted::of(self.route, &request, security, context);
            match security
                .rate_limits()
                .check_inline(counted.key(self.route), policy.limit)
            {
                Some(decision) if decision.allowed => {
                    RateStep::Passed(RateNote { policy, decision })
                }
                Some(decision) => RateStep::Refused(refusal(policy, &decision)),
                None => RateStep::Waiting(AskStore {
                    security: security.clone(),
                    policy,
                    counted,
                }),
            }
        });
        let note = match step {
            RateStep::Refused(response) => return GuardedFuture::ready(response),
            RateStep::Unlimited => None,
            RateStep::Passed(note) => Some(note),
            RateStep::Waiting(ask) => {
                let rate = Rate::Waiting(ask);
                return GuardedFuture::boxed(guard_slowly(
                    self.route, rate, request, too_large, call,
                ));
            }
        };
        if needs_csrf(self.route, request.method())
            || too_large
            || config.max_duration.is_some()
            || idempotency::wanted(config, &request)
        {
            let rate = Rate::Decided(note);
            return GuardedFuture::boxed(guard_slowly(self.route, rate, request, too_large, call));
        }
        GuardedFuture::direct(call(request), note)
    }
}

/// Where the rate limit stands before the handler.
enum RateStep {
    /// The route has no limit (or the app no security).
    Unlimited,
    /// Counted and passed.
    Passed(RateNote),
    /// Counted and refused: the 429 to send.
    Refused(Response),
    /// The store must be asked, asynchronously.
    Waiting(AskStore),
}

/// A rate-limit question for a store that answers asynchronously (a shared one).
struct AskStore {
    security: Arc<Security>,
    policy: &'static RatePolicy,
    counted: Counted,
}

/// Where the rate limit stands when the guard has something to wait for.
enum Rate {
    /// Decided on the spot: passed with these headers, or no limit.
    Decided(Option<RateNote>),
    /// The store is still to be asked.
    Waiting(AskStore),
}

/// What the response's `RateLimit` headers report.
struct RateNote {
    policy: &'static RatePolicy,
    decision: Decision,
}

impl RateNote {
    fn stamp(&self, response: &mut Response) {
        rate_limit::set_headers(response.headers_mut(), self.policy, &self.decision);
    }
}

pin_project! {
    /// The future of a guarded route.
    pub struct GuardedFuture<F> {
        #[pin]
        state: GuardedState<F>,
    }
}

pin_project! {
    #[project = GuardedProjection]
    enum GuardedState<F> {
        // Checked on the spot: the handler runs; the rate-limit headers go on its answer.
        Direct { #[pin] inner: F, note: Option<RateNote> },
        // Something had to be awaited first (a shared store, a CSRF form field, a timeout).
        Boxed { future: Pin<Box<dyn Future<Output = Response> + Send>> },
        // Answered before the handler (429).
        Ready { response: Option<Response> },
    }
}

impl<F> GuardedFuture<F> {
    fn direct(inner: F, note: Option<RateNote>) -> Self {
        Self {
            state: GuardedState::Direct { inner, note },
        }
    }

    fn ready(response: Response) -> Self {
        Self {
            state: GuardedState::Ready {
                response: Some(response),
            },
        }
    }

    fn boxed(future: impl Future<Output = Response> + Send + 'static) -> Self {
        Self {
            state: GuardedState::Boxed {
                future: Box::pin(future),
            },
        }
    }
}

impl<F: Future<Output = Response>> Future for GuardedFuture<F> {
    type Output = Response;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        match self.project().state.project() {
            GuardedProjection::Direct { inner, note } => {
                let mut response = ready!(inner.poll(cx));
                if let Some(note) = note.take() {
                    note.stamp(&mut response);
                }
                Poll::Ready(response)
            }
            GuardedProjection::Boxed { future } => future.as_mut().poll(cx),
            GuardedProjection::Ready { response } => Poll::Ready(
                response
                    .take()
                    .expect("a guarded future is not polled after it completed"),
            ),
        }
    }
}

/// The checks that wait for something, then the handler.
async fn guard_slowly<F, C>(
    route: &'static RouteInfo,
    rate: Rate,
    request: Request,
    too_large: bool,
    call: C,
) -> Response
where
    C: FnOnce(Request) -> F,
    F: Future<Output = Response> + Send + 'static,
{
    let security = crate::context::security();
    let note = match rate {
        Rate::Decided(note) => note,
        Rate::Waiting(AskStore {
            security,
            policy,
            counted,
        }) => match security
            .rate_limits()
            .check(counted.key(route), policy.limit)
            .await
        {
            Err(error) => return ApiError::from(error).into_response(),
            Ok(decision) if !decision.allowed => return refusal(policy, &decision),
            Ok(decision) => Some(RateNote { policy, decision }),
        },
    };
    let mut response = match admit(security.as_deref(), route, request, too_large).await {
        Err(error) => error.into_response(),
        Ok(request) => match security.as_deref() {
            Some(security) if idempotency::wanted(&route.config, &request) => {
                let peer = crate::context::with_current(|context| context.and_then(|c| c.peer));
                idempotency::answer_once(security, peer, route, request, call).await
            }
            _ => within(route.config.max_duration, call(request)).await,
        },
    };
    if let Some(note) = note {
        note.stamp(&mut response);
    }
    response
}

/// `request` with its body cut off at `limit` bytes as they arrive (a chunked body declares no
/// length to check beforehand).
fn bounded(request: Request, limit: usize) -> Request {
    request.map(|body| Body::new(http_body_util::Limited::new(body, limit)))
}

/// `answer`, or 504 `timeout` once `max` has passed without it.
pub(super) async fn within(
    max: Option<Duration>,
    answer: impl Future<Output = Response>,
) -> Response {
    match max {
        None => answer.await,
        Some(max) => tokio::time::timeout(max, answer)
            .await
            .unwrap_or_else(|_elapsed| ApiError::timeout().into_response()),
    }
}

/// A handler behind its route's guard: what the generated router mounts for each method.
#[derive(Clone, Debug)]
pub struct Guarded<H> {
    /// `None` when the guard runs as a layer around the whole route instead.
    guard: Option<RouteGuard>,
    handler: H,
}

impl<H> Guarded<H> {
    /// `handler` of `route`, guarded here unless the route is guarded as a whole.
    pub fn new(route: &'static RouteInfo, handler: H) -> Self {
        Self {
            guard: route.guards_each_handler().then(|| RouteGuard::new(route)),
            handler,
        }
    }
}

impl<H, T, S> Handler<T, S> for Guarded<H>
where
    H: Handler<T, S>,
    S: Send + 'static,
{
    type Future = GuardedFuture<H::Future>;

    fn call(self, request: Request, state: S) -> Self::Future {
        let Guarded { guard, handler } = self;
        match guard {
            Some(guard) => guard.run(request, move |request| handler.call(request, state)),
            None => GuardedFuture::direct(handler.call(request, state), None),
        }
    }
}

/// The guard as a layer around a whole method router, for the routes
/// [`RouteInfo::guards_each_handler`] rules out. [`crate::routing::RouteMethods`] applies it.
#[derive(Clone, Debug)]
pub struct RouteLayer {
    guard: RouteGuard,
}

impl RouteLayer {
    /// The layer for `route`.
    pub fn new(route: &'static RouteInfo) -> Self {
        Self {
            guard: RouteGuard::new(route),
        }
    }
}

impl<S> Layer<S> for RouteLayer {
    type Service = RouteService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RouteService {
            inner,
            guard: self.guard.clone(),
        }
    }
}

/// The service [`RouteLayer`] produces.
#[derive(Clone, Debug)]
pub struct RouteService<S> {
    inner: S,
    guard: RouteGuard,
}

impl<S> Service<Request> for RouteService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // Take the service that was driven to readiness and leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let guarded = self.guard.run(request, move |request| async move {
            match inner.call(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        });
        Box::pin(async move { Ok(guarded.await) })
    }
}

/// The 429 for a refused `decision`.
fn refusal(policy: &RatePolicy, decision: &Decision) -> Response {
    let retry_after = rate_limit::whole_seconds_up(decision.retry_after).max(1);
    let mut refused = ApiError::rate_limited(retry_after).into_response();
    rate_limit::set_headers(refused.headers_mut(), policy, decision);
    refused
}

/// Who a request is counted as: the user id for signed-in callers (unless the route counts per
/// IP), else the client IP. Owned, so a shared store can be awaited with it.
enum Counted {
    Ip(std::net::IpAddr),
    User(Arc<str>),
}

impl Counted {
    fn of(
        route: &RouteInfo,
        request: &Request,
        security: &Security,
        context: &RequestContext,
    ) -> Self {
        let user = (route.config.rate_limit_by_user && context.presented_credentials)
            .then(|| request.extensions().get::<Identity>())
            .flatten();
        match user {
            Some(identity) => Counted::User(identity.user_id.clone()),
            None => Counted::Ip(rate_limit::counted_address(rate_limit::request_client_ip(
                context.peer,
                request.extensions(),
                request.headers(),
                Some(security),
            ))),
        }
    }

    fn key<'a>(&'a self, route: &'a RouteInfo) -> RateKey<'a> {
        RateKey {
            route: route.pattern,
            subject: match self {
                Counted::Ip(ip) => Subject::Ip(*ip),
                Counted::User(id) => Subject::User(id),
            },
        }
    }
}

/// The bit of `method` in a set of methods.
fn bit(method: Method) -> u8 {
    1 << method as u8
}

/// Whether a request with `method` must pass the CSRF check on `route`: an unsafe method the
/// route exports (and has not opted out for). A method it does not export changes nothing and
/// is answered 405, whatever its provenance.
fn needs_csrf(route: &RouteInfo, method: &axum::http::Method) -> bool {
    route.config.csrf && csrf::is_unsafe(method) && route.exports(method)
}

/// The CSRF and body-size checks; hands back the request (its body re-assembled when a form
/// field had to be read for the token).
async fn admit(
    security: Option<&Security>,
    route: &RouteInfo,
    request: Request,
    too_large: bool,
) -> Result<Request, ApiError> {
    let request = match security {
        Some(security) if needs_csrf(route, request.method()) => {
            check_csrf(security, request, too_large).await?
        }
        _ => request,
    };
    if too_large {
        return Err(ApiError::payload_too_large());
    }
    Ok(request)
}

/// The token half of the CSRF check: the request's provenance was checked before the rate
/// limit counted it ([`RouteGuard::check_then_call`]).
async fn check_csrf(
    security: &Security,
    request: Request,
    too_large: bool,
) -> Result<Request, ApiError> {
    if !request.headers().contains_key(header::COOKIE) {
        return Ok(request);
    }
    let cookie =
        csrf::cookie_value(request.headers()).ok_or_else(|| csrf::rejected("no csrf cookie"))?;
    let (parts, body) = request.into_parts();
    if let Some(token) = csrf::token_from_parts(&parts) {
        return if security.csrf().verify(&token, &cookie) {
            Ok(Request::from_parts(parts, body))
        } else {
            Err(csrf::rejected("token does not match the cookie"))
        };
    }
    let boundary = csrf::multipart_boundary(&parts.headers);
    if boundary.is_none() && !csrf::is_urlencoded_form(&parts.headers) {
        return Err(csrf::rejected("no token"));
    }
    if too_large {
        return Err(ApiError::payload_too_large());
    }
    // The token can only be in the form body: read it as far as the field (within the route's
    // limit, already applied to the body, and the search's own) and hand it on whole.
    let (token, body) = match boundary {
        Some(boundary) => csrf::multipart_token(body, boundary).await,
        None => csrf::urlencoded_token(body).await,
    }
    .map_err(ApiError::from)?;
    match token {
        Some(token) if security.csrf().verify(&token, &cookie) => {
            Ok(Request::from_parts(parts, body))
        }
        _ => {
            // The body given back replays what the search kept (at most the limit and the
            // frame that passed it) before the unread rest: up to the limit more of that.
            csrf::discard_some(body, 2 * csrf::TOKEN_SEARCH_LIMIT).await;
            Err(csrf::rejected("no valid form token"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_segments_say_what_they_match() {
        let kinds: Vec<PatternSegment> = "/a/{x}/b/{*rest}"
            .trim_start_matches('/')
            .split('/')
            .map(PatternSegment::of)
            .collect();
        use PatternSegment::{CatchAll, Param, Static};
        assert_eq!(kinds, [Static, Param, Static, CatchAll]);
    }

    #[test]
    fn dot_segments_are_found_plain_escaped_and_behind_an_escaped_slash() {
        for dotted in [
            "..",
            ".",
            "%2E%2E",
            "%2e",
            ".%2E",
            "..%2Fetc",
            "a%2F..%2Fb",
            "%2F.",
            // A backslash is a separator to URL parsers and Windows paths.
            "..%5Cadmin",
            "a%5C..",
            // Decoded twice: by axum, then by whatever reads the value as a URL.
            "%252e%252e",
            "%252E.",
            "a%252F..",
            // A `;` parameter, as Java servers read one.
            "..;x",
            "%2E%2E;jsessionid=1",
            // Still changing after three decodings.
            "%25252525252e",
        ] {
            assert!(holds_a_dot_segment(dotted), "{dotted}");
        }
        for plain in [
            "a.b",
            "..a",
            "...",
            ".well-known",
            "%2E%2E%2E",
            "a%2Fb",
            "",
            "a;b",
            "a%5Cb",
            "100%25",
        ] {
            assert!(!holds_a_dot_segment(plain), "{plain}");
        }
    }

    #[test]
    fn only_paths_with_an_empty_segment_or_a_dot_are_looked_at_closely() {
        for plain in [
            "/api/hello",
            "/api/posts/7",
            "/api/tools/x/use",
            // A hex id holds `2e` as often as not: only `%2e` can decode to a dot.
            "/api/posts/a2e42e2E",
            "/",
        ] {
            assert!(!may_hold_an_unservable_param(plain.as_bytes()), "{plain}");
        }
        for suspect in [
            "/a//b",
            "//",
            "/a/../b",
            "/a/%2E%2E",
            "/a/%2e",
            "/a/%252e",
            "/a/b.txt",
        ] {
            assert!(
                may_hold_an_unservable_param(suspect.as_bytes()),
                "{suspect}"
            );
        }
    }
}
