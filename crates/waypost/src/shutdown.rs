//! The server's stop as handlers see it, so that long-lived work — a WebSocket, an endless event
//! stream — ends cleanly when the server begins to stop, instead of holding the shutdown until
//! its deadline and being cut off there.
//!
//! When [`App`](crate::App) stops (SIGTERM, Ctrl-C, the future given to
//! [`serve_with_shutdown`](crate::App::serve_with_shutdown)), it stops accepting and lets every
//! open request finish, for at most `WAYPOST_SHUTDOWN_TIMEOUT` (10 s). A request answered at
//! once is done long before; a stream that never ends on its own is not, and is dropped at the
//! deadline without a word. [`Shutdown`] tells such work that the stop has begun: an event
//! stream can end (the browser's `EventSource` reconnects, to the next instance behind the
//! balancer), a WebSocket can send its close frame (1001, going away).
//!
//! ```
//! use std::convert::Infallible;
//! use waypost::{shutdown::Shutdown, stream::{sse, Event}};
//!
//! async fn ticks(shutdown: Shutdown) -> waypost::axum::response::Response {
//!     let ticks = futures_util::stream::repeat_with(|| Ok::<_, Infallible>(Event::default().data("tick")));
//!     // Ends when the server begins to stop.
//!     sse(shutdown.until_started(ticks))
//! }
//! # let _ = ticks;
//! ```

use std::{convert::Infallible, future::Future, sync::Arc, time::Duration};

use axum::{extract::FromRequestParts, http::request::Parts};
use futures_util::{Stream, StreamExt};
use tokio::time::Instant;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// The server's stop: an extractor, and a handle to keep (it is cheap to clone).
///
/// Outside a server's request (an in-process [`TestClient`](crate::testing::TestClient), a
/// router served some other way), the stop never comes.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    server: Option<Arc<ServerStop>>,
}

/// One server's stop, as the server drives it and handlers see it.
#[derive(Debug, Default)]
pub(crate) struct ServerStop {
    /// Cancelled when the server stops accepting.
    started: CancellationToken,
    /// Cancelled at the shutdown deadline: the sessions still running are dropped.
    deadline_passed: CancellationToken,
    /// The long-lived sessions (WebSockets) the server waits for as it stops.
    sessions: TaskTracker,
}

impl ServerStop {
    /// Tells handlers that the server has begun to stop.
    pub(crate) fn begin(&self) {
        self.started.cancel();
    }

    /// The signal [`begin`](Self::begin) gives, for the server's own connections.
    pub(crate) fn started(&self) -> CancellationToken {
        self.started.clone()
    }

    /// Waits for the sessions until `deadline`, then cuts off those still running and waits
    /// for them to be dropped (at most `grace`); whether all had ended by the deadline.
    pub(crate) async fn end_sessions(&self, deadline: Instant, grace: Duration) -> bool {
        self.sessions.close();
        if tokio::time::timeout_at(deadline, self.sessions.wait())
            .await
            .is_ok()
        {
            return true;
        }
        tracing::warn!(
            sessions = self.sessions.len(),
            "sessions still open at the shutdown deadline; cut off"
        );
        self.deadline_passed.cancel();
        let _ = tokio::time::timeout(grace, self.sessions.wait()).await;
        false
    }
}

impl Shutdown {
    /// A stop for a new server, and the handle its handlers get.
    pub(crate) fn for_server() -> (Arc<ServerStop>, Self) {
        let server = Arc::new(ServerStop::default());
        (
            server.clone(),
            Self {
                server: Some(server),
            },
        )
    }

    /// The stop of the server serving the current request.
    pub(crate) fn current() -> Self {
        crate::context::with_current(|context| {
            context
                .and_then(|context| context.connection.as_ref())
                .map(|connection| connection.shutdown.clone())
                .unwrap_or_default()
        })
    }

