//! Starting the showcase for a test: a fresh SQLite file and upload folder in a temp folder, a
//! free loopback port; and fake backends for it to call.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use showcase::Config;
use waypost::{config::Env, testing::TestServer};

/// A running showcase and what it needs to stay alive.
pub struct Showcase {
    pub server: TestServer,
    pub client: reqwest::Client,
    pub database_url: String,
    /// `UPLOAD_DIR`: `<temp folder>/data/uploads` unless the test set its own.
    pub upload_dir: PathBuf,
    dir: tempfile::TempDir,
}

impl Showcase {
    /// Starts with the default settings plus `vars` (which win over the defaults).
    pub async fn start_with(vars: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database_url = format!("sqlite://{}/showcase.db", dir.path().display());
        let upload_dir = dir.path().join("data").join("uploads");
        let mut pairs: Vec<(String, String)> = vec![
            ("DATABASE_URL".into(), database_url.clone()),
            ("UPLOAD_DIR".into(), upload_dir.display().to_string()),
        ];
        pairs.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let config = Config::from(&Env::from_pairs(pairs)).unwrap();
        let upload_dir = config.upload_dir.clone();
        // The database the app really uses (a test may point it at Postgres).
        let database_url = config.database_url.clone();
        let app = showcase::build(config).await.unwrap();
        Self {
            server: TestServer::start(app).await,
            client: reqwest::Client::new(),
            database_url,
            upload_dir,
            dir,
        }
    }

    /// The temp folder holding the database and (by default) the upload folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `SELECT COUNT(*) FROM <table>`, straight from the database.
    pub async fn count_rows(&self, table: &str) -> i64 {
        let pool = waypost::database::connect(&self.database_url)
            .await
            .unwrap();
        let count = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        count
    }

    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> reqwest::Response {
        self.client
            .request(method, self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_json(&self, path: &str, body: Value) -> reqwest::Response {
        self.send_json(reqwest::Method::POST, path, body).await
    }
}

/// Asserts the one error shape with `status` and `code`; the body.
pub async fn expect_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(response.headers()["content-type"], "application/json");
    if status == 401 {
        // RFC 9110: every 401 names a scheme that would do.
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
    }
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["requestId"], id.as_str(), "{body}");
    assert!(
        body["error"].as_str().is_some_and(|s| !s.is_empty()),
        "{body}"
    );
    body
}

/// A signed-in test user: the bearer token, the session cookie and the user JSON.
#[derive(Clone, Debug)]
pub struct Account {
    pub user: Value,
    pub token: String,
    pub session: String,
}

impl Account {
    pub fn id(&self) -> &str {
        self.user["id"].as_str().unwrap()
    }
}

pub const PASSWORD: &str = "correct horse battery";

impl Showcase {
    /// Registers `email` with [`PASSWORD`]; the response.
    pub async fn register(&self, email: &str) -> reqwest::Response {
        self.post_json(
            "/api/auth/register",
            serde_json::json!({ "email": email, "password": PASSWORD, "name": "Test User" }),
        )
        .await
    }

