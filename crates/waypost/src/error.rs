//! The one error type: everything that goes wrong leaves as `{"error", "code", "requestId", "details"?}`.
//!
//! Handlers return `Result<T, ApiError>` and use `?`. The message is a sentence meant for the
//! client; the optional `source` is logged with the request id and never sent.

use std::{borrow::Cow, fmt};

use axum::{
    http::{header, HeaderName, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Serialize;

/// An error answered as the one JSON error shape with the right status.
///
/// # Example
/// ```
/// use waypost::ApiError;
/// use waypost::axum::http::StatusCode;
///
/// let error = ApiError::conflict("a post with this title exists");
/// assert_eq!(error.status(), StatusCode::CONFLICT);
/// assert_eq!(error.code(), "conflict");
/// ```
#[must_use]
pub struct ApiError(Box<Inner>);

/// Boxed so that `Result<T, ApiError>` stays one pointer wide on the happy path.
struct Inner {
    status: StatusCode,
    code: Cow<'static, str>,
    message: Cow<'static, str>,
    details: Option<serde_json::Value>,
    headers: Vec<(HeaderName, HeaderValue)>,
    extra: Option<serde_json::Map<String, serde_json::Value>>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ApiError {
    /// An error with any status, `snake_case` code and client-facing message.
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self(Box::new(Inner {
            status,
            code: code.into(),
            message: message.into(),
            details: None,
            headers: Vec::new(),
            extra: None,
            source: None,
        }))
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 400 `invalid_json`: the body is not JSON, or not JSON of the expected shape.
    pub fn invalid_json(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    }

    /// 400 `validation_failed` with `details` = `{"field": ["message", …]}`.
    pub fn validation(details: impl Serialize) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "validation_failed",
            "The request did not pass validation.",
        )
        .with_details(details)
    }

    /// 400 `validation_failed` for a single field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let mut details = serde_json::Map::new();
        details.insert(field.to_owned(), serde_json::json!([message.into()]));
        Self::validation(details)
    }

    /// 401 `unauthorized`. Every 401 rendered from an `ApiError` leaves with a
    /// `WWW-Authenticate` challenge (RFC 9110): `Bearer`, unless the error carries one of its
    /// own ([`with_header`](Self::with_header)).
    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 405 `method_not_allowed`.
    pub fn method_not_allowed(method: &Method) -> Self {
        // A client may name any method, as long as the whole head allows.
        let method = crate::short_quotes::shorten_value(method.as_str());
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("This route does not answer {method}."),
        )
    }

    /// 409 `conflict`.
    pub fn conflict(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 413 `payload_too_large`.
    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "The request body is larger than this route accepts.",
        )
    }

    /// 431 `header_fields_too_large`.
    pub fn header_fields_too_large() -> Self {
        Self::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "header_fields_too_large",
            "The request's header section is larger than this server accepts.",
        )
    }

    /// 415 `unsupported_media_type`.
    pub fn unsupported_media_type(expected: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Expected a request body with Content-Type: {expected}."),
        )
    }

    /// 429 `rate_limited`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many requests; try again later.",
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from(retry_after_secs))
    }

    /// 500 `internal_error`. The source is logged, never sent.
    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Something went wrong on our side.",
        )
        .with_source(source)
    }

    /// 502 `upstream_failed`: a backend this server called failed or timed out.
    pub fn upstream_failed(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "upstream_failed",
            "An upstream service failed to answer.",
        )
        .with_source(source)
    }

    /// 503 `service_unavailable` with a code of the caller's choosing.
    pub fn unavailable(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// 504 `timeout`: the handler ran past the route's `max_duration`.
    pub fn timeout() -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            "The request took longer than this route allows.",
        )
    }

    /// Attach machine-readable `details`.
    pub fn with_details(mut self, details: impl Serialize) -> Self {
        self.0.details = serde_json::to_value(details).ok();
        self
    }

    /// Add a response header (e.g. `Retry-After`).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.0.headers.push((name, value));
        self
    }

    /// Add top-level fields to the body beside `error`/`code` (kept for contracts that ask for
    /// them, like a quota's `limit` and `used`).
    pub fn with_fields(mut self, fields: serde_json::Map<String, serde_json::Value>) -> Self {
        self.0.extra = Some(fields);
        self
    }

    /// Keep the underlying cause for the log.
    ///
    /// A `reqwest` error keeps the URL it was calling only without its query, fragment and
    /// credentials: an API key or a backend's token in them would otherwise reach the log.
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        self.0.source = Some(without_url_secrets(source.into()));
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The `snake_case` code.
    pub fn code(&self) -> &str {
        &self.0.code
    }

    /// The client-facing message.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The `details`, if any.
    pub fn details(&self) -> Option<&serde_json::Value> {
        self.0.details.as_ref()
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("status", &self.0.status)
            .field("code", &self.0.code)
            .field("message", &self.0.message)
            .field("details", &self.0.details)
            .field("source", &self.0.source)
            .finish()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.0.status.as_u16(),
            self.0.code,
            self.0.message
        )
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    code: &'a str,
    #[serde(rename = "requestId")]
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a serde_json::Value>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    extra: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

