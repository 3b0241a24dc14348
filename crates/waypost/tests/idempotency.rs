//! `Idempotency-Key` on a route that asks for it: the first request runs, a retry with the same
//! key gets the same answer without running the handler again, and everything else is refused
//! or run as usual — over a real socket, with the in-process store.

use std::{
    net::IpAddr,
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc,
    },
    time::Duration,
};

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tokio::sync::Notify;
use waypost::{
    axum::{body::Bytes, http::header, Router},
    extract::Json,
    routing::{HandlerInfo, Method, RouteInfo, RouteMethods},
    testing::TestServer,
    ApiError, App, RouteConfig,
};

const POST: &[HandlerInfo] = &[HandlerInfo::of(Method::Post)];

const fn route(path: &'static [&'static str; 1], config: RouteConfig) -> RouteInfo {
    RouteInfo::at(path, POST, config)
}

static PAY: RouteInfo = route(&["/pay"], RouteConfig::new().idempotent());
static FLAKY: RouteInfo = route(&["/flaky"], RouteConfig::new().idempotent());
static PLAIN: RouteInfo = route(&["/plain"], RouteConfig::new());
static REFUSE: RouteInfo = route(&["/refuse"], RouteConfig::new().idempotent());
static GATED: RouteInfo = route(&["/gated"], RouteConfig::new().idempotent());

/// How many times each handler ran, and the hand that holds a payment in its handler.
#[derive(Clone, Default)]
struct Runs {
    pay: Arc<AtomicU32>,
    /// Told when a payment whose body is [`HOLD`] is in its handler (only the first run holds).
    held: Arc<Notify>,
    /// Lets that payment finish.
    release: Arc<Notify>,
    flaky: Arc<AtomicU32>,
    plain: Arc<AtomicU32>,
    gated: Arc<AtomicU32>,
    refused: Arc<AtomicU32>,
}

async fn server() -> (TestServer, Runs) {
    let runs = Runs::default();
    let (counter, held, release) = (runs.pay.clone(), runs.held.clone(), runs.release.clone());
    let router = RouteMethods::new(&PAY)
        .post(move |body: Bytes| async move {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            if body == HOLD && n == 1 {
                // Still running, with its key claimed, until the test lets it go.
                held.notify_one();
                release.notified().await;
            }
            (
                StatusCode::CREATED,
                [(header::SET_COOKIE, "receipt=1; Path=/")],
                Json(json!({ "run": n, "paid": String::from_utf8_lossy(&body) })),
            )
        })
        .mount(Router::new());
    let counter = runs.flaky.clone();
    let router = RouteMethods::new(&FLAKY)
        .post(move || async move {
            // The first run fails on the server's side; the next succeeds.
            if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                (StatusCode::SERVICE_UNAVAILABLE, "try again")
            } else {
                (StatusCode::OK, "done")
            }
        })
        .mount(router);
    let counter = runs.plain.clone();
    let router =
        RouteMethods::new(&PLAIN)
            .post(move || async move {
                Json(json!({ "run": counter.fetch_add(1, Ordering::SeqCst) + 1 }))
            })
            .mount(router);
    let counter = runs.refused.clone();
    let router = RouteMethods::new(&REFUSE)
        .post(move || async move {
            counter.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(ApiError::conflict("Already paid."))
        })
        .mount(router);
    let counter = runs.gated.clone();
    let router = RouteMethods::new(&GATED)
        .post(move || async move {
            // Refused for who is asking or when, three times over; then let through.
            match counter.fetch_add(1, Ordering::SeqCst) {
                0 => Err(ApiError::unauthorized("Sign in first.")),
                1 => Err(ApiError::forbidden("Not yours.")),
                2 => Err(ApiError::rate_limited(1)),
                n => Ok((StatusCode::CREATED, Json(json!({ "run": n + 1 })))),
            }
        })
        .mount(router);
    (TestServer::start(App::new(router)).await, runs)
}

