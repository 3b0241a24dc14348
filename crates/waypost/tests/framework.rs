//! The contract's framework table, row by row, over a real socket: every error leaves as the one
//! JSON shape with the right status, and the server keeps serving.

use std::time::Duration;

use reqwest::{header, Client, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use waypost::{
    axum::{body::Body, http::HeaderMap, Router},
    extract::{Json, Query, Valid},
    routing::{self, HandlerInfo, Method, RouteInfo, RouteMethods},
    testing::TestServer,
    ApiError, App, RouteConfig,
};

const GET: &[HandlerInfo] = &[HandlerInfo::of(Method::Get)];
const POST: &[HandlerInfo] = &[HandlerInfo::of(Method::Post)];

static ECHO: RouteInfo = RouteInfo::at(
    &["/echo"],
    &[HandlerInfo::of(Method::Get), HandlerInfo::of(Method::Post)],
    RouteConfig::new(),
);
static SMALL: RouteInfo = RouteInfo::at(&["/small"], POST, RouteConfig::new().body_limit(16));
static SLOW: RouteInfo = RouteInfo::at(
    &["/slow"],
    GET,
    RouteConfig::new().max_duration(Duration::from_millis(100)),
);
static PANIC: RouteInfo = RouteInfo::at(&["/panic"], GET, RouteConfig::new());
static WIDE: RouteInfo = RouteInfo::at(&["/wide"], GET, RouteConfig::new().max_fields(2000));
static PAGE: RouteInfo = RouteInfo::at(
    &["/page"],
    &[HandlerInfo::of(Method::Get), HandlerInfo::of(Method::Post)],
    RouteConfig::new(),
);
static HEADERS: RouteInfo = RouteInfo::at(&["/headers"], GET, RouteConfig::new());
static STREAM_BODY: RouteInfo =
    RouteInfo::at(&["/count"], POST, RouteConfig::new().body_limit(1024));
static LOOKALIKE: RouteInfo = RouteInfo::at(&["/lookalike"], GET, RouteConfig::new());

/// A body that looks exactly like one of hyper's bare error heads.
const LOOKALIKE_BODY: &[u8] = b"HTTP/1.1 400 Bad Request\r\nset-cookie: session=attacker\r\n\r\n";

#[derive(Deserialize, garde::Validate)]
struct Note {
    #[garde(length(chars, min = 3))]
    text: String,
}

#[derive(Deserialize)]
struct Page {
    page: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
enum SortKey {
    CreatedAt,
    Title,
}

#[derive(Deserialize)]
struct Order {
    sort: SortKey,
}

fn app() -> App {
    App::new(router())
}

/// The routes of [`app`], to add more to.
fn router() -> Router {
    let router = Router::new();
    let router =
        RouteMethods::new(&ECHO)
            .get(|Query(page): Query<Page>| async move { Json(json!({ "page": page.page })) })
            .post(|Valid(Json(note)): Valid<Json<Note>>| async move {
                Json(json!({ "text": note.text }))
            })
            .mount(router);
    let router = RouteMethods::new(&PAGE)
        .get(|Query(order): Query<Order>| async move {
            Json(json!({ "sort": matches!(order.sort, SortKey::Title) }))
        })
        .post(|Json(page): Json<Page>| async move { Json(json!({ "page": page.page })) })
        .mount(router);
    let router = RouteMethods::new(&WIDE)
        .get(|Query(pairs): Query<Vec<(String, String)>>| async move {
            Json(json!({ "pairs": pairs.len() }))
        })
        .mount(router);
    let router = RouteMethods::new(&SMALL)
        .post(|Json(value): Json<Value>| async move { Json(value) })
        .mount(router);
    let router = RouteMethods::new(&SLOW)
        .get(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "too late"
        })
        .mount(router);
    let router = RouteMethods::new(&PANIC)
        .get(|| async {
            if std::hint::black_box(true) {
                panic!("secret panic text /srv/app/src/main.rs");
            }
            "unreachable"
        })
        .mount(router);
    let router = RouteMethods::new(&HEADERS)
        .get(|headers: HeaderMap| async move {
            let internal: Vec<String> = headers
                .keys()
                .map(|k| k.as_str().to_owned())
                .filter(|k| k.starts_with("x-waypost-"))
                .collect();
            Json(json!({ "internal": internal }))
        })
        .mount(router);
    let router = RouteMethods::new(&STREAM_BODY)
        .post(|body: Body| async move {
            use futures_util::StreamExt;
            let mut stream = body.into_data_stream();
            let mut total = 0usize;
            while let Some(chunk) = stream.next().await {
                total += chunk.map_err(ApiError::from)?.len();
            }
            Ok::<_, ApiError>(Json(json!({ "bytes": total })))
        })
        .mount(router);
    let router = RouteMethods::new(&LOOKALIKE)
        .get(|| async {
            // Streamed after a pause, so hyper writes the head and this body separately.
            let body = futures_util::stream::once(async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok::<_, std::convert::Infallible>(axum::body::Bytes::from_static(LOOKALIKE_BODY))
            });
            (
                [(header::CONTENT_LENGTH, LOOKALIKE_BODY.len().to_string())],
                Body::from_stream(body),
            )
        })
        .mount(router);
    router.fallback(routing::not_found_fallback)
}

async fn error_of(response: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status);
    let request_id = response
        .headers()
        .get("x-request-id")
        .expect("every response carries X-Request-Id")
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/json",
        "errors are JSON"
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
    assert_eq!(body["requestId"], request_id.as_str(), "{body}");
    body
}

