//! The request body as it came, read whole — for a handler that checks a signature over the
//! exact bytes (a webhook) or parses a format of its own.

use axum::extract::{FromRequest, Request};
use bytes::Bytes;

use crate::ApiError;

/// The request body's bytes, as sent (a `Content-Encoding` is left to the handler), read within
/// the route's body limit. Where axum's `Bytes` answers every failed read 400, this one answers
/// in the one error shape with the cause's status: 413 past the limit, 408 `timeout` for a body
/// that stopped arriving or fell below the minimum rate ([`crate::body_pace`]), 400 for one the
/// client broke off.
#[derive(Debug, Clone)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        super::read_body_as_sent(request).await.map(RawBody)
    }
}
