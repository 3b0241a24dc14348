//! The contract's chat proxy, against a fake Drupal: one token fetch per user (also for
//! concurrent first chats), tokens bound to their session cookie and never shared, one refresh
//! on a 403, SSE relayed as it arrives, no redirects, nothing of the client's leaks upstream —
//! and the built-in assistant when no backend is configured.

mod common;

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use common::{expect_error, serve_fake, Account, Showcase};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::{sync::Notify, time::timeout};
use waypost::{
    axum::{
        body::{Body, Bytes},
        extract::{Query, RawQuery, State},
        http::{header, HeaderMap, StatusCode},
        response::{IntoResponse, Response},
        routing::{any, post},
        Json, Router,
    },
    security::JwtKeys,
};

const JWT_SECRET: &str = "a-test-jwt-secret-that-is-long-enough-0123456789";
/// Drupal's session cookie name (`SESS` + a hash of the site).
const SESSION_COOKIE: &str = "SESSd41d8cd98f00b204";

/// What the fake does.
#[derive(Clone, Debug, Default)]
struct Behaviour {
    /// Every token handed out is this one (otherwise `tok-1`, `tok-2`, …).
    fixed_token: Option<String>,
    /// The first token handed out (`tok-1`) is refused with 403, as if it went stale.
    refuse_first_token: bool,
    /// Every chat call is refused with 403.
    always_403: bool,
    /// Chat calls answer 500.
    fail: bool,
    /// Chat calls answer 200 with JSON that is neither `text` nor `html`.
    wrong_shape: bool,
    /// Chat calls answer 200 with this content type and a page with a script in it.
    page_of_type: Option<&'static str>,
    /// Chat calls answer JSON, also when a stream was asked for.
    never_streams: bool,
    /// The session endpoint answers 302 to `/trap`.
    redirect_session: bool,
    /// The chat endpoint answers 302 to `/trap`.
    redirect_chat: bool,
    /// The second SSE event waits until the test calls `gate.notify_one()`.
    gated_stream: bool,
    /// Answers (JSON or events) arrive in pieces 300 ms apart: a JSON answer one byte at a
    /// time, an event stream as five events.
    slow_pieces: bool,
}

/// One request the fake received.
#[derive(Clone, Debug)]
struct Call {
    headers: HeaderMap,
    token: Option<String>,
    raw_query: String,
    body: Value,
    /// The body exactly as it arrived.
    raw_body: Bytes,
}

impl Call {
    fn bearer(&self) -> &str {
        self.headers["authorization"]
            .to_str()
            .unwrap()
            .strip_prefix("Bearer ")
            .expect("a bearer token")
    }

    fn session_cookie(&self) -> Option<String> {
        let cookie = self.headers.get("cookie")?.to_str().ok()?;
        cookie.split(';').find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == SESSION_COOKIE).then(|| value.to_owned())
        })
    }
}

#[derive(Default)]
struct Drupal {
    behaviour: Behaviour,
    sessions: Mutex<Vec<Call>>,
    chats: Mutex<Vec<Call>>,
    /// `(token, session cookie value)` pairs as issued together.
    issued: Mutex<Vec<(String, String)>>,
    trap_hits: AtomicUsize,
    gate: Notify,
}

impl Drupal {
    async fn start(behaviour: Behaviour) -> (Arc<Self>, String) {
        let drupal = Arc::new(Self {
            behaviour,
            ..Self::default()
        });
        let router = Router::new()
            .route("/api/deepchat/session", post(session))
            .route("/api/deepchat", post(chat))
            .route("/trap", any(trap))
            .with_state(drupal.clone());
        (drupal, serve_fake(router).await)
    }

    fn sessions(&self) -> Vec<Call> {
        self.sessions.lock().unwrap().clone()
    }

    fn chats(&self) -> Vec<Call> {
        self.chats.lock().unwrap().clone()
    }

    fn trap_hits(&self) -> usize {
        self.trap_hits.load(Ordering::SeqCst)
    }
}

fn redirect_to_trap() -> Response {
    (StatusCode::FOUND, [(header::LOCATION, "/trap")]).into_response()
}

async fn trap(State(drupal): State<Arc<Drupal>>) -> &'static str {
    drupal.trap_hits.fetch_add(1, Ordering::SeqCst);
    "you followed a redirect"
}

