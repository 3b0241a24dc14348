//! Query strings and form bodies over a real socket: a key repeated for a list field fills it
//! in order (what the OpenAPI document's query arrays and the TypeScript client send), a key
//! repeated for a single field is 400 `validation_failed` naming it, an empty number is a bad
//! number, and a refused form changes nothing.

use std::sync::{Arc, Mutex};

use reqwest::{Client, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use waypost::{
    axum::Router,
    extract::{Form, Json, Query},
    routing::{HandlerInfo, Method, RouteInfo, RouteMethods},
    testing::TestServer,
    App, RouteConfig,
};

static SEARCH: RouteInfo = RouteInfo::at(
    &["/search"],
    &[HandlerInfo::of(Method::Get)],
    RouteConfig::new(),
);
static SUBSCRIBE: RouteInfo = RouteInfo::at(
    &["/subscribe"],
    &[HandlerInfo::of(Method::Post)],
    RouteConfig::new(),
);

#[derive(Deserialize)]
struct Search {
    #[serde(default)]
    tag: Vec<String>,
    #[serde(default)]
    year: Vec<u16>,
    page: Option<u32>,
}

/// A sign-up form with checkboxes: each ticked one sends `topic=…` again.
#[derive(Deserialize)]
struct Subscription {
    email: String,
    #[serde(default)]
    topic: Vec<String>,
}

async fn server() -> (TestServer, Arc<Mutex<Vec<(String, Vec<String>)>>>) {
    let stored = Arc::new(Mutex::new(Vec::new()));
    let router = RouteMethods::new(&SEARCH)
        .get(|Query(search): Query<Search>| async move {
            Json(json!({ "tags": search.tag, "years": search.year, "page": search.page }))
        })
        .mount(Router::new());
    let router = RouteMethods::new(&SUBSCRIBE)
        .post({
            let stored = stored.clone();
            move |Form(form): Form<Subscription>| async move {
                stored
                    .lock()
                    .unwrap()
                    .push((form.email.clone(), form.topic.clone()));
                Json(json!({ "email": form.email, "topics": form.topic }))
            }
        })
        .mount(router);
    (TestServer::start(App::new(router)).await, stored)
}

async fn get(server: &TestServer, query: &str) -> (StatusCode, Value) {
    let response = Client::new()
        .get(server.url(&format!("/search?{query}")))
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn post(server: &TestServer, body: &'static str) -> (StatusCode, Value) {
    let response = Client::new()
        .post(server.url("/subscribe"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn repeated_query_keys_fill_list_fields_and_are_refused_for_single_ones() {
    let (server, _) = server().await;

    let (status, body) = get(
        &server,
        "tag=rust&year=2024&tag=web%20apps&year=2025&page=2",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({ "tags": ["rust", "web apps"], "years": [2024, 2025], "page": 2 })
    );
    let (status, body) = get(&server, "tag=one").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "tags": ["one"], "years": [], "page": null }));

    let (status, body) = get(&server, "page=1&page=2").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "validation_failed");
    assert_eq!(
        body["details"],
        json!({ "page": ["is given more than once"] })
    );

    let (status, body) = get(&server, "year=2024&year=soon").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "validation_failed");
    assert_eq!(
        body["details"],
        json!({ "year[1]": ["must be a whole number"] })
    );

    // Given but empty is a bad page, not no page.
    let (status, body) = get(&server, "page=").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["details"],
        json!({ "page": ["must be a whole number"] })
    );

    // The server kept serving through every refusal.
    let (status, _) = get(&server, "").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn form_checkboxes_arrive_as_a_list_and_a_refused_form_stores_nothing() {
    let (server, stored) = server().await;

    let (status, body) = post(&server, "email=a%40example.com&topic=news&topic=offers").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({ "email": "a@example.com", "topics": ["news", "offers"] })
    );
    let (status, body) = post(&server, "email=b%40example.com").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["topics"], json!([]));

    let (status, body) = post(&server, "email=c%40example.com&email=d%40example.com").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "validation_failed");
    assert_eq!(
        body["details"],
        json!({ "email": ["is given more than once"] })
    );

    let (status, body) = post(&server, "topic=news").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "validation_failed");
    assert_eq!(body["details"], json!({ "email": ["is required"] }));

    assert_eq!(
        *stored.lock().unwrap(),
        [
            (
                "a@example.com".to_owned(),
                vec!["news".to_owned(), "offers".to_owned()]
            ),
            ("b@example.com".to_owned(), vec![]),
        ],
        "only the two accepted forms were stored"
    );
}
