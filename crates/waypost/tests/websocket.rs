//! WebSocket routes over a real socket, through every layer of an `App`: a session echoes, a
//! handshake from a foreign site is refused before any handler runs, a request that is no
//! handshake gets the one error shape, messages are limited, a stopping server closes sessions
//! with 1001 (and cuts off those that ignore it at the deadline), and a panicking session
//! leaves the server serving.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::{net::TcpStream, time::timeout};
use tokio_tungstenite::{
    tungstenite::{
        client::IntoClientRequest,
        protocol::{frame::coding::CloseCode, CloseFrame as ClientCloseFrame},
        Error as ClientError, Message as ClientMessage,
    },
    MaybeTlsStream, WebSocketStream,
};
use waypost::{
    axum::Router,
    config::ServerConfig,
    routing::{self, HandlerInfo, Method, RouteInfo, RouteMethods},
    security::{Security, SecuritySettings},
    shutdown::Shutdown,
    testing::TestServer,
    websocket::{going_away, Message, WebSocket, WebSocketUpgrade},
    App, RouteConfig,
};

const GET: &[HandlerInfo] = &[HandlerInfo::of(Method::Get)];

static ECHO: RouteInfo = RouteInfo::at(&["/echo"], GET, RouteConfig::new());
static LARGE: RouteInfo = RouteInfo::at(&["/large"], GET, RouteConfig::new());
static STUBBORN: RouteInfo = RouteInfo::at(&["/stubborn"], GET, RouteConfig::new());
static PANICS: RouteInfo = RouteInfo::at(&["/panics"], GET, RouteConfig::new());

/// What the app's sessions did, for the tests to check.
#[derive(Default)]
struct Seen {
    /// Sessions that started.
    sessions: AtomicUsize,
    /// Sessions that ended, however (dropped at the deadline too).
    ended: AtomicUsize,
}

/// Counts a session's end when dropped, however the session ends.
struct EndCount(Arc<Seen>);

impl Drop for EndCount {
    fn drop(&mut self) {
        self.0.ended.fetch_add(1, Ordering::SeqCst);
    }
}

/// Echoes text until the peer leaves; sends 1001 and ends when the server stops.
async fn echo(mut socket: WebSocket, shutdown: Shutdown, seen: Arc<Seen>) {
    seen.sessions.fetch_add(1, Ordering::SeqCst);
    let _end = EndCount(seen);
    let stopping = shutdown.started();
    tokio::pin!(stopping);
    loop {
        tokio::select! {
            received = socket.recv() => match received {
                Some(Ok(Message::Text(text))) => {
                    if socket.send(Message::Text(text)).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Binary(bytes))) => {
                    let length = bytes.len().to_string();
                    if socket.send(Message::Text(length.into())).await.is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            },
            () = &mut stopping => {
                let _ = socket.send(going_away()).await;
                // Work after the close (state saved, say): the stopping server waits for it.
                tokio::time::sleep(Duration::from_millis(300)).await;
                return;
            }
        }
    }
}

fn app(seen: Arc<Seen>, settings: SecuritySettings, shutdown_timeout: Duration) -> App {
    let for_echo = seen.clone();
    let router = RouteMethods::new(&ECHO)
        .get(move |upgrade: WebSocketUpgrade| {
            let seen = for_echo.clone();
            async move { upgrade.on_upgrade(move |socket, shutdown| echo(socket, shutdown, seen)) }
        })
        .mount(Router::new());
    let for_large = seen.clone();
    let router = RouteMethods::new(&LARGE)
        .get(move |upgrade: WebSocketUpgrade| {
            let seen = for_large.clone();
            async move {
                upgrade
                    .max_message_size(3 << 20)
                    .on_upgrade(move |socket, shutdown| echo(socket, shutdown, seen))
            }
        })
        .mount(router);
    let for_stubborn = seen.clone();
    let router = RouteMethods::new(&STUBBORN)
        .get(move |upgrade: WebSocketUpgrade| {
            let seen = for_stubborn.clone();
            async move {
                // Never looks at the server's stop.
                upgrade.on_upgrade(move |_socket, _shutdown| async move {
                    seen.sessions.fetch_add(1, Ordering::SeqCst);
                    let _end = EndCount(seen);
                    std::future::pending::<()>().await;
                })
            }
        })
        .mount(router);
    let router = RouteMethods::new(&PANICS)
        .get(|upgrade: WebSocketUpgrade| async move {
            upgrade.on_upgrade(|_socket, _shutdown| async move {
                panic!("secret panic text");
            })
        })
        .mount(router);
    let security = Arc::new(Security::new(settings).expect("valid settings"));
    App::new(router.fallback(routing::not_found_fallback))
        .with_security(security)
        .with_server_config(ServerConfig {
            shutdown_timeout,
            ..ServerConfig::default()
        })
}

