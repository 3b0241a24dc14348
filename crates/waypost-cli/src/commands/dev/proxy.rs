//! The public side of `waypost dev`: it owns the listening socket for the whole session and
//! forwards each request over loopback to the app's current build, so a client never sees the
//! socket close while the app is rebuilt and restarted.
//!
//! While no build is running yet, requests wait (up to a bound) instead of failing; while a new
//! build is compiled or starting, the previous one keeps answering. What the proxy answers
//! itself (the app still building, the build broken) uses Waypost's JSON error shape.
//! An HTTP/1.1 upgrade (a WebSocket) is forwarded too: once the app switches protocols, the
//! client's connection and the app's are joined byte for byte until either side closes.

use std::{
    convert::Infallible,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use bytes::Bytes;
use http::{
    header::{self, HeaderMap, HeaderName, HeaderValue},
    Request, Response, StatusCode, Uri, Version,
};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use tokio::{net::TcpListener, sync::watch};

use super::app_process::AppProcess;

/// What requests are forwarded to.
#[derive(Debug, Clone)]
pub(crate) enum Upstream {
    /// No build is running yet; requests wait for one.
    Building,
    /// Requests go to this build.
    Serving(Arc<AppProcess>),
    /// Nothing to serve until the next change (the build failed, the app exited); requests
    /// are answered with this reason.
    Down(&'static str),
}

type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// Forwards requests to the app's current build.
struct Proxy {
    upstream: watch::Receiver<Upstream>,
    client: Client<HttpConnector, Incoming>,
    /// How long a request waits for a first build before it is answered 503.
    wait: Duration,
    /// Numbers the proxy's own error responses that carry no usable client request id.
    next_id: AtomicU64,
}

/// Accepts on `listener` until the task is dropped, forwarding to whatever `upstream` says.
pub(crate) async fn serve(
    listener: TcpListener,
    upstream: watch::Receiver<Upstream>,
    wait: Duration,
) {
    let proxy = Arc::new(Proxy::new(upstream, wait));
    let server = auto::Builder::new(TokioExecutor::new());
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors, typically: back off rather than spin or give up.
                eprintln!("[waypost] accepting a connection failed: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let proxy = proxy.clone();
        let server = server.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let proxy = proxy.clone();
                async move { Ok::<_, Infallible>(proxy.forward(request).await) }
            });
            // A client hanging up mid-request is not worth reporting.
            let _ = server
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await;
        });
    }
}

impl Proxy {
    fn new(upstream: watch::Receiver<Upstream>, wait: Duration) -> Proxy {
        let client = Client::builder(TokioExecutor::new())
            // Short, so few idle connections point at a build that has been replaced.
            .pool_idle_timeout(Duration::from_secs(5))
            .build_http();
        Proxy {
            upstream,
            client,
            wait,
            next_id: AtomicU64::new(1),
        }
    }

