//! The request id: taken from a sane client `X-Request-Id`, else made fresh; echoed on every
//! response, attached to every log line and every error body.

use axum::{
    extract::FromRequestParts,
    http::{request::Parts, HeaderValue},
};

/// The header that carries the id both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The id of the request being served, available as an extractor.
///
/// Held as a header value, which is reference-counted: the same bytes serve the response
/// header, the error bodies and the logs without being copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// The id as a string.
    pub fn as_str(&self) -> &str {
        // Only ever built from `[A-Za-z0-9._-]`, so always visible ASCII.
        self.0.to_str().unwrap_or("-")
    }

    /// The id as a header value.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }

    pub(crate) fn from_value(value: HeaderValue) -> Self {
        RequestId(value)
    }

    /// The client's id when it is at most 64 characters of `[A-Za-z0-9._-]`, else a fresh one.
    pub(crate) fn from_header(value: Option<&HeaderValue>) -> Self {
        match value.filter(|v| is_sane(v.as_bytes())) {
            Some(id) => RequestId(id.clone()),
            None => RequestId::fresh(),
        }
    }

    /// A new random id (a UUID v4 in simple form).
    pub(crate) fn fresh() -> Self {
        let mut buffer = uuid::Uuid::encode_buffer();
        let text = uuid::Uuid::new_v4().simple().encode_lower(&mut buffer);
        RequestId(HeaderValue::from_str(text).expect("hex digits are a valid header value"))
    }
}

fn is_sane(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(crate::context::request_id())
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
