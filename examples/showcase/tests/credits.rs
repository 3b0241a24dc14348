//! The contract's credits: a balance spent atomically by `/api/generate`, given back when the
//! generator fails, never below zero under concurrency — against fake generators.

mod common;

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use common::{expect_error, serve_fake, Account, Showcase};
use reqwest::Method;
use serde_json::{json, Value};
use waypost::axum::{
    http::{header, StatusCode},
    response::IntoResponse,
    routing::{get, post},
    Json, Router,
};

async fn generate(app: &Showcase, account: &Account, body: Value) -> reqwest::Response {
    app.send_json_as(account, Method::POST, "/api/generate", body)
        .await
}

/// A generator that records every body it receives and answers with `reply`.
fn recording_generator<F, R>(reply: F) -> (Router, Arc<Mutex<Vec<Value>>>)
where
    F: Fn(Value) -> R + Clone + Send + Sync + 'static,
    R: std::future::Future<Output = waypost::axum::response::Response> + Send + 'static,
{
    let received = Arc::new(Mutex::new(Vec::new()));
    let seen = received.clone();
    let router = Router::new().route(
        "/generate",
        post(move |Json(body): Json<Value>| {
            seen.lock().unwrap().push(body.clone());
            reply(body)
        }),
    );
    (router, received)
}

#[tokio::test]
async fn a_new_user_has_5_credits_and_the_balance_needs_auth() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    let response = app
        .as_user(&alice, Method::GET, "/api/credits")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "credits": 5 })
    );
    expect_error(app.get("/api/credits").await, 401, "unauthorized").await;
}

#[tokio::test]
async fn the_built_in_generator_answers_and_spends_one_credit() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    let response = generate(
        &app,
        &alice,
        json!({ "prompt": "write a short poem about rust", "projectId": "p1" }),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({
            "result": "Draft for project p1: 1. write a short; 2. poem about rust (6 words)",
            "credits": 4
        })
    );
    assert_eq!(app.credits(&alice).await, 4);
}

