//! Building and serving an app: the generated router, wrapped in the front layer, on a hyper
//! server with header limits, read timeouts and graceful shutdown.

use std::{
    cell::RefCell,
    convert::Infallible,
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Poll, Wake, Waker},
};

use axum::{
    body::Body,
    extract::{ConnectInfo, Request},
    http::Extensions,
    response::Response,
    Router,
};
use futures_util::{future::Either, task::AtomicWaker};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::conn::auto,
};
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::{
    sync::{CancellationToken, WaitForCancellationFutureOwned},
    task::TaskTracker,
};
use tower::{util::Oneshot, Layer, Service, ServiceExt};

use crate::{
    config::{ConfigError, Env, ServerConfig},
    connection_deadlines::{self, ConnectionActivity, ConnectionDeadlines, Tracked, TrackedBody},
    layers::{Front, FrontLayer},
    protocol_errors::ShapedErrors,
    security::{Security, SecuritySettings},
    shutdown::Shutdown,
};

/// hyper's default HTTP/1 read buffer limit (8 KiB + 100 × 4 KiB).
const HYPER_READ_BUFFER: usize = 8192 + 4096 * 100;

/// A deadline that never comes (thirty years, as tokio's own), for a shutdown timeout too long
/// to add to the clock.
fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + std::time::Duration::from_secs(30 * 365 * 24 * 60 * 60)
}

/// How long a stopping server still waits, once the shutdown deadline has passed and the
/// requests still open are dropped, for the work those requests leave behind (see
/// `leftover_work`): a refund or a freed key is one statement, and a lost one is a credit taken
/// for nothing.
const LEFTOVER_WORK_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// An app ready to serve: its router and its server settings.
///
/// # Example
/// ```no_run
/// use waypost::{axum::Router, App};
///
/// # async fn run() -> std::io::Result<()> {
/// let router = Router::new(); // normally `routes::router(state)`
/// App::new(router).serve().await
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct App {
    router: Router,
    server: ServerConfig,
    /// `None` until given: the defaults are made when serving starts, so an app that brings its
    /// own never makes (and warns about) a throwaway random JWT secret.
    security: Option<Arc<Security>>,
}

impl App {
    /// An app with the default server settings (127.0.0.1:3000).
    pub fn new(router: Router) -> Self {
        Self {
            router,
            server: ServerConfig::default(),
            security: None,
        }
    }

    /// An app whose server settings come from the environment (`HOST`, `PORT`, …).
    ///
    /// # Errors
    /// A variable that is set to something unreadable.
    pub fn from_env(router: Router) -> Result<Self, ConfigError> {
        let env = Env::process();
        Ok(Self {
            router,
            server: ServerConfig::from_env(&env)?,
            security: Some(Arc::new(Security::from_env(&env)?)),
        })
    }

    /// Replaces the security settings and stores (share the same `Arc` with the handlers'
    /// state, so logins and the layers see the same sessions and keys).
    pub fn with_security(mut self, security: Arc<Security>) -> Self {
        self.security = Some(security);
        self
    }

    /// Replaces the server settings.
    pub fn with_server_config(mut self, server: ServerConfig) -> Self {
        self.server = server;
        self
    }

    /// The server settings in force.
    pub fn server_config(&self) -> &ServerConfig {
        &self.server
    }

    /// The whole app as one tower service, front layer included (for in-process tests and
    /// custom servers).
    pub fn into_service(self) -> Front<Router> {
        self.into_front(Shutdown::default())
    }

    /// [`App::into_service`], telling handlers of the server's stop through `shutdown`.
    fn into_front(self, shutdown: Shutdown) -> Front<Router> {
        let security = self.security.unwrap_or_else(|| {
            Arc::new(Security::new(SecuritySettings::default()).expect("the defaults are valid"))
        });
        let front = FrontLayer::new(Some(self.server.body_read_timeout));
        let front = match self.server.min_body_rate {
            Some(rate) => front.with_min_body_rate(rate),
            None => front,
        };
        front
            .with_max_header_bytes(self.server.max_header_bytes)
            .with_security(security)
            .with_shutdown(shutdown)
            .layer(self.router)
    }

    /// Binds `HOST:PORT` and serves until SIGINT or SIGTERM.
    ///
    /// # Errors
    /// The address cannot be bound, or the stop was forced (see
    /// [`serve_with_shutdown`](Self::serve_with_shutdown)).
    pub async fn serve(self) -> io::Result<()> {
        let address = SocketAddr::new(self.server.host, self.server.port);
        let listener = TcpListener::bind(address).await?;
        tracing::info!("listening on http://{}", listener.local_addr()?);
        self.serve_with_shutdown(listener, shutdown_signal()).await
    }

