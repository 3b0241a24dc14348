//! Rate limits: exactly the configured number pass, also under concurrency; the key is the user
//! when signed in, else the socket's peer address (`X-Forwarded-For` only from trusted proxies;
//! an IPv6 address by its /64);
//! each route counts on its own; login has its own 10 a minute per IP.

mod common;

use std::net::IpAddr;

use common::{expect_error, session_cookie, Showcase, PASSWORD};
use futures_util::future::join_all;
use reqwest::{Client, Response, StatusCode};

const N: usize = 5;

async fn start() -> Showcase {
    Showcase::start_with(&[("RATE_LIMIT_DEFAULT", "5/60s")]).await
}

fn client_from(address: &str) -> Client {
    Client::builder()
        .local_address(address.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn hello(app: &Showcase, client: &Client) -> Response {
    client.get(app.url("/api/hello")).send().await.unwrap()
}

async fn hello_with_xff(app: &Showcase, forwarded_for: &str) -> StatusCode {
    app.client
        .get(app.url("/api/hello"))
        .header("x-forwarded-for", forwarded_for)
        .send()
        .await
        .unwrap()
        .status()
}

/// How many of `count` sequential requests to `/api/hello` from `client` pass.
async fn passing(app: &Showcase, client: &Client, count: usize) -> usize {
    let mut passed = 0;
    for _ in 0..count {
        if hello(app, client).await.status() == 200 {
            passed += 1;
        }
    }
    passed
}

/// Asserts a well-formed 429.
async fn expect_rate_limited(response: Response) {
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After is whole seconds");
    assert!(retry_after >= 1, "{retry_after}");
    assert!(response.headers().contains_key("ratelimit-policy"));
    assert!(response.headers().contains_key("ratelimit"));
    expect_error(response, 429, "rate_limited").await;
}

#[tokio::test]
async fn exactly_n_of_3n_concurrent_requests_pass() {
    let app = start().await;
    let responses = join_all((0..3 * N).map(|_| hello(&app, &app.client))).await;
    let mut passed = 0;
    let mut refused = Vec::new();
    for response in responses {
        match response.status().as_u16() {
            200 => passed += 1,
            429 => refused.push(response),
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(passed, N);
    assert_eq!(refused.len(), 2 * N);
    for response in refused {
        let policy = response.headers()["ratelimit-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            policy.contains("q=5") && policy.contains("w=60"),
            "{policy}"
        );
        let state = response.headers()["ratelimit"].to_str().unwrap().to_owned();
        assert!(state.contains("r=0"), "{state}");
        expect_rate_limited(response).await;
    }
}

#[tokio::test]
async fn successful_responses_carry_ratelimit_headers_counting_down() {
    let app = start().await;
    for remaining in (0..N).rev() {
        let response = hello(&app, &app.client).await;
        assert_eq!(response.status(), 200);
        let policy = response.headers()["ratelimit-policy"].to_str().unwrap();
        assert_eq!(policy, "\"default\";q=5;w=60");
        let state = response.headers()["ratelimit"].to_str().unwrap();
        assert!(state.contains(&format!("r={remaining};")), "{state}");
    }
    expect_rate_limited(hello(&app, &app.client).await).await;
}

#[tokio::test]
async fn clients_on_different_addresses_have_their_own_quota() {
    let app = start().await;
    let (two, three) = (client_from("127.0.0.2"), client_from("127.0.0.3"));
    assert_eq!(passing(&app, &two, 2 * N).await, N);
    assert_eq!(passing(&app, &three, 2 * N).await, N);
    assert_eq!(passing(&app, &app.client, 2 * N).await, N);
}

#[tokio::test]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing() {
    let app = start().await;
    let mut passed = 0;
    for i in 0..3 * N {
        if hello_with_xff(&app, &format!("203.0.113.{i}")).await == 200 {
            passed += 1;
        }
    }
    assert_eq!(passed, N, "every spoofed address shared the peer's bucket");
    // And the peer itself has nothing left.
    expect_rate_limited(hello(&app, &app.client).await).await;
}

#[tokio::test]
async fn forwarded_for_separates_clients_behind_a_trusted_proxy() {
    let app = Showcase::start_with(&[
        ("RATE_LIMIT_DEFAULT", "5/60s"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    for client in ["203.0.113.1", "203.0.113.2"] {
        let mut passed = 0;
        for _ in 0..2 * N {
            if hello_with_xff(&app, client).await == 200 {
                passed += 1;
            }
        }
        assert_eq!(passed, N, "{client}");
    }
    // What the client itself wrote to the left of the proxy's entry is ignored.
    let mut passed = 0;
    for i in 0..2 * N {
        if hello_with_xff(&app, &format!("10.9.9.{i}, 203.0.113.3")).await == 200 {
            passed += 1;
        }
    }
    assert_eq!(passed, N);
    // A peer that is not a trusted proxy is still counted by its own address.
    let other = client_from("127.0.0.2");
    let mut passed = 0;
    for i in 0..2 * N {
        let status = other
            .get(app.url("/api/hello"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .send()
            .await
            .unwrap()
            .status();
        if status == 200 {
            passed += 1;
        }
    }
    assert_eq!(passed, N);
}

#[tokio::test]
async fn ipv6_clients_behind_a_trusted_proxy_are_counted_by_their_64_network() {
    let app = Showcase::start_with(&[
        ("RATE_LIMIT_DEFAULT", "5/60s"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    // Five addresses of one /64 share its five requests.
    let mut passed = 0;
    for i in 1..=2 * N {
        if hello_with_xff(&app, &format!("2001:db8:1:2::{i:x}")).await == 200 {
            passed += 1;
        }
    }
    assert_eq!(passed, N);
    // The next /64 has its own.
    assert_eq!(hello_with_xff(&app, "2001:db8:1:3::1").await, 200);
}

#[tokio::test]
async fn login_allows_ten_attempts_a_minute_per_ip_even_with_the_right_password() {
    let app = Showcase::start().await;
    assert_eq!(app.register("alice@example.com").await.status(), 201);
    for attempt in 1..=10 {
        let response = app.login("alice@example.com", PASSWORD).await;
        assert_eq!(response.status(), 200, "attempt {attempt}");
        // The route's own policy, named after it: not the app-wide "default".
        let policy = response.headers()["ratelimit-policy"].to_str().unwrap();
        assert_eq!(policy, "\"/api/auth/login\";q=10;w=60");
        let state = response.headers()["ratelimit"].to_str().unwrap();
        let prefix = format!("\"/api/auth/login\";r={};t=", 10 - attempt);
        assert!(state.starts_with(&prefix), "{state}");
    }
    let refused = app.login("alice@example.com", PASSWORD).await;
    assert!(
        session_cookie(&refused).is_none(),
        "no session for a refused login"
    );
    expect_rate_limited(refused).await;
    // Another address may still log in.
    let elsewhere = client_from("127.0.0.2")
        .post(app.url("/api/auth/login"))
        .json(&serde_json::json!({ "email": "alice@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 200);
}

#[tokio::test]
async fn logins_a_browser_sent_from_another_site_are_refused_without_being_counted() {
    let app = Showcase::start().await;
    assert_eq!(app.register("alice@example.com").await.status(), 201);
    // What a page elsewhere makes its visitors' browsers send, twenty times over: refused as
    // CSRF, and none of them spends the address's ten attempts.
    for attempt in 0..20 {
        let forged = app
            .client
            .post(app.url("/api/auth/login"))
            .header("origin", "https://evil.example")
            .header(
                "sec-fetch-site",
                if attempt % 2 == 0 {
                    "cross-site"
                } else {
                    "same-origin"
                },
            )
            .header("content-type", "text/plain")
            .body(format!(
                r#"{{"email":"alice@example.com","password":"guess {attempt}"}}"#
            ))
            .send()
            .await
            .unwrap();
        assert!(!forged.headers().contains_key("ratelimit"), "not counted");
        expect_error(forged, 403, "csrf_invalid").await;
    }
    let own = app.login("alice@example.com", PASSWORD).await;
    assert_eq!(own.status(), 200);
    let state = own.headers()["ratelimit"].to_str().unwrap();
    assert!(
        state.starts_with("\"/api/auth/login\";r=9;"),
        "the first counted: {state}"
    );
}

#[tokio::test]
async fn failed_logins_count_against_the_same_limit() {
    let app = Showcase::start().await;
    assert_eq!(app.register("alice@example.com").await.status(), 201);
    let attempts = join_all((0..12).map(|_| app.login("alice@example.com", "guess guess"))).await;
    let statuses: Vec<u16> = attempts.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 401).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 429).count(),
        2,
        "{statuses:?}"
    );
    expect_rate_limited(app.login("alice@example.com", PASSWORD).await).await;
}

#[tokio::test]
async fn signed_in_callers_are_counted_by_user_not_by_address() {
    let app = start().await;
    let alice = app.account("alice@example.com").await;
    let bob = app.account("bob@example.com").await;
    for account in [&alice, &bob] {
        let mut passed = 0;
        for _ in 0..2 * N {
            let response = app
                .as_user(account, reqwest::Method::GET, "/api/hello")
                .send()
                .await
                .unwrap();
            if response.status() == 200 {
                passed += 1;
            }
        }
        assert_eq!(passed, N, "{}", account.user["email"]);
    }
    // Alice's quota follows her to another address.
    let elsewhere = client_from("127.0.0.2")
        .get(app.url("/api/hello"))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    expect_rate_limited(elsewhere).await;
    // The anonymous bucket of the shared address is untouched.
    assert_eq!(passing(&app, &app.client, 2 * N).await, N);
}

#[tokio::test]
async fn each_route_has_its_own_quota() {
    let app = start().await;
    assert_eq!(passing(&app, &app.client, 2 * N).await, N);
    expect_rate_limited(hello(&app, &app.client).await).await;
    let posts = app.get("/api/posts").await;
    assert_eq!(posts.status(), 200);
    assert!(posts.headers().contains_key("ratelimit"));
}

#[tokio::test]
async fn nothing_more_passes_until_the_window_ends_then_the_whole_quota_is_back() {
    let app = Showcase::start_with(&[("RATE_LIMIT_DEFAULT", "5/2s")]).await;
    let client = client_from("127.0.0.21");
    assert_eq!(passing(&app, &client, 8).await, N);
    // A refill spread over the window (one every 0.4 s) would let these through.
    for _ in 0..2 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let response = hello(&app, &client).await;
        let state = response.headers()["ratelimit"].to_str().unwrap().to_owned();
        assert!(state.contains(";r=0;"), "{state}");
        expect_rate_limited(response).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(passing(&app, &client, 8).await, N, "a new window, in full");
}

#[tokio::test]
async fn the_frameworks_own_answers_do_not_use_up_a_routes_budget() {
    let app = Showcase::start().await;
    assert_eq!(app.register("alice@example.com").await.status(), 201);
    // OPTIONS (204 with Allow) and methods login does not export (405) reach no handler.
    for _ in 0..12 {
        let options = app
            .client
            .request(reqwest::Method::OPTIONS, app.url("/api/auth/login"))
            .send()
            .await
            .unwrap();
        assert_eq!(options.status(), 204);
        assert_eq!(options.headers()["allow"], "POST, OPTIONS");
        expect_error(app.get("/api/auth/login").await, 405, "method_not_allowed").await;
    }
    // All ten logins of the minute are still there.
    for attempt in 1..=10 {
        let response = app.login("alice@example.com", PASSWORD).await;
        assert_eq!(response.status(), 200, "attempt {attempt}");
    }
    expect_rate_limited(app.login("alice@example.com", PASSWORD).await).await;
}
