//! `waypost::testing::TestClient` against the showcase, with no socket: its cookie jar carries
//! the session, it fetches the CSRF token for cookie-carrying writes, and the test reads the
//! app state to check what a request changed.

use serde_json::{json, Value};
use showcase::{AppState, Config};
use waypost::{config::Env, testing::TestClient, upload::UploadDir};

async fn client() -> (TestClient<AppState>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/showcase.db", dir.path().display());
    let config = Config::from(&Env::from_pairs([("DATABASE_URL", url.clone())])).unwrap();
    let pool = waypost::database::connect(&url).await.unwrap();
    showcase::MIGRATOR.run(&pool).await.unwrap();
    let uploads = UploadDir::open(dir.path().join("uploads")).await.unwrap();
    let state = AppState::new(config, pool, uploads).unwrap();
    let client =
        TestClient::with_state(showcase::app(state.clone()), state).with_csrf_endpoint("/api/csrf");
    (client, dir)
}

#[tokio::test]
async fn a_cookie_session_writes_with_an_automatic_csrf_token() {
    let (client, _dir) = client().await;
    let registered = client
        .post("/api/auth/register")
        .json(&json!({ "email": "ada@example.com", "password": "analytical", "name": "Ada" }))
        .await;
    assert_eq!(registered.status(), 201);
    let login = client
        .post("/api/auth/login")
        .json(&json!({ "email": "ada@example.com", "password": "analytical" }))
        .await;
    assert_eq!(login.status(), 200);
    assert!(
        client.cookie("session").is_some(),
        "the jar keeps the session"
    );

    let me = client.get("/api/auth/me").await;
    assert_eq!(me.status(), 200);
    assert_eq!(me.header("cache-control"), Some("no-store"));
    assert_eq!(me.json_value()["user"]["email"], "ada@example.com");

    // A write with the session cookie needs a CSRF token: the client fetches one.
    let created = client
        .post("/api/posts")
        .json(&json!({ "title": "In-process post", "content": "no socket" }))
        .await;
    assert_eq!(created.status(), 201, "{}", created.text());
    let post: Value = created.json();
    assert!(client.cookie("csrf").is_some());

    // The state afterwards, read straight from the app's database.
    let stored: (String, Option<String>) =
        sqlx::query_as("SELECT title, author_id FROM posts WHERE id = $1")
            .bind(post["id"].as_str().unwrap())
            .fetch_one(client.state().db())
            .await
            .unwrap();
    assert_eq!(stored.0, "In-process post");
    assert_eq!(
        stored.1.as_deref(),
        registered.json_value()["user"]["id"].as_str()
    );

    // Logging out clears the cookie from the jar and the session on the server.
    let session = client.cookie("session").unwrap();
    assert_eq!(client.post("/api/auth/logout").await.status(), 204);
    assert_eq!(client.cookie("session"), None);
    let replayed = client
        .get("/api/auth/me")
        .header("cookie", &format!("session={session}"))
        .await;
    assert_eq!(replayed.status(), 401);
    assert_eq!(replayed.error_code().as_deref(), Some("unauthorized"));
}

#[tokio::test]
async fn without_the_token_a_cookie_write_is_refused() {
    let (client, _dir) = client().await;
    let plain = TestClient::new(showcase::app(client.state().clone()));
    let refused = plain
        .post("/api/contact")
        .header("cookie", "csrf=forged")
        .json(&json!({ "name": "Eve", "email": "eve@example.com", "message": "hi" }))
        .await;
    assert_eq!(refused.status(), 403);
    assert_eq!(refused.error_code().as_deref(), Some("csrf_invalid"));
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM contact_messages")
        .fetch_one(client.state().db())
        .await
        .unwrap();
    assert_eq!(stored, 0);
}
