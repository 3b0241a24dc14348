//! `GET /api/stream`: `Hello`, ` `, `World`, 100 ms apart, each sent as it is produced.

use std::time::Duration;

use futures_util::stream;
use waypost::stream::ChunkedText;

const CHUNKS: [&str; 3] = ["Hello", " ", "World"];
const PAUSE: Duration = Duration::from_millis(100);

/// A chunked `text/plain` body; the pause comes before each chunk but the first, so a client
/// holds `Hello` while `World` does not exist yet.
pub async fn get() -> ChunkedText<impl futures_util::Stream<Item = &'static str>> {
    ChunkedText(stream::unfold(0usize, |index| async move {
        let chunk = *CHUNKS.get(index)?;
        if index > 0 {
            tokio::time::sleep(PAUSE).await;
        }
        Some((chunk, index + 1))
    }))
}
