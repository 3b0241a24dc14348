//! `Idempotency-Key` on the routes that ask for it ([`crate::RouteConfig::idempotent`]): a
//! retried POST that charged a card, spent a credit or created a post gets the first answer
//! back instead of doing it again.
//!
//! Run by the route's guard after the rate limit, CSRF and body checks, around the handler. The
//! key is scoped to the route and the caller (user id when signed in, else client IP), so one
//! client cannot read another's answer by guessing its key. The request is fingerprinted
//! (method, URL, body) so the key sent again with a different request is refused rather than
//! answered with something unrelated. Only an answer that did something — a success or a
//! redirect — is kept; after an error, and after a handler that panicked, the key is freed and
//! the retry runs. A success that cannot be kept (streamed, over 1 MiB, or past the store's
//! room) is never run again either: its retry is told 409 `idempotency_answer_not_kept`. A
//! streamed answer counts as answered once its head is sent, whether or not its client reads
//! the body to its end. A store with no room for a new key refuses its request before it runs
//! (503 `idempotency_unavailable`, with `Retry-After`).
//!
//! The handler of a claimed key runs in a task of its own: a client that goes away, or the
//! route's `max_duration` answering 504, does not cut it short, since work cut short at an
//! `.await` may already have committed (a row written, a card charged) and a retry would then do
//! it again. The task finishes the work and keeps its answer; a retry meanwhile is told 409
//! `idempotency_in_progress`, and afterwards gets the answer. The work is cut short only past
//! 4½ minutes (before the key's 5-minute hold could let a retry run it beside itself) and at the
//! server's shutdown deadline. The store
//! ([`crate::store::IdempotencyStore`]) is in process or in Redis, with the other stores.

use std::{sync::Arc, time::Duration};

use axum::{
    body::{Body, Bytes},
    extract::Request,
    http::{HeaderName, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use http_body::Body as _;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};

use crate::{
    routing::RouteInfo,
    security::{csrf, rate_limit, Identity, Security},
    store::{Claim, IdempotencyStore, StoredResponse},
    ApiError, RouteConfig,
};

/// The request header carrying the key.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// The response header marking an answer sent again.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// How long a key is held while its request runs: past this (a crashed process), a retry runs.
const HOLD: Duration = Duration::from_secs(5 * 60);
/// How long a claimed key's handler may run, whatever the route's `max_duration`: cut short
/// before its hold runs out, so a retry can never run it a second time beside it.
const LONGEST_WORK: Duration = Duration::from_secs(4 * 60 + 30);
/// How long an answer is kept for retries.
pub(crate) const KEEP: Duration = Duration::from_secs(24 * 60 * 60);
/// The longest key accepted (Stripe's limit).
pub(crate) const LONGEST_KEY: usize = 255;
/// The largest answer kept; a larger one is sent but not kept, like a streamed one.
const LARGEST_KEPT_BODY: u64 = 1024 * 1024;

/// Whether `key` (trimmed as hyper leaves it) is 1 to [`LONGEST_KEY`] visible ASCII characters,
/// spaces allowed inside — the pattern the OpenAPI document gives the header. `to_str` alone
/// would also let a tab through.
fn is_key(key: &str) -> bool {
    (1..=LONGEST_KEY).contains(&key.len()) && key.bytes().all(|byte| (b' '..=b'~').contains(&byte))
}

/// Whether `request` asks this route for an answer once per key.
pub(crate) fn wanted(config: &RouteConfig, request: &Request) -> bool {
    config.idempotent
        && csrf::is_unsafe(request.method())
        && request.headers().contains_key(&IDEMPOTENCY_KEY)
}

/// Answers `request` through `call` (the handler) once per idempotency key, within `route`'s
/// `max_duration`, replaying the kept answer to retries (see the module documentation).
pub(crate) async fn answer_once<F>(
    security: &Security,
    peer: Option<std::net::IpAddr>,
    route: &RouteInfo,
    request: Request,
    call: impl FnOnce(Request) -> F,
) -> Response
where
    F: std::future::Future<Output = Response> + Send + 'static,
{
    let pattern = route.pattern;
    let key = match request
        .headers()
        .get(&IDEMPOTENCY_KEY)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
    {
        Some(key) if is_key(key) => key.to_owned(),
        _ => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters.",
            )
            .into_response()
        }
    };
    let caller = match request.extensions().get::<Identity>() {
        Some(identity) => format!("u:{}", identity.user_id),
        None => format!(
            "ip:{}",
            rate_limit::request_client_ip(
                peer,
                request.extensions(),
                request.headers(),
                Some(security)
            )
        ),
    };
    let scoped = format!("{pattern}|{caller}|{key}");
    // The body is needed whole for the fingerprint; the route's limit already bounds it.
    let (parts, body) = request.into_parts();
    let bytes = match crate::extract::collect_body(body).await {
        Ok(bytes) => bytes,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let fingerprint = {
        let mut digest = Sha256::new();
        digest.update(parts.method.as_str());
        digest.update(b" ");
        digest.update(parts.uri.to_string());
        digest.update(b"\n");
        digest.update(&bytes);
        hex::encode(digest.finalize())
    };
    let store = security.idempotency();
    // This request's own mark on the claim: only it may complete or free the key.
    let owner = uuid::Uuid::new_v4().simple().to_string();
    match store.claim(&scoped, &fingerprint, &owner, HOLD).await {
        Err(error) => ApiError::from(error).into_response(),
        Ok(Claim::InFlight) => {
            let mut response = ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_in_progress",
                "A request with this Idempotency-Key is still being answered; retry shortly.",
            )
            .into_response();
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from_static("1"),
            );
            response
        }
        Ok(Claim::Mismatch) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "This Idempotency-Key was used for a different request.",
        )
        .into_response(),
        Ok(Claim::Replay(stored)) => replayed(stored),
        Ok(Claim::NoRoom { retry_after }) => {
            let mut response = ApiError::unavailable(
                "idempotency_unavailable",
                "The server cannot keep another answer for an Idempotency-Key right now; retry \
                 later.",
            )
            .into_response();
            let seconds = rate_limit::whole_seconds_up(retry_after).max(1);
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(seconds));
            response
        }
        Ok(Claim::Started) => {
            let mut unfinished = UnfinishedClaim {
                store: Some(store.clone()),
                key: scoped,
                owner,
            };
            let handled = call(Request::from_parts(parts, Body::from(bytes)));
            let store = store.clone();
            let work = async move {
                let response = tokio::time::timeout(LONGEST_WORK, handled)
                    .await
                    .unwrap_or_else(|_| ApiError::timeout().into_response());
                let (scoped, owner) = unfinished.finish();
                let (response, kept) = keepable(response).await;
                let outcome = match kept {
                    Some(stored) => store.complete(&scoped, &owner, stored, KEEP).await,
                    None => store.release(&scoped, &owner).await,
                };
                if let Err(error) = outcome {
                    // The work is done and its answer goes out; only a retry's replay is lost.
                    tracing::warn!(%error, "the idempotency store failed after the handler ran");
                }
                response
            };
            // In a task of its own that goes on when this request is dropped, until the server's
            // shutdown deadline (see the module documentation).
            let finished = async {
                crate::leftover_work::run_apart(work, true)
                    .await
                    .unwrap_or_else(|| {
                        // Cut short at the shutdown deadline, or the runtime is stopping.
                        ApiError::unavailable("shutting_down", "The server is stopping.")
                            .into_response()
                    })
            };
            super::route::within(route.config.max_duration, finished).await
        }
    }
}

