//! The same showcase on Postgres: only `DATABASE_URL` changes. Each test gets a database of its
//! own, created from `WAYPOST_TEST_POSTGRES_URL` and dropped afterwards; without that variable
//! the tests say they were skipped.

mod common;

use common::{expect_error, Showcase};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::{Connection, Executor};

/// A fresh database on the test server; dropped by `drop_database`.
async fn fresh_database() -> Option<(String, String)> {
    fresh_database_with("").await
}

/// A fresh database created with `options` (after `CREATE DATABASE <name>`).
async fn fresh_database_with(options: &str) -> Option<(String, String)> {
    let Ok(base) = std::env::var("WAYPOST_TEST_POSTGRES_URL") else {
        eprintln!("skipped: WAYPOST_TEST_POSTGRES_URL is not set");
        return None;
    };
    sqlx::any::install_default_drivers();
    let name = format!("waypost_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::AnyConnection::connect(&base)
        .await
        .expect("reach Postgres");
    if let Err(error) = admin
        .execute(format!("CREATE DATABASE {name} {options}").as_str())
        .await
    {
        // Only a database with options can be refused on a working server (ICU missing, say).
        assert!(!options.is_empty(), "CREATE DATABASE failed: {error}");
        eprintln!("skipped: this server cannot create a database with {options}: {error}");
        return None;
    }
    let (prefix, _) = base.rsplit_once('/').expect("a database in the URL");
    Some((base.clone(), format!("{prefix}/{name}")))
}

async fn drop_database(base: &str, url: &str) {
    let name = url.rsplit('/').next().unwrap();
    let mut admin = sqlx::AnyConnection::connect(base).await.unwrap();
    admin
        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .unwrap();
}

#[tokio::test]
async fn the_showcase_runs_unchanged_on_postgres() {
    let Some((base, url)) = fresh_database().await else {
        return;
    };
    let app = Showcase::start_with(&[("DATABASE_URL", &url)]).await;
    let health: Value = app.get("/api/health").await.json().await.unwrap();
    assert_eq!(health, json!({ "status": "ok", "database": "ok" }));

    let alice = app.account("alice@example.com").await;
    // Emails are unique case-insensitively on Postgres too.
    assert_eq!(app.register("ALICE@example.com").await.status(), 409);

    let created = app
        .send_json_as(
            &alice,
            Method::POST,
            "/api/posts",
            json!({ "title": "Postgres post", "content": "body", "published": true, "category": "db" }),
        )
        .await;
    assert_eq!(created.status(), 201);
    let post: Value = created.json().await.unwrap();
    let duplicate = app
        .send_json_as(
            &alice,
            Method::POST,
            "/api/posts",
            json!({ "title": "Postgres post", "content": "again" }),
        )
        .await;
    assert_eq!(duplicate.status(), 409);
    let page: Value = app
        .get("/api/posts?category=db")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["pagination"]["total"], 1);
    assert_eq!(page["posts"][0]["id"], post["id"]);
    let patched: Value = app
        .send_json_as(
            &alice,
            Method::PATCH,
            &format!("/api/posts/{}", post["id"].as_str().unwrap()),
            json!({ "content": "changed" }),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(patched["content"], "changed");

    // Credits: five concurrent generations with five credits, then none left.
    let calls = (0..7).map(|_| {
        app.send_json_as(
            &alice,
            Method::POST,
            "/api/generate",
            json!({ "prompt": "hello" }),
        )
    });
    let statuses: Vec<u16> = futures_util::future::join_all(calls)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 402),
        "{statuses:?}"
    );
    assert_eq!(app.credits(&alice).await, 0);

    // The daily quota upsert: exactly the limit passes under concurrency.
    let uses = (0..6).map(|_| {
        app.as_user(&alice, Method::POST, "/api/tools/pg/use")
            .send()
    });
    let allowed = futures_util::future::join_all(uses)
        .await
        .into_iter()
        .filter(|r| r.as_ref().unwrap().status() == 200)
        .count();
    assert_eq!(allowed, 3);

    drop(app);
    drop_database(&base, &url).await;
}

