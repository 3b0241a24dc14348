//! The OpenAPI document: every route of the table appears, described from the handlers' types,
//! and the docs page needs nothing from outside the binary.

mod common;

use std::collections::BTreeSet;

use common::Showcase;
use serde_json::Value;

#[tokio::test]
async fn every_route_and_method_of_the_table_is_documented() {
    let app = Showcase::start().await;
    let response = app.get("/api/openapi.json").await;
    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["openapi"], "3.1.0");

    let documented: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (path.clone(), method.clone()))
        })
        .collect();
    let table: BTreeSet<(String, String)> = showcase::ROUTES
        .iter()
        .flat_map(|route| {
            route.paths.iter().flat_map(move |path| {
                route.handlers.iter().map(move |handler| {
                    (
                        path.replace("{*", "{"),
                        handler.method.as_str().to_ascii_lowercase(),
                    )
                })
            })
        })
        .collect();
    assert_eq!(documented, table);
    assert!(
        table.len() >= 29,
        "the whole showcase is there: {}",
        table.len()
    );
}

#[tokio::test]
async fn operations_are_described_from_the_handler_types() {
    let app = Showcase::start().await;
    let document: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    let create = &document["paths"]["/api/posts"]["post"];
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/PostInput"
    );
    assert_eq!(
        create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Post"
    );
    assert_eq!(
        create["responses"]["default"]["$ref"],
        "#/components/responses/Error"
    );
    assert!(create["security"].to_string().contains("bearerAuth"));

    let input = &document["components"]["schemas"]["PostInput"];
    assert_eq!(
        input["properties"]["title"]["minLength"], 5,
        "garde rules become constraints"
    );
    assert_eq!(input["properties"]["title"]["maxLength"], 200);
    let post = &document["components"]["schemas"]["Post"];
    for field in ["id", "title", "authorId", "createdAt", "updatedAt"] {
        assert!(post["properties"].get(field).is_some(), "Post.{field}");
    }

    let list = &document["paths"]["/api/posts"]["get"];
    let names: Vec<&str> = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in ["page", "limit", "sort", "category"] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    // Routes declared idempotent document the header (with what the layer accepts); others
    // do not offer it.
    let key = &create["parameters"][0];
    assert_eq!(key["name"], "Idempotency-Key");
    assert_eq!(key["in"], "header");
    assert_eq!(key["required"], false);
    assert_eq!(key["schema"]["maxLength"], 255);
    assert_eq!(
        document["paths"]["/api/generate"]["post"]["parameters"][0]["name"],
        "Idempotency-Key"
    );
    assert!(document["paths"]["/api/contact"]["post"]
        .get("parameters")
        .is_none());
    // A cached route documents the conditional GET; the others do not.
    let docs = &document["paths"]["/api/docs/{slug}"]["get"];
    let condition = docs["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "If-None-Match")
        .expect("If-None-Match on the cached docs route");
    assert_eq!(condition["in"], "header");
    assert_eq!(condition["required"], false);
    assert!(docs["responses"].get("304").is_some());
    assert!(document["paths"]["/api/hello"]["get"]["responses"]
        .get("304")
        .is_none());
    let one = &document["paths"]["/api/posts/{id}"]["delete"];
    assert!(one["responses"].get("204").is_some());
    assert_eq!(one["parameters"][0]["in"], "path");
    assert_eq!(
        document["components"]["securitySchemes"]["sessionCookie"]["name"],
        "session"
    );
}

#[tokio::test]
async fn the_headers_every_answer_carries_are_documented_and_kept() {
    let app = Showcase::start().await;
    let document: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    let headers = &document["components"]["headers"];
    assert_eq!(headers["X-Request-Id"]["required"], true);
    assert_eq!(
        headers["X-Content-Type-Options"]["schema"]["const"],
        "nosniff"
    );
    let id_pattern = request_id_rule(
        headers["X-Request-Id"]["schema"]["pattern"]
            .as_str()
            .unwrap(),
    );
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                let named = if status == "default" {
                    &document["components"]["responses"]["Error"]["headers"]
                } else {
                    &response["headers"]
                };
                for name in ["X-Request-Id", "X-Content-Type-Options", "RateLimit"] {
                    assert!(
                        named.get(name).is_some(),
                        "{method} {path} {status}: {name}"
                    );
                }
            }
        }
    }
    let create = &document["paths"]["/api/posts"]["post"]["responses"]["201"]["headers"];
    assert!(create.get("Idempotent-Replayed").is_some());
    // `Created(x).at(url)` documents where the new post is read; a plain `Created` would not.
    assert_eq!(create["Location"]["$ref"], "#/components/headers/Location");
    assert_eq!(
        document["components"]["headers"]["Location"]["required"],
        true
    );
    let docs = &document["paths"]["/api/docs/{slug}"]["get"]["responses"]["200"]["headers"];
    assert!(docs.get("ETag").is_some());
    assert!(document["components"]["responses"]["Error"]["headers"]
        .get("Retry-After")
        .is_some());

    // What is documented is what is sent, on a success and on an error.
    for path in ["/api/hello", "/api/nothing-here"] {
        let response = app.get(path).await;
        let sent = response.headers();
        let id = sent["x-request-id"].to_str().unwrap();
        assert!(id_pattern(id), "{path}: {id}");
        assert_eq!(sent["x-content-type-options"], "nosniff", "{path}");
    }
    let hello = app.get("/api/hello").await;
    let limit = hello.headers()["ratelimit"].to_str().unwrap();
    assert!(limit.starts_with("\"default\";r="), "{limit}");
}

/// The documented request-id pattern, `^[A-Za-z0-9._-]{1,64}$`, as a test.
fn request_id_rule(pattern: &str) -> impl Fn(&str) -> bool {
    assert_eq!(
        pattern, "^[A-Za-z0-9._-]{1,64}$",
        "the pattern this test reads"
    );
    |id: &str| {
        (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    }
}

#[tokio::test]
async fn the_docs_page_is_self_contained() {
    let app = Showcase::start().await;
    let response = app.get("/docs").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = response.text().await.unwrap();
    assert!(html.contains("/api/openapi.json"));
    assert!(!html.contains("src=\"http"), "no script from a CDN");
    assert!(!html.contains("href=\"http"), "no stylesheet from a CDN");
}
