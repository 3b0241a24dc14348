//! WebSockets in a route: axum's, with the framework's defaults — a 1 MiB message limit, refusals
//! in the one error shape, the session counted among those the server waits for as it stops,
//! the server's stop handed to it, and its log lines under the handshake's request id.
//!
//! A route's `get` takes [`WebSocketUpgrade`] and answers with [`WebSocketUpgrade::on_upgrade`]:
//!
//! ```
//! use waypost::{shutdown::Shutdown, websocket::{Message, WebSocket, WebSocketUpgrade}};
//!
//! // src/app/api/echo/route.rs  →  GET /api/echo (ws://…/api/echo)
//! pub async fn get(upgrade: WebSocketUpgrade) -> waypost::axum::response::Response {
//!     upgrade.on_upgrade(echo)
//! }
//!
//! async fn echo(mut socket: WebSocket, shutdown: Shutdown) {
//!     // Made once and kept: a new one on every turn would wait anew each time.
//!     let stopping = shutdown.started();
//!     tokio::pin!(stopping);
//!     loop {
//!         tokio::select! {
//!             received = socket.recv() => match received {
//!                 Some(Ok(Message::Text(text))) => {
//!                     if socket.send(Message::Text(text)).await.is_err() {
//!                         return;
//!                     }
//!                 }
//!                 Some(Ok(_)) => {}
//!                 Some(Err(_)) | None => return,
//!             },
//!             () = &mut stopping => {
//!                 // 1001: going away; the client reconnects, to the next instance.
//!                 let _ = socket.send(waypost::websocket::going_away()).await;
//!                 return;
//!             }
//!         }
//!     }
//! }
//! # let _ = get;
//! ```
//!
//! What the framework adds to axum's `WebSocketUpgrade`:
//! - **Cross-site WebSocket hijacking is refused.** A browser sends the page's cookies with a
//!   handshake from any site, and the same-origin policy does not apply to WebSockets. So a
//!   handshake is judged as an unsafe request is for CSRF: `Sec-Fetch-Site: cross-site`, or an
//!   `Origin` that is neither the server's own nor in `CORS_ORIGINS`, is 403 `csrf_invalid`
//!   before routing (see [`crate::security`]). Clients that are not browsers send no `Origin`.
//! - **Messages are limited to 1 MiB** (axum's default is 64 MiB), like request bodies;
//!   [`WebSocketUpgrade::max_message_size`] changes it for a route.
//! - **A request that is no handshake gets the one error shape**: 426 `upgrade_required` with
//!   `Upgrade: websocket` for a plain GET (and HEAD), 426 with `Sec-WebSocket-Version: 13` for
//!   another protocol version, 400 for a handshake without its key.
//! - **The server waits for the session as it stops**: it tells it through [`Shutdown`] and waits
//!   for it until the shutdown deadline (`WAYPOST_SHUTDOWN_TIMEOUT`), then cuts it off; the
//!   session counts from the handshake on, so none starts unseen. A panic in it is logged with
//!   the request id; the server keeps serving.
//! - **A peer that stops reading is cut off**: a send that finds the socket full for the send
//!   timeout (`WAYPOST_SEND_TIMEOUT`, 60 s) fails, and the connection is closed, so a session
//!   does not wait on a dead client for ever.
//!
//! The handshake is an ordinary request before it is upgraded: the route's rate limit counts it,
//! `Auth` and `MaybeAuth` say who is calling, `CONFIG` applies. WebSockets need HTTP/1.1 (the
//! server does not offer RFC 8441's HTTP/2 handshake).

use std::{future::Future, panic::AssertUnwindSafe};

use futures_util::FutureExt;

use axum::{
    extract::{
        ws::{self, rejection::WebSocketUpgradeRejection},
        FromRequestParts,
    },
    http::{header, request::Parts, HeaderValue, StatusCode},
    response::Response,
};

pub use axum::extract::ws::{close_code, CloseFrame, Message, Utf8Bytes, WebSocket};

use crate::{context, shutdown::Shutdown, ApiError, DEFAULT_BODY_LIMIT};

