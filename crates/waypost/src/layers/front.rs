//! The app-wide front layer: what every request and response passes through, in one service.
//!
//! In order: client headers in the internal `x-waypost-*` namespace are dropped (the lesson of
//! Next.js CVE-2025-29927: a client must never impersonate the framework), the path's
//! percent-encoded letters and digits are decoded (see `path_normalization`), the request id is
//! settled, the body is held to its pace (see [`crate::body_pace`]), a header section past the
//! limit is answered 431, the security gate runs (CORS preflight, credentials, see
//! [`crate::security`]), a panic becomes a 500 without its message, an error that some inner layer rendered as plain text is re-rendered
//! as the one JSON shape, and the response gets `X-Request-Id` and
//! `X-Content-Type-Options: nosniff`. One service instead of seven, with a named future
//! ([`FrontFuture`]), keeps the hot path free of boxing; only a session lookup takes a boxed
//! detour.

use std::{
    convert::Infallible,
    future::Future,
    net::{IpAddr, SocketAddr},
    panic::{catch_unwind, AssertUnwindSafe},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    extract::Request,
    http::{header, HeaderName, HeaderValue, Method},
    response::{IntoResponse, Response},
};
use http_body::Body as _;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::path_normalization;
use crate::{
    body_pace::{BodyPace, MinBodyRate, PacedBody},
    context::{self, ConnectionShared, RequestContext},
    error::{self, ApiError, RenderedError},
    request_id::{RequestId, REQUEST_ID_HEADER},
    security::{
        layer::{self as gate, Gate, GateHeaders},
        Security,
    },
    shutdown::Shutdown,
};

/// The prefix of headers only the framework may set.
pub const INTERNAL_HEADER_PREFIX: &str = "x-waypost-";

/// Wraps an app in the front service. [`crate::App`] applies it; apply it yourself only when
/// serving the router some other way.
#[derive(Clone, Debug)]
pub struct FrontLayer {
    body_pace: BodyPace,
    max_header_bytes: Option<usize>,
    security: Option<Arc<Security>>,
    shutdown: Shutdown,
}

impl FrontLayer {
    /// A front layer whose request bodies must keep arriving: a handler waits at most
    /// `body_read_timeout` for the next chunk.
    pub fn new(body_read_timeout: Option<Duration>) -> Self {
        Self {
            body_pace: BodyPace {
                max_pause: body_read_timeout,
                min_rate: None,
            },
            max_header_bytes: None,
            security: None,
            shutdown: Shutdown::default(),
        }
    }

    /// Holds request bodies to an average rate of at least `rate` once its grace period is
    /// over (see [`crate::body_pace`]); 408 `timeout` for one that falls behind.
    pub fn with_min_body_rate(mut self, rate: MinBodyRate) -> Self {
        self.body_pace.min_rate = Some(rate);
        self
    }

    /// Answers 431 — in the one error shape, with the request id — to a request whose header
    /// section (request line included) is larger than `limit` bytes. The server's read buffer
    /// stays larger, so such requests reach this layer; past the buffer hyper answers a bare
    /// 431 itself.
    pub fn with_max_header_bytes(mut self, limit: usize) -> Self {
        self.max_header_bytes = Some(limit);
        self
    }

    /// Runs the security gate of `security` around every request, and makes it the security
    /// the per-route layers enforce.
    pub fn with_security(mut self, security: Arc<Security>) -> Self {
        self.security = Some(security);
        self
    }

    /// The stop handlers learn of through [`Shutdown`] (with the security settings: an app
    /// served without them never hears of it).
    pub(crate) fn with_shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }
}

impl<S> Layer<S> for FrontLayer {
    type Service = Front<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Front {
            inner,
            body_pace: self.body_pace,
            max_header_bytes: self.max_header_bytes,
            connection: self.security.clone().map(|security| {
                Arc::new(ConnectionShared {
                    security,
                    shutdown: self.shutdown.clone(),
                })
            }),
            peer: None,
        }
    }
}

/// The service [`FrontLayer`] produces.
#[derive(Clone, Debug)]
pub struct Front<S> {
    inner: S,
    body_pace: BodyPace,
    max_header_bytes: Option<usize>,
    connection: Option<Arc<ConnectionShared>>,
    /// The connection's peer (see [`Front::for_connection`]).
    peer: Option<IpAddr>,
}