    /// Logs in; the response.
    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/api/auth/login",
            serde_json::json!({ "email": email, "password": password }),
        )
        .await
    }

    /// Registers and logs in `email`.
    pub async fn account(&self, email: &str) -> Account {
        assert_eq!(self.register(email).await.status(), 201);
        let response = self.login(email, PASSWORD).await;
        assert_eq!(response.status(), 200);
        let session = session_cookie(&response).expect("login sets the session cookie");
        let body: Value = response.json().await.unwrap();
        Account {
            user: body["user"].clone(),
            token: body["token"].as_str().unwrap().to_owned(),
            session,
        }
    }

    /// A request with `account`'s bearer token (no cookie, so no CSRF token needed).
    pub fn as_user(
        &self,
        account: &Account,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&account.token)
    }

    /// The JSON body of `GET path` with `account`'s bearer token.
    pub async fn get_json_as(&self, account: &Account, path: &str) -> Value {
        self.as_user(account, reqwest::Method::GET, path)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Creates a post as `account` (201 asserted); its path.
    pub async fn created_post(&self, account: &Account, body: Value) -> String {
        let created = self
            .send_json_as(account, reqwest::Method::POST, "/api/posts", body)
            .await;
        assert_eq!(created.status(), 201);
        let post: Value = created.json().await.unwrap();
        format!("/api/posts/{}", post["id"].as_str().unwrap())
    }

    /// A JSON request with `account`'s bearer token.
    pub async fn send_json_as(
        &self,
        account: &Account,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> reqwest::Response {
        self.as_user(account, method, path)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// `account`'s balance, from `GET /api/credits`.
    pub async fn credits(&self, account: &Account) -> i64 {
        let response = self
            .as_user(account, reqwest::Method::GET, "/api/credits")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["credits"].as_i64().unwrap()
    }

    /// `GET /api/auth/me` with the session cookie `session`.
    pub async fn me_with_cookie(&self, session: &str) -> reqwest::Response {
        self.client
            .get(self.url("/api/auth/me"))
            .header("cookie", format!("session={session}"))
            .send()
            .await
            .unwrap()
    }

    /// A fresh CSRF cookie value and a token bound to it.
    pub async fn csrf(&self) -> (String, String) {
        let response = self.get("/api/csrf").await;
        assert_eq!(response.status(), 200);
        let cookie = cookie_named(&response, "csrf").expect("csrf cookie");
        let body: Value = response.json().await.unwrap();
        (cookie, body["token"].as_str().unwrap().to_owned())
    }
}

/// The value of the `session` cookie set by `response`.
pub fn session_cookie(response: &reqwest::Response) -> Option<String> {
    cookie_named(response, "session")
}

/// The value of cookie `name` in `response`'s `Set-Cookie` headers.
pub fn cookie_named(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let pair = v.split(';').next()?;
            let (key, value) = pair.split_once('=')?;
            (key.trim() == name).then(|| value.trim().to_owned())
        })
}

/// Every path under `root` (files and folders), relative to it, sorted.
pub fn tree(root: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            out.push(path.strip_prefix(root).unwrap().to_owned());
            if path.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// Serves `router` on `127.0.0.1:<free port>` until the test ends; its base URL (no trailing
/// slash).
pub async fn serve_fake(router: waypost::axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        waypost::axum::serve(listener, router).await.unwrap();
    });
    format!("http://{address}")
}

/// What a browser signed in as an account holds: its session cookie and a CSRF cookie with a
/// token bound to it.
#[derive(Clone, Debug)]
pub struct Browser {
    pub session: String,
    pub csrf_cookie: String,
    pub csrf_token: String,
}

impl Browser {
    /// The `Cookie` header the browser sends.
    pub fn cookies(&self) -> String {
        format!("session={}; csrf={}", self.session, self.csrf_cookie)
    }
}

impl Showcase {
    /// A browser holding `account`'s session and a fresh CSRF pair.
    pub async fn browser(&self, account: &Account) -> Browser {
        let (csrf_cookie, csrf_token) = self.csrf().await;
        Browser {
            session: account.session.clone(),
            csrf_cookie,
            csrf_token,
        }
    }

    /// A request as `browser`: its cookies, no CSRF token (add one as the test needs).
    pub fn as_browser(
        &self,
        browser: &Browser,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("cookie", browser.cookies())
    }
}