/// The extractor that accepts a WebSocket handshake (see the [module docs](self)).
#[derive(Debug)]
#[must_use]
pub struct WebSocketUpgrade {
    inner: ws::WebSocketUpgrade,
    shutdown: Shutdown,
}

impl WebSocketUpgrade {
    /// The largest message (and frame) the peer may send, in bytes; 1 MiB unless changed. A
    /// larger one ends the session with close code 1009 (too big).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.inner = self.inner.max_message_size(bytes).max_frame_size(bytes);
        self
    }

    /// The subprotocols the route speaks, in order of preference: the first the client also
    /// offers (`Sec-WebSocket-Protocol`) is chosen and named in the answer.
    pub fn protocols<I>(mut self, protocols: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<std::borrow::Cow<'static, str>>,
    {
        self.inner = self.inner.protocols(protocols);
        self
    }

    /// The subprotocol chosen by [`protocols`](Self::protocols), if any.
    pub fn selected_protocol(&self) -> Option<&HeaderValue> {
        self.inner.selected_protocol()
    }

    /// Answers the handshake (101) and runs `session` with the socket once the connection is
    /// upgraded, with the server's [`Shutdown`] — as a session the stopping server waits for,
    /// in the handshake's context.
    pub fn on_upgrade<C, F>(self, session: C) -> Response
    where
        C: FnOnce(WebSocket, Shutdown) -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let shutdown = self.shutdown;
        let place = shutdown.session();
        let handshake = context::Captured::now();
        self.inner
            .on_failed_upgrade(|error| {
                tracing::debug!(%error, "the WebSocket upgrade failed");
            })
            .on_upgrade(move |socket| async move {
                // The closure is called inside the catch too: a panic as it builds its future
                // is caught and logged as one in the future is.
                let session = handshake.carry(async move { session(socket, shutdown).await });
                let session = AssertUnwindSafe(session).catch_unwind();
                let finished = handshake.carry(place.run(async move {
                    if let Err(panic) = session.await {
                        // The panic's text stays in the server's log, as a handler's does.
                        tracing::error!(
                            request_id = %context::request_id(),
                            panic = %crate::layers::panic_message(&panic),
                            "WebSocket session panicked"
                        );
                    }
                }));
                finished.await;
            })
    }
}

/// The close frame a session sends when the server stops: 1001, going away.
pub fn going_away() -> Message {
    Message::Close(Some(CloseFrame {
        code: close_code::AWAY,
        reason: Utf8Bytes::from_static("the server is restarting"),
    }))
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let inner = ws::WebSocketUpgrade::from_request_parts(parts, state)
            .await
            .map_err(refusal)?;
        Ok(Self {
            inner: inner
                .max_message_size(DEFAULT_BODY_LIMIT)
                .max_frame_size(DEFAULT_BODY_LIMIT),
            shutdown: Shutdown::current(),
        })
    }
}

/// A request that is no (usable) handshake, in the one error shape.
fn refusal(rejection: WebSocketUpgradeRejection) -> ApiError {
    const WEBSOCKET: HeaderValue = HeaderValue::from_static("websocket");
    let upgrade_required = |message: &'static str| {
        ApiError::new(StatusCode::UPGRADE_REQUIRED, "upgrade_required", message)
    };
    match rejection {
        WebSocketUpgradeRejection::InvalidWebSocketVersionHeader(_) => {
            upgrade_required("Only WebSocket version 13 is spoken here.").with_header(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            )
        }
        WebSocketUpgradeRejection::WebSocketKeyHeaderMissing(_) => {
            ApiError::bad_request("The WebSocket handshake has no Sec-WebSocket-Key header.")
        }
        WebSocketUpgradeRejection::ConnectionNotUpgradable(_) => upgrade_required(
            "This connection cannot be upgraded to a WebSocket; open one over HTTP/1.1.",
        )
        .with_header(header::UPGRADE, WEBSOCKET),
        _ => upgrade_required(
            "This route speaks WebSocket only: send a WebSocket handshake (GET with \
             Connection: Upgrade and Upgrade: websocket).",
        )
        .with_header(header::UPGRADE, WEBSOCKET),
    }
}
