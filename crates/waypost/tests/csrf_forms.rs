//! CSRF tokens in URL-encoded form bodies, over a real socket: a token sent first passes a form
//! far larger than the search reads, and the handler gets the form whole; a token behind more
//! than the search reads is not found, and nothing runs.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use reqwest::{header, Client, StatusCode};
use serde_json::Value;
use waypost::{
    axum::Router,
    extract::{Form, Json},
    routing::{HandlerInfo, Method, RouteInfo, RouteMethods},
    security::{CsrfKeys, Security, SecuritySettings},
    testing::TestServer,
    App, RouteConfig,
};

/// A form route whose own limit is far past the token search's 1 MiB.
static NOTES: RouteInfo = RouteInfo::at(
    &["/notes"],
    &[HandlerInfo::of(Method::Post)],
    RouteConfig::new().body_limit(4 * 1024 * 1024),
);

#[tokio::test]
async fn a_form_token_sent_first_passes_however_large_the_form() {
    let security = Arc::new(Security::new(SecuritySettings::default()).unwrap());
    let handled = Arc::new(AtomicUsize::new(0));
    let router = RouteMethods::new(&NOTES)
        .post({
            let handled = handled.clone();
            move |Form(form): Form<HashMap<String, String>>| async move {
                handled.fetch_add(1, Ordering::SeqCst);
                Json(serde_json::json!({
                    "fields": form.len(),
                    "padding": form.get("padding").map_or(0, String::len),
                    "after": form.get("after"),
                }))
            }
        })
        .mount(Router::new());
    let server = TestServer::start(App::new(router).with_security(security.clone())).await;
    let cookie = CsrfKeys::new_cookie_value();
    let token = security.csrf().token_for(&cookie);
    let padding = "p".repeat(2 * 1024 * 1024);
    let post = |form: Vec<(&str, &str)>| {
        Client::new()
            .post(server.url("/notes"))
            .header(header::COOKIE, format!("csrf={cookie}"))
            .form(&form)
            .send()
    };

    let first = post(vec![
        ("_csrf", &token),
        ("padding", &padding),
        ("after", "kept"),
    ])
    .await
    .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["fields"], 3, "the form reached the handler whole");
    assert_eq!(body["padding"], padding.len());
    assert_eq!(body["after"], "kept");
    assert_eq!(handled.load(Ordering::SeqCst), 1);

    // Behind 2 MiB of padding the token is past the search: refused, the handler never runs.
    let late = post(vec![("padding", &padding), ("_csrf", &token)])
        .await
        .unwrap();
    assert_eq!(late.status(), StatusCode::FORBIDDEN);
    let body: Value = late.json().await.unwrap();
    assert_eq!(body["code"], "csrf_invalid");
    assert_eq!(handled.load(Ordering::SeqCst), 1);

    // A token of another client's cookie, up front, is refused as well.
    let other = security.csrf().token_for(&CsrfKeys::new_cookie_value());
    let forged = post(vec![("_csrf", &other), ("padding", "p")])
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(handled.load(Ordering::SeqCst), 1);
}