async fn start(seen: &Arc<Seen>) -> TestServer {
    let mut settings = SecuritySettings::default();
    settings.cors_origins = vec!["https://app.example".to_owned()];
    TestServer::start(app(seen.clone(), settings, Duration::from_secs(60))).await
}

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn connect(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> Client {
    match try_connect(server, path, headers).await {
        Ok(client) => client,
        Err(error) => panic!("handshake to {path} refused: {error}"),
    }
}

async fn try_connect(
    server: &TestServer,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Client, ClientError> {
    let mut request = format!("ws://{}{path}", server.address())
        .into_client_request()
        .unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            waypost::axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    let (client, response) = timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(request),
    )
    .await
    .expect("the handshake is answered")?;
    assert_eq!(response.status(), 101);
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        response.headers()["x-request-id"].to_str().unwrap().len(),
        32
    );
    Ok(client)
}

/// The next message the client receives, within 10 s.
async fn next(client: &mut Client) -> Option<Result<ClientMessage, ClientError>> {
    timeout(Duration::from_secs(10), client.next())
        .await
        .expect("a message or the end arrives")
}

async fn echoed(client: &mut Client, text: &str) -> String {
    client.send(ClientMessage::text(text)).await.unwrap();
    match next(client).await {
        Some(Ok(ClientMessage::Text(reply))) => reply.to_string(),
        other => panic!("expected an echo, got {other:?}"),
    }
}

