//! The per-route layer: what a route's [`RouteConfig`](crate::RouteConfig) asks for, enforced
//! before the handler runs, in this order — the rate limit (429 with `Retry-After`), the CSRF
//! check on unsafe methods (403 `csrf_invalid`), the body limit, declared and streamed (413),
//! and the max duration (504).

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use axum::{
    body::Body,
    extract::Request,
    http::header,
    response::{IntoResponse, Response},
};
use http_body::Body as _;
use http_body_util::BodyExt;
use tower::{Layer, Service};

use crate::{
    routing::RouteInfo,
    security::{csrf, rate_limit, Identity, Security},
    store::{Decision, RateKey, Subject},
    ApiError, RateLimit, RateLimitSetting, RouteConfig,
};

/// Enforces one route's settings. [`crate::routing::mount`] applies it.
#[derive(Clone, Copy, Debug)]
pub struct RouteLayer {
    route: &'static RouteInfo,
}

impl RouteLayer {
    /// The layer for `route`.
    pub fn new(route: &'static RouteInfo) -> Self {
        Self { route }
    }
}

impl<S> Layer<S> for RouteLayer {
    type Service = RouteService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RouteService {
            inner,
            route: self.route,
        }
    }
}

/// The service [`RouteLayer`] produces.
#[derive(Clone, Debug)]
pub struct RouteService<S> {
    inner: S,
    route: &'static RouteInfo,
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

    fn call(&mut self, mut request: Request) -> Self::Future {
        let route = self.route;
        let limit = route.config.body_limit;
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let too_large = declared.is_some_and(|length| length > limit as u64);
        if !too_large && !request.body().is_end_stream() {
            // Streamed (chunked) bodies are cut off at the limit as they arrive.
            request = request.map(|body| Body::new(http_body_util::Limited::new(body, limit)));
        }
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let security = crate::context::security();
            let mut rate = None;
            if let Some(security) = &security {
                if let Some(limit) = effective_limit(security, &route.config) {
                    let counted = Counted::of(route, &request);
                    match check_rate_limit(security, limit, counted.key(route)).await {
                        Ok(decision) => rate = Some((limit, decision)),
                        Err(refused) => return Ok(refused),
                    }
                }
            }
            let mut response =
                match admit(security.as_deref(), &route.config, request, too_large).await {
                    Err(error) => error.into_response(),
                    Ok(request) => match route.config.max_duration {
                        None => inner.call(request).await?,
                        Some(max) => match tokio::time::timeout(max, inner.call(request)).await {
                            Ok(result) => result?,
                            Err(_elapsed) => ApiError::timeout().into_response(),
                        },
                    },
                };
            if let Some((limit, decision)) = rate {
                rate_limit::set_headers(response.headers_mut(), limit, &decision);
            }
            Ok(response)
        })
    }
}

/// The limit in force on `config`'s route.
fn effective_limit(security: &Security, config: &RouteConfig) -> Option<RateLimit> {
    match config.rate_limit {
        RateLimitSetting::Default => security.settings().default_rate_limit,
        RateLimitSetting::Custom(limit) => Some(limit),
        RateLimitSetting::Disabled => None,
    }
}

/// Who a request is counted as: the user id for signed-in callers (unless the route counts per
/// IP), else the client IP. Owned, so a shared store can be awaited with it.
enum Counted {
    Ip(std::net::IpAddr),
    User(std::sync::Arc<str>),
}

impl Counted {
    fn of(route: &RouteInfo, request: &Request) -> Self {
        let user = route
            .config
            .rate_limit_by_user
            .then(|| request.extensions().get::<Identity>())
            .flatten();
        match user {
            Some(identity) => Counted::User(identity.user_id.clone()),
            None => Counted::Ip(rate_limit::request_client_ip(
                request.extensions(),
                request.headers(),
            )),
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

/// Counts the request; `Err` is the 429 to send.
async fn check_rate_limit(
    security: &Security,
    limit: RateLimit,
    key: RateKey<'_>,
) -> Result<Decision, Response> {
    let store = security.rate_limits();
    let decision = match store.check_inline(key, limit) {
        Some(decision) => decision,
        None => store
            .check(key, limit)
            .await
            .map_err(|error| ApiError::from(error).into_response())?,
    };
    if decision.allowed {
        return Ok(decision);
    }
    let retry_after = decision.retry_after.as_secs_f64().ceil().max(1.0) as u64;
    let mut refused = ApiError::rate_limited(retry_after).into_response();
    rate_limit::set_headers(refused.headers_mut(), limit, &decision);
    Err(refused)
}

/// The CSRF and body-size checks; hands back the request (its body re-assembled when a form
/// field had to be read for the token).
async fn admit(
    security: Option<&Security>,
    config: &RouteConfig,
    request: Request,
    too_large: bool,
) -> Result<Request, ApiError> {
    let needs_csrf = config.csrf && csrf::is_unsafe(request.method());
    let request = match security {
        Some(security) if needs_csrf => check_csrf(security, request, too_large).await?,
        _ => request,
    };
    if too_large {
        return Err(ApiError::payload_too_large());
    }
    Ok(request)
}

async fn check_csrf(
    security: &Security,
    request: Request,
    too_large: bool,
) -> Result<Request, ApiError> {
    csrf::check_provenance(request.headers(), security.cors())?;
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
    if !csrf::is_urlencoded_form(&parts.headers) {
        return Err(csrf::rejected("no token"));
    }
    if too_large {
        return Err(ApiError::payload_too_large());
    }
    // The token can only be in the form body: read it (within the route's limit, already
    // applied to the body) and put it back for the handler.
    let bytes = body
        .collect()
        .await
        .map_err(|error| ApiError::from(axum::Error::new(error)))?
        .to_bytes();
    match csrf::form_field(&bytes, csrf::CSRF_FORM_FIELD) {
        Some(token) if security.csrf().verify(&token, &cookie) => {
            Ok(Request::from_parts(parts, Body::from(bytes)))
        }
        _ => Err(csrf::rejected("no valid form token")),
    }
}
