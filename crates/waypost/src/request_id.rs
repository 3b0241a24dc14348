//! The request id: taken from a sane client `X-Request-Id`, else made fresh; echoed on every
//! response, attached to every log line and every error body.

use std::sync::Arc;

use axum::{
    extract::FromRequestParts,
    http::{request::Parts, HeaderValue},
};

/// The header that carries the id both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The id of the request being served, available as an extractor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub(crate) Arc<str>);

impl RequestId {
    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The client's id when it is at most 64 characters of `[A-Za-z0-9._-]`, else a fresh one.
    pub(crate) fn from_header(value: Option<&HeaderValue>) -> Self {
        match value.and_then(|v| v.to_str().ok()).filter(|v| is_sane(v)) {
            Some(id) => RequestId(Arc::from(id)),
            None => RequestId::fresh(),
        }
    }

    /// A new random id (a UUID v4 in simple form).
    pub(crate) fn fresh() -> Self {
        let mut buffer = uuid::Uuid::encode_buffer();
        RequestId(Arc::from(
            &*uuid::Uuid::new_v4().simple().encode_lower(&mut buffer),
        ))
    }
}

fn is_sane(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

tokio::task_local! {
    static CURRENT: RequestId;
}

/// Runs `future` with `id` as the current request id (what error bodies and logs use).
pub(crate) async fn scope<F: std::future::Future>(id: RequestId, future: F) -> F::Output {
    CURRENT.scope(id, future).await
}

/// The current request's id, or `"-"` outside a request.
pub(crate) fn current() -> Arc<str> {
    CURRENT
        .try_with(|id| id.0.clone())
        .unwrap_or_else(|_| Arc::from("-"))
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(RequestId::fresh))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_client_ids_are_kept_and_others_replaced() {
        let kept = RequestId::from_header(Some(&HeaderValue::from_static("abc-123_x.y")));
        assert_eq!(kept.as_str(), "abc-123_x.y");
        for bad in ["", "has space", "semi;colon", &"a".repeat(65)] {
            let value = HeaderValue::from_str(bad).unwrap();
            let id = RequestId::from_header(Some(&value));
            assert_ne!(id.as_str(), bad);
            assert_eq!(id.as_str().len(), 32);
        }
    }
}
