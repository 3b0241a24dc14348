//! `Path<T>` and the generated routes' `Params`: path parameters with a JSON 400 on a bad value.

use axum::{
    extract::{
        path::ErrorKind,
        rejection::{FailedToDeserializePathParams, PathRejection},
        FromRequestParts, RawPathParams,
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
            Err(PathRejection::FailedToDeserializePathParams(failed)) => {
                // The names of the route's parameters, in order, for a refusal that gives only
                // a position (a tuple) or none (a single value).
                let names: Vec<String> = RawPathParams::from_request_parts(parts, state)
                    .await
                    .map(|raw| raw.iter().map(|(name, _)| name.to_owned()).collect())
                    .unwrap_or_default();
                Err(refusal(failed, &names))
            }
            // The extractor on a route without parameters: the app's mistake.
            Err(other) => Err(ApiError::internal(other)),
        }
    }
}

/// The answer to parameters that do not deserialize: 404 for bytes that are not text (no
/// resource is named by them), 400 naming the parameter (among the route's `names`) and what
/// its value must be for a value of the wrong form, 500 for a `T` that does not fit the route.
/// Said without the Rust types axum's messages name.
fn refusal(failed: FailedToDeserializePathParams, names: &[String]) -> ApiError {
    let (key, expected) = match failed.kind() {
        ErrorKind::InvalidUtf8InPathParam { .. } => return nothing_here(),
        ErrorKind::WrongNumberOfParameters { .. } | ErrorKind::UnsupportedType { .. } => {
            return ApiError::internal(failed);
        }
        ErrorKind::ParseErrorAtKey {
            key, expected_type, ..
        } => (Some(key.as_str()), Some(*expected_type)),
        ErrorKind::DeserializeError { key, .. } => (Some(key.as_str()), None),
        ErrorKind::ParseErrorAtIndex {
            index,
            expected_type,
            ..
        } => (names.get(*index).map(String::as_str), Some(*expected_type)),
        ErrorKind::ParseError { expected_type, .. } => (
            // One value for the whole path: its one parameter.
            names
                .first()
                .filter(|_| names.len() == 1)
                .map(String::as_str),
            Some(*expected_type),
        ),
        _ => (None, None),
    };
    let problem = expected.map_or("has an invalid value", must_be);
    match key {
        Some(key) => ApiError::bad_request(format!("The path parameter `{key}` {problem}."))
            .with_details(serde_json::json!({ key: [problem] })),
        None => ApiError::bad_request("A path parameter has an invalid value."),
    }
}

/// What a value of the Rust type `expected` (as axum names it) must be, in the client's words.
fn must_be(expected: &str) -> &'static str {
    match expected.rsplit("::").next().unwrap_or(expected) {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "must be a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "must be a whole number",
        "f32" | "f64" => "must be a number",
        "bool" => "must be true or false",
        "Uuid" => "must be a UUID",
        _ => "has an invalid value",
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
