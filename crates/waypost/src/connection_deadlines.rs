//! A connection's deadlines, kept at the socket: the header-read timeout (a connection waiting
//! for a request head — since it opened, or since its last response went out — has the
//! configured time for the whole head, then is closed: the slowloris defence, and the keep-alive
//! idle limit) and the send timeout (a client that takes none of the response data waiting for
//! it, for that long, is cut off: the defence against slow readers).
//!
//! hyper has a header-read timeout built in, but asking for it sends hyper's connection loop
//! round once more after every response, only to start the timer: about a thousand instructions
//! a request, a twentieth of the cost of a small answer. Here the connection's service notes each
//! request that reaches the app, and each response body notes when hyper is done with it and
//! whether hyper owes it a poll ([`ConnectionActivity`]); the socket wrapper
//! [`ConnectionDeadlines`] looks at the clock only when its one tokio sleep fires, and then either
//! closes a connection past a deadline or re-arms the sleep. So a request costs a few atomic
//! counts and a clock read, and the timer wheel is touched about once per period per connection.
//!
//! As with hyper's own, the head's time runs only while no request is in flight: a slow handler,
//! a long stream or a large download to a slow reader never trips it. An HTTP/2 connection has
//! the same time as its idle limit (hyper has none, and a client answering pings would otherwise
//! hold it for ever): with no stream in flight and no DATA going out for that long, its task
//! (`app.rs`) is told to shut it down as hyper does gracefully — a GOAWAY, and the streams
//! already received are answered — and a client that keeps it open past one more period is cut
//! off. (DATA counts because hyper hands a body's last frame to h2 at once: the stream is over
//! for hyper while h2 still sends it, as slowly as the client's window allows.)
//!
//! The send timeout runs only while response data waits for the client: an HTTP/1 socket that
//! stays full (hyper's writes find no room), or a response body hyper owes a poll but does not
//! ask for more of (HTTP/2 flow control: the client keeps the stream's window shut). Each firing
//! of the sleep checks for progress since the last — a write through, a frame taken, DATA bytes
//! written (the socket wrapper follows HTTP/2's frame headers to count them, so answered pings
//! are no progress) — so it
//! bounds the pause, not the whole response, as nginx's `send_timeout` does. A stream with
//! nothing to send is waiting for its producer, not for the client, and is never cut.
//!
//! Upgraded connections (WebSocket) and CONNECT tunnels wait for no head once a request shows
//! what they are; the send timeout still cuts one whose peer leaves its socket full.

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
    /// HTTP/2 response bodies whose next move is hyper's: not polled yet, or their last poll
    /// gave a frame. One that stays so while no frame goes out is held up by the client (flow
    /// control); a body waiting for its producer (a quiet stream) is not counted.
    owed_polls: AtomicU32,
    /// Frames the connection's HTTP/2 response bodies have handed to hyper (wrapping): the
    /// progress the send timeout looks for.
    frames_taken: AtomicU32,
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
            owed_polls: AtomicU32::new(0),
            frames_taken: AtomicU32::new(0),
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
        // An HTTP/2 stream, whose body's polls the send timeout watches.
        multiplexed: bool,
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
    let multiplexed = version == Version::HTTP_2;
    if multiplexed {
        activity.multiplexed.store(true, Ordering::Relaxed);
    }
    activity.in_flight.fetch_add(1, Ordering::Relaxed);
    Tracked {
        future,
        done: Some(Done(activity.clone())),
        is_connect,
        multiplexed,
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
        let multiplexed = *this.multiplexed;
        Poll::Ready(Ok(response.map(|body| {
            let mut tracked = TrackedBody {
                body,
                done,
                counts_polls: multiplexed,
                owed: false,
            };
            // Not polled yet: hyper's move.
            tracked.set_owed(true);
            tracked
        })))
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

/// A response body that tells its connection when hyper drops it — once its last frame is
/// written, or the exchange is abandoned — and, on HTTP/2, whether hyper owes it a poll (see
/// [`ConnectionActivity`]'s `owed_polls`). On HTTP/1 a client that takes nothing shows as a
/// full socket, so the body's polls are not counted: no cost on the common path.
#[derive(Debug)]
pub(crate) struct TrackedBody {
    body: Body,
    /// Told when the body is dropped.
    done: Option<Done>,
    /// Whether this body's polls are counted (HTTP/2).
    counts_polls: bool,
    /// Whether this body is counted in `owed_polls`.
    owed: bool,
}

impl TrackedBody {
    /// Counts the body in or out of the connection's owed polls.
    #[inline]
    fn set_owed(&mut self, owed: bool) {
        if !self.counts_polls || self.owed == owed {
            return;
        }
        self.owed = owed;
        if let Some(Done(activity)) = &self.done {
            if owed {
                activity.owed_polls.fetch_add(1, Ordering::Relaxed);
            } else {
                activity.owed_polls.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        self.set_owed(false);
    }
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    #[inline]
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if self.counts_polls {
            match &polled {
                Poll::Ready(Some(Ok(_))) => {
                    if let Some(Done(activity)) = &self.done {
                        activity.frames_taken.fetch_add(1, Ordering::Relaxed);
                    }
                    self.set_owed(true);
                }
                // Waiting for its producer, or over: nothing is owed.
                _ => self.set_owed(false),
            }
        }
        polled
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
    /// header-read timeout allows, or its client has taken no response data for the send
    /// timeout.
    #[derive(Debug)]
    pub(crate) struct ConnectionDeadlines<T> {
        #[pin]
        io: T,
        watch: Watch,
    }
}

impl<T> ConnectionDeadlines<T> {
    /// `io`, closed when it waits for a head longer than `header_read` allows, or when its
    /// client takes no response data for `send` (`None`: no such limit).
    pub(crate) fn new(
        io: T,
        activity: Arc<ConnectionActivity>,
        header_read: Option<Duration>,
        send: Option<Duration>,
    ) -> Self {
        Self {
            io,
            watch: Watch {
                activity,
                timeout: header_read,
                send_timeout: send,
                sleep: None,
                registered: None,
                write_blocked: false,
                progress: Progress::default(),
                frames: FrameScan::default(),
                stalled_since: None,
                told_idle: false,
            },
        }
    }
}

/// Why the watch closes a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cut {
    /// No request head within the header-read timeout.
    NoHead,
    /// Response data waiting to go out, and the client took none of it within the send timeout.
    SendStalled,
}

impl Cut {
    fn into_error(self) -> io::Error {
        let message = match self {
            Cut::NoHead => "no request head within the header-read timeout",
            Cut::SendStalled => "the client took no response data within the send timeout",
        };
        tracing::debug!("{message}: closing");
        io::Error::new(io::ErrorKind::TimedOut, message)
    }
}

/// The deadline's state, beside the socket.
#[derive(Debug)]
struct Watch {
    activity: Arc<ConnectionActivity>,
    /// The header-read timeout.
    timeout: Option<Duration>,
    /// The send timeout.
    send_timeout: Option<Duration>,
    /// Armed no later than the next deadline whenever the connection may be waiting for a head
    /// or for its client to take data; created by the first read or write that cannot go on.
    sleep: Option<Pin<Box<Sleep>>>,
    /// The waker the sleep's last poll registered: while it has not fired, polling it again for
    /// the same task would only register the same waker again.
    registered: Option<Waker>,
    /// Whether the last write found the socket full: a response still going out, however
    /// slowly the client reads it, is not a wait for a head.
    write_blocked: bool,
    /// What went out since the sleep last fired.
    progress: Progress,
    /// The frames of an HTTP/2 connection's writes, followed to count the data among them.
    frames: FrameScan,
    /// When the sleep first found the response stalled (no write through a full socket, or no
    /// frame taken from a body hyper owes a poll), with no progress since.
    stalled_since: Option<Instant>,
    /// Whether an idle HTTP/2 connection's task has been told to shut it down.
    told_idle: bool,
}

/// What went out on a connection between two firings of its watch's sleep.
#[derive(Debug, Default)]
struct Progress {
    /// Whether a write got through.
    wrote: bool,
    /// The connection's `frames_taken` when the sleep last fired.
    frames_seen: u32,
    /// The HTTP/2 DATA bytes written when the sleep last fired.
    data_seen: u64,
}

/// Follows the frames of what the server writes on an HTTP/2 connection (RFC 9113 §4.1: a
/// nine-byte header whose first three bytes are the payload's length and fourth its type) and
/// counts the bytes of DATA frames: response data the client let through. Pings answered, and
/// any other frame, are no such progress. An HTTP/1 connection's first write is a status line
/// (`H`), an HTTP/2 one's a SETTINGS frame (its length's high byte, 0): that first byte decides,
/// and on HTTP/1 nothing more is looked at.
#[derive(Debug, Default)]
struct FrameScan {
    state: ScanState,
    /// DATA payload bytes written so far.
    data_bytes: u64,
}

#[derive(Debug, Default)]
enum ScanState {
    /// Nothing written yet.
    #[default]
    Undecided,
    /// HTTP/1 (or an upgraded protocol): not frames.
    NotFrames,
    /// Within HTTP/2 frames.
    Frames {
        /// The next frame's header, as far as it has been written.
        header: [u8; 9],
        header_len: usize,
        /// Payload bytes of the current frame still to come.
        payload_left: usize,
        /// Whether the current frame is a DATA frame.
        is_data: bool,
    },
}

impl FrameScan {
    /// Follows `written`, the bytes the socket took.
    #[inline]
    fn follow(&mut self, mut written: &[u8]) {
        while !written.is_empty() {
            match &mut self.state {
                ScanState::NotFrames => return,
                ScanState::Undecided => {
                    self.state = if written[0] == b'H' {
                        ScanState::NotFrames
                    } else {
                        ScanState::Frames {
                            header: [0; 9],
                            header_len: 0,
                            payload_left: 0,
                            is_data: false,
                        }
                    };
                }
                ScanState::Frames {
                    header,
                    header_len,
                    payload_left,
                    is_data,
                } => {
                    if *payload_left > 0 {
                        let taken = (*payload_left).min(written.len());
                        if *is_data {
                            self.data_bytes += taken as u64;
                        }
                        *payload_left -= taken;
                        written = &written[taken..];
                        continue;
                    }
                    let taken = (header.len() - *header_len).min(written.len());
                    header[*header_len..*header_len + taken].copy_from_slice(&written[..taken]);
                    *header_len += taken;
                    written = &written[taken..];
                    if *header_len == header.len() {
                        *header_len = 0;
                        *payload_left = usize::from(header[0]) << 16
                            | usize::from(header[1]) << 8
                            | usize::from(header[2]);
                        *is_data = header[3] == 0;
                    }
                }
            }
        }
    }

    /// Follows the first `written` bytes of `bufs`.
    fn follow_vectored(&mut self, bufs: &[IoSlice<'_>], mut written: usize) {
        for buf in bufs {
            if written == 0 || matches!(self.state, ScanState::NotFrames) {
                return;
            }
            let taken = buf.len().min(written);
            self.follow(&buf[..taken]);
            written -= taken;
        }
    }
}

impl Progress {
    /// Whether, since the sleep last fired, the response has been held up by the client: the
    /// socket stayed full, or an HTTP/2 body that hyper owes a poll had no frame taken and no
    /// DATA went out (flow control keeps hyper from sending while the client's window is shut;
    /// the client may still make the server write, answering its pings, so only DATA counts).
    /// A body waiting for its producer — a quiet stream — is not held up.
    fn is_stalled(
        &mut self,
        activity: &ConnectionActivity,
        write_blocked: bool,
        data_written: u64,
    ) -> bool {
        let frames = activity.frames_taken.load(Ordering::Relaxed);
        let socket_full = write_blocked && !self.wrote;
        // A body's one large frame goes out over many DATA frames, as the client's window
        // allows: those count as much as a frame taken.
        let body_held = frames == self.frames_seen
            && data_written == self.data_seen
            && activity.owed_polls.load(Ordering::Relaxed) > 0;
        self.wrote = false;
        self.frames_seen = frames;
        self.data_seen = data_written;
        socket_full || body_held
    }
}

impl Watch {
    /// Called when a read or a write cannot go on: whether the connection is past one of its
    /// deadlines, and which. If not, the task is woken when it might be.
    fn past_deadline(&mut self, cx: &mut Context<'_>) -> Option<Cut> {
        let period = match (self.timeout, self.send_timeout) {
            (None, None) => return None,
            (Some(timeout), None) | (None, Some(timeout)) => timeout,
            (Some(header_read), Some(send)) => header_read.min(send),
        };
        // An upgraded connection or a tunnel waits for no head: only a write that finds its
        // socket full is watched (a WebSocket peer that stopped reading).
        let exempt = self.activity.exempt.load(Ordering::Relaxed);
        if exempt && (self.send_timeout.is_none() || !self.write_blocked) {
            return None;
        }
        let sleep = match &mut self.sleep {
            Some(sleep) => {
                let registered = self.registered.as_ref();
                if !sleep.is_elapsed() && registered.is_some_and(|w| w.will_wake(cx.waker())) {
                    return None;
                }
                sleep
            }
            None => {
                let first = Instant::now() + period;
                let first = match self.timeout {
                    Some(timeout) => first.min(self.activity.waiting_since() + timeout),
                    None => first,
                };
                self.sleep.insert(Box::pin(tokio::time::sleep_until(first)))
            }
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
                    return None;
                }
                Poll::Ready(()) => {
                    // The one place the clock is read: the sleep fired, so a deadline may have
                    // passed, or moved on since the sleep was armed.
                    let now = Instant::now();
                    // HTTP/2 data still going out keeps a connection from being idle, though no
                    // stream is in flight: hyper hands a body's last frame to h2 at once, and
                    // h2 sends it as the client's window allows, long after.
                    let data_moved = self.frames.data_bytes != self.progress.data_seen;
                    if data_moved {
                        self.activity.note_progress();
                    }
                    let busy = self.write_blocked || self.activity.is_busy() || data_moved;
                    let stalled = busy
                        && self.progress.is_stalled(
                            &self.activity,
                            self.write_blocked,
                            self.frames.data_bytes,
                        );
                    let mut next = now + period;
                    match (self.send_timeout, stalled) {
                        (Some(send), true) => {
                            let since = *self.stalled_since.get_or_insert(now);
                            if since + send <= now {
                                return Some(Cut::SendStalled);
                            }
                            next = next.min(since + send);
                        }
                        _ => self.stalled_since = None,
                    }
                    if let (Some(timeout), false, false) = (self.timeout, busy, exempt) {
                        let deadline = self.activity.waiting_since() + timeout;
                        if deadline <= now {
                            if !self.activity.multiplexed.load(Ordering::Relaxed) || self.told_idle
                            {
                                return Some(Cut::NoHead);
                            }
                            // HTTP/2: a GOAWAY rather than a cut, so a stream whose frames have
                            // just arrived is still answered. One more period to close.
                            self.told_idle = true;
                            self.activity.idle.store(true, Ordering::Relaxed);
                        } else {
                            next = next.min(deadline);
                        }
                    }
                    sleep.as_mut().reset(next);
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
        } else {
            self.progress.wrote = true;
            if self.write_blocked {
                self.write_blocked = false;
                self.activity.note_progress();
            }
        }
    }

    /// Notes how a write went, and when it could not go on, whether the client has taken
    /// nothing for too long.
    #[inline]
    fn after_write<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        self.note_write(&polled);
        self.cut_if_past_deadline(cx, polled)
    }

    /// `polled`, or when it could not go on and the connection is past a deadline, the error
    /// that closes it.
    #[inline]
    fn cut_if_past_deadline<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        if polled.is_pending() {
            if let Some(cut) = self.past_deadline(cx) {
                return Poll::Ready(Err(cut.into_error()));
            }
        }
        polled
    }
}

impl<T: AsyncRead> AsyncRead for ConnectionDeadlines<T> {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let polled = this.io.poll_read(cx, buf);
        this.watch.cut_if_past_deadline(cx, polled)
    }
}

