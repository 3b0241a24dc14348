//! The app-wide security gate, run by the front layer around every request: it refuses
//! WebSocket handshakes from foreign origins, marks CORS preflights for the route's guard to
//! answer, resolves who is calling (session cookie or
//! bearer JWT) into an [`Identity`], and on the way out adds the CORS headers and marks `Cache-Control: no-store` on responses to
//! requests that presented credentials — and on responses that set a cookie (a login's session,
//! a CSRF secret) — so no shared cache keeps them or hands them to someone else. A handler's own
//! directives are kept (a stream's `no-cache` stays); `no-store` is added to them.

use axum::{
    extract::Request,
    http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};

use super::{
    auth::{Credential, CredentialRejected, Identity},
    Security, SESSION_COOKIE,
};
use crate::ApiError;

/// What the gate decided before the handler.
pub(crate) enum Gate {
    /// Answer this instead of routing.
    Answer(Response),
    /// Refuse the request with this error, instead of routing.
    Refuse(ApiError),
    /// Route the request (noting what the answer needs, when the gate ran).
    Pass(Option<Passed>),
    /// Look the session cookie up in the store ([`resolve_session`]), then route.
    LookUpSession { session: String, passed: Passed },
}

/// Which of the headers the gate reads a request carries. The front layer notes them in its one
/// pass over the header section, so the gate hashes its way only to headers that are there —
/// most API requests carry neither `Origin`, `Cookie` nor `Authorization`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct GateHeaders {
    pub(crate) origin: bool,
    pub(crate) cookie: bool,
    pub(crate) authorization: bool,
    pub(crate) upgrade: bool,
}

impl GateHeaders {
    /// Notes `name` if it is one the gate reads.
    pub(crate) fn note(&mut self, name: &HeaderName) {
        if name == header::ORIGIN {
            self.origin = true;
        } else if name == header::COOKIE {
            self.cookie = true;
        } else if name == header::AUTHORIZATION {
            self.authorization = true;
        } else if name == header::UPGRADE {
            self.upgrade = true;
        }
    }
}

/// What the response of a request that passed the gate needs.
#[derive(Debug)]
pub(crate) struct Passed {
    /// The request's `Origin`, when CORS is on.
    origin: Option<HeaderValue>,
    /// Whether the request presented credentials.
    pub(crate) presented: bool,
    /// Whether it is a CORS preflight from an allowed origin (see [`CorsPreflight`]).
    preflight: bool,
}

/// Marks a CORS preflight from an allowed origin. It is routed like any request, so a path
/// with no route is 404; a route's guard answers it at once — no handler runs, a user's own
/// `options` included, and the rate limit does not count it — and [`finish`] makes that answer
/// the preflight's 204 with the CORS headers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CorsPreflight;

fn bearer_token(request: &Request) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|token| !token.is_empty())
}

/// Runs before routing, on the spot: a preflight is marked for its route's guard; a bearer
/// token is checked and the resulting [`Identity`] (or the note that it was rejected) put in
/// the request; a session cookie is handed back to be looked up.
pub(crate) fn admit(security: &Security, request: &mut Request, present: GateHeaders) -> Gate {
    // A browser sends the page's cookies with a WebSocket handshake from any site, and the
    // same-origin policy does not cover WebSockets: a handshake is judged as an unsafe request is
    // for CSRF, by where it comes from (cross-site WebSocket hijacking).
    if (present.upgrade && is_websocket_handshake(request.headers()))
        || is_websocket_over_http2(request)
    {
        if let Err(refused) =
            super::csrf::check_provenance(request.uri(), request.headers(), security.cors())
        {
            return Gate::Refuse(refused);
        }
    }
    // Without `Origin` the request is neither a preflight nor cross-origin: no CORS work.
    let preflight = present
        .origin
        .then(|| {
            security
                .cors()
                .preflight_origin(request.method(), request.headers())
                .cloned()
        })
        .flatten();
    if let Some(origin) = preflight {
        request.extensions_mut().insert(CorsPreflight);
        return Gate::Pass(Some(Passed {
            origin: Some(origin),
            presented: false,
            preflight: true,
        }));
    }
    let origin = (present.origin && security.cors().is_enabled())
        .then(|| request.headers().get(header::ORIGIN).cloned())
        .flatten();
    if let Some(token) = present
        .authorization
        .then(|| bearer_token(request))
        .flatten()
    {
        let passed = Passed {
            origin,
            presented: true,
            preflight: false,
        };
        return match security.jwt().verify(token) {
            Ok(claims) => {
                request.extensions_mut().insert(Identity {
                    user_id: claims.sub.into(),
                    credential: Credential::Bearer,
                });
                Gate::Pass(Some(passed))
            }
            // Judged where the caller matters (`Auth`, `MaybeAuth`), not here: a 404, a 405, a
            // login or a public answer stays what it is, and the rate limit counts the request
            // by address.
            Err(_) => {
                request.extensions_mut().insert(CredentialRejected::Bearer);
                Gate::Pass(Some(passed))
            }
        };
    }
    let passed = Passed {
        origin,
        presented: false,
        preflight: false,
    };
    let session = present
        .cookie
        .then(|| super::request_cookie(request.headers(), SESSION_COOKIE))
        .flatten();
    match session {
        Some(session) => Gate::LookUpSession {
            session,
            passed: Passed {
                presented: true,
                ..passed
            },
        },
        None => Gate::Pass(Some(passed)),
    }
}