async fn session(State(drupal): State<Arc<Drupal>>, headers: HeaderMap) -> Response {
    let number = {
        let mut sessions = drupal.sessions.lock().unwrap();
        sessions.push(Call {
            headers,
            token: None,
            raw_query: String::new(),
            body: Value::Null,
            raw_body: Bytes::new(),
        });
        sessions.len()
    };
    if drupal.behaviour.redirect_session {
        return redirect_to_trap();
    }
    // Slow enough that concurrent first chats overlap the fetch.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let token = drupal
        .behaviour
        .fixed_token
        .clone()
        .unwrap_or_else(|| format!("tok-{number}"));
    let cookie = format!("sess-{number}");
    drupal
        .issued
        .lock()
        .unwrap()
        .push((token.clone(), cookie.clone()));
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=UTF-8".to_owned()),
            (
                header::SET_COOKIE,
                format!("{SESSION_COOKIE}={cookie}; path=/; HttpOnly; SameSite=Lax"),
            ),
        ],
        token,
    )
        .into_response()
}

async fn chat(
    State(drupal): State<Arc<Drupal>>,
    Query(query): Query<HashMap<String, String>>,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
    raw_body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&raw_body).expect("the proxy sends JSON");
    let call = Call {
        headers,
        token: query.get("token").cloned(),
        raw_query: raw_query.unwrap_or_default(),
        body: body.clone(),
        raw_body,
    };
    drupal.chats.lock().unwrap().push(call.clone());
    let behaviour = &drupal.behaviour;
    if behaviour.redirect_chat {
        return redirect_to_trap();
    }
    if behaviour.fail {
        return (StatusCode::INTERNAL_SERVER_ERROR, "drupal exploded").into_response();
    }
    if behaviour.always_403 {
        return (StatusCode::FORBIDDEN, "stale token").into_response();
    }
    if !call
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer "))
    {
        return (StatusCode::UNAUTHORIZED, "no bearer").into_response();
    }
    // Drupal's check: the token must be the one issued with this session cookie.
    let (Some(token), Some(cookie)) = (call.token.clone(), call.session_cookie()) else {
        return (StatusCode::FORBIDDEN, "no token or session").into_response();
    };
    if !drupal
        .issued
        .lock()
        .unwrap()
        .contains(&(token.clone(), cookie))
    {
        return (StatusCode::FORBIDDEN, "token does not match the session").into_response();
    }
    if behaviour.refuse_first_token && token == "tok-1" {
        return (StatusCode::FORBIDDEN, "stale token").into_response();
    }
    if behaviour.wrong_shape {
        return Json(json!({ "answer": "?" })).into_response();
    }
    if let Some(content_type) = behaviour.page_of_type {
        return (
            [(header::CONTENT_TYPE, content_type)],
            "<script>alert(document.cookie)</script>",
        )
            .into_response();
    }
    let last = body["messages"]
        .as_array()
        .and_then(|messages| messages.last())
        .and_then(|message| message["text"].as_str())
        .unwrap_or_default()
        .to_owned();
    let wants_stream =
        (body["stream"] == json!(1) || body["stream"] == json!(true)) && !behaviour.never_streams;
    if behaviour.slow_pieces {
        let (content_type, pieces): (&str, Vec<String>) = if wants_stream {
            let events = (0..5).map(|n| format!("data: {{\"text\":\"{n}\"}}\n\n"));
            ("text/event-stream", events.collect())
        } else {
            let answer = json!({ "text": "slow" }).to_string();
            let bytes = answer.chars().map(String::from);
            ("application/json", bytes.collect())
        };
        let pieces = futures_util::stream::iter(pieces).then(|piece| async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok::<_, Infallible>(piece)
        });
        return (
            [(header::CONTENT_TYPE, content_type)],
            Body::from_stream(pieces),
        )
            .into_response();
    }
    if !wants_stream {
        if last == "html please" {
            return Json(json!({ "html": "<p>hi</p>" })).into_response();
        }
        return Json(json!({ "text": format!("Drupal says: {last}") })).into_response();
    }
    let gated = behaviour.gated_stream;
    let first = futures_util::stream::once(async {
        Ok::<_, Infallible>("data: {\"text\":\"Hello\"}\n\n".to_owned())
    });
    let second = futures_util::stream::once(async move {
        if gated {
            drupal.gate.notified().await;
        }
        Ok::<_, Infallible>("data: {\"text\":\" world\"}\n\n".to_owned())
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(first.chain(second)),
    )
        .into_response()
}

