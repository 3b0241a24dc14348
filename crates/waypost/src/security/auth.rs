//! Who is calling: the identity the security layer resolved from a session cookie or a bearer
//! token, and the `Auth<U>` / `MaybeAuth<U>` extractors that turn it into the app's user type.

use std::{future::Future, sync::Arc};

use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts, Extensions, HeaderValue},
};

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
/// a 401. Read it through [`Caller`], as [`Auth`] and [`MaybeAuth`] do: code of your own that
/// looked for an [`Identity`] alone would let a forged or expired token pass as anonymous.
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
            // RFC 6750 §3.1: the token was presented and did not check out.
            Self::Bearer => ApiError::unauthorized("The bearer token is invalid or expired.")
                .with_header(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                ),
            Self::Session => ApiError::unauthorized("The credentials are invalid or expired."),
        }
    }
}

/// What the security gate learned about who is calling, read from a request's extensions: the
/// one place [`Auth`], [`MaybeAuth`] and code of your own (an extractor, a `middleware.rs`) ask,
/// so a credential that did not check out is never mistaken for none at all.
///
/// # Example
/// A `middleware.rs` that lets only signed-in callers through, with the same 401 as [`Auth`]:
/// ```
/// use waypost::axum::{extract::Request, middleware::Next, response::{IntoResponse, Response}};
/// use waypost::security::Caller;
///
/// pub async fn middleware(request: Request, next: Next) -> Response {
///     match Caller::of(request.extensions()).required() {
///         Ok(_identity) => next.run(request).await,
///         Err(error) => error.into_response(),
///     }
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller<'a> {
    /// A credential checked out.
    Identified(&'a Identity),
    /// A credential was presented and did not check out.
    Rejected(CredentialRejected),
    /// No credential was presented.
    Anonymous,
}

impl<'a> Caller<'a> {
    /// The caller of the request whose extensions these are.
    pub fn of(extensions: &'a Extensions) -> Self {
        match extensions.get::<Identity>() {
            Some(identity) => Self::Identified(identity),
            None => extensions
                .get::<CredentialRejected>()
                .map_or(Self::Anonymous, |&rejected| Self::Rejected(rejected)),
        }
    }

    /// The identity, as [`Auth`] demands it.
    ///
    /// # Errors
    /// 401 `unauthorized` for an anonymous caller and for a credential that did not check out,
    /// each with its own message.
    pub fn required(self) -> Result<&'a Identity, ApiError> {
        match self {
            Self::Identified(identity) => Ok(identity),
            Self::Rejected(rejected) => Err(rejected.error()),
            Self::Anonymous => Err(ApiError::unauthorized("Authentication is required.")),
        }
    }

    /// The identity when there is one, as [`MaybeAuth`] asks for it: a stale session cookie,
    /// which browsers send on their own, counts as anonymous.
    ///
    /// # Errors
    /// 401 `unauthorized` for a bearer token that did not check out: a client sends one on
    /// purpose, and one whose token expired learns it here rather than being served as
    /// anonymous (GitHub's API and DRF do the same).
    pub fn optional(self) -> Result<Option<&'a Identity>, ApiError> {
        match self {
            Self::Identified(identity) => Ok(Some(identity)),
            Self::Rejected(rejected @ CredentialRejected::Bearer) => Err(rejected.error()),
            Self::Rejected(CredentialRejected::Session) | Self::Anonymous => Ok(None),
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
        let identity = Caller::of(&parts.extensions).required()?.clone();
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
        let Some(identity) = Caller::of(&parts.extensions).optional()?.cloned() else {
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

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    fn extensions_with(
        identity: Option<Identity>,
        rejected: Option<CredentialRejected>,
    ) -> Extensions {
        let mut extensions = Extensions::new();
        if let Some(identity) = identity {
            extensions.insert(identity);
        }
        if let Some(rejected) = rejected {
            extensions.insert(rejected);
        }
        extensions
    }

    fn message(result: Result<impl std::fmt::Debug, ApiError>) -> String {
        let error = result.expect_err("refused");
        assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(error.code(), "unauthorized");
        error.message().to_owned()
    }

    #[test]
    fn a_caller_is_identified_rejected_or_anonymous_and_each_is_answered_its_own_way() {
        let identity = Identity {
            user_id: "u1".into(),
            credential: Credential::Bearer,
        };
        let identified = extensions_with(Some(identity.clone()), None);
        assert_eq!(Caller::of(&identified), Caller::Identified(&identity));
        assert_eq!(Caller::of(&identified).required().unwrap(), &identity);
        assert_eq!(Caller::of(&identified).optional().unwrap(), Some(&identity));

        let anonymous = Extensions::new();
        assert_eq!(Caller::of(&anonymous), Caller::Anonymous);
        assert_eq!(
            message(Caller::of(&anonymous).required()),
            "Authentication is required."
        );
        assert_eq!(Caller::of(&anonymous).optional().unwrap(), None);

        let forged = extensions_with(None, Some(CredentialRejected::Bearer));
        assert_eq!(
            Caller::of(&forged),
            Caller::Rejected(CredentialRejected::Bearer)
        );
        let expected = "The bearer token is invalid or expired.";
        assert_eq!(message(Caller::of(&forged).required()), expected);
        assert_eq!(message(Caller::of(&forged).optional()), expected);

        // A stale cookie: refused where a caller is required, anonymous where one is optional.
        let stale = extensions_with(None, Some(CredentialRejected::Session));
        assert_eq!(
            message(Caller::of(&stale).required()),
            "The credentials are invalid or expired."
        );
        assert_eq!(Caller::of(&stale).optional().unwrap(), None);
    }
}