    /// Completes when the server begins to stop (at once if it has). Make it once per session
    /// or stream and keep it (pinned) rather than anew on every turn of a loop: each waits on a
    /// signal of its own, so sessions on many cores do not contend for one.
    pub fn started(&self) -> impl Future<Output = ()> + Send + 'static {
        let started = self
            .server
            .as_ref()
            .map(|server| server.started.child_token());
        async move {
            match started {
                Some(started) => started.cancelled_owned().await,
                None => std::future::pending().await,
            }
        }
    }

    /// Whether the server has begun to stop.
    pub fn has_started(&self) -> bool {
        self.server
            .as_ref()
            .is_some_and(|server| server.started.is_cancelled())
    }

    /// `stream`, ended when the server begins to stop (the item being produced then is not
    /// waited for).
    pub fn until_started<S: Stream>(&self, stream: S) -> impl Stream<Item = S::Item> {
        stream.take_until(self.started())
    }

    /// A place among the sessions the server waits for as it stops, taken now — while the
    /// handshake that starts the session is still a request the server waits for, so that no
    /// session starts unseen after the server has looked.
    #[cfg(feature = "websocket")]
    pub(crate) fn session(&self) -> SessionPlace {
        SessionPlace {
            held: self
                .server
                .as_ref()
                .map(|server| (server.sessions.token(), server.deadline_passed.clone())),
        }
    }
}

/// A session's place among those its server waits for (see [`Shutdown::session`]); given up
/// when dropped, so a handshake whose upgrade fails leaves nothing behind.
#[cfg(feature = "websocket")]
pub(crate) struct SessionPlace {
    held: Option<(
        tokio_util::task::task_tracker::TaskTrackerToken,
        CancellationToken,
    )>,
}

#[cfg(feature = "websocket")]
impl SessionPlace {
    /// Runs `session`, which the server waits for as it stops and drops at its deadline.
    pub(crate) async fn run(self, session: impl Future<Output = ()>) {
        let Some((_place, deadline_passed)) = self.held else {
            return session.await;
        };
        tokio::select! {
            () = session => {}
            () = deadline_passed.cancelled() => {}
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Shutdown {
    type Rejection = Infallible;

    async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::current())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_stream_ends_when_the_stop_begins_and_not_before() {
        let (server, shutdown) = Shutdown::for_server();
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel::<u32>();
        let mut items = Box::pin(shutdown.until_started(tokio_stream_of(receiver)));
        sender.send(1).unwrap();
        assert_eq!(items.next().await, Some(1));
        assert!(!shutdown.has_started());
        server.begin();
        assert!(shutdown.has_started());
        sender.send(2).unwrap();
        let next = tokio::time::timeout(Duration::from_secs(5), items.next()).await;
        assert_eq!(next.expect("ends at once"), None);
        tokio::time::timeout(Duration::from_secs(5), shutdown.started())
            .await
            .expect("started completes once the stop has begun");
    }

    #[cfg(feature = "websocket")]
    #[tokio::test]
    async fn a_session_place_taken_before_the_stop_is_waited_for_until_given_up() {
        let far = Instant::now() + Duration::from_secs(60);
        for upgraded in [true, false] {
            let (server, shutdown) = Shutdown::for_server();
            // Taken while the handshake is a request; the session itself starts later.
            let place = shutdown.session();
            server.begin();
            let stopping = {
                let server = server.clone();
                tokio::spawn(async move { server.end_sessions(far, Duration::from_secs(1)).await })
            };
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(!stopping.is_finished(), "waits for the session to come");
            if upgraded {
                place.run(async {}).await;
            } else {
                // The upgrade failed: the place is given up with the closure.
                drop(place);
            }
            let ended_in_time = tokio::time::timeout(Duration::from_secs(5), stopping)
                .await
                .expect("the stop goes on once the session is over")
                .unwrap();
            assert!(ended_in_time);
        }
    }

    #[tokio::test]
    async fn outside_a_server_the_stop_never_comes() {
        let shutdown = Shutdown::current();
        assert!(!shutdown.has_started());
        let waited = tokio::time::timeout(Duration::from_millis(50), shutdown.started()).await;
        assert!(waited.is_err());
        let mut items = Box::pin(shutdown.until_started(futures_util::stream::iter([1, 2])));
        assert_eq!(items.next().await, Some(1));
        assert_eq!(items.next().await, Some(2));
        assert_eq!(items.next().await, None);
    }

    fn tokio_stream_of(
        mut receiver: tokio::sync::mpsc::UnboundedReceiver<u32>,
    ) -> impl Stream<Item = u32> {
        futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
    }
}
