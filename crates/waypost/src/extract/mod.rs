//! Extractors whose rejections are the one JSON error shape.
//!
//! They mirror axum's (`Json`, `Query`, `Form`, `Path`) and add [`Valid`], which runs `garde`
//! validation after parsing, and [`JsonWithBytes`], a JSON body parsed and kept as it came (for
//! a proxy that checks what it passes on). Any plain axum extractor still works in a handler;
//! its rejection is turned into the same shape on the way out.

mod declared;
mod form;
mod json;
mod path;
mod query;
mod valid;

pub use axum::extract::{FromRequest, FromRequestParts, State};
pub use axum_extra::extract::cookie::{Cookie, CookieJar};
pub use form::Form;
pub use json::{Json, JsonWithBytes};
pub use path::{path_params, Path};
pub use query::Query;
pub use valid::{check as validate, Valid, Validated};

/// The answer to a request body that could not be read: 413 past the route's limit, 408
/// `timeout` when it stopped arriving (the body read timeout), else 400 — the client broke it off.
pub(crate) fn body_read_failure(error: &(dyn std::error::Error + 'static)) -> crate::ApiError {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = current {
        if error.is::<http_body_util::LengthLimitError>() {
            return crate::ApiError::payload_too_large();
        }
        if error.is::<tower_http::timeout::TimeoutError>() {
            return crate::ApiError::new(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                "timeout",
                "The request body stopped arriving before it was complete.",
            );
        }
        current = error.source();
    }
    crate::ApiError::bad_request("The request body could not be read.")
}

/// The body length the request declares in `Content-Length`, when it declares a readable one.
/// A limit can refuse by it before a byte of the body is read.
pub fn declared_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers
        .get(axum::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Whether `text` (a raw, still percent-encoded path) encodes a NUL character (U+0000). A path
/// segment with one names nothing — Postgres could not even compare it with stored text, where
/// SQLite would — so [`Path`] answers 404 for it on both.
pub(crate) fn percent_encodes_nul(text: &[u8]) -> bool {
    memchr::memmem::find(text, b"%00").is_some()
}

/// Whether the request's `Content-Type` is `application/json` or a `+json` type, in UTF-8 (JSON
/// has no other encoding, RFC 8259 §8.1: a `charset` parameter may only say so).
pub(crate) fn has_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    let utf8 = parts.all(|parameter| match parameter.split_once('=') {
        Some((name, charset)) if name.trim().eq_ignore_ascii_case("charset") => {
            let charset = charset.trim().trim_matches('"');
            charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("utf8")
        }
        _ => true,
    });
    utf8 && kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json") || subtype.to_ascii_lowercase().ends_with("+json"))
}

/// 415 for a body sent with a `Content-Encoding` (gzip, …): the framework does not decode
/// request bodies, and must not take compressed bytes for the document. A route that accepts
/// them reads the raw body itself.
pub(crate) fn refuse_content_encoding(
    headers: &axum::http::HeaderMap,
) -> Result<(), crate::ApiError> {
    match headers.get(axum::http::header::CONTENT_ENCODING) {
        Some(coding) if !coding.as_bytes().eq_ignore_ascii_case(b"identity") => {
            Err(crate::ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Request bodies are accepted without a Content-Encoding only.",
            ))
        }
        _ => Ok(()),
    }
}

/// Reads the whole body within the route's limit, mapping failures to 415 (a content-coded
/// body), 413, 408 or 400.
pub(crate) async fn read_body<S: Send + Sync>(
    request: axum::extract::Request,
    state: &S,
) -> Result<bytes::Bytes, crate::ApiError> {
    refuse_content_encoding(request.headers())?;
    match bytes::Bytes::from_request(request, state).await {
        Ok(bytes) => Ok(bytes),
        Err(rejection) if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
            Err(crate::ApiError::payload_too_large())
        }
        Err(rejection) => Err(body_read_failure(&rejection).with_source(rejection)),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{header, HeaderMap, HeaderValue};

    use super::has_json_content_type;

    #[test]
    fn a_percent_encoded_nul_is_found() {
        assert!(super::percent_encodes_nul(b"/things/a%00b"));
        // `%25` is the percent sign itself: this is the text `%00`.
        assert!(!super::percent_encodes_nul(b"/things/a%2500"));
    }

    #[test]
    fn json_content_types_are_recognised() {
        let check = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            has_json_content_type(&headers)
        };
        assert!(check("application/json"));
        assert!(check("application/json; charset=utf-8"));
        assert!(check("Application/JSON"));
        assert!(check("application/merge-patch+json"));
        assert!(check("application/json; charset=UTF-8"));
        assert!(check("application/json;charset=\"utf-8\""));
        assert!(!check("application/json; charset=utf-16"));
        assert!(!check("application/json; charset=iso-8859-1"));
        assert!(!check("text/plain"));
        assert!(!check("application/jsonx"));
        assert!(!check("multipart/form-data"));
        assert!(!has_json_content_type(&HeaderMap::new()));
    }
}
