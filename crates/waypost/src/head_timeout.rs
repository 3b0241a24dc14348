//! The HTTP/1 header-read timeout, kept at the socket: a connection waiting for a request head —
//! since it opened, or since its last response went out — has the configured time for the whole
//! head, then is closed (the slowloris defence, and the keep-alive idle limit).
//!
//! hyper has this timeout built in, but asking for it sends hyper's connection loop round once
//! more after every response, only to start the timer: about a thousand instructions a request,
//! a twentieth of the cost of a small answer. Here the connection's service notes each request
//! that reaches the app, and each response body notes when hyper is done with it
//! ([`ConnectionActivity`]); the socket wrapper [`HeadDeadline`] looks at the clock only when
//! its one tokio sleep fires, and then either closes a connection that has waited too long or
//! re-arms the sleep for the moment it would have. So a request costs two atomic counts and a
//! clock read, and the timer wheel is touched about once per timeout period per connection.
//!
//! As with hyper's own, the time runs only while no request is in flight: a slow handler, a long
//! stream or a large download to a slow reader never trips it. An HTTP/2 connection has the same
//! time as its idle limit (hyper has none, and a client answering pings would otherwise hold it
//! for ever): with no stream in flight for that long, its task (`app.rs`) is told to shut it
//! down as hyper does gracefully — a GOAWAY, and the streams already received are answered —
//! and a client that keeps it open past one more period is cut off. Upgraded connections
//! (WebSocket) and CONNECT tunnels are left alone once a request shows what they are.

use std::{
    future::Future,
    io::{self, IoSlice},
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
        Arc,
    },
    task::{Context, Poll, Waker},
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    http::{StatusCode, Version},
    response::Response,
};
use pin_project_lite::pin_project;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::{Instant, Sleep},
};

/// What a connection's service and response bodies tell its socket: whether a request is in
/// flight, and since when none has been.
#[derive(Debug)]
pub(crate) struct ConnectionActivity {
    opened: Instant,
    /// Requests (HTTP/1) or streams (HTTP/2) whose response body hyper still holds.
    in_flight: AtomicU32,
    /// When the last response was done, in nanoseconds after `opened`.
    last_done: AtomicU64,
    /// Upgraded to another protocol or a CONNECT tunnel: there is no next request to wait for.
    exempt: AtomicBool,
    /// HTTP/2: the idle limit applies, but hyper's writes are frames, never a bare HTTP/1 head.
    multiplexed: AtomicBool,
    /// Set when an HTTP/2 connection has had no stream for the timeout, for its task to shut
    /// it down.
    idle: AtomicBool,
}

impl ConnectionActivity {
    /// The activity of a connection opened now.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            opened: Instant::now(),
            in_flight: AtomicU32::new(0),
            last_done: AtomicU64::new(0),
            exempt: AtomicBool::new(false),
            multiplexed: AtomicBool::new(false),
            idle: AtomicBool::new(false),
        })
    }

    /// Whether the connection is plain HTTP/1 with no request in flight: whatever hyper
    /// writes next, once it has written out all it held, starts a new answer (see
    /// `protocol_errors`).
    #[inline]
    pub(crate) fn is_between_exchanges(&self) -> bool {
        !self.is_busy()
            && !self.exempt.load(Ordering::Relaxed)
            && !self.multiplexed.load(Ordering::Relaxed)
    }

    /// Whether an HTTP/2 connection has had no stream in flight for the header-read timeout
    /// (once: the connection's task then shuts it down gracefully).
    #[inline]
    pub(crate) fn take_idle(&self) -> bool {
        self.idle.load(Ordering::Relaxed) && self.idle.swap(false, Ordering::Relaxed)
    }

    fn response_done(&self) {
        // The time first: an HTTP/2 stream ends on a task of its own, and the connection's task,
        // seeing the count drop (Acquire), must see this stream's end too.
        self.note_progress();
        self.in_flight.fetch_sub(1, Ordering::Release);
    }

    /// Restarts the wait for the next head from now.
    fn note_progress(&self) {
        let since_opened = Instant::now().saturating_duration_since(self.opened);
        self.last_done.store(
            u64::try_from(since_opened.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn is_busy(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
    }

    fn waiting_since(&self) -> Instant {
        self.opened + Duration::from_nanos(self.last_done.load(Ordering::Relaxed))
    }
}

pin_project! {
    /// The future of a request that reached the app: its response, with a body that tells the
    /// connection when hyper is done with it.
    pub(crate) struct Tracked<F> {
        #[pin]
        future: F,
        // Moved into the body; dropped with the future if the exchange is abandoned first.
        done: Option<Done>,
        // A CONNECT, which a 2xx answer turns into a tunnel, as a 101 upgrades a connection.
        is_connect: bool,
    }
}

/// Notes a request that reached the app, and tracks `future`, which answers it.
#[inline]
pub(crate) fn track<F>(
    activity: &Arc<ConnectionActivity>,
    version: Version,
    is_connect: bool,
    future: F,
) -> Tracked<F> {
    if version == Version::HTTP_2 {
        activity.multiplexed.store(true, Ordering::Relaxed);
    }
    activity.in_flight.fetch_add(1, Ordering::Relaxed);
    Tracked {
        future,
        done: Some(Done(activity.clone())),
        is_connect,
    }
}

impl<F, E> Future for Tracked<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response<TrackedBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = std::task::ready!(this.future.poll(cx))?;
        let done = this.done.take();
        // hyper hands the socket over after a 101, and after a 2xx to a CONNECT: what follows
        // is another protocol's bytes (RFC 9110 §9.3.6), not the next request.
        if response.status() == StatusCode::SWITCHING_PROTOCOLS
            || (*this.is_connect && response.status().is_success())
        {
            if let Some(Done(activity)) = &done {
                activity.exempt.store(true, Ordering::Relaxed);
            }
        }
        Poll::Ready(Ok(response.map(|body| TrackedBody { body, _done: done })))
    }
}

