//! Streams over a real socket, through every layer of an `App`: each SSE event and each text
//! chunk reaches the client before the handler has produced the next one, and an endless stream
//! bound to the server's `Shutdown` ends when the server stops.

use std::{convert::Infallible, sync::Arc, time::Duration};

use futures_util::StreamExt;
use reqwest::Client;
use tokio::{sync::Notify, time::timeout};
use waypost::{
    axum::{response::IntoResponse, Router},
    config::ServerConfig,
    routing::{self, HandlerInfo, Method, RouteInfo, RouteMethods},
    shutdown::Shutdown,
    stream::{sse, ChunkedText, Event},
    testing::TestServer,
    App, RouteConfig,
};

const GET: &[HandlerInfo] = &[HandlerInfo::of(Method::Get)];

static EVENTS: RouteInfo = RouteInfo::at(&["/events"], GET, RouteConfig::new());
static CHUNKS: RouteInfo = RouteInfo::at(&["/chunks"], GET, RouteConfig::new());
static TICKS: RouteInfo = RouteInfo::at(&["/ticks"], GET, RouteConfig::new());

/// Yields `first`, then waits for `gate` before yielding `second`.
fn gated(
    gate: Arc<Notify>,
    first: &'static str,
    second: &'static str,
) -> impl futures_util::Stream<Item = &'static str> + Send {
    futures_util::stream::once(async move { first }).chain(futures_util::stream::once(async move {
        gate.notified().await;
        second
    }))
}

/// An app whose `/events` (SSE) stream pauses on `events_gate` and whose `/chunks` (text) stream
/// pauses on `chunks_gate`.
fn app(events_gate: Arc<Notify>, chunks_gate: Arc<Notify>) -> App {
    let router = RouteMethods::new(&EVENTS)
        .get(move || {
            let gate = events_gate.clone();
            async move {
                sse(gated(gate, "one", "two")
                    .map(|data| Ok::<_, Infallible>(Event::default().event("tick").data(data))))
            }
        })
        .mount(Router::new());
    let router = RouteMethods::new(&CHUNKS)
        .get(move || {
            let gate = chunks_gate.clone();
            async move { ChunkedText(gated(gate, "Hello", " World")).into_response() }
        })
        .mount(router);
    // An endless event stream that ends when the server begins to stop.
    let router = RouteMethods::new(&TICKS)
        .get(|shutdown: Shutdown| async move {
            let ticks = futures_util::stream::unfold(0u32, |n| async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Some((n, n + 1))
            });
            sse(shutdown.until_started(
                ticks.map(|n| Ok::<_, Infallible>(Event::default().data(n.to_string()))),
            ))
        })
        .mount(router);
    App::new(router.fallback(routing::not_found_fallback)).with_server_config(ServerConfig {
        // Far off: a stream that ends at the stop must not need it.
        shutdown_timeout: Duration::from_secs(60),
        ..ServerConfig::default()
    })
}

/// Reads from `response` until the text read so far contains `wanted`; fails after 5 s.
async fn read_until(response: &mut reqwest::Response, received: &mut String, wanted: &str) {
    while !received.contains(wanted) {
        let chunk = timeout(Duration::from_secs(5), response.chunk())
            .await
            .unwrap_or_else(|_| panic!("{wanted:?} did not arrive; got {received:?}"))
            .unwrap()
            .expect("the stream is still open");
        received.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

async fn read_to_end(response: &mut reqwest::Response, received: &mut String) {
    while let Some(chunk) = timeout(Duration::from_secs(5), response.chunk())
        .await
        .expect("the stream ends once the handler is done")
        .unwrap()
    {
        received.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[tokio::test]
async fn an_sse_event_reaches_the_client_before_the_next_is_produced() {
    let gate = Arc::new(Notify::new());
    let server = TestServer::start(app(gate.clone(), Arc::default())).await;
    let mut response = timeout(
        Duration::from_secs(5),
        Client::new().get(server.url("/events")).send(),
    )
    .await
    .expect("the headers are sent before the stream ends")
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");

    let mut received = String::new();
    read_until(&mut response, &mut received, "data: one\n\n").await;
    assert_eq!(
        received, "event: tick\ndata: one\n\n",
        "event 2 is not produced yet"
    );
    gate.notify_one();
    read_to_end(&mut response, &mut received).await;
    assert_eq!(
        received,
        "event: tick\ndata: one\n\nevent: tick\ndata: two\n\n"
    );
}

#[tokio::test]
async fn a_text_chunk_reaches_the_client_before_the_next_is_produced() {
    let gate = Arc::new(Notify::new());
    let server = TestServer::start(app(Arc::default(), gate.clone())).await;
    let mut response = Client::new()
        .get(server.url("/chunks"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(response.headers()["cache-control"], "no-cache");
    assert!(response.headers().get("content-length").is_none());

    let mut received = String::new();
    read_until(&mut response, &mut received, "Hello").await;
    assert_eq!(received, "Hello");
    gate.notify_one();
    read_to_end(&mut response, &mut received).await;
    assert_eq!(received, "Hello World");
}

#[tokio::test]
async fn streams_of_many_clients_progress_independently() {
    // Two clients, each held at its own gate: both get their first part while neither stream
    // can finish.
    let (events_gate, chunks_gate) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let server = TestServer::start(app(events_gate.clone(), chunks_gate.clone())).await;
    let client = Client::new();
    let mut first = client.get(server.url("/events")).send().await.unwrap();
    let mut second = client.get(server.url("/chunks")).send().await.unwrap();
    let (mut a, mut b) = (String::new(), String::new());
    read_until(&mut first, &mut a, "data: one").await;
    read_until(&mut second, &mut b, "Hello").await;
    events_gate.notify_one();
    chunks_gate.notify_one();
    read_to_end(&mut first, &mut a).await;
    read_to_end(&mut second, &mut b).await;
    assert!(a.ends_with("data: two\n\n"), "{a}");
    assert_eq!(b, "Hello World");
}

#[tokio::test]
async fn an_endless_stream_bound_to_the_shutdown_ends_when_the_server_stops() {
    let server = TestServer::start(app(Arc::default(), Arc::default())).await;
    let mut response = Client::new()
        .get(server.url("/ticks"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut received = String::new();
    read_until(&mut response, &mut received, "data: 2\n\n").await;
    let stopped = tokio::spawn(server.stop());
    // The stream ends cleanly (the body completes) instead of being cut at the deadline.
    read_to_end(&mut response, &mut received).await;
    assert!(
        received.ends_with("\n\n"),
        "whole events only: {received:?}"
    );
    timeout(Duration::from_secs(30), stopped)
        .await
        .expect("the server stops once the stream has ended, long before its deadline")
        .unwrap();
}