impl<T: AsyncWrite> AsyncWrite for ConnectionDeadlines<T> {
    #[inline]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let polled = this.io.poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = polled {
            this.watch.frames.follow(&buf[..written]);
        }
        this.watch.after_write(cx, polled)
    }

    #[inline]
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let polled = this.io.poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(written)) = polled {
            this.watch.frames.follow_vectored(bufs, written);
        }
        this.watch.after_write(cx, polled)
    }

    #[inline]
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    #[inline]
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let polled = this.io.poll_flush(cx);
        this.watch.after_write(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let length = u32::try_from(payload.len()).unwrap().to_be_bytes();
        let mut frame = length[1..].to_vec();
        frame.extend([kind, 0, 0, 0, 0, 1]);
        frame.extend(payload);
        frame
    }

    #[test]
    fn http2_writes_count_their_data_bytes_however_they_are_split() {
        let mut written = frame(0x4, &[0, 3, 0, 0, 0, 100]);
        written.extend(frame(0x0, b"hello"));
        written.extend(frame(0x6, &[7; 8]));
        written.extend(frame(0x1, &[0x88]));
        written.extend(frame(0x0, &[b'x'; 70_000]));
        for piece in [1, 2, 7, 9, 10, 4096, written.len()] {
            let mut scan = FrameScan::default();
            for chunk in written.chunks(piece) {
                scan.follow(chunk);
            }
            assert_eq!(scan.data_bytes, 70_005, "in pieces of {piece}");
        }
        // Vectored: only the bytes the socket took.
        let mut scan = FrameScan::default();
        let (head, tail) = written.split_at(20);
        scan.follow_vectored(&[IoSlice::new(head), IoSlice::new(tail)], 25);
        // SETTINGS (15 bytes), the DATA frame's header (9) and one byte of "hello".
        assert_eq!(scan.data_bytes, 1);
    }

    #[test]
    fn http1_writes_are_not_frames() {
        let mut scan = FrameScan::default();
        scan.follow(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n\0\0\0\0\0");
        scan.follow(&frame(0x0, b"not data"));
        assert_eq!(scan.data_bytes, 0);
        assert!(matches!(scan.state, ScanState::NotFrames));
    }
}
