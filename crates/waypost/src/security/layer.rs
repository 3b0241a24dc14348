//! The app-wide security layer: answers CORS preflights, resolves who is calling (session cookie
//! or bearer JWT), hands [`Security`] to the per-route layer, and marks responses to
//! authenticated requests — and responses that set a cookie (a login's session, a CSRF secret) —
//! `Cache-Control: no-store`, so no shared cache keeps them or hands them to someone else. A
//! handler's own directives are kept (a stream's `no-cache` stays), `no-store` is added to them.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{
    extract::Request,
    http::{header, HeaderMap, HeaderValue},
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
            if presented || response.headers().contains_key(header::SET_COOKIE) {
                forbid_storing(response.headers_mut());
            }
            security.cors().decorate(origin.as_ref(), &mut response);
            Ok(response)
        })
    }
}

/// Adds `no-store` to the response's `Cache-Control`, keeping the directives already there.
fn forbid_storing(headers: &mut HeaderMap) {
    let current: Vec<&str> = headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|directive| !directive.is_empty())
        .collect();
    if current
        .iter()
        .any(|directive| directive.eq_ignore_ascii_case("no-store"))
    {
        return;
    }
    let merged = current
        .into_iter()
        .chain(["no-store"])
        .collect::<Vec<_>>()
        .join(", ");
    let value = HeaderValue::from_str(&merged).unwrap_or(HeaderValue::from_static("no-store"));
    headers.insert(header::CACHE_CONTROL, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(values: &[&'static str]) -> HeaderValue {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::CACHE_CONTROL, HeaderValue::from_static(value));
        }
        forbid_storing(&mut headers);
        assert_eq!(headers.get_all(header::CACHE_CONTROL).iter().count(), 1);
        headers[header::CACHE_CONTROL].clone()
    }

    #[test]
    fn no_store_is_added_to_a_handlers_own_directives() {
        assert_eq!(after(&[]), "no-store");
        assert_eq!(after(&["no-cache"]), "no-cache, no-store");
        assert_eq!(
            after(&["public, max-age=60"]),
            "public, max-age=60, no-store"
        );
        assert_eq!(after(&["private, no-store"]), "private, no-store");
        assert_eq!(after(&["private, No-Store"]), "private, No-Store");
        assert_eq!(
            after(&["private", "max-age=0"]),
            "private, max-age=0, no-store"
        );
    }
}
