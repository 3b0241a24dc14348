//! The hello routes, driven in process by `waypost::testing::TestClient` (no socket): the same
//! layers a real client meets, as fast as a function call.

use serde_json::{json, Value};
use waypost::{testing::TestClient, App};
use {{crate_name}}::{router, AppState};

fn client() -> TestClient<AppState> {
    let state = AppState::default();
    TestClient::with_state(App::new(router(state.clone())), state)
}

#[tokio::test]
async fn hello_says_hello() {
    let response = client().get("/api/hello").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.json::<Value>(), json!({ "message": "Hello" }));
}

#[tokio::test]
async fn hello_with_a_name_greets_that_name() {
    let response = client().get("/api/hello/Ada").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>(), json!({ "message": "Hello, Ada" }));
}

#[tokio::test]
async fn unknown_paths_answer_the_json_404() {
    let response = client().get("/api/nothing-here").await;
    assert_eq!(response.status(), 404);
    assert_eq!(response.error_code().as_deref(), Some("not_found"));
}

#[tokio::test]
async fn every_route_is_in_the_openapi_document() {
    let response = client().get("/api/openapi.json").await;
    assert_eq!(response.status(), 200);
    let document = response.json::<Value>();
    assert_eq!(document["openapi"], "3.1.0");
    for path in ["/api/hello", "/api/hello/{name}", "/api/openapi.json", "/docs"] {
        assert!(document["paths"].get(path).is_some(), "{path}");
    }
    let page = client().get("/docs").await;
    assert_eq!(page.status(), 200);
    assert!(page.header("content-type").is_some_and(|t| t.starts_with("text/html")));
}
