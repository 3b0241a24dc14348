//! CSRF protection: signed double-submit tokens, plus Fetch Metadata and Origin checks.
//!
//! The client holds a random `csrf` cookie. A token is `salt.HMAC(key, salt | cookie)`, so it is
//! valid only together with the cookie it was made for: a token lifted from another client fails
//! against the victim's cookie, and an attacker cannot mint one without the server's key. Tokens
//! are salted per issue, so no two responses carry the same bytes.
//!
//! An unsafe request (POST, PUT, PATCH, DELETE) is refused with 403 `csrf_invalid` when:
//! - it says `Sec-Fetch-Site: cross-site`;
//! - its `Origin` is neither the server's own (same host as `Host`) nor allow-listed for CORS;
//! - it carries a `Cookie` header but no valid token in `X-CSRF-Token`, the `token` query
//!   parameter, or the `_csrf` field of a form (URL-encoded or multipart; the body is read only
//!   as far as that field, and handed on whole; past 1 MiB of form the field is not looked for,
//!   whatever the route's own body limit).
//!
//! Requests without any `Cookie` (API clients with bearer tokens) cannot be forged by a browser
//! and need no token. Caveat: a proxy that rewrites `Host` without setting it back makes every
//! browser request look cross-origin; configure the proxy to preserve `Host`.

use std::{
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{ready, Context, Poll},
};

use axum::{
    body::{Body, Bytes},
    http::{header, request::Parts, HeaderMap, HeaderValue, Method, Uri},
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use http_body::Body as _;
use http_body_util::BodyExt as _;
use rand::RngCore;
use sha2::Sha256;

use super::cors::{normalize_origin, CorsPolicy};
use crate::ApiError;

/// The cookie that carries the client's CSRF secret.
pub const CSRF_COOKIE: &str = "csrf";
/// The header that carries the token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The query parameter that carries the token.
pub const CSRF_QUERY_PARAM: &str = "token";
/// The form field that carries the token.
pub const CSRF_FORM_FIELD: &str = "_csrf";

/// Issues and checks tokens with a server key.
#[derive(Clone)]
pub struct CsrfKeys {
    key: [u8; 32],
}

impl std::fmt::Debug for CsrfKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfKeys(..)")
    }
}

impl CsrfKeys {
    /// Keys derived from `secret`.
    pub fn new(secret: &[u8]) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"waypost csrf key").expect("any key size");
        mac.update(secret);
        Self {
            key: mac.finalize().into_bytes().into(),
        }
    }

    /// A fresh random value for the `csrf` cookie.
    pub fn new_cookie_value() -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn mac(&self, salt: &[u8], cookie: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key size");
        mac.update(salt);
        mac.update(b"|");
        mac.update(cookie.as_bytes());
        mac
    }

    /// A token bound to `cookie`.
    pub fn token_for(&self, cookie: &str) -> String {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let tag = self.mac(&salt, cookie).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(salt),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// Whether `token` was issued for `cookie` (constant-time comparison).
    pub fn verify(&self, token: &str, cookie: &str) -> bool {
        let Some((salt, tag)) = token.split_once('.') else {
            return false;
        };
        let (Ok(salt), Ok(tag)) = (URL_SAFE_NO_PAD.decode(salt), URL_SAFE_NO_PAD.decode(tag))
        else {
            return false;
        };
        self.mac(&salt, cookie).verify_slice(&tag).is_ok()
    }
}

/// Whether `method` changes state and so needs protection.
pub fn is_unsafe(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

pub(crate) fn rejected(reason: &'static str) -> ApiError {
    tracing::debug!(reason, "csrf check failed");
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "csrf_invalid",
        "The request failed its CSRF check.",
    )
}

/// The request-header part of the check: Fetch Metadata and Origin.
pub(crate) fn check_provenance(
    uri: &Uri,
    headers: &HeaderMap,
    cors: &CorsPolicy,
) -> Result<(), ApiError> {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|site| site.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return Err(rejected("sec-fetch-site is cross-site"));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        if !is_same_origin(origin, own_authority(uri, headers)) && !cors.allows(origin) {
            return Err(rejected("foreign origin"));
        }
    }
    Ok(())
}

/// The host (and port) the client addressed: HTTP/2's `:authority` (and an HTTP/1.1 request
/// in absolute form) carry it in the target, which then outranks `Host` (RFC 9112 §3.2.2);
/// otherwise it is the `Host` header.
fn own_authority<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    uri.authority()
        .map(|authority| authority.as_str())
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
}

