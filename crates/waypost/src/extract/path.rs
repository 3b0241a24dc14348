//! `Path<T>` and the generated routes' `Params`: path parameters with a JSON 400 on a bad value.

use axum::{
    extract::{
        path::ErrorKind,
        rejection::{FailedToDeserializePathParams, PathRejection},
        FromRequestParts,
    },
    http::request::Parts,
};
use serde::de::DeserializeOwned;

use crate::ApiError;

/// Path parameters deserialized into `T` (a tuple, a struct, or a single value).
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // A NUL character names nothing, as bytes that are not text do (see `refusal`).
        if super::percent_encodes_nul(parts.uri.path().as_bytes()) {
            return Err(nothing_here());
        }
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(failed)) => Err(refusal(failed)),
            // The extractor on a route without parameters: the app's mistake.
            Err(other) => Err(ApiError::internal(other)),
        }
    }
}

/// The answer to parameters that do not deserialize: 404 for bytes that are not text (no
/// resource is named by them), 400 naming the parameter for a value of the wrong form, 500 for
/// a `T` that does not fit the route. Said without the Rust types axum's messages name.
fn refusal(failed: FailedToDeserializePathParams) -> ApiError {
    match failed.kind() {
        ErrorKind::InvalidUtf8InPathParam { .. } => nothing_here(),
        ErrorKind::ParseErrorAtKey { key, .. } | ErrorKind::DeserializeError { key, .. } => {
            ApiError::bad_request(format!("The path parameter `{key}` has an invalid value."))
        }
        ErrorKind::WrongNumberOfParameters { .. } | ErrorKind::UnsupportedType { .. } => {
            ApiError::internal(failed)
        }
        _ => ApiError::bad_request("A path parameter has an invalid value."),
    }
}

fn nothing_here() -> ApiError {
    ApiError::not_found("Nothing exists at this path.")
}

impl<T> std::ops::Deref for Path<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// What a generated `Params` type calls to fill itself from the matched path: the same
/// deserialization (and the same 400) as [`Path`].
///
/// An optional catch-all mounted without its tail has no parameters at all; the struct's
/// `Option` fields then deserialize as `None`.
pub async fn path_params<T: DeserializeOwned + Send>(parts: &mut Parts) -> Result<T, ApiError> {
    Path::<T>::from_request_parts(parts, &())
        .await
        .map(|Path(value)| value)
}