    async fn forward(&self, mut request: Request<Incoming>) -> Response<ProxyBody> {
        let app = match self.current_app().await {
            Ok(app) => app,
            Err((status, code, message)) => {
                return self.error(request.headers(), status, code, message);
            }
        };
        let path = request
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |path| path.as_str().to_owned());
        let target: Uri = match format!("http://127.0.0.1:{}{path}", app.port()).parse() {
            Ok(uri) => uri,
            Err(_) => {
                return self.error(
                    request.headers(),
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "The request target is not a valid path.",
                );
            }
        };
        // An HTTP/2 request names its host in the URI only; the app should still see it.
        if !request.headers().contains_key(header::HOST) {
            if let Some(host) = request
                .uri()
                .authority()
                .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok())
            {
                request.headers_mut().insert(header::HOST, host);
            }
        }
        *request.uri_mut() = target;
        // An upgrade keeps its `Upgrade` (and `Connection: upgrade`) on both hops, which are
        // otherwise hop-by-hop; the client's side of it is taken before the request moves on.
        let upgrade = requested_upgrade(&request);
        let client_side = upgrade.is_some().then(|| hyper::upgrade::on(&mut request));
        // The hop to the app is HTTP/1.1 whatever the client spoke.
        *request.version_mut() = Version::HTTP_11;
        remove_hop_by_hop(request.headers_mut());
        if let Some(protocol) = upgrade {
            keep_upgrade(request.headers_mut(), protocol);
        }
        let method = request.method().clone();
        match self.client.request(request).await {
            Ok(mut response) if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
                let Some(client_side) = client_side else {
                    // The app may not switch protocols unasked.
                    eprintln!("[waypost] {method} {path}: the app switched protocols unasked");
                    return self.error(
                        &HeaderMap::new(),
                        StatusCode::BAD_GATEWAY,
                        "app_unreachable",
                        "The app answered 101 to a request that asked for no upgrade.",
                    );
                };
                let app_side = hyper::upgrade::on(&mut response);
                tokio::spawn(async move {
                    // The tunnel holds the build alive for as long as it is open.
                    let _serving = app;
                    if let (Ok(client), Ok(app)) = tokio::join!(client_side, app_side) {
                        let _ = tokio::io::copy_bidirectional(
                            &mut TokioIo::new(client),
                            &mut TokioIo::new(app),
                        )
                        .await;
                    }
                });
                let protocol = response.headers().get(header::UPGRADE).cloned();
                remove_hop_by_hop(response.headers_mut());
                if let Some(protocol) = protocol {
                    keep_upgrade(response.headers_mut(), protocol);
                }
                response.map(|body| body.boxed())
            }
            Ok(response) => {
                let mut response = response.map(|body| {
                    // The body holds the build alive until the last byte is sent, so a
                    // streamed response outlives a rebuild.
                    body.map_frame(move |frame| {
                        let _serving = &app;
                        frame
                    })
                    .boxed()
                });
                remove_hop_by_hop(response.headers_mut());
                response
            }
            Err(error) => {
                eprintln!("[waypost] {method} {path}: the app did not answer: {error}");
                self.error(
                    &HeaderMap::new(),
                    StatusCode::BAD_GATEWAY,
                    "app_unreachable",
                    "The app did not answer; see the `waypost dev` terminal.",
                )
            }
        }
    }

    /// The build to forward to, after waiting for a first one if need be; else the error to
    /// answer.
    async fn current_app(
        &self,
    ) -> Result<Arc<AppProcess>, (StatusCode, &'static str, &'static str)> {
        let mut upstream = self.upstream.clone();
        let settled = tokio::time::timeout(
            self.wait,
            upstream.wait_for(|u| !matches!(u, Upstream::Building)),
        )
        .await;
        let still_building = (
            StatusCode::SERVICE_UNAVAILABLE,
            "app_starting",
            "The app is still building; try again in a moment.",
        );
        match settled {
            Err(_) => Err(still_building),
            Ok(Err(_)) => Err((
                StatusCode::SERVICE_UNAVAILABLE,
                "dev_stopped",
                "waypost dev is stopping.",
            )),
            Ok(Ok(current)) => match &*current {
                Upstream::Serving(app) => Ok(app.clone()),
                Upstream::Down(reason) => Err((StatusCode::BAD_GATEWAY, "app_down", *reason)),
                Upstream::Building => Err(still_building),
            },
        }
    }

    /// `{"error", "code", "requestId"}`, as the app itself would answer.
    fn error(
        &self,
        request_headers: &HeaderMap,
        status: StatusCode,
        code: &str,
        message: &str,
    ) -> Response<ProxyBody> {
        let request_id = request_headers
            .get("x-request-id")
            .and_then(|value| value.to_str().ok())
            .filter(|id| is_sane_request_id(id))
            .map_or_else(
                || format!("dev-{}", self.next_id.fetch_add(1, Ordering::Relaxed)),
                str::to_owned,
            );
        let body = serde_json::json!({ "error": message, "code": code, "requestId": request_id });
        let mut response = Response::new(
            Full::new(Bytes::from(body.to_string()))
                .map_err(|never| match never {})
                .boxed(),
        );
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if let Ok(id) = HeaderValue::from_str(&request_id) {
            headers.insert("x-request-id", id);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// The rule the app applies to a client's `X-Request-Id`.
fn is_sane_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The protocol an HTTP/1.1 request asks to switch to (`Upgrade`, with `upgrade` among its
/// `Connection` options), if any.
fn requested_upgrade(request: &Request<Incoming>) -> Option<HeaderValue> {
    let asks = request.version() == Version::HTTP_11
        && request
            .headers()
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|option| option.trim().eq_ignore_ascii_case("upgrade"));
    asks.then(|| request.headers().get(header::UPGRADE).cloned())
        .flatten()
}

/// Puts an upgrade's own headers back after the hop-by-hop ones were removed.
fn keep_upgrade(headers: &mut HeaderMap, protocol: HeaderValue) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, protocol);
}