impl<S: Clone> Front<S> {
    /// A copy for one connection, from `peer`, to call: the same app and settings, with a
    /// reference count of its own for what its requests share, so the count each request takes
    /// stays on the core serving the connection, and the peer's address at hand for the rate
    /// limiter without a look through each request's extensions.
    pub fn for_connection(&self, peer: SocketAddr) -> Self {
        Self {
            connection: self.connection.as_ref().map(|shared| {
                Arc::new(ConnectionShared {
                    security: shared.security.clone(),
                    shutdown: shared.shutdown.clone(),
                })
            }),
            peer: Some(peer.ip()),
            ..self.clone()
        }
    }
}

impl<S> Service<Request> for Front<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = FrontFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let head = HeadScan::of(&request);
        if head.has_internal {
            strip_internal_headers(request.headers_mut());
        }
        let id = head.request_id;
        if self.body_pace.is_set() && !request.body().is_end_stream() {
            let pace = self.body_pace;
            request = request.map(|body| Body::new(PacedBody::new(body, pace)));
        }
        let span = tracing::debug_span!(
            "request",
            request_id = %id.as_str(),
            method = %request.method(),
            path = %request.uri().path(),
        );
        // After the span, which logs the path as sent; axum keeps an `OriginalUri` it finds.
        if let Some(uri) = path_normalization::decode_unreserved(request.uri()) {
            let sent = std::mem::replace(request.uri_mut(), uri);
            request
                .extensions_mut()
                .insert(axum::extract::OriginalUri(sent));
        }
        let mut finishing = Finishing {
            is_head: request.method() == Method::HEAD,
            passed: None,
            // Only the debug log reads it: skip the clock otherwise.
            started: tracing::enabled!(tracing::Level::DEBUG).then(Instant::now),
        };
        let mut context = Some(RequestContext {
            id,
            connection: self.connection.clone(),
            peer: self.peer,
            presented_credentials: false,
            max_fields: std::cell::Cell::new(crate::DEFAULT_MAX_FIELDS),
        });
        let too_large = self.max_header_bytes.is_some_and(|limit| head.size > limit);
        // RFC 9112 §3.2: an HTTP/1.1 request without `Host`, and any with two or with one that
        // is not an authority, must be refused (hyper lets them in).
        let bad_host = match head.host {
            HostField::Valid => false,
            HostField::Missing => request.version() == axum::http::Version::HTTP_11,
            HostField::Invalid => true,
        };
        let gate = match &self.connection {
            // Rendered in the request's context, so the body carries the request id.
            _ if too_large => Gate::Answer(context::enter(context.as_ref(), || {
                ApiError::header_fields_too_large().into_response()
            })),
            _ if bad_host => Gate::Answer(context::enter(context.as_ref(), || {
                ApiError::bad_request("Host must be one header naming a host and optional port.")
                    .into_response()
            })),
            None => Gate::Pass(None),
            Some(shared) => gate::admit(&shared.security, &mut request, head.gate_headers),
        };
        if let (Some(context), Gate::Pass(Some(passed)) | Gate::LookUpSession { passed, .. }) =
            (&mut context, &gate)
        {
            context.presented_credentials = passed.presented;
        }
        let stage = match gate {
            Gate::Answer(response) => Stage::answered(response),
            Gate::Refuse(error) => {
                Stage::answered(context::enter(context.as_ref(), || error.into_response()))
            }
            Gate::Pass(passed) => {
                finishing.passed = passed;
                // The router is called right here, in the request's context: routing and the
                // route's guard run now, and the future keeps no copy of the request.
                let _entered = span.enter();
                context::enter(context.as_ref(), || {
                    match catch_unwind(AssertUnwindSafe(|| self.inner.call(request))) {
                        Ok(future) => Stage::Running { future },
                        Err(panic) => Stage::answered(panicked(&panic)),
                    }
                })
            }
            Gate::LookUpSession { session, passed } => {
                finishing.passed = Some(passed);
                let security = self
                    .connection
                    .as_ref()
                    .expect("the gate ran")
                    .security
                    .clone();
                // Take the service that was driven to readiness and leave a fresh clone behind.
                let clone = self.inner.clone();
                let mut service = std::mem::replace(&mut self.inner, clone);
                Stage::Waiting {
                    future: Box::pin(async move {
                        if let Err(answer) =
                            gate::resolve_session(&security, &mut request, session).await
                        {
                            return answer;
                        }
                        match service.call(request).await {
                            Ok(response) => response,
                            Err(never) => match never {},
                        }
                    }),
                }
            }
        };
        FrontFuture {
            context,
            span,
            finishing,
            stage,
        }
    }
}

