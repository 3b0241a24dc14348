//! `GET /api/csrf`: a CSRF token bound to the client's `csrf` cookie (set here when missing).

use serde_json::json;
use waypost::{
    axum::{
        http::{header, HeaderMap, HeaderValue, StatusCode},
        response::Response,
    },
    response,
    security::{csrf::CSRF_COOKIE, request_cookie, AppSecurity},
};

/// 200 `{"token"}`; send it back in `X-CSRF-Token`, `?token=` or a `_csrf` form field.
pub async fn get(security: AppSecurity, headers: HeaderMap) -> Response {
    let cookie = request_cookie(&headers, CSRF_COOKIE);
    let (token, new_cookie) = security.csrf_token(cookie.as_deref());
    let mut response = response::json(StatusCode::OK, json!({ "token": token }));
    // The token is this client's alone: no cache may hand it to another, also when no cookie
    // is set along with it.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(new_cookie) = new_cookie {
        response::set_cookie(&mut response, &new_cookie);
    }
    response
}
