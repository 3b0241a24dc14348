//! The contract's "Basics": hello, health, stream, docs, contact — status, body and state.

mod common;

use std::time::{Duration, Instant};

use common::{expect_error, Showcase};
use futures_util::StreamExt;
use serde_json::{json, Value};

#[tokio::test]
async fn hello_says_hello() {
    let app = Showcase::start().await;
    let response = app.get("/api/hello").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "message": "Hello" })
    );
}

#[tokio::test]
async fn a_sane_request_id_is_echoed_and_any_other_replaced_also_in_error_bodies() {
    let app = Showcase::start().await;
    let sane = format!("req-{}.a_B", "x".repeat(56));
    assert_eq!(sane.len(), 64);
    let with_id = |path: &str, id: &str| {
        app.client
            .get(app.url(path))
            .header("x-request-id", id)
            .send()
    };
    let response = with_id("/api/hello", &sane).await.unwrap();
    assert_eq!(response.headers()["x-request-id"], sane.as_str());
    let response = with_id("/api/nothing-here", &sane).await.unwrap();
    assert_eq!(response.headers()["x-request-id"], sane.as_str());
    let body = expect_error(response, 404, "not_found").await;
    assert_eq!(body["requestId"], sane.as_str());
    for insane in [
        format!("{sane}y"),
        "two words".to_owned(),
        "a/b".to_owned(),
        "é".to_owned(),
    ] {
        let response = with_id("/api/nothing-here", &insane).await.unwrap();
        let fresh = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_ne!(fresh, insane);
        assert!(!fresh.is_empty() && fresh.len() <= 64, "{fresh}");
        let body = expect_error(response, 404, "not_found").await;
        assert_eq!(body["requestId"], fresh.as_str(), "{insane}");
    }
}

#[tokio::test]
async fn an_oversized_header_section_is_431_and_the_server_keeps_serving() {
    let app = Showcase::start().await;
    let response = app
        .client
        .get(app.url("/api/hello"))
        .header("x-padding", "p".repeat(100 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
    assert_eq!(app.get("/api/hello").await.status(), 200);
}

#[tokio::test]
async fn internal_headers_sent_by_a_client_are_ignored() {
    let app = Showcase::start().await;
    // Whatever a client writes in the framework's namespace, it is nobody.
    let response = app
        .client
        .get(app.url("/api/auth/me"))
        .header("x-waypost-user", "admin")
        .header("x-waypost-identity", "1")
        .header("x-waypost-request-id", "spoofed")
        .send()
        .await
        .unwrap();
    expect_error(response, 401, "unauthorized").await;
}

#[tokio::test]
async fn an_escaped_letter_routes_like_the_letter_itself() {
    let app = Showcase::start().await;
    // RFC 3986 §6.2.2.2: `%68` is `h`, in a static folder's name as in a parameter.
    let response = app.get("/api/%68ello").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "message": "Hello" })
    );
    let response = app.get("/api/d%6Fcs/api/user%73").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "docs": "User API documentation" })
    );
}

#[tokio::test]
async fn health_reports_the_database() {
    let app = Showcase::start().await;
    let response = app.get("/api/health").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "status": "ok", "database": "ok" })
    );
}

/// The showcase on a SQLite file in `dir` (a folder of its own), and the pool it uses.
async fn showcase_in(
    dir: &std::path::Path,
) -> (waypost::testing::TestServer, waypost::database::Database) {
    let url = format!("sqlite://{}/showcase.db", dir.display());
    let config = showcase::Config::from(&waypost::config::Env::from_pairs([(
        "DATABASE_URL",
        url.clone(),
    )]))
    .unwrap();
    let pool = waypost::database::connect(&url).await.unwrap();
    showcase::MIGRATOR.run(&pool).await.unwrap();
    let uploads = waypost::upload::UploadDir::open(dir.join("uploads"))
        .await
        .unwrap();
    let state = showcase::AppState::new(config, pool.clone(), uploads).unwrap();
    (
        waypost::testing::TestServer::start(showcase::app(state)).await,
        pool,
    )
}

/// 503 `database_unavailable` in the one error shape, and the server still serving.
async fn expect_database_down(server: &waypost::testing::TestServer) {
    let response = reqwest::get(server.url("/api/health")).await.unwrap();
    let body = expect_error(response, 503, "database_unavailable").await;
    assert_eq!(body["details"], json!({ "database": ["down"] }));
    assert_eq!(
        (&body["status"], &body["database"]),
        (&json!("error"), &json!("down"))
    );
    let response = reqwest::get(server.url("/api/hello")).await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn health_is_503_when_the_database_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let (server, pool) = showcase_in(dir.path()).await;
    pool.close().await;
    expect_database_down(&server).await;
}

