//! `Json<T>`: a JSON body in, a JSON body out; rejections are 415, 413 or 400 `invalid_json`.

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
};
use serde::{de::DeserializeOwned, Serialize};

use super::declared::DeclaredShape;
use crate::{short_quotes::shorten_quoted_values, ApiError};

/// A JSON request body (checked `Content-Type`, bounded by the route's body limit) or a JSON
/// response.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        Self::from_bytes(&read_json_body(request).await?)
    }
}

/// A JSON request body parsed as `T`, together with the exact bytes that came — for a handler
/// that checks a document and passes it on untouched (a proxy: fields it does not know and the
/// client's own formatting reach the backend as sent). Rejections are [`Json`]'s.
#[derive(Debug, Clone)]
pub struct JsonWithBytes<T> {
    /// The body, parsed.
    pub value: T,
    /// The body as it came.
    pub bytes: Bytes,
}

impl<T, S> FromRequest<S> for JsonWithBytes<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_json_body(request).await?;
        let Json(value) = Json::from_bytes(&bytes)?;
        Ok(Self { value, bytes })
    }
}

/// The body of a request that says it is JSON (415 otherwise), within the route's limit.
async fn read_json_body(request: Request) -> Result<Bytes, ApiError> {
    if !super::has_json_content_type(request.headers()) {
        return Err(ApiError::unsupported_media_type("application/json"));
    }
    super::read_body(request).await
}

impl<T: DeserializeOwned> Json<T> {
    /// Parses `bytes` as `T`, answering 400 `invalid_json` with where it went wrong.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ApiError> {
        // serde takes a struct from an array of its fields in order too; a JSON API means an
        // object (checked only when an array came, so an object body costs one comparison).
        let is_array = bytes.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'[');
        if is_array && DeclaredShape::of::<T>().wants_object() {
            return Err(ApiError::invalid_json(
                "The JSON body has the wrong shape: expected an object, found an array.",
            ));
        }
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let value = T::deserialize(&mut deserializer)
            .and_then(|value| deserializer.end().map(|()| value))
            .map_err(|error| {
                let message = match error.classify() {
                    serde_json::error::Category::Data => {
                        let refused = ApiError::invalid_json(format!(
                            "The JSON body has the wrong shape: {}.",
                            shorten_quoted_values(&without_type_names(&error.to_string()))
                        ));
                        return match field_at_fault::<T>(bytes) {
                            Some((field, problem)) => {
                                refused.with_details(serde_json::json!({ field: [problem] }))
                            }
                            None => refused,
                        };
                    }
                    serde_json::error::Category::Eof => {
                        "The request body is not valid JSON: it ends too early.".to_owned()
                    }
                    _ => format!("The request body is not valid JSON: {error}."),
                };
                ApiError::invalid_json(message)
            })?;
        Ok(Json(value))
    }
}

/// The field a shape error is about and what is wrong with it, for the error's `details`
/// (`{"pinned": ["invalid type: string \"yes\", expected a boolean"]}`, `messages[0].role`
/// when nested); `None` when the body as a whole is at fault. The body is read again with its
/// path tracked — only once it was refused, so a body that fits pays nothing for it.
fn field_at_fault<T: DeserializeOwned>(bytes: &[u8]) -> Option<(String, String)> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let error = serde_path_to_error::deserialize::<_, T>(&mut deserializer).err()?;
    let path = error.path().to_string();
    let inner = error.into_inner();
    let full = inner.to_string();
    let location = format!(" at line {} column {}", inner.line(), inner.column());
    let message = without_type_names(full.strip_suffix(&location).unwrap_or(&full));
    let (field, problem) = super::urlencoded::described(&message, path, "");
    (!field.is_empty()).then_some((field, problem))
}

/// serde names the Rust type it expected (`expected struct ContactForm`, `untagged enum Shape`):
/// a client is told the JSON it should send instead, and learns nothing of the server's types.
/// The kinds are serde_derive's, longest first so none is cut short by a shorter one.
fn without_type_names(message: &str) -> String {
    const KINDS: [(&str, &str); 10] = [
        ("any variant of untagged enum ", "any of the allowed shapes"),
        ("internally tagged enum ", "one of the allowed values"),
        ("adjacently tagged enum ", "one of the allowed values"),
        ("struct variant ", "an object"),
        ("tuple variant ", "an array"),
        ("newtype struct ", "a value"),
        ("tuple struct ", "an array"),
        ("unit struct ", "null"),
        ("struct ", "an object"),
        ("enum ", "one of the allowed values"),
    ];
    let mut text = message.to_owned();
    for (kind, public) in KINDS {
        while let Some(start) = text.find(kind) {
            let name = &text[start + kind.len()..];
            let end = name
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(name.len());
            text.replace_range(start..start + kind.len() + end, public);
        }
    }
    text
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        // Most bodies are small: one allocation of 128 bytes usually holds the whole document,
        // and the response is built directly so `Content-Type` is set once.
        let mut bytes = Vec::with_capacity(128);
        match serde_json::to_writer(&mut bytes, &self.0) {
            Ok(()) => {
                let mut response = Response::new(axum::body::Body::from(bytes));
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, APPLICATION_JSON);
                response
            }
            Err(error) => ApiError::internal(error).into_response(),
        }
    }
}

