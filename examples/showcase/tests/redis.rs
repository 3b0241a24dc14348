//! Two showcase instances sharing one database and one Redis (`WAYPOST_TEST_REDIS_URL`), as
//! two machines behind a load balancer would: a session started on one works on the other and
//! ends on both, and a rate limit counts the requests of both. Without the variable the tests
//! say they were skipped.

mod common;

use common::{expect_error, Showcase, PASSWORD};
use reqwest::Method;
use serde_json::Value;

const SECRET: &str = "a shared secret of at least thirty-two bytes";

/// Two instances over one database, one Redis and one fresh key prefix.
async fn two_instances() -> Option<(Showcase, Showcase)> {
    let Ok(url) = std::env::var("WAYPOST_TEST_REDIS_URL") else {
        eprintln!("skipped: WAYPOST_TEST_REDIS_URL is not set");
        return None;
    };
    let prefix = format!("showcase-test:{}:", uuid::Uuid::new_v4().simple());
    let shared = [
        ("REDIS_URL", url.as_str()),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
        ("JWT_SECRET", SECRET),
    ];
    let first = Showcase::start_with(&shared).await;
    let mut second_vars = shared.to_vec();
    second_vars.push(("DATABASE_URL", first.database_url.as_str()));
    let second = Showcase::start_with(&second_vars).await;
    Some((first, second))
}

#[tokio::test]
async fn a_session_started_on_one_instance_works_and_ends_on_the_other() {
    let Some((first, second)) = two_instances().await else {
        return;
    };
    let account = first.account("shared@example.com").await;
    let response = second.me_with_cookie(&account.session).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["id"], account.user["id"]);

    // Log out on the second instance (a browser: cookies plus a CSRF token from the first).
    let browser = first.browser(&account).await;
    let response = second
        .as_browser(&browser, Method::POST, "/api/auth/logout")
        .header("x-csrf-token", &browser.csrf_token)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    for instance in [&first, &second] {
        expect_error(
            instance.me_with_cookie(&account.session).await,
            401,
            "unauthorized",
        )
        .await;
    }
}

#[tokio::test]
async fn the_login_limit_counts_both_instances_together() {
    let Some((first, second)) = two_instances().await else {
        return;
    };
    assert_eq!(first.register("limited@example.com").await.status(), 201);
    let mut statuses = Vec::new();
    for attempt in 0..12 {
        let instance = if attempt % 2 == 0 { &first } else { &second };
        let response = instance
            .login("limited@example.com", "wrong password")
            .await;
        if response.status() == 429 {
            assert!(response.headers().contains_key("retry-after"));
            assert!(response.headers().contains_key("ratelimit-policy"));
        }
        statuses.push(response.status().as_u16());
    }
    // 10 per 60 s per IP, whichever instance answers.
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 10);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 2);
    // Even the right password is refused now, on both.
    for instance in [&first, &second] {
        let response = instance.login("limited@example.com", PASSWORD).await;
        expect_error(response, 429, "rate_limited").await;
    }
}
