//! Streaming responses: Server-Sent Events and plain chunked text, sent as produced.
//!
//! Nothing in Waypost buffers or compresses a response body, so each event or chunk is written
//! to the socket when the stream yields it. Both types also send `Cache-Control: no-cache` and
//! `X-Accel-Buffering: no`, so a reverse proxy in front (nginx) does not hold them back either.

use std::convert::Infallible;

use axum::{
    body::{Body, Bytes},
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
};
use futures_util::{Stream, StreamExt};

pub use axum::response::sse::{Event, KeepAlive, Sse};

/// An SSE response with keep-alive comments every 15 s.
///
/// # Example
/// ```
/// use std::convert::Infallible;
/// use waypost::stream::{sse, Event};
///
/// async fn events() -> waypost::axum::response::Response {
///     let events = futures_util::stream::iter(["a", "b"])
///         .map(|text| Ok::<_, Infallible>(Event::default().data(text)));
///     sse(events)
/// }
/// # use futures_util::StreamExt;
/// # let _ = events;
/// ```
pub fn sse<S, E>(events: S) -> Response
where
    S: Stream<Item = Result<Event, E>> + Send + 'static,
    E: Into<axum::BoxError>,
{
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response();
    no_buffering(&mut response);
    response
}

/// A chunked `text/plain` response: each item of the stream is one chunk on the wire.
pub struct ChunkedText<S>(pub S);

impl<S, T> IntoResponse for ChunkedText<S>
where
    S: Stream<Item = T> + Send + 'static,
    T: Into<Bytes>,
{
    fn into_response(self) -> Response {
        let body = Body::from_stream(self.0.map(|chunk| Ok::<_, Infallible>(chunk.into())));
        let mut response = (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            body,
        )
            .into_response();
        no_buffering(&mut response);
        response
    }
}

/// Marks `response` as a stream no cache or proxy should hold back.
pub fn no_buffering(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
}
