//! Calling backends: an upstream HTTP client with safe defaults, and a proxy for backends that
//! hand out a per-session token first (the Drupal pattern: Deep Chat in front of Drupal).
//!
//! Safe defaults, for every upstream call: redirects are never followed (a backend cannot send
//! the server somewhere else), connects and reads time out, and requests are built from scratch
//! — nothing the client sent is copied upstream except the body the route chooses to forward,
//! so no hop-by-hop or internal header leaks, and the host is always the configured one.
//!
//! The token proxy keeps one token per user: fetched with `POST <backend><session_path>`
//! (bearer = the user's JWT), kept together with the session cookie the backend set in that
//! reply (Drupal binds the token to that session), cached for a TTL, fetched once when several
//! first requests of one user arrive together (single flight), and never shared between users.
//! A 403 from the backend means the token went stale: it is fetched again once and the call
//! retried once.

use std::{
    collections::HashMap,
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use axum::{
    body::{Body, Bytes},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use url::Url;

use crate::{config::ConfigError, ApiError};

/// An HTTP client for backends: no redirects, `connect` and per-read timeouts.
///
/// # Panics
/// When the TLS backend cannot be initialised (it always can with the bundled rustls).
pub fn upstream_client(read_timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(read_timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .user_agent(concat!("waypost/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client builds")
}

/// The bytes RFC 3986 (§2.3) leaves unencoded: letters, digits, `-`, `.`, `_`, `~`.
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `text` (as UTF-8) with every byte but RFC 3986's unreserved characters percent-encoded — a
/// space is `%20`, not the form encoding's `+`, which only servers reading queries as forms
/// take for a space. Safe as a query value, as a path segment, and as an RFC 8187 value
/// (`filename*=UTF-8''…`), whose `attr-char`s include all of these.
pub fn percent_encode_component(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, UNRESERVED).to_string()
}

/// Parses a backend base URL from `variable` (http or https, no query or fragment).
///
/// # Errors
/// Anything else; the message names the variable.
pub fn parse_backend_url(variable: &str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw.trim())
        .map_err(|error| ConfigError::invalid(variable, raw, error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::invalid(
            variable,
            raw,
            "expected an http(s) URL",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::invalid(
            variable,
            raw,
            "must not carry a query or fragment",
        ));
    }
    Ok(url)
}

/// `base` with `path` appended to its own path (`https://x/drupal` + `/api/a`).
pub fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!(
        "{}/{}",
        base.path().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    url.set_path(&joined);
    url
}

/// The most an upstream answer read whole (JSON, a token) may hold: 1 MiB. Streams relayed to
/// the client are not read whole and have no such cap.
pub const MAX_UPSTREAM_BODY: usize = 1024 * 1024;

/// Reads an upstream answer whole, refusing one larger than [`MAX_UPSTREAM_BODY`] as it
/// arrives (a misbehaving backend cannot make the server buffer without bound).
///
/// # Errors
/// 502 `upstream_failed` when the body is too large or breaks off.
pub async fn read_body(response: reqwest::Response) -> Result<Bytes, ApiError> {
    use futures_util::StreamExt;
    if response
        .content_length()
        .is_some_and(|length| length > MAX_UPSTREAM_BODY as u64)
    {
        return Err(upstream_failed("the upstream answer is larger than 1 MiB"));
    }
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(upstream_failed)?;
        if body.len() + chunk.len() > MAX_UPSTREAM_BODY {
            return Err(upstream_failed("the upstream answer is larger than 1 MiB"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// Reads an upstream JSON answer whole (within [`MAX_UPSTREAM_BODY`]) as `T`.
///
/// # Errors
/// 502 `upstream_failed` when it is too large, breaks off, or is not `T`.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, ApiError> {
    let body = read_body(response).await?;
    serde_json::from_slice(&body).map_err(upstream_failed)
}

/// A failed upstream call, as the client sees it: 502 `upstream_failed`.
pub fn upstream_failed(reason: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> ApiError {
    ApiError::upstream_failed(reason)
}

/// A token a backend issued, with the session cookie it is bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendToken {
    /// The token, as the backend sent it.
    pub token: String,
    /// `name=value` pairs of the cookies the backend set with it, joined for a `Cookie` header.
    pub cookie: Option<String>,
}

struct Entry {
    token: Arc<BackendToken>,
    fetched: Instant,
}

/// One user's place in the cache.
#[derive(Default)]
struct Slot {
    /// How many fetches for this user have ended, read before waiting for `state`: a caller
    /// that finds it moved on while it waited knows a fetch ran meanwhile.
    fetches_ended: AtomicU64,
    state: tokio::sync::Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    token: Option<Entry>,
    /// Whether the last fetch that ended failed.
    last_fetch_failed: bool,
}

/// Tokens per user, with a TTL and single-flight fetching.
pub struct TokenCache {
    ttl: Duration,
    slots: Mutex<Slots>,
}

/// The users' slots, and how many there may be before the next sweep.
struct Slots {
    by_user: HashMap<String, Arc<Slot>>,
    /// At least [`SWEEP_ABOVE`], and twice what the last sweep kept: with many live tokens a
    /// sweep keeps most of them, and sweeping again on the next new user would cost a pass over
    /// all of them per new user, under the lock.
    sweep_at: usize,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Past this many users, idle and expired entries are dropped when a new user arrives.
const SWEEP_ABOVE: usize = 10_000;

impl TokenCache {
    /// An empty cache whose tokens live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slots: Mutex::new(Slots {
                by_user: HashMap::new(),
                sweep_at: SWEEP_ABOVE,
            }),
        }
    }

    fn slot(&self, user: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = slots.by_user.get(user) {
            return slot.clone();
        }
        if slots.by_user.len() >= slots.sweep_at {
            let ttl = self.ttl;
            // A slot stays while it holds a live token or anyone holds it: a caller that took
            // it and has not locked it yet must find the same slot as the callers after it, or
            // two fetches would run for one user.
            slots.by_user.retain(|_, slot| {
                Arc::strong_count(slot) > 1
                    || match slot.state.try_lock() {
                        Ok(state) => state
                            .token
                            .as_ref()
                            .is_some_and(|e| e.fetched.elapsed() < ttl),
                        Err(_) => true,
                    }
            });
            slots.sweep_at = SWEEP_ABOVE.max(2 * slots.by_user.len());
        }
        slots.by_user.entry(user.to_owned()).or_default().clone()
    }

    /// `user`'s token, fetched with `fetch` when there is none or it expired. Concurrent
    /// callers for one user wait for a single fetch, and share its outcome: when it fails,
    /// those that waited for it fail too rather than each trying again in turn.
    ///
    /// # Errors
    /// `fetch`'s error (nothing is cached then); 502 `upstream_failed` for a caller that
    /// waited for a fetch that failed.
    pub async fn get_or_fetch<F, Fut>(
        &self,
        user: &str,
        fetch: F,
    ) -> Result<Arc<BackendToken>, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<BackendToken, ApiError>>,
    {
        self.settle(user, |_| true, fetch).await
    }

    /// Replaces `stale` (a token the backend refused) with a fresh one — unless another request
    /// already did, in which case that newer token is returned without a fetch. Concurrent
    /// callers share one fetch, as with [`get_or_fetch`](Self::get_or_fetch).
    ///
    /// # Errors
    /// As [`get_or_fetch`](Self::get_or_fetch) (the stale token is dropped either way).
    pub async fn refresh<F, Fut>(
        &self,
        user: &str,
        stale: &Arc<BackendToken>,
        fetch: F,
    ) -> Result<Arc<BackendToken>, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<BackendToken, ApiError>>,
    {
        self.settle(user, |token| !Arc::ptr_eq(token, stale), fetch)
            .await
    }

    /// The cached token when it is fresh and `usable`; else the outcome of the fetch this caller
    /// waited for, if one ended meanwhile and failed; else a fetch of its own.
    async fn settle<F, Fut>(
        &self,
        user: &str,
        usable: impl Fn(&Arc<BackendToken>) -> bool,
        fetch: F,
    ) -> Result<Arc<BackendToken>, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<BackendToken, ApiError>>,
    {
        let slot = self.slot(user);
        let ended_before = slot.fetches_ended.load(Ordering::Acquire);
        let mut state = slot.state.lock().await;
        if let Some(current) = state
            .token
            .as_ref()
            .filter(|e| e.fetched.elapsed() < self.ttl && usable(&e.token))
        {
            return Ok(current.token.clone());
        }
        if state.last_fetch_failed && slot.fetches_ended.load(Ordering::Acquire) != ended_before {
            return Err(upstream_failed(
                "the token fetch this request waited for failed",
            ));
        }
        state.token = None;
        let fetched = fetch().await;
        state.last_fetch_failed = fetched.is_err();
        slot.fetches_ended.fetch_add(1, Ordering::Release);
        let token = Arc::new(fetched?);
        state.token = Some(Entry {
            token: token.clone(),
            fetched: Instant::now(),
        });
        Ok(token)
    }
}

/// Where a token-protected backend takes its token and its calls.
#[derive(Clone, Copy, Debug)]
pub struct TokenRoutes {
    /// `POST` here (with the bearer) answers the token as plain text.
    pub session_path: &'static str,
    /// `POST` here with `?token=<token>`, the bearer and the session cookie.
    pub endpoint_path: &'static str,
}

/// A backend that wants a per-session token on every call.
pub struct TokenProxy {
    client: reqwest::Client,
    base: Url,
    routes: TokenRoutes,
    tokens: TokenCache,
    call_timeout: Duration,
}

impl std::fmt::Debug for TokenProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenProxy")
            .field("base", &self.base.as_str())
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

impl TokenProxy {
    /// A proxy to `base` whose tokens live `token_ttl`. Each step of an exchange gets
    /// `call_timeout`: a token fetch for the whole of it, a call until the backend's answer
    /// starts, an answer read whole ([`TokenProxy::call_json`]) for reading it, and a relayed
    /// stream between two reads (a stream may last as long as it keeps sending). A call refused
    /// with 403 takes those steps once more, with a fresh token, so one exchange may last a few
    /// times `call_timeout`.
    pub fn new(
        base: Url,
        routes: TokenRoutes,
        token_ttl: Duration,
        call_timeout: Duration,
    ) -> Self {
        Self {
            client: upstream_client(call_timeout),
            base,
            routes,
            tokens: TokenCache::new(token_ttl),
            call_timeout,
        }
    }

    /// `user`'s token (from the cache, or fetched once).
    ///
    /// # Errors
    /// 502 `upstream_failed` when the backend does not hand one out.
    pub async fn token(&self, user: &str, bearer: &str) -> Result<Arc<BackendToken>, ApiError> {
        self.tokens
            .get_or_fetch(user, || self.fetch_token(bearer))
            .await
    }

    async fn fetch_token(&self, bearer: &str) -> Result<BackendToken, ApiError> {
        let response = self
            .client
            .post(join(&self.base, self.routes.session_path))
            .bearer_auth(bearer)
            .timeout(self.call_timeout)
            .send()
            .await
            .map_err(upstream_failed)?;
        if !response.status().is_success() {
            return Err(upstream_failed(format!(
                "token endpoint answered {}",
                response.status()
            )));
        }
        let cookies: Vec<String> = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .filter_map(|value| value.split(';').next())
            .map(|pair| pair.trim().to_owned())
            .filter(|pair| pair.contains('='))
            .collect();
        let token = String::from_utf8_lossy(&read_body(response).await?)
            .trim()
            .to_owned();
        if token.is_empty() {
            return Err(upstream_failed(
                "the token endpoint answered an empty token",
            ));
        }
        Ok(BackendToken {
            token,
            cookie: (!cookies.is_empty()).then(|| cookies.join("; ")),
        })
    }

    async fn call_with(
        &self,
        token: &BackendToken,
        bearer: &str,
        body: &Bytes,
    ) -> Result<reqwest::Response, ApiError> {
        let mut url = join(&self.base, self.routes.endpoint_path);
        url.query_pairs_mut().append_pair("token", &token.token);
        let mut request = self
            .client
            .post(url)
            .bearer_auth(bearer)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.clone());
        if let Some(cookie) = &token.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        // Not the request's own timeout, which would also cut a relayed stream short.
        within(self.call_timeout, request.send())
            .await?
            .map_err(upstream_failed)
    }

    /// Sends `body` (JSON) to the endpoint for `user`, refreshing the token and retrying once
    /// on a 403. The backend's response when it succeeded.
    ///
    /// # Errors
    /// 502 `upstream_failed` for a transport error, a timeout, a redirect or a non-2xx answer.
    pub async fn call(
        &self,
        user: &str,
        bearer: &str,
        body: Bytes,
    ) -> Result<reqwest::Response, ApiError> {
        let token = self.token(user, bearer).await?;
        let mut response = self.call_with(&token, bearer, &body).await?;
        if response.status() == StatusCode::FORBIDDEN {
            let fresh = self
                .tokens
                .refresh(user, &token, || self.fetch_token(bearer))
                .await?;
            response = self.call_with(&fresh, bearer, &body).await?;
        }
        if !response.status().is_success() {
            return Err(upstream_failed(format!(
                "backend answered {}",
                response.status()
            )));
        }
        Ok(response)
    }

    /// [`TokenProxy::call`], then the backend's JSON answer read whole as `T` (within
    /// [`MAX_UPSTREAM_BODY`]) in at most `call_timeout`: a backend that trickles its answer
    /// one byte at a time cannot hold the request for longer.
    ///
    /// # Errors
    /// 502 `upstream_failed` as for `call`, and when the answer is not `T`, too large, or too
    /// slow.
    pub async fn call_json<T: serde::de::DeserializeOwned>(
        &self,
        user: &str,
        bearer: &str,
        body: Bytes,
    ) -> Result<T, ApiError> {
        let response = self.call(user, bearer, body).await?;
        self.read_json(response).await
    }

    /// A backend answer read whole as `T` (within [`MAX_UPSTREAM_BODY`]) in at most
    /// `call_timeout`.
    ///
    /// # Errors
    /// 502 `upstream_failed` when the answer is not `T`, too large, or too slow.
    pub async fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        response: reqwest::Response,
    ) -> Result<T, ApiError> {
        within(self.call_timeout, read_json(response)).await?
    }
}

/// `work`'s output, or 502 `upstream_failed` once `limit` has passed.
async fn within<T>(limit: Duration, work: impl Future<Output = T>) -> Result<T, ApiError> {
    tokio::time::timeout(limit, work).await.map_err(|_| {
        upstream_failed(format!(
            "the backend did not answer within {} ms",
            limit.as_millis()
        ))
    })
}

/// The media type an upstream answer is labeled with, without its parameters and in lower
/// case (`text/event-stream`, `application/json`); `None` when it has no `Content-Type`.
pub fn media_type(upstream: &reqwest::Response) -> Option<String> {
    let value = upstream
        .headers()
        .get(header::CONTENT_TYPE)?
        .to_str()
        .ok()?;
    let essence = value.split(';').next().unwrap_or_default().trim();
    Some(essence.to_ascii_lowercase())
}

/// Relays an upstream event stream to the client as it arrives, event by event.
///
/// Only an event stream is relayed: an answer labeled as anything else — a backend's HTML error
/// page, a JSON document, garbage — is never served from this origin in its place, but refused.
/// An unlabeled answer is taken for the stream that was asked for.
///
/// # Errors
/// 502 `upstream_failed` for an answer labeled other than `text/event-stream`.
pub fn relay_event_stream(upstream: reqwest::Response) -> Result<Response, ApiError> {
    match media_type(&upstream).as_deref() {
        None | Some("text/event-stream") => {}
        Some(other) => {
            return Err(upstream_failed(format!(
                "the backend answered {other} where an event stream was asked for"
            )))
        }
    }
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        )],
        Body::from_stream(upstream.bytes_stream()),
    )
        .into_response();
    crate::stream::no_buffering(&mut response);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn token(text: &str) -> BackendToken {
        BackendToken {
            token: text.to_owned(),
            cookie: None,
        }
    }

    #[tokio::test]
    async fn with_many_live_tokens_a_sweep_is_not_repeated_for_each_new_user() {
        let cache = TokenCache::new(Duration::from_secs(1200));
        for user in 0..SWEEP_ABOVE + 1 {
            cache
                .get_or_fetch(&user.to_string(), || async { Ok(token("live")) })
                .await
                .unwrap();
        }
        // The sweep at the 10 000th kept them all: the next one is at twice that.
        let sweep_at = cache.slots.lock().unwrap().sweep_at;
        assert_eq!(sweep_at, 2 * SWEEP_ABOVE);
        // An idle slot (no token) is what a sweep drops; none is dropped before then.
        cache.slot("no token yet");
        assert_eq!(cache.slots.lock().unwrap().by_user.len(), SWEEP_ABOVE + 2);
    }

    #[test]
    fn components_are_encoded_all_but_the_unreserved_characters() {
        assert_eq!(percent_encode_component("Az09-._~"), "Az09-._~");
        assert_eq!(
            percent_encode_component("São Paulo+1 &q=*'(x)/%"),
            "S%C3%A3o%20Paulo%2B1%20%26q%3D%2A%27%28x%29%2F%25"
        );
    }

    #[test]
    fn a_sweep_keeps_a_slot_a_caller_holds_before_locking_it() {
        let cache = TokenCache::new(Duration::from_secs(1200));
        for user in 0..SWEEP_ABOVE - 1 {
            cache.slot(&user.to_string());
        }
        // Alice's first request has its slot and has not locked it yet when a new user's
        // arrival sweeps the idle slots.
        let held = cache.slot("alice");
        cache.slot("bob");
        assert_eq!(cache.slots.lock().unwrap().by_user.len(), 2);
        assert!(Arc::ptr_eq(&held, &cache.slot("alice")));
    }

    /// Five concurrent first requests of `alice`, whose fetch takes 50 ms and ends with
    /// `outcome`: what each got, and how many fetches ran.
    async fn five_first_requests(
        cache: &Arc<TokenCache>,
        outcome: fn() -> Result<BackendToken, ApiError>,
    ) -> (Vec<Result<Arc<BackendToken>, ApiError>>, usize) {
        let fetches = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..5)
            .map(|_| {
                let (cache, fetches) = (cache.clone(), fetches.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_fetch("alice", || async {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            outcome()
                        })
                        .await
                })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        (results, fetches.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn concurrent_first_requests_of_one_user_fetch_once() {
        let cache = Arc::new(TokenCache::new(Duration::from_secs(60)));
        let (results, fetches) = five_first_requests(&cache, || Ok(token("t1"))).await;
        for result in results {
            assert_eq!(result.unwrap().token, "t1");
        }
        assert_eq!(fetches, 1);
        let bob = cache
            .get_or_fetch("bob", || async { Ok(token("t2")) })
            .await
            .unwrap();
        assert_eq!(bob.token, "t2", "users never share a token");
    }

    #[tokio::test]
    async fn a_failed_fetch_fails_those_that_waited_for_it_and_the_next_request_tries_again() {
        let cache = Arc::new(TokenCache::new(Duration::from_secs(60)));
        let (results, fetches) =
            five_first_requests(&cache, || Err(upstream_failed("the backend is down"))).await;
        for result in results {
            let error = result.unwrap_err();
            assert_eq!(error.status(), axum::http::StatusCode::BAD_GATEWAY);
            assert_eq!(error.code(), "upstream_failed");
        }
        assert_eq!(fetches, 1, "one fetch for all five");
        // A request that arrives after the failure fetches again, and its token is kept.
        let token = cache
            .get_or_fetch("alice", || async { Ok(token("back")) })
            .await
            .unwrap();
        assert_eq!(token.token, "back");
        let cached = cache
            .get_or_fetch("alice", || async {
                Err(ApiError::internal("must not fetch"))
            })
            .await
            .unwrap();
        assert_eq!(cached.token, "back");
    }

    #[tokio::test]
    async fn a_refresh_replaces_only_the_stale_token() {
        let cache = TokenCache::new(Duration::from_secs(60));
        let first = cache
            .get_or_fetch("u", || async { Ok(token("old")) })
            .await
            .unwrap();
        let fresh = cache
            .refresh("u", &first, || async { Ok(token("new")) })
            .await
            .unwrap();
        assert_eq!(fresh.token, "new");
        // A second request that saw the same stale token gets the new one without a fetch.
        let again = cache
            .refresh("u", &first, || async {
                Err(ApiError::internal("must not fetch"))
            })
            .await
            .unwrap();
        assert_eq!(again.token, "new");
    }

    #[test]
    fn joining_keeps_the_base_path_and_config_is_checked() {
        let base = Url::parse("http://127.0.0.1:9000/drupal/").unwrap();
        assert_eq!(
            join(&base, "/api/deepchat").as_str(),
            "http://127.0.0.1:9000/drupal/api/deepchat"
        );
        assert!(parse_backend_url("X", "ftp://x").is_err());
        assert!(parse_backend_url("X", "http://x/?a=1").is_err());
        assert!(parse_backend_url("X", "not a url").is_err());
        assert!(parse_backend_url("X", "https://backend.internal").is_ok());
    }
}