pin_project! {
    /// The future of [`Front`]: the app's future, polled in the request's context and span,
    /// with panics caught and the answer finished — without boxing, on the hot path of every
    /// request.
    pub struct FrontFuture<F> {
        context: Option<RequestContext>,
        span: tracing::Span,
        finishing: Finishing,
        #[pin]
        stage: Stage<F>,
    }
}

pin_project! {
    /// Where the request is.
    #[project = StageProjection]
    enum Stage<F> {
        // The app is working on it.
        Running { #[pin] future: F },
        // The session store is asked first, then the app (rarer: boxed).
        Waiting { future: Pin<Box<dyn Future<Output = Response> + Send>> },
        // Answered before the app (a preflight, a panic as the app was called).
        Answered { answer: Option<Response> },
        // Done.
        Finished,
    }
}

impl<F> Stage<F> {
    fn answered(answer: Response) -> Self {
        Stage::Answered {
            answer: Some(answer),
        }
    }
}

/// What the answer still needs once the app gave it.
struct Finishing {
    is_head: bool,
    /// What the security gate noted (`None` when the app runs without one, or it answered).
    passed: Option<gate::Passed>,
    started: Option<Instant>,
}

impl<F> Future for FrontFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let mut stage = this.stage;
        let finishing = this.finishing;
        context::enter(this.context.as_ref(), || {
            // A handler can panic as it is polled: the panic ends here, as a 500.
            let polled = catch_unwind(AssertUnwindSafe(|| match stage.as_mut().project() {
                StageProjection::Running { future } => future.poll(cx).map(|result| match result {
                    Ok(response) => response,
                    Err(never) => match never {},
                }),
                StageProjection::Waiting { future } => future.as_mut().poll(cx),
                StageProjection::Answered { answer } => {
                    Poll::Ready(answer.take().expect("answered once"))
                }
                StageProjection::Finished => {
                    panic!("the front future was polled after it completed")
                }
            }));
            let response = match polled {
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(response)) => response,
                Err(panic) => panicked(&panic),
            };
            stage.set(Stage::Finished);
            Poll::Ready(Ok(finishing.finish(response)))
        })
    }
}

/// The 500 for a panic, whose message is logged and never sent.
fn panicked(panic: &Box<dyn std::any::Any + Send>) -> Response {
    let message = panic_message(panic);
    tracing::error!(request_id = %context::request_id(), panic = %message, "handler panicked");
    ApiError::new(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "Something went wrong on our side.",
    )
    .into_response()
}

impl Finishing {
    /// The last touches every answer gets: the gate's headers, errors in the one JSON shape,
    /// `X-Request-Id` and `nosniff`, no body for HEAD.
    fn finish(&mut self, mut response: Response) -> Response {
        // One look at the context for both the gate's headers and the id.
        let id = context::with_current(|context| {
            let connection = context.and_then(|context| context.connection.as_ref());
            if let (Some(passed), Some(connection)) = (&self.passed, connection) {
                gate::finish(&connection.security, passed, &mut response);
            }
            context.map_or(RequestId::NONE, |context| context.id)
        });
        if response.status().is_client_error() || response.status().is_server_error() {
            response = render_foreign_error(response);
        }
        finish_headers(&mut response, &id);
        if self.is_head {
            *response.body_mut() = Body::empty();
        }
        if let Some(started) = self.started {
            tracing::debug!(
                status = response.status().as_u16(),
                elapsed_us = started.elapsed().as_micros() as u64,
                "request finished"
            );
        }
        response
    }
}

/// What the front layer needs from the request's head, gathered in one pass over its headers
/// rather than a hashed lookup per name (a custom name such as `x-request-id` is hashed byte by
/// byte on every lookup).
struct HeadScan {
    /// The size of the head as it came in: the request line and every header line.
    size: usize,
    /// Whether any header is in the internal `x-waypost-*` namespace.
    has_internal: bool,
    /// The client's own id when it sent a sane one, else a fresh one.
    request_id: RequestId,
    /// Which of the headers the security gate reads are present.
    gate_headers: GateHeaders,
    /// What the `Host` header says.
    host: HostField,
}

