//! Who is calling: the identity the security layer resolved from a session cookie or a bearer
//! token, and the `Auth<U>` / `MaybeAuth<U>` extractors that turn it into the app's user type.

use std::{future::Future, sync::Arc};

use axum::{extract::FromRequestParts, http::request::Parts};

use crate::ApiError;

/// How the caller proved who they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// The `session` cookie, with the session's id.
    Session(Arc<str>),
    /// An `Authorization: Bearer` JWT.
    Bearer,
}

/// A caller whose credential checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The user id (the session's user, or the token's `sub`).
    pub user_id: Arc<str>,
    /// What proved it.
    pub credential: Credential,
}

/// A credential was presented and did not check out; the gate puts this in the request's
/// extensions instead of an [`Identity`]. The request goes on: only a handler that asks who is
/// calling refuses it, so a stale credential never turns a public answer, a 404 or a login into
/// a 401. [`Auth`] and [`MaybeAuth`] read it; code of your own that looks for [`Identity`]
/// (an extractor, a `middleware.rs`) should look for this too, or a forged or expired token
/// passes as anonymous there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialRejected {
    /// A bearer token that is malformed, badly signed, of another algorithm or expired.
    Bearer,
    /// A session cookie that names no live session.
    Session,
}

impl CredentialRejected {
    /// The 401 `unauthorized` that [`Auth`] answers with.
    pub fn error(self) -> ApiError {
        match self {
            Self::Bearer => ApiError::unauthorized("The bearer token is invalid or expired."),
            Self::Session => ApiError::unauthorized("The credentials are invalid or expired."),
        }
    }
}

/// The app's user type, loaded for an identity.
///
/// # Example
/// ```
/// use waypost::security::{AuthUser, Identity};
/// use waypost::ApiError;
///
/// struct User { id: String }
///
/// impl<S: Send + Sync> AuthUser<S> for User {
///     async fn load(identity: &Identity, _state: &S) -> Result<Option<Self>, ApiError> {
///         Ok(Some(User { id: identity.user_id.to_string() }))
///     }
/// }
/// ```
pub trait AuthUser<S: Send + Sync>: Sized + Send {
    /// The user behind `identity`, or `None` when it no longer exists (→ 401).
    fn load(
        identity: &Identity,
        state: &S,
    ) -> impl Future<Output = Result<Option<Self>, ApiError>> + Send;
}

impl<S: Send + Sync> AuthUser<S> for Identity {
    async fn load(identity: &Identity, _state: &S) -> Result<Option<Self>, ApiError> {
        Ok(Some(identity.clone()))
    }
}

/// The signed-in caller; 401 `unauthorized` when there is none.
#[derive(Clone, Debug)]
pub struct Auth<U>(pub U);

/// The caller when signed in, `None` otherwise: it never rejects for lack of credentials, nor
/// for a stale session cookie, but a bearer token that does not check out is 401.
#[derive(Clone, Debug)]
pub struct MaybeAuth<U>(pub Option<U>);

impl<S, U> FromRequestParts<S> for Auth<U>
where
    S: Send + Sync,
    U: AuthUser<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Some(identity) = parts.extensions.get::<Identity>().cloned() else {
            return Err(match parts.extensions.get::<CredentialRejected>() {
                Some(rejected) => rejected.error(),
                None => ApiError::unauthorized("Authentication is required."),
            });
        };
        match U::load(&identity, state).await? {
            Some(user) => Ok(Auth(user)),
            None => Err(ApiError::unauthorized("The account no longer exists.")),
        }
    }
}

impl<S, U> FromRequestParts<S> for MaybeAuth<U>
where
    S: Send + Sync,
    U: AuthUser<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Some(identity) = parts.extensions.get::<Identity>().cloned() else {
            // A bearer token is sent on purpose: a client whose token expired learns it here
            // rather than being served as anonymous (GitHub's API and DRF do the same). A
            // stale session cookie, which browsers send on their own, is just anonymous.
            return match parts.extensions.get::<CredentialRejected>() {
                Some(&rejected @ CredentialRejected::Bearer) => Err(rejected.error()),
                _ => Ok(MaybeAuth(None)),
            };
        };
        Ok(MaybeAuth(U::load(&identity, state).await?))
    }
}

impl<U> std::ops::Deref for Auth<U> {
    type Target = U;
    fn deref(&self) -> &U {
        &self.0
    }
}
