//! `Valid<E>`: parse with `E` (`Json`, `Query`, `Form`), then run `garde` validation; a failure is
//! 400 `validation_failed` with `details` = `{"field": ["message", …]}`, every field at once.
//!
//! `details` names each field as the client sent it: garde reports Rust field names
//! (`project_id`), so they are matched to the names the type's `Deserialize` impl declares
//! (`projectId` under `rename_all = "camelCase"`).
//!
//! What serde cannot read comes first, before any rule runs: a JSON body with a missing field
//! or a value of the wrong type is 400 `invalid_json`, its `details` naming that one field
//! (`{"title": ["is required"]}`). To report missing fields together with the rules' failures,
//! all at once as `validation_failed`, declare them `Option<T>` with `#[garde(required)]`, as
//! the showcase does. Unknown fields are ignored unless the type says
//! `#[serde(deny_unknown_fields)]`.

use std::collections::BTreeMap;

use axum::{
    extract::{FromRequest, FromRequestParts, Request},
    http::request::Parts,
};
use garde::Validate;
use serde::de::DeserializeOwned;

use super::{declared::DeclaredShape, Form, Json, Query};
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

/// Runs `garde` rules on `value` and turns a report into the one error shape, each field named
/// as the client sends it.
pub fn check<T: Validate<Context = ()> + DeserializeOwned>(value: &T) -> Result<(), ApiError> {
    value.validate().map_err(|report| {
        let sent_names = DeclaredShape::of::<T>().field_names();
        let mut details: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (path, error) in report.iter() {
            let field = path.to_string();
            let field = if field.is_empty() {
                "body".to_owned()
            } else {
                as_sent(&field, sent_names)
            };
            details
                .entry(field)
                .or_default()
                .push(friendly(error.message()));
        }
        ApiError::validation(details)
    })
}

/// `path` (garde's, from Rust names) with its first segment renamed to the matching name of
/// `sent_names`: the same letters once case, `_` and `-` are set aside.
fn as_sent(path: &str, sent_names: &[&str]) -> String {
    let split = path.find(['.', '[']).unwrap_or(path.len());
    let (first, rest) = path.split_at(split);
    let letters = |name: &str| -> String {
        name.chars()
            .filter(|c| !matches!(c, '_' | '-'))
            .flat_map(char::to_lowercase)
            .collect()
    };
    let wanted = letters(first);
    match sent_names.iter().find(|name| letters(name) == wanted) {
        Some(name) => format!("{name}{rest}"),
        None => path.to_owned(),
    }
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

impl<T: Validate<Context = ()> + DeserializeOwned> Validated for T {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, garde::Validate)]
    #[serde(rename_all = "camelCase")]
    struct Generate {
        #[garde(length(min = 1))]
        project_id: String,
        #[garde(length(min = 1))]
        #[serde(rename = "e-mail")]
        email: String,
        #[garde(length(min = 1))]
        title: String,
    }

    #[test]
    fn details_name_fields_as_the_client_sends_them() {
        let value = Generate {
            project_id: String::new(),
            email: String::new(),
            title: String::new(),
        };
        let error = check(&value).unwrap_err();
        let details = error.details().expect("details");
        let mut names: Vec<&str> = details
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        assert_eq!(names, ["e-mail", "projectId", "title"]);
        assert_eq!(
            as_sent("items[0].zip_code", &["items"]),
            "items[0].zip_code"
        );
        assert_eq!(as_sent("unknown_name", &["other"]), "unknown_name");
    }
}