/// A claimed key whose work has not finished. Dropped unfinished — the handler panicked, or
/// the server cut the work short at its shutdown deadline (a client going away does not drop
/// it: the work goes on in its task) — it releases the key, as a 5xx does, so the retry that
/// follows runs at once instead of being told 409 for the whole hold.
struct UnfinishedClaim {
    /// `None` once finished.
    store: Option<Arc<dyn IdempotencyStore>>,
    key: String,
    owner: String,
}

impl UnfinishedClaim {
    /// The request finished: its answer decides what becomes of the key. The key and the
    /// claim's owner, back.
    fn finish(&mut self) -> (String, String) {
        self.store = None;
        (
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.owner),
        )
    }
}

impl Drop for UnfinishedClaim {
    fn drop(&mut self) {
        let Some(store) = self.store.take() else {
            return;
        };
        let (key, owner) = self.finish();
        crate::leftover_work::spawn(async move {
            if let Err(error) = store.release(&key, &owner).await {
                // The key is then held until the hold runs out, as after a crash.
                tracing::warn!(%error, "the idempotency key of an unfinished request stays held");
            }
        });
    }
}

/// Whether an answer with `status` is kept for retries: only one that did something — a
/// success, or a redirect. A 4xx changed nothing (bad input loses nothing, and a refusal leaves
/// no partial write), so its retry runs again and can do nothing twice — and a retry after
/// signing in, being granted access, topping up or waiting gets the new answer. A 5xx may not
/// have finished. Keeping refusals would also let one caller fill the store with one per fresh
/// key, while a kept success costs the caller real, rate-limited work.
fn is_kept(status: StatusCode) -> bool {
    status.is_success() || status.is_redirection()
}

/// The response, and what to keep of it when its status is kept ([`is_kept`]): its status,
/// headers (but `Set-Cookie`) and body when the body is whole and small enough to keep, else the
/// mark of an answer not kept.
async fn keepable(response: Response) -> (Response, Option<StoredResponse>) {
    if !is_kept(response.status()) {
        return (response, None);
    }
    let size = response.body().size_hint().exact();
    if size.is_none_or(|size| size > LARGEST_KEPT_BODY) {
        // It did its work: the retry must not run it again, and hears why nothing comes back.
        let status = response.status().as_u16();
        return (response, Some(StoredResponse::not_kept(status)));
    }
    let (parts, body) = response.into_parts();
    let bytes: Bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            // The handler did its work; only its answer broke: a retry must not do it again.
            let mark = StoredResponse::not_kept(parts.status.as_u16());
            return (
                ApiError::internal(axum::Error::new(error)).into_response(),
                Some(mark),
            );
        }
    };
    let stored = StoredResponse::new(
        parts.status.as_u16(),
        parts
            .headers
            .iter()
            .filter(|(name, _)| {
                *name != axum::http::header::SET_COOKIE
                    && *name != axum::http::header::CONTENT_LENGTH
            })
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect(),
        bytes.to_vec(),
    );
    (Response::from_parts(parts, Body::from(bytes)), Some(stored))
}

/// The kept answer, sent again, byte for byte but for `Set-Cookie`, marked as a replay — or,
/// for an answer that was not kept, 409 `idempotency_answer_not_kept`.
fn replayed(stored: StoredResponse) -> Response {
    if !stored.kept {
        return ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_answer_not_kept",
            format!(
                "The request with this Idempotency-Key was answered ({}), but its answer was \
                 streamed, too large, or more than the server had room to keep; it is not run \
                 again. Send a new key for a new request.",
                stored.status
            ),
        )
        .into_response();
    }
    let mut response = Response::new(Body::from(stored.body));
    *response.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    for (name, value) in stored.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.append(name, value);
        }
    }
    headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    response
}