/// The body of a payment that stays in its handler until [`Runs::release`] is notified.
const HOLD: &str = "hold";

async fn pay(client: &Client, server: &TestServer, key: &str, body: &str) -> reqwest::Response {
    keyed(client, server, "/pay", key, body).await
}

/// A POST of `body` to `path` with the `Idempotency-Key` `key`.
async fn keyed(
    client: &Client,
    server: &TestServer,
    path: &str,
    key: &str,
    body: &str,
) -> reqwest::Response {
    client
        .post(server.url(path))
        .header("idempotency-key", key)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

/// What `send` gets once the key's first request is no longer running (409 in progress until
/// then; a generous wait at most).
async fn once_finished<F, Fut>(send: F) -> reqwest::Response
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = reqwest::Response>,
{
    let mut response = send().await;
    for _ in 0..250 {
        if response.status() != StatusCode::CONFLICT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        response = send().await;
    }
    response
}

#[tokio::test]
async fn a_retry_with_the_same_key_gets_the_first_answer_without_running_again() {
    let (server, runs) = server().await;
    let client = Client::new();
    let first = pay(&client, &server, "order-1", "10 EUR").await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().contains_key(header::SET_COOKIE));
    assert!(!first.headers().contains_key("idempotent-replayed"));
    let first_body: Value = first.json().await.unwrap();
    assert_eq!(first_body, json!({ "run": 1, "paid": "10 EUR" }));

    let retry = pay(&client, &server, "order-1", "10 EUR").await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.headers()[header::CONTENT_TYPE], "application/json");
    // A replay hands out no cookie.
    assert!(!retry.headers().contains_key(header::SET_COOKIE));
    assert!(retry.headers().contains_key("x-request-id"));
    assert_eq!(retry.json::<Value>().await.unwrap(), first_body);
    assert_eq!(runs.pay.load(Ordering::SeqCst), 1);

    // Another key is another request.
    let other = pay(&client, &server, "order-2", "10 EUR").await;
    assert_eq!(other.json::<Value>().await.unwrap()["run"], 2);
    // Without a key every request runs.
    let unkeyed = client
        .post(server.url("/pay"))
        .body("10 EUR")
        .send()
        .await
        .unwrap();
    assert_eq!(unkeyed.json::<Value>().await.unwrap()["run"], 3);
}

