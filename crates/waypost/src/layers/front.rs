//! The app-wide front layer: what every request and response passes through, in one service.
//!
//! In order: client headers in the internal `x-waypost-*` namespace are dropped (the lesson of
//! Next.js CVE-2025-29927: a client must never impersonate the framework), the request id is
//! settled, the body gets a read timeout, the security gate runs (CORS preflight, credentials,
//! see [`crate::security`]), a panic becomes a 500 without its message, an error that some inner
//! layer rendered as plain text is re-rendered as the one JSON shape, and the response gets
//! `X-Request-Id` and `X-Content-Type-Options: nosniff`. One service instead of seven keeps the
//! per-request cost at one boxed future.

use std::{
    convert::Infallible,
    future::Future,
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::Body,
    extract::Request,
    http::{header, HeaderName, HeaderValue, Method},
    response::{IntoResponse, Response},
};
use futures_util::FutureExt;
use http_body::Body as _;
use tower::{Layer, Service};
use tracing::Instrument;

use crate::{
    context::{self, RequestContext},
    error::{self, ApiError, RenderedError},
    request_id::{RequestId, REQUEST_ID_HEADER},
    security::{
        layer::{self as gate, Gate},
        Security,
    },
};

/// The prefix of headers only the framework may set.
pub const INTERNAL_HEADER_PREFIX: &str = "x-waypost-";

/// Wraps an app in the front service. [`crate::App`] applies it; apply it yourself only when
/// serving the router some other way.
#[derive(Clone, Debug)]
pub struct FrontLayer {
    body_read_timeout: Option<Duration>,
    security: Option<Arc<Security>>,
}

impl FrontLayer {
    /// A front layer whose request bodies must keep arriving: at most `body_read_timeout` may
    /// pass between two chunks.
    pub fn new(body_read_timeout: Option<Duration>) -> Self {
        Self {
            body_read_timeout,
            security: None,
        }
    }

    /// Runs the security gate of `security` around every request, and makes it the security
    /// the per-route layers enforce.
    pub fn with_security(mut self, security: Arc<Security>) -> Self {
        self.security = Some(security);
        self
    }
}

impl<S> Layer<S> for FrontLayer {
    type Service = Front<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Front {
            inner,
            body_read_timeout: self.body_read_timeout,
            security: self.security.clone(),
        }
    }
}

/// The service [`FrontLayer`] produces.
#[derive(Clone, Debug)]
pub struct Front<S> {
    inner: S,
    body_read_timeout: Option<Duration>,
    security: Option<Arc<Security>>,
}

impl<S> Service<Request> for Front<S>
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

    fn call(&mut self, mut request: Request) -> Self::Future {
        strip_internal_headers(request.headers_mut());
        let id = RequestId::from_header(request.headers().get(REQUEST_ID_HEADER));
        if let Some(timeout) = self.body_read_timeout {
            if !request.body().is_end_stream() {
                request = request
                    .map(|body| Body::new(tower_http::timeout::TimeoutBody::new(timeout, body)));
            }
        }
        let is_head = request.method() == Method::HEAD;
        let span = tracing::debug_span!(
            "request",
            request_id = %id.as_str(),
            method = %request.method(),
            path = %request.uri().path(),
        );
        let security = self.security.clone();
        // Take the service that was driven to readiness and leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let context = RequestContext {
            id: id.clone(),
            security: security.clone(),
        };
        Box::pin(
            context::scope(context, async move {
                let started = std::time::Instant::now();
                let gate = match &security {
                    Some(security) => gate::admit(security, &mut request).await,
                    None => Gate::Pass {
                        origin: None,
                        presented: false,
                    },
                };
                let mut response = match gate {
                    Gate::Answer(response) => response,
                    Gate::Pass { origin, presented } => {
                        let outcome = AssertUnwindSafe(inner.call(request)).catch_unwind().await;
                        let mut response = match outcome {
                            Ok(Ok(response)) => response,
                            Ok(Err(never)) => match never {},
                            Err(panic) => {
                                let message = panic_message(&panic);
                                tracing::error!(request_id = %id.as_str(), panic = %message, "handler panicked");
                                ApiError::new(
                                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                                    "internal_error",
                                    "Something went wrong on our side.",
                                )
                                .into_response()
                            }
                        };
                        if let Some(security) = &security {
                            gate::finish(security, origin.as_ref(), presented, &mut response);
                        }
                        response
                    }
                };
                if response.status().is_client_error() || response.status().is_server_error() {
                    response = render_foreign_error(response);
                }
                finish_headers(&mut response, &id);
                if is_head {
                    *response.body_mut() = Body::empty();
                }
                tracing::debug!(
                    status = response.status().as_u16(),
                    elapsed_us = started.elapsed().as_micros() as u64,
                    "request finished"
                );
                Ok(response)
            })
            .instrument(span),
        )
    }
}

fn strip_internal_headers(headers: &mut axum::http::HeaderMap) {
    // Most requests carry none: look before allocating.
    if !headers
        .keys()
        .any(|name| name.as_str().starts_with(INTERNAL_HEADER_PREFIX))
    {
        return;
    }
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
    let headers = response.headers_mut();
    headers.insert(REQUEST_ID_HEADER, id.header_value().clone());
    headers
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
}

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
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rendered.headers_mut().append(name.clone(), value.clone());
        }
    }
    rendered
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
