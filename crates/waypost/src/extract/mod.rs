//! Extractors whose rejections are the one JSON error shape.
//!
//! They mirror axum's (`Json`, `Query`, `Form`, `Path`) and add [`Valid`], which runs `garde`
//! validation after parsing, [`JsonWithBytes`], a JSON body parsed and kept as it came (for
//! a proxy that checks what it passes on), and [`RawBody`], the bytes as sent (for a webhook's
//! signature), whose failed reads keep their status (413, 408) where axum's `Bytes` says 400. `Query` and `Form` read a repeated key into a list
//! field (`?tag=a&tag=b`) and refuse it for a single one, naming the field; more pairs than
//! the route's `max_fields` (1000 by default) are refused whole. A client's value quoted back
//! in an error message is cut to 64 characters (`crate::short_quotes`). Any plain axum extractor
//! still works in a handler; its rejection is turned into the same shape on the way out.

mod declared;
mod form;
mod json;
mod path;
mod query;
mod raw;
mod urlencoded;
mod valid;

pub use axum::extract::{FromRequest, FromRequestParts, State};
pub use axum_extra::extract::cookie::{Cookie, CookieJar};
pub use form::Form;
pub use json::{Json, JsonWithBytes};
pub use path::{path_params, Path};
pub use query::Query;
pub use raw::RawBody;
pub use valid::{check as validate, Valid, Validated};

/// The answer to a request body that could not be read: 413 past the route's limit, 408
/// `timeout` when it stopped arriving or fell below the minimum rate (see
/// [`crate::body_pace`]), else 400 — the client broke it off.
pub(crate) fn body_read_failure(error: &(dyn std::error::Error + 'static)) -> crate::ApiError {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = current {
        if error.is::<http_body_util::LengthLimitError>() {
            return crate::ApiError::payload_too_large();
        }
        let too_slow = match error.downcast_ref::<crate::body_pace::BodyStalled>() {
            Some(stalled) => Some(stalled.was_too_slow()),
            // The same pause limit, when an app sets tower-http's up itself.
            None => error
                .is::<tower_http::timeout::TimeoutError>()
                .then_some(false),
        };
        if let Some(too_slow) = too_slow {
            let message = if too_slow {
                "The request body arrived too slowly."
            } else {
                "The request body stopped arriving before it was complete."
            };
            return crate::ApiError::new(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                "timeout",
                message,
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
    // A plain look at each byte, not `memmem`: a path is a few dozen bytes, fewer than setting
    // up a searcher costs (callgrind, GET /api/posts/{id}: 439 instructions a request with
    // `memmem::find`).
    text.iter()
        .enumerate()
        .any(|(at, &byte)| byte == b'%' && text.get(at + 1..at + 3) == Some(b"00"))
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
pub(crate) async fn read_body(
    request: axum::extract::Request,
) -> Result<bytes::Bytes, crate::ApiError> {
    refuse_content_encoding(request.headers())?;
    read_body_as_sent(request).await
}

/// Reads the whole body as sent (content coding and all) within the route's limit, mapping
/// failures to 413, 408 or 400.
pub(crate) async fn read_body_as_sent(
    request: axum::extract::Request,
) -> Result<bytes::Bytes, crate::ApiError> {
    use axum::RequestExt as _;
    collect_body(request.into_limited_body())
        .await
        .map_err(|error| body_read_failure(&error).with_source(error))
}

/// A body read whole into one buffer.
///
/// Each frame is copied in as it arrives rather than kept: a frame is a slice of the
/// connection's read buffer and holds all of that buffer alive, so a body sent as a million
/// one-byte chunks, kept frame by frame (as `http_body_util`'s `collect` keeps them), would hold
/// tens of times the route's limit. A body that comes in one frame is taken as it is.
pub(crate) async fn collect_body(mut body: axum::body::Body) -> Result<bytes::Bytes, axum::Error> {
    use http_body_util::BodyExt as _;
    let mut first: Option<bytes::Bytes> = None;
    let mut joined: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        // Trailers carry no body bytes.
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        if first.is_none() && joined.is_empty() {
            first = Some(data);
            continue;
        }
        if let Some(earlier) = first.take() {
            joined.extend_from_slice(&earlier);
        }
        joined.extend_from_slice(&data);
    }
    Ok(first.unwrap_or_else(|| bytes::Bytes::from(joined)))
}

#[cfg(test)]
mod tests {
    use axum::http::{header, HeaderMap, HeaderValue};

    use super::has_json_content_type;

    #[tokio::test]
    async fn a_body_is_collected_into_one_buffer_and_a_single_frame_is_not_copied() {
        let whole = bytes::Bytes::from_static(b"{\"one\": \"frame\"}");
        let collected = super::collect_body(axum::body::Body::from(whole.clone()))
            .await
            .unwrap();
        assert_eq!(collected.as_ptr(), whole.as_ptr(), "taken as it is");

        // A thousand one-byte frames, an empty one and trailers among them.
        let frames = (0..1000u32)
            .map(|n| http_body::Frame::data(bytes::Bytes::from(vec![b'a' + (n % 26) as u8])))
            .chain([
                http_body::Frame::data(bytes::Bytes::new()),
                http_body::Frame::trailers(HeaderMap::new()),
            ])
            .map(Ok::<_, std::io::Error>);
        let body = axum::body::Body::new(http_body_util::StreamBody::new(
            futures_util::stream::iter(frames),
        ));
        let collected = super::collect_body(body).await.unwrap();
        let expected: Vec<u8> = (0..1000u32).map(|n| b'a' + (n % 26) as u8).collect();
        assert_eq!(collected, expected);
        assert!(super::collect_body(axum::body::Body::empty())
            .await
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_percent_encoded_nul_is_found() {
        assert!(super::percent_encodes_nul(b"/things/a%00b"));
        assert!(super::percent_encodes_nul(b"%00"));
        assert!(!super::percent_encodes_nul(b"/things/%0"));
        assert!(!super::percent_encodes_nul(b"/things/%"));
        assert!(!super::percent_encodes_nul(b"/things/plain"));
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
