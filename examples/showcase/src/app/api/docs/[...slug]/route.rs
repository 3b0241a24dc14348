//! `GET /api/docs/{...slug}`: a catch-all route serving documentation pages by path.

use serde_json::{json, Value};
use waypost::{extract::Json, ApiError};

use super::Params;

/// The page at `slug` (`api/users`, `api/posts`), or 404.
pub async fn get(params: Params) -> Result<Json<Value>, ApiError> {
    let docs = match params.slug.trim_matches('/') {
        "api/users" => "User API documentation",
        "api/posts" => "Post API documentation",
        _ => return Err(ApiError::not_found("No documentation at this path.")),
    };
    Ok(Json(json!({ "docs": docs })))
}