/// `application/json`, checked once at compile time.
pub(crate) const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct ContactForm {
        name: String,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    enum Sort {
        Title,
    }

    #[test]
    fn shape_errors_do_not_name_the_servers_types() {
        let error = Json::<ContactForm>::from_bytes(br#""x""#).unwrap_err();
        let message = error.message();
        assert!(!message.contains("ContactForm"), "{message}");
        assert!(message.contains("expected an object"), "{message}");
        let error = Json::<Sort>::from_bytes(b"1").unwrap_err();
        assert!(!error.message().contains("Sort"), "{}", error.message());
        // A struct is not taken from an array of its fields.
        let error = Json::<ContactForm>::from_bytes(br#" ["Ann"]"#).unwrap_err();
        assert_eq!(error.code(), "invalid_json");
        assert!(error.message().contains("expected an object"));
        assert_eq!(Json::<Vec<u8>>::from_bytes(b"[1, 2]").unwrap().0, [1, 2]);
        for (serde_says, client_reads) in [
            (
                "invalid type: map, expected tuple struct Pair at line 1",
                "invalid type: map, expected an array at line 1",
            ),
            (
                "invalid type: string, expected struct variant E::A",
                "invalid type: string, expected an object",
            ),
            (
                "invalid type: map, expected tuple variant E::B",
                "invalid type: map, expected an array",
            ),
            (
                "invalid type: null, expected internally tagged enum Tagged",
                "invalid type: null, expected one of the allowed values",
            ),
            (
                "expected adjacently tagged enum Adj",
                "expected one of the allowed values",
            ),
            (
                "data did not match any variant of untagged enum Untagged",
                "data did not match any of the allowed shapes",
            ),
            ("expected newtype struct Id", "expected a value"),
        ] {
            assert_eq!(without_type_names(serde_says), client_reads);
        }
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Note {
        email: String,
        pinned: Option<bool>,
        tags: Option<Vec<Tag>>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Tag {
        label: String,
        weight: Option<u8>,
    }

    fn details_of(body: &str) -> Option<serde_json::Value> {
        let error = Json::<Note>::from_bytes(body.as_bytes()).unwrap_err();
        assert_eq!(error.code(), "invalid_json", "{body}");
        error.details().cloned()
    }

    #[test]
    fn a_shape_error_names_the_field_at_fault_in_details() {
        use serde_json::json;
        assert_eq!(
            details_of(r#"{"pinned": true}"#),
            Some(json!({ "email": ["is required"] }))
        );
        assert_eq!(
            details_of(r#"{"email": "a@b.c", "pinned": "yes"}"#),
            Some(json!({ "pinned": ["invalid type: string \"yes\", expected a boolean"] }))
        );
        assert_eq!(
            details_of(r#"{"email": "a@b.c", "tags": [{"label": "x"}, {"weight": 1}]}"#),
            Some(json!({ "tags[1].label": ["is required"] }))
        );
        assert_eq!(
            details_of(r#"{"email": "a@b.c", "tags": [{"label": "x", "weight": 300}]}"#),
            Some(json!({ "tags[0].weight": ["invalid value: integer `300`, expected u8"] }))
        );
        let unknown = details_of(r#"{"email": "a@b.c", "tags": [{"label": "x", "lable": 1}]}"#)
            .expect("named");
        let (field, problems) = unknown.as_object().unwrap().iter().next().unwrap();
        assert!(field.starts_with("tags[0]"), "{unknown}");
        assert!(
            problems[0]
                .as_str()
                .unwrap()
                .contains("unknown field `lable`"),
            "{unknown}"
        );
        // A map's keys are the client's own: a long one comes back cut short.
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Catalog {
            items: std::collections::HashMap<String, Tag>,
        }
        let long_key = "k".repeat(10_000);
        let error = Json::<Catalog>::from_bytes(
            format!(r#"{{"items": {{"{long_key}": {{"weight": 1}}}}}}"#).as_bytes(),
        )
        .unwrap_err();
        let details = error.details().unwrap().as_object().unwrap();
        let (field, _) = details.iter().next().unwrap();
        assert!(field.len() < 100, "{} bytes", field.len());
        assert!(field.ends_with(".label"), "{field}");
        // The body as a whole: no one field to name.
        assert_eq!(details_of(r#""just a string""#), None);
        // Not JSON at all: a syntax error, not a shape one.
        let broken = Json::<Note>::from_bytes(b"{\"email\": ").unwrap_err();
        assert_eq!(broken.details(), None);
    }
}
