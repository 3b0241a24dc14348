//! The contract's daily tool quota: counted per (user, else client IP) and tool, never past the
//! limit under concurrency, unlimited for admins.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::{expect_error, Account, Showcase};
use reqwest::Method;
use serde_json::{json, Value};

/// The next midnight UTC, as the route reports it.
fn next_midnight() -> String {
    let today = time::OffsetDateTime::now_utc().date();
    format!("{}T00:00:00Z", today.next_day().unwrap())
}

/// A client whose requests come from `127.0.0.<last>`.
fn client_from(last: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .build()
        .unwrap()
}

fn path(tool: &str) -> String {
    format!("/api/tools/{tool}/use")
}

async fn use_anonymously(
    app: &Showcase,
    client: &reqwest::Client,
    tool: &str,
) -> reqwest::Response {
    client.post(app.url(&path(tool))).send().await.unwrap()
}

async fn use_as(app: &Showcase, account: &Account, tool: &str) -> reqwest::Response {
    app.as_user(account, Method::POST, &path(tool))
        .send()
        .await
        .unwrap()
}

/// The 200 body, checked against the contract's shape.
async fn allowed(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["allowed"], true, "{body}");
    assert_eq!(body["resetsAt"], next_midnight().as_str(), "{body}");
    assert_eq!(body.as_object().unwrap().len(), 4, "{body}");
    body
}

/// The 429 body, checked against the contract's shape.
async fn refused(response: reqwest::Response) -> Value {
    // Like every 429, it says when to come back: the seconds left until `resetsAt`.
    let retry_after: i64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let midnight = time::OffsetDateTime::parse(
        &next_midnight(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = (midnight - time::OffsetDateTime::now_utc()).whole_seconds();
    assert!(
        (1..=86_400).contains(&retry_after) && (retry_after - left).abs() <= 2,
        "Retry-After {retry_after}, {left} s to midnight"
    );
    let body = expect_error(response, 429, "quota_exceeded").await;
    assert_eq!(body["allowed"], false, "{body}");
    assert_eq!(body["resetsAt"], next_midnight().as_str(), "{body}");
    body
}

/// `used` as stored, for `subject` and `tool` today.
async fn stored_use(app: &Showcase, subject: &str, tool: &str) -> Option<i64> {
    let pool = waypost::database::connect(&app.database_url).await.unwrap();
    let used = sqlx::query_scalar("SELECT used FROM tool_usage WHERE subject = $1 AND tool = $2")
        .bind(subject)
        .bind(tool)
        .fetch_optional(&pool)
        .await
        .unwrap();
    pool.close().await;
    used
}

#[tokio::test]
async fn three_uses_are_allowed_and_the_fourth_is_429_quota_exceeded() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    for used in 1..=3 {
        let body = allowed(use_as(&app, &alice, "summarize").await).await;
        assert_eq!(
            body,
            json!({ "allowed": true, "limit": 3, "used": used, "resetsAt": next_midnight() })
        );
    }
    let body = refused(use_as(&app, &alice, "summarize").await).await;
    assert_eq!(body["limit"], 3);
    assert_eq!(body["used"], 3);
    let subject = format!("user:{}", alice.id());
    assert_eq!(stored_use(&app, &subject, "summarize").await, Some(3));
}

#[tokio::test]
async fn ten_concurrent_uses_with_limit_3_allow_exactly_3() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    let calls = (0..10).map(|_| use_as(&app, &alice, "translate"));
    let mut used_when_allowed = Vec::new();
    let mut refusals = 0;
    for response in futures_util::future::join_all(calls).await {
        if response.status() == 200 {
            used_when_allowed.push(allowed(response).await["used"].as_u64().unwrap());
        } else {
            let body = refused(response).await;
            assert_eq!(body["used"], 3, "used never exceeds the limit: {body}");
            refusals += 1;
        }
    }
    used_when_allowed.sort_unstable();
    assert_eq!(used_when_allowed, vec![1, 2, 3]);
    assert_eq!(refusals, 7);
    let subject = format!("user:{}", alice.id());
    assert_eq!(stored_use(&app, &subject, "translate").await, Some(3));
}

