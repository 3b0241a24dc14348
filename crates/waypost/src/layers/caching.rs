//! HTTP caching for the routes that ask for it with [`RouteConfig::cache`](crate::RouteConfig::cache):
//! `Cache-Control: public, max-age=…` and an `ETag` on a GET's 200, and `304 Not Modified` for a
//! conditional request whose `If-None-Match` names the answer the client already has.
//!
//! Only what is the same for every caller is marked public: an answer to a signed-in caller
//! keeps the `no-store` every authenticated answer gets, and one that sets a cookie is left
//! alone. The `ETag` is a hash of the body, so a 304 still runs the handler (it saves the
//! transfer, not the work); bodies of unknown length (streams) get `Cache-Control` only, and are
//! never buffered.

use std::{future::Future, time::Duration};

use axum::{
    body::Body,
    extract::Request,
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    response::{IntoResponse as _, Response},
};
use http_body::Body as _;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};

/// Bodies up to this size (known in advance, as a JSON answer's is) get an `ETag`.
const LARGEST_TAGGED_BODY: u64 = 4 * 1024 * 1024;

/// What a route's `cache` setting does to one request.
pub(crate) struct Revalidation {
    cache_control: HeaderValue,
    /// The client's `If-None-Match`, when it sent one.
    if_none_match: Option<HeaderValue>,
}

impl Revalidation {
    /// The caching of `request` on a route whose [`cache_control`] value is given: `None`
    /// unless it is a GET or HEAD from a caller who presented no credentials.
    pub(crate) fn of(cache_control: &HeaderValue, request: &Request) -> Option<Self> {
        let method = request.method();
        // Whoever presented credentials — even a stale cookie — gets `no-store` from the gate.
        let presented = crate::context::with_current(|context| {
            context.is_some_and(|context| context.presented_credentials)
        });
        if (method != Method::GET && method != Method::HEAD) || presented {
            return None;
        }
        Some(Self {
            cache_control: cache_control.clone(),
            if_none_match: request.headers().get(header::IF_NONE_MATCH).cloned(),
        })
    }

    /// The handler's `answer`, marked cacheable, or 304 when the client's copy is current.
    pub(crate) async fn apply(self, answer: impl Future<Output = Response>) -> Response {
        let response = answer.await;
        if response.status() != StatusCode::OK
            || response.headers().contains_key(header::SET_COOKIE)
            || response.headers().contains_key(header::CACHE_CONTROL)
        {
            // Not the same for everyone, or the handler decided itself.
            return response;
        }
        let (mut parts, body) = response.into_parts();
        parts
            .headers
            .insert(header::CACHE_CONTROL, self.cache_control);
        let sized = body
            .size_hint()
            .exact()
            .is_some_and(|size| size <= LARGEST_TAGGED_BODY);
        if !sized || parts.headers.contains_key(header::ETAG) {
            return Response::from_parts(parts, body);
        }
        // The size is known and small: the bytes are already in memory.
        let bytes = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) => return crate::ApiError::from(axum::Error::new(error)).into_response(),
        };
        let tag = entity_tag(&bytes);
        if self
            .if_none_match
            .as_ref()
            .is_some_and(|condition| matches_any(condition.as_bytes(), tag.as_bytes()))
        {
            return not_modified(&parts.headers, tag, bytes.len());
        }
        parts.headers.insert(header::ETAG, tag);
        Response::from_parts(parts, Body::from(bytes))
    }
}

/// `public, max-age=<seconds>`: a cached route's `Cache-Control`, rendered once for the route.
pub(crate) fn cache_control(max_age: Duration) -> HeaderValue {
    HeaderValue::try_from(format!("public, max-age={}", max_age.as_secs()))
        .expect("digits are a header value")
}

/// A strong entity tag for `body`: the first 128 bits of its SHA-256, quoted.
fn entity_tag(body: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(body);
    let tag = format!("\"{}\"", hex::encode(&digest[..16]));
    HeaderValue::try_from(tag).expect("hex digits are a header value")
}

/// Whether `If-None-Match` (`*`, or a list of entity tags, weak or strong) names `tag`. RFC 9110
/// §13.1.2 compares weakly: `W/"x"` names `"x"`.
fn matches_any(condition: &[u8], tag: &[u8]) -> bool {
    let Ok(condition) = std::str::from_utf8(condition) else {
        return false;
    };
    let Ok(tag) = std::str::from_utf8(tag) else {
        return false;
    };
    if condition.trim() == "*" {
        return true;
    }
    condition
        .split(',')
        .map(str::trim)
        .map(|candidate| candidate.strip_prefix("W/").unwrap_or(candidate))
        .any(|candidate| candidate == tag)
}

/// `304 Not Modified`: no body; of the answer's headers, those RFC 9110 §15.4.5 asks to
/// repeat (the validators and caching fields) and the rate limit's, which describe the request
/// rather than the representation; and `Content-Length` as the 200's `length` (§8.6 allows
/// only that value — left to the router, it would say 0). hyper leaves it out of a 304 over
/// HTTP/1 to a GET; it goes out to a HEAD and over HTTP/2.
fn not_modified(headers: &HeaderMap, tag: HeaderValue, length: usize) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    let kept = response.headers_mut();
    for name in [
        header::CACHE_CONTROL,
        header::CONTENT_LOCATION,
        header::EXPIRES,
        header::VARY,
        crate::security::rate_limit::RATELIMIT_POLICY,
        crate::security::rate_limit::RATELIMIT,
    ] {
        for value in headers.get_all(&name) {
            kept.append(name.clone(), value.clone());
        }
    }
    kept.insert(header::ETAG, tag);
    kept.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_honours_the_star() {
        let tag = br#""abc""#;
        assert!(matches_any(br#""abc""#, tag));
        assert!(matches_any(br#"W/"abc""#, tag));
        assert!(matches_any(br#""x", W/"abc" , "y""#, tag));
        assert!(matches_any(b" * ", tag));
        assert!(!matches_any(br#""abcd""#, tag));
        assert!(!matches_any(b"abc", tag));
        assert!(!matches_any(b"", tag));
    }

    #[test]
    fn the_tag_is_a_quoted_hash_of_the_body() {
        let tag = entity_tag(b"{\"docs\":\"x\"}");
        let text = tag.to_str().unwrap();
        assert_eq!(text.len(), 34);
        assert!(text.starts_with('"') && text.ends_with('"'));
        assert_eq!(tag, entity_tag(b"{\"docs\":\"x\"}"));
        assert_ne!(tag, entity_tag(b"{\"docs\":\"y\"}"));
    }
}
