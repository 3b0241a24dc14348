//! Extractors whose rejections are the one JSON error shape.
//!
//! They mirror axum's (`Json`, `Query`, `Form`, `Path`) and add [`Valid`], which runs `garde`
//! validation after parsing, and [`JsonWithBytes`], a JSON body parsed and kept as it came (for
//! a proxy that checks what it passes on). Any plain axum extractor still works in a handler;
//! its rejection is turned into the same shape on the way out.

mod declared;
mod form;
mod json;
mod path;
mod query;
mod valid;

pub use axum::extract::{FromRequest, FromRequestParts, State};
pub use axum_extra::extract::cookie::{Cookie, CookieJar};
pub use form::Form;
pub use json::{Json, JsonWithBytes};
pub use path::{path_params, Path};
pub use query::Query;
pub use valid::{check as validate, Valid, Validated};

/// Whether a body read failed because the body was larger than the route's limit.
pub(crate) fn body_limit_exceeded(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = current {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        current = error.source();
    }
    false
}

/// Whether the request's `Content-Type` is `application/json` or a `+json` type.
pub(crate) fn has_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json") || subtype.to_ascii_lowercase().ends_with("+json"))
}

/// Reads the whole body within the route's limit, mapping failures to 413 / 400.
pub(crate) async fn read_body<S: Send + Sync>(
    request: axum::extract::Request,
    state: &S,
) -> Result<bytes::Bytes, crate::ApiError> {
    match bytes::Bytes::from_request(request, state).await {
        Ok(bytes) => Ok(bytes),
        Err(rejection) if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
            Err(crate::ApiError::payload_too_large())
        }
        Err(rejection) => Err(
            crate::ApiError::bad_request("The request body could not be read.")
                .with_source(rejection),
        ),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{header, HeaderMap, HeaderValue};

    use super::has_json_content_type;

    #[test]
    fn json_content_types_are_recognised() {
        let check = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            has_json_content_type(&headers)
        };
        assert!(check("application/json"));
        assert!(check("application/json; charset=utf-8"));
        assert!(check("Application/JSON"));
        assert!(check("application/merge-patch+json"));
        assert!(!check("text/plain"));
        assert!(!check("application/jsonx"));
        assert!(!check("multipart/form-data"));
        assert!(!has_json_content_type(&HeaderMap::new()));
    }
}
