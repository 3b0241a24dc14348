//! `POST /api/auth/logout`: end the session server-side and clear its cookie.

use waypost::{
    axum::{http::HeaderMap, response::Response},
    extract::State,
    response,
    security::{request_cookie, SESSION_COOKIE},
    ApiError,
};

use crate::AppState;

/// 204; the old cookie no longer works anywhere, even if a client keeps sending it.
pub async fn post(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let session = request_cookie(&headers, SESSION_COOKIE);
    let removal = state.security().end_session(session.as_deref()).await?;
    let mut response = response::no_content();
    response::set_cookie(&mut response, &removal);
    Ok(response)
}
