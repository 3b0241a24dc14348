//! The contract's Stripe webhook: signatures checked over the raw body, credits added exactly
//! once per event id — also when deliveries race — and no CSRF.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{expect_error, Showcase};
use serde_json::{json, Value};
use waypost::{credits::MAX_BALANCE, webhook::StripeVerifier};

const SECRET: &str = "whsec_test_secret_for_the_battery";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn start() -> Showcase {
    Showcase::start_with(&[("STRIPE_WEBHOOK_SECRET", SECRET)]).await
}

fn payment(event_id: &str, user_id: &str, credits: Value) -> String {
    json!({
        "id": event_id,
        "type": "payment_intent.succeeded",
        "data": { "object": {
            "id": "pi_123",
            "metadata": { "userId": user_id, "credits": credits }
        } }
    })
    .to_string()
}

fn sign(body: &str) -> String {
    StripeVerifier::new(SECRET).sign(body.as_bytes(), now())
}

async fn deliver(app: &Showcase, body: &str, signature: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/api/webhooks/stripe"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(signature) = signature {
        request = request.header("stripe-signature", signature);
    }
    request.send().await.unwrap()
}

async fn expect_received(response: reqwest::Response) {
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "received": true }));
}

#[tokio::test]
async fn a_signed_payment_adds_its_credits_given_as_string_or_number() {
    let app = start().await;
    let alice = app.account("alice@example.com").await;
    assert_eq!(app.credits(&alice).await, 5);

    let body = payment("evt_string", alice.id(), json!("10"));
    expect_received(deliver(&app, &body, Some(&sign(&body))).await).await;
    assert_eq!(app.credits(&alice).await, 15);

    let body = payment("evt_number", alice.id(), json!(10));
    expect_received(deliver(&app, &body, Some(&sign(&body))).await).await;
    assert_eq!(app.credits(&alice).await, 25);
    assert_eq!(app.count_rows("processed_webhooks").await, 2);
}

#[tokio::test]
async fn any_amount_the_balance_can_hold_is_added_and_past_that_nothing() {
    let app = start().await;
    let alice = app.account("alice@example.com").await;
    let body = payment("evt_big", alice.id(), json!("1000001"));
    expect_received(deliver(&app, &body, Some(&sign(&body))).await).await;
    assert_eq!(app.credits(&alice).await, 1_000_006);
    // Up to the largest balance there is (2^53 - 1, exact in every JSON client), exactly.
    let body = payment("evt_to_the_top", alice.id(), json!(MAX_BALANCE - 1_000_006));
    expect_received(deliver(&app, &body, Some(&sign(&body))).await).await;
    assert_eq!(app.credits(&alice).await, MAX_BALANCE);
    // A signed event is acknowledged (Stripe would otherwise retry it for days), but what the
    // balance cannot hold, or what is no whole amount written as one, is not added.
    for (event, amount) in [
        ("evt_one_more", json!("1")),
        ("evt_max", json!(i64::MAX.to_string())),
        ("evt_float", json!(1e300)),
        ("evt_exponent", json!("1e3")),
        ("evt_whole_float", json!(10.0)),
        ("evt_hex", json!("0x10")),
        ("evt_fraction", json!("1.5")),
        ("evt_zero", json!(0)),
        ("evt_negative", json!(-3)),
    ] {
        let body = payment(event, alice.id(), amount);
        expect_received(deliver(&app, &body, Some(&sign(&body))).await).await;
        assert_eq!(app.credits(&alice).await, MAX_BALANCE, "{event}");
    }
    // Only the applied payments are recorded as processed.
    assert_eq!(app.count_rows("processed_webhooks").await, 2);
    // Another user's balance is untouched by all of it.
    let bob = app.account("bob@example.com").await;
    assert_eq!(app.credits(&bob).await, 5);
}

#[tokio::test]
async fn a_payment_for_an_unknown_user_is_not_recorded_so_a_later_replay_applies_it() {
    let app = start().await;
    let body = payment("evt_early", "no-such-user", json!("10"));
    expect_received(deliver(&app, &body, Some(&sign(&body))).await).await;
    assert_eq!(app.count_rows("processed_webhooks").await, 0);
    // The same event, once it names an existing user (Stripe's dashboard replays it).
    let alice = app.account("alice@example.com").await;
    let body = payment("evt_early", alice.id(), json!("10"));
    expect_received(deliver(&app, &body, Some(&sign(&body))).await).await;
    assert_eq!(app.credits(&alice).await, 15);
    assert_eq!(app.count_rows("processed_webhooks").await, 1);
}

#[tokio::test]
async fn a_tampered_body_is_400_invalid_signature_and_credits_nothing() {
    let app = start().await;
    let alice = app.account("alice@example.com").await;
    let signed = payment("evt_1", alice.id(), json!("10"));
    let signature = sign(&signed);
    let tampered = payment("evt_1", alice.id(), json!("1000"));
    expect_error(
        deliver(&app, &tampered, Some(&signature)).await,
        400,
        "invalid_signature",
    )
    .await;
    // Signed with another secret.
    let forged = StripeVerifier::new("whsec_other").sign(signed.as_bytes(), now());
    expect_error(
        deliver(&app, &signed, Some(&forged)).await,
        400,
        "invalid_signature",
    )
    .await;
    assert_eq!(app.credits(&alice).await, 5);
    assert_eq!(app.count_rows("processed_webhooks").await, 0);
}

