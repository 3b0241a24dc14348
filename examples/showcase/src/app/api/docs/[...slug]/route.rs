//! `GET /api/docs/{...slug}`: a catch-all route serving documentation pages by path.

use std::time::Duration;

use serde::Serialize;
use waypost::{extract::Json, ApiError, RouteConfig};

use super::Params;

/// The pages change only with a deploy: browsers and CDNs may keep them for an hour, and ask
/// again with `If-None-Match` (304) after.
pub const CONFIG: RouteConfig = RouteConfig::new().cache(Duration::from_secs(3600));

/// A documentation page.
#[derive(Serialize, schemars::JsonSchema)]
pub struct DocsPage {
    /// The page's text.
    pub docs: &'static str,
}

/// The page at `slug` (`api/users`, `api/posts`), or 404. Exactly those: with a trailing or
/// doubled slash it is another path, and 404 like `/api/hello/` is.
pub async fn get(params: Params) -> Result<Json<DocsPage>, ApiError> {
    let docs = match params.slug.as_str() {
        "api/users" => "User API documentation",
        "api/posts" => "Post API documentation",
        _ => return Err(ApiError::not_found("No documentation at this path.")),
    };
    Ok(Json(DocsPage { docs }))
}
