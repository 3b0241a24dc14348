//! `/api/posts/{id}`: read (anyone, drafts only their author), replace, patch and delete
//! (the author or an admin).

use waypost::{
    extract::{validate, Json, State},
    response::NoContent,
    security::{Auth, MaybeAuth},
    ApiError,
};

use super::Params;
use crate::{
    posts::{self, Post, PostInput, PostPatch},
    users::User,
    AppState,
};

fn not_found() -> ApiError {
    ApiError::not_found("No post with this id.")
}

/// The post `editor` may change: 404 when it does not exist, 403 when it is someone else's —
/// a draft too: the contract answers writes to another user's post with 403, and post ids are
/// random 128-bit values, so this reveals nothing a client could have guessed.
async fn editable_post(state: &AppState, id: &str, editor: &User) -> Result<Post, ApiError> {
    let post = posts::find(state.db(), id).await?.ok_or_else(not_found)?;
    if editor.is_admin() || post.author_id.as_deref() == Some(editor.id.as_str()) {
        return Ok(post);
    }
    Err(ApiError::forbidden("Only the author or an admin can change this post."))
}

/// The post, or 404 (also for another user's draft).
pub async fn get(
    State(state): State<AppState>,
    MaybeAuth(viewer): MaybeAuth<User>,
    params: Params,
) -> Result<Json<Post>, ApiError> {
    let viewer = viewer.as_ref().map(|user| user.id.as_str());
    posts::find(state.db(), &params.id)
        .await?
        .filter(|post| posts::visible_to(post, viewer))
        .map(Json)
        .ok_or_else(not_found)
}

/// Replaces every client-settable field. Who may change the post is settled before the body's
/// rules are checked: someone else's post is 403 (an unknown one 404) for any body that parses;
/// a body that does not parse is 400 `invalid_json` first.
pub async fn put(
    State(state): State<AppState>,
    Auth(editor): Auth<User>,
    params: Params,
    Json(input): Json<PostInput>,
) -> Result<Json<Post>, ApiError> {
    let mut post = editable_post(&state, &params.id, &editor).await?;
    validate(&input)?;
    input.replace(&mut post);
    // A full replace: the last one written wins, as it would have a moment later.
    posts::save(state.db(), post, None)
        .await?
        .map(Json)
        .ok_or_else(not_found)
}

/// Changes the fields present in the body (ownership first, as for `put`).
pub async fn patch(
    State(state): State<AppState>,
    Auth(editor): Auth<User>,
    params: Params,
    Json(patch): Json<PostPatch>,
) -> Result<Json<Post>, ApiError> {
    let mut seen = editable_post(&state, &params.id, &editor).await?;
    validate(&patch)?;
    // The change goes onto the post as stored when it is written: one made meanwhile (another
    // field patched at the same moment) is read again and kept, never written over.
    for _ in 0..PATCH_ATTEMPTS {
        let mut post = seen.clone();
        if !patch.apply(&mut post) {
            // Nothing to change: no write, and `updatedAt` still says when the post last changed.
            return Ok(Json(post));
        }
        if let Some(saved) = posts::save(state.db(), post, Some(&seen)).await? {
            return Ok(Json(saved));
        }
        seen = editable_post(&state, &params.id, &editor).await?;
    }
    Err(ApiError::conflict(
        "The post kept changing while this edit was being saved; send it again.",
    ))
}

/// How often a PATCH is re-applied to a post that changed while it was being saved.
const PATCH_ATTEMPTS: usize = 8;

/// Deletes the post: 204 with no body.
pub async fn delete(
    State(state): State<AppState>,
    Auth(editor): Auth<User>,
    params: Params,
) -> Result<NoContent, ApiError> {
    let post = editable_post(&state, &params.id, &editor).await?;
    if posts::delete(state.db(), &post.id).await? {
        Ok(NoContent)
    } else {
        Err(not_found())
    }
}
