//! The hello routes over a real socket, as a client sees them.

use serde_json::{json, Value};
use waypost::{testing::TestServer, App};
use {{crate_name}}::{router, AppState};

async fn start() -> TestServer {
    TestServer::start(App::new(router(AppState::default()))).await
}

#[tokio::test]
async fn hello_says_hello() {
    let server = start().await;
    let response = reqwest::get(server.url("/api/hello")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "message": "Hello" })
    );
}

#[tokio::test]
async fn hello_with_a_name_greets_that_name() {
    let server = start().await;
    let response = reqwest::get(server.url("/api/hello/Ada")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "message": "Hello, Ada" })
    );
}

#[tokio::test]
async fn unknown_paths_answer_the_json_404() {
    let server = start().await;
    let response = reqwest::get(server.url("/api/nothing-here")).await.unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "not_found", "{body}");
}
