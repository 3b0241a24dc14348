//! The connection timeouts over real sockets.
//!
//! The header-read timeout: a connection that keeps the server waiting for a request head is
//! closed, and nothing else is — not a slow handler, a long stream, a large download to a slow
//! reader, a busy keep-alive connection, an upgraded one or a CONNECT tunnel.
//!
//! The send timeout: a client that takes none of the response data waiting for it — an HTTP/1
//! reader that stops reading, an HTTP/2 client that keeps a stream's window shut (even while it
//! pings) — is cut off, and a reader that keeps reading, a quiet stream or a slow handler is not.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use waypost::{
    axum::{body::Body, extract::Request, http::StatusCode, response::Response, Router},
    config::ServerConfig,
    routing::{HandlerInfo, Method, RouteInfo, RouteMethods},
    testing::TestServer,
    App, RouteConfig,
};

/// The header-read timeout under test; every wait below is a few of these.
const TIMEOUT: Duration = Duration::from_millis(300);
/// The send timeout under test (a minute unless a test says otherwise).
const SEND_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a closed connection may take to show as closed before a test gives up.
const CLOSE_WITHIN: Duration = Duration::from_secs(5);

const GET: &[HandlerInfo] = &[HandlerInfo::of(Method::Get)];

const fn route(path: &'static [&'static str; 1]) -> RouteInfo {
    RouteInfo::at(path, GET, RouteConfig::new())
}

static HELLO: RouteInfo = route(&["/hello"]);
static SLOW: RouteInfo = route(&["/slow"]);
static TRICKLE: RouteInfo = route(&["/trickle"]);
static LARGE: RouteInfo = route(&["/large"]);
static QUIET: RouteInfo = route(&["/quiet"]);
static MEDIUM: RouteInfo = route(&["/medium"]);
static ECHO_UPGRADE: RouteInfo = route(&["/upgrade"]);
static FLOOD_UPGRADE: RouteInfo = route(&["/flood"]);

/// Floods (see [`flood_once_upgraded`]) that ended because their writes failed.
static FLOODS_ENDED: AtomicUsize = AtomicUsize::new(0);

/// Larger than what loopback socket buffers hold, so the server's writes block until the
/// client reads.
const LARGE_BYTES: usize = 32 * 1024 * 1024;
/// One frame of a body, many times an HTTP/2 window.
const MEDIUM_BYTES: usize = 512 * 1024;

async fn server() -> TestServer {
    server_with(ServerConfig {
        header_read_timeout: Some(TIMEOUT),
        ..ServerConfig::default()
    })
    .await
}

/// The server with a send timeout of [`SEND_TIMEOUT`], and the default header-read timeout:
/// long enough for a slow reader to drain what the socket buffers hold after the server's last
/// write (the wait for the next head starts when the server is done writing).
async fn send_limited_server() -> TestServer {
    server_with(ServerConfig {
        send_timeout: Some(SEND_TIMEOUT),
        ..ServerConfig::default()
    })
    .await
}

async fn server_with(config: ServerConfig) -> TestServer {
    let router = RouteMethods::new(&HELLO)
        .get(|| async { "hello" })
        .mount(Router::new());
    let router = RouteMethods::new(&SLOW)
        .get(|| async {
            tokio::time::sleep(TIMEOUT * 3).await;
            "slow"
        })
        .mount(router);
    let router = RouteMethods::new(&TRICKLE)
        .get(|| async {
            // Six chunks, half a timeout apart: three timeouts in all.
            let chunks = futures_util::stream::unfold(0, |n| async move {
                if n == 6 {
                    return None;
                }
                tokio::time::sleep(TIMEOUT / 2).await;
                Some((Ok::<_, std::convert::Infallible>(format!("{n}")), n + 1))
            });
            Body::from_stream(chunks)
        })
        .mount(router);
    let router = RouteMethods::new(&LARGE)
        .get(|| async { vec![b'x'; LARGE_BYTES] })
        .mount(router);
    let router = RouteMethods::new(&MEDIUM)
        .get(|| async { vec![b'm'; MEDIUM_BYTES] })
        .mount(router);
    let router = RouteMethods::new(&QUIET)
        .get(|| async {
            // Nothing to send for three send timeouts between two chunks.
            let chunks = futures_util::stream::unfold(0, |n| async move {
                match n {
                    0 => Some((Ok::<_, std::convert::Infallible>("first"), 1)),
                    1 => {
                        tokio::time::sleep(SEND_TIMEOUT * 3).await;
                        Some((Ok("second"), 2))
                    }
                    _ => None,
                }
            });
            Body::from_stream(chunks)
        })
        .mount(router);
    let router = RouteMethods::new(&ECHO_UPGRADE)
        .get(|mut request: Request| async move {
            echo_once_upgraded(&mut request);
            switching_protocols()
        })
        .mount(router);
    let router = RouteMethods::new(&FLOOD_UPGRADE)
        .get(|mut request: Request| async move {
            flood_once_upgraded(&mut request);
            switching_protocols()
        })
        .mount(router);
    // A CONNECT (to any authority) opens an echo tunnel.
    let router = router.fallback(|mut request: Request| async move {
        echo_once_upgraded(&mut request);
        Response::new(Body::empty())
    });
    TestServer::start(App::new(router).with_server_config(config)).await
}

