//! `GET /api/stream`: `Hello`, ` `, `World`, 100 ms apart, each sent as it is produced.

use std::time::Duration;

use futures_util::stream;
use waypost::axum::{
    body::{Body, Bytes},
    http::header,
    response::{IntoResponse, Response},
};

const CHUNKS: [&str; 3] = ["Hello", " ", "World"];
const PAUSE: Duration = Duration::from_millis(100);

/// A chunked `text/plain` body; the pause comes before each chunk but the first, so a client
/// holds `Hello` while `World` does not exist yet.
pub async fn get() -> Response {
    let chunks = stream::unfold(0usize, |index| async move {
        let chunk = CHUNKS.get(index)?;
        if index > 0 {
            tokio::time::sleep(PAUSE).await;
        }
        Some((
            Ok::<_, std::convert::Infallible>(Bytes::from_static(chunk.as_bytes())),
            index + 1,
        ))
    });
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(chunks),
    )
        .into_response()
}
