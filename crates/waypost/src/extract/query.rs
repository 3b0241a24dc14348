//! `Query<T>`: the query string parsed into `T`; a bad value is 400 `invalid_query`.

use axum::{extract::FromRequestParts, http::request::Parts};
use serde::de::DeserializeOwned;

use crate::ApiError;

/// The query string, deserialized with `serde_urlencoded`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned> Query<T> {
    /// Parses a raw query string (without `?`); a NUL character in it is 400, as in a body.
    pub fn from_query(query: &str) -> Result<Self, ApiError> {
        if super::percent_encodes_nul(query.as_bytes()) {
            return Err(super::nul_refused("query string"));
        }
        serde_urlencoded::from_str(query)
            .map(Query)
            .map_err(|error| ApiError::invalid_query(format!("Invalid query string: {error}.")))
    }
}

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Self::from_query(parts.uri.query().unwrap_or_default())
    }
}

impl<T> std::ops::Deref for Query<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
