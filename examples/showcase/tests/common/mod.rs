//! Starting the showcase for a test: a fresh SQLite file in a temp folder, a free loopback port.

#![allow(dead_code, unreachable_pub)]

use serde_json::Value;
use showcase::Config;
use waypost::{config::Env, testing::TestServer};

/// A running showcase and what it needs to stay alive.
pub struct Showcase {
    pub server: TestServer,
    pub client: reqwest::Client,
    pub database_url: String,
    _dir: tempfile::TempDir,
}

impl Showcase {
    /// Starts with the default settings plus `vars`.
    pub async fn start_with(vars: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database_url = format!("sqlite://{}/showcase.db", dir.path().display());
        let mut pairs: Vec<(String, String)> = vec![("DATABASE_URL".into(), database_url.clone())];
        pairs.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let config = Config::from(&Env::from_pairs(pairs)).unwrap();
        let app = showcase::build(config).await.unwrap();
        Self {
            server: TestServer::start(app).await,
            client: reqwest::Client::new(),
            database_url,
            _dir: dir,
        }
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

    pub async fn send_json(&self, method: reqwest::Method, path: &str, body: Value) -> reqwest::Response {
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
    let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["requestId"], id.as_str(), "{body}");
    assert!(body["error"].as_str().is_some_and(|s| !s.is_empty()), "{body}");
    body
}
