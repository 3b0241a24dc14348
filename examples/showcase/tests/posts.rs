//! The contract's posts CRUD: pagination, sort, category, validation, conflicts, 404 and 204.

mod common;

use common::{expect_error, Account, Showcase};
use reqwest::Method;
use serde_json::{json, Value};

async fn create(app: &Showcase, author: &Account, body: Value) -> Value {
    let response = app
        .send_json_as(author, Method::POST, "/api/posts", body)
        .await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let post: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/posts/{}", post["id"].as_str().unwrap())
    );
    post
}

/// The titles of a page of posts, in order.
fn titles_of(page: &Value) -> Vec<&str> {
    page["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect()
}

async fn post_count(app: &Showcase) -> i64 {
    let pool = waypost::database::connect(&app.database_url).await.unwrap();
    let count = sqlx::query_scalar("SELECT COUNT(*) FROM posts")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    count
}

#[tokio::test]
async fn create_returns_201_with_server_owned_fields() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    let post = create(
        &app,
        &alice,
        json!({
            "title": "First post",
            "content": "Hello world",
            "category": "news",
            "id": "client-chosen",
            "authorId": "someone-else",
            "createdAt": "1999-01-01T00:00:00Z",
            "unknown": 42
        }),
    )
    .await;
    assert_ne!(post["id"], "client-chosen");
    assert!(post["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(post["title"], "First post");
    assert_eq!(post["content"], "Hello world");
    assert_eq!(post["category"], "news");
    assert_eq!(post["published"], false, "published defaults to false");
    assert_eq!(
        post["authorId"], alice.user["id"],
        "the author is the caller, not the body"
    );
    assert_ne!(post["createdAt"], "1999-01-01T00:00:00Z");
    let created = time::OffsetDateTime::parse(
        post["createdAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(created.offset(), time::UtcOffset::UTC);
    assert_eq!(post["createdAt"], post["updatedAt"]);
    assert!(post.get("unknown").is_none());
    assert_eq!(post_count(&app).await, 1);
    // `Location` names where the post is read.
    let read = app
        .as_user(
            &alice,
            Method::GET,
            &format!("/api/posts/{}", post["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(read.json::<Value>().await.unwrap(), post);
}

#[tokio::test]
async fn create_validates_every_field_and_stores_nothing() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    let body = expect_error(
        app.send_json_as(
            &alice,
            Method::POST,
            "/api/posts",
            json!({ "title": "Hey", "content": "" }),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
    assert!(body["details"]["title"].is_array(), "{body}");
    assert!(body["details"]["content"].is_array(), "{body}");

    let body = expect_error(
        app.send_json_as(&alice, Method::POST, "/api/posts", json!({}))
            .await,
        400,
        "validation_failed",
    )
    .await;
    assert!(body["details"]["title"].is_array() && body["details"]["content"].is_array());

    let long_title = "t".repeat(201);
    expect_error(
        app.send_json_as(
            &alice,
            Method::POST,
            "/api/posts",
            json!({ "title": long_title, "content": "x" }),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
    let long_content = "c".repeat(50_001);
    expect_error(
        app.send_json_as(
            &alice,
            Method::POST,
            "/api/posts",
            json!({ "title": "Valid title", "content": long_content }),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
    let wrong_type = expect_error(
        app.send_json_as(
            &alice,
            Method::POST,
            "/api/posts",
            json!({ "title": 12345, "content": "x" }),
        )
        .await,
        400,
        "invalid_json",
    )
    .await;
    // The field at fault is named, as for a validation failure.
    assert_eq!(
        wrong_type["details"],
        json!({ "title": ["invalid type: integer `12345`, expected a string"] })
    );
    // Five spaces are five characters, but no title; a content of whitespace is no content.
    let body = expect_error(
        app.send_json_as(
            &alice,
            Method::POST,
            "/api/posts",
            json!({ "title": "     ", "content": " \n\t " }),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(body["details"]["title"][0], "must not be blank", "{body}");
    assert_eq!(body["details"]["content"][0], "must not be blank", "{body}");
    assert_eq!(post_count(&app).await, 0);

    // The boundaries themselves are accepted.
    create(&app, &alice, json!({ "title": "12345", "content": "c" })).await;
    create(
        &app,
        &alice,
        json!({ "title": "t".repeat(200), "content": "c".repeat(50_000) }),
    )
    .await;
    assert_eq!(post_count(&app).await, 2);
}

#[tokio::test]
async fn a_duplicate_title_is_409_and_not_stored() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    create(
        &app,
        &alice,
        json!({ "title": "Same title", "content": "one" }),
    )
    .await;
    expect_error(
        app.send_json_as(
            &alice,
            Method::POST,
            "/api/posts",
            json!({ "title": "Same title", "content": "two" }),
        )
        .await,
        409,
        "conflict",
    )
    .await;
    assert_eq!(post_count(&app).await, 1);
}

#[tokio::test]
async fn get_one_returns_published_posts_and_404s_drafts_and_unknown_ids() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    let published = create(
        &app,
        &alice,
        json!({ "title": "Published one", "content": "x", "published": true }),
    )
    .await;
    let draft = create(
        &app,
        &alice,
        json!({ "title": "Draft one", "content": "x" }),
    )
    .await;

    let response = app
        .get(&format!("/api/posts/{}", published["id"].as_str().unwrap()))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), published);

    expect_error(
        app.get(&format!("/api/posts/{}", draft["id"].as_str().unwrap()))
            .await,
        404,
        "not_found",
    )
    .await;
    expect_error(app.get("/api/posts/does-not-exist").await, 404, "not_found").await;
}

#[tokio::test]
async fn list_paginates_sorts_and_filters_published_posts() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    for i in 0..25 {
        let category = if i % 2 == 0 { "even" } else { "odd" };
        create(
            &app,
            &alice,
            json!({
                "title": format!("Post number {i:02}"),
                "content": "body",
                "category": category,
                "published": true
            }),
        )
        .await;
    }
    create(
        &app,
        &alice,
        json!({ "title": "A hidden draft", "content": "x" }),
    )
    .await;

    let page: Value = app.get("/api/posts").await.json().await.unwrap();
    assert_eq!(
        page["pagination"],
        json!({ "page": 1, "limit": 10, "total": 25, "totalPages": 3 })
    );
    let titles = titles_of(&page);
    assert_eq!(titles.first(), Some(&"Post number 24"), "newest first");
    assert_eq!(titles.len(), 10);

    let page: Value = app.get("/api/posts?page=3").await.json().await.unwrap();
    assert_eq!(page["posts"].as_array().unwrap().len(), 5);
    assert_eq!(page["pagination"]["page"], 3);

    let page: Value = app
        .get("/api/posts?sort=title&limit=3")
        .await
        .json()
        .await
        .unwrap();
    let titles = titles_of(&page);
    assert_eq!(
        titles,
        ["Post number 00", "Post number 01", "Post number 02"]
    );
    assert_eq!(page["pagination"]["totalPages"], 9);

    let page: Value = app
        .get("/api/posts?category=odd&limit=100")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["pagination"]["total"], 12);
    assert!(page["posts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["category"] == "odd" && p["published"] == true));

    let page: Value = app.get("/api/posts?page=9").await.json().await.unwrap();
    assert_eq!(page["posts"], json!([]));
}

#[tokio::test]
async fn list_rejects_bad_paging_values() {
    let app = Showcase::start().await;
    for query in [
        "page=0",
        "limit=0",
        "limit=101",
        "page=-1",
        "page=abc",
        "sort=author",
        "limit=ten",
    ] {
        let body = expect_error(
            app.get(&format!("/api/posts?{query}")).await,
            400,
            "validation_failed",
        )
        .await;
        // The parameter at fault is named.
        let name = query.split('=').next().unwrap();
        assert!(body["details"][name].is_array(), "{query}: {body}");
    }
    assert_eq!(app.get("/api/posts?limit=100").await.status(), 200);
}

#[tokio::test]
async fn put_replaces_the_whole_post() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    let post = create(
        &app,
        &alice,
        json!({ "title": "Original title", "content": "old", "category": "a", "published": true }),
    )
    .await;
    let id = post["id"].as_str().unwrap();
    let response = app
        .send_json_as(
            &alice,
            Method::PUT,
            &format!("/api/posts/{id}"),
            json!({ "title": "Replaced title", "content": "new", "id": "hijack" }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["id"], id);
    assert_eq!(updated["title"], "Replaced title");
    assert_eq!(updated["content"], "new");
    assert_eq!(updated["category"], Value::Null, "absent fields are reset");
    assert_eq!(updated["published"], false);
    assert_eq!(updated["createdAt"], post["createdAt"]);
    assert!(updated["updatedAt"].as_str() > post["updatedAt"].as_str());

    // The change is stored: it is now a draft, so a public read is 404; the title is free again.
    expect_error(app.get(&format!("/api/posts/{id}")).await, 404, "not_found").await;
    create(
        &app,
        &alice,
        json!({ "title": "Original title", "content": "reuse" }),
    )
    .await;

    expect_error(
        app.send_json_as(
            &alice,
            Method::PUT,
            &format!("/api/posts/{id}"),
            json!({ "title": "Only title" }),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
    expect_error(
        app.send_json_as(
            &alice,
            Method::PUT,
            "/api/posts/unknown",
            json!({ "title": "Some title", "content": "x" }),
        )
        .await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn patch_changes_only_what_is_sent() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    let post = create(
        &app,
        &alice,
        json!({ "title": "Patchable post", "content": "body", "category": "a", "published": true }),
    )
    .await;
    let other = create(
        &app,
        &alice,
        json!({ "title": "Taken title", "content": "x" }),
    )
    .await;
    let id = post["id"].as_str().unwrap();
    // A patch that changes nothing (no field, or the values the post has) writes nothing:
    // `updatedAt` still says when the post last changed.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    for unchanged in [
        json!({}),
        json!({ "title": "Patchable post", "published": true }),
    ] {
        let response = app
            .send_json_as(
                &alice,
                Method::PATCH,
                &format!("/api/posts/{id}"),
                unchanged,
            )
            .await;
        assert_eq!(response.status(), 200);
        let same: Value = response.json().await.unwrap();
        assert_eq!(same, post);
    }
    let response = app
        .send_json_as(
            &alice,
            Method::PATCH,
            &format!("/api/posts/{id}"),
            json!({ "content": "changed" }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let patched: Value = response.json().await.unwrap();
    assert!(patched["updatedAt"].as_str() > post["updatedAt"].as_str());
    assert_eq!(patched["content"], "changed");
    assert_eq!(patched["title"], "Patchable post");
    assert_eq!(patched["category"], "a");
    assert_eq!(patched["published"], true);

    let stored: Value = app
        .get(&format!("/api/posts/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stored, patched);

    let cleared: Value = app
        .send_json_as(
            &alice,
            Method::PATCH,
            &format!("/api/posts/{id}"),
            json!({ "category": null }),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["category"], Value::Null);

    expect_error(
        app.send_json_as(
            &alice,
            Method::PATCH,
            &format!("/api/posts/{id}"),
            json!({ "title": "abc" }),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
    expect_error(
        app.send_json_as(
            &alice,
            Method::PATCH,
            &format!("/api/posts/{id}"),
            json!({ "title": other["title"] }),
        )
        .await,
        409,
        "conflict",
    )
    .await;
    // `null` clears only what a post may lack: the title, the content and `published` are
    // refused, by name, all at once, and nothing is changed (the content here included).
    let refused = expect_error(
        app.send_json_as(
            &alice,
            Method::PATCH,
            &format!("/api/posts/{id}"),
            json!({ "title": null, "content": null, "published": null, "category": "b" }),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
    for field in ["title", "content", "published"] {
        assert_eq!(
            refused["details"][field],
            json!(["must not be null"]),
            "{refused}"
        );
    }
    assert!(refused["details"].get("category").is_none(), "{refused}");
    let stored: Value = app
        .get(&format!("/api/posts/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        stored["title"], "Patchable post",
        "a failed patch changes nothing"
    );
    assert_eq!(stored["category"], Value::Null);
    assert_eq!(stored["published"], true);
    expect_error(
        app.send_json_as(
            &alice,
            Method::PATCH,
            "/api/posts/unknown",
            json!({ "content": "x" }),
        )
        .await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn delete_is_a_true_204_and_the_post_is_gone() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    let post = create(
        &app,
        &alice,
        json!({ "title": "Short lived", "content": "x", "published": true }),
    )
    .await;
    let id = post["id"].as_str().unwrap();
    let response = app
        .as_user(&alice, Method::DELETE, &format!("/api/posts/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(response.headers().get("content-type").is_none());
    assert!(response.bytes().await.unwrap().is_empty());
    expect_error(app.get(&format!("/api/posts/{id}")).await, 404, "not_found").await;
    assert_eq!(post_count(&app).await, 0);
    let response = app
        .as_user(&alice, Method::DELETE, &format!("/api/posts/{id}"))
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "not_found").await;
}

#[tokio::test]
async fn post_routes_answer_framework_rows() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    let response = app
        .client
        .request(Method::OPTIONS, app.url("/api/posts/some-id"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(
        response.headers()["allow"],
        "GET, PUT, PATCH, DELETE, HEAD, OPTIONS"
    );
    let response = app
        .as_user(&alice, Method::POST, "/api/posts/some-id")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["allow"],
        "GET, PUT, PATCH, DELETE, HEAD, OPTIONS"
    );
    expect_error(response, 405, "method_not_allowed").await;
    let response = app
        .as_user(&alice, Method::POST, "/api/posts")
        .header("content-type", "text/plain")
        .body("title=x")
        .send()
        .await
        .unwrap();
    expect_error(response, 415, "unsupported_media_type").await;
    let response = app
        .as_user(&alice, Method::POST, "/api/posts")
        .header("content-type", "application/json")
        .body("{\"title\": ")
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "invalid_json").await;
    let huge = "x".repeat(1024 * 1024 + 10);
    let response = app
        .post_json(
            "/api/posts",
            json!({ "title": "Huge post", "content": huge }),
        )
        .await;
    expect_error(response, 413, "payload_too_large").await;
    assert_eq!(post_count(&app).await, 0);
    let response = app.client.head(app.url("/api/posts")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn sort_by_title_is_alphabetical_whatever_the_case() {
    let app = Showcase::start().await;
    let alice = app.account("alice@example.com").await;
    for title in ["delta post", "Bravo post", "alpha post", "Charlie post"] {
        create(
            &app,
            &alice,
            json!({"title": title, "content": "c", "published": true}),
        )
        .await;
    }
    let page: Value = app.get("/api/posts?sort=title").await.json().await.unwrap();
    let titles = titles_of(&page);
    assert_eq!(
        titles,
        ["alpha post", "Bravo post", "Charlie post", "delta post"]
    );
}

#[tokio::test]
async fn sort_by_title_orders_accents_spaces_and_case_one_way() {
    let app = Showcase::start().await;
    common::expect_titles_in_one_order(&app).await;
}

#[tokio::test]
async fn posts_from_before_the_title_order_get_it_at_start_up() {
    let first = Showcase::start().await;
    let alice = first.account("alice@example.com").await;
    for title in ["Bravo post", "alpha post"] {
        create(
            &first,
            &alice,
            json!({"title": title, "content": "c", "published": true}),
        )
        .await;
    }
    // As a database migrated before the column existed would hold them.
    let pool = waypost::database::connect(&first.database_url)
        .await
        .unwrap();
    sqlx::query("UPDATE posts SET title_order = NULL")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let again = Showcase::start_with(&[("DATABASE_URL", &first.database_url)]).await;
    let page: Value = again
        .get("/api/posts?sort=title")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(titles_of(&page), ["alpha post", "Bravo post"]);
    assert_eq!(again.count_rows("posts WHERE title_order IS NULL").await, 0);
}

#[tokio::test]
async fn a_nul_character_in_any_text_is_a_validation_error_and_nothing_is_written() {
    let app = Showcase::start().await;
    common::expect_nul_refused_everywhere(&app).await;
}

#[tokio::test]
async fn patches_of_different_fields_at_once_all_land() {
    let app = Showcase::start().await;
    common::expect_concurrent_patches_all_kept(&app).await;
}
