//! Test support: talk to an app in process, with no socket ([`TestClient`], in the spirit of
//! `next-test-api-route-handler`), or serve it on a real loopback socket ([`TestServer`]).
//!
//! The in-process client drives the very service the server would run — front layer, security
//! layer, router — so what a test sees is what a client would see, minus the network. It keeps
//! a cookie jar, fetches a CSRF token when an unsafe request carries cookies, and has JSON
//! helpers.
//!
//! # Example
//! ```
//! use waypost::{axum::{routing::get, Router}, extract::Json, testing::TestClient, App};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let router = Router::new().route("/hi", get(|| async { Json(serde_json::json!({ "hi": 1 })) }));
//! let client = TestClient::new(App::new(router));
//! let response = client.get("/hi").send().await;
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.json_value()["hi"], 1);
//! # });
//! ```

use std::{
    collections::BTreeMap,
    future::{Future, IntoFuture},
    net::SocketAddr,
    pin::Pin,
    sync::Mutex,
};

use axum::{
    body::{Body, Bytes},
    extract::ConnectInfo,
    http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode},
    Router,
};
use axum_extra::extract::cookie::Cookie;
use http_body_util::BodyExt;
use serde::{de::DeserializeOwned, Serialize};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tower::ServiceExt;

use crate::{layers::Front, security::csrf::CSRF_HEADER, App};

/// An in-process client for an app, with a cookie jar and CSRF handling.
pub struct TestClient<S = ()> {
    service: Front<Router>,
    state: S,
    jar: Mutex<BTreeMap<String, String>>,
    csrf_endpoint: Option<String>,
    peer: SocketAddr,
}

impl TestClient<()> {
    /// A client for `app`.
    pub fn new(app: App) -> Self {
        Self::with_state(app, ())
    }
}

impl<S> TestClient<S> {
    /// A client for `app` that also hands out `state` (the app's state, for checking what a
    /// request changed).
    pub fn with_state(app: App, state: S) -> Self {
        Self {
            service: app.into_service(),
            state,
            jar: Mutex::new(BTreeMap::new()),
            csrf_endpoint: None,
            peer: SocketAddr::from(([127, 0, 0, 1], 40000)),
        }
    }

    /// Before an unsafe request that carries cookies, fetch a CSRF token from `path` (which
    /// answers `{"token": …}`, like the showcase's `/api/csrf`) and send it in `X-CSRF-Token`.
    pub fn with_csrf_endpoint(mut self, path: impl Into<String>) -> Self {
        self.csrf_endpoint = Some(path.into());
        self
    }

    /// Requests appear to come from `peer` (for rate limits and client IPs).
    pub fn with_peer(mut self, peer: SocketAddr) -> Self {
        self.peer = peer;
        self
    }

    /// The app state given to [`TestClient::with_state`].
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The value of cookie `name` in the jar.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar.lock().ok()?.get(name).cloned()
    }

    /// Empties the cookie jar.
    pub fn clear_cookies(&self) {
        if let Ok(mut jar) = self.jar.lock() {
            jar.clear();
        }
    }

    /// A request with `method` to `path` (with its query string).
    pub fn request(&self, method: Method, path: &str) -> TestRequest<'_, S> {
        TestRequest {
            client: self,
            method,
            path: path.to_owned(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> TestRequest<'_, S> {
        self.request(Method::GET, path)
    }

    /// `POST path`.
    pub fn post(&self, path: &str) -> TestRequest<'_, S> {
        self.request(Method::POST, path)
    }

    /// `PUT path`.
    pub fn put(&self, path: &str) -> TestRequest<'_, S> {
        self.request(Method::PUT, path)
    }

    /// `PATCH path`.
    pub fn patch(&self, path: &str) -> TestRequest<'_, S> {
        self.request(Method::PATCH, path)
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> TestRequest<'_, S> {
        self.request(Method::DELETE, path)
    }

    fn cookie_header(&self) -> Option<HeaderValue> {
        let jar = self.jar.lock().ok()?;
        if jar.is_empty() {
            return None;
        }
        let text = jar
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        HeaderValue::from_str(&text).ok()
    }

    fn store_cookies(&self, headers: &HeaderMap) {
        let Ok(mut jar) = self.jar.lock() else {
            return;
        };
        for value in headers.get_all(header::SET_COOKIE) {
            let Some(cookie) = value
                .to_str()
                .ok()
                .and_then(|v| Cookie::parse(v.to_owned()).ok())
            else {
                continue;
            };
            let expired = cookie
                .max_age()
                .is_some_and(|age| age.is_zero() || age.is_negative())
                || cookie
                    .expires_datetime()
                    .is_some_and(|at| at <= time::OffsetDateTime::now_utc());
            if expired || cookie.value().is_empty() {
                jar.remove(cookie.name());
            } else {
                jar.insert(cookie.name().to_owned(), cookie.value().to_owned());
            }
        }
    }

    async fn dispatch(
        &self,
        method: Method,
        path: &str,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> TestResponse {
        if let Some(cookies) = self.cookie_header() {
            headers.entry(header::COOKIE).or_insert(cookies);
        }
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::from(body))
            .expect("a valid test request");
        *request.headers_mut() = headers;
        request
            .headers_mut()
            .entry(header::HOST)
            .or_insert(HeaderValue::from_static("localhost"));
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let response = match self.service.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        self.store_cookies(response.headers());
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map(|collected| collected.to_bytes())
            .unwrap_or_default();
        TestResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    async fn csrf_token(&self) -> Option<HeaderValue> {
        let endpoint = self.csrf_endpoint.as_deref()?;
        let response =
            Box::pin(self.dispatch(Method::GET, endpoint, HeaderMap::new(), Bytes::new())).await;
        let token = response.json_value()["token"].as_str()?.to_owned();
        HeaderValue::from_str(&token).ok()
    }
}

