//! `POST /api/chat/session`: the chat backend's CSRF token for the caller, as plain text.

use waypost::{
    axum::{
        http::{header, HeaderMap},
        response::{IntoResponse, Response},
    },
    extract::State,
    security::{csrf::CSRF_COOKIE, request_cookie, Auth, Identity},
    ApiError,
};

use crate::{chat_bearer, users::User, AppState};

/// The backend's token (cached per user); without a backend, a CSRF token of this server.
///
/// Deep Chat sends it back as `?token=`: without a backend, the query parameter the CSRF check
/// reads.
pub async fn post(
    State(state): State<AppState>,
    // The account must still exist (as on every signed-in route); the identity says how the
    // caller signed in, for the bearer handed to the backend.
    Auth(_user): Auth<User>,
    Auth(identity): Auth<Identity>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let text_plain = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    let Some(chat) = state.chat() else {
        // A caller that sends cookies passed the CSRF check to get here, so it holds a `csrf`
        // cookie, and the token is bound to it. A bearer caller sends none and needs no token;
        // it gets one all the same, but no cookie: a cookie-keeping client handed one would
        // need a token for every later write.
        let cookie = request_cookie(&headers, CSRF_COOKIE);
        let (token, _cookie_not_handed_out) = state.security().csrf_token(cookie.as_deref());
        return Ok((text_plain, token).into_response());
    };
    let bearer = chat_bearer(&state, &identity, &headers)?;
    let token = chat.token(&identity.user_id, &bearer).await?;
    Ok((text_plain, token.token.clone()).into_response())
}
