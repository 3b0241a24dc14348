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

use crate::{chat_bearer, AppState};

/// The backend's token (cached per user); without a backend, a CSRF token of this server.
pub async fn post(
    State(state): State<AppState>,
    Auth(identity): Auth<Identity>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let text_plain = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    let Some(chat) = state.chat() else {
        let cookie = request_cookie(&headers, CSRF_COOKIE);
        let (token, new_cookie) = state.security().csrf_token(cookie.as_deref());
        let mut response = (text_plain, token).into_response();
        if let Some(new_cookie) = new_cookie {
            waypost::response::set_cookie(&mut response, &new_cookie);
        }
        return Ok(response);
    };
    let bearer = chat_bearer(&state, &identity, &headers)?;
    let token = chat.token(&identity.user_id, &bearer).await?;
    Ok((text_plain, token.token.clone()).into_response())
}