/// Every text the showcase stores or looks up refuses U+0000 the same way, whatever the
/// database (SQLite stores it; Postgres text cannot hold it): 400 `validation_failed` naming
/// the field, or for a login an unknown address, and nothing written.
pub async fn expect_nul_refused_everywhere(app: &Showcase) {
    use reqwest::Method;
    use serde_json::json;
    let alice = app.account("nul-alice@example.com").await;
    let post_path = app
        .created_post(
            &alice,
            json!({ "title": "A fine title", "content": "Body", "category": "news" }),
        )
        .await;
    let writes = [
        (
            Method::POST,
            "/api/posts".to_owned(),
            json!({ "title": "Nul\u{0}title", "content": "x" }),
            "title",
        ),
        (
            Method::POST,
            "/api/posts".to_owned(),
            json!({ "title": "Another title", "content": "a\u{0}b" }),
            "content",
        ),
        (
            Method::POST,
            "/api/posts".to_owned(),
            json!({ "title": "Third title", "content": "x", "category": "n\u{0}" }),
            "category",
        ),
        (
            Method::PUT,
            post_path.clone(),
            json!({ "title": "Put\u{0}title", "content": "x" }),
            "title",
        ),
        (
            Method::PATCH,
            post_path.clone(),
            json!({ "category": "n\u{0}" }),
            "category",
        ),
        (
            Method::POST,
            "/api/contact".to_owned(),
            json!({ "name": "N\u{0}l", "email": "nul@example.com", "message": "hello" }),
            "name",
        ),
        (
            Method::POST,
            "/api/contact".to_owned(),
            json!({ "name": "Ann", "email": "nul@example.com", "message": "he\u{0}llo" }),
            "message",
        ),
        (
            Method::POST,
            "/api/auth/register".to_owned(),
            json!({ "email": "nul-bob@example.com", "password": PASSWORD, "name": "B\u{0}b" }),
            "name",
        ),
    ];
    for (method, path, body, field) in writes {
        let response = app.send_json_as(&alice, method.clone(), &path, body).await;
        let error = expect_error(response, 400, "validation_failed").await;
        assert!(
            error["details"][field].is_array(),
            "{method} {path}: {error}"
        );
    }
    let listed = app.get("/api/posts?category=a%00b").await;
    let error = expect_error(listed, 400, "validation_failed").await;
    assert!(error["details"]["category"].is_array(), "{error}");
    let login = app.login("nul-alice@example.com\u{0}", PASSWORD).await;
    expect_error(login, 401, "invalid_credentials").await;
    // Nothing was written or changed.
    assert_eq!(app.count_rows("posts").await, 1);
    assert_eq!(app.count_rows("contact_messages").await, 0);
    assert_eq!(app.count_rows("users").await, 1);
    let kept = app.get_json_as(&alice, &post_path).await;
    assert_eq!(kept["title"], "A fine title");
    assert_eq!(kept["category"], "news");
}

/// `sort=title` lists titles by their lower-case form, then as written, character by
/// character — one order whatever the database and its collation (SQLite's `LOWER` leaves `É`
/// as it is; a Postgres collation may skip spaces or put `apple` before `Apple`).
pub async fn expect_titles_in_one_order(app: &Showcase) {
    let alice = app.account("alice@example.com").await;
    let titles = [
        "Zulu post",
        "éa post",
        "apple post",
        "a-c post",
        "Éz post",
        "ab post",
        "Apple post",
        "a b post",
    ];
    for title in titles {
        app.created_post(
            &alice,
            serde_json::json!({ "title": title, "content": "c", "published": true }),
        )
        .await;
    }
    let page: Value = app.get("/api/posts?sort=title").await.json().await.unwrap();
    let listed: Vec<&str> = page["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|post| post["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        [
            "a b post",
            "a-c post",
            "ab post",
            "Apple post",
            "apple post",
            "Zulu post",
            "éa post",
            "Éz post",
        ]
    );
}

/// Patches of different fields of one post, sent at the same moment, all land: none is written
/// over by another that read the post before it changed. Rounds of four at once, one per field.
pub async fn expect_concurrent_patches_all_kept(app: &Showcase) {
    use reqwest::Method;
    use serde_json::json;
    let alice = app.account("patch-alice@example.com").await;
    let path = app
        .created_post(
            &alice,
            json!({ "title": "Patched at once", "content": "Body 0" }),
        )
        .await;
    for round in 1..=20 {
        let published = round % 2 == 1;
        let patches = [
            json!({ "title": format!("Patched at once {round}") }),
            json!({ "content": format!("Body {round}") }),
            json!({ "category": format!("round-{round}") }),
            json!({ "published": published }),
        ];
        let answers = futures_util::future::join_all(
            patches
                .into_iter()
                .map(|patch| app.send_json_as(&alice, Method::PATCH, &path, patch)),
        )
        .await;
        for answer in answers {
            assert_eq!(answer.status(), 200, "round {round}");
        }
        let stored = app.get_json_as(&alice, &path).await;
        assert_eq!(
            stored["title"],
            format!("Patched at once {round}"),
            "round {round}"
        );
        assert_eq!(stored["content"], format!("Body {round}"), "round {round}");
        assert_eq!(
            stored["category"],
            format!("round-{round}"),
            "round {round}"
        );
        assert_eq!(stored["published"], published, "round {round}");
    }
}
