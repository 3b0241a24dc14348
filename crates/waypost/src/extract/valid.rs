//! `Valid<E>`: parse with `E` (`Json`, `Query`, `Form`), then run `garde` validation; a failure is
//! 400 `validation_failed` with `details` = `{"field": ["message", …]}`, every field at once.

use std::collections::BTreeMap;

use axum::{
    extract::{FromRequest, FromRequestParts, Request},
    http::request::Parts,
};
use garde::Validate;
use serde::de::DeserializeOwned;

use super::{Form, Json, Query};
use crate::ApiError;

/// A payload that passed its `garde` rules. Deref gives the inner value.
///
/// # Example
/// ```
/// use waypost::extract::{Json, Valid};
///
/// #[derive(serde::Deserialize, garde::Validate)]
/// struct NewPost {
///     #[garde(length(chars, min = 5, max = 200))]
///     title: String,
/// }
///
/// async fn create(Valid(Json(post)): Valid<Json<NewPost>>) -> String {
///     post.title
/// }
/// # let _ = create;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Valid<E>(pub E);

/// Runs `garde` rules on `value` and turns a report into the one error shape.
pub fn check<T: Validate<Context = ()>>(value: &T) -> Result<(), ApiError> {
    value.validate().map_err(|report| {
        let mut details: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (path, error) in report.iter() {
            let field = path.to_string();
            let field = if field.is_empty() {
                "body".to_owned()
            } else {
                field
            };
            details
                .entry(field)
                .or_default()
                .push(friendly(error.message()));
        }
        ApiError::validation(details)
    })
}

/// garde's wording, made to read as a sentence about the field.
fn friendly(message: &str) -> String {
    match message {
        "not set" => "is required".to_owned(),
        other => other.to_owned(),
    }
}

/// Types that can be validated in place, so handlers can also call `Validated::validated`.
pub trait Validated: Sized {
    /// Validates and hands the value back.
    fn validated(self) -> Result<Self, ApiError>;
}

impl<T: Validate<Context = ()>> Validated for T {
    fn validated(self) -> Result<Self, ApiError> {
        check(&self)?;
        Ok(self)
    }
}

impl<T, S> FromRequest<S> for Valid<Json<T>>
where
    T: DeserializeOwned + Validate<Context = ()>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = Json::<T>::from_request(request, state).await?;
        check(&json.0)?;
        Ok(Valid(json))
    }
}

impl<T, S> FromRequest<S> for Valid<Form<T>>
where
    T: DeserializeOwned + Validate<Context = ()>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let form = Form::<T>::from_request(request, state).await?;
        check(&form.0)?;
        Ok(Valid(form))
    }
}

impl<T, S> FromRequestParts<S> for Valid<Query<T>>
where
    T: DeserializeOwned + Validate<Context = ()>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let query = Query::<T>::from_request_parts(parts, state).await?;
        check(&query.0)?;
        Ok(Valid(query))
    }
}

impl<E> std::ops::Deref for Valid<E> {
    type Target = E;
    fn deref(&self) -> &E {
        &self.0
    }
}
