//! Who may see and change what: posts belong to their author (admins may change any), drafts
//! are invisible to everyone else (admins included, as the contract has it), the user list is for
//! admins, a user record for its owner and admins.

mod common;

use common::{expect_error, Account, Showcase};
use reqwest::Method;
use serde_json::{json, Value};

const ADMIN: &str = "admin@example.com";

async fn start() -> Showcase {
    Showcase::start_with(&[("ADMIN_EMAILS", ADMIN)]).await
}

async fn create(app: &Showcase, author: &Account, title: &str, published: bool) -> Value {
    let response = app
        .send_json_as(
            author,
            Method::POST,
            "/api/posts",
            json!({ "title": title, "content": "Body text", "published": published }),
        )
        .await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

fn path_of(post: &Value) -> String {
    format!("/api/posts/{}", post["id"].as_str().unwrap())
}

async fn stored(app: &Showcase, post: &Value) -> Option<Value> {
    let pool = waypost::database::connect(&app.database_url).await.unwrap();
    let row: Option<(String, String, i64)> =
        sqlx::query_as("SELECT title, content, published FROM posts WHERE id = $1")
            .bind(post["id"].as_str().unwrap())
            .fetch_optional(&pool)
            .await
            .unwrap();
    pool.close().await;
    row.map(|(title, content, published)| {
        json!({ "title": title, "content": content, "published": published != 0 })
    })
}

fn as_stored(post: &Value) -> Option<Value> {
    Some(json!({
        "title": post["title"],
        "content": post["content"],
        "published": post["published"],
    }))
}

async fn writes(app: &Showcase, who: &Account, path: &str) -> [reqwest::Response; 3] {
    [
        app.send_json_as(
            who,
            Method::PUT,
            path,
            json!({ "title": "Hijacked title", "content": "hijacked", "published": true }),
        )
        .await,
        app.send_json_as(
            who,
            Method::PATCH,
            path,
            json!({ "title": "Hijacked title" }),
        )
        .await,
        app.as_user(who, Method::DELETE, path).send().await.unwrap(),
    ]
}

#[tokio::test]
async fn another_users_published_post_is_403_to_change_and_stays_unchanged() {
    let app = start().await;
    let alice = app.account("alice@example.com").await;
    let bob = app.account("bob@example.com").await;
    let post = create(&app, &alice, "Alice's public post", true).await;
    for response in writes(&app, &bob, &path_of(&post)).await {
        expect_error(response, 403, "forbidden").await;
    }
    assert_eq!(stored(&app, &post).await, as_stored(&post));
    let seen: Value = app.get(&path_of(&post)).await.json().await.unwrap();
    assert_eq!(seen, post, "updatedAt did not move either");
}

#[tokio::test]
async fn another_users_draft_is_hidden_from_reads_and_forbidden_to_writes() {
    let app = start().await;
    let alice = app.account("alice@example.com").await;
    let bob = app.account("bob@example.com").await;
    let draft = create(&app, &alice, "Alice's secret draft", false).await;
    let path = path_of(&draft);
    let read = app.as_user(&bob, Method::GET, &path).send().await.unwrap();
    expect_error(read, 404, "not_found").await;
    expect_error(app.get(&path).await, 404, "not_found").await;
    // The contract: another user's post → 403 for PUT/PATCH/DELETE, drafts included.
    for response in writes(&app, &bob, &path).await {
        expect_error(response, 403, "forbidden").await;
    }
    assert_eq!(stored(&app, &draft).await, as_stored(&draft));
    // Still there for its author.
    let own = app
        .as_user(&alice, Method::GET, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
}

#[tokio::test]
async fn the_author_sees_their_own_draft_alone_and_in_the_list() {
    let app = start().await;
    let alice = app.account("alice@example.com").await;
    let bob = app.account("bob@example.com").await;
    let draft = create(&app, &alice, "Alice's draft", false).await;
    let public = create(&app, &bob, "Bob's public post", true).await;
    let bobs_draft = create(&app, &bob, "Bob's draft", false).await;

    let one = app
        .as_user(&alice, Method::GET, &path_of(&draft))
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    assert_eq!(one.json::<Value>().await.unwrap(), draft);

    let list = app.get_json_as(&alice, "/api/posts").await;
    let ids: Vec<&Value> = list["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["id"])
        .collect();
    assert!(ids.contains(&&draft["id"]));
    assert!(ids.contains(&&public["id"]));
    assert!(
        !ids.contains(&&bobs_draft["id"]),
        "not someone else's draft"
    );
    assert_eq!(list["pagination"]["total"], 2);

    let anonymous: Value = app.get("/api/posts").await.json().await.unwrap();
    assert_eq!(anonymous["pagination"]["total"], 1);
    assert_eq!(anonymous["posts"][0]["id"], public["id"]);
}

#[tokio::test]
async fn the_author_can_change_their_own_post() {
    let app = start().await;
    let alice = app.account("alice@example.com").await;
    let post = create(&app, &alice, "Alice's own post", false).await;
    let response = app
        .send_json_as(
            &alice,
            Method::PATCH,
            &path_of(&post),
            json!({ "published": true }),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(stored(&app, &post).await.unwrap()["published"], true);
    let deleted = app
        .as_user(&alice, Method::DELETE, &path_of(&post))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(stored(&app, &post).await, None);
}

#[tokio::test]
async fn an_admin_can_edit_and_delete_anyones_post() {
    let app = start().await;
    let alice = app.account("alice@example.com").await;
    let admin = app.account(ADMIN).await;
    assert_eq!(admin.user["role"], "admin");
    let public = create(&app, &alice, "Alice's public post", true).await;
    let draft = create(&app, &alice, "Alice's private draft", false).await;

    let put = app
        .send_json_as(
            &admin,
            Method::PUT,
            &path_of(&public),
            json!({ "title": "Moderated title", "content": "moderated", "published": true }),
        )
        .await;
    assert_eq!(put.status(), 200);
    let put: Value = put.json().await.unwrap();
    assert_eq!(put["title"], "Moderated title");
    assert_eq!(put["authorId"], alice.id(), "the author stays the author");
    assert_eq!(
        stored(&app, &public).await.unwrap()["title"],
        "Moderated title"
    );

    let patch = app
        .send_json_as(
            &admin,
            Method::PATCH,
            &path_of(&draft),
            json!({ "content": "edited by an admin" }),
        )
        .await;
    assert_eq!(patch.status(), 200);
    assert_eq!(
        stored(&app, &draft).await.unwrap()["content"],
        "edited by an admin"
    );
    // The contract's GET answers 404 for another user's draft, an admin's included: a draft
    // is read by its author alone (an admin changes it without reading it first).
    for viewer in [&admin, &app.account("bob@example.com").await] {
        let hidden = app
            .as_user(viewer, Method::GET, &path_of(&draft))
            .send()
            .await
            .unwrap();
        expect_error(hidden, 404, "not_found").await;
    }
    expect_error(app.get(&path_of(&draft)).await, 404, "not_found").await;
    let own = app
        .as_user(&alice, Method::GET, &path_of(&draft))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    let own: Value = own.json().await.unwrap();
    assert_eq!(
        (&own["id"], &own["content"], &own["published"]),
        (&draft["id"], &json!("edited by an admin"), &json!(false))
    );

    for post in [&public, &draft] {
        let deleted = app
            .as_user(&admin, Method::DELETE, &path_of(post))
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.status(), 204);
    }
    assert_eq!(app.count_rows("posts").await, 0);
}

#[tokio::test]
async fn unauthenticated_post_writes_are_401_and_store_nothing() {
    let app = start().await;
    let alice = app.account("alice@example.com").await;
    let post = create(&app, &alice, "Alice's public post", true).await;
    let body = json!({ "title": "Anonymous title", "content": "anon", "published": true });
    let responses = [
        app.post_json("/api/posts", body.clone()).await,
        app.send_json(Method::PUT, &path_of(&post), body.clone())
            .await,
        app.send_json(Method::PATCH, &path_of(&post), body.clone())
            .await,
        app.client
            .delete(app.url(&path_of(&post)))
            .send()
            .await
            .unwrap(),
    ];
    for response in responses {
        expect_error(response, 401, "unauthorized").await;
    }
    assert_eq!(app.count_rows("posts").await, 1);
    assert_eq!(stored(&app, &post).await, as_stored(&post));
}

#[tokio::test]
async fn only_admins_list_users() {
    let app = start().await;
    let alice = app.account("alice@example.com").await;
    let _bob = app.account("bob@example.com").await;
    let admin = app.account(ADMIN).await;

    let refused = app
        .as_user(&alice, Method::GET, "/api/users")
        .send()
        .await
        .unwrap();
    expect_error(refused, 403, "forbidden").await;
    // Who may ask comes before how they ask: bad paging is still 403 (or 401) for them.
    for path in ["/api/users?limit=0", "/api/users?page=x"] {
        let refused = app.as_user(&alice, Method::GET, path).send().await.unwrap();
        expect_error(refused, 403, "forbidden").await;
        expect_error(app.get(path).await, 401, "unauthorized").await;
    }
    expect_error(app.get("/api/users").await, 401, "unauthorized").await;

    let response = app
        .as_user(&admin, Method::GET, "/api/users")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["users"].as_array().unwrap().len(), 3);
    assert_eq!(
        body["users"][0]["email"], "alice@example.com",
        "oldest first"
    );
    assert_eq!(
        body["pagination"],
        json!({ "page": 1, "limit": 10, "total": 3, "totalPages": 1 })
    );

    let page_two: Value = app
        .as_user(&admin, Method::GET, "/api/users?page=2&limit=2")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page_two["users"].as_array().unwrap().len(), 1);
    assert_eq!(page_two["users"][0]["email"], ADMIN);
    assert_eq!(
        page_two["pagination"],
        json!({ "page": 2, "limit": 2, "total": 3, "totalPages": 2 })
    );
    let bad = app
        .as_user(&admin, Method::GET, "/api/users?limit=0")
        .send()
        .await
        .unwrap();
    expect_error(bad, 400, "validation_failed").await;
}

#[tokio::test]
async fn a_user_record_is_for_its_owner_and_admins() {
    let app = start().await;
    let alice = app.account("alice@example.com").await;
    let bob = app.account("bob@example.com").await;
    let admin = app.account(ADMIN).await;
    let get = |who: &Account, id: &str| {
        app.as_user(who, Method::GET, &format!("/api/users/{id}"))
            .send()
    };

    let own = get(&alice, alice.id()).await.unwrap();
    assert_eq!(own.status(), 200);
    assert_eq!(own.json::<Value>().await.unwrap()["user"], alice.user);

    expect_error(get(&alice, bob.id()).await.unwrap(), 403, "forbidden").await;
    expect_error(get(&alice, admin.id()).await.unwrap(), 403, "forbidden").await;

    let by_admin = get(&admin, bob.id()).await.unwrap();
    assert_eq!(by_admin.status(), 200);
    assert_eq!(by_admin.json::<Value>().await.unwrap()["user"], bob.user);

    expect_error(get(&admin, "no-such-user").await.unwrap(), 404, "not_found").await;
    expect_error(get(&alice, "no-such-user").await.unwrap(), 404, "not_found").await;
    let anonymous = app.get(&format!("/api/users/{}", alice.id())).await;
    expect_error(anonymous, 401, "unauthorized").await;
}

#[tokio::test]
async fn who_may_change_a_post_is_settled_before_its_body_is_validated() {
    let app = start().await;
    let alice = app.account("alice@example.com").await;
    let bob = app.account("bob@example.com").await;
    let post = create(&app, &alice, "Alice's public post", true).await;
    let invalid = json!({ "title": "x", "content": "" });
    for method in [Method::PUT, Method::PATCH] {
        let response = app
            .send_json_as(&bob, method.clone(), &path_of(&post), invalid.clone())
            .await;
        expect_error(response, 403, "forbidden").await;
        let response = app
            .send_json_as(
                &bob,
                method.clone(),
                "/api/posts/0123456789abcdef",
                invalid.clone(),
            )
            .await;
        expect_error(response, 404, "not_found").await;
        // The author gets the validation details.
        let response = app
            .send_json_as(&alice, method, &path_of(&post), invalid.clone())
            .await;
        let body = expect_error(response, 400, "validation_failed").await;
        assert!(body["details"]["title"].is_array(), "{body}");
    }
    assert_eq!(stored(&app, &post).await, as_stored(&post));
}
