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
//! The send timeout runs only while response data waits for the client. On HTTP/1 that is a
//! socket that stays full: no write gets through for the timeout, as nginx's `send_timeout` (it
//! bounds the pause, not the whole response) — or longer, up to four times it, when the socket
//! took more before it filled than a reader at 240 bytes a second gets through in the timeout
//! (a receiver reopens a shut window only once much of its buffer is free). On HTTP/2 the
//! socket rarely fills — flow control holds the data back instead — so each response body notes
//! when it hands hyper a frame, and hyper must come back for the next within the timeout; past
//! it, the connection must be sending DATA at 240 bytes a second or more (ASP.NET Core's
//! minimum response rate: a few cheap answers on other streams, or answered pings, do not hold
//! a stream open), and the frame must be out by the time that rate gives its bytes. The socket
//! wrapper follows HTTP/2's frame headers to count DATA bytes. A body hands hyper at most 16
//! KiB at a time, so an answer built in one piece stays watched until its last piece is out. A
//! body waiting for its producer — a quiet stream — is never held against the client. (On
//! HTTP/1 the accepted socket holds at most 16 KiB unsent, `TCP_NOTSENT_LOWAT`, see `app.rs`: a
//! slow reader frees room within seconds, where the kernel would otherwise wait for megabytes
//! to drain.)
//!
//! Upgraded connections (WebSocket) and CONNECT tunnels wait for no head once a request shows
//! what they are; the send timeout still cuts one whose peer leaves its socket full.

use std::{
    future::Future,
    io::{self, IoSlice},
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
        Arc, Mutex,
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
    /// The send timeout.
    send_timeout: Option<Duration>,
    /// The HTTP/2 response bodies of the connection, each with the time by which hyper must
    /// come back to it (see [`OwedBodies`]).
    owed_bodies: Mutex<OwedBodies>,
}

/// The lowest rate at which an HTTP/2 client must take response data (ASP.NET Core's
/// `MinResponseDataRate`, 240 bytes a second): once a body has waited the send timeout for
/// hyper to come back, the connection's DATA must go out at least this fast, and a frame of
/// `n` bytes gets `n / MIN_SEND_RATE` seconds more at the most. Also the DATA rate below which
/// an HTTP/2 connection with nothing in flight counts as idle.
const MIN_SEND_RATE: u64 = 240;

/// The HTTP/2 response bodies of one connection, a slot each (reused once free), holding by
/// when hyper owes the body a poll: set when the body is created and whenever it hands over a
/// frame, cleared while it waits for its producer (a quiet stream is not held up by the
/// client). hyper asks a stream's body for the next frame once the client's window has let the
/// last one out; a body still owed after the send timeout is a stream the client holds up, and
/// then the connection must be sending DATA at [`MIN_SEND_RATE`] — a few cheap answers on
/// other streams do not keep it — and, whatever else moves, the frame must be out by the time
/// that rate gives it.
#[derive(Debug, Default)]
struct OwedBodies {
    slots: Vec<OwedSlot>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OwedSlot {
    /// No body holds it.
    Free,
    /// A body's: owed a poll, or (`None`) waiting for its producer.
    Held(Option<Owed>),
}

/// By when hyper owes a body a poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Owed {
    /// The send timeout after the body handed over its frame (or was created).
    by: Instant,
    /// The send timeout and the frame's bytes at the minimum rate.
    at_the_latest: Instant,
}

impl OwedBodies {
    fn hold(&mut self, owed: Owed) -> usize {
        let held = OwedSlot::Held(Some(owed));
        match self.slots.iter().position(|slot| *slot == OwedSlot::Free) {
            Some(free) => {
                self.slots[free] = held;
                free
            }
            None => {
                self.slots.push(held);
                self.slots.len() - 1
            }
        }
    }

    /// The earliest of the bodies' `by` and of their `at_the_latest`.
    fn earliest(&self) -> Option<(Instant, Instant)> {
        self.slots
            .iter()
            .filter_map(|slot| match slot {
                OwedSlot::Held(owed) => *owed,
                OwedSlot::Free => None,
            })
            .fold(None, |earliest, owed| {
                Some(
                    earliest.map_or((owed.by, owed.at_the_latest), |(by, latest)| {
                        (owed.by.min(by), owed.at_the_latest.min(latest))
                    }),
                )
            })
    }
}