/// The request's `Host` header, as RFC 9112 §3.2 judges it.
#[derive(Clone, Copy)]
enum HostField {
    Missing,
    Valid,
    /// Two or more of them, or one that is not an authority.
    Invalid,
}

/// Whether `value` is a `Host` header's value: an RFC 3986 host (a name, an IPv4 address or a
/// bracketed IPv6 literal; empty is allowed) and an optional port of at most 65535.
fn is_valid_host(value: &[u8]) -> bool {
    // The usual value — a name or IPv4 address, maybe a port — in one pass, a table load per
    // byte; anything else (an escape, an IPv6 literal, a bad byte) is looked at whole.
    let name_end = value
        .iter()
        .position(|&byte| !REG_NAME[usize::from(byte)])
        .unwrap_or(value.len());
    match value.get(name_end) {
        None => true,
        Some(b':') if is_valid_port(&value[name_end + 1..]) => true,
        _ => is_valid_host_in_full(value),
    }
}

/// [`is_valid_host`] for the values its one pass leaves: split at the port's colon (one
/// inside brackets belongs to the IPv6 literal), then each side checked.
fn is_valid_host_in_full(value: &[u8]) -> bool {
    let (host, port) = match value.iter().rposition(|&byte| byte == b':') {
        Some(colon) if !value[colon..].contains(&b']') => (&value[..colon], &value[colon + 1..]),
        _ => (value, &value[value.len()..]),
    };
    let host_is_valid = match host.strip_prefix(b"[") {
        Some(literal) => literal.strip_suffix(b"]").is_some_and(is_ip_literal),
        None => is_reg_name(host),
    };
    is_valid_port(port) && host_is_valid
}

/// A port: digits (none at all is allowed), at most 65535.
fn is_valid_port(port: &[u8]) -> bool {
    port.iter()
        .try_fold(0u32, |number, &digit| {
            (digit.is_ascii_digit() && number <= 65535)
                .then(|| number * 10 + u32::from(digit - b'0'))
        })
        .is_some_and(|number| number <= 65535)
}

/// An RFC 3986 reg-name (which covers IPv4 addresses): unreserved and sub-delims characters,
/// and `%` only as the start of a `%HH` escape.
fn is_reg_name(host: &[u8]) -> bool {
    let mut at = 0;
    while at < host.len() {
        if host[at] == b'%' {
            if path_normalization::percent_escape(&host[at..]).is_none() {
                return false;
            }
            at += 3;
        } else if REG_NAME[usize::from(host[at])] {
            at += 1;
        } else {
            return false;
        }
    }
    true
}

/// What may stand between the brackets: an IPv6 address, with an RFC 6874 zone (`%25eth0`)
/// or without, or an IPvFuture (`v1.anything`).
fn is_ip_literal(inner: &[u8]) -> bool {
    if let Some(future) = inner
        .strip_prefix(b"v")
        .or_else(|| inner.strip_prefix(b"V"))
    {
        let Some(dot) = future.iter().position(|&byte| byte == b'.') else {
            return false;
        };
        let (version, rest) = (&future[..dot], &future[dot + 1..]);
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !rest.is_empty()
            && rest
                .iter()
                .all(|&byte| byte == b':' || (byte != b'%' && REG_NAME[usize::from(byte)]));
    }
    let (address, zone) = match inner.windows(3).position(|window| window == b"%25") {
        Some(at) => (&inner[..at], Some(&inner[at + 3..])),
        None => (inner, None),
    };
    zone.is_none_or(|zone| !zone.is_empty() && is_reg_name(zone))
        && std::str::from_utf8(address).is_ok_and(|text| text.parse::<std::net::Ipv6Addr>().is_ok())
}

/// The single bytes of an RFC 3986 reg-name: unreserved and sub-delims characters (`%` starts
/// an escape, checked apart).
const REG_NAME: [bool; 256] = byte_set(b"-._~!$&'()*+,;=");

/// ASCII letters and digits, and `extra`, as a table indexed by byte (one load per byte on the
/// path every request takes).
const fn byte_set(extra: &[u8]) -> [bool; 256] {
    let mut set = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        set[byte] = (byte as u8).is_ascii_alphanumeric();
        byte += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        set[extra[i] as usize] = true;
        i += 1;
    }
    set
}

