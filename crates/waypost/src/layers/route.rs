//! The per-route layer: what a route's [`RouteConfig`](crate::RouteConfig) asks for, enforced
//! before the handler runs — the body limit (declared and streamed) and the max duration.

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
use tower::{Layer, Service};

use crate::{routing::RouteInfo, ApiError};

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
        let config = &self.route.config;
        let limit = config.body_limit;
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit as u64) {
            return Box::pin(async { Ok(ApiError::payload_too_large().into_response()) });
        }
        if !request.body().is_end_stream() {
            // Streamed (chunked) bodies are cut off at the limit as they arrive.
            request =
                request.map(|body| Body::new(http_body_util::Limited::new(body, limit)));
        }
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        match config.max_duration {
            None => Box::pin(inner.call(request)),
            Some(max) => Box::pin(async move {
                match tokio::time::timeout(max, inner.call(request)).await {
                    Ok(result) => result,
                    Err(_elapsed) => Ok(ApiError::timeout().into_response()),
                }
            }),
        }
    }
}
