//! `GET /api/users/{id}`: one account — yourself, or anyone for an admin.

use waypost::{
    extract::{Json, State},
    security::Auth,
    ApiError,
};

use super::Params;
use crate::{
    users::{self, User, UserEnvelope},
    AppState,
};

/// 200 `{"user"}`; 403 for another user's id; 404 for an unknown one.
pub async fn get(
    State(state): State<AppState>,
    Auth(caller): Auth<User>,
    params: Params,
) -> Result<Json<UserEnvelope>, ApiError> {
    if params.id == caller.id {
        return Ok(Json(UserEnvelope { user: caller }));
    }
    match users::find(state.db(), &params.id).await? {
        None => Err(ApiError::not_found("No user with this id.")),
        Some(user) if caller.is_admin() => Ok(Json(UserEnvelope { user })),
        Some(_) => Err(ApiError::forbidden("You can only see your own account.")),
    }
}
