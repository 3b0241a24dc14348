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

/// Registers Ada and signs her in (the jar keeps her session); her user id.
async fn sign_in_as_ada(client: &TestClient<AppState>) -> String {
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
    registered.json_value()["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_cookie_session_writes_with_an_automatic_csrf_token() {
    let (client, _dir) = client().await;
    let id = sign_in_as_ada(&client).await;
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
    assert_eq!(stored.1.as_deref(), Some(id.as_str()));

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

/// What the test's subscriber writes, to read back.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The audit lines written so far.
    fn audit_lines(&self) -> Vec<String> {
        self.lines_with(" audit: ")
    }

    /// The lines written so far that hold `text`.
    fn lines_with(&self, text: &str) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|line| line.contains(text))
            .map(str::to_owned)
            .collect()
    }

    /// A subscriber writing here, for this test's thread.
    fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync {
        let writer = self.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish()
    }
}

#[tokio::test]
async fn start_up_warns_of_admin_addresses_anyone_could_still_register() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/showcase.db", dir.path().display());
    let config = || {
        Config::from(&Env::from_pairs([
            ("DATABASE_URL", url.clone()),
            (
                "ADMIN_EMAILS",
                "boss@example.com,Kate@Example.com".to_owned(),
            ),
            (
                "UPLOAD_DIR",
                dir.path().join("uploads").display().to_string(),
            ),
        ]))
        .unwrap()
    };
    let captured = Captured::default();
    let _logging = tracing::subscriber::set_default(captured.subscriber());
    let warned = |address: &str| {
        captured
            .lines_with("ADMIN_EMAILS lists an address without an account")
            .iter()
            .filter(|line| line.contains(&format!("address={address}")))
            .count()
    };
    showcase::build(config()).await.unwrap();
    assert_eq!(
        (warned("boss@example.com"), warned("kate@example.com")),
        (1, 1)
    );
    // Kate registers (in any case): only the boss's address is still open.
    let pool = waypost::database::connect(&url).await.unwrap();
    let role = showcase::users::Role::Admin;
    showcase::users::create(&pool, "KATE@example.com", "Kate", "hash", role, 5)
        .await
        .unwrap();
    showcase::build(config()).await.unwrap();
    assert_eq!(
        (warned("boss@example.com"), warned("kate@example.com")),
        (2, 1)
    );
}

#[tokio::test]
async fn user_records_leave_an_audit_line_per_request_and_no_answer_changes() {
    let (client, _dir) = client().await;
    let captured = Captured::default();
    // This test's thread only: the in-process client serves each request on it.
    let _logging = tracing::subscriber::set_default(captured.subscriber());

    let id = sign_in_as_ada(&client).await;
    assert!(
        captured.audit_lines().is_empty(),
        "only user records are audited"
    );

    // The handlers' answers, as without the middleware: a user is not an admin, may read
    // their own record, and an anonymous caller is 401.
    assert_eq!(client.get("/api/users").await.status(), 403);
    assert_eq!(client.get(&format!("/api/users/{id}")).await.status(), 200);
    client.clear_cookies();
    assert_eq!(client.get("/api/users").await.status(), 401);

    let lines = captured.audit_lines();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let expected = [
        (
            format!("caller=user {id}"),
            "path=/api/users ",
            "status=403",
        ),
        (
            format!("caller=user {id}"),
            &*format!("path=/api/users/{id} "),
            "status=200",
        ),
        (
            "caller=anonymous".to_owned(),
            "path=/api/users ",
            "status=401",
        ),
    ];
    for (line, (caller, path, status)) in lines.iter().zip(expected) {
        assert!(
            line.contains("INFO audit: user records requested"),
            "{line}"
        );
        assert!(line.contains(&caller) && line.contains(path), "{line}");
        assert!(line.ends_with(status), "{line}");
    }
}
