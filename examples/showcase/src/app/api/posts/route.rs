//! `GET /api/posts` (a page of posts) and `POST /api/posts` (write one, signed in).

use garde::Validate;
use serde::Deserialize;
use waypost::{
    extract::{Json, Query, State, Valid},
    response::{Created, CreatedAt},
    security::{Auth, MaybeAuth},
    ApiError, RouteConfig,
};

use crate::{
    posts::{self, ListQuery, Page, Post, PostInput, Sort},
    users::User,
    AppState,
};

/// A create retried with the same `Idempotency-Key` gets its 201 back, not a 409 for the title
/// it took the first time.
pub const CONFIG: RouteConfig = RouteConfig::new().idempotent();

/// `?page&limit&sort&category`.
#[derive(schemars::JsonSchema, Debug, Deserialize, Validate)]
pub struct ListParams {
    /// 1-based, default 1.
    #[garde(range(min = 1))]
    pub page: Option<u32>,
    /// 1–100, default 10.
    #[garde(range(min = 1, max = 100))]
    pub limit: Option<u32>,
    /// `createdAt` (newest first, the default) or `title` (A→Z).
    #[garde(skip)]
    pub sort: Option<Sort>,
    /// Only posts of this category.
    #[garde(length(chars, min = 1, max = 100), custom(crate::rules::no_nul))]
    #[schemars(pattern(crate::rules::NO_NUL_PATTERN))]
    pub category: Option<String>,
}

/// Published posts page by page, plus the caller's own drafts when signed in.
pub async fn get(
    State(state): State<AppState>,
    MaybeAuth(viewer): MaybeAuth<User>,
    Valid(Query(params)): Valid<Query<ListParams>>,
) -> Result<Json<Page>, ApiError> {
    let query = ListQuery {
        page: params.page.unwrap_or(1),
        limit: params.limit.unwrap_or(10),
        sort: params.sort.unwrap_or_default(),
        category: params.category.as_deref(),
        viewer: viewer.as_ref().map(|user| user.id.as_str()),
    };
    Ok(Json(posts::list(state.db(), &query).await?))
}

/// Creates a post by the caller; 201 with the post, 409 when the title is taken.
pub async fn post(
    State(state): State<AppState>,
    Auth(author): Auth<User>,
    Valid(Json(input)): Valid<Json<PostInput>>,
) -> Result<CreatedAt<Post>, ApiError> {
    let post = posts::create(state.db(), input, Some(&author.id)).await?;
    let location = format!("/api/posts/{}", post.id);
    Ok(Created(post).at(location))
}