/// Marks a response as one of ours, so the front layer leaves its body alone.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RenderedError;

impl Inner {
    /// The JSON body, `{"error", "code", "requestId", "details"?}`.
    fn body_bytes(&self, request_id: &str) -> Vec<u8> {
        let body = ErrorBody {
            error: &self.message,
            code: &self.code,
            request_id,
            details: self.details.as_ref(),
            extra: self.extra.as_ref(),
        };
        serde_json::to_vec(&body).unwrap_or_else(|_| {
            br#"{"error":"Something went wrong on our side.","code":"internal_error"}"#.to_vec()
        })
    }
}

impl ApiError {
    /// The JSON body this error renders with `request_id`, for answers written outside any
    /// request (see `protocol_errors`).
    pub(crate) fn body_bytes(&self, request_id: &str) -> Vec<u8> {
        self.0.body_bytes(request_id)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = *self.0;
        let request_id = crate::context::request_id();
        if error.status.is_server_error() {
            match &error.source {
                Some(source) => tracing::error!(
                    request_id = %request_id.as_str(), status = error.status.as_u16(), code = %error.code,
                    error = %source, "request failed"
                ),
                None => tracing::error!(
                    request_id = %request_id.as_str(), status = error.status.as_u16(), code = %error.code,
                    "request failed"
                ),
            }
        } else {
            tracing::debug!(request_id = %request_id.as_str(), status = error.status.as_u16(), code = %error.code, "request rejected");
        }
        let bytes = error.body_bytes(request_id.as_str());
        let mut response = (
            error.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response();
        let challenged = error
            .headers
            .iter()
            .any(|(name, _)| name == header::WWW_AUTHENTICATE);
        for (name, value) in error.headers {
            response.headers_mut().append(name, value);
        }
        if error.status == StatusCode::UNAUTHORIZED && !challenged {
            // RFC 9110 §15.5.2: a 401 names the scheme that would do.
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response.extensions_mut().insert(RenderedError);
        response
    }
}

impl From<sqlx::Error> for ApiError {
    /// Maps database errors by kind: no row → 404, a unique or foreign-key violation → 409, a
    /// value the database refuses as data (SQLSTATE class 22 — a NUL character in Postgres text,
    /// a number out of range) → 400, a database that cannot be reached or is gone → 503
    /// `database_unavailable`, one too busy to answer in time (locked, a deadlock, a
    /// serialization failure, a statement timeout) → 503 `database_busy` with `Retry-After`,
    /// anything else → 500; the SQL error is kept for the log only.
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::RowNotFound => ApiError::not_found("Not found."),
            sqlx::Error::Database(db) if db.code().as_deref().is_some_and(is_contention) => {
                ApiError::unavailable("database_busy", "The database is busy; try again shortly.")
                    .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
                    .with_source(error)
            }
            sqlx::Error::Database(db) if db.code().as_deref().is_some_and(is_unavailability) => {
                ApiError::unavailable("database_unavailable", "The database is unavailable.")
                    .with_source(error)
            }
            sqlx::Error::Database(db) if db.code().is_some_and(|code| code.starts_with("22")) => {
                ApiError::bad_request(
                    "A value in the request cannot be stored or compared (a NUL character, a \
                     number out of range).",
                )
                .with_source(error)
            }
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                ApiError::conflict("A record with these values already exists.").with_source(error)
            }
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                ApiError::conflict("The record refers to something that does not exist.")
                    .with_source(error)
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                ApiError::unavailable("database_unavailable", "The database is unavailable.")
                    .with_source(error)
            }
            _ => ApiError::internal(error),
        }
    }
}

