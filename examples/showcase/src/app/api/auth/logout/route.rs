//! `POST /api/auth/logout`: end the session server-side and clear its cookie.

use waypost::{
    axum::{http::HeaderMap, response::Response},
    response,
    security::{request_cookie, AppSecurity, SESSION_COOKIE},
    ApiError,
};

/// 204; the old cookie no longer works anywhere, even if a client keeps sending it.
pub async fn post(security: AppSecurity, headers: HeaderMap) -> Result<Response, ApiError> {
    let session = request_cookie(&headers, SESSION_COOKIE);
    let removal = security.end_session(session.as_deref()).await?;
    let mut response = response::no_content();
    response::set_cookie(&mut response, &removal);
    Ok(response)
}
