//! CORS: an exact allow-list (`CORS_ORIGINS`), always with credentials, never `*`; refused and
//! look-alike origins get no `Access-Control-Allow-Origin` at all.

mod common;

use common::{expect_error, Showcase};
use reqwest::{Method, Response};
use waypost::config::Env;

const ALLOWED: &str = "https://app.example.com";

async fn start() -> Showcase {
    Showcase::start_with(&[("CORS_ORIGINS", ALLOWED)]).await
}

async fn preflight(app: &Showcase, path: &str, origin: &str) -> Response {
    app.client
        .request(Method::OPTIONS, app.url(path))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, x-csrf-token",
        )
        .send()
        .await
        .unwrap()
}

fn header<'a>(response: &'a Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_str()
        .unwrap()
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|item| item.trim().to_ascii_lowercase())
        .collect()
}

fn vary_names(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all("vary")
        .iter()
        .flat_map(|v| list(v.to_str().unwrap()))
        .collect()
}

fn assert_no_cors(response: &Response) {
    for name in [
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-allow-methods",
        "access-control-allow-headers",
    ] {
        assert!(
            response.headers().get(name).is_none(),
            "{name} sent: {:?}",
            response.headers()
        );
    }
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_gets_204_and_the_cors_headers() {
    let app = start().await;
    let response = preflight(&app, "/api/posts", ALLOWED).await;
    assert_eq!(response.status(), 204);
    assert_eq!(header(&response, "access-control-allow-origin"), ALLOWED);
    let methods = list(header(&response, "access-control-allow-methods"));
    for method in ["get", "post", "put", "patch", "delete"] {
        assert!(methods.contains(&method.to_owned()), "{methods:?}");
    }
    let headers = list(header(&response, "access-control-allow-headers"));
    // The contract's three, and what the framework's own batteries read.
    for name in [
        "content-type",
        "authorization",
        "x-csrf-token",
        "x-request-id",
        "idempotency-key",
    ] {
        assert!(headers.contains(&name.to_owned()), "{headers:?}");
    }
    assert_eq!(
        header(&response, "access-control-allow-credentials"),
        "true"
    );
    assert_eq!(header(&response, "access-control-max-age"), "86400");
    assert!(vary_names(&response).contains(&"origin".to_owned()));
    assert!(response.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_preflight_is_routed_a_path_without_a_route_is_404() {
    let app = start().await;
    expect_error(
        preflight(&app, "/api/no-such-route", ALLOWED).await,
        404,
        "not_found",
    )
    .await;
    // Preflights reach no handler and use up no budget: twelve to login (ten a minute) all
    // pass, and its ten attempts are still there.
    for _ in 0..12 {
        let response = preflight(&app, "/api/auth/login", ALLOWED).await;
        assert_eq!(response.status(), 204);
        assert_eq!(header(&response, "access-control-allow-origin"), ALLOWED);
        assert!(response.headers().get("allow").is_none());
    }
    assert_eq!(app.register("alice@example.com").await.status(), 201);
    for attempt in 1..=10 {
        let response = app.login("alice@example.com", common::PASSWORD).await;
        assert_eq!(response.status(), 200, "attempt {attempt}");
    }
}

#[tokio::test]
async fn refused_and_look_alike_origins_get_no_allow_origin() {
    let app = start().await;
    for origin in [
        "https://evil.example",
        "https://app.example.com.evil.com",
        "https://evilapp.example.com",
        "http://app.example.com",
        "https://app.example.com:8443",
        "null",
        // Spellings of the allowed origin that no browser sends: echoing one back would put
        // something other than a listed origin in Access-Control-Allow-Origin.
        "https://app.example.com/",
        "https://APP.example.com",
        "https://app.example.com:443",
    ] {
        let response = preflight(&app, "/api/posts", origin).await;
        assert_no_cors(&response);
        let actual = app
            .client
            .get(app.url("/api/hello"))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(actual.status(), 200);
        assert_no_cors(&actual);
        assert!(
            vary_names(&actual).contains(&"origin".to_owned()),
            "the answer depends on Origin, so caches must know"
        );
    }
}

#[tokio::test]
async fn star_is_never_sent() {
    let app = start().await;
    let responses = [
        preflight(&app, "/api/posts", ALLOWED).await,
        preflight(&app, "/api/posts", "https://evil.example").await,
        app.client
            .get(app.url("/api/hello"))
            .header("origin", ALLOWED)
            .send()
            .await
            .unwrap(),
        app.get("/api/hello").await,
        app.get("/api/no-such-route").await,
    ];
    for response in responses {
        for value in response
            .headers()
            .get_all("access-control-allow-origin")
            .iter()
        {
            assert_ne!(value, "*");
        }
    }
}

#[tokio::test]
async fn an_actual_request_from_the_allowed_origin_carries_origin_and_credentials() {
    let app = start().await;
    let response = app
        .client
        .get(app.url("/api/hello"))
        .header("origin", ALLOWED)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "access-control-allow-origin"), ALLOWED);
    assert_eq!(
        header(&response, "access-control-allow-credentials"),
        "true"
    );
    assert!(vary_names(&response).contains(&"origin".to_owned()));
    // Errors are readable cross-origin too, or the SPA cannot show them.
    let error = app
        .client
        .get(app.url("/api/auth/me"))
        .header("origin", ALLOWED)
        .send()
        .await
        .unwrap();
    assert_eq!(error.status(), 401);
    assert_eq!(header(&error, "access-control-allow-origin"), ALLOWED);
}

#[tokio::test]
async fn a_plain_options_is_still_204_with_allow() {
    let app = start().await;
    for origin in [None, Some(ALLOWED)] {
        let mut request = app.client.request(Method::OPTIONS, app.url("/api/posts"));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 204, "{origin:?}");
        let allow = list(header(&response, "allow"));
        for method in ["get", "head", "post", "options"] {
            assert!(allow.contains(&method.to_owned()), "{allow:?}");
        }
        assert!(response
            .headers()
            .get("access-control-allow-methods")
            .is_none());
    }
}

#[tokio::test]
async fn without_cors_origins_nobody_is_allowed() {
    let app = Showcase::start().await;
    let response = preflight(&app, "/api/posts", ALLOWED).await;
    assert_no_cors(&response);
    let actual = app
        .client
        .get(app.url("/api/hello"))
        .header("origin", ALLOWED)
        .send()
        .await
        .unwrap();
    assert_no_cors(&actual);
}

#[test]
fn a_star_in_cors_origins_refuses_to_start() {
    for value in ["*", "https://app.example.com,*", "app.example.com", "null"] {
        let error = showcase::Config::from(&Env::from_pairs([("CORS_ORIGINS", value)]))
            .expect_err(value)
            .to_string();
        assert!(error.contains("CORS_ORIGINS"), "{value}: {error}");
    }
}