/// The HTTP answer to a refused handshake: status, headers and JSON body.
fn refusal(error: ClientError) -> (u16, waypost::axum::http::HeaderMap, Value) {
    match error {
        ClientError::Http(response) => {
            let (parts, body) = response.into_parts();
            let body = serde_json::from_slice(&body.unwrap_or_default()).unwrap_or(Value::Null);
            (parts.status.as_u16(), parts.headers, body)
        }
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_session_echoes_messages_and_ends_when_the_client_closes() {
    let seen = Arc::new(Seen::default());
    let server = start(&seen).await;
    let mut client = connect(&server, "/echo", &[]).await;
    assert_eq!(echoed(&mut client, "hello").await, "hello");
    assert_eq!(echoed(&mut client, "héllo again").await, "héllo again");
    client.close(None).await.unwrap();
    while let Some(Ok(_)) = next(&mut client).await {}
    wait_until(|| seen.ended.load(Ordering::SeqCst) == 1).await;
    assert_eq!(seen.sessions.load(Ordering::SeqCst), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_handshake_from_a_foreign_site_is_refused_before_any_handler_runs() {
    let seen = Arc::new(Seen::default());
    let server = start(&seen).await;
    for headers in [
        &[("origin", "https://evil.example")][..],
        &[("origin", "null")],
        &[("sec-fetch-site", "cross-site")],
        // Refused with or without cookies: the handshake needs no credentials to be abused.
        &[
            ("origin", "https://evil.example"),
            ("cookie", "session=abc"),
        ],
    ] {
        let error = try_connect(&server, "/echo", headers).await.unwrap_err();
        let (status, _, body) = refusal(error);
        assert_eq!(status, 403, "{headers:?}");
        assert_eq!(body["code"], "csrf_invalid", "{headers:?}");
        assert_eq!(body["requestId"].as_str().unwrap().len(), 32);
    }
    assert_eq!(
        seen.sessions.load(Ordering::SeqCst),
        0,
        "no session started"
    );
    // The server's own origin, an origin in CORS_ORIGINS, and clients that send none pass.
    let own = format!("http://{}", server.address());
    for headers in [
        &[("origin", own.as_str())][..],
        &[("origin", "https://app.example")],
        &[("sec-fetch-site", "same-origin")],
        &[],
    ] {
        let mut client = connect(&server, "/echo", headers).await;
        assert_eq!(echoed(&mut client, "ok").await, "ok", "{headers:?}");
        client.close(None).await.unwrap();
    }
    wait_until(|| seen.ended.load(Ordering::SeqCst) == 4).await;
    // A plain GET with a foreign Origin is no handshake: CSRF rules leave safe methods alone.
    let plain = reqwest::Client::new()
        .get(server.url("/echo"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 426);
    server.stop().await;
}

#[tokio::test]
async fn a_request_that_is_no_handshake_gets_the_one_error_shape() {
    let seen = Arc::new(Seen::default());
    let server = start(&seen).await;
    let http = reqwest::Client::new();

    let plain = http.get(server.url("/echo")).send().await.unwrap();
    assert_eq!(plain.status(), 426);
    assert_eq!(plain.headers()["upgrade"], "websocket");
    let body: Value = plain.json().await.unwrap();
    assert_eq!(body["code"], "upgrade_required");
    assert!(body["error"].as_str().unwrap().contains("WebSocket"));

    let head = http.head(server.url("/echo")).send().await.unwrap();
    assert_eq!(head.status(), 426);
    assert!(head.bytes().await.unwrap().is_empty());

    let handshake = |version: &'static str| {
        http.get(server.url("/echo"))
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", version)
    };
    let old = handshake("8")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 426);
    assert_eq!(old.headers()["sec-websocket-version"], "13");
    assert_eq!(
        old.json::<Value>().await.unwrap()["code"],
        "upgrade_required"
    );

    let keyless = handshake("13").send().await.unwrap();
    assert_eq!(keyless.status(), 400);
    let body: Value = keyless.json().await.unwrap();
    assert_eq!(body["code"], "bad_request");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("Sec-WebSocket-Key"));

    // Only GET: the rest is 405 as for any route.
    let post = http.post(server.url("/echo")).send().await.unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(seen.sessions.load(Ordering::SeqCst), 0);
    server.stop().await;
}

#[tokio::test]
async fn messages_are_limited_to_a_mebibyte_unless_the_route_says_more() {
    let seen = Arc::new(Seen::default());
    let server = start(&seen).await;

    let mut client = connect(&server, "/echo", &[]).await;
    // Exactly the limit passes.
    sends_and_is_told_its_size(&mut client, 1 << 20).await;
    // One byte more, and the server closes the session: 1009, too big.
    let _ = client
        .send(ClientMessage::binary(vec![7u8; (1 << 20) + 1]))
        .await;
    let closed = match next(&mut client).await {
        Some(Ok(ClientMessage::Close(frame))) => frame,
        Some(Ok(other)) => panic!("expected the close, got {other:?}"),
        // The server may have closed the socket before the client read the frame.
        Some(Err(_)) | None => None,
    };
    if let Some(frame) = closed {
        assert_eq!(frame.code, CloseCode::Size);
    }
    wait_until(|| seen.ended.load(Ordering::SeqCst) == 1).await;

    let mut client = connect(&server, "/large", &[]).await;
    sends_and_is_told_its_size(&mut client, 2 << 20).await;
    client.close(None).await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn a_stopping_server_closes_its_sessions_with_going_away_and_waits_for_them() {
    let seen = Arc::new(Seen::default());
    // A deadline far off: the stop must not need it.
    let server = start(&seen).await;
    let mut first = connect(&server, "/echo", &[]).await;
    let mut second = connect(&server, "/echo", &[]).await;
    assert_eq!(echoed(&mut first, "one").await, "one");
    assert_eq!(echoed(&mut second, "two").await, "two");

    let stopped = tokio::spawn(server.stop());
    for client in [&mut first, &mut second] {
        match next(client).await {
            Some(Ok(ClientMessage::Close(Some(ClientCloseFrame { code, reason })))) => {
                assert_eq!(code, CloseCode::Away);
                assert_eq!(reason.as_str(), "the server is restarting");
            }
            other => panic!("expected a 1001 close, got {other:?}"),
        }
    }
    timeout(Duration::from_secs(30), stopped)
        .await
        .expect("the server stops once its sessions have closed, long before its deadline")
        .unwrap();
    assert_eq!(seen.ended.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_session_that_ignores_the_stop_is_cut_off_at_the_deadline() {
    let seen = Arc::new(Seen::default());
    let server = TestServer::start(app(
        seen.clone(),
        SecuritySettings::default(),
        Duration::from_millis(300),
    ))
    .await;
    let mut client = connect(&server, "/stubborn", &[]).await;
    wait_until(|| seen.sessions.load(Ordering::SeqCst) == 1).await;
    assert_eq!(seen.ended.load(Ordering::SeqCst), 0);
    timeout(Duration::from_secs(30), server.stop())
        .await
        .expect("the server stops at its deadline");
    // The session was dropped (not left running past the server), and the socket closed.
    assert_eq!(seen.ended.load(Ordering::SeqCst), 1);
    expect_closed(&mut client).await;
}

#[tokio::test]
async fn a_panicking_session_leaves_the_server_serving() {
    let seen = Arc::new(Seen::default());
    let server = start(&seen).await;
    let mut client = connect(&server, "/panics", &[]).await;
    // The session ends with its task: the socket closes.
    expect_closed(&mut client).await;
    let mut again = connect(&server, "/echo", &[]).await;
    assert_eq!(echoed(&mut again, "still here").await, "still here");
    again.close(None).await.unwrap();
    server.stop().await;
}

/// Sends a binary message of `size` bytes and expects the echo session's answer: its size.
async fn sends_and_is_told_its_size(client: &mut Client, size: usize) {
    client
        .send(ClientMessage::binary(vec![7u8; size]))
        .await
        .unwrap();
    assert_eq!(
        next(client).await.unwrap().unwrap(),
        ClientMessage::text(size.to_string())
    );
}

/// Expects the session to end: a close frame, or the socket closed.
async fn expect_closed(client: &mut Client) {
    match next(client).await {
        Some(Ok(ClientMessage::Close(_)) | Err(_)) | None => {}
        Some(Ok(other)) => panic!("expected the session to end, got {other:?}"),
    }
}

/// Waits until `done` holds, checking every 10 ms; fails after 10 s.
async fn wait_until(done: impl Fn() -> bool) {
    timeout(Duration::from_secs(10), async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the condition came true");
}