#[tokio::test]
async fn stream_sends_hello_before_world_is_produced() {
    let app = Showcase::start().await;
    let started = Instant::now();
    let response = app.get("/api/stream").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let mut stream = response.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    let first_at = started.elapsed();
    assert_eq!(&first[..], b"Hello");
    let mut rest = Vec::new();
    while let Some(chunk) = stream.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    let all_at = started.elapsed();
    assert_eq!(rest, b" World");
    // The whole stream takes two 100 ms pauses; the first chunk arrived before them.
    assert!(all_at >= Duration::from_millis(200), "{all_at:?}");
    assert!(
        all_at - first_at >= Duration::from_millis(150),
        "first {first_at:?}, all {all_at:?}"
    );
}

#[tokio::test]
async fn docs_catch_all_serves_known_pages_and_404s_the_rest() {
    let app = Showcase::start().await;
    let response = app.get("/api/docs/api/users").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "docs": "User API documentation" })
    );
    let response = app.get("/api/docs/api/posts").await;
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "docs": "Post API documentation" })
    );
    expect_error(app.get("/api/docs/api/nothing").await, 404, "not_found").await;
    expect_error(app.get("/api/docs/x").await, 404, "not_found").await;
    // Other paths than the two, however close.
    for path in [
        "/api/docs/api/users/",
        "/api/docs//api/users",
        "/api/docs/api//users",
    ] {
        expect_error(app.get(path).await, 404, "not_found").await;
    }
    // A catch-all needs at least one segment.
    expect_error(app.get("/api/docs").await, 404, "not_found").await;
}