    /// Serves on `listener` until `shutdown` completes, then stops accepting, lets in-flight
    /// requests finish and returns — at the latest after the configured shutdown timeout, when
    /// the requests still open are dropped. Before returning it waits for the work that
    /// unfinished requests left behind (a credit refund, a freed idempotency key, a partial
    /// upload removed): until the deadline, and at least 3 s.
    ///
    /// # Errors
    /// [`io::ErrorKind::TimedOut`] when the stop was forced: the shutdown timeout passed with
    /// connections still open, whose requests were dropped. Everything is cleaned up as
    /// described either way; the error says that some clients lost answers, as Go's
    /// `Server.Shutdown` returns its context's error, so that a process can exit with a failure
    /// status. WebSocket sessions closed at the deadline do not count (they are long-lived by
    /// nature), nor does request work cut short at the deadline: that is counted for the whole
    /// process, and may be another server's.
    pub async fn serve_with_shutdown(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> io::Result<()> {
        let server = self.server.clone();
        // Begun when the server stops accepting: every connection then shuts down as hyper
        // does it gracefully, and handlers that asked for the `Shutdown` hear of it.
        let (stop, handlers_hear) = Shutdown::for_server();
        let stopping = stop.started();
        let service = self.into_front(handlers_hear);
        // HTTP/2 runs each stream — a request's future — in a task of its own, apart from its
        // connection's: tracked, so that stopping waits for them too.
        let streams = StreamTasks(TaskTracker::new());
        let mut template = auto::Builder::new(streams.clone());
        template
            .http1()
            // Kept at the socket instead (see `connection_deadlines`); hyper's own needs a
            // timer, and none is given, but `None` says so whatever hyper's default.
            .header_read_timeout(None)
            // hyper's own read buffer (its default size, or twice the limit when that is more):
            // a header section past the limit but within the buffer reaches the front layer,
            // which answers 431 in the one error shape with the request id.
            .max_buf_size(HYPER_READ_BUFFER.max(2 * server.max_header_bytes));
        template
            .http2()
            .timer(TokioTimer::new())
            // Twice the limit, as for HTTP/1: a header list past the limit but within this reaches
            // the front layer, which answers 431 in the one error shape; past it, h2 refuses the
            // stream with a bare 431 of its own.
            .max_header_list_size(u32::try_from(2 * server.max_header_bytes).unwrap_or(u32::MAX));
        // The open connections' tasks, to wait for them and, past the deadline, to drop them
        // while the runtime still runs.
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Running out of file descriptors must not end the server: back off.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            tune_socket(&stream);
            let activity = ConnectionActivity::new(server.send_timeout);
            let hyper_service = ConnectionService {
                app: RefCell::new(service.for_connection(peer)),
                extensions: connection_extensions(peer),
                activity: activity.clone(),
            };
            let io = ConnectionDeadlines::new(
                ShapedErrors::new(stream, activity.clone()),
                activity.clone(),
                server.header_read_timeout,
            );
            let builder = template.clone();
            let stopping = stopping.clone();
            // Connections that ended leave the set here, so it holds only open ones.
            while connections.try_join_next().is_some() {}
            connections.spawn(async move {
                let connection =
                    builder.serve_connection_with_upgrades(TokioIo::new(io), hyper_service);
                let connection = ClosingWhenTold::new(
                    connection,
                    |connection| connection.graceful_shutdown(),
                    stopping,
                    activity,
                );
                if let Err(error) = connection.await {
                    tracing::debug!(%error, %peer, "connection ended with an error");
                }
            });
        }
        drop(listener);
        tracing::info!("shutting down: waiting for in-flight requests");
        stop.begin();
        // A timeout too long to add to the clock is no deadline at all.
        let deadline = tokio::time::Instant::now()
            .checked_add(server.shutdown_timeout)
            .unwrap_or_else(far_future);
        let all_closed = async { while connections.join_next().await.is_some() {} };
        let closed_in_time = tokio::time::timeout_at(deadline, all_closed).await.is_ok();
        let mut dropped = None;
        if closed_in_time {
            tracing::info!("all connections closed");
        } else {
            let open = connections.len();
            tracing::warn!(timeout = ?server.shutdown_timeout, open, "shutdown deadline passed; dropping open connections");
            dropped = Some(format!(
                "the shutdown timeout ({:?}) passed with {open} connection(s) still open; their requests were dropped",
                server.shutdown_timeout
            ));
            // Dropped here, inside the runtime, the requests still open start what they leave
            // behind (refunds, freed keys, removed partial files), which is waited for below.
            connections.shutdown().await;
        }
        // Sessions (WebSockets) had the same deadline to close; those still open are cut off.
        stop.end_sessions(deadline, LEFTOVER_WORK_GRACE).await;
        // Work a request runs apart from its connection (an idempotent handler whose client
        // left) has until the same deadline; then it is cut short here, inside the runtime, so
        // that what it leaves behind starts and is waited for below.
        let until_deadline = deadline.saturating_duration_since(tokio::time::Instant::now());
        if !crate::leftover_work::request_work_finished_within(until_deadline).await {
            let cut = crate::leftover_work::abort_request_work();
            tracing::warn!(
                tasks = cut,
                "request work still running at the shutdown deadline; cut short"
            );
        }
        let leftover_work_until = if closed_in_time {
            deadline.max(tokio::time::Instant::now() + LEFTOVER_WORK_GRACE)
        } else {
            tokio::time::Instant::now() + LEFTOVER_WORK_GRACE
        };
        // An HTTP/2 stream's task ends soon after its connection is gone, dropping its request.
        streams.0.close();
        if tokio::time::timeout_at(leftover_work_until, streams.0.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                streams = streams.0.len(),
                "HTTP/2 streams still running after their connections closed"
            );
        }
        let leftover_work_limit =
            leftover_work_until.saturating_duration_since(tokio::time::Instant::now());
        if !crate::leftover_work::finished_within(leftover_work_limit).await {
            tracing::warn!(
                tasks = crate::leftover_work::unfinished(),
                "work left by unfinished requests did not finish in time and is abandoned"
            );
        }
        match dropped {
            Some(message) => Err(io::Error::new(io::ErrorKind::TimedOut, message)),
            None => Ok(()),
        }
    }
}