impl ConnectionActivity {
    /// The activity of a connection opened now, whose clients must take response data within
    /// `send_timeout`.
    pub(crate) fn new(send_timeout: Option<Duration>) -> Arc<Self> {
        Arc::new(Self {
            opened: Instant::now(),
            in_flight: AtomicU32::new(0),
            last_done: AtomicU64::new(0),
            exempt: AtomicBool::new(false),
            multiplexed: AtomicBool::new(false),
            idle: AtomicBool::new(false),
            send_timeout,
            owed_bodies: Mutex::new(OwedBodies::default()),
        })
    }

    /// By when a body that hands over a frame of `bytes` bytes now must be asked for more.
    fn owed_by(send_timeout: Duration, bytes: usize) -> Owed {
        let by = Instant::now() + send_timeout;
        let drain = Duration::from_millis(bytes as u64 * 1000 / MIN_SEND_RATE);
        Owed {
            by,
            at_the_latest: by + drain,
        }
    }

    fn owed_bodies(&self) -> std::sync::MutexGuard<'_, OwedBodies> {
        // The slots stay consistent whatever panicked while one was set.
        self.owed_bodies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
        // On HTTP/2 a CONNECT makes one stream a tunnel, not the connection.
        if !*this.multiplexed
            && (response.status() == StatusCode::SWITCHING_PROTOCOLS
                || (*this.is_connect && response.status().is_success()))
        {
            if let Some(Done(activity)) = &done {
                activity.exempt.store(true, Ordering::Relaxed);
            }
        }
        // Not polled yet: hyper's move, within the send timeout.
        let slot = match (&done, *this.multiplexed) {
            (Some(Done(activity)), true) => activity.send_timeout.map(|send_timeout| {
                let owed = ConnectionActivity::owed_by(send_timeout, 0);
                activity.owed_bodies().hold(owed)
            }),
            _ => None,
        };
        Poll::Ready(Ok(response.map(|body| TrackedBody {
            body,
            done,
            slot,
            rest: None,
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
/// written, or the exchange is abandoned — and, on HTTP/2, by when hyper owes it a poll (see
/// [`OwedBodies`]). On HTTP/1 a client that takes nothing shows as a full socket, so the body's
/// polls are not watched: no cost on the common path.
#[derive(Debug)]
pub(crate) struct TrackedBody {
    body: Body,
    /// Told when the body is dropped.
    done: Option<Done>,
    /// HTTP/2 with a send timeout: the body's slot among the connection's owed bodies.
    slot: Option<usize>,
    /// HTTP/2: what is left of a frame larger than [`PIECE`], handed over a piece at a time.
    rest: Option<Bytes>,
}

/// The most an HTTP/2 body hands hyper at once (HTTP/2's default frame size). hyper gives h2 a
/// whole frame as soon as the stream's window has room for one byte, and h2 keeps what the
/// window does not let out; in pieces, hyper comes back for each, so a stream whose client
/// keeps its window (nearly) shut stays owed — and is cut off — however large the answer
/// built in one piece.
const PIECE: usize = 16 * 1024;

impl TrackedBody {
    /// Notes that the body handed over a frame of `bytes` bytes (`None`: that it owes none,
    /// waiting for its producer or over).
    fn set_owed(&self, slot: usize, bytes: Option<usize>) {
        if let Some(Done(activity)) = &self.done {
            if let Some(send_timeout) = activity.send_timeout {
                let owed = bytes.map(|bytes| ConnectionActivity::owed_by(send_timeout, bytes));
                activity.owed_bodies().slots[slot] = OwedSlot::Held(owed);
            }
        }
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        if let (Some(slot), Some(Done(activity))) = (self.slot, &self.done) {
            activity.owed_bodies().slots[slot] = OwedSlot::Free;
        }
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
        let Some(slot) = self.slot else {
            return Pin::new(&mut self.body).poll_frame(cx);
        };
        let polled = match self.rest.take() {
            Some(rest) => Poll::Ready(Some(Ok(http_body::Frame::data(rest)))),
            None => Pin::new(&mut self.body).poll_frame(cx),
        };
        match polled {
            // Handed over: hyper comes back once the client has let it out.
            Poll::Ready(Some(Ok(frame))) => {
                let frame = match frame.into_data() {
                    Ok(mut data) => {
                        if data.len() > PIECE {
                            self.rest = Some(data.split_off(PIECE));
                        }
                        self.set_owed(slot, Some(data.len()));
                        http_body::Frame::data(data)
                    }
                    Err(trailers) => {
                        self.set_owed(slot, Some(0));
                        trailers
                    }
                };
                Poll::Ready(Some(Ok(frame)))
            }
            // Waiting for its producer, or over: nothing is owed.
            other => {
                self.set_owed(slot, None);
                other
            }
        }
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        self.rest.is_none() && self.body.is_end_stream()
    }

    #[inline]
    fn size_hint(&self) -> http_body::SizeHint {
        let inner = self.body.size_hint();
        let Some(rest) = &self.rest else {
            return inner;
        };
        let rest = rest.len() as u64;
        let mut hint = http_body::SizeHint::new();
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + rest);
        }
        hint.set_lower(inner.lower() + rest);
        hint
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
    /// `io`, closed when it waits for a head longer than `header_read` allows (`None`: no
    /// limit), or when its client takes no response data for the send timeout `activity` has.
    pub(crate) fn new(
        io: T,
        activity: Arc<ConnectionActivity>,
        header_read: Option<Duration>,
    ) -> Self {
        let opened = activity.opened;
        Self {
            io,
            watch: Watch {
                activity,
                timeout: header_read,
                sleep: None,
                registered: None,
                write_blocked: false,
                accepted: 0,
                full_allowance: Duration::ZERO,
                progress: Progress::since(opened),
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
    /// Armed no later than the next deadline whenever the connection may be waiting for a head
    /// or for its client to take data; created by the first read or write that cannot go on.
    sleep: Option<Pin<Box<Sleep>>>,
    /// The waker the sleep's last poll registered: while it has not fired, polling it again for
    /// the same task would only register the same waker again.
    registered: Option<Waker>,
    /// Whether the last write found the socket full: a response still going out, however
    /// slowly the client reads it, is not a wait for a head.
    write_blocked: bool,
    /// Bytes the socket took since it was last full.
    accepted: u64,
    /// How long the socket may stay full this time (see [`Watch::note_write`]).
    full_allowance: Duration,
    /// What went out since the sleep last fired.
    progress: Progress,
    /// The frames of an HTTP/2 connection's writes, followed to count the data among them.
    frames: FrameScan,
    /// Since when the socket has stayed full, no write getting through, as far as the sleep's
    /// firings have seen.
    stalled_since: Option<Instant>,
    /// Whether an idle HTTP/2 connection's task has been told to shut it down.
    told_idle: bool,
}

/// What went out on a connection between two firings of its watch's sleep.
#[derive(Debug, Default)]
struct Progress {
    /// Whether a write got through.
    wrote: bool,
    /// When the sleep last fired.
    last_fired: Option<Instant>,
    /// Where the current stretch over which the DATA rate is judged began: when, and the DATA
    /// bytes written by then. A stretch lasts at least a period, so that a firing moments
    /// after another does not judge a bursty reader by the few milliseconds in between.
    stretch: Option<(Instant, u64)>,
    /// Whether the last whole stretch sent DATA at the minimum rate.
    last_stretch_moved: bool,
}

/// What a firing of the sleep found since the last.
struct Observed {
    /// Since when the socket has been full with no write through (`None`: it has not been).
    socket_full_since: Option<Instant>,
    /// Whether HTTP/2 DATA went out at [`MIN_SEND_RATE`] or faster.
    data_moved: bool,
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
    #[inline]
    fn follow_vectored(&mut self, bufs: &[IoSlice<'_>], mut written: usize) {
        if matches!(self.state, ScanState::NotFrames) {
            return;
        }
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
    /// Nothing gone out yet on a connection opened at `opened`: the first stretch over which the
    /// DATA rate is judged starts there, so the first firing credits all sent since.
    fn since(opened: Instant) -> Self {
        Self {
            stretch: Some((opened, 0)),
            ..Self::default()
        }
    }

    /// What went out since the sleep last fired, seen as it fires `now` (firings at least
    /// `period` apart, unless a deadline falls between), with `data_bytes` HTTP/2 DATA bytes
    /// written so far.
    fn observe(
        &mut self,
        now: Instant,
        period: Duration,
        write_blocked: bool,
        data_bytes: u64,
    ) -> Observed {
        let last_fired = self.last_fired.unwrap_or(now);
        let (stretch_began, bytes_then) = *self.stretch.get_or_insert((now, data_bytes));
        let stretch = now.saturating_duration_since(stretch_began);
        let min_bytes = (stretch.as_millis() * u128::from(MIN_SEND_RATE) / 1000).max(1);
        let moved_in_stretch = u128::from(data_bytes.wrapping_sub(bytes_then)) >= min_bytes;
        let data_moved = if stretch >= period {
            self.last_stretch_moved = moved_in_stretch;
            self.stretch = Some((now, data_bytes));
            moved_in_stretch
        } else {
            moved_in_stretch || self.last_stretch_moved
        };
        let observed = Observed {
            socket_full_since: (write_blocked && !self.wrote).then_some(last_fired),
            data_moved,
        };
        self.wrote = false;
        self.last_fired = Some(now);
        observed
    }
}

impl Watch {
    /// Called when a read or a write cannot go on: whether the connection is past one of its
    /// deadlines, and which. If not, the task is woken when it might be.
    fn past_deadline(&mut self, cx: &mut Context<'_>) -> Option<Cut> {
        // The common case first, on every read that finds nothing: the sleep is armed and will
        // wake this task.
        if let (Some(sleep), Some(registered)) = (&self.sleep, &self.registered) {
            if !sleep.is_elapsed() && registered.will_wake(cx.waker()) {
                return None;
            }
        }
        let period = match (self.timeout, self.activity.send_timeout) {
            (None, None) => return None,
            (Some(timeout), None) | (None, Some(timeout)) => timeout,
            (Some(header_read), Some(send)) => header_read.min(send),
        };
        // An upgraded connection or a tunnel waits for no head: only a write that finds its
        // socket full is watched (a WebSocket peer that stopped reading).
        let exempt = self.activity.exempt.load(Ordering::Relaxed);
        if exempt && (self.activity.send_timeout.is_none() || !self.write_blocked) {
            return None;
        }
        let sleep = match &mut self.sleep {
            Some(sleep) => sleep,
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
                    let observed = self.progress.observe(
                        now,
                        period,
                        self.write_blocked,
                        self.frames.data_bytes,
                    );
                    // HTTP/2 data still going out keeps a connection from being idle, though no
                    // stream is in flight: hyper hands a body's last frame to h2 at once, and
                    // h2 sends it as the client's window allows, long after. A trickle below
                    // the minimum rate does not.
                    if observed.data_moved {
                        self.activity.note_progress();
                    }
                    let busy = self.write_blocked || self.activity.is_busy() || observed.data_moved;
                    let mut next = now + period;
                    if let Some(send) = self.activity.send_timeout {
                        match observed.socket_full_since {
                            Some(full_since) => {
                                let since = *self.stalled_since.get_or_insert(full_since);
                                let allowed = self.full_allowance.max(send);
                                if since + allowed <= now {
                                    return Some(Cut::SendStalled);
                                }
                                next = next.min(since + allowed);
                            }
                            None => self.stalled_since = None,
                        }
                        if self.activity.multiplexed.load(Ordering::Relaxed) {
                            let earliest = self.activity.owed_bodies().earliest();
                            if let Some((by, at_the_latest)) = earliest {
                                let held_up = by <= now && !observed.data_moved;
                                if held_up || at_the_latest <= now {
                                    return Some(Cut::SendStalled);
                                }
                                if by > now {
                                    next = next.min(by);
                                }
                                next = next.min(at_the_latest);
                            }
                        }
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
    ///
    /// When the socket fills, the bytes it took since it was last full are the client's to
    /// read, and a client reading at the minimum rate needs `bytes / 240` seconds for them
    /// before its kernel asks for more (a receiver reopens a shut window only once much of its
    /// buffer is free: a reader at 2 KB/s may let nothing through for minutes). So a full
    /// spell may last that long, at least the send timeout and at most four times it: a
    /// client that reads nothing is still cut off within minutes.
    #[inline]
    fn note_write<R>(&mut self, polled: &Poll<R>) {
        if polled.is_pending() {
            if !self.write_blocked {
                if let Some(send) = self.activity.send_timeout {
                    let drain =
                        Duration::from_millis(self.accepted.saturating_mul(1000) / MIN_SEND_RATE);
                    self.full_allowance = drain.clamp(send, send.saturating_mul(4));
                }
                self.accepted = 0;
            }
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
            this.watch.accepted += written as u64;
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
            this.watch.accepted += written as u64;
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
    fn owed_bodies_reuse_free_slots_and_tell_the_earliest_times() {
        let now = Instant::now();
        let owed = |by: u64, latest: u64| Owed {
            by: now + Duration::from_secs(by),
            at_the_latest: now + Duration::from_secs(latest),
        };
        let mut bodies = OwedBodies::default();
        assert_eq!(bodies.earliest(), None);
        let first = bodies.hold(owed(5, 50));
        let second = bodies.hold(owed(9, 20));
        assert_ne!(first, second);
        assert_eq!(
            bodies.earliest(),
            Some((now + Duration::from_secs(5), now + Duration::from_secs(20)))
        );
        // A body waiting for its producer owes nothing; a freed slot is taken again.
        bodies.slots[second] = OwedSlot::Held(None);
        assert_eq!(
            bodies.earliest(),
            Some((now + Duration::from_secs(5), now + Duration::from_secs(50)))
        );
        bodies.slots[first] = OwedSlot::Free;
        assert_eq!(bodies.earliest(), None);
        assert_eq!(bodies.hold(owed(1, 1)), first);
        assert_eq!(bodies.slots.len(), 2);
    }

    #[test]
    fn progress_counts_data_only_at_the_minimum_rate_and_a_full_socket_since_the_last_firing() {
        let secs = Duration::from_secs;
        let period = secs(10);
        let start = Instant::now();
        // The first firing judges all sent since the connection opened.
        let opened = start - secs(2);
        let mut credited = Progress::since(opened);
        assert!(credited.observe(start, period, false, 480).data_moved);
        let mut progress = Progress::since(opened);
        let first = progress.observe(start, period, true, 479);
        assert_eq!(first.socket_full_since, Some(start));
        assert!(!first.data_moved);
        // Ten seconds later: 2 400 bytes is the minimum rate; 2 399 is a trickle.
        let trickle = progress.observe(start + secs(10), period, false, 479 + 2_399);
        assert!(!trickle.data_moved);
        assert_eq!(trickle.socket_full_since, None);
        let steady = progress.observe(start + secs(20), period, true, 479 + 2_399 + 2_400);
        assert!(steady.data_moved);
        // Full since the firing before, as nothing got through in between.
        assert_eq!(steady.socket_full_since, Some(start + secs(10)));
        // A firing moments later, nothing sent in between: judged by the last whole stretch.
        let soon = progress.observe(
            start + secs(20) + Duration::from_millis(5),
            period,
            true,
            5_278,
        );
        assert!(soon.data_moved);
        // A write through since the last firing: not full all along.
        progress.wrote = true;
        let wrote = progress.observe(start + secs(30), period, true, 5_278);
        assert_eq!(wrote.socket_full_since, None);
        // That stretch sent nothing: held up, also moments later.
        assert!(!wrote.data_moved);
        let after = progress.observe(
            start + secs(30) + Duration::from_millis(5),
            period,
            true,
            5_278,
        );
        assert!(!after.data_moved);
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
