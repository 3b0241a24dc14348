//! The request id: taken from a sane client `X-Request-Id`, else made fresh; echoed on every
//! response, attached to every log line and every error body.

use std::{cell::RefCell, fmt};

use axum::{
    extract::FromRequestParts,
    http::{request::Parts, HeaderValue},
};
use rand::{rngs::SmallRng, RngCore, SeedableRng};

/// The header that carries the id both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest client id that is kept.
const MAX_LEN: usize = 64;

/// The id of the request being served, available as an extractor.
///
/// Held inline (at most 64 bytes): making, keeping and reading it allocates nothing; only the
/// response header gets its own copy.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RequestId {
    bytes: [u8; MAX_LEN],
    len: u8,
}

impl RequestId {
    /// The id as a string.
    pub fn as_str(&self) -> &str {
        // Only ever built from `[A-Za-z0-9._-]`, so always visible ASCII.
        std::str::from_utf8(self.as_bytes()).unwrap_or("-")
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The id as a header value.
    pub fn header_value(&self) -> HeaderValue {
        HeaderValue::from_bytes(self.as_bytes()).unwrap_or(HeaderValue::from_static("-"))
    }

    /// `id`, which the caller has checked is sane.
    const fn from_sane(id: &[u8]) -> Self {
        let mut bytes = [0u8; MAX_LEN];
        let mut index = 0;
        while index < id.len() {
            bytes[index] = id[index];
            index += 1;
        }
        Self {
            bytes,
            len: id.len() as u8,
        }
    }

    /// The id used outside any request.
    pub(crate) const NONE: RequestId = RequestId::from_sane(b"-");

    /// The client's id when it is at most 64 characters of `[A-Za-z0-9._-]`, else a fresh one.
    pub(crate) fn from_header(value: Option<&HeaderValue>) -> Self {
        match value.map(HeaderValue::as_bytes).filter(|id| is_sane(id)) {
            Some(id) => Self::from_sane(id),
            None => Self::fresh(),
        }
    }

    /// A new random id: 128 bits as 32 lowercase hex digits.
    ///
    /// The bits come from a small per-thread generator seeded from the OS-seeded CSPRNG: ids
    /// must be unique, not secret, and this runs on every request.
    pub(crate) fn fresh() -> Self {
        thread_local! {
            static IDS: RefCell<SmallRng> = RefCell::new(SmallRng::from_rng(&mut rand::rng()));
        }
        let (high, low) = IDS.with(|ids| {
            let mut ids = ids.borrow_mut();
            (ids.next_u64(), ids.next_u64())
        });
        let mut bytes = [0u8; MAX_LEN];
        let words = [
            high as u32,
            (high >> 32) as u32,
            low as u32,
            (low >> 32) as u32,
        ];
        for (digits, word) in bytes[..32].chunks_exact_mut(8).zip(words) {
            digits.copy_from_slice(&hex_digits(word));
        }
        Self { bytes, len: 32 }
    }
}

/// The eight lowercase hex digits of `word`, lowest nibble first (the order is irrelevant for a
/// random id), computed for all eight at once: the nibbles are spread one per byte, then each
/// byte `n` becomes `'0' + n`, plus 39 more (`'a' - '0' - 10`) when `n > 9`.
fn hex_digits(word: u32) -> [u8; 8] {
    let mut spread = u64::from(word);
    spread = (spread | (spread << 16)) & 0x0000_FFFF_0000_FFFF;
    spread = (spread | (spread << 8)) & 0x00FF_00FF_00FF_00FF;
    spread = (spread | (spread << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    let above_nine = ((spread + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    (spread + 0x3030_3030_3030_3030 + above_nine * 39).to_le_bytes()
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RequestId").field(&self.as_str()).finish()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn is_sane(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
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
        assert_eq!(kept.header_value(), "abc-123_x.y");
        let longest = "a".repeat(64);
        let kept = RequestId::from_header(Some(&HeaderValue::from_str(&longest).unwrap()));
        assert_eq!(kept.as_str(), longest);
        for bad in ["", "has space", "semi;colon", &"a".repeat(65)] {
            let value = HeaderValue::from_str(bad).unwrap();
            let id = RequestId::from_header(Some(&value));
            assert_ne!(id.as_str(), bad);
            assert_eq!(id.as_str().len(), 32);
        }
    }

    #[test]
    fn hex_digits_are_the_words_nibbles_lowest_first() {
        assert_eq!(&hex_digits(0x0123_4567), b"76543210");
        assert_eq!(&hex_digits(0xabcd_ef89), b"98fedcba");
        assert_eq!(&hex_digits(0), b"00000000");
        assert_eq!(&hex_digits(u32::MAX), b"ffffffff");
    }

    #[test]
    fn fresh_ids_are_hex_and_distinct() {
        let ids: std::collections::HashSet<String> = (0..1000)
            .map(|_| RequestId::fresh().as_str().to_owned())
            .collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids
            .iter()
            .all(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())));
        assert_eq!(RequestId::NONE.as_str(), "-");
    }
}