#[tokio::test]
async fn docs_pages_are_cacheable_and_revalidate_with_their_etag() {
    let app = Showcase::start().await;
    let response = app.get("/api/docs/api/users").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "public, max-age=3600");
    let tag = response.headers()["etag"].to_str().unwrap().to_owned();
    assert!(tag.starts_with('"') && tag.ends_with('"'), "{tag}");
    let other = app.get("/api/docs/api/posts").await;
    assert_ne!(
        other.headers()["etag"],
        tag.as_str(),
        "each page has its own tag"
    );

    let if_none_match = |path: &str, condition: &str| {
        app.client
            .get(app.url(path))
            .header("if-none-match", condition)
            .send()
    };
    // The client's copy is current: 304, no body, the tag and caching repeated.
    for condition in [
        tag.clone(),
        format!("W/{tag}"),
        format!("\"other\", {tag}"),
        "*".into(),
    ] {
        let response = if_none_match("/api/docs/api/users", &condition)
            .await
            .unwrap();
        assert_eq!(response.status(), 304, "{condition}");
        assert_eq!(response.headers()["etag"], tag.as_str());
        assert_eq!(response.headers()["cache-control"], "public, max-age=3600");
        assert!(response.headers().contains_key("x-request-id"));
        // The rate limit still counted this request, and says so.
        assert!(response.headers().contains_key("ratelimit"));
        assert!(response.headers().contains_key("ratelimit-policy"));
        // A length on a 304 may only be the 200's (RFC 9110 §8.6).
        let full = json!({ "docs": "User API documentation" })
            .to_string()
            .len();
        if let Some(length) = response.headers().get("content-length") {
            assert_eq!(length.to_str().unwrap(), full.to_string());
        }
        assert!(response.bytes().await.unwrap().is_empty());
    }
    // The same over HEAD, where nothing strips a length.
    let response = app
        .client
        .head(app.url("/api/docs/api/users"))
        .header("if-none-match", tag.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 304);
    let full = json!({ "docs": "User API documentation" })
        .to_string()
        .len();
    assert_eq!(
        response.headers()["content-length"],
        full.to_string().as_str()
    );
    // Another page's tag, or a stale one: the full answer.
    let response = if_none_match("/api/docs/api/posts", &tag).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "docs": "Post API documentation" })
    );
    // HEAD is answered like GET, without a body.
    let response = app
        .client
        .head(app.url("/api/docs/api/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], tag.as_str());

    // Errors are not cached, and a signed-in caller's answer stays private.
    let missing = app.get("/api/docs/api/nothing").await;
    assert!(!missing.headers().contains_key("cache-control"));
    assert!(!missing.headers().contains_key("etag"));
    let account = app.account("reader@example.com").await;
    let response = app
        .as_user(&account, reqwest::Method::GET, "/api/docs/api/users")
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(!response.headers().contains_key("etag"));
}

async fn contact_count(app: &Showcase) -> i64 {
    let pool = waypost::database::connect(&app.database_url).await.unwrap();
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM contact_messages")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    count
}

#[tokio::test]
async fn contact_stores_a_valid_message() {
    let app = Showcase::start().await;
    let response = app
        .post_json(
            "/api/contact",
            json!({ "name": "Ada", "email": "ada@example.com", "message": "Hi there" }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    let id = body["id"].as_str().unwrap().to_owned();
    let pool = waypost::database::connect(&app.database_url).await.unwrap();
    let stored: (String, String) =
        sqlx::query_as("SELECT name, email FROM contact_messages WHERE id = $1")
            .bind(&id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored, ("Ada".to_owned(), "ada@example.com".to_owned()));
}

/// Posts `body` to the contact form, expects a 400 with `code`, checks nothing was stored, and
/// hands back the error body.
async fn contact_refused(app: &Showcase, body: Value, code: &str) -> Value {
    let error = expect_error(app.post_json("/api/contact", body).await, 400, code).await;
    assert_eq!(contact_count(app).await, 0, "nothing stored");
    error
}

#[tokio::test]
async fn contact_names_every_missing_field_at_once() {
    let app = Showcase::start().await;
    let body = contact_refused(&app, json!({}), "validation_failed").await;
    for field in ["name", "email", "message"] {
        assert!(
            body["details"][field].is_array(),
            "{field} missing from {body}"
        );
    }
    let body = contact_refused(
        &app,
        json!({ "name": "Ada", "message": "x" }),
        "validation_failed",
    )
    .await;
    assert_eq!(
        body["details"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec!["email"]
    );
}

#[tokio::test]
async fn contact_refuses_blank_fields_like_missing_ones() {
    let app = Showcase::start().await;
    let body = contact_refused(
        &app,
        json!({ "name": "   ", "email": "ada@example.com", "message": "" }),
        "validation_failed",
    )
    .await;
    for field in ["name", "message"] {
        assert!(body["details"][field].is_array(), "{field} in {body}");
    }
    assert!(body["details"].get("email").is_none(), "{body}");
}

#[tokio::test]
async fn an_array_in_place_of_the_object_is_invalid_json_and_stores_nothing() {
    let app = Showcase::start().await;
    let body = contact_refused(
        &app,
        json!(["Ann", "ann@example.com", "hello there"]),
        "invalid_json",
    )
    .await;
    assert!(!body.to_string().contains("ContactForm"), "{body}");
}

#[tokio::test]
async fn contact_rejects_a_bad_email() {
    let app = Showcase::start().await;
    let body = contact_refused(
        &app,
        json!({ "name": "Ada", "email": "not-an-email", "message": "Hi" }),
        "validation_failed",
    )
    .await;
    assert!(body["details"]["email"].is_array(), "{body}");
}

#[tokio::test]
async fn a_database_that_cannot_be_opened_stops_start_up_naming_database_url() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the database's folder would have to be.
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, b"").unwrap();
    let url = format!("sqlite://{}/data/showcase.db", blocker.display());
    let config =
        showcase::Config::from(&waypost::config::Env::from_pairs([("DATABASE_URL", url)])).unwrap();
    let Err(error) = showcase::build(config).await else {
        panic!("start-up must fail");
    };
    assert!(error.to_string().starts_with("DATABASE_URL: "), "{error}");
}

#[tokio::test]
async fn an_unreachable_redis_stops_start_up_before_the_database_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("showcase.db");
    let config = showcase::Config::from(&waypost::config::Env::from_pairs([
        ("DATABASE_URL", format!("sqlite://{}", database.display())),
        // Port 1: nothing listens there.
        ("REDIS_URL", "redis://127.0.0.1:1/0".to_owned()),
        (
            "UPLOAD_DIR",
            dir.path().join("uploads").display().to_string(),
        ),
    ]))
    .unwrap();
    let Err(error) = showcase::build(config).await else {
        panic!("start-up must fail");
    };
    assert!(error.to_string().starts_with("REDIS_URL: "), "{error}");
    assert!(
        !database.exists(),
        "the database was created before Redis was reached"
    );
}
