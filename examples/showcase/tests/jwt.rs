//! Bearer tokens over HTTP: a hand-signed HS256 token with the server's secret is accepted, and
//! every forgery in the usual catalogue is a 401 `unauthorized` on `/api/auth/me` — and on every
//! route that asks who is calling, public listings included, while routes that do not (hello,
//! login, a 404, a 405) answer as they would without it.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use common::{expect_error, Showcase, PASSWORD};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Sha256, Sha512};

const SECRET: &str = "a-known-test-secret-of-more-than-32-bytes";
const HS256: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn b64(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

/// `header.payload.HMAC-SHA256(secret, header.payload)`, all base64url.
fn sign(header: &str, payload: &Value, secret: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(&payload.to_string()));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn claims(sub: &str) -> Value {
    let now = now();
    json!({ "sub": sub, "iat": now, "nbf": now, "exp": now + 600 })
}

async fn me(app: &Showcase, token: &str) -> reqwest::Response {
    app.client
        .get(app.url("/api/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn start() -> (Showcase, String) {
    let app = Showcase::start_with(&[("JWT_SECRET", SECRET)]).await;
    let alice = app.account("alice@example.com").await;
    (app, alice.id().to_owned())
}

#[tokio::test]
async fn a_token_signed_with_the_configured_secret_is_accepted() {
    let (app, id) = start().await;
    let response = me(&app, &sign(HS256, &claims(&id), SECRET.as_bytes())).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["id"], id.as_str());
}

#[tokio::test]
async fn tokens_issued_by_login_are_hs256_with_sub_and_a_one_hour_exp() {
    let app = Showcase::start_with(&[("JWT_SECRET", SECRET)]).await;
    let alice = app.account("alice@example.com").await;
    let parts: Vec<&str> = alice.token.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(header["alg"], "HS256");
    assert_eq!(payload["sub"], alice.id());
    let exp = payload["exp"].as_u64().unwrap();
    let lifetime = exp - payload["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 3600);
    // The server signs with the secret it was given.
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{}.{}", parts[0], parts[1]).as_bytes());
    mac.verify_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap())
        .expect("HS256 with JWT_SECRET");
}

#[tokio::test]
async fn alg_none_is_401() {
    let (app, id) = start().await;
    for header in [
        r#"{"alg":"none","typ":"JWT"}"#,
        r#"{"alg":"None","typ":"JWT"}"#,
        r#"{"alg":"NONE"}"#,
    ] {
        let unsigned = format!("{}.{}.", b64(header), b64(&claims(&id).to_string()));
        expect_error(me(&app, &unsigned).await, 401, "unauthorized").await;
        // Some libraries accept the HMAC of an empty key as "none".
        let empty_key = sign(header, &claims(&id), b"");
        expect_error(me(&app, &empty_key).await, 401, "unauthorized").await;
    }
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_401() {
    let (app, id) = start().await;
    let forged = sign(
        HS256,
        &claims(&id),
        b"some-other-secret-that-is-long-enough!!",
    );
    expect_error(me(&app, &forged).await, 401, "unauthorized").await;
}

#[tokio::test]
async fn an_rs256_header_signed_with_the_secret_is_401() {
    let (app, id) = start().await;
    // The classic algorithm swap: RS256 declared, the "public key" (here the secret) used as
    // an HMAC key.
    let swapped = sign(
        r#"{"alg":"RS256","typ":"JWT"}"#,
        &claims(&id),
        SECRET.as_bytes(),
    );
    expect_error(me(&app, &swapped).await, 401, "unauthorized").await;
}

#[tokio::test]
async fn another_hmac_algorithm_is_401() {
    let (app, id) = start().await;
    let input = format!(
        "{}.{}",
        b64(r#"{"alg":"HS512","typ":"JWT"}"#),
        b64(&claims(&id).to_string())
    );
    let mut mac = Hmac::<Sha512>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    let token = format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    );
    expect_error(me(&app, &token).await, 401, "unauthorized").await;
}

#[tokio::test]
async fn an_expired_token_is_401() {
    let (app, id) = start().await;
    let now = now();
    let expired = json!({ "sub": id, "iat": now - 7200, "nbf": now - 7200, "exp": now - 5 });
    expect_error(
        me(&app, &sign(HS256, &expired, SECRET.as_bytes())).await,
        401,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn a_token_not_yet_valid_is_401() {
    let (app, id) = start().await;
    let now = now();
    let early = json!({ "sub": id, "iat": now, "nbf": now + 300, "exp": now + 600 });
    expect_error(
        me(&app, &sign(HS256, &early, SECRET.as_bytes())).await,
        401,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn an_exp_that_is_a_string_is_401() {
    let (app, id) = start().await;
    let now = now();
    let stringly = json!({ "sub": id, "iat": now, "nbf": now, "exp": (now + 600).to_string() });
    expect_error(
        me(&app, &sign(HS256, &stringly, SECRET.as_bytes())).await,
        401,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn a_token_without_exp_is_401() {
    let (app, id) = start().await;
    let now = now();
    let eternal = json!({ "sub": id, "iat": now, "nbf": now });
    expect_error(
        me(&app, &sign(HS256, &eternal, SECRET.as_bytes())).await,
        401,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn a_tampered_payload_with_the_old_signature_is_401() {
    let app = Showcase::start_with(&[("JWT_SECRET", SECRET)]).await;
    let alice = app.account("alice@example.com").await;
    let bob = app.account("bob@example.com").await;
    let parts: Vec<&str> = alice.token.split('.').collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["sub"] = json!(bob.id());
    let tampered = format!("{}.{}.{}", parts[0], b64(&payload.to_string()), parts[2]);
    expect_error(me(&app, &tampered).await, 401, "unauthorized").await;
    // The untouched token still works: the refusal is about the edit.
    assert_eq!(me(&app, &alice.token).await.status(), 200);
}

#[tokio::test]
async fn malformed_tokens_are_401() {
    let (app, _) = start().await;
    for token in ["", "garbage", "a.b", "a.b.c", "....", &"x".repeat(4000)] {
        let response = app
            .client
            .get(app.url("/api/auth/me"))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        expect_error(response, 401, "unauthorized").await;
    }
}

#[tokio::test]
async fn a_valid_token_for_an_unknown_user_is_401() {
    let (app, _) = start().await;
    let ghost = sign(HS256, &claims("no-such-user"), SECRET.as_bytes());
    expect_error(me(&app, &ghost).await, 401, "unauthorized").await;
}

#[tokio::test]
async fn a_forged_token_cannot_write() {
    let (app, id) = start().await;
    let forged = sign(
        HS256,
        &claims(&id),
        b"some-other-secret-that-is-long-enough!!",
    );
    let response = app
        .client
        .post(app.url("/api/posts"))
        .bearer_auth(forged)
        .json(&json!({ "title": "Forged post", "content": "x" }))
        .send()
        .await
        .unwrap();
    expect_error(response, 401, "unauthorized").await;
    assert_eq!(app.count_rows("posts").await, 0);
}

#[tokio::test]
async fn an_issued_token_stops_working_after_jwt_ttl() {
    let app = Showcase::start_with(&[("JWT_SECRET", SECRET), ("JWT_TTL", "1s")]).await;
    let alice = app.account("alice@example.com").await;
    assert_eq!(me(&app, &alice.token).await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    expect_error(me(&app, &alice.token).await, 401, "unauthorized").await;
}

#[tokio::test]
async fn a_short_jwt_secret_still_signs_and_verifies() {
    // Test harnesses often set a short secret to forge their own tokens: start, with a warning.
    let app = Showcase::start_with(&[("JWT_SECRET", "short-secret")]).await;
    let alice = app.account("alice@example.com").await;
    let me = app
        .as_user(&alice, reqwest::Method::GET, "/api/auth/me")
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let claims =
        waypost::security::JwtKeys::new(b"short-secret", std::time::Duration::from_secs(3600))
            .verify(&alice.token)
            .expect("signed with JWT_SECRET");
    assert_eq!(claims.sub, alice.id());
}

#[tokio::test]
async fn a_bad_token_is_401_where_the_caller_matters_and_changes_nothing_elsewhere() {
    let app = Showcase::start_with(&[
        ("JWT_SECRET", SECRET),
        ("CORS_ORIGINS", "https://app.example"),
        ("RATE_LIMIT_DEFAULT", "3/60s"),
    ])
    .await;
    let alice = app.account("alice@example.com").await;
    let now = now();
    let expired = sign(
        HS256,
        &json!({ "sub": alice.id(), "iat": now - 7200, "exp": now - 5 }),
        SECRET.as_bytes(),
    );
    let forged = sign(
        HS256,
        &claims(alice.id()),
        b"another-secret-that-is-long-enough!!",
    );
    let send = |method: reqwest::Method, path: &str, token: &str| {
        app.client
            .request(method, app.url(path))
            .bearer_auth(token)
            .header("origin", "https://app.example")
            .json(&json!({ "email": "alice@example.com", "password": PASSWORD }))
            .send()
    };
    // Routes that ask who is calling refuse the token, whether they need a caller or not. A
    // browser app on an allowed origin can read the 401, and no cache keeps it.
    for token in [expired.as_str(), forged.as_str(), "not.a.jwt"] {
        for (method, path) in [
            (reqwest::Method::GET, "/api/auth/me"),
            (reqwest::Method::GET, "/api/posts"),
            (reqwest::Method::POST, "/api/tools/summarize/use"),
        ] {
            let response = send(method.clone(), path, token).await.unwrap();
            assert_eq!(
                response.headers()["access-control-allow-origin"],
                "https://app.example",
                "{method} {path}"
            );
            assert_eq!(response.headers()["cache-control"], "no-store");
            let error = expect_error(response, 401, "unauthorized").await;
            assert_eq!(
                error["error"], "The bearer token is invalid or expired.",
                "{method} {path}"
            );
        }
    }
    // Everything else answers as it would without the header: a stale token does not stop a
    // client from signing in again, nor turn a 404, a 405 or an OPTIONS into a 401.
    let hello = send(reqwest::Method::GET, "/api/hello", &expired)
        .await
        .unwrap();
    assert_eq!(hello.status(), 200);
    let login = send(reqwest::Method::POST, "/api/auth/login", &forged)
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    assert!(login.json::<Value>().await.unwrap()["token"].is_string());
    let missing = send(reqwest::Method::GET, "/api/nope", &expired)
        .await
        .unwrap();
    expect_error(missing, 404, "not_found").await;
    let wrong_method = send(reqwest::Method::PUT, "/api/hello", &expired)
        .await
        .unwrap();
    expect_error(wrong_method, 405, "method_not_allowed").await;
    let options = send(reqwest::Method::OPTIONS, "/api/posts", &expired)
        .await
        .unwrap();
    assert_eq!(options.status(), 204);
    // The quota of the caller the token claimed was not touched: the tool never ran.
    let used = app
        .client
        .post(app.url("/api/tools/summarize/use"))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(used.status(), 200);
    assert_eq!(used.json::<Value>().await.unwrap()["used"], 1);
    // But every refused request counted against the address's rate limit, like any other:
    // three a minute on each route, and the three tokens spent those of /api/posts.
    let listing = app.get("/api/posts").await;
    expect_error(listing, 429, "rate_limited").await;
}
