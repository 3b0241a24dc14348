//! The security settings and stores of the app serving the request, as an extractor: what a
//! login, a logout or a CSRF-token route works with, always the same instance the front layer and
//! the route guards check requests against.

use std::{ops::Deref, sync::Arc};

use axum::{extract::FromRequestParts, http::request::Parts};

use super::Security;
use crate::ApiError;

/// The [`Security`] the serving [`App`](crate::App) enforces — its sessions, JWT keys, CSRF keys
/// and settings.
///
/// A route that starts a session or issues a token must use the very instance that checks them
/// later; a second `Security` (made for the app's state while `App::from_env` makes its own)
/// has its own random JWT secret and its own in-memory sessions, and every credential it hands
/// out is refused. Taking it from the request rules that out: no copy to keep in step.
///
/// ```
/// use waypost::{axum::response::Response, response, security::AppSecurity, ApiError};
///
/// // POST /api/auth/login, once the password checked out for `user_id`:
/// async fn signed_in(security: AppSecurity, user_id: &str) -> Result<Response, ApiError> {
///     let cookie = security.start_session(user_id, None).await?;
///     let token = security.jwt().issue(user_id)?;
///     let mut answer = response::json(
///         waypost::axum::http::StatusCode::OK,
///         serde_json::json!({ "token": token }),
///     );
///     response::set_cookie(&mut answer, &cookie);
///     Ok(answer)
/// }
/// # let _ = signed_in;
/// ```
///
/// # Rejection
/// 500 `internal_error` (logged) when the router is served without Waypost's front layer, where
/// there is no security to hand out.
#[derive(Clone, Debug)]
pub struct AppSecurity(pub Arc<Security>);

impl Deref for AppSecurity {
    type Target = Security;

    fn deref(&self) -> &Security {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AppSecurity {
    type Rejection = ApiError;

    async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        crate::context::security().map(Self).ok_or_else(|| {
            ApiError::internal(
                "AppSecurity asked for outside an app with security: serve the router with \
                 waypost::App (or FrontLayer::with_security)",
            )
        })
    }
}