/// Echoes whatever arrives once `request`'s connection is handed over (after a 101, or a 2xx
/// to a CONNECT).
fn echo_once_upgraded(request: &mut Request) {
    let upgrade = hyper::upgrade::on(request);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut io = hyper_util::rt::TokioIo::new(upgraded);
        let mut buffer = [0u8; 64];
        while let Ok(read @ 1..) = io.read(&mut buffer).await {
            if io.write_all(&buffer[..read]).await.is_err() {
                break;
            }
        }
    });
}

/// Writes to the connection once `request`'s connection is handed over, for as long as the
/// writes go through.
fn flood_once_upgraded(request: &mut Request) {
    let upgrade = hyper::upgrade::on(request);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut io = hyper_util::rt::TokioIo::new(upgraded);
        let chunk = vec![b'f'; 64 * 1024];
        while io.write_all(&chunk).await.is_ok() {}
        FLOODS_ENDED.fetch_add(1, Ordering::SeqCst);
    });
}

fn switching_protocols() -> Response {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "upgrade")
        .header("upgrade", "echo")
        .body(Body::empty())
        .unwrap()
}

/// Whether the server closes `stream` (end of stream or reset) within [`CLOSE_WITHIN`],
/// sending nothing before it does.
async fn closed_without_answer(stream: &mut TcpStream) -> bool {
    let mut buffer = [0u8; 256];
    matches!(
        tokio::time::timeout(CLOSE_WITHIN, stream.read(&mut buffer)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// Sends `GET path` on `stream` (kept alive) and reads the whole answer: its status line and
/// body (plain or chunked).
async fn exchange(stream: &mut TcpStream, path: &str) -> (String, Vec<u8>) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    read_answer(stream).await
}

async fn read_answer(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut received = Vec::new();
    let head_end = loop {
        if let Some(end) = find(&received, b"\r\n\r\n") {
            break end + 4;
        }
        read_more(stream, &mut received).await;
    };
    let head = String::from_utf8(received[..head_end].to_vec()).unwrap();
    let mut rest = received[head_end..].to_vec();
    let status = head.lines().next().unwrap().to_owned();
    let lower = head.to_ascii_lowercase();
    let body = if let Some(length) = lower
        .lines()
        .find_map(|line| line.strip_prefix("content-length: "))
    {
        let length: usize = length.trim().parse().unwrap();
        while rest.len() < length {
            read_more(stream, &mut rest).await;
        }
        rest
    } else if lower.contains("transfer-encoding: chunked") {
        while !rest.ends_with(b"0\r\n\r\n") {
            read_more(stream, &mut rest).await;
        }
        dechunk(&rest)
    } else {
        rest
    };
    (status, body)
}

async fn read_more(stream: &mut TcpStream, into: &mut Vec<u8>) {
    let mut buffer = vec![0u8; 64 * 1024];
    let read = tokio::time::timeout(CLOSE_WITHIN, stream.read(&mut buffer))
        .await
        .expect("the server answers")
        .expect("the connection stays open");
    assert!(read > 0, "the server closed the connection mid-answer");
    into.extend_from_slice(&buffer[..read]);
}

/// Reads what `stream` still brings until the server closes it (within [`CLOSE_WITHIN`]): how
/// many bytes came.
async fn drain_until_closed(stream: &mut TcpStream) -> usize {
    tokio::time::timeout(CLOSE_WITHIN, async {
        let mut received = 0;
        let mut buffer = vec![0u8; 256 * 1024];
        while let Ok(read @ 1..) = stream.read(&mut buffer).await {
            received += read;
        }
        received
    })
    .await
    .expect("the server closed the connection")
}

/// A new connection to `server` on which `GET /large` has been sent.
async fn ask_for_large(server: &TestServer) -> TcpStream {
    let mut stream = TcpStream::connect(server.address()).await.unwrap();
    stream
        .write_all(b"GET /large HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    stream
}

/// A new connection to `server` is served.
async fn expect_others_served(server: &TestServer) {
    let mut other = TcpStream::connect(server.address()).await.unwrap();
    expect_ok(&mut other, "/hello", b"hello").await;
}

/// `GET path` on `stream` is answered 200 with `body`.
async fn expect_ok(stream: &mut TcpStream, path: &str, body: &[u8]) {
    let (status, answered) = exchange(stream, path).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(answered, body);
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut chunked: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = find(chunked, b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&chunked[..line_end]).unwrap(), 16).unwrap();
        if size == 0 {
            return body;
        }
        let start = line_end + 2;
        body.extend_from_slice(&chunked[start..start + size]);
        chunked = &chunked[start + size + 2..];
    }
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed() {
    let server = server().await;
    let mut stream = TcpStream::connect(server.address()).await.unwrap();
    assert!(closed_without_answer(&mut stream).await);
}

#[tokio::test]
async fn a_head_sent_too_slowly_is_closed_without_an_answer() {
    let server = server().await;
    let mut stream = TcpStream::connect(server.address()).await.unwrap();
    stream
        .write_all(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    // One header byte every 50 ms: each arrives in time, the head never does.
    let trickle = async {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if stream.write_all(b"X").await.is_err() {
                break;
            }
        }
    };
    // The trickling connection ends: its writes start failing once the server has closed it.
    tokio::time::timeout(CLOSE_WITHIN, trickle)
        .await
        .expect("the server closes the slow connection");
    expect_others_served(&server).await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_its_answer() {
    let server = server().await;
    let mut stream = TcpStream::connect(server.address()).await.unwrap();
    expect_ok(&mut stream, "/hello", b"hello").await;
    assert!(closed_without_answer(&mut stream).await);
}

#[tokio::test]
async fn a_keep_alive_connection_in_use_stays_open() {
    let server = server().await;
    let mut stream = TcpStream::connect(server.address()).await.unwrap();
    // A request every third of a timeout, over four timeouts: every gap is within the limit.
    for _ in 0..12 {
        expect_ok(&mut stream, "/hello", b"hello").await;
        tokio::time::sleep(TIMEOUT / 3).await;
    }
}

#[tokio::test]
async fn slow_handlers_and_long_streams_are_not_waits_for_a_head() {
    let server = server().await;
    let mut stream = TcpStream::connect(server.address()).await.unwrap();
    expect_ok(&mut stream, "/slow", b"slow").await;
    expect_ok(&mut stream, "/trickle", b"012345").await;
    // And the connection still serves.
    let (status, _) = exchange(&mut stream, "/hello").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
}

#[tokio::test]
async fn a_large_answer_to_a_slow_reader_goes_out_whole() {
    let server = server().await;
    let mut stream = ask_for_large(&server).await;
    // The server's writes block while the client reads nothing for three timeouts.
    tokio::time::sleep(TIMEOUT * 3).await;
    let (status, body) = read_answer(&mut stream).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(body.len(), LARGE_BYTES);
    assert!(body.iter().all(|&byte| byte == b'x'));
    let (status, _) = exchange(&mut stream, "/hello").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
}

#[tokio::test]
async fn an_upgraded_connection_is_not_waiting_for_a_head() {
    let server = server().await;
    let mut stream = TcpStream::connect(server.address()).await.unwrap();
    stream
        .write_all(
            b"GET /upgrade HTTP/1.1\r\nHost: localhost\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n",
        )
        .await
        .unwrap();
    let (status, _) = read_answer(&mut stream).await;
    assert_eq!(status, "HTTP/1.1 101 Switching Protocols");
    expect_quiet_tunnel_kept(&mut stream).await;
}

#[tokio::test]
async fn a_connect_tunnel_is_not_waiting_for_a_head() {
    let server = server().await;
    let mut stream = TcpStream::connect(server.address()).await.unwrap();
    stream
        .write_all(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        .await
        .unwrap();
    let (status, _) = read_answer(&mut stream).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    expect_quiet_tunnel_kept(&mut stream).await;
}

/// Quiet for three timeouts, then the tunnel still carries bytes both ways.
async fn expect_quiet_tunnel_kept(stream: &mut TcpStream) {
    tokio::time::sleep(TIMEOUT * 3).await;
    stream.write_all(b"ping").await.unwrap();
    let mut echoed = Vec::new();
    while echoed.len() < 4 {
        read_more(stream, &mut echoed).await;
    }
    assert_eq!(echoed, b"ping");
}

#[tokio::test]
async fn an_http2_connection_is_closed_once_idle_and_not_while_a_stream_runs() {
    let server = server().await;
    let mut stream = TcpStream::connect(server.address()).await.unwrap();
    // `GET /slow`, whose handler takes three timeouts.
    open_h2_with_get(&mut stream, "/slow").await;
    assert_eq!(h2_body(&mut stream, 1).await.as_deref(), Some(&b"slow"[..]));
    // No stream in flight from here on: the server says GOAWAY (and pings, to learn what the
    // client has sent), then closes the connection — also for a client, like this one, that
    // never answers the ping.
    let frames = tokio::time::timeout(CLOSE_WITHIN, async {
        let mut kinds = Vec::new();
        while let Some((kind, ..)) = read_h2_frame(&mut stream).await {
            kinds.push(kind);
        }
        kinds
    })
    .await
    .expect("an idle HTTP/2 connection is closed");
    assert!(frames.contains(&H2_GOAWAY), "a GOAWAY first: {frames:?}");
    assert!(
        frames
            .iter()
            .all(|kind| matches!(*kind, H2_SETTINGS | H2_GOAWAY | H2_PING)),
        "{frames:?}"
    );
}

#[tokio::test]
async fn a_stream_sent_as_an_idle_http2_connection_is_told_to_go_away_is_answered() {
    let server = server().await;
    let mut stream = TcpStream::connect(server.address()).await.unwrap();
    open_h2_with_get(&mut stream, "/hello").await;
    assert_eq!(
        h2_body(&mut stream, 1).await.as_deref(),
        Some(&b"hello"[..])
    );
    // Wait for the GOAWAY of the idle connection, then send a request at once: it was sent
    // before the client could know, and is answered rather than dropped.
    loop {
        let (kind, ..) = read_h2_frame(&mut stream).await.expect("told to go away");
        if kind == H2_GOAWAY {
            break;
        }
    }
    let request = h2_frame(
        H2_HEADERS,
        H2_END_STREAM | H2_END_HEADERS,
        3,
        &hpack_get("/hello"),
    );
    stream.write_all(&request).await.unwrap();
    let answered = tokio::time::timeout(CLOSE_WITHIN, h2_body(&mut stream, 3))
        .await
        .expect("the connection ends");
    assert_eq!(answered.as_deref(), Some(&b"hello"[..]));
}

#[tokio::test]
async fn a_client_that_stops_reading_a_large_answer_is_cut_off() {
    let server = send_limited_server().await;
    let mut stream = ask_for_large(&server).await;
    // The socket fills and stays full for six send timeouts: a full spell may last up to four
    // (what the socket took, at the minimum rate), then a period to notice.
    tokio::time::sleep(SEND_TIMEOUT * 6).await;
    // What the buffers held arrives, then the end: the answer was cut short.
    let received = drain_until_closed(&mut stream).await;
    assert!(received > 0, "the answer started");
    assert!(received < LARGE_BYTES, "cut short, got {received} bytes");
    expect_others_served(&server).await;
}

#[tokio::test]
async fn an_upgraded_connection_whose_peer_stops_reading_is_cut_off() {
    let server = send_limited_server().await;
    let ended_before = FLOODS_ENDED.load(Ordering::SeqCst);
    let mut stream = TcpStream::connect(server.address()).await.unwrap();
    stream
        .write_all(
            b"GET /flood HTTP/1.1\r\nHost: localhost\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n",
        )
        .await
        .unwrap();
    // The server writes without end; the client reads nothing for six send timeouts (a full
    // spell may last up to four, then a period to notice).
    tokio::time::sleep(SEND_TIMEOUT * 6).await;
    let received = drain_until_closed(&mut stream).await;
    assert!(received > 0, "the flood began");
    // The flood's writes failed: the upgraded side saw the cut too.
    tokio::time::timeout(CLOSE_WITHIN, async {
        while FLOODS_ENDED.load(Ordering::SeqCst) == ended_before {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the flood ended");
    expect_others_served(&server).await;
}

#[tokio::test]
async fn a_reader_that_keeps_reading_gets_the_whole_answer() {
    let server = send_limited_server().await;
    let mut stream = ask_for_large(&server).await;
    // Two MiB at a time, with a pause of half a send timeout after each: the whole answer
    // takes several send timeouts, and no pause reaches one.
    let mut received = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut total = None;
    while total.is_none_or(|total| received.len() < total) {
        tokio::time::sleep(SEND_TIMEOUT / 2).await;
        let pause_at = received.len() + 2 * 1024 * 1024;
        while received.len() < pause_at && total.is_none_or(|total| received.len() < total) {
            let read = tokio::time::timeout(CLOSE_WITHIN, stream.read(&mut buffer))
                .await
                .expect("the server sends")
                .expect("the connection stays open");
            assert!(read > 0, "the server closed the connection mid-answer");
            received.extend_from_slice(&buffer[..read]);
            total = total.or_else(|| whole_length(&received));
        }
    }
    let total = total.unwrap();
    assert_eq!(received.len(), total);
    assert!(received.ends_with(&[b'x'; 1024]));
    // The connection still serves.
    expect_ok(&mut stream, "/hello", b"hello").await;
}

/// The length of the whole answer (head and body) once `received` holds its head.
fn whole_length(received: &[u8]) -> Option<usize> {
    let head_end = find(&received[..received.len().min(4096)], b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&received[..head_end])
        .ok()?
        .to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length: "))?
        .trim()
        .parse()
        .ok()?;
    Some(head_end + length)
}

#[tokio::test]
async fn quiet_streams_and_slow_handlers_are_not_stalled_sends() {
    let server = send_limited_server().await;
    let mut stream = TcpStream::connect(server.address()).await.unwrap();
    expect_ok(&mut stream, "/quiet", b"firstsecond").await;
    expect_ok(&mut stream, "/slow", b"slow").await;
    // Over HTTP/2 too.
    let mut stream = TcpStream::connect(server.address()).await.unwrap();
    open_h2_with_get(&mut stream, "/quiet").await;
    assert_eq!(
        h2_body(&mut stream, 1).await.as_deref(),
        Some(&b"firstsecond"[..])
    );
}

#[tokio::test]
async fn an_http2_stream_whose_window_stays_shut_is_cut_off_even_while_the_client_pings() {
    let server = send_limited_server().await;
    let stream = TcpStream::connect(server.address()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(&h2_opening_with_shut_window())
        .await
        .unwrap();
    // A ping every 100 ms makes the server write (its answers) without letting data through.
    let pings = tokio::spawn(async move {
        while writer
            .write_all(&h2_frame(H2_PING, 0, 0, &[7; 8]))
            .await
            .is_ok()
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let frames = tokio::time::timeout(CLOSE_WITHIN, async {
        let mut frames = Vec::new();
        while let Some((kind, flags, id, _)) = read_h2_frame_from(&mut reader).await {
            frames.push((kind, flags, id));
        }
        frames
    })
    .await
    .expect("the server closes the connection");
    pings.abort();
    assert!(
        frames.contains(&(H2_HEADERS, H2_END_HEADERS, 1)),
        "the answer's head went out: {frames:?}"
    );
    assert!(
        frames
            .iter()
            .any(|&(kind, flags, _)| kind == H2_PING && flags == 1),
        "pings were answered: {frames:?}"
    );
    assert!(
        !frames.iter().any(|&(kind, ..)| kind == H2_DATA),
        "no data could go out: {frames:?}"
    );
}

#[tokio::test]
async fn an_http2_reader_that_keeps_opening_its_window_gets_a_large_answer_whole() {
    // Both timeouts short: the body's one frame is handed to h2 at once, so no stream is in
    // flight while it goes out, and no new frame is taken from the body — neither the idle
    // limit nor the send timeout may take that for a client gone quiet.
    let server = server_with(ServerConfig {
        header_read_timeout: Some(TIMEOUT),
        send_timeout: Some(SEND_TIMEOUT),
        ..ServerConfig::default()
    })
    .await;
    let stream = TcpStream::connect(server.address()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(&h2_opening(&[], "/medium")).await.unwrap();
    // 32 KiB more of window, for the stream and the connection, every 100 ms: the answer's one
    // body frame goes out over several send timeouts, and the server takes no new frame from
    // the body all that while.
    let windows = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let more = 32_768u32.to_be_bytes();
            let mut updates = h2_frame(H2_WINDOW_UPDATE, 0, 0, &more);
            updates.extend(h2_frame(H2_WINDOW_UPDATE, 0, 1, &more));
            if writer.write_all(&updates).await.is_err() {
                break;
            }
        }
    });
    let started = std::time::Instant::now();
    let mut body = Vec::new();
    while let Some((kind, flags, id, payload)) = read_h2_frame_from(&mut reader).await {
        if kind == H2_DATA && id == 1 {
            body.extend(payload);
            if flags & H2_END_STREAM != 0 {
                break;
            }
        }
    }
    windows.abort();
    assert_eq!(body.len(), MEDIUM_BYTES, "the whole answer");
    assert!(body.iter().all(|&byte| byte == b'm'));
    assert!(
        started.elapsed() > SEND_TIMEOUT.max(TIMEOUT) * 2,
        "the answer took longer than both timeouts, so the test means something"
    );
}

#[tokio::test]
async fn an_http2_stream_kept_shut_is_cut_off_while_other_streams_are_answered() {
    // A window of 0 lets nothing out; one of a byte makes hyper hand over what the body has,
    // a piece at a time, each held up in turn.
    for window in [0u32, 1] {
        stalled_stream_beside_answered_ones(window).await;
    }
}

/// Every stream starts with a window of `window` bytes; stream 1 asks for a body built in one
/// piece, many windows long, and never opens its window further, while other streams are
/// answered: the connection is cut off all the same.
async fn stalled_stream_beside_answered_ones(window: u32) {
    let server = send_limited_server().await;
    let stream = TcpStream::connect(server.address()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let mut settings = vec![0, 4];
    settings.extend(window.to_be_bytes());
    writer
        .write_all(&h2_opening(&settings, "/medium"))
        .await
        .unwrap();
    // Meanwhile a request every 100 ms on a new stream, whose window is opened: answered, so
    // the connection keeps making progress — on other streams.
    let others = tokio::spawn(async move {
        for id in (3u32..).step_by(2) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut request = h2_frame(
                H2_HEADERS,
                H2_END_STREAM | H2_END_HEADERS,
                id,
                &hpack_get("/hello"),
            );
            request.extend(h2_frame(H2_WINDOW_UPDATE, 0, id, &1024u32.to_be_bytes()));
            if writer.write_all(&request).await.is_err() {
                break;
            }
        }
    });
    let frames = tokio::time::timeout(CLOSE_WITHIN, async {
        let mut frames = Vec::new();
        while let Some((kind, _, id, _)) = read_h2_frame_from(&mut reader).await {
            frames.push((kind, id));
        }
        frames
    })
    .await
    .expect("the server closes the connection");
    others.abort();
    let data_on_stream_1 = frames
        .iter()
        .filter(|frame| **frame == (H2_DATA, 1))
        .count();
    // A window of 0 lets no DATA frame out; one of a byte, one frame of a byte at most.
    assert!(
        data_on_stream_1 <= window as usize,
        "stream 1 let out no more than its window ({window}): {frames:?}"
    );
    assert!(
        frames.iter().any(|&(kind, id)| kind == H2_DATA && id > 1),
        "the other streams were answered: {frames:?}"
    );
}

#[tokio::test]
async fn an_http2_window_opened_within_the_send_timeout_gets_its_data() {
    let server = send_limited_server().await;
    let mut stream = TcpStream::connect(server.address()).await.unwrap();
    stream
        .write_all(&h2_opening_with_shut_window())
        .await
        .unwrap();
    tokio::time::sleep(SEND_TIMEOUT / 2).await;
    // WINDOW_UPDATE on stream 1: room for the body.
    stream
        .write_all(&h2_frame(H2_WINDOW_UPDATE, 0, 1, &1024u32.to_be_bytes()))
        .await
        .unwrap();
    assert_eq!(
        h2_body(&mut stream, 1).await.as_deref(),
        Some(&b"hello"[..])
    );
}

const H2_DATA: u8 = 0x0;
const H2_HEADERS: u8 = 0x1;
const H2_SETTINGS: u8 = 0x4;
const H2_PING: u8 = 0x6;
const H2_GOAWAY: u8 = 0x7;
const H2_WINDOW_UPDATE: u8 = 0x8;
const H2_END_STREAM: u8 = 0x1;
const H2_END_HEADERS: u8 = 0x4;

/// Opens an HTTP/2 connection on `stream` by prior knowledge (the preface, empty settings) and
/// sends `GET path` as stream 1.
async fn open_h2_with_get(stream: &mut TcpStream, path: &str) {
    stream.write_all(&h2_opening(&[], path)).await.unwrap();
}

/// The opening of an HTTP/2 connection whose client lets no data through
/// (`SETTINGS_INITIAL_WINDOW_SIZE` 0), with `GET /hello` as stream 1.
fn h2_opening_with_shut_window() -> Vec<u8> {
    h2_opening(&[0, 4, 0, 0, 0, 0], "/hello")
}

/// The preface, a SETTINGS frame with `settings`, and `GET path` as stream 1.
fn h2_opening(settings: &[u8], path: &str) -> Vec<u8> {
    let mut opening = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    opening.extend(h2_frame(H2_SETTINGS, 0, 0, settings));
    opening.extend(h2_frame(
        H2_HEADERS,
        H2_END_STREAM | H2_END_HEADERS,
        1,
        &hpack_get(path),
    ));
    opening
}

/// The body of stream `id`'s answer (a 200), read to its end; `None` if the connection ends
/// first.
async fn h2_body(stream: &mut TcpStream, id: u32) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    while let Some((kind, flags, stream_id, payload)) = read_h2_frame(stream).await {
        if kind == H2_HEADERS && stream_id == id {
            // HPACK's static index 8: `:status 200`.
            assert_eq!(payload[0], 0x88, "200 OK");
        }
        if kind == H2_DATA && stream_id == id {
            body.extend(payload);
            if flags & H2_END_STREAM != 0 {
                return Some(body);
            }
        }
    }
    None
}

/// An HTTP/2 frame (RFC 9113 §4.1).
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut frame = length[1..].to_vec();
    frame.extend([kind, flags]);
    frame.extend(stream.to_be_bytes());
    frame.extend(payload);
    frame
}

/// The header block of `GET path` to localhost over `http`, in HPACK (RFC 7541) without
/// Huffman coding: indexed `:method GET` and `:scheme http`, literal `:path` and `:authority`.
fn hpack_get(path: &str) -> Vec<u8> {
    let mut block = vec![0x82, 0x86];
    for (name_index, value) in [(0x04, path), (0x01, "localhost")] {
        block.push(name_index);
        block.push(u8::try_from(value.len()).unwrap());
        block.extend(value.as_bytes());
    }
    block
}

/// The next frame's type, flags, stream and payload; `None` once the server has closed.
async fn read_h2_frame(stream: &mut TcpStream) -> Option<(u8, u8, u32, Vec<u8>)> {
    read_h2_frame_from(stream).await
}

async fn read_h2_frame_from(
    stream: &mut (impl AsyncReadExt + Unpin),
) -> Option<(u8, u8, u32, Vec<u8>)> {
    let mut head = [0u8; 9];
    stream.read_exact(&mut head).await.ok()?;
    let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    let mut payload = vec![0u8; length];
    stream.read_exact(&mut payload).await.ok()?;
    Some((head[3], head[4], id, payload))
}