async fn start(drupal_url: &str) -> Showcase {
    Showcase::start_with(&[("CHAT_BACKEND_URL", drupal_url), ("JWT_SECRET", JWT_SECRET)]).await
}

fn sub_of(bearer: &str) -> String {
    JwtKeys::new(JWT_SECRET.as_bytes(), Duration::from_secs(3600))
        .verify(bearer)
        .expect("the bearer sent upstream is a valid JWT of this server")
        .sub
}

fn hello(text: &str) -> Value {
    json!({ "messages": [{ "role": "user", "text": text }] })
}

async fn chat_as(app: &Showcase, account: &Account, body: Value) -> reqwest::Response {
    app.send_json_as(account, Method::POST, "/api/chat", body)
        .await
}

/// The `Cache-Control` directives: a stream's `no-cache`, plus the `no-store` every
/// authenticated response carries.
fn cache_directives(response: &reqwest::Response) -> Vec<String> {
    response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .split(',')
        .map(|directive| directive.trim().to_owned())
        .collect()
}

async fn text_of(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn five_concurrent_first_chats_of_one_user_fetch_one_session() {
    let (drupal, url) = Drupal::start(Behaviour::default()).await;
    let app = start(&url).await;
    let alice = app.account("alice@example.com").await;
    let chats = (0..5).map(|i| chat_as(&app, &alice, hello(&format!("hi {i}"))));
    let mut answers = Vec::new();
    for response in futures_util::future::join_all(chats).await {
        answers.push(text_of(response).await["text"].as_str().unwrap().to_owned());
    }
    answers.sort();
    assert_eq!(
        answers,
        (0..5)
            .map(|i| format!("Drupal says: hi {i}"))
            .collect::<Vec<_>>()
    );

    let sessions = drupal.sessions();
    assert_eq!(
        sessions.len(),
        1,
        "one session fetch for concurrent first chats"
    );
    assert_eq!(sub_of(sessions[0].bearer()), alice.id());
    let chats = drupal.chats();
    assert_eq!(chats.len(), 5);
    for call in &chats {
        assert_eq!(call.token.as_deref(), Some("tok-1"));
        assert_eq!(call.session_cookie().as_deref(), Some("sess-1"));
        assert_eq!(sub_of(call.bearer()), alice.id());
        assert_eq!(call.headers["content-type"], "application/json");
    }
    assert!(chats
        .iter()
        .any(|call| call.body == json!({ "messages": [{ "role": "user", "text": "hi 0" }] })));

    // Later chats reuse the cached token.
    text_of(chat_as(&app, &alice, hello("again")).await).await;
    assert_eq!(drupal.sessions().len(), 1);
}

#[tokio::test]
async fn the_clients_body_reaches_the_backend_as_sent() {
    let (drupal, url) = Drupal::start(Behaviour::default()).await;
    let app = start(&url).await;
    let alice = app.account("alice@example.com").await;
    // Fields Deep Chat may add (files, custom settings) and the client's own formatting.
    let sent = r#"{ "messages": [ {"role": "user", "text": "hi", "files": [{"name": "a.txt"}]} ],
 "custom": {"temperature": 0.5} }"#;
    let response = app
        .as_user(&alice, Method::POST, "/api/chat")
        .header("content-type", "application/json")
        .body(sent)
        .send()
        .await
        .unwrap();
    assert_eq!(
        text_of(response).await,
        json!({ "text": "Drupal says: hi" })
    );
    let chats = drupal.chats();
    assert_eq!(chats.len(), 1);
    assert_eq!(chats[0].raw_body, sent.as_bytes());
    // What is not a valid chat request is refused before the backend hears of it.
    let response = app
        .as_user(&alice, Method::POST, "/api/chat")
        .header("content-type", "application/json")
        .body(r#"{"messages": "not a list", "custom": 1}"#)
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "invalid_json").await;
    // A missing field is a validation error naming it, as on every other route.
    for (body, field) in [
        (r#"{}"#, "messages"),
        (r#"{"messages": []}"#, "messages"),
        (r#"{"messages": [{"text": "hi"}]}"#, "messages[0].role"),
    ] {
        let response = app
            .as_user(&alice, Method::POST, "/api/chat")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let error = expect_error(response, 400, "validation_failed").await;
        assert!(error["details"][field].is_array(), "{body}: {error}");
    }
    assert_eq!(drupal.chats().len(), 1);
}

#[tokio::test]
async fn two_users_get_separate_tokens_bound_to_their_own_sessions() {
    let (drupal, url) = Drupal::start(Behaviour::default()).await;
    let app = start(&url).await;
    let alice = app.account("alice@example.com").await;
    let bob = app.account("bob@example.com").await;
    let chats = [&alice, &bob, &alice, &bob]
        .map(|account| chat_as(&app, account, hello(&format!("I am {}", account.id()))));
    for response in futures_util::future::join_all(chats).await {
        text_of(response).await;
    }
    let sessions = drupal.sessions();
    assert_eq!(sessions.len(), 2, "one fetch per user");
    let issued = drupal.issued.lock().unwrap().clone();
    // Who each token was issued to: the `sub` of the bearer on the session fetch that made it.
    let owner_of = |token: &str| {
        let index = issued.iter().position(|(t, _)| t == token).unwrap();
        sub_of(sessions[index].bearer())
    };
    let mut subjects_seen = Vec::new();
    for call in drupal.chats() {
        let token = call.token.clone().unwrap();
        assert_eq!(
            owner_of(&token),
            sub_of(call.bearer()),
            "a token never crosses users"
        );
        assert!(issued.contains(&(token, call.session_cookie().unwrap())));
        subjects_seen.push(sub_of(call.bearer()));
    }
    assert_eq!(subjects_seen.len(), 4);
    assert_ne!(issued[0].0, issued[1].0);
    assert_ne!(owner_of(&issued[0].0), owner_of(&issued[1].0));
}

#[tokio::test]
async fn a_backend_403_refreshes_the_token_once_and_retries() {
    let (drupal, app, alice) = chat_with(Behaviour {
        refuse_first_token: true,
        ..Behaviour::default()
    })
    .await;
    let body = text_of(chat_as(&app, &alice, hello("hi")).await).await;
    assert_eq!(body, json!({ "text": "Drupal says: hi" }));
    assert_eq!(drupal.sessions().len(), 2);
    let tokens: Vec<_> = drupal
        .chats()
        .into_iter()
        .map(|c| c.token.unwrap())
        .collect();
    assert_eq!(tokens, vec!["tok-1", "tok-2"]);

    // The fresh token is the cached one now.
    text_of(chat_as(&app, &alice, hello("again")).await).await;
    assert_eq!(drupal.sessions().len(), 2);
    assert_eq!(
        drupal.chats().last().unwrap().token.as_deref(),
        Some("tok-2")
    );
}

#[tokio::test]
async fn a_backend_that_always_403s_is_502_after_exactly_one_retry() {
    let (drupal, app, alice) = chat_with(Behaviour {
        always_403: true,
        ..Behaviour::default()
    })
    .await;
    let body = expect_error(
        chat_as(&app, &alice, hello("hi")).await,
        502,
        "upstream_failed",
    )
    .await;
    assert!(!body.to_string().contains("stale token"), "{body}");
    assert_eq!(drupal.sessions().len(), 2);
    assert_eq!(drupal.chats().len(), 2);
}

#[tokio::test]
async fn a_token_with_plus_slash_equals_and_ampersand_arrives_intact() {
    let token = "a+b/c=d&e";
    let (drupal, app, alice) = chat_with(Behaviour {
        fixed_token: Some(token.to_owned()),
        ..Behaviour::default()
    })
    .await;
    text_of(chat_as(&app, &alice, hello("hi")).await).await;
    let chats = drupal.chats();
    assert_eq!(chats.len(), 1);
    assert_eq!(
        chats[0].token.as_deref(),
        Some(token),
        "raw: {}",
        chats[0].raw_query
    );
    assert_eq!(
        chats[0].raw_query.split('&').count(),
        1,
        "{}",
        chats[0].raw_query
    );

    // /api/chat/session hands out the same token, verbatim, as text/plain.
    let response = app
        .as_user(&alice, Method::POST, "/api/chat/session")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(response.text().await.unwrap(), token);
    assert_eq!(
        drupal.sessions().len(),
        1,
        "the session route uses the cached token"
    );
}

#[tokio::test]
async fn the_bearer_sent_upstream_is_a_valid_jwt_for_the_user_also_for_cookie_sessions() {
    let (drupal, url) = Drupal::start(Behaviour::default()).await;
    let app = start(&url).await;
    let alice = app.account("alice@example.com").await;
    let (csrf_cookie, csrf_token) = app.csrf().await;
    let response = app
        .client
        .post(app.url("/api/chat"))
        .header(
            "cookie",
            format!("session={}; csrf={csrf_cookie}", alice.session),
        )
        .header("x-csrf-token", csrf_token)
        .json(&hello("from the browser"))
        .send()
        .await
        .unwrap();
    text_of(response).await;
    text_of(chat_as(&app, &alice, hello("from an API client")).await).await;

    let sessions = drupal.sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sub_of(sessions[0].bearer()), alice.id());
    let chats = drupal.chats();
    assert_eq!(chats.len(), 2);
    for call in &chats {
        assert_eq!(sub_of(call.bearer()), alice.id());
    }
    // A bearer caller's own token is what goes upstream.
    assert_eq!(chats[1].bearer(), alice.token);
}

#[tokio::test]
async fn sse_events_are_relayed_before_the_backend_finishes() {
    let (drupal, app, alice) = chat_with(Behaviour {
        gated_stream: true,
        ..Behaviour::default()
    })
    .await;
    let mut body = hello("stream please");
    body["stream"] = json!(1);
    let mut response = timeout(Duration::from_secs(5), chat_as(&app, &alice, body))
        .await
        .expect("the headers arrive while the backend is still streaming");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(cache_directives(&response), ["no-cache", "no-store"]);

    let mut received = String::new();
    while !received.contains("Hello") {
        let chunk = timeout(Duration::from_secs(5), response.chunk())
            .await
            .expect("event 1 arrives before the backend sends event 2")
            .unwrap()
            .expect("the stream is still open");
        received.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert_eq!(received, "data: {\"text\":\"Hello\"}\n\n");
    drupal.gate.notify_one();
    while let Some(chunk) = timeout(Duration::from_secs(5), response.chunk())
        .await
        .unwrap()
        .unwrap()
    {
        received.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert_eq!(
        received,
        "data: {\"text\":\"Hello\"}\n\ndata: {\"text\":\" world\"}\n\n"
    );
    assert_eq!(drupal.chats()[0].body["stream"], 1);
}

#[tokio::test]
async fn a_backend_redirect_is_never_followed() {
    for behaviour in [
        Behaviour {
            redirect_session: true,
            ..Behaviour::default()
        },
        Behaviour {
            redirect_chat: true,
            ..Behaviour::default()
        },
    ] {
        let (drupal, url) = Drupal::start(behaviour.clone()).await;
        let app = start(&url).await;
        let alice = app.account("alice@example.com").await;
        expect_error(
            chat_as(&app, &alice, hello("hi")).await,
            502,
            "upstream_failed",
        )
        .await;
        assert_eq!(drupal.trap_hits(), 0, "{behaviour:?}");
        assert_eq!(drupal.sessions().len(), 1, "{behaviour:?}");
    }
}

#[tokio::test]
async fn backend_failures_are_502_upstream_failed() {
    for behaviour in [
        Behaviour {
            fail: true,
            ..Behaviour::default()
        },
        Behaviour {
            wrong_shape: true,
            ..Behaviour::default()
        },
    ] {
        let (drupal, url) = Drupal::start(behaviour.clone()).await;
        let app = start(&url).await;
        let alice = app.account("alice@example.com").await;
        let body = expect_error(
            chat_as(&app, &alice, hello("hi")).await,
            502,
            "upstream_failed",
        )
        .await;
        assert!(!body.to_string().contains("exploded"), "{body}");
        assert_eq!(drupal.chats().len(), 1, "{behaviour:?}");
    }

    // Nothing listening at all.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let app = start(&url).await;
    let alice = app.account("alice@example.com").await;
    expect_error(
        chat_as(&app, &alice, hello("hi")).await,
        502,
        "upstream_failed",
    )
    .await;
}

#[tokio::test]
async fn a_stream_is_relayed_only_as_events_and_a_whole_answer_becomes_one() {
    let mut body = hello("hi");
    body["stream"] = json!(true);
    // A page, or anything else that is no event stream, is never served from this origin.
    for content_type in ["text/html", "application/octet-stream", "text/plain"] {
        let (drupal, app, alice) = chat_with(Behaviour {
            page_of_type: Some(content_type),
            ..Behaviour::default()
        })
        .await;
        let refused = expect_error(
            chat_as(&app, &alice, body.clone()).await,
            502,
            "upstream_failed",
        )
        .await;
        assert!(!refused.to_string().contains("script"), "{refused}");
        assert_eq!(drupal.chats().len(), 1, "{content_type}");
    }
    // JSON of the wrong shape is refused as it is without a stream.
    let (_drupal, app, alice) = chat_with(Behaviour {
        wrong_shape: true,
        ..Behaviour::default()
    })
    .await;
    expect_error(
        chat_as(&app, &alice, body.clone()).await,
        502,
        "upstream_failed",
    )
    .await;
    // A backend that does not stream: its whole answer comes as the one event.
    let (drupal, app, alice) = chat_with(Behaviour {
        never_streams: true,
        ..Behaviour::default()
    })
    .await;
    let response = chat_as(&app, &alice, body).await;
    expect_event_stream(&response);
    assert_eq!(
        response.text().await.unwrap(),
        "data: {\"text\":\"Drupal says: hi\"}\n\n"
    );
    assert_eq!(drupal.chats().len(), 1);
}

/// Checks that `response` is a 200 event stream.
fn expect_event_stream(response: &reqwest::Response) {
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
}

/// A fake backend behaving so, a showcase in front of it, and an account on that.
async fn chat_with(behaviour: Behaviour) -> (Arc<Drupal>, Showcase, Account) {
    let (drupal, url) = Drupal::start(behaviour).await;
    let app = start(&url).await;
    let alice = app.account("alice@example.com").await;
    (drupal, app, alice)
}

/// A showcase with `CHAT_TIMEOUT=1s` before a backend that answers in pieces 300 ms apart,
/// and an account on it.
async fn slow_backend_chat() -> (Arc<Drupal>, Showcase, Account) {
    let (drupal, url) = Drupal::start(Behaviour {
        slow_pieces: true,
        ..Behaviour::default()
    })
    .await;
    let app = Showcase::start_with(&[
        ("CHAT_BACKEND_URL", &url),
        ("JWT_SECRET", JWT_SECRET),
        ("CHAT_TIMEOUT", "1s"),
    ])
    .await;
    let alice = app.account("alice@example.com").await;
    (drupal, app, alice)
}

#[tokio::test]
async fn a_json_answer_trickling_in_is_cut_at_the_chat_timeout() {
    // Every piece comes well within the timeout; the whole answer (15 pieces, 4.5 s) does not.
    let (drupal, app, alice) = slow_backend_chat().await;
    expect_error(
        chat_as(&app, &alice, hello("hi")).await,
        502,
        "upstream_failed",
    )
    .await;
    assert_eq!(drupal.chats().len(), 1);
}

#[tokio::test]
async fn a_relayed_stream_may_outlast_the_chat_timeout_while_it_keeps_sending() {
    let (_drupal, app, alice) = slow_backend_chat().await;
    let mut body = hello("hi");
    body["stream"] = json!(1);
    let started = Instant::now();
    let response = chat_as(&app, &alice, body).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    // Five events over 1.5 s, each 0.3 s after the last: all of them arrive.
    assert!(started.elapsed() > Duration::from_secs(1));
    let expected: String = (0..5)
        .map(|n| format!("data: {{\"text\":\"{n}\"}}\n\n"))
        .collect();
    assert_eq!(text, expected);
}

#[tokio::test]
async fn the_backends_html_answer_is_returned_as_is() {
    let (_drupal, url) = Drupal::start(Behaviour::default()).await;
    let app = start(&url).await;
    let alice = app.account("alice@example.com").await;
    let body = text_of(chat_as(&app, &alice, hello("html please")).await).await;
    assert_eq!(body, json!({ "html": "<p>hi</p>" }));
}

#[tokio::test]
async fn client_hop_by_hop_internal_and_cookie_headers_are_not_forwarded() {
    let (drupal, url) = Drupal::start(Behaviour::default()).await;
    let app = start(&url).await;
    let alice = app.account("alice@example.com").await;
    let (csrf_cookie, csrf_token) = app.csrf().await;
    let response = app
        .client
        .post(app.url("/api/chat"))
        .header("connection", "x-foo")
        .header("x-foo", "1")
        .header("x-waypost-user", "admin")
        .header("x-forwarded-for", "10.0.0.1")
        .header("referer", "https://showcase.example/secret-page")
        .header(
            "cookie",
            format!("session={}; csrf={csrf_cookie}", alice.session),
        )
        .header("x-csrf-token", &csrf_token)
        .json(&hello("hi"))
        .send()
        .await
        .unwrap();
    // Nor does the backend's session cookie come back to the client.
    assert!(response
        .headers()
        .get_all("set-cookie")
        .iter()
        .all(|value| !value.to_str().unwrap().contains(SESSION_COOKIE)));
    text_of(response).await;

    let calls: Vec<Call> = drupal
        .sessions()
        .into_iter()
        .chain(drupal.chats())
        .collect();
    assert_eq!(calls.len(), 2);
    for call in calls {
        for name in [
            "x-foo",
            "x-waypost-user",
            "x-forwarded-for",
            "referer",
            "x-csrf-token",
        ] {
            assert!(
                call.headers.get(name).is_none(),
                "{name} leaked: {:?}",
                call.headers
            );
        }
        if let Some(connection) = call.headers.get("connection") {
            assert!(!connection.to_str().unwrap().contains("x-foo"));
        }
        let cookie = call
            .headers
            .get("cookie")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert!(
            !cookie.contains(&alice.session),
            "the client's session leaked: {cookie}"
        );
        assert!(
            !cookie.contains(&csrf_cookie),
            "the client's csrf cookie leaked: {cookie}"
        );
        assert!(!cookie.contains("session="), "{cookie}");
    }
    let chat = &drupal.chats()[0];
    assert_eq!(
        chat.headers["cookie"],
        format!("{SESSION_COOKIE}=sess-1").as_str()
    );
    assert_eq!(sub_of(chat.bearer()), alice.id());
}

#[tokio::test]
async fn a_token_of_an_account_that_is_gone_gets_no_chat() {
    let (drupal, url) = Drupal::start(Behaviour::default()).await;
    let app = start(&url).await;
    let alice = app.account("alice@example.com").await;
    let pool = waypost::database::connect(&app.database_url).await.unwrap();
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(alice.id())
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    for path in ["/api/chat", "/api/chat/session"] {
        let response = app
            .as_user(&alice, Method::POST, path)
            .json(&hello("hi"))
            .send()
            .await
            .unwrap();
        expect_error(response, 401, "unauthorized").await;
    }
    assert!(drupal.sessions().is_empty() && drupal.chats().is_empty());
}

#[tokio::test]
async fn chat_and_chat_session_need_auth() {
    let (drupal, url) = Drupal::start(Behaviour::default()).await;
    let app = start(&url).await;
    expect_error(
        app.post_json("/api/chat", hello("hi")).await,
        401,
        "unauthorized",
    )
    .await;
    let response = app
        .client
        .post(app.url("/api/chat/session"))
        .send()
        .await
        .unwrap();
    expect_error(response, 401, "unauthorized").await;
    assert!(drupal.sessions().is_empty());
    assert!(drupal.chats().is_empty());
}

#[tokio::test]
async fn chat_session_returns_the_backend_token_as_text() {
    let (drupal, url) = Drupal::start(Behaviour::default()).await;
    let app = start(&url).await;
    let alice = app.account("alice@example.com").await;
    let response = app
        .as_user(&alice, Method::POST, "/api/chat/session")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert!(response
        .headers()
        .get_all("set-cookie")
        .iter()
        .all(|value| !value.to_str().unwrap().contains(SESSION_COOKIE)));
    assert_eq!(response.text().await.unwrap(), "tok-1");
    assert_eq!(drupal.sessions().len(), 1);
    assert_eq!(sub_of(drupal.sessions()[0].bearer()), alice.id());
}

#[tokio::test]
async fn without_a_backend_the_built_in_assistant_answers_json() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    let body = text_of(chat_as(&app, &alice, hello("what is waypost?")).await).await;
    assert_eq!(body, json!({ "text": "You said: what is waypost?" }));
    let body = expect_error(
        chat_as(&app, &alice, json!({ "messages": [] })).await,
        400,
        "validation_failed",
    )
    .await;
    assert!(body["details"]["messages"].is_array(), "{body}");
}

#[tokio::test]
async fn without_a_backend_the_built_in_assistant_streams_deep_chat_events() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    for flag in [json!(1), json!(true)] {
        let mut body = hello("hello there friend");
        body["stream"] = flag;
        let response = chat_as(&app, &alice, body).await;
        expect_event_stream(&response);
        assert_eq!(cache_directives(&response), ["no-cache", "no-store"]);
        let text = response.text().await.unwrap();
        let words: Vec<String> = text
            .split("\n\n")
            .filter(|event| !event.trim().is_empty())
            .map(|event| {
                let data = event.strip_prefix("data: ").expect("a data event");
                let value: Value = serde_json::from_str(data).unwrap();
                value["text"].as_str().unwrap().to_owned()
            })
            .collect();
        assert!(words.len() > 1, "one event per word: {text}");
        assert_eq!(words.concat(), "You said: hello there friend");
    }
}

#[tokio::test]
async fn without_a_backend_chat_session_hands_out_a_token() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    let response = app
        .as_user(&alice, Method::POST, "/api/chat/session")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    // A bearer caller gets no cookie: a client keeping cookies would need CSRF tokens after.
    assert!(response.headers().get("set-cookie").is_none());
    let token = response.text().await.unwrap();
    assert!(token.len() >= 16, "{token}");
    let chat = app
        .send_json_as(
            &alice,
            Method::POST,
            "/api/chat",
            json!({ "messages": [{ "role": "user", "text": "hi" }] }),
        )
        .await;
    assert_eq!(chat.status(), 200);

    // A browser signed in with its session cookie (and so holding a `csrf` cookie to pass the
    // check) gets a token bound to that cookie, which passes the check as Deep Chat sends it,
    // in `?token=`.
    let login = app.login("alice@example.com", common::PASSWORD).await;
    let session = common::session_cookie(&login).unwrap();
    let (csrf_cookie, csrf_token) = app.csrf().await;
    let cookies = format!("session={session}; csrf={csrf_cookie}");
    let response = app
        .client
        .post(app.url("/api/chat/session"))
        .header("cookie", &cookies)
        .header("x-csrf-token", &csrf_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("set-cookie").is_none());
    let token = response.text().await.unwrap();
    let chat = app
        .client
        .post(app.url("/api/chat"))
        .query(&[("token", token.as_str())])
        .header("cookie", &cookies)
        .json(&json!({ "messages": [{ "role": "user", "text": "hi" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(chat.status(), 200);
}

#[tokio::test]
async fn the_built_in_stream_delivers_its_first_event_long_before_the_last() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    // 22 words, one event each, produced 20 ms apart: at least 440 ms in all.
    let mut body = hello("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty");
    body["stream"] = json!(true);
    let started = std::time::Instant::now();
    let response = chat_as(&app, &alice, body).await;
    assert_eq!(response.status(), 200);
    let mut events = response.bytes_stream();
    let first = events.next().await.unwrap().unwrap();
    let first_at = started.elapsed();
    assert!(std::str::from_utf8(&first).unwrap().starts_with("data: "));
    let mut rest = 0;
    while let Some(chunk) = events.next().await {
        rest += chunk.unwrap().len();
    }
    let total = started.elapsed();
    assert!(rest > 0);
    assert!(total >= Duration::from_millis(440), "{total:?}");
    assert!(
        first_at * 2 < total,
        "the first event came at {first_at:?} of {total:?}: the stream was buffered"
    );
}
