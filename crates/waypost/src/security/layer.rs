//! The app-wide security layer: answers CORS preflights, resolves who is calling (session cookie
//! or bearer JWT), hands [`Security`] to the per-route layer, and marks responses to
//! authenticated requests `Cache-Control: no-store` so no shared cache keeps them.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{
    extract::Request,
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
};
use tower::{Layer, Service};

use super::{
    auth::{Credential, CredentialRejected, Identity},
    Security, SESSION_COOKIE,
};

/// Puts a [`Security`] in front of a router. [`crate::App`] applies it.
#[derive(Clone, Debug)]
pub struct SecurityLayer {
    security: Arc<Security>,
}

impl SecurityLayer {
    /// The layer for `security`.
    pub fn new(security: Arc<Security>) -> Self {
        Self { security }
    }
}

impl<S> Layer<S> for SecurityLayer {
    type Service = SecurityService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SecurityService {
            inner,
            security: self.security.clone(),
        }
    }
}

/// The service [`SecurityLayer`] produces.
#[derive(Clone, Debug)]
pub struct SecurityService<S> {
    inner: S,
    security: Arc<Security>,
}

fn bearer_token(request: &Request) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|token| !token.is_empty())
}

impl<S> Service<Request> for SecurityService<S>
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
        let security = self.security.clone();
        if let Some(preflight) = security
            .cors()
            .preflight(request.method(), request.headers())
        {
            return Box::pin(async move { Ok(preflight) });
        }
        let origin = security
            .cors()
            .is_enabled()
            .then(|| request.headers().get(header::ORIGIN).cloned())
            .flatten();
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let mut presented = false;
            if let Some(token) = bearer_token(&request) {
                presented = true;
                match security.jwt().verify(token) {
                    Ok(claims) => {
                        request.extensions_mut().insert(Identity {
                            user_id: claims.sub.into(),
                            credential: Credential::Bearer,
                        });
                    }
                    Err(_) => {
                        request.extensions_mut().insert(CredentialRejected);
                    }
                }
            } else if let Some(session) = super::request_cookie(request.headers(), SESSION_COOKIE) {
                presented = true;
                match security.session_user(&session).await {
                    Ok(Some(user_id)) => {
                        request.extensions_mut().insert(Identity {
                            user_id: user_id.into(),
                            credential: Credential::Session(session.into()),
                        });
                    }
                    Ok(None) => {
                        request.extensions_mut().insert(CredentialRejected);
                    }
                    Err(error) => return Ok(error.into_response()),
                }
            }
            request.extensions_mut().insert(security.clone());
            let mut response = inner.call(request).await?;
            if presented {
                response
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
            security.cors().decorate(origin.as_ref(), &mut response);
            Ok(response)
        })
    }
}
