//! `Query<T>`: the query string parsed into `T`; a bad value is 400 `validation_failed` naming
//! the parameter in `details`, as a value that fails validation is.

use axum::{extract::FromRequestParts, http::request::Parts};
use serde::de::DeserializeOwned;

use crate::ApiError;

/// The query string, deserialized strictly: a repeated key fills a sequence field
/// (`?tag=a&tag=b` into `Vec<String>`) and is refused for any other, and `?page=` is an empty
/// value, not an absent one (`?page=` with a number field is refused, not read as none).
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned> Query<T> {
    /// Parses a raw query string (without `?`).
    pub fn from_query(query: &str) -> Result<Self, ApiError> {
        super::urlencoded::from_bytes(query.as_bytes(), "query").map(Query)
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

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::Query;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Listing {
        page: Option<u32>,
        city: String,
        sort: Option<Sort>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    enum Sort {
        CreatedAt,
        Title,
    }

    fn details(query: &str) -> serde_json::Value {
        let error = Query::<Listing>::from_query(query).unwrap_err();
        assert_eq!(error.code(), "validation_failed");
        error.details().cloned().unwrap_or_default()
    }

    #[test]
    fn each_bad_parameter_is_named_with_what_it_must_be() {
        assert_eq!(
            details("city=x&page=abc"),
            json!({ "page": ["must be a whole number"] })
        );
        assert_eq!(
            details("city=x&page="),
            json!({ "page": ["must be a whole number"] })
        );
        assert_eq!(
            details("city=x&page=-1"),
            json!({ "page": ["must be a whole number"] })
        );
        assert_eq!(
            details("city=x&page=99999999999"),
            json!({ "page": ["is out of range"] })
        );
        assert_eq!(details("page=1"), json!({ "city": ["is required"] }));
        assert_eq!(
            details("city=x&city=y"),
            json!({ "city": ["is given more than once"] })
        );
        let sort = details("city=x&sort=newest");
        let message = sort["sort"][0].as_str().unwrap();
        assert!(
            message.contains("createdAt") && message.contains("title"),
            "{message}"
        );
        assert!(!message.contains("Sort"), "no Rust type names: {message}");
    }
}
