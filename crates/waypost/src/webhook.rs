//! Webhook verification: Stripe's `Stripe-Signature` scheme, over the raw body.
//!
//! The header is `t=<unix seconds>,v1=<hex>[,v1=<hex>…]` (other schemes such as `v0` are
//! ignored); each `v1` is an HMAC-SHA256 with the endpoint secret over `"<t>.<raw body>"`, and one
//! match suffices (Stripe sends several while a secret is being rolled; past
//! [`MAX_SIGNATURES`] the header is malformed, and the MAC is computed once however many there
//! are). Comparison is constant-time, and a timestamp more than the tolerance (300 s) away from now is refused, so a
//! captured delivery cannot be replayed later. Verify the bytes exactly as received: take the
//! body as `Bytes`, never re-serialize parsed JSON.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::ApiError;

/// The header Stripe signs with.
pub const STRIPE_SIGNATURE_HEADER: &str = "stripe-signature";

/// Stripe's default tolerance for the signed timestamp.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// The most `v1` signatures one header may carry. Stripe sends one per live secret (two while a
/// secret is being rolled), and tags cost one constant-time comparison each against a MAC
/// computed once; a header with more than this is malformed rather than a pile of tags to try.
pub const MAX_SIGNATURES: usize = 64;

/// Why a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// No `Stripe-Signature` header.
    #[error("the signature header is missing")]
    Missing,
    /// The header has no `t=` or no `v1=`.
    #[error("the signature header is malformed")]
    Malformed,
    /// The timestamp is too far from now.
    #[error("the signature timestamp is outside the tolerance")]
    Stale,
    /// No `v1` matches.
    #[error("no signature matches the body")]
    Mismatch,
}

impl From<SignatureError> for ApiError {
    fn from(error: SignatureError) -> Self {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_signature",
            format!("The webhook signature is invalid: {error}."),
        )
    }
}

/// Verifies Stripe-signed deliveries with one endpoint secret.
#[derive(Clone)]
pub struct StripeVerifier {
    secret: Vec<u8>,
    tolerance: Duration,
}

impl std::fmt::Debug for StripeVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeVerifier")
            .field("tolerance", &self.tolerance)
            .finish_non_exhaustive()
    }
}

