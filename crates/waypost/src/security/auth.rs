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

/// A session cookie was presented but names no session (kept so `Auth` can say why; a bearer
/// token that does not check out never gets this far).
#[derive(Clone, Copy, Debug)]
pub(crate) struct CredentialRejected;

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

/// The caller when signed in, `None` otherwise (never rejects for lack of credentials).
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
            return Err(if parts.extensions.get::<CredentialRejected>().is_some() {
                ApiError::unauthorized("The credentials are invalid or expired.")
            } else {
                ApiError::unauthorized("Authentication is required.")
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
            return Ok(MaybeAuth(None));
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