#[tokio::test]
async fn quotas_are_independent_per_tool_per_client_ip_and_per_user() {
    let app = Showcase::start().await;
    let (first_ip, second_ip) = (client_from(2), client_from(3));
    for used in 1..=3 {
        let body = allowed(use_anonymously(&app, &first_ip, "ocr").await).await;
        assert_eq!(body["used"], used);
    }
    refused(use_anonymously(&app, &first_ip, "ocr").await).await;

    // Another IP, the same tool: its own count.
    assert_eq!(
        allowed(use_anonymously(&app, &second_ip, "ocr").await).await["used"],
        1
    );
    // The same IP, another tool: its own count.
    assert_eq!(
        allowed(use_anonymously(&app, &first_ip, "resize").await).await["used"],
        1
    );

    // Signed-in users are counted by user id, not by the IP they come from.
    let alice = app.account("alice@example.com").await;
    let bob = app.account("bob@example.com").await;
    let from_first_ip = |account: &Account| {
        first_ip
            .post(app.url(&path("ocr")))
            .bearer_auth(account.token.clone())
    };
    for used in 1..=3 {
        let body = allowed(from_first_ip(&alice).send().await.unwrap()).await;
        assert_eq!(body["used"], used);
    }
    refused(from_first_ip(&alice).send().await.unwrap()).await;
    assert_eq!(
        allowed(from_first_ip(&bob).send().await.unwrap()).await["used"],
        1
    );

    assert_eq!(stored_use(&app, "ip:127.0.0.2", "ocr").await, Some(3));
    assert_eq!(stored_use(&app, "ip:127.0.0.3", "ocr").await, Some(1));
    assert_eq!(stored_use(&app, "ip:127.0.0.2", "resize").await, Some(1));
    assert_eq!(
        stored_use(&app, &format!("user:{}", alice.id()), "ocr").await,
        Some(3)
    );
    assert_eq!(
        stored_use(&app, &format!("user:{}", bob.id()), "ocr").await,
        Some(1)
    );
}

#[tokio::test]
async fn admins_are_unlimited() {
    let app = Showcase::start_with(&[("ADMIN_EMAILS", "root@example.com")]).await;
    let root = app.account("root@example.com").await;
    for used in 1..=6 {
        let body = allowed(use_as(&app, &root, "summarize").await).await;
        assert_eq!(body["limit"], "unlimited");
        assert_eq!(body["used"], used);
    }
}

#[tokio::test]
async fn tool_daily_limit_sets_the_limit() {
    let app = Showcase::start_with(&[("TOOL_DAILY_LIMIT", "1")]).await;
    let alice = app.account("alice@example.com").await;
    let body = allowed(use_as(&app, &alice, "summarize").await).await;
    assert_eq!(
        (body["limit"].clone(), body["used"].clone()),
        (json!(1), json!(1))
    );
    let body = refused(use_as(&app, &alice, "summarize").await).await;
    assert_eq!(
        (body["limit"].clone(), body["used"].clone()),
        (json!(1), json!(1))
    );

    let app = Showcase::start_with(&[("TOOL_DAILY_LIMIT", "0")]).await;
    let alice = app.account("alice@example.com").await;
    let body = refused(use_as(&app, &alice, "summarize").await).await;
    assert_eq!(
        (body["limit"].clone(), body["used"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(app.count_rows("tool_usage").await, 0);
}

#[tokio::test]
async fn an_oversized_tool_id_is_400_an_empty_one_404_and_neither_counts() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    expect_error(
        use_as(&app, &alice, &"x".repeat(1025)).await,
        400,
        "validation_failed",
    )
    .await;
    // `/api/tools//use` names no tool: no route serves it.
    expect_error(use_as(&app, &alice, "").await, 404, "not_found").await;
    assert_eq!(app.count_rows("tool_usage").await, 0);
    // Any other id names a tool: it is only ever a bound SQL value.
    let response = use_as(&app, &alice, "image.resize-v2").await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.count_rows("tool_usage").await, 1);
}

#[tokio::test]
async fn an_anonymous_ipv6_client_is_counted_by_its_64_network() {
    let app = Showcase::start_with(&[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    let from = |address: &str| {
        app.client
            .post(app.url(&path("ocr")))
            .header("x-forwarded-for", address)
            .send()
    };
    // Three uses from three addresses of one /64 are its day's three.
    for (address, used) in [
        ("2001:db8:1:2::1", 1),
        ("2001:db8:1:2::2", 2),
        ("2001:db8:1:2:ab::3", 3),
    ] {
        assert_eq!(allowed(from(address).await.unwrap()).await["used"], used);
    }
    refused(from("2001:db8:1:2::4").await.unwrap()).await;
    assert_eq!(
        allowed(from("2001:db8:1:3::1").await.unwrap()).await["used"],
        1
    );
    assert_eq!(stored_use(&app, "ip:2001:db8:1:2::", "ocr").await, Some(3));
    assert_eq!(stored_use(&app, "ip:2001:db8:1:3::", "ocr").await, Some(1));
}
