//! `/api/posts/{id}`: read, replace, patch and delete one post.

use waypost::{
    axum::response::Response,
    extract::{Json, State, Valid},
    response, ApiError,
};

use super::Params;
use crate::{
    posts::{self, Post, PostInput, PostPatch},
    AppState,
};

async fn visible_post(state: &AppState, id: &str) -> Result<Post, ApiError> {
    posts::find(state.db(), id)
        .await?
        .filter(|post| posts::visible_to(post, None))
        .ok_or_else(|| ApiError::not_found("No post with this id."))
}

async fn existing_post(state: &AppState, id: &str) -> Result<Post, ApiError> {
    posts::find(state.db(), id)
        .await?
        .ok_or_else(|| ApiError::not_found("No post with this id."))
}

/// The post, or 404 (drafts are visible only to their author).
pub async fn get(State(state): State<AppState>, params: Params) -> Result<Json<Post>, ApiError> {
    Ok(Json(visible_post(&state, &params.id).await?))
}

/// Replaces every client-settable field.
pub async fn put(
    State(state): State<AppState>,
    params: Params,
    Valid(Json(input)): Valid<Json<PostInput>>,
) -> Result<Json<Post>, ApiError> {
    let mut post = existing_post(&state, &params.id).await?;
    input.replace(&mut post);
    Ok(Json(posts::save(state.db(), post).await?))
}

/// Changes the fields present in the body.
pub async fn patch(
    State(state): State<AppState>,
    params: Params,
    Valid(Json(patch)): Valid<Json<PostPatch>>,
) -> Result<Json<Post>, ApiError> {
    let mut post = existing_post(&state, &params.id).await?;
    patch.apply(&mut post);
    Ok(Json(posts::save(state.db(), post).await?))
}

/// Deletes the post: 204 with no body.
pub async fn delete(State(state): State<AppState>, params: Params) -> Result<Response, ApiError> {
    if posts::delete(state.db(), &params.id).await? {
        Ok(response::no_content())
    } else {
        Err(ApiError::not_found("No post with this id."))
    }
}
