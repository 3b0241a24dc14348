//! Response helpers: JSON with a status, a true empty 204, redirects, and cookies with secure
//! defaults.

use axum::{
    body::Body,
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use axum_extra::extract::cookie::{Cookie, SameSite};
use serde::Serialize;

use crate::extract::Json;

/// JSON `value` with `status`.
pub fn json<T: Serialize>(status: StatusCode, value: T) -> Response {
    (status, Json(value)).into_response()
}

/// 201 Created with JSON `value`.
pub fn created<T: Serialize>(value: T) -> Response {
    json(StatusCode::CREATED, value)
}

/// 204 No Content with no body and no `Content-Type`.
pub fn no_content() -> Response {
    NoContent.into_response()
}

/// 201 Created with a JSON body (typed, so the OpenAPI document knows the status and schema).
#[derive(Clone, Copy, Debug, Default)]
pub struct Created<T>(pub T);

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        created(self.0)
    }
}

impl<T> Created<T> {
    /// The same answer saying where the new resource lives: `Location: location` (RFC 9110
    /// §10.2.2), a path like `/api/posts/7` or a whole URL.
    ///
    /// ```
    /// use waypost::response::{Created, CreatedAt};
    ///
    /// #[derive(serde::Serialize)]
    /// struct Post {
    ///     id: String,
    /// }
    ///
    /// fn created(post: Post) -> CreatedAt<Post> {
    ///     let location = format!("/api/posts/{}", post.id);
    ///     Created(post).at(location)
    /// }
    /// ```
    pub fn at(self, location: impl Into<String>) -> CreatedAt<T> {
        CreatedAt {
            body: self.0,
            location: location.into(),
        }
    }
}

/// 201 Created with a JSON body and a `Location` header: what [`Created::at`] makes (typed, so
/// the OpenAPI document knows the status and schema).
#[derive(Clone, Debug)]
pub struct CreatedAt<T> {
    body: T,
    location: String,
}

impl<T: Serialize> IntoResponse for CreatedAt<T> {
    fn into_response(self) -> Response {
        // A location no header can carry (a control character) is the app's bug, not the
        // client's: 500 in the one shape, with the cause logged, rather than a 201 without it.
        let location = match HeaderValue::try_from(self.location) {
            Ok(location) => location,
            Err(error) => return crate::ApiError::internal(error).into_response(),
        };
        let mut response = created(self.body);
        response.headers_mut().insert(header::LOCATION, location);
        response
    }
}

/// 204 No Content: no body and no `Content-Type` (typed, for the OpenAPI document).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoContent;

impl IntoResponse for NoContent {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        response
    }
}

/// A redirect: 303 See Other (after a form POST) to `location`.
pub fn see_other(location: &str) -> Response {
    redirect(StatusCode::SEE_OTHER, location)
}

/// A redirect with `status` (301, 302, 303, 307, 308) to `location`.
///
/// # Panics
/// When `status` is not a redirection status.
pub fn redirect(status: StatusCode, location: &str) -> Response {
    assert!(status.is_redirection(), "{status} is not a redirect status");
    match HeaderValue::from_str(location) {
        Ok(value) => (status, [(header::LOCATION, value)]).into_response(),
        Err(error) => crate::ApiError::internal(error).into_response(),
    }
}

/// A cookie with the defaults a session-like cookie should have: `HttpOnly`, `SameSite=Lax`,
/// `Path=/`, and `Secure` when `secure` is set (behind HTTPS; `WAYPOST_SECURE_COOKIES=1`).
pub fn secure_cookie(
    name: impl Into<String>,
    value: impl Into<String>,
    secure: bool,
) -> Cookie<'static> {
    Cookie::build((name.into(), value.into()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(secure)
        .build()
}

/// A cookie that tells the browser to drop `name` (same attributes, expired).
pub fn removal_cookie(name: impl Into<String>, secure: bool) -> Cookie<'static> {
    let mut cookie = secure_cookie(name, "", secure);
    cookie.make_removal();
    cookie
}

/// Adds `Set-Cookie` for `cookie` to `response`.
pub fn set_cookie(response: &mut Response, cookie: &Cookie<'_>) {
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn json_of(response: Response) -> serde_json::Value {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn created_at_says_where_and_a_location_no_header_can_carry_is_500() {
        let response = Created(serde_json::json!({ "id": 7 }))
            .at("/api/posts/7")
            .into_response();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()[header::LOCATION], "/api/posts/7");
        assert_eq!(json_of(response).await, serde_json::json!({ "id": 7 }));

        let broken = Created(serde_json::json!({ "id": 8 }))
            .at("/api/posts/8\r\nSet-Cookie: x=1")
            .into_response();
        assert_eq!(broken.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!broken.headers().contains_key(header::LOCATION));
        assert!(!broken.headers().contains_key(header::SET_COOKIE));
        assert_eq!(json_of(broken).await["code"], "internal_error");
    }

    #[test]
    fn no_content_has_no_body_headers() {
        let response = no_content();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert!(response.headers().get(header::CONTENT_TYPE).is_none());
    }

    #[test]
    fn secure_cookie_has_safe_defaults() {
        let text = secure_cookie("session", "abc", true).to_string();
        assert!(text.contains("HttpOnly"), "{text}");
        assert!(text.contains("SameSite=Lax"), "{text}");
        assert!(text.contains("Path=/"), "{text}");
        assert!(text.contains("Secure"), "{text}");
        assert!(!secure_cookie("s", "v", false)
            .to_string()
            .contains("Secure"));
    }
}