fn is_same_origin(origin: &HeaderValue, host: Option<&str>) -> bool {
    let (Ok(origin), Some(host)) = (origin.to_str(), host) else {
        return false;
    };
    let Some(origin) = normalize_origin(origin) else {
        return false;
    };
    let authority = origin
        .split_once("://")
        .map_or("", |(_, authority)| authority);
    let host = host.to_ascii_lowercase();
    authority == host
        || authority == host.strip_suffix(":80").unwrap_or(&host)
        || authority == host.strip_suffix(":443").unwrap_or(&host)
}

/// The value of the request's `csrf` cookie, if any.
pub(crate) fn cookie_value(headers: &HeaderMap) -> Option<String> {
    cookie_named(headers, CSRF_COOKIE)
}

/// The value of the cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie_named(headers: &HeaderMap, name: &str) -> Option<String> {
    // Most API requests carry no cookie at all: say so before setting up the search.
    if !headers.contains_key(header::COOKIE) {
        return None;
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').to_owned())
}

/// The token from the header or the query string.
pub(crate) fn token_from_parts(parts: &Parts) -> Option<String> {
    if let Some(token) = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        return Some(token.to_owned());
    }
    let query = parts.uri.query()?;
    form_field(query.as_bytes(), CSRF_QUERY_PARAM)
}

/// The value of `field` in a URL-encoded form.
pub(crate) fn form_field(form: &[u8], field: &str) -> Option<String> {
    url::form_urlencoded::parse(form)
        .find(|(key, _)| key == field)
        .map(|(_, value)| value.into_owned())
}

/// The boundary of a `multipart/form-data` body.
pub(crate) fn multipart_boundary(headers: &HeaderMap) -> Option<String> {
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    multer::parse_boundary(content_type).ok()
}

/// How much of a form body is kept while looking for its `_csrf` field: a route's own limit may
/// be far larger (an upload's), and the search runs before the handler, for anyone.
pub(crate) const TOKEN_SEARCH_LIMIT: usize = 1024 * 1024;

/// The `_csrf` field of a URL-encoded form, and the body again, whole, for the handler.
///
/// The body is read only as far as the field: each `&` ends the fields before it, which are
/// searched as they complete, so a token sent first is found in the first frame however large
/// the rest (a route's own limit, checked as the body is read, still holds). What was read is
/// replayed ahead of the unread rest. At most [`TOKEN_SEARCH_LIMIT`] bytes (and the frame that
/// passes it) are read while searching — the search runs before the handler, for anyone — so a
/// token behind a larger form is not found (send it first, or in the header).
pub(crate) async fn urlencoded_token(
    mut body: Body,
) -> Result<(Option<String>, Body), axum::Error> {
    let mut read = Vec::new();
    // `read[..searched]` holds whole fields already searched.
    let mut searched = 0;
    while let Some(frame) = body.frame().await {
        // Trailers carry no form data.
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        let before = read.len();
        read.extend_from_slice(&data);
        if let Some(last_separator) = data.iter().rposition(|&byte| byte == b'&') {
            let complete = before + last_separator;
            if let Some(token) = form_field(&read[searched..complete], CSRF_FORM_FIELD) {
                return Ok((Some(token), replayed(read, body)));
            }
            searched = complete + 1;
        }
        if read.len() > TOKEN_SEARCH_LIMIT {
            return Ok((None, replayed(read, body)));
        }
    }
    // The whole form is in: its last field too.
    let token = form_field(&read[searched..], CSRF_FORM_FIELD);
    Ok((token, Body::from(read)))
}

/// `read` — what a search took from a body — followed by the unread `rest`.
fn replayed(read: Vec<u8>, rest: Body) -> Body {
    let replay =
        futures_util::stream::once(std::future::ready(Ok::<_, axum::Error>(Bytes::from(read))))
            .chain(rest.into_data_stream());
    Body::from_stream(replay)
}

/// Reads and drops up to `limit` bytes of a body about to be refused. A server that closes the
/// connection with request bytes still unread resets it, and a client still sending may then
/// lose the answer; a body not much larger than the search is read to its end so the 403
/// arrives, while a far larger one is not read for nothing.
pub(crate) async fn discard_some(mut body: Body, limit: usize) {
    let mut discarded = 0;
    while discarded <= limit {
        match body.frame().await {
            Some(Ok(frame)) => discarded += frame.data_ref().map_or(0, Bytes::len),
            _ => return,
        }
    }
}

