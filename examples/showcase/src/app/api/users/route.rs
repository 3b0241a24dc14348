//! `GET /api/users`: every account, page by page — admins only.

use waypost::{
    extract::{Json, Query, State, Valid},
    security::Auth,
    ApiError,
};

use crate::{
    pagination::{PageParams, Pagination},
    users::{self, User, UserPage},
    AppState,
};

/// 200 `{"users", "pagination"}`; 403 for non-admins.
pub async fn get(
    State(state): State<AppState>,
    Auth(caller): Auth<User>,
    Valid(Query(params)): Valid<Query<PageParams>>,
) -> Result<Json<UserPage>, ApiError> {
    if !caller.is_admin() {
        return Err(ApiError::forbidden("Only admins can list users."));
    }
    let (page, limit) = (params.page(), params.limit());
    let (list, total) = users::list(state.db(), page, limit).await?;
    Ok(Json(UserPage {
        users: list,
        pagination: Pagination::new(page, limit, total),
    }))
}