pin_project_lite::pin_project! {
    /// A connection that shuts down as hyper does it gracefully — a GOAWAY on HTTP/2, closed
    /// once its exchange is done on HTTP/1 — when the server stops, or when its socket finds an
    /// HTTP/2 connection idle too long (see `connection_deadlines`). Watching costs an atomic
    /// load or two per wake-up: the server's signal is polled only after it has fired, not on
    /// every request (a `select!` on it took about 280 instructions a request).
    struct ClosingWhenTold<C, F> {
        #[pin]
        connection: C,
        shutdown: F,
        stopped: Pin<Box<WaitForCancellationFutureOwned>>,
        stop_signal: Arc<StopSignal>,
        activity: Arc<ConnectionActivity>,
        closing: bool,
    }
}

impl<C, F: FnMut(Pin<&mut C>)> ClosingWhenTold<C, F> {
    fn new(
        connection: C,
        shutdown: F,
        stopping: CancellationToken,
        activity: Arc<ConnectionActivity>,
    ) -> Self {
        Self {
            connection,
            shutdown,
            stopped: Box::pin(stopping.cancelled_owned()),
            // Fired, so that the first poll registers for the signal.
            stop_signal: Arc::new(StopSignal {
                fired: AtomicBool::new(true),
                task: AtomicWaker::new(),
            }),
            activity,
            closing: false,
        }
    }
}

impl<C: Future, F: FnMut(Pin<&mut C>)> Future for ClosingWhenTold<C, F> {
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<C::Output> {
        let mut this = self.project();
        if !*this.closing {
            this.stop_signal.task.register(cx.waker());
            if this.stop_signal.fired.swap(false, Ordering::Acquire) {
                let waker = Waker::from(this.stop_signal.clone());
                let mut context = std::task::Context::from_waker(&waker);
                if this.stopped.as_mut().poll(&mut context).is_ready() {
                    *this.closing = true;
                    (this.shutdown)(this.connection.as_mut());
                }
            }
        }
        let polled = this.connection.as_mut().poll(cx);
        // The socket notes an idle HTTP/2 connection while the connection reads from it.
        if polled.is_pending() && !*this.closing && this.activity.take_idle() {
            *this.closing = true;
            (this.shutdown)(this.connection.as_mut());
            return this.connection.poll(cx);
        }
        polled
    }
}