#[tokio::test]
async fn the_key_with_another_request_is_422_and_a_concurrent_retry_409() {
    let (server, runs) = server().await;
    let client = Client::new();
    let (first, concurrent) = tokio::join!(pay(&client, &server, "k", HOLD), async {
        // Sent while the first is in its handler, which it leaves only after this answer.
        runs.held.notified().await;
        // Bounded: were the retry run instead of refused, it would wait in the handler too.
        let concurrent =
            tokio::time::timeout(Duration::from_secs(10), pay(&client, &server, "k", HOLD)).await;
        runs.release.notify_waiters();
        runs.release.notify_one();
        concurrent.expect("the retry is answered while the first request runs")
    });
    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!(concurrent.status(), StatusCode::CONFLICT);
    assert_eq!(concurrent.headers()[header::RETRY_AFTER], "1");
    let body: Value = concurrent.json().await.unwrap();
    assert_eq!(body["code"], "idempotency_in_progress");

    let reused = pay(&client, &server, "k", "99 EUR").await;
    assert_eq!(reused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = reused.json().await.unwrap();
    assert_eq!(body["code"], "idempotency_key_reused");
    assert!(body["requestId"].is_string());
    assert_eq!(runs.pay.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn keys_belong_to_their_caller() {
    let (server, runs) = server().await;
    let here = Client::new();
    let elsewhere = Client::builder()
        .local_address("127.0.0.2".parse::<IpAddr>().unwrap())
        .build()
        .unwrap();
    pay(&here, &server, "shared", "10 EUR").await;
    let theirs = pay(&elsewhere, &server, "shared", "10 EUR").await;
    assert_eq!(theirs.status(), StatusCode::CREATED);
    assert!(!theirs.headers().contains_key("idempotent-replayed"));
    assert_eq!(runs.pay.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_server_error_is_not_kept_so_the_retry_runs_again() {
    let (server, runs) = server().await;
    let client = Client::new();
    let send = || {
        client
            .post(server.url("/flaky"))
            .header("idempotency-key", "once")
            .send()
    };
    assert_eq!(
        send().await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let retry = send().await.unwrap();
    assert_eq!(retry.status(), StatusCode::OK);
    assert_eq!(retry.text().await.unwrap(), "done");
    let replay = send().await.unwrap();
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.text().await.unwrap(), "done");
    assert_eq!(runs.flaky.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_route_that_did_not_ask_ignores_the_key_and_a_bad_key_is_400() {
    let (server, runs) = server().await;
    let client = Client::new();
    for _ in 0..2 {
        let response = client
            .post(server.url("/plain"))
            .header("idempotency-key", "same")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(runs.plain.load(Ordering::SeqCst), 2);

    // Too long, a tab inside (which `HeaderValue::to_str` lets through), or nothing but
    // blanks: none is a key.
    for bad in ["k".repeat(256), "order\t1".to_owned(), " \t ".to_owned()] {
        let refused = pay(&client, &server, &bad, "10 EUR").await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{bad:?}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["code"], "invalid_idempotency_key");
    }
    assert_eq!(runs.pay.load(Ordering::SeqCst), 0);
    // 255 characters, spaces inside: a key.
    let longest = format!("a {}", "k".repeat(253));
    assert_eq!(
        pay(&client, &server, &longest, "10 EUR").await.status(),
        StatusCode::CREATED
    );
    assert_eq!(runs.pay.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_method_the_route_does_not_export_is_405_whatever_key_it_carries() {
    let (server, runs) = server().await;
    let client = Client::new();
    let first = pay(&client, &server, "order-9", "10 EUR").await;
    assert_eq!(first.status(), StatusCode::CREATED);
    // The same key, on a method only the framework answers: the key is not looked at, so it
    // is neither "reused" (422) nor taken.
    for body in ["10 EUR", "other"] {
        let patched = client
            .patch(server.url("/pay"))
            .header("idempotency-key", "order-9")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(patched.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(patched.headers()[header::ALLOW], "POST, OPTIONS");
        let error: Value = patched.json().await.unwrap();
        assert_eq!(error["code"], "method_not_allowed");
    }
    let fresh = client
        .delete(server.url("/pay"))
        .header("idempotency-key", "order-10")
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), StatusCode::METHOD_NOT_ALLOWED);
    // The key the 405 carried was never claimed: its first POST runs.
    let later = pay(&client, &server, "order-10", "5 EUR").await;
    assert_eq!(later.status(), StatusCode::CREATED);
    assert!(!later.headers().contains_key("idempotent-replayed"));
    assert_eq!(runs.pay.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_error_changed_nothing_so_it_is_not_kept_and_its_retry_runs() {
    let (server, runs) = server().await;
    let client = Client::new();
    let send = || {
        client
            .post(server.url("/refuse"))
            .header("idempotency-key", "refused")
            .send()
    };
    for run in 1..=2 {
        let answer = send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::CONFLICT);
        assert!(!answer.headers().contains_key("idempotent-replayed"));
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["code"], "conflict");
        assert_eq!(runs.refused.load(Ordering::SeqCst), run);
    }
}

#[tokio::test]
async fn refusals_about_who_asks_or_when_are_not_kept() {
    let (server, runs) = server().await;
    let client = Client::new();
    let send = || {
        client
            .post(server.url("/gated"))
            .header("idempotency-key", "gated")
            .send()
    };
    for expected in [
        StatusCode::UNAUTHORIZED,
        StatusCode::FORBIDDEN,
        StatusCode::TOO_MANY_REQUESTS,
        StatusCode::CREATED,
    ] {
        let answer = send().await.unwrap();
        assert_eq!(answer.status(), expected);
        assert!(!answer.headers().contains_key("idempotent-replayed"));
    }
    assert_eq!(runs.gated.load(Ordering::SeqCst), 4, "each retry ran");
    // The success is kept.
    let replay = send().await.unwrap();
    assert_eq!(replay.status(), StatusCode::CREATED);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.json::<Value>().await.unwrap()["run"], 4);
    assert_eq!(runs.gated.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_request_its_client_abandoned_still_finishes_and_its_retry_gets_the_answer() {
    let (server, runs) = server().await;
    let client = Client::new();
    let abandoned = tokio::spawn({
        let (client, url) = (client.clone(), server.url("/pay"));
        async move {
            client
                .post(url)
                .header("idempotency-key", "abandoned")
                .body(HOLD)
                .send()
                .await
        }
    });
    runs.held.notified().await;
    // The client gives up while the handler runs and its connection closes. The handler may
    // have committed already: it goes on, and its key stays claimed meanwhile.
    abandoned.abort();
    assert!(abandoned.await.unwrap_err().is_cancelled());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let retry = pay(&client, &server, "abandoned", HOLD).await;
    assert_eq!(retry.status(), StatusCode::CONFLICT);
    assert_eq!(
        retry.json::<Value>().await.unwrap()["code"],
        "idempotency_in_progress"
    );
    // The work finishes; the retry then gets its answer, and nothing ran twice.
    runs.release.notify_one();
    let retry = once_finished(|| pay(&client, &server, "abandoned", HOLD)).await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(
        retry.json::<Value>().await.unwrap(),
        json!({ "run": 1, "paid": HOLD })
    );
    assert_eq!(runs.pay.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn work_past_max_duration_is_504_but_finishes_and_its_retry_gets_the_answer() {
    static SLOW: RouteInfo = route(
        &["/slow"],
        RouteConfig::new()
            .idempotent()
            .max_duration(Duration::from_millis(100)),
    );
    let runs = Arc::new(AtomicU32::new(0));
    // The handler ends only once the test has seen the 504: no race with the clock.
    let go_on = Arc::new(Notify::new());
    let (counter, gate) = (runs.clone(), go_on.clone());
    let router = RouteMethods::new(&SLOW)
        .post(move || async move {
            gate.notified().await;
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            (StatusCode::CREATED, Json(json!({ "run": n })))
        })
        .mount(Router::new());
    let server = TestServer::start(App::new(router)).await;
    let client = Client::new();
    let send = || {
        client
            .post(server.url("/slow"))
            .header("idempotency-key", "slow")
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(first.json::<Value>().await.unwrap()["code"], "timeout");
    assert_eq!(send().await.unwrap().status(), StatusCode::CONFLICT);
    go_on.notify_one();
    let retry = once_finished(|| async { send().await.unwrap() }).await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.json::<Value>().await.unwrap(), json!({ "run": 1 }));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_handler_that_panics_is_500_and_frees_its_key() {
    static PANICS: RouteInfo = route(&["/panics"], RouteConfig::new().idempotent());
    let runs = Arc::new(AtomicU32::new(0));
    let counter = runs.clone();
    let router = RouteMethods::new(&PANICS)
        .post(move || async move {
            if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("the first run breaks");
            }
            (StatusCode::CREATED, "second run")
        })
        .mount(Router::new());
    let server = TestServer::start(App::new(router)).await;
    let client = Client::new();
    let send = || {
        client
            .post(server.url("/panics"))
            .header("idempotency-key", "panics")
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = first.text().await.unwrap();
    assert!(!body.contains("breaks"), "{body}");
    let retry = once_finished(|| async { send().await.unwrap() }).await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.text().await.unwrap(), "second run");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

/// A route whose answers are counted: streamed (`stream` in the body) or past the 1 MiB an
/// answer may have to be kept (`large`) or small, all 201 — on an app whose idempotency store
/// keeps at most `budget` bytes.
async fn counted_server(budget: usize) -> (TestServer, Arc<AtomicU32>) {
    static ORDER: RouteInfo = route(&["/order"], RouteConfig::new().idempotent());
    let runs = Arc::new(AtomicU32::new(0));
    let counter = runs.clone();
    let router = RouteMethods::new(&ORDER)
        .post(move |body: Bytes| async move {
            let run = counter.fetch_add(1, Ordering::SeqCst) + 1;
            let answer = match &body[..] {
                b"stream" => waypost::axum::body::Body::from_stream(futures_util::stream::iter(
                    ["ordered ", "in ", "pieces"].map(Ok::<_, std::io::Error>),
                )),
                b"large" => vec![b'x'; 1024 * 1024 + 1].into(),
                _ => format!("order {run}").into(),
            };
            (StatusCode::CREATED, answer)
        })
        .mount(Router::new());
    let store = waypost::store::MemoryIdempotencyStore::with_budget(budget);
    let security = waypost::security::Security::new(Default::default())
        .unwrap()
        .with_idempotency_store(Arc::new(store));
    let app = App::new(router).with_security(Arc::new(security));
    (TestServer::start(app).await, runs)
}

async fn order(client: &Client, server: &TestServer, key: &str, body: &str) -> reqwest::Response {
    keyed(client, server, "/order", key, body).await
}

#[tokio::test]
async fn a_success_too_large_or_streamed_to_keep_is_never_run_again() {
    let (server, runs) = counted_server(waypost::store::IDEMPOTENCY_MEMORY_BUDGET).await;
    let client = Client::new();
    for (n, body) in [(1, "stream"), (2, "large")] {
        let key = format!("order-{body}");
        let first = order(&client, &server, &key, body).await;
        assert_eq!(first.status(), StatusCode::CREATED);
        assert!(!first.bytes().await.unwrap().is_empty());
        // The key is settled before the first answer goes out.
        let retry = order(&client, &server, &key, body).await;
        assert_eq!(retry.status(), StatusCode::CONFLICT);
        let error: Value = retry.json().await.unwrap();
        assert_eq!(error["code"], "idempotency_answer_not_kept", "{error}");
        assert!(
            error["error"].as_str().unwrap().contains("(201)"),
            "{error}"
        );
        assert_eq!(runs.load(Ordering::SeqCst), n, "the work ran once");
    }
}

#[tokio::test]
async fn a_full_store_keeps_marks_and_refuses_a_new_key_before_its_work_runs() {
    // Room for one key's claim (249 bytes: key, fingerprint, owner and overhead), not for its
    // answer (7 bytes, no headers kept) as well, nor for a second key.
    let (server, runs) = counted_server(250).await;
    let client = Client::new();
    let first = order(&client, &server, "first", "small").await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!(first.text().await.unwrap(), "order 1");
    // Its answer did not fit: the retry is told so, and the order is not placed twice.
    let retry = order(&client, &server, "first", "small").await;
    assert_eq!(retry.status(), StatusCode::CONFLICT);
    let error: Value = retry.json().await.unwrap();
    assert_eq!(error["code"], "idempotency_answer_not_kept", "{error}");
    let refused = order(&client, &server, "second", "small").await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Until the first key's claim expires (its 5-minute hold, the first to end).
    let wait: u64 = refused.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((250..=300).contains(&wait), "{wait}");
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["code"], "idempotency_unavailable", "{error}");
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "neither refused request ran"
    );
    // Without a key the route works as any other.
    let plain = client
        .post(server.url("/order"))
        .body("small")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.text().await.unwrap(), "order 2");
}