/// A request being built by a [`TestClient`]; `.await` (or `.send()`) sends it.
pub struct TestRequest<'a, S> {
    client: &'a TestClient<S>,
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl<S: Sync> TestRequest<'_, S> {
    /// Adds a header.
    ///
    /// # Panics
    /// When the name or value is not a valid header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("a valid header name"),
            HeaderValue::from_str(value).expect("a valid header value"),
        );
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// A JSON body.
    ///
    /// # Panics
    /// When `value` cannot be serialized.
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        self.body = serde_json::to_vec(value)
            .expect("a serializable body")
            .into();
        self.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        self
    }

    /// A URL-encoded form body.
    ///
    /// # Panics
    /// When `value` cannot be serialized as a form.
    pub fn form<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        self.body = serde_urlencoded::to_string(value)
            .expect("a form body")
            .into();
        self.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        self
    }

    /// A raw body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Sends the request.
    pub async fn send(mut self) -> TestResponse {
        let unsafe_method = crate::security::csrf::is_unsafe(&self.method);
        if unsafe_method
            && !self.headers.contains_key(CSRF_HEADER)
            && self.client.cookie_header().is_some()
        {
            if let Some(token) = self.client.csrf_token().await {
                self.headers.insert(CSRF_HEADER, token);
            }
        }
        self.client
            .dispatch(self.method, &self.path, self.headers, self.body)
            .await
    }
}

impl<'a, S: Sync> IntoFuture for TestRequest<'a, S> {
    type Output = TestResponse;
    type IntoFuture = Pin<Box<dyn Future<Output = TestResponse> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// A whole response, body collected.
#[derive(Clone, Debug)]
pub struct TestResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl TestResponse {
    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body's bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.body
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as `T`.
    ///
    /// # Panics
    /// When the body is not JSON of that shape (with the body in the message).
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!("body is not the expected JSON ({error}): {}", self.text())
        })
    }

    /// The body as a JSON value (`Null` when it is not JSON).
    pub fn json_value(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The `code` of an error body.
    pub fn error_code(&self) -> Option<String> {
        self.json_value()["code"].as_str().map(str::to_owned)
    }
}

/// An app served on `127.0.0.1:<free port>` for the length of a test. Dropping it shuts the
/// server down.
#[derive(Debug)]
pub struct TestServer {
    address: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Serves `app` on a fresh loopback port.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start(app: App) -> Self {
        Self::start_on(app, "127.0.0.1:0".parse().expect("a valid address")).await
    }

    /// Serves `app` on `address` (port 0 picks a free one).
    ///
    /// # Panics
    /// When the address cannot be bound.
    pub async fn start_on(app: App, address: SocketAddr) -> Self {
        let listener = TcpListener::bind(address)
            .await
            .expect("bind a loopback port");
        let address = listener.local_addr().expect("a bound address");
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(app.serve_with_shutdown(listener, async move {
            let _ = signal.await;
        }));
        Self {
            address,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// The socket address served on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Asks the server to stop and waits until it has (in-flight requests finish first).
    ///
    /// # Panics
    /// When the server task panicked, or its stop was forced (see [`TestServer::finish`]).
    pub async fn stop(self) {
        self.finish().await.expect("server ended cleanly");
    }

    /// Asks the server to stop, waits until it has, and says how it ended: an error when the
    /// shutdown timeout forced the stop (see [`App::serve_with_shutdown`]).
    ///
    /// # Errors
    /// What serving returned.
    ///
    /// # Panics
    /// When the server task panicked.
    pub async fn finish(mut self) -> std::io::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.task.take() {
            Some(task) => task.await.expect("server task did not panic"),
            None => Ok(()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
