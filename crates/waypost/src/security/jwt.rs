//! Bearer tokens: HS256 JWTs with the algorithm pinned, `exp` required and `nbf` checked.
//!
//! Only HS256 is accepted, so `alg: none`, an RS256 header or any other algorithm fails before a
//! signature is even considered; claims of the wrong type (an `exp` that is a string) fail to
//! decode. Every failure is the same 401 to the client.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::ApiError;

/// The claims Waypost issues and requires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at (0 when the token has none: only `sub` and `exp` are required).
    #[serde(default)]
    pub iat: u64,
    /// Not before (0 when the token has none).
    #[serde(default)]
    pub nbf: u64,
}

/// How far before its issue an issued token is valid (`nbf`): a token issued by one instance
/// and sent at once to another whose clock is behind by up to this much is accepted there.
/// Expiry stays exact; `nbf` is checked without leeway.
const NOT_BEFORE_SKEW: Duration = Duration::from_secs(30);

/// The HS256 key pair for issuing and verifying tokens.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// Keys from a shared secret; tokens live `ttl`.
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    /// How long issued tokens live.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A token for `user_id`, valid from now for the configured lifetime.
    ///
    /// # Errors
    /// 500 when signing fails.
    pub fn issue(&self, user_id: &str) -> Result<String, ApiError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = Claims {
            sub: user_id.to_owned(),
            exp: now.saturating_add(self.ttl.as_secs()),
            iat: now,
            nbf: now.saturating_sub(NOT_BEFORE_SKEW.as_secs()),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)
    }

    /// The claims of a valid token.
    ///
    /// # Errors
    /// 401 `unauthorized` for any invalid, expired, or foreign token.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let rejected = |reason: &dyn std::fmt::Display| {
            tracing::debug!(%reason, "bearer token rejected");
            ApiError::unauthorized("The bearer token is invalid or expired.")
        };
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|error| rejected(&error))?
            .claims;
        // Looked at once the signature holds, so a forged token costs no second decoding.
        if names_critical_extensions(token) {
            return Err(rejected(&"the header names critical extensions"));
        }
        Ok(claims)
    }
}

/// Whether the token's header has `crit`: extensions the issuer says must be understood, and
/// RFC 7515 §4.1.11 has a token naming any that its recipient does not know refused. This one
/// knows none (`jsonwebtoken` reads no `crit` of its own and would pass it over).
fn names_critical_extensions(token: &str) -> bool {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

    let header = token.split('.').next().unwrap_or_default();
    // Any `crit` at all, `null` too: RFC 7515 allows only a list there, of names this
    // recipient would have to know.
    URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|json| {
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&json).ok()
        })
        .is_none_or(|header| header.contains_key("crit"))
}

#[cfg(test)]
mod tests {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    use super::*;

    const SECRET: &[u8] = b"test-secret-that-is-long-enough-for-hs256";

    fn keys() -> JwtKeys {
        JwtKeys::new(SECRET, Duration::from_secs(3600))
    }

    fn sign(header: &str, payload: &str, secret: &[u8]) -> String {
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn an_issued_token_verifies() {
        let token = keys().issue("user-1").unwrap();
        let claims = keys().verify(&token).unwrap();
        assert_eq!(claims.sub, "user-1");
        assert_eq!(claims.exp, claims.iat + 3600);
        assert_eq!(claims.nbf, claims.iat - 30);
    }

    #[test]
    fn a_token_from_a_clock_ahead_by_less_than_the_skew_is_accepted() {
        // Issued by an instance whose clock runs 20 s ahead of this one's.
        let hs = r#"{"alg":"HS256","typ":"JWT"}"#;
        let iat = now() + 20;
        let ahead = format!(
            r#"{{"sub":"u","exp":{},"iat":{iat},"nbf":{}}}"#,
            iat + 3600,
            iat - 30
        );
        assert!(keys().verify(&sign(hs, &ahead, SECRET)).is_ok());
        let not_yet = format!(r#"{{"sub":"u","exp":{},"nbf":{}}}"#, iat + 3600, now() + 5);
        assert!(keys().verify(&sign(hs, &not_yet, SECRET)).is_err());
    }

    #[test]
    fn forged_tokens_are_refused() {
        let exp = now() + 600;
        let hs = r#"{"alg":"HS256","typ":"JWT"}"#;
        let good = format!(r#"{{"sub":"u","exp":{exp},"iat":0,"nbf":0}}"#);
        assert!(keys().verify(&sign(hs, &good, SECRET)).is_ok(), "control");
        // `sub` and `exp` are all a token must have.
        let minimal = format!(r#"{{"sub":"u","exp":{exp}}}"#);
        let claims = keys().verify(&sign(hs, &minimal, SECRET)).expect("minimal");
        assert_eq!((claims.sub.as_str(), claims.exp), ("u", exp));

        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(&good)
        );
        let cases = [
            ("alg none", none),
            (
                "critical extensions",
                sign(
                    r#"{"alg":"HS256","typ":"JWT","crit":["exp"]}"#,
                    &good,
                    SECRET,
                ),
            ),
            (
                "a null crit",
                sign(r#"{"alg":"HS256","typ":"JWT","crit":null}"#, &good, SECRET),
            ),
            ("wrong secret", sign(hs, &good, b"another-secret")),
            (
                "rs256 header",
                sign(r#"{"alg":"RS256","typ":"JWT"}"#, &good, SECRET),
            ),
            (
                "expired",
                sign(
                    hs,
                    &format!(r#"{{"sub":"u","exp":{},"iat":0,"nbf":0}}"#, now() - 10),
                    SECRET,
                ),
            ),
            (
                "exp as string",
                sign(
                    hs,
                    &format!(r#"{{"sub":"u","exp":"{exp}","iat":0,"nbf":0}}"#),
                    SECRET,
                ),
            ),
            (
                "missing exp",
                sign(hs, r#"{"sub":"u","iat":0,"nbf":0}"#, SECRET),
            ),
            (
                "not yet valid",
                sign(
                    hs,
                    &format!(r#"{{"sub":"u","exp":{exp},"iat":0,"nbf":{}}}"#, now() + 300),
                    SECRET,
                ),
            ),
        ];
        for (name, token) in cases {
            let error = keys().verify(&token).expect_err(name);
            assert_eq!(error.status(), 401, "{name}");
        }
        // A tampered payload keeps the old signature.
        let token = keys().issue("user-1").unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] =
            URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"admin","exp":{exp},"iat":0,"nbf":0}}"#));
        assert!(keys().verify(&parts.join(".")).is_err(), "tampered");
    }
}