/// The `_csrf` field of a multipart body, and the body again, whole, for the handler.
///
/// The body is read only as far as the field (a form's hidden token usually comes first); what
/// was read is kept and replayed ahead of the rest. At most [`TOKEN_SEARCH_LIMIT`] bytes (and the
/// frame that passes it) are kept while searching — an upload route's body may be far larger than anyone should buffer —
/// so a token behind a larger file is not found (send it first, or in the header).
pub(crate) async fn multipart_token(
    body: Body,
    boundary: String,
) -> Result<(Option<String>, Body), axum::Error> {
    let tap = Arc::new(Mutex::new(Tap {
        body,
        read: Vec::new(),
        failed: None,
    }));
    let source = {
        let tap = tap.clone();
        futures_util::stream::poll_fn(move |cx| {
            tap.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .poll_data(cx)
        })
    };
    let mut multipart = multer::Multipart::new(source, boundary);
    let mut token = None;
    // A malformed body simply has no token: the caller refuses it as such.
    while let Ok(Some(field)) = multipart.next_field().await {
        if field.name() == Some(CSRF_FORM_FIELD) {
            token = field.text().await.ok();
            break;
        }
    }
    drop(multipart);
    let mut tap = tap.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(error) = tap.failed.take() {
        return Err(error);
    }
    let read = std::mem::take(&mut tap.read);
    let rest = std::mem::replace(&mut tap.body, Body::empty());
    Ok((token, replayed(read, rest)))
}

/// A body being read for its token, keeping what it has given out.
struct Tap {
    body: Body,
    /// What was given out, copied into one buffer: a frame kept as it is would hold the whole
    /// read buffer it was cut from alive (see [`crate::extract::collect_body`]).
    read: Vec<u8>,
    /// The body's own error (a limit, a broken connection), for the caller to answer with.
    failed: Option<axum::Error>,
}

impl Tap {
    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        loop {
            return match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
                None => Poll::Ready(None),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        // Kept whole either way, so a replay never misses a frame.
                        self.read.extend_from_slice(&data);
                        if self.read.len() > TOKEN_SEARCH_LIMIT {
                            // Past the search limit the parser sees the end: no token is found.
                            return Poll::Ready(None);
                        }
                        Poll::Ready(Some(Ok(data)))
                    }
                    // Trailers carry no form data.
                    Err(_trailers) => continue,
                },
                Some(Err(error)) => {
                    self.failed = Some(error);
                    Poll::Ready(Some(Err(std::io::Error::other(
                        "the body could not be read",
                    ))))
                }
            };
        }
    }
}