impl StripeVerifier {
    /// A verifier for `secret` (`whsec_…`) with the default 300 s tolerance.
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self {
            secret: secret.into(),
            tolerance: DEFAULT_TOLERANCE,
        }
    }

    /// Changes the timestamp tolerance.
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Checks the request's `Stripe-Signature` against `body` at the current time.
    ///
    /// # Errors
    /// The [`SignatureError`] that applies; it converts into 400 `invalid_signature`.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), SignatureError> {
        let header = headers
            .get(STRIPE_SIGNATURE_HEADER)
            .and_then(|value| value.to_str().ok())
            .ok_or(SignatureError::Missing)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        self.verify_at(header, body, now)
    }

    /// Checks `header` against `body` as if the time were `now` (unix seconds).
    ///
    /// # Errors
    /// The [`SignatureError`] that applies.
    pub fn verify_at(&self, header: &str, body: &[u8], now: u64) -> Result<(), SignatureError> {
        // The text as sent is what was signed: only plain digits are a timestamp. Stripe sends
        // one; with two, which one was signed is anyone's guess (Stripe's own libraries differ),
        // so the header is malformed.
        let mut timestamp: Option<(&str, u64)> = None;
        let mut timestamps = 0;
        let mut presented = 0;
        // Only well-formed tags (64 hex digits) can match; the others still count as presented.
        let mut tags = Vec::new();
        for item in header.split(',') {
            match item.trim().split_once('=') {
                Some(("t", value)) => {
                    timestamps += 1;
                    if timestamps > 1 {
                        return Err(SignatureError::Malformed);
                    }
                    timestamp = value
                        .bytes()
                        .all(|byte| byte.is_ascii_digit())
                        .then(|| value.parse::<u64>().ok().map(|seconds| (value, seconds)))
                        .flatten();
                }
                Some(("v1", value)) => {
                    presented += 1;
                    if presented > MAX_SIGNATURES {
                        return Err(SignatureError::Malformed);
                    }
                    let mut tag = [0u8; 32];
                    if hex::decode_to_slice(value, &mut tag).is_ok() {
                        tags.push(tag);
                    }
                }
                _ => {}
            }
        }
        let (timestamp_text, timestamp) = timestamp.ok_or(SignatureError::Malformed)?;
        if presented == 0 {
            return Err(SignatureError::Malformed);
        }
        if now.abs_diff(timestamp) > self.tolerance.as_secs() {
            return Err(SignatureError::Stale);
        }
        // One MAC over the body, however many tags there are, each compared in constant time.
        let expected = self.mac(timestamp_text, body).finalize().into_bytes();
        if tags
            .iter()
            .any(|tag| bool::from(expected.as_slice().ct_eq(tag)))
        {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }

    /// A `Stripe-Signature` value for `body` at `timestamp` (for tests and local tools).
    pub fn sign(&self, body: &[u8], timestamp: u64) -> String {
        let timestamp = timestamp.to_string();
        let tag = self.mac(&timestamp, body).finalize().into_bytes();
        format!("t={timestamp},v1={}", hex::encode(tag))
    }

    /// The MAC over Stripe's signed payload, `"<t>.<body>"`, `t` as sent.
    fn mac(&self, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("any key size");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    /// The `v1` tag of a header [`StripeVerifier::sign`] made.
    fn v1_of(header: &str) -> String {
        header.split_once(",v1=").unwrap().1.to_owned()
    }

    #[test]
    fn a_signed_body_verifies_and_a_tampered_one_does_not() {
        let verifier = StripeVerifier::new("whsec_test");
        let header = verifier.sign(b"{\"id\":1}", NOW);
        assert_eq!(verifier.verify_at(&header, b"{\"id\":1}", NOW), Ok(()));
        assert_eq!(
            verifier.verify_at(&header, b"{\"id\":2}", NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            StripeVerifier::new("other").verify_at(&header, b"{\"id\":1}", NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn one_matching_v1_of_several_suffices() {
        let verifier = StripeVerifier::new("whsec_test");
        let good_v1 = &v1_of(&verifier.sign(b"body", NOW));
        let header = format!("t={NOW},v1={},v0=abc,v1={good_v1}", "00".repeat(32));
        assert_eq!(verifier.verify_at(&header, b"body", NOW), Ok(()));
    }

    #[test]
    fn the_timestamp_is_signed_as_sent() {
        let verifier = StripeVerifier::new("whsec_test");
        let padded = format!("0{NOW}");
        let tag = hex::encode(verifier.mac(&padded, b"body").finalize().into_bytes());
        assert_eq!(
            verifier.verify_at(&format!("t={padded},v1={tag}"), b"body", NOW),
            Ok(())
        );
        // The same time written another way is another signed payload.
        let good_v1 = v1_of(&verifier.sign(b"body", NOW));
        assert_eq!(
            verifier.verify_at(&format!("t={padded},v1={good_v1}"), b"body", NOW),
            Err(SignatureError::Mismatch)
        );
        // Two timestamps: which was signed is ambiguous, whichever it was.
        for header in [
            format!("t=1,t={NOW},v1={good_v1}"),
            format!("t={NOW},t=1,v1={good_v1}"),
            format!("t={NOW},v1={good_v1},t={NOW}"),
        ] {
            assert_eq!(
                verifier.verify_at(&header, b"body", NOW),
                Err(SignatureError::Malformed),
                "{header}"
            );
        }
    }

    #[test]
    fn stale_and_malformed_headers_are_refused() {
        let verifier = StripeVerifier::new("whsec_test");
        let header = verifier.sign(b"body", NOW - 301);
        assert_eq!(
            verifier.verify_at(&header, b"body", NOW),
            Err(SignatureError::Stale)
        );
        let header = verifier.sign(b"body", NOW + 301);
        assert_eq!(
            verifier.verify_at(&header, b"body", NOW),
            Err(SignatureError::Stale)
        );
        let header = verifier.sign(b"body", NOW - 299);
        assert_eq!(verifier.verify_at(&header, b"body", NOW), Ok(()));
        for bad in [
            "",
            "t=abc,v1=00",
            "v1=00",
            &format!("t={NOW}"),
            "garbage",
            &format!("t=+{NOW},v1=00"),
            &format!("t=-{NOW},v1=00"),
        ] {
            assert_eq!(
                verifier.verify_at(bad, b"body", NOW),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            verifier.verify_at(&format!("t={NOW},v1=zz"), b"body", NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_header_with_more_signatures_than_any_sender_uses_is_malformed() {
        let verifier = StripeVerifier::new("whsec_test");
        let good_v1 = &v1_of(&verifier.sign(b"body", NOW));
        let padding = |count: usize| ",v1=".repeat(count);
        let most = format!("t={NOW}{},v1={good_v1}", padding(MAX_SIGNATURES - 1));
        assert_eq!(verifier.verify_at(&most, b"body", NOW), Ok(()));
        // Thousands of empty tags fit in a header; they were once a full MAC each.
        for count in [MAX_SIGNATURES, 4000] {
            let header = format!("t={NOW}{},v1={good_v1}", padding(count));
            assert_eq!(
                verifier.verify_at(&header, b"body", NOW),
                Err(SignatureError::Malformed)
            );
        }
    }

    #[test]
    fn only_a_whole_tag_matches() {
        let verifier = StripeVerifier::new("whsec_test");
        let good_v1 = &v1_of(&verifier.sign(b"body", NOW));
        for tag in [&good_v1[..62], &good_v1[..63], &format!("{good_v1}00"), ""] {
            assert_eq!(
                verifier.verify_at(&format!("t={NOW},v1={tag}"), b"body", NOW),
                Err(SignatureError::Mismatch),
                "{tag}"
            );
        }
    }
}