impl HeadScan {
    fn of(request: &Request) -> Self {
        let mut size = request.method().as_str().len()
            + request
                .uri()
                .path_and_query()
                .map_or(1, |path| path.as_str().len())
            + " HTTP/1.1\r\n ".len();
        let mut has_internal = false;
        let mut client_id = None;
        let mut gate_headers = GateHeaders::default();
        let mut host = HostField::Missing;
        for (name, value) in request.headers() {
            let text = name.as_str();
            size += text.len() + value.len() + ": \r\n".len();
            if text.starts_with(INTERNAL_HEADER_PREFIX) {
                has_internal = true;
            } else if client_id.is_none() && name == REQUEST_ID {
                // The first value counts, as `HeaderMap::get` would have it.
                client_id = Some(value);
            } else if name == header::HOST {
                // RFC 9112 §3.2: one Host, whose value is an authority (no path, no spaces).
                host = match host {
                    HostField::Missing if is_valid_host(value.as_bytes()) => HostField::Valid,
                    _ => HostField::Invalid,
                };
            } else {
                gate_headers.note(name);
            }
        }
        Self {
            size,
            has_internal,
            request_id: RequestId::from_header(client_id),
            gate_headers,
            host,
        }
    }
}

fn strip_internal_headers(headers: &mut axum::http::HeaderMap) {
    let internal: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with(INTERNAL_HEADER_PREFIX))
        .cloned()
        .collect();
    for name in internal {
        headers.remove(&name);
    }
}

fn finish_headers(response: &mut Response, id: &RequestId) {
    const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");
    let headers = response.headers_mut();
    headers.insert(REQUEST_ID, id.header_value());
    // `nosniff` is the only value there is: setting it over a handler's own changes nothing.
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
}

/// `X-Request-Id`, checked once at compile time.
const REQUEST_ID: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);

/// Turns an error response that was not rendered by [`ApiError`] (axum's own rejections, a
/// tower layer's plain-text answer, a bare status) into the one JSON shape. A handler that
/// deliberately answers JSON keeps its body.
fn render_foreign_error(response: Response) -> Response {
    if response.extensions().get::<RenderedError>().is_some() {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"));
    if is_json {
        return response;
    }
    let (parts, _body) = response.into_parts();
    let mut rendered = error::from_status(parts.status).into_response();
    if parts.headers.contains_key(header::WWW_AUTHENTICATE) {
        // The answer's own challenge, not the default one beside it.
        rendered.headers_mut().remove(header::WWW_AUTHENTICATE);
    }
    for (name, value) in &parts.headers {
        if !describes_the_body(name) {
            rendered.headers_mut().append(name.clone(), value.clone());
        }
    }
    rendered
}

/// Whether `name` describes the body it came with — its type, length, coding, range, language,
/// disposition or version — and so must not outlive that body's replacement (a gzipped plain
/// text error re-rendered as JSON must not still say `Content-Encoding: gzip`).
fn describes_the_body(name: &HeaderName) -> bool {
    [
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::CONTENT_ENCODING,
        header::CONTENT_RANGE,
        header::CONTENT_LANGUAGE,
        header::CONTENT_DISPOSITION,
        header::CONTENT_LOCATION,
        header::ETAG,
        header::LAST_MODIFIED,
    ]
    .contains(name)
}

/// The text of a panic's payload, for the log.
pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::is_valid_host;

    #[test]
    fn host_values_are_authorities() {
        for good in [
            "",
            "localhost",
            "127.0.0.1:3000",
            "a.example:65535",
            "a.example:",
            "xn--bcher-kva.example.",
            "caf%C3%A9.example",
            "[::1]",
            "[::1]:8080",
            "[2001:db8::1%25eth0]",
            "[v1.fe80::a+en1]",
        ] {
            assert!(is_valid_host(good.as_bytes()), "{good:?} is a host");
        }
        for bad in [
            "a b",
            "a.example/path",
            "user@a.example",
            "a.example:65536",
            "a.example:123456",
            "a.example:80x",
            "a%",
            "a%zz",
            "a%2",
            "[::1",
            "[]",
            "[zz]",
            "[hello]",
            "[::1%25]",
            "[v.x]",
            "[v1.]",
            "::1",
            "a\"b",
        ] {
            assert!(!is_valid_host(bad.as_bytes()), "{bad:?} is no host");
        }
    }
}