/// Tells the connection its response is done when dropped.
#[derive(Debug)]
struct Done(Arc<ConnectionActivity>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.response_done();
    }
}

/// A response body that tells its connection when hyper drops it: once its last frame is
/// written, or the exchange is abandoned.
#[derive(Debug)]
pub(crate) struct TrackedBody {
    body: Body,
    /// Held only to be dropped with the body.
    _done: Option<Done>,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    #[inline]
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    #[inline]
    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

pin_project! {
    /// A connection's socket, closed when it has waited for a request head longer than the
    /// timeout allows.
    #[derive(Debug)]
    pub(crate) struct HeadDeadline<T> {
        #[pin]
        io: T,
        watch: Watch,
    }
}

impl<T> HeadDeadline<T> {
    /// `io`, closed when it waits for a head longer than `timeout` (`None`: no limit).
    pub(crate) fn new(io: T, activity: Arc<ConnectionActivity>, timeout: Option<Duration>) -> Self {
        Self {
            io,
            watch: Watch {
                activity,
                timeout,
                sleep: None,
                registered: None,
                write_blocked: false,
                told_idle: false,
            },
        }
    }
}

/// The deadline's state, beside the socket.
#[derive(Debug)]
struct Watch {
    activity: Arc<ConnectionActivity>,
    timeout: Option<Duration>,
    /// Armed no later than the deadline whenever the connection may be waiting for a head;
    /// created by the first read that finds nothing.
    sleep: Option<Pin<Box<Sleep>>>,
    /// The waker the sleep's last poll registered: while it has not fired, polling it again for
    /// the same task would only register the same waker again.
    registered: Option<Waker>,
    /// Whether the last write found the socket full: a response still going out, however
    /// slowly the client reads it, is not a wait for a head.
    write_blocked: bool,
    /// Whether an idle HTTP/2 connection's task has been told to shut it down.
    told_idle: bool,
}

impl Watch {
    /// Called when a read finds nothing: whether the connection has waited for a head past the
    /// timeout. If not, the task is woken when it might have.
    fn has_waited_too_long(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(timeout) = self.timeout else {
            return false;
        };
        if self.activity.exempt.load(Ordering::Relaxed) {
            return false;
        }
        let sleep = match &mut self.sleep {
            Some(sleep) => {
                let registered = self.registered.as_ref();
                if !sleep.is_elapsed() && registered.is_some_and(|w| w.will_wake(cx.waker())) {
                    return false;
                }
                sleep
            }
            None => self.sleep.insert(Box::pin(tokio::time::sleep_until(
                self.activity.waiting_since() + timeout,
            ))),
        };
        loop {
            // Unconstrained by tokio's co-operative budget: a sleep polled by a task out of
            // budget answers `Pending` without registering, and the cached waker above would
            // then wait for a wake that never comes.
            let polled = std::pin::pin!(tokio::task::unconstrained(sleep.as_mut())).poll(cx);
            match polled {
                Poll::Pending => {
                    if !self
                        .registered
                        .as_ref()
                        .is_some_and(|w| w.will_wake(cx.waker()))
                    {
                        self.registered = Some(cx.waker().clone());
                    }
                    return false;
                }
                Poll::Ready(()) => {
                    // The one place the clock is read: the sleep fired, so the deadline may
                    // have passed, or moved on since the sleep was armed.
                    let now = Instant::now();
                    let deadline = if self.write_blocked || self.activity.is_busy() {
                        now + timeout
                    } else {
                        self.activity.waiting_since() + timeout
                    };
                    if deadline <= now {
                        if !self.activity.multiplexed.load(Ordering::Relaxed) || self.told_idle {
                            return true;
                        }
                        // HTTP/2: a GOAWAY rather than a cut, so a stream whose frames have
                        // just arrived is still answered. One more period to close.
                        self.told_idle = true;
                        self.activity.idle.store(true, Ordering::Relaxed);
                        sleep.as_mut().reset(now + timeout);
                        continue;
                    }
                    sleep.as_mut().reset(deadline);
                }
            }
        }
    }

    /// Notes how a write went: one that got through after the socket was full restarts the
    /// wait from now, as the tail of a large response may go out long after hyper took it.
    #[inline]
    fn note_write<R>(&mut self, polled: &Poll<R>) {
        if polled.is_pending() {
            self.write_blocked = true;
        } else if self.write_blocked {
            self.write_blocked = false;
            self.activity.note_progress();
        }
    }
}

impl<T: AsyncRead> AsyncRead for HeadDeadline<T> {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let polled = this.io.poll_read(cx, buf);
        if polled.is_pending() && this.watch.has_waited_too_long(cx) {
            tracing::debug!("no request head within the header-read timeout: closing");
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no request head within the header-read timeout",
            )));
        }
        polled
    }
}

impl<T: AsyncWrite> AsyncWrite for HeadDeadline<T> {
    #[inline]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let polled = this.io.poll_write(cx, buf);
        this.watch.note_write(&polled);
        polled
    }

    #[inline]
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let polled = this.io.poll_write_vectored(cx, bufs);
        this.watch.note_write(&polled);
        polled
    }

    #[inline]
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    #[inline]
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let polled = this.io.poll_flush(cx);
        this.watch.note_write(&polled);
        polled
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }
}