/// Headers about one connection (RFC 9110 §7.6.1) that a proxy must not pass on.
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_removed() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-hop"),
        );
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("x-hop", HeaderValue::from_static("1"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        headers.insert("x-request-id", HeaderValue::from_static("abc"));
        remove_hop_by_hop(&mut headers);
        let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["content-type", "x-request-id"]);
    }

    async fn answer_while(upstream: Upstream, request_id: Option<&str>) -> (StatusCode, Value) {
        let (_sender, receiver) = watch::channel(upstream);
        let proxy = Proxy::new(receiver, Duration::from_millis(50));
        let (status, code, message) = proxy.current_app().await.unwrap_err();
        let mut headers = HeaderMap::new();
        if let Some(id) = request_id {
            headers.insert("x-request-id", HeaderValue::from_str(id).unwrap());
        }
        let response = proxy.error(&headers, status, code, message);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(
            response.headers()["x-request-id"],
            request_id.unwrap_or("dev-1")
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_request_waits_for_the_first_build_then_is_told_to_retry() {
        let (status, body) = answer_while(Upstream::Building, None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body,
            json!({
                "error": "The app is still building; try again in a moment.",
                "code": "app_starting",
                "requestId": "dev-1",
            })
        );
    }

    #[tokio::test]
    async fn a_broken_build_is_a_502_in_the_one_error_shape() {
        let (status, body) = answer_while(Upstream::Down("It broke."), Some("abc-1")).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert_eq!(
            body,
            json!({ "error": "It broke.", "code": "app_down", "requestId": "abc-1" })
        );
    }

    /// Reads from `stream` until the end of a message head, which is returned.
    async fn read_head(stream: &mut tokio::net::TcpStream) -> String {
        use tokio::io::AsyncReadExt;
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            assert_eq!(
                stream.read(&mut byte).await.unwrap(),
                1,
                "the head ended early"
            );
            head.push(byte[0]);
        }
        String::from_utf8(head).unwrap().to_ascii_lowercase()
    }

    #[tokio::test]
    async fn an_upgrade_is_forwarded_and_both_connections_joined() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // The app: switches to the protocol asked for, then answers each read in upper case.
        let app = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let app_port = app.local_addr().unwrap().port();
        let app_task = tokio::spawn(async move {
            let (mut stream, _) = app.accept().await.unwrap();
            let head = read_head(&mut stream).await;
            stream
                .write_all(
                    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\
                      Upgrade: websocket\r\nSec-WebSocket-Accept: accepted\r\n\r\n",
                )
                .await
                .unwrap();
            let mut buffer = [0u8; 64];
            loop {
                let read = stream.read(&mut buffer).await.unwrap();
                if read == 0 {
                    break;
                }
                stream
                    .write_all(&buffer[..read].to_ascii_uppercase())
                    .await
                    .unwrap();
            }
            head
        });
        let (_sender, upstream) =
            watch::channel(Upstream::Serving(AppProcess::listening_on(app_port)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_port = listener.local_addr().unwrap().port();
        let proxy = tokio::spawn(serve(listener, upstream, Duration::from_secs(1)));

        // Bounded: a tunnel that never opens must fail the test, not hang it.
        let exchange = async {
            let mut client = tokio::net::TcpStream::connect(("127.0.0.1", proxy_port))
                .await
                .unwrap();
            client
                .write_all(
                    b"GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive, Upgrade\r\n\
                      Upgrade: websocket\r\nSec-WebSocket-Key: a2V5\r\n\
                      Sec-WebSocket-Version: 13\r\n\r\n",
                )
                .await
                .unwrap();
            let answer = read_head(&mut client).await;
            assert!(answer.starts_with("http/1.1 101 "), "{answer}");
            for line in [
                "connection: upgrade",
                "upgrade: websocket",
                "sec-websocket-accept: accepted",
            ] {
                assert!(answer.contains(line), "{line} missing from {answer}");
            }
            for message in ["hello", "again"] {
                client.write_all(message.as_bytes()).await.unwrap();
                let mut echoed = vec![0u8; message.len()];
                client.read_exact(&mut echoed).await.unwrap();
                assert_eq!(echoed, message.to_ascii_uppercase().as_bytes());
            }
            client
        };
        let client = tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .expect("the upgraded exchange completes");
        // The client closing its side ends the app's too.
        drop(client);
        let seen = tokio::time::timeout(Duration::from_secs(5), app_task)
            .await
            .expect("the app's side is closed")
            .unwrap();
        assert!(seen.starts_with("get /ws http/1.1\r\n"), "{seen}");
        for line in [
            "connection: upgrade",
            "upgrade: websocket",
            "sec-websocket-key: a2v5",
            "sec-websocket-version: 13",
        ] {
            assert!(seen.contains(line), "{line} missing from {seen}");
        }
        assert!(!seen.contains("keep-alive"), "{seen}");
        proxy.abort();
    }

    #[test]
    fn request_ids_follow_the_apps_rule() {
        assert!(is_sane_request_id("abc-123_x.y"));
        assert!(!is_sane_request_id(""));
        assert!(!is_sane_request_id("has space"));
        assert!(!is_sane_request_id(&"a".repeat(65)));
    }
}
