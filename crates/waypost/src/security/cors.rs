//! CORS: an allow-list of origins, exact matches only, always with credentials.
//!
//! Written against the contract rather than through tower-http's `CorsLayer`, because that
//! layer answers *every* `OPTIONS` as a preflight with 200 — which would swallow Waypost's
//! automatic `OPTIONS` (204 + `Allow`) — and sends `Access-Control-Allow-Credentials` even to
//! origins it refuses. Here a preflight is `OPTIONS` + `Origin` + `Access-Control-Request-Method`;
//! an allowed one gets 204 with the CORS headers, a refused one gets no CORS header at all and
//! continues to the route like any other `OPTIONS`. `*` is refused at start-up, since it can never
//! be combined with credentials.

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;

use crate::config::ConfigError;

/// The methods a preflight may ask for.
const ALLOW_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
/// The request headers a cross-origin request may send.
const ALLOW_HEADERS: &str =
    "Content-Type, Authorization, X-CSRF-Token, X-Request-Id, Idempotency-Key";
/// The response headers a cross-origin script may read.
const EXPOSE_HEADERS: &str =
    "X-Request-Id, RateLimit, RateLimit-Policy, Retry-After, Idempotent-Replayed";
/// How long a browser may cache a preflight answer: one day.
const MAX_AGE: &str = "86400";

/// The origins allowed to call the API from a browser.
#[derive(Clone, Debug, Default)]
pub struct CorsPolicy {
    origins: Vec<HeaderValue>,
}

impl CorsPolicy {
    /// A policy allowing exactly `origins` (`scheme://host[:port]`).
    ///
    /// # Errors
    /// `*`, `null`, or anything that is not an origin: naming `CORS_ORIGINS`.
    pub fn new<I, O>(origins: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = O>,
        O: AsRef<str>,
    {
        let mut parsed = Vec::new();
        for origin in origins {
            let origin = origin.as_ref().trim();
            if origin == "*" {
                return Err(ConfigError::invalid(
                    "CORS_ORIGINS",
                    origin,
                    "`*` cannot be combined with credentials; list the origins",
                ));
            }
            let normalized = normalize_origin(origin).ok_or_else(|| {
                ConfigError::invalid(
                    "CORS_ORIGINS",
                    origin,
                    "expected an origin like https://app.example.com",
                )
            })?;
            parsed.push(HeaderValue::from_str(&normalized).map_err(|_| {
                ConfigError::invalid("CORS_ORIGINS", origin, "not a valid header value")
            })?);
        }
        Ok(Self { origins: parsed })
    }

    /// Whether any origin is allowed.
    pub fn is_enabled(&self) -> bool {
        !self.origins.is_empty()
    }

    /// Whether `origin` (as sent in the `Origin` header) is on the list: byte for byte as a
    /// browser serialises it (lower case, no default port, no trailing slash), which is how the
    /// list is kept. Any other spelling comes from no browser and gets no CORS headers, so the
    /// `Access-Control-Allow-Origin` echoed is always exactly a listed origin.
    pub fn allows(&self, origin: &HeaderValue) -> bool {
        self.origins.iter().any(|allowed| allowed == origin)
    }

    /// The answer to a preflight from an allowed origin, or `None` when the request is not a
    /// preflight or its origin is not allowed.
    pub fn preflight(&self, method: &Method, headers: &HeaderMap) -> Option<Response> {
        self.preflight_origin(method, headers)
            .map(Self::preflight_answer)
    }

    /// The `Origin` of a preflight from an allowed origin; `None` when the request is not a
    /// preflight or its origin is not allowed.
    pub(crate) fn preflight_origin<'h>(
        &self,
        method: &Method,
        headers: &'h HeaderMap,
    ) -> Option<&'h HeaderValue> {
        if method != Method::OPTIONS || !headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return None;
        }
        headers
            .get(header::ORIGIN)
            .filter(|origin| self.allows(origin))
    }

    /// The 204 that answers a preflight from `origin`, an allowed one.
    pub(crate) fn preflight_answer(origin: &HeaderValue) -> Response {
        let mut response = Response::new(axum::body::Body::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        let out = response.headers_mut();
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        out.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        out.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        out.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        out.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(MAX_AGE),
        );
        out.insert(
            header::VARY,
            HeaderValue::from_static(
                "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
            ),
        );
        response
    }

    /// Adds the CORS headers to an actual (non-preflight) response.
    pub fn decorate(&self, origin: Option<&HeaderValue>, response: &mut Response) {
        if !self.is_enabled() {
            return;
        }
        let headers = response.headers_mut();
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = origin.filter(|origin| self.allows(origin)) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSE_HEADERS),
            );
        }
    }
}

/// `scheme://host[:port]` in lower case without a default port or trailing slash, or `None`
/// when `origin` is not an http(s) origin.
pub(crate) fn normalize_origin(origin: &str) -> Option<String> {
    let (scheme, rest) = origin.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty()
        || authority.contains(['/', '?', '#', '@', ' '])
        || authority.starts_with(':')
    {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    let default_port = if scheme == "http" { ":80" } else { ":443" };
    let authority = authority.strip_suffix(default_port).unwrap_or(&authority);
    Some(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_and_garbage_refuse_to_start() {
        assert!(CorsPolicy::new(["*"]).is_err());
        assert!(CorsPolicy::new(["null"]).is_err());
        assert!(CorsPolicy::new(["app.example.com"]).is_err());
        assert!(CorsPolicy::new(["https://app.example.com/path"]).is_err());
        let error = CorsPolicy::new(["*"]).unwrap_err().to_string();
        assert!(error.contains("CORS_ORIGINS"), "{error}");
    }

    #[test]
    fn only_exact_origins_are_allowed() {
        let policy = CorsPolicy::new(["https://app.example.com", "http://localhost:5173"]).unwrap();
        let allows = |o: &'static str| policy.allows(&HeaderValue::from_static(o));
        assert!(allows("https://app.example.com"));
        assert!(allows("http://localhost:5173"));
        // Spellings no browser sends: nothing to echo back.
        assert!(!allows("https://APP.example.com"));
        assert!(!allows("https://app.example.com:443"));
        assert!(!allows("https://app.example.com/"));
        assert!(!allows("http://app.example.com"));
        assert!(!allows("https://app.example.com.evil.com"));
        assert!(!allows("https://evilapp.example.com"));
        assert!(!allows("https://app.example.co"));
        assert!(!allows("http://localhost:5174"));
        assert!(!allows("null"));
    }
}