/// The executor hyper starts HTTP/2 streams' tasks with: tokio's, each task tracked.
#[derive(Clone)]
struct StreamTasks(TaskTracker);

impl<F> hyper::rt::Executor<F> for StreamTasks
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        self.0.spawn(future);
    }
}

/// Wakes a connection's task when the server stops, and notes that it did.
struct StopSignal {
    fired: AtomicBool,
    task: AtomicWaker,
}

impl Wake for StopSignal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// The app as one connection's hyper service: the app is cloned once per connection, not per
/// request, and called in place. A router is always ready (axum's `Router` says so), so
/// readiness is checked once without waiting, which saves moving every request and its future
/// through tower's `Oneshot`; an app that is not ready is called through one.
struct ConnectionService<S> {
    app: RefCell<S>,
    /// What every request of the connection starts with in its extensions (see
    /// [`connection_extensions`]).
    extensions: Extensions,
    /// Told of each request and of when its response is done (see `connection_deadlines`).
    activity: Arc<ConnectionActivity>,
}

impl<S> hyper::service::Service<Request<Incoming>> for ConnectionService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone,
{
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = Tracked<Either<S::Future, Oneshot<S, Request>>>;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        let version = request.version();
        let is_connect = request.method() == axum::http::Method::CONNECT;
        request.extensions_mut().extend(self.extensions.clone());
        let request = request.map(Body::new);
        let mut app = self.app.borrow_mut();
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        let future = match app.poll_ready(&mut context) {
            std::task::Poll::Ready(Ok(())) => Either::Left(app.call(request)),
            _ => Either::Right(app.clone().oneshot(request)),
        };
        connection_deadlines::track(&self.activity, version, is_connect, future)
    }
}

/// A connection's template for its requests' extensions: `ConnectInfo` with the peer's address,
/// in a map with room for seven entries.
///
/// Routing adds three entries of axum's own (`OriginalUri`, `MatchedPath`, the path parameters),
/// so a map that starts with `ConnectInfo` in the default room for three would grow, rehashing,
/// on every request. A clone keeps the template's room, and costs what building the map did.
fn connection_extensions(peer: SocketAddr) -> Extensions {
    /// Entries that only make room: the map grows as they go in, and keeps its size when they
    /// are taken out again.
    #[derive(Clone, Copy)]
    struct Room<const N: usize>;
    let mut extensions = Extensions::new();
    extensions.insert(ConnectInfo(peer));
    extensions.insert(Room::<1>);
    extensions.insert(Room::<2>);
    extensions.insert(Room::<3>);
    extensions.remove::<Room<1>>();
    extensions.remove::<Room<2>>();
    extensions.remove::<Room<3>>();
    extensions
}

/// How much unsent data an accepted socket holds before writes wait (see [`tune_socket`]).
const UNSENT_LOW_WATER_MARK: u32 = 16 * 1024;

/// Sets an accepted socket's options: `TCP_NODELAY`, as answers are written whole; and, on
/// Linux, `TCP_NOTSENT_LOWAT`, so that a write waits only while 16 KiB are queued unsent, not
/// the megabytes the kernel lets the buffer grow to. A slow reader then frees room within
/// seconds — at 240 bytes a second, 8 KiB in half a minute — and the send timeout, which
/// watches for a write to get through, tells it from a client that takes nothing; without it,
/// a download to a reader at 20 KB/s waited over a minute for room (the kernel says a full
/// buffer is writable again only once a third of it has gone). Data in flight is not limited,
/// so throughput is not either.
pub(crate) fn tune_socket(stream: &tokio::net::TcpStream) {
    let _ = stream.set_nodelay(true);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let socket = socket2::SockRef::from(stream);
        if let Err(error) = socket.set_tcp_notsent_lowat(UNSENT_LOW_WATER_MARK) {
            tracing::debug!(%error, "TCP_NOTSENT_LOWAT not set");
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Installs a `tracing` subscriber that prints to stderr, filtered by `RUST_LOG` (default
/// `info`). Safe to call more than once.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_sockets_send_at_once_and_hold_little_unsent_data() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap());
        let ((accepted, _), _client) = tokio::try_join!(listener.accept(), client).unwrap();
        tune_socket(&accepted);
        assert!(accepted.nodelay().unwrap());
        #[cfg(any(target_os = "linux", target_os = "android"))]
        assert_eq!(
            socket2::SockRef::from(&accepted)
                .tcp_notsent_lowat()
                .unwrap(),
            UNSENT_LOW_WATER_MARK
        );
    }
}