#[tokio::test]
async fn stale_missing_or_malformed_signatures_are_400_and_credit_nothing() {
    let app = start().await;
    let alice = app.account("alice@example.com").await;
    let body = payment("evt_1", alice.id(), json!("10"));
    let verifier = StripeVerifier::new(SECRET);
    let stale = verifier.sign(body.as_bytes(), now() - 301);
    let future = verifier.sign(body.as_bytes(), now() + 301);
    for signature in [
        Some(stale.as_str()),
        Some(future.as_str()),
        None,
        Some("garbage"),
        Some("t=,v1="),
    ] {
        expect_error(
            deliver(&app, &body, signature).await,
            400,
            "invalid_signature",
        )
        .await;
    }
    assert_eq!(app.credits(&alice).await, 5);
    assert_eq!(app.count_rows("processed_webhooks").await, 0);

    // The same body, freshly signed, goes through: the refusals were about the signature.
    expect_received(deliver(&app, &body, Some(&sign(&body))).await).await;
    assert_eq!(app.credits(&alice).await, 15);
}

#[tokio::test]
async fn one_matching_v1_among_several_suffices() {
    let app = start().await;
    let alice = app.account("alice@example.com").await;
    let body = payment("evt_rolled", alice.id(), json!("3"));
    let t = now();
    let good = StripeVerifier::new(SECRET).sign(body.as_bytes(), t);
    let good_v1 = good.split_once(",v1=").unwrap().1;
    let old_v1 = StripeVerifier::new("whsec_old")
        .sign(body.as_bytes(), t)
        .split_once(",v1=")
        .unwrap()
        .1
        .to_owned();
    let header = format!("t={t},v1={old_v1},v0=deadbeef,v1={good_v1}");
    expect_received(deliver(&app, &body, Some(&header)).await).await;
    assert_eq!(app.credits(&alice).await, 8);
}

#[tokio::test]
async fn a_replayed_event_is_200_and_credits_once() {
    let app = start().await;
    let alice = app.account("alice@example.com").await;
    let body = payment("evt_replay", alice.id(), json!("10"));
    expect_received(deliver(&app, &body, Some(&sign(&body))).await).await;
    // Stripe retries with a fresh signature; the event id is what counts.
    expect_received(deliver(&app, &body, Some(&sign(&body))).await).await;
    expect_received(deliver(&app, &body, Some(&sign(&body))).await).await;
    assert_eq!(app.credits(&alice).await, 15);
    assert_eq!(app.count_rows("processed_webhooks").await, 1);
}

#[tokio::test]
async fn ten_concurrent_deliveries_of_one_event_credit_once() {
    let app = start().await;
    let alice = app.account("alice@example.com").await;
    let body = payment("evt_race", alice.id(), json!("10"));
    let signature = sign(&body);
    let deliveries = (0..10).map(|_| deliver(&app, &body, Some(&signature)));
    for response in futures_util::future::join_all(deliveries).await {
        expect_received(response).await;
    }
    assert_eq!(app.credits(&alice).await, 15);
    assert_eq!(app.count_rows("processed_webhooks").await, 1);
}

#[tokio::test]
async fn other_event_types_and_bodies_without_an_event_are_200_and_change_nothing() {
    let app = start().await;
    let alice = app.account("alice@example.com").await;
    for kind in [
        "payment_intent.created",
        "payment_intent.payment_failed",
        "charge.refunded",
    ] {
        let body = json!({
            "id": format!("evt_{kind}"),
            "type": kind,
            "data": { "object": { "metadata": { "userId": alice.id(), "credits": "10" } } }
        })
        .to_string();
        expect_received(deliver(&app, &body, Some(&sign(&body))).await).await;
    }
    // Signed bodies without what an event carries are acknowledged too; a payment without an
    // id cannot be applied exactly once, so it is not applied at all.
    let no_id = json!({
        "type": "payment_intent.succeeded",
        "data": { "object": { "metadata": { "userId": alice.id(), "credits": "10" } } }
    })
    .to_string();
    let typed_wrong = json!({
        "id": 7,
        "type": "payment_intent.succeeded",
        "data": { "object": { "metadata": { "userId": alice.id(), "credits": "10" } } }
    })
    .to_string();
    for body in [
        no_id.as_str(),
        typed_wrong.as_str(),
        r#"{"id": "evt_1"}"#,
        r#"{"test": true}"#,
        r#"{"id": "evt_2", "type": ["payment_intent.succeeded"]}"#,
        "{}",
        "[]",
        r#""evt""#,
        "5",
        "null",
    ] {
        expect_received(deliver(&app, body, Some(&sign(body))).await).await;
    }
    // Not JSON at all, though signed: 400 invalid_json.
    expect_error(
        deliver(&app, "[1, 2", Some(&sign("[1, 2"))).await,
        400,
        "invalid_json",
    )
    .await;
    assert_eq!(app.credits(&alice).await, 5);
    assert_eq!(app.count_rows("processed_webhooks").await, 0);
}

#[tokio::test]
async fn the_webhook_needs_no_csrf_token_even_with_a_cookie() {
    let app = start().await;
    let alice = app.account("alice@example.com").await;
    let body = payment("evt_cookie", alice.id(), json!("2"));
    let response = app
        .client
        .post(app.url("/api/webhooks/stripe"))
        .header("content-type", "application/json")
        .header(
            "cookie",
            format!("session={}; csrf=whatever", alice.session),
        )
        .header("stripe-signature", sign(&body))
        .body(body)
        .send()
        .await
        .unwrap();
    expect_received(response).await;
    assert_eq!(app.credits(&alice).await, 7);
}

#[tokio::test]
async fn without_stripe_webhook_secret_deliveries_are_refused_with_503() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    let body = payment("evt_1", alice.id(), json!("10"));
    expect_error(
        deliver(&app, &body, Some(&sign(&body))).await,
        503,
        "webhooks_unavailable",
    )
    .await;
    assert_eq!(app.credits(&alice).await, 5);
    assert_eq!(app.count_rows("processed_webhooks").await, 0);
}