/// GETs `path`, checks the answer is 400 `validation_failed`, and returns `details[field][0]`.
async fn invalid_field(server: &TestServer, path: &str, field: &str) -> Value {
    let response = Client::new().get(server.url(path)).send().await.unwrap();
    let body = error_of(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    body["details"][field][0].clone()
}

#[tokio::test]
async fn unknown_path_is_404_json() {
    let server = TestServer::start(app()).await;
    let response = Client::new().get(server.url("/nope")).send().await.unwrap();
    error_of(response, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn unexported_method_is_405_with_allow() {
    let server = TestServer::start(app()).await;
    let response = Client::new()
        .delete(server.url("/echo"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()[header::ALLOW],
        "GET, POST, HEAD, OPTIONS"
    );
    let body = error_of(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    assert_eq!(body["error"], "This route does not answer DELETE.");
    // A method of the client's own making is named, cut short.
    let long = "Z".repeat(8000);
    let response = Client::new()
        .request(
            reqwest::Method::from_bytes(long.as_bytes()).unwrap(),
            server.url("/echo"),
        )
        .send()
        .await
        .unwrap();
    let body = error_of(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    assert_eq!(
        body["error"],
        format!("This route does not answer {}….", "Z".repeat(64))
    );
}

#[tokio::test]
async fn an_unexported_method_is_405_before_any_check_of_the_handlers() {
    let server = TestServer::start(app()).await;
    // Past the route's 16-byte body limit, with a cookie and no CSRF token: what the handler
    // would have refused does not matter to a method that has no handler.
    let response = Client::new()
        .put(server.url("/small"))
        .header(header::COOKIE, "session=abc")
        .header(header::CONTENT_TYPE, "application/json")
        .body(vec![b' '; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()[header::ALLOW], "POST, OPTIONS");
    error_of(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    // The route's own method still gets its checks.
    let response = Client::new()
        .post(server.url("/small"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(vec![b' '; 1024])
        .send()
        .await
        .unwrap();
    error_of(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

/// A route with a `middleware.rs` that reads every body, so the guard sits outside it.
static READ_FIRST: RouteInfo = RouteInfo {
    pattern: "/read-first",
    paths: &["/read-first"],
    file: "src/app/read-first/route.rs",
    params: &[],
    handlers: POST,
    middleware: &["src/app/read-first/middleware.rs"],
    config: RouteConfig::new().body_limit(16),
};

#[tokio::test]
async fn a_middleware_before_a_405_still_reads_a_bounded_body() {
    use waypost::axum::{
        body::to_bytes,
        extract::Request,
        middleware::{self, Next},
        response::IntoResponse,
    };
    // What a logging or signing middleware might do: read the whole body first.
    async fn read_body(request: Request, next: Next) -> waypost::axum::response::Response {
        let (parts, body) = request.into_parts();
        match to_bytes(body, usize::MAX).await {
            Ok(bytes) => {
                let mut response = next
                    .run(Request::from_parts(parts, Body::from(bytes.clone())))
                    .await;
                response.headers_mut().insert("x-read", bytes.len().into());
                response
            }
            Err(_) => ApiError::payload_too_large().into_response(),
        }
    }
    let router = RouteMethods::new(&READ_FIRST)
        .post(|body: String| async move { body })
        .layer(middleware::from_fn(read_body))
        .mount(Router::new());
    let server = TestServer::start(App::new(router)).await;
    assert!(!READ_FIRST.guards_each_handler());
    // A method the route lacks: the middleware runs, and what it reads stops at the limit.
    let response = Client::new()
        .put(server.url("/read-first"))
        .body(vec![b'x'; 64 * 1024])
        .send()
        .await
        .unwrap();
    error_of(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    // Within the limit it reads the body and the framework answers 405.
    let response = Client::new()
        .put(server.url("/read-first"))
        .body("small")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-read"], "5");
    error_of(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn options_answers_204_with_allow_and_no_body() {
    let server = TestServer::start(app()).await;
    let response = Client::new()
        .request(reqwest::Method::OPTIONS, server.url("/small"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(response.headers()[header::ALLOW], "POST, OPTIONS");
    assert!(response.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn head_on_a_get_route_answers_like_get_without_body() {
    let server = TestServer::start(app()).await;
    let response = Client::new()
        .head(server.url("/echo?page=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    assert!(response.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn broken_and_misshapen_json_is_400_invalid_json() {
    let server = TestServer::start(app()).await;
    let client = Client::new();
    for body in ["{not json", r#"{"text": 5}"#, "[]", ""] {
        let response = client
            .post(server.url("/echo"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        error_of(response, StatusCode::BAD_REQUEST, "invalid_json").await;
    }
}

#[tokio::test]
async fn a_long_value_in_an_error_is_quoted_back_cut_short() {
    let server = TestServer::start(app()).await;
    let client = Client::new();
    let long = "x".repeat(200_000);
    let response = client
        .post(server.url("/page"))
        .json(&json!({ "page": long }))
        .send()
        .await
        .unwrap();
    let body = error_of(response, StatusCode::BAD_REQUEST, "invalid_json").await;
    assert_eq!(
        body["error"],
        format!(
            "The JSON body has the wrong shape: invalid type: string \"{}…\", expected u32 at line 1 column 200010.",
            "x".repeat(64)
        )
    );
    assert_eq!(
        invalid_field(&server, &format!("/page?sort={}", &long[..8000]), "sort").await,
        format!(
            "unknown value `{}…`, expected `createdAt` or `title`",
            "x".repeat(64)
        )
    );
    // Short values are quoted whole, and a good request still passes.
    assert_eq!(
        invalid_field(&server, "/page?sort=newest", "sort").await,
        "unknown value `newest`, expected `createdAt` or `title`"
    );
    let response = client
        .get(server.url("/page?sort=title"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["sort"], true);
}

#[tokio::test]
async fn a_route_may_read_more_pairs_than_the_default_1000() {
    let server = TestServer::start(app()).await;
    let client = Client::new();
    let query = |pairs: usize| vec!["k=v"; pairs].join("&");
    let response = client
        .get(server.url(&format!("/wide?{}", query(1500))))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["pairs"], 1500);
    assert_eq!(
        invalid_field(&server, &format!("/wide?{}", query(2001)), "query").await,
        "has more than 2000 fields"
    );
    // A route without the setting keeps the default.
    assert_eq!(
        invalid_field(
            &server,
            &format!("/page?sort=title&{}", query(1000)),
            "query"
        )
        .await,
        "has more than 1000 fields"
    );
}

#[tokio::test]
async fn non_json_content_type_is_415() {
    let server = TestServer::start(app()).await;
    let response = Client::new()
        .post(server.url("/echo"))
        .header(header::CONTENT_TYPE, "text/plain")
        .body(r#"{"text":"hello"}"#)
        .send()
        .await
        .unwrap();
    error_of(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
}

#[tokio::test]
async fn validation_failure_is_400_with_field_details() {
    let server = TestServer::start(app()).await;
    let response = Client::new()
        .post(server.url("/echo"))
        .json(&json!({ "text": "hi" }))
        .send()
        .await
        .unwrap();
    let body = error_of(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert!(body["details"]["text"][0].is_string(), "{body}");

    let response = Client::new()
        .post(server.url("/echo"))
        .json(&json!({ "text": "hello" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["text"], "hello");
}

#[tokio::test]
async fn a_bad_query_value_is_400_validation_failed_naming_the_parameter() {
    let server = TestServer::start(app()).await;
    let response = Client::new()
        .get(server.url("/echo?page=minus-one"))
        .send()
        .await
        .unwrap();
    let body = error_of(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(
        body["details"],
        json!({ "page": ["must be a whole number"] })
    );
}

/// POSTs `count` chunks of `size` bytes with chunked encoding (no Content-Length).
async fn post_chunks(client: &Client, url: &str, count: usize, size: usize) -> reqwest::Response {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..count).map(|_| Ok(vec![b'x'; size])).collect();
    client
        .post(url)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_body_over_the_route_limit_is_413_declared_or_streamed() {
    let server = TestServer::start(app()).await;
    let client = Client::new();
    // Declared by Content-Length.
    let response = client
        .post(server.url("/small"))
        .json(&json!({ "text": "this is longer than sixteen bytes" }))
        .send()
        .await
        .unwrap();
    error_of(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    // Streamed with chunked encoding: no Content-Length to check up front.
    let response = post_chunks(&client, &server.url("/count"), 8, 512).await;
    error_of(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    // Under the limit, the same streamed route answers.
    let response = post_chunks(&client, &server.url("/count"), 2, 100).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["bytes"], 200);
}

#[tokio::test]
async fn the_default_body_limit_is_one_mebibyte() {
    let server = TestServer::start(app()).await;
    let text = "x".repeat(1024 * 1024 + 1);
    let response = Client::new()
        .post(server.url("/echo"))
        .json(&json!({ "text": text }))
        .send()
        .await
        .unwrap();
    error_of(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    let text = "x".repeat(1000 * 1000);
    let response = Client::new()
        .post(server.url("/echo"))
        .json(&json!({ "text": text }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// Sends `request` raw and reads the whole answer (the server closes after a 431).
async fn raw_exchange(server: &TestServer, request: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(server.address())
        .await
        .unwrap();
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

fn with_header_of(bytes: usize) -> String {
    format!(
        "GET /echo?page=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Big: {}\r\n\r\n",
        "a".repeat(bytes)
    )
}

#[tokio::test]
async fn an_oversized_header_section_is_431() {
    let server = TestServer::start(app()).await;
    // Past the limit (16 KiB by default): the one error shape, with the request id.
    let answer = raw_exchange(&server, &with_header_of(64 * 1024)).await;
    expect_shaped_error(&answer, "431", "header_fields_too_large");
    // Just under the limit passes.
    let answer = raw_exchange(&server, &with_header_of(15 * 1024)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Far past it, hyper's read buffer gives out first, and past 100 headers hyper refuses on
    // its own: still a 431 in the one error shape.
    let answer = raw_exchange(&server, &with_header_of(1024 * 1024)).await;
    expect_shaped_error(&answer, "431", "header_fields_too_large");
    let many: String = (0..150).map(|i| format!("X-H{i}: a\r\n")).collect();
    let request = format!("GET /echo?page=1 HTTP/1.1\r\nHost: localhost\r\n{many}\r\n");
    expect_shaped_error(
        &raw_exchange(&server, &request).await,
        "431",
        "header_fields_too_large",
    );

    // The server is still serving.
    expect_still_serving(&server).await;
}

/// Asserts the server still answers an ordinary request.
async fn expect_still_serving(server: &TestServer) {
    let response = Client::new()
        .get(server.url("/echo?page=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// Asserts `answer` is a `status` error in the one shape: JSON body with `code`, the request id
/// in header and body alike, `nosniff`.
fn expect_shaped_error(answer: &str, status: &str, code: &str) {
    assert!(
        answer.starts_with(&format!("HTTP/1.1 {status}")),
        "{answer}"
    );
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    let head = head.to_ascii_lowercase();
    let id = head
        .lines()
        .find_map(|line| line.strip_prefix("x-request-id: "))
        .unwrap_or_else(|| panic!("X-Request-Id on the {status}: {answer}"));
    assert!(head.contains("x-content-type-options: nosniff"), "{answer}");
    assert!(head.contains("content-type: application/json"), "{answer}");
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["code"], code);
    assert_eq!(body["requestId"], id);
    assert!(body["error"].as_str().is_some_and(|text| !text.is_empty()));
}

#[tokio::test]
async fn what_hyper_cannot_parse_is_answered_in_the_one_error_shape() {
    let server = TestServer::start(app()).await;
    expect_shaped_error(
        &raw_exchange(&server, "GARBAGE\r\n\r\n").await,
        "400",
        "bad_request",
    );
    expect_shaped_error(
        &raw_exchange(
            &server,
            "GET /echo HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        )
        .await,
        "400",
        "bad_request",
    );
    let long_uri = format!(
        "GET /echo?q={} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    expect_shaped_error(
        &raw_exchange(&server, &long_uri).await,
        "414",
        "uri_too_long",
    );
    // The server is still serving, and its own answers are untouched.
    expect_still_serving(&server).await;
    let missing = Client::new().get(server.url("/nope")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["code"], "not_found");
}

/// Sends `first` and reads its whole answer (framed by its `Content-Length`), then sends
/// `second` on the same kept-alive connection and reads until the server closes.
async fn keep_alive_exchange(server: &TestServer, first: &str, second: &str) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(server.address())
        .await
        .unwrap();
    stream.write_all(first.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let whole = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let mut chunk = [0u8; 4096];
            let read = stream.read(&mut chunk).await.unwrap();
            assert!(read > 0, "closed after the first request");
            answer.extend_from_slice(&chunk[..read]);
            let text = String::from_utf8_lossy(&answer).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .to_ascii_lowercase()
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length: ")?.parse().ok())
                    .expect("a Content-Length");
                if body.len() >= length {
                    return text;
                }
            }
        }
    })
    .await
    .expect("the first answer, whole");
    let _ = stream.write_all(second.as_bytes()).await;
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    (whole, String::from_utf8_lossy(&rest).into_owned())
}

#[tokio::test]
async fn what_hyper_refuses_on_a_kept_alive_connection_is_in_the_one_error_shape_too() {
    let server = TestServer::start(app()).await;
    let first = "GET /echo?page=1 HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let many: String = (0..150).map(|i| format!("X-H{i}: a\r\n")).collect();
    let cases = [
        (
            format!("GET /echo?page=1 HTTP/1.1\r\nHost: localhost\r\n{many}\r\n"),
            "431",
            "header_fields_too_large",
        ),
        ("GARBAGE\r\n\r\n".to_owned(), "400", "bad_request"),
        (
            with_header_of(1024 * 1024),
            "431",
            "header_fields_too_large",
        ),
    ];
    for (second, status, code) in cases {
        let (answer, refusal) = keep_alive_exchange(&server, first, &second).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        expect_shaped_error(&refusal, status, code);
    }
    expect_still_serving(&server).await;
}

#[tokio::test]
async fn a_lookalike_body_followed_by_garbage_stays_byte_for_byte() {
    let server = TestServer::start(app()).await;
    // The lookalike answer and hyper's refusal of what follows may leave in one write or two;
    // either way the body is the app's and goes out as it is.
    for _ in 0..20 {
        let answer = raw_exchange(
            &server,
            "GET /lookalike HTTP/1.1\r\nHost: localhost\r\n\r\nGARBAGE\r\n\r\n",
        )
        .await;
        let (head, rest) = answer.split_once("\r\n\r\n").expect("a first answer");
        assert!(head.starts_with("HTTP/1.1 200"), "{answer}");
        let body = std::str::from_utf8(LOOKALIKE_BODY).unwrap();
        assert!(rest.starts_with(body), "the body, byte for byte: {answer}");
        assert!(
            rest[body.len()..].starts_with("HTTP/1.1 400"),
            "then the refusal: {answer}"
        );
    }
}

/// A CONNECT answered 2xx hands the socket to the app (an axum route can take hyper's
/// `OnUpgrade`), as a 101 does: the tunnel's bytes are another protocol's, never looked at, even
/// when they look like one of hyper's bare refusals.
#[tokio::test]
async fn a_connect_tunnels_bytes_go_through_untouched() {
    let router =
        Router::new().fallback(|mut request: waypost::axum::extract::Request| async move {
            let tunnel = hyper::upgrade::on(&mut request);
            tokio::spawn(async move {
                let mut tunnel = hyper_util::rt::TokioIo::new(tunnel.await.expect("upgraded"));
                // An echo, as a tunnel to an echo service would be.
                let mut chunk = [0u8; 4096];
                while let Ok(read @ 1..) = tunnel.read(&mut chunk).await {
                    if tunnel.write_all(&chunk[..read]).await.is_err() {
                        break;
                    }
                    let _ = tunnel.flush().await;
                }
            });
            waypost::axum::response::Response::new(Body::empty())
        });
    let server = TestServer::start(App::new(router)).await;
    let mut stream = tokio::net::TcpStream::connect(server.address())
        .await
        .unwrap();
    stream
        .write_all(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    while !answer.windows(4).any(|window| window == b"\r\n\r\n") {
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(read > 0, "closed: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&chunk[..read]);
    }
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    for _ in 0..2 {
        stream.write_all(LOOKALIKE_BODY).await.unwrap();
        let mut echoed = vec![0u8; LOOKALIKE_BODY.len()];
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut echoed))
            .await
            .expect("the echo")
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&echoed),
            String::from_utf8_lossy(LOOKALIKE_BODY),
            "the tunnel's bytes, untouched"
        );
    }
}

#[tokio::test]
async fn a_response_body_that_looks_like_a_bare_error_goes_out_untouched() {
    let server = TestServer::start(app()).await;
    let answer = raw_exchange(
        &server,
        "GET /lookalike HTTP/1.1\r\nHost: localhost\r\n\r\n\
         GET /echo?page=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    let (head, rest) = answer.split_once("\r\n\r\n").expect("a first answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{answer}");
    let body = std::str::from_utf8(LOOKALIKE_BODY).unwrap();
    assert!(rest.starts_with(body), "the body, byte for byte: {answer}");
    // And the connection stays in step: the next answer follows right after it.
    assert!(rest[body.len()..].starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_panic_is_500_without_its_message_and_the_server_keeps_serving() {
    let server = TestServer::start(app()).await;
    let client = Client::new();
    for _ in 0..3 {
        let response = client.get(server.url("/panic")).send().await.unwrap();
        let body = error_of(
            response,
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
        )
        .await;
        let text = body.to_string();
        assert!(!text.contains("secret"), "{text}");
        assert!(!text.contains("main.rs"), "{text}");
    }
    let response = client.get(server.url("/echo?page=3")).send().await.unwrap();
    assert_eq!(response.json::<Value>().await.unwrap()["page"], 3);
}

#[tokio::test]
async fn a_handler_past_max_duration_is_504() {
    let server = TestServer::start(app()).await;
    let started = std::time::Instant::now();
    let response = Client::new().get(server.url("/slow")).send().await.unwrap();
    error_of(response, StatusCode::GATEWAY_TIMEOUT, "timeout").await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the handler was cut off"
    );
}

#[tokio::test]
async fn client_internal_headers_never_reach_handlers() {
    let server = TestServer::start(app()).await;
    let response = Client::new()
        .get(server.url("/headers"))
        .header("x-waypost-user", "admin")
        .header("X-Waypost-Internal", "1")
        .header("x-other", "kept")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["internal"], json!([]));
}

#[tokio::test]
async fn a_sane_request_id_is_echoed_and_a_bad_one_replaced() {
    let server = TestServer::start(app()).await;
    let client = Client::new();
    let response = client
        .get(server.url("/nope"))
        .header("x-request-id", "trace-abc.123_x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-abc.123_x");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["requestId"], "trace-abc.123_x");

    let response = client
        .get(server.url("/echo?page=1"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(id, "bad id with spaces");
    assert_eq!(id.len(), 32);
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    static WAIT: RouteInfo = RouteInfo::at(&["/wait"], GET, RouteConfig::new());
    let router = RouteMethods::new(&WAIT)
        .get(|| async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            "finished"
        })
        .mount(Router::new());
    let server = TestServer::start(App::new(router)).await;
    let url = server.url("/wait");
    let in_flight = tokio::spawn(async move { Client::new().get(url).send().await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let address = server.address();
    server.stop().await;
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "finished");
    // No longer accepting.
    assert!(tokio::net::TcpStream::connect(address).await.is_err());
}

#[tokio::test]
async fn a_stop_past_the_shutdown_timeout_drops_the_request_and_is_reported() {
    static ENDLESS: RouteInfo = RouteInfo::at(&["/endless"], GET, RouteConfig::new());
    let router = RouteMethods::new(&ENDLESS)
        .get(std::future::pending::<&'static str>)
        .mount(Router::new());
    let config = waypost::config::ServerConfig {
        shutdown_timeout: Duration::from_millis(200),
        ..waypost::config::ServerConfig::default()
    };
    let server = TestServer::start(App::new(router).with_server_config(config)).await;
    let url = server.url("/endless");
    let in_flight = tokio::spawn(async move { Client::new().get(url).send().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ended = tokio::time::timeout(Duration::from_secs(10), server.finish())
        .await
        .expect("the server stops at its shutdown timeout");
    let error = ended.expect_err("a stop that dropped a request is an error");
    assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
    assert!(
        error.to_string().contains("1 connection(s) still open"),
        "{error}"
    );
    assert!(
        in_flight.await.unwrap().is_err(),
        "the client got no answer: its connection was dropped"
    );
}

#[tokio::test]
async fn shutdown_closes_idle_connections_at_once_on_http1_and_http2() {
    static HI: RouteInfo = RouteInfo::at(&["/hi"], GET, RouteConfig::new());
    let router = RouteMethods::new(&HI)
        .get(|| async { "hi" })
        .mount(Router::new());
    // Far longer than the wait below: a connection left open would hold the server that long.
    let config = waypost::config::ServerConfig {
        shutdown_timeout: Duration::from_secs(60),
        header_read_timeout: Some(Duration::from_secs(60)),
        ..waypost::config::ServerConfig::default()
    };
    let server = TestServer::start(App::new(router).with_server_config(config)).await;
    // An HTTP/1 connection kept alive after its answer, and an HTTP/2 one (prior knowledge,
    // no request yet) — both idle.
    let mut http1 = tokio::net::TcpStream::connect(server.address())
        .await
        .unwrap();
    http1
        .write_all(b"GET /hi HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 1024];
    let read = http1.read(&mut answer).await.unwrap();
    assert!(answer[..read].starts_with(b"HTTP/1.1 200 OK"));
    let mut http2 = tokio::net::TcpStream::connect(server.address())
        .await
        .unwrap();
    http2
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), server.stop())
        .await
        .expect("the server stops without waiting out its idle connections");
    for mut stream in [http1, http2] {
        let mut rest = Vec::new();
        let ended = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest));
        assert!(ended.await.is_ok(), "closed");
    }
}

/// A generated `Params` for `[[...rest]]`: the route is served with and without its tail.
#[derive(Deserialize)]
struct OptionalTail {
    rest: Option<String>,
}

impl<S: Send + Sync> waypost::axum::extract::FromRequestParts<S> for OptionalTail {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut waypost::axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        waypost::extract::path_params::<Self>(parts).await
    }
}

#[tokio::test]
async fn optional_catch_all_params_are_none_without_the_tail() {
    static FILES: RouteInfo = RouteInfo {
        pattern: "/files/{*rest}",
        paths: &["/files", "/files/{*rest}"],
        file: "src/app/files/[[...rest]]/route.rs",
        params: &[],
        handlers: GET,
        middleware: &[],
        config: RouteConfig::new(),
    };
    let router = RouteMethods::new(&FILES)
        .get(|params: OptionalTail| async move { Json(json!({ "rest": params.rest })) })
        .mount(Router::new());
    let server = TestServer::start(App::new(router)).await;
    let client = Client::new();
    for (path, rest) in [
        ("/files", Value::Null),
        ("/files/a/b%20c.txt", json!("a/b c.txt")),
    ] {
        let response = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({ "rest": rest }), "{path}");
    }
}

#[tokio::test]
async fn axum_connection_and_routing_extractors_work_on_every_request_of_a_connection() {
    use std::net::SocketAddr;
    use waypost::axum::extract::{ConnectInfo, MatchedPath, OriginalUri, Path};

    static ITEM: RouteInfo = RouteInfo {
        pattern: "/items/{id}",
        paths: &["/items/{id}"],
        file: "src/app/items/[id]/route.rs",
        params: &[],
        handlers: GET,
        middleware: &[],
        config: RouteConfig::new(),
    };
    let router = RouteMethods::new(&ITEM)
        .get(
            |ConnectInfo(peer): ConnectInfo<SocketAddr>,
             matched: MatchedPath,
             OriginalUri(uri): OriginalUri,
             Path(id): Path<String>| async move {
                Json(json!({
                    "peer": peer.ip().to_string(),
                    "matched": matched.as_str(),
                    "uri": uri.to_string(),
                    "id": id,
                }))
            },
        )
        .mount(Router::new());
    let server = TestServer::start(App::new(router)).await;
    // One client with one pooled connection: every request after the first reuses it, so each
    // must get its own copy of what the connection provides.
    let client = Client::builder().pool_max_idle_per_host(1).build().unwrap();
    for n in 0..5 {
        let response = client
            .get(server.url(&format!("/items/{n}?q={n}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({
                "peer": "127.0.0.1",
                "matched": "/items/{id}",
                "uri": format!("/items/{n}?q={n}"),
                "id": n.to_string(),
            })
        );
    }
}

#[tokio::test]
async fn escaped_letters_route_like_letters_and_the_path_as_sent_stays_in_original_uri() {
    use waypost::axum::{
        extract::{OriginalUri, Path},
        http::Uri,
    };

    static ITEM: RouteInfo = RouteInfo::at(&["/items/{id}/detail"], GET, RouteConfig::new());
    let router = RouteMethods::new(&ITEM)
        .get(
            |OriginalUri(sent): OriginalUri, routed: Uri, Path(id): Path<String>| async move {
                Json(json!({ "sent": sent.to_string(), "routed": routed.to_string(), "id": id }))
            },
        )
        .mount(Router::new())
        .fallback(routing::not_found_fallback);
    let server = TestServer::start(App::new(router)).await;
    let get = |path: &str| reqwest::get(server.url(path));

    let response = get("/items/%41b%2Fc/d%65tail?q=%65").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({
            "sent": "/items/%41b%2Fc/d%65tail?q=%65",
            "routed": "/items/Ab%2Fc/detail?q=%65",
            "id": "Ab/c",
        })
    );
    // A stray `%` beside escapes leaves the whole path as sent: no escape is made out of
    // decoded ones (`%%34%31` must not become `%41`, then `A`).
    let response = get("/items/%%34%31/detail").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["routed"], "/items/%%34%31/detail");
    assert_ne!(body["id"], "A");
    let response = get("/items/x/d%65tai%6C%").await.unwrap();
    error_of(response, StatusCode::NOT_FOUND, "not_found").await;
    // An empty segment is no parameter: 404, as for any path no route serves (axum would pass
    // `{id}` an empty string), whatever the method.
    let response = get("/items//detail").await.unwrap();
    error_of(response, StatusCode::NOT_FOUND, "not_found").await;
    let response = Client::new()
        .delete(server.url("/items//detail"))
        .send()
        .await
        .unwrap();
    error_of(response, StatusCode::NOT_FOUND, "not_found").await;
    // An escaped space is a value.
    let response = get("/items/%20/detail").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["id"], " ");
}

#[tokio::test]
async fn an_empty_segment_is_no_parameter_first_or_under_a_nested_prefix() {
    use waypost::axum::extract::Path;

    static REPO: RouteInfo = RouteInfo::at(&["/{org}/tree"], GET, RouteConfig::new());
    static NESTED: RouteInfo = RouteInfo::at(&["/{id}/{*rest}"], GET, RouteConfig::new());
    let router = RouteMethods::new(&REPO)
        .get(|Path(org): Path<String>| async move { org })
        .mount(Router::new());
    // Mounted under `/v1` by a nested router, which routes on the rest of the path.
    let inner = RouteMethods::new(&NESTED)
        .get(|Path((id, rest)): Path<(String, String)>| async move { format!("{id}:{rest}") })
        .mount(Router::new());
    let router = router
        .nest("/v1", inner)
        .fallback(routing::not_found_fallback);
    let server = TestServer::start(App::new(router)).await;
    let get = |path: &str| reqwest::get(server.url(path));

    let response = get("/acme/tree").await.unwrap();
    assert_eq!(response.text().await.unwrap(), "acme");
    let response = get("/v1/7/a//b").await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "a catch-all may hold one"
    );
    assert_eq!(response.text().await.unwrap(), "7:a//b");
    for unserved in ["//tree", "/v1//a"] {
        let response = get(unserved).await.unwrap();
        error_of(response, StatusCode::NOT_FOUND, "not_found").await;
    }
}

#[tokio::test]
async fn a_parameter_never_holds_a_dot_segment() {
    use waypost::axum::extract::Path;

    static FILES: RouteInfo = RouteInfo::at(&["/files/{*path}"], GET, RouteConfig::new());
    static ITEM: RouteInfo = RouteInfo::at(&["/items/{id}/detail"], GET, RouteConfig::new());
    let router = RouteMethods::new(&FILES)
        .get(|Path(path): Path<String>| async move { path })
        .mount(Router::new());
    let router = RouteMethods::new(&ITEM)
        .get(|Path(id): Path<String>| async move { id })
        .mount(router)
        .fallback(routing::not_found_fallback);
    let server = TestServer::start(App::new(router)).await;
    // Sent raw: HTTP clients resolve dot segments (escaped ones too) before sending.
    let request =
        |path: &str| format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    for unserved in [
        "/files/a/../../etc/passwd",
        "/files/..",
        "/files/%2E%2E/secret",
        "/files/..%2F..%2Fetc%2Fpasswd",
        "/files/a/%2e/b",
        "/items/../detail",
        "/items/%2E%2E/detail",
        "/items/..%2Fx/detail",
        // Read as a URL or a Windows path by the handler: `\` is a separator, `%2e` a dot.
        "/files/..%5Cadmin",
        "/files/%252e%252e/x",
        "/items/..;x/detail",
    ] {
        let answer = raw_exchange(&server, &request(unserved)).await;
        assert!(answer.starts_with("HTTP/1.1 404"), "{unserved}: {answer}");
        assert!(
            answer.contains("\"code\":\"not_found\""),
            "{unserved}: {answer}"
        );
        assert!(!answer.contains("passwd\n"), "{unserved}");
    }
    // Dots that make no dot segment are values like any other.
    for (served, value) in [
        ("/files/a.b/..c/.well-known/...", "a.b/..c/.well-known/..."),
        ("/files/v1.2%2Fnotes.txt", "v1.2/notes.txt"),
        ("/items/7.5/detail", "7.5"),
        ("/items/%2E%2E%2E/detail", "..."),
    ] {
        let answer = raw_exchange(&server, &request(served)).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{served}: {answer}");
        assert!(answer.ends_with(value), "{served}: {answer}");
    }
}

#[tokio::test]
async fn a_handlers_own_401_challenge_is_the_only_one() {
    static BASIC: RouteInfo = RouteInfo::at(&["/basic"], GET, RouteConfig::new());
    let router = RouteMethods::new(&BASIC)
        .get(|| async {
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Basic realm=\"files\"")],
                "who are you?",
            )
        })
        .mount(Router::new());
    let server = TestServer::start(App::new(router)).await;
    let response = reqwest::get(server.url("/basic")).await.unwrap();
    let challenges: Vec<_> = response
        .headers()
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(challenges, ["Basic realm=\"files\""]);
    // Re-rendered in the one error shape, as any plain-text error.
    error_of(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn a_re_rendered_error_keeps_no_header_that_described_the_old_body() {
    static ZIPPED: RouteInfo = RouteInfo::at(&["/zipped"], GET, RouteConfig::new());
    let router = RouteMethods::new(&ZIPPED)
        .get(|| async {
            (
                StatusCode::BAD_REQUEST,
                [
                    (header::CONTENT_ENCODING, "gzip"),
                    (header::ETAG, "\"old\""),
                    (header::CONTENT_DISPOSITION, "attachment"),
                    (header::HeaderName::from_static("x-kept"), "yes"),
                ],
                "not json",
            )
        })
        .mount(Router::new());
    let server = TestServer::start(App::new(router)).await;
    let response = reqwest::get(server.url("/zipped")).await.unwrap();
    for gone in ["content-encoding", "etag", "content-disposition"] {
        assert!(!response.headers().contains_key(gone), "{gone}");
    }
    assert_eq!(response.headers()["x-kept"], "yes");
    error_of(response, StatusCode::BAD_REQUEST, "bad_request").await;
}

#[tokio::test]
async fn path_parameters_that_are_not_text_are_404_and_malformed_ones_400() {
    use waypost::extract::Path;

    static NAMED: RouteInfo = RouteInfo {
        pattern: "/named/{name}",
        paths: &["/named/{name}"],
        file: "src/app/named/[name]/route.rs",
        params: &[],
        handlers: GET,
        middleware: &[],
        config: RouteConfig::new(),
    };
    static NUMBERED: RouteInfo = RouteInfo {
        pattern: "/numbered/{number}",
        paths: &["/numbered/{number}"],
        file: "src/app/numbered/[number]/route.rs",
        params: &[],
        handlers: GET,
        middleware: &[],
        config: RouteConfig::new(),
    };
    #[derive(Deserialize)]
    struct Numbered {
        number: u32,
    }
    let router = RouteMethods::new(&NAMED)
        .get(|Path(name): Path<String>| async move { Json(json!({ "name": name })) })
        .mount(Router::new());
    let router =
        RouteMethods::new(&NUMBERED)
            .get(|Path(numbered): Path<Numbered>| async move {
                Json(json!({ "number": numbered.number }))
            })
            .mount(router);
    static SINGLE: RouteInfo = RouteInfo::at(&["/single/{id}"], GET, RouteConfig::new());
    static PAIR: RouteInfo = RouteInfo::at(&["/pair/{name}/{size}"], GET, RouteConfig::new());
    let router = RouteMethods::new(&SINGLE)
        .get(|Path(id): Path<i64>| async move { id.to_string() })
        .mount(router);
    let router = RouteMethods::new(&PAIR)
        .get(|Path((name, size)): Path<(String, f64)>| async move { format!("{name}:{size}") })
        .mount(router);
    let server = TestServer::start(App::new(router)).await;
    let client = Client::new();
    let get = |path: &str| client.get(server.url(path)).send();

    let ok: Value = get("/named/caf%C3%A9").await.unwrap().json().await.unwrap();
    assert_eq!(ok, json!({ "name": "café" }));
    // Bytes that are not UTF-8 name nothing.
    for path in ["/named/%ff", "/named/%c0%ae", "/numbered/%ff"] {
        error_of(get(path).await.unwrap(), StatusCode::NOT_FOUND, "not_found").await;
    }
    // A value of the wrong form is named, without the server's Rust types.
    let body = error_of(
        get("/numbered/abc").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    assert_eq!(
        body["error"],
        "The path parameter `number` must be a whole number, 0 or more."
    );
    assert_eq!(
        body["details"],
        json!({ "number": ["must be a whole number, 0 or more"] })
    );
    let ok: Value = get("/numbered/7").await.unwrap().json().await.unwrap();
    assert_eq!(ok, json!({ "number": 7 }));
    // A single value, and a tuple's member, are named by the route's own parameter names.
    for (path, name, problem) in [
        ("/single/seven", "id", "must be a whole number"),
        (
            "/single/99999999999999999999",
            "id",
            "must be a whole number",
        ),
        ("/pair/box/big", "size", "must be a number"),
    ] {
        let body = error_of(
            get(path).await.unwrap(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        )
        .await;
        assert_eq!(
            body["error"],
            format!("The path parameter `{name}` {problem}."),
            "{path}"
        );
        assert_eq!(body["details"], json!({ name: [problem] }), "{path}");
    }
    assert_eq!(get("/single/-7").await.unwrap().text().await.unwrap(), "-7");
    assert_eq!(
        get("/pair/box/2.5").await.unwrap().text().await.unwrap(),
        "box:2.5"
    );
}

#[tokio::test]
async fn a_json_body_in_another_charset_or_content_coded_is_415() {
    let server = TestServer::start(app()).await;
    let client = Client::new();
    let send = |content_type: &'static str, encoding: Option<&'static str>| {
        let mut request = client
            .post(server.url("/echo"))
            .header(header::CONTENT_TYPE, content_type)
            .body(r#"{"text":"hello"}"#);
        if let Some(encoding) = encoding {
            request = request.header(header::CONTENT_ENCODING, encoding);
        }
        request.send()
    };
    for (content_type, encoding) in [
        ("application/json; charset=utf-16", None),
        ("application/json; charset=iso-8859-1", None),
        ("application/json", Some("gzip")),
        ("application/json", Some("br")),
    ] {
        let response = send(content_type, encoding).await.unwrap();
        error_of(
            response,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
    }
    // UTF-8 said out loud, and the identity coding, are the plain case.
    for (content_type, encoding) in [
        ("application/json; charset=UTF-8", None),
        ("application/json", Some("identity")),
    ] {
        let response = send(content_type, encoding).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({ "text": "hello" }));
    }
}

#[tokio::test]
async fn an_http_1_1_request_without_one_valid_host_is_400() {
    let server = TestServer::start(app()).await;
    let answer = raw_exchange(
        &server,
        "GET /echo?page=1 HTTP/1.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    expect_shaped_error(&answer, "400", "bad_request");
    // HTTP/1.0 had no Host requirement.
    let answer = raw_exchange(&server, "GET /echo?page=1 HTTP/1.0\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    // Two Host headers, or one that is no host, are refused the same way (in any version).
    for host in [
        "Host: a.example\r\nHost: b.example",
        "Host: a b",
        "Host: a.example/path",
        "Host: a.example:99999",
        "Host: a.example:80x",
        "Host: [::1",
        "Host: user@a.example",
    ] {
        let request = format!("GET /echo?page=1 HTTP/1.1\r\n{host}\r\nConnection: close\r\n\r\n");
        let answer = raw_exchange(&server, &request).await;
        expect_shaped_error(&answer, "400", "bad_request");
    }
    for host in [
        "Host: a.example",
        "Host: 127.0.0.1:65535",
        "Host: [::1]:8080",
        "Host: [::1]",
        "Host: xn--bcher-kva.example.",
        "Host: ",
    ] {
        let request = format!("GET /echo?page=1 HTTP/1.1\r\n{host}\r\nConnection: close\r\n\r\n");
        let answer = raw_exchange(&server, &request).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{host}: {answer}");
    }
    expect_still_serving(&server).await;
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_408_timeout() {
    let config = waypost::config::ServerConfig {
        body_read_timeout: Duration::from_millis(200),
        ..waypost::config::ServerConfig::default()
    };
    let server = TestServer::start(app().with_server_config(config)).await;
    let mut stream = tokio::net::TcpStream::connect(server.address())
        .await
        .unwrap();
    // Twenty bytes announced, eight sent, then nothing.
    stream
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
              Content-Length: 20\r\n\r\n{\"text\":",
        )
        .await
        .unwrap();
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("an answer once the body read timeout passes")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]).into_owned();
    expect_shaped_error(&answer, "408", "timeout");
    expect_still_serving(&server).await;
}

/// The server of the minimum-body-rate tests: 1000 bytes a second after 500 ms, a pause limit
/// far away (5 s), and `/digest`, which reads its body a frame at a time, stopping 400 ms after
/// each as a handler that writes every chunk somewhere slow would.
async fn paced_server() -> TestServer {
    use http_body_util::BodyExt;

    static DIGEST: RouteInfo = RouteInfo::at(&["/digest"], POST, RouteConfig::new());
    let config = waypost::config::ServerConfig {
        body_read_timeout: Duration::from_secs(5),
        min_body_rate: Some(waypost::body_pace::MinBodyRate {
            bytes_per_second: std::num::NonZeroU64::new(1000).unwrap(),
            grace: Duration::from_millis(500),
        }),
        ..waypost::config::ServerConfig::default()
    };
    static RAW: RouteInfo = RouteInfo::at(&["/raw"], POST, RouteConfig::new());
    let router = RouteMethods::new(&RAW)
        .post(
            |waypost::extract::RawBody(body): waypost::extract::RawBody| async move {
                Json(json!({ "bytes": body.len() }))
            },
        )
        .mount(router());
    let router = RouteMethods::new(&DIGEST)
        .post(|mut body: Body| async move {
            let mut bytes = 0;
            while let Some(frame) = body.frame().await {
                bytes += frame?.data_ref().map_or(0, |data| data.len());
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
            Ok::<_, ApiError>(Json(json!({ "bytes": bytes })))
        })
        .mount(router);
    TestServer::start(App::new(router).with_server_config(config)).await
}

/// Sends `path` a POST announcing `length` bytes of JSON, then the body `piece` bytes at a time,
/// `every` apart, until it is sent or the server stops reading; the raw answer.
async fn drip(
    server: &TestServer,
    path: &str,
    length: usize,
    piece: usize,
    every: Duration,
) -> String {
    let text = "a".repeat(length - r#"{"text":""}"#.len());
    let body = format!(r#"{{"text":"{text}"}}"#);
    let stream = tokio::net::TcpStream::connect(server.address())
        .await
        .unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    writer.write_all(head.as_bytes()).await.unwrap();
    let sender = tokio::spawn(async move {
        for chunk in body.as_bytes().chunks(piece) {
            if writer.write_all(chunk).await.is_err() {
                return;
            }
            tokio::time::sleep(every).await;
        }
    });
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), reader.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .unwrap();
    sender.abort();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_body_dripped_below_the_minimum_rate_is_408_timeout() {
    let server = paced_server().await;
    // 200 bytes a second, each piece far inside the 5 s pause limit: cut off once the grace
    // period is over, long before the 4000 bytes (20 s at this pace; `drip` gives up at 10 s)
    // are in.
    // The same through `RawBody`, where axum's `Bytes` would have said 400.
    for path in ["/echo", "/raw"] {
        let answer = drip(&server, path, 4000, 20, Duration::from_millis(100)).await;
        expect_shaped_error(&answer, "408", "timeout");
        assert!(answer.contains("arrived too slowly"), "{path}: {answer}");
    }
    expect_still_serving(&server).await;
}

#[tokio::test]
async fn a_body_at_the_rate_passes_and_a_slow_handler_costs_the_client_nothing() {
    let server = paced_server().await;
    // 4000 bytes a second against the minimum of 1000.
    let answer = drip(&server, "/echo", 2000, 200, Duration::from_millis(50)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains(&"a".repeat(1989)),
        "the whole text echoed: {answer}"
    );
    let answer = drip(&server, "/raw", 2000, 200, Duration::from_millis(50)).await;
    assert!(answer.ends_with(r#"{"bytes":2000}"#), "{answer}");
    // Three pieces of 300 bytes, 500 ms apart: 900 bytes in a second, below the minimum by the
    // clock. But `/digest` spends 400 ms on each piece, so it waits only about 100 ms for the
    // next: 900 bytes in a few hundred milliseconds of waiting is above it.
    let answer = drip(&server, "/digest", 900, 300, Duration::from_millis(500)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(r#"{"bytes":900}"#), "{answer}");
}

#[tokio::test]
async fn a_header_list_past_the_limit_over_http2_is_431_in_the_error_shape() {
    let server = TestServer::start(app()).await;
    let client = Client::builder().http2_prior_knowledge().build().unwrap();
    let response = client
        .get(server.url("/echo?page=1"))
        .header("x-big", "a".repeat(20 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    error_of(
        response,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "header_fields_too_large",
    )
    .await;
    let response = client.get(server.url("/echo?page=1")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_nul_character_in_a_path_names_nothing() {
    use waypost::extract::Path;

    static THING: RouteInfo = RouteInfo {
        pattern: "/things/{id}",
        paths: &["/things/{id}"],
        file: "src/app/things/[id]/route.rs",
        params: &[],
        handlers: &[HandlerInfo::of(Method::Get)],
        middleware: &[],
        config: RouteConfig::new(),
    };
    let router = RouteMethods::new(&THING)
        .get(|Path(id): Path<String>| async move { Json(json!({ "id": id })) })
        .mount(router());
    let server = TestServer::start(App::new(router)).await;
    let client = Client::new();
    // 404 on SQLite and Postgres alike (Postgres could not compare it with stored text).
    let path = client.get(server.url("/things/a%00b")).send().await;
    error_of(path.unwrap(), StatusCode::NOT_FOUND, "not_found").await;
    // `%25` is the percent sign: the text `%00` is an id like any other.
    let path = client.get(server.url("/things/a%2500b")).send().await;
    assert_eq!(
        path.unwrap().json::<Value>().await.unwrap(),
        json!({ "id": "a%00b" })
    );
}

#[tokio::test]
async fn a_cached_route_marks_only_what_is_the_same_for_everyone() {
    const HOUR: RouteConfig = RouteConfig::new().cache(Duration::from_secs(3600));
    static PLAIN: RouteInfo = RouteInfo::at(&["/cached/plain"], GET, HOUR);
    static STREAMED: RouteInfo = RouteInfo::at(&["/cached/streamed"], GET, HOUR);
    static COOKIE: RouteInfo = RouteInfo::at(&["/cached/cookie"], GET, HOUR);
    static OWN: RouteInfo = RouteInfo::at(&["/cached/own"], GET, HOUR);
    static WRITE: RouteInfo = RouteInfo::at(&["/cached/write"], POST, HOUR);
    let router = RouteMethods::new(&PLAIN)
        .get(|| async { Json(json!({ "plain": true })) })
        .mount(Router::new());
    let router = RouteMethods::new(&STREAMED)
        .get(|| async {
            let chunks = futures_util::stream::iter(["a", "b"].map(|chunk| {
                Ok::<_, std::convert::Infallible>(axum::body::Bytes::from_static(chunk.as_bytes()))
            }));
            Body::from_stream(chunks)
        })
        .mount(router);
    let router = RouteMethods::new(&COOKIE)
        .get(|| async { ([(header::SET_COOKIE, "seen=1")], "hello") })
        .mount(router);
    let router = RouteMethods::new(&OWN)
        .get(|| async { ([(header::CACHE_CONTROL, "no-cache")], "mine") })
        .mount(router);
    let router = RouteMethods::new(&WRITE)
        .post(|| async { "written" })
        .mount(router);
    let server = TestServer::start(App::new(router)).await;
    let client = Client::new();
    let get = |path: &'static str, tag: Option<&str>| {
        let mut request = client.get(server.url(path));
        if let Some(tag) = tag {
            request = request.header(header::IF_NONE_MATCH, tag);
        }
        request.send()
    };

    let plain = get("/cached/plain", None).await.unwrap();
    assert_eq!(
        plain.headers()[header::CACHE_CONTROL],
        "public, max-age=3600"
    );
    let tag = plain.headers()[header::ETAG].to_str().unwrap().to_owned();
    assert_eq!(plain.text().await.unwrap(), r#"{"plain":true}"#);
    let again = get("/cached/plain", Some(&tag)).await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(!again.headers().contains_key(header::CONTENT_TYPE));
    assert!(again.bytes().await.unwrap().is_empty());

    // A stream is marked but not buffered to be tagged.
    let streamed = get("/cached/streamed", None).await.unwrap();
    assert_eq!(
        streamed.headers()[header::CACHE_CONTROL],
        "public, max-age=3600"
    );
    assert!(!streamed.headers().contains_key(header::ETAG));
    assert_eq!(streamed.text().await.unwrap(), "ab");
    let streamed = get("/cached/streamed", Some("*")).await.unwrap();
    assert_eq!(streamed.status(), StatusCode::OK);

    // A cookie for one client is never stored; the handler's own say is kept.
    let cookie = get("/cached/cookie", Some("*")).await.unwrap();
    assert_eq!(cookie.status(), StatusCode::OK);
    assert_eq!(cookie.headers()[header::CACHE_CONTROL], "no-store");
    assert!(!cookie.headers().contains_key(header::ETAG));
    let own = get("/cached/own", Some("*")).await.unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    assert_eq!(own.headers()[header::CACHE_CONTROL], "no-cache");
    assert!(!own.headers().contains_key(header::ETAG));

    // Only GET and HEAD answers are marked.
    let written = client
        .post(server.url("/cached/write"))
        .header(header::IF_NONE_MATCH, "*")
        .send()
        .await
        .unwrap();
    assert_eq!(written.status(), StatusCode::OK);
    assert!(!written.headers().contains_key(header::CACHE_CONTROL));
    assert_eq!(written.text().await.unwrap(), "written");
}