/// Codes that say the statement met other work and may well pass if sent again: SQLite's busy
/// and locked (with their extended codes), and Postgres' serialization failure, deadlock, lock
/// not available and statement timeout.
fn is_contention(code: &str) -> bool {
    matches!(
        code,
        "5" | "261" | "517" | "773" | "6" | "262" | "40001" | "40P01" | "55P03" | "57014"
    )
}

/// SQLSTATEs that say the database, not the statement, is the trouble: class 08 (connection
/// exceptions), `3D000` (the database does not exist, e.g. dropped under the server), `53300`
/// (too many connections) and `57P01`–`57P03` (shut down, crashed, starting up).
fn is_unavailability(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "3D000" | "53300" | "57P01" | "57P02" | "57P03")
}

impl From<axum::Error> for ApiError {
    /// A body read failed: too large → 413, stopped arriving → 408, otherwise the client sent
    /// a broken body → 400.
    fn from(error: axum::Error) -> Self {
        crate::extract::body_read_failure(&error).with_source(error)
    }
}

/// A generic error for a status the framework did not render itself (an axum rejection used
/// directly, a layer's plain-text answer): same shape, a safe message, no original text.
pub(crate) fn from_status(status: StatusCode) -> ApiError {
    let (code, message) = match status {
        StatusCode::BAD_REQUEST => ("bad_request", "The request is malformed."),
        StatusCode::UNAUTHORIZED => ("unauthorized", "Authentication is required."),
        StatusCode::FORBIDDEN => ("forbidden", "You are not allowed to do this."),
        StatusCode::NOT_FOUND => ("not_found", "Not found."),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "Method not allowed."),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "The request body is too large."),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("unsupported_media_type", "Unsupported content type.")
        }
        StatusCode::UNPROCESSABLE_ENTITY => {
            ("invalid_json", "The request body has the wrong shape.")
        }
        StatusCode::TOO_MANY_REQUESTS => ("rate_limited", "Too many requests; try again later."),
        StatusCode::REQUEST_TIMEOUT => ("timeout", "The request took too long to arrive."),
        StatusCode::GATEWAY_TIMEOUT => ("timeout", "The request took too long."),
        s if s.is_server_error() => ("internal_error", "Something went wrong on our side."),
        _ => ("error", "The request failed."),
    };
    let status = if status == StatusCode::UNPROCESSABLE_ENTITY {
        StatusCode::BAD_REQUEST
    } else {
        status
    };
    ApiError::new(status, code, message)
}

/// `source` with the query, fragment, user name and password cut from the URL of a `reqwest`
/// error (its `Display` ends with the URL).
fn without_url_secrets(
    source: Box<dyn std::error::Error + Send + Sync>,
) -> Box<dyn std::error::Error + Send + Sync> {
    match source.downcast::<reqwest::Error>() {
        Ok(mut error) => {
            if let Some(url) = error.url_mut() {
                url.set_query(None);
                url.set_fragment(None);
                // Fails only for URLs that cannot hold credentials, which then have none.
                let _ = url.set_username("");
                let _ = url.set_password(None);
            }
            error
        }
        Err(other) => other,
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[tokio::test]
    async fn a_logged_upstream_error_keeps_no_secret_of_its_url() {
        // Port 1 on loopback refuses the connection: a transport error that names its URL.
        let url = "http://key:hunter2@127.0.0.1:1/api/deepchat?token=s3cr3t#frag";
        let failure = reqwest::Client::new().get(url).send().await.unwrap_err();
        let error = ApiError::upstream_failed(failure);
        let logged = error.source().expect("the source is kept").to_string();
        assert!(logged.contains("127.0.0.1:1/api/deepchat"), "{logged}");
        for secret in ["s3cr3t", "hunter2", "key@", "frag", "token="] {
            assert!(!logged.contains(secret), "{secret} in {logged}");
        }
        // Other sources are kept as they are.
        let error = ApiError::internal("a plain cause ?token=x");
        assert_eq!(
            error.source().unwrap().to_string(),
            "a plain cause ?token=x"
        );
    }
}
