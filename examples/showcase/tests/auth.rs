//! Accounts and sessions: registration rules, login, the session cookie, logout, `me`, and the
//! promise that no response ever shows a password hash.

mod common;

use common::{cookie_named, expect_error, session_cookie, Showcase, PASSWORD};
use reqwest::{Method, Response};
use serde_json::{json, Value};

/// The `Set-Cookie` header that sets cookie `name`.
fn set_cookie_line(response: &Response, name: &str) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no Set-Cookie for {name}"))
        .to_owned()
}

fn attributes(line: &str) -> Vec<String> {
    line.split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

#[tokio::test]
async fn register_returns_201_with_the_public_user_and_signup_credits() {
    let app = Showcase::start().await;
    let response = app
        .post_json(
            "/api/auth/register",
            json!({ "email": "alice@example.com", "password": PASSWORD, "name": "Alice" }),
        )
        .await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let user = body["user"].as_object().expect("{\"user\": {…}}");
    assert_eq!(
        location,
        format!("/api/users/{}", user["id"].as_str().unwrap())
    );
    let mut keys: Vec<&str> = user.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["createdAt", "credits", "email", "id", "name", "role"]
    );
    assert!(user["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(user["name"], "Alice");
    assert_eq!(user["role"], "user", "the first user is not special");
    assert_eq!(user["credits"], 5);
    time::OffsetDateTime::parse(
        user["createdAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("createdAt is RFC 3339");
    assert_eq!(app.count_rows("users").await, 1);
}

#[tokio::test]
async fn signup_credits_come_from_the_environment() {
    let app = Showcase::start_with(&[("SIGNUP_CREDITS", "42")]).await;
    let body: Value = app
        .register("alice@example.com")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["user"]["credits"], 42);
}

#[tokio::test]
async fn invalid_registrations_are_400_with_details_per_field_and_store_nothing() {
    let app = Showcase::start().await;
    let cases = [
        (
            json!({ "email": "not-an-email", "password": PASSWORD, "name": "A" }),
            &["email"][..],
        ),
        (
            json!({ "email": "a@example.com", "password": "1234567", "name": "A" }),
            &["password"][..],
        ),
        (
            json!({ "email": "a@example.com", "password": PASSWORD, "name": "" }),
            &["name"][..],
        ),
        (
            json!({ "email": "a@example.com", "password": PASSWORD, "name": "   " }),
            &["name"][..],
        ),
        (
            json!({ "email": "a@example.com", "password": PASSWORD, "name": "n".repeat(101) }),
            &["name"][..],
        ),
        (
            json!({ "email": "nope", "password": "short", "name": "" }),
            &["email", "password", "name"][..],
        ),
        (json!({}), &["email", "password", "name"][..]),
    ];
    for (input, fields) in cases {
        let body = expect_error(
            app.post_json("/api/auth/register", input.clone()).await,
            400,
            "validation_failed",
        )
        .await;
        let details = body["details"].as_object().expect("details");
        let mut named: Vec<&str> = details.keys().map(String::as_str).collect();
        named.sort_unstable();
        let mut expected = fields.to_vec();
        expected.sort_unstable();
        assert_eq!(named, expected, "{input}: {body}");
        for field in fields {
            assert!(
                details[*field]
                    .as_array()
                    .is_some_and(|messages| !messages.is_empty()),
                "{body}"
            );
        }
    }
    assert_eq!(app.count_rows("users").await, 0);
}

#[tokio::test]
async fn exactly_100_character_names_are_accepted() {
    let app = Showcase::start().await;
    let response = app
        .post_json(
            "/api/auth/register",
            json!({ "email": "a@example.com", "password": "12345678", "name": "n".repeat(100) }),
        )
        .await;
    assert_eq!(response.status(), 201, "8-char password, 100-char name");
}

#[tokio::test]
async fn a_taken_email_is_409_whatever_its_case() {
    let app = Showcase::start().await;
    assert_eq!(app.register("alice@example.com").await.status(), 201);
    for email in [
        "alice@example.com",
        "ALICE@Example.COM",
        "Alice@example.com",
    ] {
        expect_error(app.register(email).await, 409, "conflict").await;
    }
    assert_eq!(app.count_rows("users").await, 1);
}

#[tokio::test]
async fn admin_emails_register_as_admins_and_nobody_else_does() {
    let app = Showcase::start_with(&[("ADMIN_EMAILS", "boss@example.com, root@example.com")]).await;
    let first: Value = app
        .register("first@example.com")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        first["user"]["role"], "user",
        "the first user is not special"
    );
    let boss: Value = app.register("Boss@Example.com").await.json().await.unwrap();
    assert_eq!(boss["user"]["role"], "admin");
    let root: Value = app.register("root@example.com").await.json().await.unwrap();
    assert_eq!(root["user"]["role"], "admin");
    let other: Value = app
        .register("bossy@example.com")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(other["user"]["role"], "user");
}

#[tokio::test]
async fn login_returns_user_token_and_a_locked_down_session_cookie() {
    let app = Showcase::start().await;
    app.register("alice@example.com").await;
    let response = app.login("ALICE@example.com", PASSWORD).await;
    assert_eq!(response.status(), 200);
    let line = set_cookie_line(&response, "session");
    let attrs = attributes(&line);
    assert!(attrs.contains(&"httponly".to_owned()), "{line}");
    assert!(attrs.contains(&"samesite=lax".to_owned()), "{line}");
    assert!(attrs.contains(&"path=/".to_owned()), "{line}");
    assert!(
        !attrs.contains(&"secure".to_owned()),
        "no Secure by default: {line}"
    );
    let session = session_cookie(&response).unwrap();
    assert!(session.len() >= 32, "an opaque random id: {session}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["email"], "alice@example.com");
    let token = body["token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    assert!(
        !token.contains(&session),
        "the cookie is not the token, it is a server-side id"
    );
}

#[tokio::test]
async fn every_password_registration_accepts_can_log_in() {
    let app = Showcase::start().await;
    // 1024 characters is the registration maximum; in UTF-8 these are 2048 bytes.
    let long = "é".repeat(1024);
    let response = app
        .post_json(
            "/api/auth/register",
            json!({ "email": "alice@example.com", "password": long, "name": "Alice" }),
        )
        .await;
    assert_eq!(response.status(), 201);
    let response = app.login("alice@example.com", &long).await;
    assert_eq!(response.status(), 200);
    let too_long = "é".repeat(1025);
    expect_error(
        app.post_json(
            "/api/auth/register",
            json!({ "email": "bob@example.com", "password": too_long, "name": "Bob" }),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn secure_cookies_are_marked_secure_when_configured() {
    let app = Showcase::start_with(&[("WAYPOST_SECURE_COOKIES", "1")]).await;
    app.register("alice@example.com").await;
    let response = app.login("alice@example.com", PASSWORD).await;
    assert_eq!(response.status(), 200);
    let line = set_cookie_line(&response, "session");
    let attrs = attributes(&line);
    assert!(attrs.contains(&"secure".to_owned()), "{line}");
    assert!(attrs.contains(&"httponly".to_owned()), "{line}");
    let csrf = app.get("/api/csrf").await;
    assert!(
        attributes(&set_cookie_line(&csrf, "csrf")).contains(&"secure".to_owned()),
        "the csrf cookie too"
    );
}

#[tokio::test]
async fn unknown_email_and_wrong_password_get_the_same_401() {
    let app = Showcase::start().await;
    app.register("alice@example.com").await;
    let unknown = app.login("nobody@example.com", PASSWORD).await;
    assert!(session_cookie(&unknown).is_none());
    let mut unknown = expect_error(unknown, 401, "invalid_credentials").await;
    let wrong = app.login("alice@example.com", "wrong password").await;
    assert!(session_cookie(&wrong).is_none());
    let mut wrong = expect_error(wrong, 401, "invalid_credentials").await;
    unknown.as_object_mut().unwrap().remove("requestId");
    wrong.as_object_mut().unwrap().remove("requestId");
    assert_eq!(unknown, wrong);
    // An empty password or email is just as wrong: the same 401, not a validation error.
    // So is one longer than any registration accepts.
    let (long_email, long_password) =
        (format!("{}@example.com", "a".repeat(400)), "p".repeat(2000));
    for (email, password) in [
        ("alice@example.com", ""),
        ("", PASSWORD),
        ("", ""),
        (long_email.as_str(), PASSWORD),
        ("alice@example.com", long_password.as_str()),
    ] {
        let mut empty =
            expect_error(app.login(email, password).await, 401, "invalid_credentials").await;
        empty.as_object_mut().unwrap().remove("requestId");
        assert_eq!(empty, wrong, "{email:?} {password:?}");
    }
    // A login without a field is malformed.
    let missing = app
        .client
        .post(app.url("/api/auth/login"))
        .json(&serde_json::json!({ "email": "alice@example.com" }))
        .send()
        .await
        .unwrap();
    let missing = expect_error(missing, 400, "validation_failed").await;
    assert!(missing["details"]["password"].is_array());
}

#[tokio::test]
async fn me_works_with_the_cookie_or_the_bearer_token_and_is_401_without() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;

    let by_cookie = app.me_with_cookie(&alice.session).await;
    assert_eq!(by_cookie.status(), 200);
    let body: Value = by_cookie.json().await.unwrap();
    assert_eq!(body["user"], alice.user);

    let by_bearer = app
        .as_user(&alice, Method::GET, "/api/auth/me")
        .send()
        .await
        .unwrap();
    assert_eq!(by_bearer.status(), 200);
    let body: Value = by_bearer.json().await.unwrap();
    assert_eq!(body["user"], alice.user);

    let anonymous = app.get("/api/auth/me").await;
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    expect_error(anonymous, 401, "unauthorized").await;
    expect_error(
        app.me_with_cookie("made-up-session-id").await,
        401,
        "unauthorized",
    )
    .await;
    // RFC 6750: a token that was sent and did not check out is named as such.
    let forged = app
        .client
        .get(app.url("/api/auth/me"))
        .bearer_auth(format!("{}x", alice.token))
        .send()
        .await
        .unwrap();
    assert_eq!(
        forged.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    expect_error(forged, 401, "unauthorized").await;
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    let browser = app.browser(&alice).await;
    assert_eq!(app.me_with_cookie(&alice.session).await.status(), 200);

    let response = app
        .as_browser(&browser, Method::POST, "/api/auth/logout")
        .header("x-csrf-token", &browser.csrf_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let cleared = set_cookie_line(&response, "session");
    assert_eq!(cookie_named(&response, "session").as_deref(), Some(""));
    assert!(
        attributes(&cleared)
            .iter()
            .any(|a| a == "max-age=0" || a.starts_with("expires=")),
        "{cleared}"
    );
    assert!(response.bytes().await.unwrap().is_empty());

    // A client that kept the old value is not signed in any more.
    expect_error(
        app.me_with_cookie(&alice.session).await,
        401,
        "unauthorized",
    )
    .await;
    let refused = app
        .as_browser(&browser, Method::POST, "/api/posts")
        .header("x-csrf-token", &browser.csrf_token)
        .json(&json!({ "title": "After logout", "content": "x" }))
        .send()
        .await
        .unwrap();
    expect_error(refused, 401, "unauthorized").await;
    assert_eq!(app.count_rows("posts").await, 0);
}

#[tokio::test]
async fn logging_in_again_renews_the_session_id_and_ends_the_old_one() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    let browser = app.browser(&alice).await;
    let response = app
        .as_browser(&browser, Method::POST, "/api/auth/login")
        .header("x-csrf-token", &browser.csrf_token)
        .json(&json!({ "email": "alice@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let renewed = session_cookie(&response).unwrap();
    assert_ne!(renewed, alice.session);
    assert_eq!(app.me_with_cookie(&renewed).await.status(), 200);
    expect_error(
        app.me_with_cookie(&alice.session).await,
        401,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn a_session_id_planted_before_login_is_never_adopted() {
    let app = Showcase::start().await;
    app.register("alice@example.com").await;
    let (csrf_cookie, csrf_token) = app.csrf().await;
    let planted = "attacker-chosen-session-id-0000000000000000";
    let response = app
        .client
        .post(app.url("/api/auth/login"))
        .header("cookie", format!("session={planted}; csrf={csrf_cookie}"))
        .header("x-csrf-token", csrf_token)
        .json(&json!({ "email": "alice@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_ne!(session_cookie(&response).unwrap(), planted);
    expect_error(app.me_with_cookie(planted).await, 401, "unauthorized").await;
}

#[tokio::test]
async fn no_response_contains_a_password_hash() {
    let app = Showcase::start_with(&[("ADMIN_EMAILS", "admin@example.com")]).await;
    let mut bodies = Vec::new();
    let register = app.register("alice@example.com").await;
    assert_eq!(register.status(), 201);
    bodies.push(register.text().await.unwrap());
    let login = app.login("alice@example.com", PASSWORD).await;
    assert_eq!(login.status(), 200);
    let login_text = login.text().await.unwrap();
    let alice: Value = serde_json::from_str(&login_text).unwrap();
    bodies.push(login_text);
    let admin = app.account("admin@example.com").await;
    let alice_id = alice["user"]["id"].as_str().unwrap();
    let alice_token = alice["token"].as_str().unwrap();
    for (token, path) in [
        (alice_token, "/api/auth/me".to_owned()),
        (alice_token, format!("/api/users/{alice_id}")),
        (admin.token.as_str(), "/api/users".to_owned()),
        (admin.token.as_str(), format!("/api/users/{alice_id}")),
        (admin.token.as_str(), format!("/api/users/{}", admin.id())),
    ] {
        let response = app
            .client
            .get(app.url(&path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        bodies.push(response.text().await.unwrap());
    }
    for body in &bodies {
        assert!(!body.contains("$argon2"), "{body}");
        assert!(!body.to_lowercase().contains("password"), "{body}");
    }
    // The hash is stored, so the scan above is not vacuous.
    let pool = waypost::database::connect(&app.database_url).await.unwrap();
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(alice_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert!(hash.starts_with("$argon2id$"), "{hash}");
}

#[tokio::test]
async fn authenticated_responses_are_not_cacheable() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    let by_bearer = app
        .as_user(&alice, Method::GET, "/api/auth/me")
        .send()
        .await
        .unwrap();
    assert_eq!(by_bearer.headers()["cache-control"], "no-store");
    let by_cookie = app.me_with_cookie(&alice.session).await;
    assert_eq!(by_cookie.headers()["cache-control"], "no-store");
    let list = app
        .as_user(&alice, Method::GET, "/api/posts")
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    assert_eq!(list.headers()["cache-control"], "no-store");
    let created = app
        .send_json_as(
            &alice,
            Method::POST,
            "/api/posts",
            json!({ "title": "Private things", "content": "x" }),
        )
        .await;
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn responses_that_hand_out_credentials_are_not_cacheable() {
    let app = Showcase::start().await;
    app.register("alice@example.com").await;
    let login = app.login("alice@example.com", PASSWORD).await;
    assert_eq!(login.status(), 200);
    assert_eq!(
        login.headers()["cache-control"],
        "no-store",
        "token + session"
    );
    let csrf = app.get("/api/csrf").await;
    assert_eq!(csrf.status(), 200);
    assert_eq!(
        csrf.headers()["cache-control"],
        "no-store",
        "csrf cookie + token"
    );
}

#[tokio::test]
async fn errors_carry_nosniff_too() {
    let app = Showcase::start().await;
    app.register("alice@example.com").await;
    let responses = [
        app.get("/api/no-such-route").await,
        app.get("/api/auth/me").await,
        app.login("alice@example.com", "wrong password").await,
        app.register("alice@example.com").await,
        app.post_json("/api/auth/register", json!({})).await,
        app.client
            .post(app.url("/api/auth/logout"))
            .header("cookie", "session=x")
            .send()
            .await
            .unwrap(),
    ];
    for response in responses {
        assert!(response.status().is_client_error(), "{}", response.status());
        assert_eq!(
            response.headers()["x-content-type-options"],
            "nosniff",
            "{}",
            response.url()
        );
    }
    let ok = app.get("/api/hello").await;
    assert_eq!(ok.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn a_session_ends_after_session_ttl() {
    let app = Showcase::start_with(&[("SESSION_TTL", "1s")]).await;
    let alice = app.account("alice@example.com").await;
    assert_eq!(app.me_with_cookie(&alice.session).await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    expect_error(
        app.me_with_cookie(&alice.session).await,
        401,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn a_session_used_keeps_going_and_one_left_idle_ends() {
    let app = Showcase::start_with(&[("SESSION_IDLE_TIMEOUT", "2s")]).await;
    let alice = app.account("alice@example.com").await;
    let bob = app.account("bob@example.com").await;
    // Alice uses her session every 1.2 s — past the first 2 s, and past 2 s after login —
    // while Bob leaves his alone.
    for _ in 0..2 {
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        assert_eq!(app.me_with_cookie(&alice.session).await.status(), 200);
    }
    expect_error(app.me_with_cookie(&bob.session).await, 401, "unauthorized").await;
    // Left alone past the timeout, hers ends too.
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    expect_error(
        app.me_with_cookie(&alice.session).await,
        401,
        "unauthorized",
    )
    .await;
}

#[test]
fn a_bad_lifetime_stops_start_up_naming_it() {
    // Zero would hand out dead credentials; past ten years the clock arithmetic could overflow.
    for name in ["SESSION_IDLE_TIMEOUT", "SESSION_TTL", "JWT_TTL"] {
        for bad in ["0", "soon", "-1s", "3651d", "99999999999999h"] {
            let env = waypost::config::Env::from_pairs([(name, bad)]);
            let error = showcase::Config::from(&env).unwrap_err();
            assert!(error.to_string().contains(name), "{name}={bad}: {error}");
        }
        for good in ["30m", "1d", "3650d"] {
            let env = waypost::config::Env::from_pairs([(name, good)]);
            assert!(showcase::Config::from(&env).is_ok(), "{name}={good}");
        }
    }
    let env = waypost::config::Env::from_pairs([("SESSION_IDLE_TIMEOUT", "off")]);
    assert!(showcase::Config::from(&env).is_ok());
}

#[tokio::test]
async fn the_session_cookie_lives_as_long_as_the_session() {
    let app = Showcase::start().await;
    app.register("alice@example.com").await;
    let response = app.login("alice@example.com", PASSWORD).await;
    let line = set_cookie_line(&response, "session");
    assert!(
        attributes(&line).contains(&format!("max-age={}", 7 * 24 * 3600)),
        "{line}"
    );
}