#[tokio::test]
async fn a_database_dropped_under_the_server_is_503_and_the_server_keeps_serving() {
    let Some((base, url)) = fresh_database().await else {
        return;
    };
    let app = Showcase::start_with(&[("DATABASE_URL", &url)]).await;
    assert_eq!(app.get("/api/health").await.status(), 200);
    // Gone, its connections with it: every new connection is refused (3D000).
    drop_database(&base, &url).await;
    for path in ["/api/health", "/api/posts"] {
        let body = expect_error(app.get(path).await, 503, "database_unavailable").await;
        assert!(!body.to_string().contains("does not exist"), "{body}");
    }
    let response = app
        .post_json(
            "/api/contact",
            json!({ "name": "Ann", "email": "ann@example.com", "message": "hi" }),
        )
        .await;
    expect_error(response, 503, "database_unavailable").await;
    assert_eq!(app.get("/api/hello").await.status(), 200);
}

#[tokio::test]
async fn a_nul_character_is_refused_as_on_sqlite() {
    let Some((base, url)) = fresh_database().await else {
        return;
    };
    let app = Showcase::start_with(&[("DATABASE_URL", &url)]).await;
    // Postgres text cannot hold U+0000; the showcase refuses it before the database sees it.
    common::expect_nul_refused_everywhere(&app).await;
    // Still serving.
    assert_eq!(app.get("/api/posts").await.status(), 200);
    drop(app);
    drop_database(&base, &url).await;
}

/// `count` random-looking characters, none repeated in a way compression could fold.
fn incompressible(count: usize, alphabet_start: u32, alphabet_size: u32) -> String {
    let mut random = Vec::new();
    while random.len() < count {
        random.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    random[..count]
        .iter()
        .enumerate()
        .map(|(i, byte)| {
            let offset = (u32::from(*byte) * 257 + u32::try_from(i).unwrap()) % alphabet_size;
            char::from_u32(alphabet_start + offset).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn keys_longer_than_a_postgres_index_entry_still_count_once() {
    let Some((base, url)) = fresh_database().await else {
        return;
    };
    let secret = "whsec_postgres_long_keys";
    let app =
        Showcase::start_with(&[("DATABASE_URL", &url), ("STRIPE_WEBHOOK_SECRET", secret)]).await;
    let alice = app.account("alice@example.com").await;

    // A signed event whose id is 6000 random letters: credited once, a replay is not.
    let event_id = format!("evt_{}", incompressible(6000, u32::from('a'), 26));
    let body = json!({
        "id": event_id,
        "type": "payment_intent.succeeded",
        "data": { "object": { "metadata": { "userId": alice.id(), "credits": "7" } } }
    })
    .to_string();
    for _ in 0..2 {
        let signature = waypost::webhook::StripeVerifier::new(secret).sign(
            body.as_bytes(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        );
        let response = app
            .client
            .post(app.url("/api/webhooks/stripe"))
            .header("content-type", "application/json")
            .header("stripe-signature", signature)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(app.credits(&alice).await, 12);
    assert_eq!(app.count_rows("processed_webhooks").await, 1);

    // A tool named by 1000 random CJK characters (3000 bytes): counted like any other.
    let tool = incompressible(1000, 0x4E00, 20_000);
    let encoded: String = url::form_urlencoded::byte_serialize(tool.as_bytes()).collect();
    let path = format!("/api/tools/{encoded}/use");
    let mut used = Vec::new();
    for _ in 0..4 {
        let response = app
            .as_user(&alice, Method::POST, &path)
            .send()
            .await
            .unwrap();
        used.push(response.status().as_u16());
    }
    assert_eq!(used, [200, 200, 200, 429]);
    assert_eq!(app.count_rows("tool_usage").await, 1);
    drop(app);
    drop_database(&base, &url).await;
}

#[tokio::test]
async fn patches_of_different_fields_at_once_all_land_as_on_sqlite() {
    let Some((base, url)) = fresh_database().await else {
        return;
    };
    let app = Showcase::start_with(&[("DATABASE_URL", &url)]).await;
    common::expect_concurrent_patches_all_kept(&app).await;
    drop(app);
    drop_database(&base, &url).await;
}

#[tokio::test]
async fn titles_sort_as_on_sqlite_also_under_a_language_collation() {
    // ICU's English collation puts `apple` before `Apple`, and many such databases exist.
    let Some((base, url)) = fresh_database_with(
        "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8' TEMPLATE template0",
    )
    .await
    else {
        return;
    };
    let app = Showcase::start_with(&[("DATABASE_URL", &url)]).await;
    common::expect_titles_in_one_order(&app).await;
    drop(app);
    drop_database(&base, &url).await;
}
