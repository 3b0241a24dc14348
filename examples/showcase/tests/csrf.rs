//! CSRF: a cookie-carrying write needs a token bound to the client's `csrf` cookie (header,
//! query or form field); cross-site Fetch Metadata and foreign origins are refused whatever the
//! token; bearer-only clients need none. A refused write never takes effect.

mod common;

use common::{cookie_named, expect_error, Account, Browser, Showcase};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{json, Value};

fn new_post(title: &str) -> Value {
    json!({ "title": title, "content": "Written from a browser", "published": true })
}

async fn send(request: RequestBuilder) -> Response {
    request.send().await.unwrap()
}

async fn signed_in(app: &Showcase) -> (Account, Browser) {
    let alice = app.account("alice@example.com").await;
    let browser = app.browser(&alice).await;
    (alice, browser)
}

async fn me(app: &Showcase, session: &str) -> u16 {
    app.client
        .get(app.url("/api/auth/me"))
        .header("cookie", format!("session={session}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn post_with_the_session_cookie_but_no_token_is_rejected_with_403() {
    let app = Showcase::start().await;
    let (_, browser) = signed_in(&app).await;
    let refused = send(
        app.as_browser(&browser, Method::POST, "/api/posts")
            .json(&new_post("No token here")),
    )
    .await;
    expect_error(refused, 403, "csrf_invalid").await;
    // Only the session cookie, no csrf cookie at all.
    let refused = send(
        app.client
            .post(app.url("/api/posts"))
            .header("cookie", format!("session={}", browser.session))
            .header("x-csrf-token", &browser.csrf_token)
            .json(&new_post("No csrf cookie")),
    )
    .await;
    expect_error(refused, 403, "csrf_invalid").await;
    assert_eq!(app.count_rows("posts").await, 0);
}

#[tokio::test]
async fn put_patch_and_delete_without_a_token_are_rejected_and_change_nothing() {
    let app = Showcase::start().await;
    let (alice, browser) = signed_in(&app).await;
    let created: Value = app
        .send_json_as(
            &alice,
            Method::POST,
            "/api/posts",
            new_post("Original title"),
        )
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/api/posts/{}", created["id"].as_str().unwrap());
    for method in [Method::PUT, Method::PATCH] {
        let refused = send(
            app.as_browser(&browser, method, &path)
                .json(&json!({ "title": "Changed title", "content": "changed" })),
        )
        .await;
        expect_error(refused, 403, "csrf_invalid").await;
    }
    expect_error(
        send(app.as_browser(&browser, Method::DELETE, &path)).await,
        403,
        "csrf_invalid",
    )
    .await;
    let after: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(after, created, "the post is untouched");
}

#[tokio::test]
async fn a_token_made_for_another_clients_cookie_is_rejected() {
    let app = Showcase::start().await;
    let (_, browser) = signed_in(&app).await;
    let (_, attackers_token) = app.csrf().await;
    let refused = send(
        app.as_browser(&browser, Method::POST, "/api/posts")
            .header("x-csrf-token", attackers_token)
            .json(&new_post("Lifted token")),
    )
    .await;
    expect_error(refused, 403, "csrf_invalid").await;
    let refused = send(
        app.as_browser(&browser, Method::POST, "/api/posts")
            .header("x-csrf-token", "not.a-token")
            .json(&new_post("Garbage token")),
    )
    .await;
    expect_error(refused, 403, "csrf_invalid").await;
    assert_eq!(app.count_rows("posts").await, 0);
}

#[tokio::test]
async fn sec_fetch_site_cross_site_is_rejected_even_with_a_valid_token() {
    let app = Showcase::start().await;
    let (alice, browser) = signed_in(&app).await;
    let refused = send(
        app.as_browser(&browser, Method::POST, "/api/posts")
            .header("x-csrf-token", &browser.csrf_token)
            .header("sec-fetch-site", "cross-site")
            .json(&new_post("Cross site post")),
    )
    .await;
    expect_error(refused, 403, "csrf_invalid").await;
    // It is refused for any unsafe request, cookie or not.
    let refused = send(
        app.as_user(&alice, Method::POST, "/api/posts")
            .header("sec-fetch-site", "cross-site")
            .json(&new_post("Cross site bearer")),
    )
    .await;
    expect_error(refused, 403, "csrf_invalid").await;
    assert_eq!(app.count_rows("posts").await, 0);
    // Same-origin Fetch Metadata is fine.
    let allowed = send(
        app.as_browser(&browser, Method::POST, "/api/posts")
            .header("x-csrf-token", &browser.csrf_token)
            .header("sec-fetch-site", "same-origin")
            .json(&new_post("Same origin post")),
    )
    .await;
    assert_eq!(allowed.status(), 201);
    assert_eq!(app.count_rows("posts").await, 1);
}

#[tokio::test]
async fn a_foreign_origin_is_rejected_even_with_a_valid_token() {
    let app = Showcase::start().await;
    let (alice, browser) = signed_in(&app).await;
    let port = app.server.address().port();
    let foreign = [
        "https://evil.example".to_owned(),
        "null".to_owned(),
        format!("http://127.0.0.1:{}", port + 1),
        format!("http://127.0.0.1.evil.example:{port}"),
    ];
    for origin in &foreign {
        let refused = send(
            app.as_browser(&browser, Method::POST, "/api/posts")
                .header("x-csrf-token", &browser.csrf_token)
                .header("origin", origin)
                .json(&new_post("Foreign origin post")),
        )
        .await;
        expect_error(refused, 403, "csrf_invalid").await;
        let refused = send(
            app.as_user(&alice, Method::POST, "/api/posts")
                .header("origin", origin)
                .json(&new_post("Foreign origin bearer")),
        )
        .await;
        expect_error(refused, 403, "csrf_invalid").await;
    }
    assert_eq!(app.count_rows("posts").await, 0);
}

#[tokio::test]
async fn a_same_origin_origin_header_passes() {
    let app = Showcase::start().await;
    let (_, browser) = signed_in(&app).await;
    let origin = format!("http://127.0.0.1:{}", app.server.address().port());
    let response = send(
        app.as_browser(&browser, Method::POST, "/api/posts")
            .header("x-csrf-token", &browser.csrf_token)
            .header("origin", origin)
            .json(&new_post("Same origin")),
    )
    .await;
    assert_eq!(response.status(), 201);
    assert_eq!(app.count_rows("posts").await, 1);
}

#[tokio::test]
async fn over_http2_the_servers_own_origin_passes_and_a_foreign_one_does_not() {
    let app = Showcase::start().await;
    // HTTP/2 names the host in `:authority`; there is no `Host` header to compare with.
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let own = format!("http://127.0.0.1:{}", app.server.address().port());
    let contact = serde_json::json!({ "name": "Ann", "email": "ann@example.com", "message": "hi" });
    for (origin, status) in [(own.as_str(), 200), ("http://evil.example", 403)] {
        let response = client
            .post(app.url("/api/contact"))
            .header("origin", origin)
            .json(&contact)
            .send()
            .await
            .unwrap();
        assert_eq!(response.version(), reqwest::Version::HTTP_2);
        assert_eq!(response.status(), status, "{origin}");
    }
    assert_eq!(app.count_rows("contact_messages").await, 1);
}

#[tokio::test]
async fn a_method_a_route_does_not_export_is_405_whatever_its_provenance() {
    let app = Showcase::start().await;
    let (_, browser) = signed_in(&app).await;
    for (method, path, allow) in [
        (Method::PUT, "/api/hello", "GET, HEAD, OPTIONS"),
        (Method::DELETE, "/api/auth/me", "GET, HEAD, OPTIONS"),
        (Method::PATCH, "/api/posts", "GET, POST, HEAD, OPTIONS"),
        // A route guarded as a whole (its body limit is above the default).
        (Method::PUT, "/api/upload", "POST, OPTIONS"),
    ] {
        // A session cookie without a token, a foreign Origin, a cross-site fetch: each would
        // fail the CSRF check of a method the route has.
        for request in [
            app.as_browser(&browser, method.clone(), path),
            app.client
                .request(method.clone(), app.url(path))
                .header("origin", "http://evil.example"),
            app.client
                .request(method.clone(), app.url(path))
                .header("sec-fetch-site", "cross-site"),
        ] {
            let response = send(request).await;
            assert_eq!(response.headers()["allow"], allow, "{method} {path}");
            expect_error(response, 405, "method_not_allowed").await;
        }
    }
}

#[tokio::test]
async fn an_allowed_cors_origin_passes_the_origin_check() {
    let app = Showcase::start_with(&[("CORS_ORIGINS", "https://app.example.com")]).await;
    let (_, browser) = signed_in(&app).await;
    let response = send(
        app.as_browser(&browser, Method::POST, "/api/posts")
            .header("x-csrf-token", &browser.csrf_token)
            .header("origin", "https://app.example.com")
            .json(&new_post("From the SPA")),
    )
    .await;
    assert_eq!(response.status(), 201);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let refused = send(
        app.as_browser(&browser, Method::POST, "/api/posts")
            .header("x-csrf-token", &browser.csrf_token)
            .header("origin", "https://app.example.com.evil.com")
            .json(&new_post("From a look-alike")),
    )
    .await;
    expect_error(refused, 403, "csrf_invalid").await;
    assert_eq!(app.count_rows("posts").await, 1);
}

#[tokio::test]
async fn a_valid_token_in_the_header_passes() {
    let app = Showcase::start().await;
    let (alice, browser) = signed_in(&app).await;
    let response = send(
        app.as_browser(&browser, Method::POST, "/api/posts")
            .header("x-csrf-token", &browser.csrf_token)
            .json(&new_post("Header token")),
    )
    .await;
    assert_eq!(response.status(), 201);
    let post: Value = response.json().await.unwrap();
    assert_eq!(post["authorId"], alice.id(), "the session's user wrote it");
    assert_eq!(app.count_rows("posts").await, 1);
}

#[tokio::test]
async fn a_valid_token_in_the_query_passes() {
    let app = Showcase::start().await;
    let (alice, browser) = signed_in(&app).await;
    let created: Value = app
        .send_json_as(
            &alice,
            Method::POST,
            "/api/posts",
            new_post("To be deleted"),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let response = send(
        app.as_browser(&browser, Method::DELETE, &format!("/api/posts/{id}"))
            .query(&[("token", &browser.csrf_token)]),
    )
    .await;
    assert_eq!(response.status(), 204);
    assert_eq!(app.count_rows("posts").await, 0);
}

#[tokio::test]
async fn a_valid_token_in_a_form_field_passes() {
    let app = Showcase::start().await;
    let (_, browser) = signed_in(&app).await;
    assert_eq!(me(&app, &browser.session).await, 200);
    let response = send(
        app.as_browser(&browser, Method::POST, "/api/auth/logout")
            .form(&[("_csrf", browser.csrf_token.as_str())]),
    )
    .await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        me(&app, &browser.session).await,
        401,
        "the logout took effect"
    );
}

#[tokio::test]
async fn a_wrong_form_token_is_rejected_and_the_session_survives() {
    let app = Showcase::start().await;
    let (_, browser) = signed_in(&app).await;
    let (_, other_token) = app.csrf().await;
    for form in [
        vec![("_csrf", other_token.as_str())],
        vec![("_csrf", "")],
        vec![("csrf", browser.csrf_token.as_str())],
    ] {
        let refused = send(
            app.as_browser(&browser, Method::POST, "/api/auth/logout")
                .form(&form),
        )
        .await;
        expect_error(refused, 403, "csrf_invalid").await;
    }
    assert_eq!(me(&app, &browser.session).await, 200, "still signed in");
}

#[tokio::test]
async fn a_form_token_is_looked_for_only_in_the_first_mebibyte_of_the_form() {
    let app = Showcase::start().await;
    let (_, browser) = signed_in(&app).await;
    let token = browser.csrf_token.as_str();
    // The upload route takes bodies far past 1 MiB; the check, which runs for anyone before
    // the handler, does not read such a form whole to find a token.
    // A little past the search: the refusal reads the rest, so the 403 is not lost to a reset.
    let padding = "a".repeat(1024 * 1024 + 64 * 1024);
    let late = send(
        app.as_browser(&browser, Method::POST, "/api/upload")
            .form(&[("padding", padding.as_str()), ("_csrf", token)]),
    )
    .await;
    expect_error(late, 403, "csrf_invalid").await;
    // The same token up front passes the check; the handler then wants a multipart body.
    let early = send(
        app.as_browser(&browser, Method::POST, "/api/upload")
            .form(&[("_csrf", token), ("padding", "a")]),
    )
    .await;
    expect_error(early, 415, "unsupported_media_type").await;
    assert_eq!(
        std::fs::read_dir(&app.upload_dir).unwrap().count(),
        0,
        "nothing stored"
    );
    assert_eq!(me(&app, &browser.session).await, 200, "still signed in");
}

#[tokio::test]
async fn bearer_only_requests_need_no_token() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    let response = app
        .send_json_as(&alice, Method::POST, "/api/posts", new_post("Bearer post"))
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(app.count_rows("posts").await, 1);
}

#[tokio::test]
async fn a_bearer_token_does_not_excuse_a_cookie_from_the_check() {
    let app = Showcase::start().await;
    let (alice, browser) = signed_in(&app).await;
    let refused = send(
        app.as_browser(&browser, Method::POST, "/api/posts")
            .bearer_auth(&alice.token)
            .json(&new_post("Bearer plus cookie")),
    )
    .await;
    expect_error(refused, 403, "csrf_invalid").await;
    assert_eq!(app.count_rows("posts").await, 0);
}

#[tokio::test]
async fn get_csrf_sets_the_cookie_only_when_absent() {
    let app = Showcase::start().await;
    let first = app.get("/api/csrf").await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["cache-control"], "no-store");
    let cookie = cookie_named(&first, "csrf").expect("a csrf cookie for a new client");
    let body: Value = first.json().await.unwrap();
    assert!(body["token"].as_str().is_some_and(|t| !t.is_empty()));

    let again = send(
        app.client
            .get(app.url("/api/csrf"))
            .header("cookie", format!("csrf={cookie}")),
    )
    .await;
    assert_eq!(again.status(), 200);
    assert!(
        again.headers().get("set-cookie").is_none(),
        "the client keeps its cookie"
    );
    // Either way the token is this client's alone: no cache may keep it.
    assert_eq!(again.headers()["cache-control"], "no-store");
    let token = again.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(token, body["token"].as_str().unwrap(), "tokens are salted");

    // The second token is bound to the kept cookie: it works for a signed-in browser using it.
    let alice = app.account("alice@example.com").await;
    let browser = Browser {
        session: alice.session.clone(),
        csrf_cookie: cookie,
        csrf_token: token,
    };
    let response = send(
        app.as_browser(&browser, Method::POST, "/api/posts")
            .header("x-csrf-token", &browser.csrf_token)
            .json(&new_post("With the kept cookie")),
    )
    .await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn safe_methods_need_no_token() {
    let app = Showcase::start().await;
    let (_, browser) = signed_in(&app).await;
    for (method, path) in [
        (Method::GET, "/api/auth/me"),
        (Method::GET, "/api/posts"),
        (Method::HEAD, "/api/posts"),
        (Method::OPTIONS, "/api/posts"),
    ] {
        let response = send(app.as_browser(&browser, method.clone(), path)).await;
        assert!(response.status().is_success(), "{method} {path}");
    }
}