/// Whether the request body is a URL-encoded form (where `_csrf` may be).
pub(crate) fn is_urlencoded_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    /// A body of `frames`, then one that fails: reading past the frames given shows.
    fn frames_then_failure(frames: &[&'static str]) -> Body {
        let frames: Vec<Result<Bytes, std::io::Error>> = frames
            .iter()
            .map(|frame| Ok(Bytes::from_static(frame.as_bytes())))
            .chain([Err(std::io::Error::other("read too far"))])
            .collect();
        Body::from_stream(futures_util::stream::iter(frames))
    }

    #[tokio::test]
    async fn a_form_is_read_only_as_far_as_its_token_and_handed_on_whole() {
        // The token's field ends in the second frame (at its `&`); the failing end is not read.
        let body = frames_then_failure(&["a=1&_cs", "rf=t%2Bk&b=", "2&c=3"]);
        let (token, body) = urlencoded_token(body).await.unwrap();
        assert_eq!(token.as_deref(), Some("t+k"));
        // The whole form comes back, then the body's own failure (which the search, having
        // stopped at the field, never met).
        let mut replayed = Vec::new();
        let mut stream = body.into_data_stream();
        while let Some(Ok(data)) = futures_util::StreamExt::next(&mut stream).await {
            replayed.extend_from_slice(&data);
        }
        assert_eq!(replayed, b"a=1&_csrf=t%2Bk&b=2&c=3");

        let body = Body::from("a=1&%5Fcsrf=last");
        let (token, body) = urlencoded_token(body).await.unwrap();
        assert_eq!(
            token.as_deref(),
            Some("last"),
            "the last field, encoded name"
        );
        assert_eq!(body.collect().await.unwrap().to_bytes(), "a=1&%5Fcsrf=last");
    }

    #[tokio::test]
    async fn the_search_finds_what_parsing_the_whole_form_finds_however_it_is_framed() {
        use rand::{rngs::SmallRng, Rng, SeedableRng};
        // Pieces that make fields, separators and encodings collide in every way.
        const PIECES: &[&str] = &[
            "_csrf", "%5Fcsrf", "_csr", "f", "=", "&", "&&", "a", "t%2Bk", "+", "%", "%2", "x=1",
            "_csrf=", "==", ";", "%26", "é",
        ];
        let mut rng = SmallRng::seed_from_u64(20_261_122);
        for case in 0..5_000 {
            let form: String = (0..rng.random_range(0..12))
                .map(|_| PIECES[rng.random_range(0..PIECES.len())])
                .collect();
            // Cut into frames at random byte offsets (a frame may split a character).
            let bytes = form.as_bytes();
            let mut cuts: Vec<usize> = (0..rng.random_range(0..4))
                .map(|_| rng.random_range(0..=bytes.len()))
                .collect();
            cuts.extend([0, bytes.len()]);
            cuts.sort_unstable();
            let frames: Vec<Result<Bytes, std::io::Error>> = cuts
                .windows(2)
                .map(|cut| Ok(Bytes::copy_from_slice(&bytes[cut[0]..cut[1]])))
                .collect();
            let body = Body::from_stream(futures_util::stream::iter(frames));
            let (token, body) = urlencoded_token(body).await.unwrap();
            let expected = form_field(bytes, CSRF_FORM_FIELD);
            assert_eq!(token, expected, "case {case}: {form:?} cut at {cuts:?}");
            assert_eq!(
                body.collect().await.unwrap().to_bytes(),
                bytes,
                "case {case}: the form is handed on whole"
            );
        }
    }

    #[tokio::test]
    async fn a_token_first_is_found_in_a_form_past_the_search_limit() {
        let padding = "p".repeat(TOKEN_SEARCH_LIMIT + 10);
        let form = format!("_csrf=early&padding={padding}");
        let frames: Vec<Result<Bytes, std::io::Error>> = form
            .as_bytes()
            .chunks(64 * 1024)
            .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
            .collect();
        let body = Body::from_stream(futures_util::stream::iter(frames));
        let (token, body) = urlencoded_token(body).await.unwrap();
        assert_eq!(token.as_deref(), Some("early"));
        assert_eq!(body.collect().await.unwrap().to_bytes(), form.as_bytes());

        let late = format!("padding={padding}&_csrf=late");
        let (token, body) = urlencoded_token(Body::from(late.clone())).await.unwrap();
        assert_eq!(token, None, "past the search limit");
        assert_eq!(body.collect().await.unwrap().to_bytes(), late.as_bytes());
    }

    #[test]
    fn a_token_is_bound_to_its_cookie() {
        let keys = CsrfKeys::new(b"secret");
        let cookie = CsrfKeys::new_cookie_value();
        let token = keys.token_for(&cookie);
        assert!(keys.verify(&token, &cookie));
        assert!(!keys.verify(&token, &CsrfKeys::new_cookie_value()));
        assert!(!CsrfKeys::new(b"other").verify(&token, &cookie));
        assert!(!keys.verify("garbage", &cookie));
        assert!(!keys.verify("", &cookie));
        assert_ne!(token, keys.token_for(&cookie), "tokens are salted");
    }

    #[test]
    fn origins_compare_with_the_host() {
        let same =
            |o: &'static str| is_same_origin(&HeaderValue::from_static(o), Some("127.0.0.1:3000"));
        assert!(same("http://127.0.0.1:3000"));
        assert!(same("https://127.0.0.1:3000"));
        assert!(!same("http://127.0.0.1:3001"));
        assert!(!same("http://evil.example"));
        assert!(!same("null"));
    }

    #[test]
    fn the_own_authority_is_the_targets_else_the_host_header() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("api.example"));
        // HTTP/2 (`:authority`) and absolute-form HTTP/1.1 name it in the target.
        let absolute: Uri = "https://app.example:8443/api/posts".parse().unwrap();
        assert_eq!(own_authority(&absolute, &headers), Some("app.example:8443"));
        assert_eq!(
            own_authority(&absolute, &HeaderMap::new()),
            Some("app.example:8443")
        );
        let origin_form: Uri = "/api/posts".parse().unwrap();
        assert_eq!(own_authority(&origin_form, &headers), Some("api.example"));
        assert_eq!(own_authority(&origin_form, &HeaderMap::new()), None);
    }
}