#[tokio::test]
async fn thirty_concurrent_generations_with_5_credits_succeed_exactly_5_times() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    let calls = (0..30).map(|i| generate(&app, &alice, json!({ "prompt": format!("idea {i}") })));
    let responses = futures_util::future::join_all(calls).await;
    let mut balances_seen = Vec::new();
    let (mut no_credits, mut rate_limited) = (0, 0);
    for response in responses {
        match response.status().as_u16() {
            200 => {
                let body: Value = response.json().await.unwrap();
                balances_seen.push(body["credits"].as_i64().unwrap());
            }
            402 => {
                expect_error(response, 402, "no_credits").await;
                no_credits += 1;
            }
            429 => {
                expect_error(response, 429, "rate_limited").await;
                rate_limited += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    balances_seen.sort_unstable();
    assert_eq!(balances_seen, vec![0, 1, 2, 3, 4], "each credit spent once");
    assert_eq!(
        app.count_rows("credit_holds").await,
        0,
        "no spend left held"
    );
    assert_eq!(no_credits + rate_limited, 25);
    // Ten pass the per-user limiter; the five that lost the race for a credit are 402.
    assert_eq!(rate_limited, 20);
    assert_eq!(app.credits(&alice).await, 0);
    expect_error(
        generate(&app, &alice, json!({ "prompt": "one more" })).await,
        429,
        "rate_limited",
    )
    .await;
    assert_eq!(app.credits(&alice).await, 0, "never below zero");
}

#[tokio::test]
async fn with_no_credit_left_generate_is_402_and_the_generator_is_not_called() {
    let (router, received) =
        recording_generator(|_| async { Json(json!({ "result": "x" })).into_response() });
    let base = serve_fake(router).await;
    let app = Showcase::start_with(&[
        ("SIGNUP_CREDITS", "0"),
        ("GENERATE_BACKEND_URL", &format!("{base}/generate")),
    ])
    .await;
    let alice = app.account("alice@example.com").await;
    expect_error(
        generate(&app, &alice, json!({ "prompt": "hello" })).await,
        402,
        "no_credits",
    )
    .await;
    assert_eq!(app.credits(&alice).await, 0);
    assert!(received.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_eleventh_generation_within_a_minute_is_429_and_spends_nothing() {
    let app = Showcase::start_with(&[("SIGNUP_CREDITS", "20")]).await;
    let alice = app.account("alice@example.com").await;
    for i in 0..10 {
        let response = generate(&app, &alice, json!({ "prompt": format!("idea {i}") })).await;
        assert_eq!(response.status(), 200, "call {i}");
    }
    let response = generate(&app, &alice, json!({ "prompt": "eleventh" })).await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    expect_error(response, 429, "rate_limited").await;
    assert_eq!(app.credits(&alice).await, 10);
    // Another user has a limit of their own.
    let bob = app.account("bob@example.com").await;
    assert_eq!(
        generate(&app, &bob, json!({ "prompt": "mine" }))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_working_generator_receives_prompt_and_project_and_its_result_is_returned() {
    let (router, received) = recording_generator(|body: Value| async move {
        Json(json!({ "result": { "echo": body["prompt"], "tokens": 42 } })).into_response()
    });
    let base = serve_fake(router).await;
    let app = Showcase::start_with(&[("GENERATE_BACKEND_URL", &format!("{base}/generate"))]).await;
    let alice = app.account("alice@example.com").await;

    let response = generate(
        &app,
        &alice,
        json!({ "prompt": "a haiku", "projectId": "proj-7" }),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "result": { "echo": "a haiku", "tokens": 42 }, "credits": 4 })
    );
    let response = generate(&app, &alice, json!({ "prompt": "no project" })).await;
    assert_eq!(response.status(), 200);

    assert_eq!(
        *received.lock().unwrap(),
        vec![
            json!({ "prompt": "a haiku", "projectId": "proj-7" }),
            json!({ "prompt": "no project", "projectId": null }),
        ]
    );
    assert_eq!(app.credits(&alice).await, 3);
}

#[tokio::test]
async fn a_failing_generator_is_502_and_the_credit_comes_back() {
    let (router, received) = recording_generator(|body: Value| async move {
        if body["prompt"] == "no result" {
            Json(json!({ "text": "wrong shape" })).into_response()
        } else if body["prompt"] == "null result" {
            Json(json!({ "result": null })).into_response()
        } else {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "boom: /srv/generator secret",
            )
                .into_response()
        }
    });
    let base = serve_fake(router).await;
    let app = Showcase::start_with(&[("GENERATE_BACKEND_URL", &format!("{base}/generate"))]).await;
    let alice = app.account("alice@example.com").await;
    for prompt in ["fail please", "no result", "null result"] {
        let body = expect_error(
            generate(&app, &alice, json!({ "prompt": prompt })).await,
            502,
            "upstream_failed",
        )
        .await;
        assert!(!body.to_string().contains("secret"), "{body}");
        assert_eq!(app.credits(&alice).await, 5, "the credit is given back");
        assert_eq!(app.count_rows("credit_holds").await, 0, "with its hold");
    }
    assert_eq!(received.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_generator_slower_than_generate_timeout_is_502_and_the_credit_comes_back() {
    let (router, received) = recording_generator(|_| async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        Json(json!({ "result": "too late" })).into_response()
    });
    let base = serve_fake(router).await;
    let app = Showcase::start_with(&[
        ("GENERATE_BACKEND_URL", &format!("{base}/generate")),
        ("GENERATE_TIMEOUT", "1s"),
    ])
    .await;
    let alice = app.account("alice@example.com").await;
    let started = std::time::Instant::now();
    expect_error(
        generate(&app, &alice, json!({ "prompt": "slow" })).await,
        502,
        "upstream_failed",
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(app.credits(&alice).await, 5);
    assert_eq!(received.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_redirecting_generator_is_502_and_the_target_is_never_hit() {
    let target_hits = Arc::new(AtomicUsize::new(0));
    let hits = target_hits.clone();
    let router = Router::new()
        .route(
            "/generate",
            post(|| async {
                (StatusCode::FOUND, [(header::LOCATION, "/elsewhere")]).into_response()
            }),
        )
        .route(
            "/elsewhere",
            get({
                let hits = hits.clone();
                move || async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    Json(json!({ "result": "redirected" }))
                }
            })
            .post(move || async move {
                hits.fetch_add(1, Ordering::SeqCst);
                Json(json!({ "result": "redirected" }))
            }),
        );
    let base = serve_fake(router).await;
    let app = Showcase::start_with(&[("GENERATE_BACKEND_URL", &format!("{base}/generate"))]).await;
    let alice = app.account("alice@example.com").await;
    expect_error(
        generate(&app, &alice, json!({ "prompt": "go" })).await,
        502,
        "upstream_failed",
    )
    .await;
    assert_eq!(target_hits.load(Ordering::SeqCst), 0);
    assert_eq!(app.credits(&alice).await, 5);
}

#[tokio::test]
async fn a_generation_without_a_prompt_or_with_a_blank_one_is_400_and_spends_nothing() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    for body in [
        json!({}),
        json!({ "prompt": "" }),
        json!({ "prompt": " \t\n " }),
        json!({ "projectId": "p1" }),
    ] {
        let error =
            expect_error(generate(&app, &alice, body).await, 400, "validation_failed").await;
        assert!(error["details"]["prompt"].is_array(), "{error}");
    }
    // Fields are named as the client sends them (camelCase), not as the Rust struct has them.
    let error = expect_error(
        generate(&app, &alice, json!({ "prompt": "hi", "projectId": "" })).await,
        400,
        "validation_failed",
    )
    .await;
    assert!(error["details"]["projectId"].is_array(), "{error}");
    assert!(error["details"].get("project_id").is_none(), "{error}");
    assert_eq!(app.credits(&alice).await, 5);
    expect_error(
        app.post_json("/api/generate", json!({ "prompt": "anon" }))
            .await,
        401,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn a_generation_the_client_abandons_gives_the_credit_back_once() {
    let (router, received) = recording_generator(|_| async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        Json(json!({ "result": "nobody is waiting" })).into_response()
    });
    let base = serve_fake(router).await;
    let app = Showcase::start_with(&[("GENERATE_BACKEND_URL", &format!("{base}/generate"))]).await;
    let alice = app.account("alice@example.com").await;
    let abandoned = app
        .as_user(&alice, Method::POST, "/api/generate")
        .json(&json!({ "prompt": "slow" }))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(abandoned.unwrap_err().is_timeout());
    let mut balance = app.credits(&alice).await;
    for _ in 0..50 {
        if balance == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        balance = app.credits(&alice).await;
    }
    assert_eq!(
        balance, 5,
        "the credit comes back when the client goes away"
    );
    // Past the moment the generator would have answered: refunded once, not twice.
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(app.credits(&alice).await, 5);
    assert_eq!(app.count_rows("credit_holds").await, 0);
    assert_eq!(received.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_spends_no_second_credit() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    let send = |prompt: &'static str| {
        app.as_user(&alice, Method::POST, "/api/generate")
            .header("idempotency-key", "draft-1")
            .json(&json!({ "prompt": prompt }))
            .send()
    };
    let first = send("a poem about rust").await.unwrap();
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["credits"], 4);
    let retry = send("a poem about rust").await.unwrap();
    assert_eq!(retry.status(), 200);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.json::<Value>().await.unwrap(), first);
    assert_eq!(app.credits(&alice).await, 4, "one credit for both");
    // The key with another prompt is refused, and spends nothing.
    let reused = send("something else").await.unwrap();
    expect_error(reused, 422, "idempotency_key_reused").await;
    assert_eq!(app.credits(&alice).await, 4);
}