/// Whether `headers` ask for a WebSocket: an `Upgrade` header naming `websocket` among its
/// protocols.
fn is_websocket_handshake(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::UPGRADE)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&byte| byte == b','))
        .any(|protocol| protocol.trim_ascii().eq_ignore_ascii_case(b"websocket"))
}

/// Whether `request` opens a WebSocket over HTTP/2 (RFC 8441): a `CONNECT` whose `:protocol`
/// is `websocket`. It carries no `Upgrade` header; only a server that enables extended CONNECT
/// receives one (Waypost's own does not), but a router served some other way may.
fn is_websocket_over_http2(request: &Request) -> bool {
    request.method() == axum::http::Method::CONNECT
        && request
            .extensions()
            .get::<hyper::ext::Protocol>()
            .is_some_and(|protocol| protocol.as_str().eq_ignore_ascii_case("websocket"))
}

/// Looks the session cookie up and puts the [`Identity`] (or the note that it was rejected) in
/// the request; `Err` is the answer to send when the store fails.
pub(crate) async fn resolve_session(
    security: &Security,
    request: &mut Request,
    session: String,
) -> Result<(), Response> {
    match security.session_user(&session).await {
        Ok(Some(user_id)) => {
            request.extensions_mut().insert(Identity {
                user_id: user_id.into(),
                credential: Credential::Session(session.into()),
            });
        }
        Ok(None) => {
            request.extensions_mut().insert(CredentialRejected::Session);
        }
        Err(error) => return Err(error.into_response()),
    }
    Ok(())
}

/// Runs on the response of a request that passed the gate.
pub(crate) fn finish(security: &Security, passed: &Passed, response: &mut Response) {
    if passed.preflight && response.status() != StatusCode::NOT_FOUND {
        // A route's guard admitted the preflight: answer it.
        if let Some(origin) = &passed.origin {
            *response = super::cors::CorsPolicy::preflight_answer(origin);
            return;
        }
    }
    // A response has a handful of headers: looking through them beats hashing the name.
    if passed.presented
        || response
            .headers()
            .keys()
            .any(|name| name == header::SET_COOKIE)
    {
        forbid_storing(response.headers_mut());
    }
    security.cors().decorate(passed.origin.as_ref(), response);
}

/// Adds `no-store` to the response's `Cache-Control`, keeping the directives already there.
fn forbid_storing(headers: &mut HeaderMap) {
    let current: Vec<&str> = headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|directive| !directive.is_empty())
        .collect();
    if current
        .iter()
        .any(|directive| directive.eq_ignore_ascii_case("no-store"))
    {
        return;
    }
    let merged = current
        .into_iter()
        .chain(["no-store"])
        .collect::<Vec<_>>()
        .join(", ");
    let value = HeaderValue::from_str(&merged).unwrap_or(HeaderValue::from_static("no-store"));
    headers.insert(header::CACHE_CONTROL, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(values: &[&'static str]) -> HeaderValue {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::CACHE_CONTROL, HeaderValue::from_static(value));
        }
        forbid_storing(&mut headers);
        assert_eq!(headers.get_all(header::CACHE_CONTROL).iter().count(), 1);
        headers[header::CACHE_CONTROL].clone()
    }

    #[test]
    fn websocket_handshakes_are_known_over_http1_and_http2() {
        let upgrade = |values: &[&'static str]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append(header::UPGRADE, HeaderValue::from_static(value));
            }
            is_websocket_handshake(&headers)
        };
        assert!(upgrade(&["websocket"]));
        assert!(upgrade(&["WebSocket"]));
        assert!(upgrade(&["h2c, websocket"]));
        assert!(upgrade(&["h2c", "websocket"]));
        assert!(!upgrade(&["h2c"]));
        assert!(!upgrade(&["websockets"]));
        let connect = |protocol: Option<&'static str>| {
            let mut request = Request::new(axum::body::Body::empty());
            *request.method_mut() = axum::http::Method::CONNECT;
            if let Some(protocol) = protocol {
                request
                    .extensions_mut()
                    .insert(hyper::ext::Protocol::from_static(protocol));
            }
            is_websocket_over_http2(&request)
        };
        assert!(connect(Some("websocket")));
        assert!(!connect(Some("webtransport")));
        assert!(!connect(None));
    }

    #[test]
    fn no_store_is_added_to_a_handlers_own_directives() {
        assert_eq!(after(&[]), "no-store");
        assert_eq!(after(&["no-cache"]), "no-cache, no-store");
        assert_eq!(
            after(&["public, max-age=60"]),
            "public, max-age=60, no-store"
        );
        assert_eq!(after(&["private, no-store"]), "private, no-store");
        assert_eq!(after(&["private, No-Store"]), "private, No-Store");
        assert_eq!(
            after(&["private", "max-age=0"]),
            "private, max-age=0, no-store"
        );
    }
}
