//! `GET /api/users`: every account, page by page — admins only.

use waypost::{
    extract::{Json, Query, State, Valid},
    security::Auth,
    ApiError,
};

use crate::{
    pagination::{PageParams, Pagination},
    users::{self, Admin, UserPage},
    AppState,
};

/// 200 `{"users", "pagination"}`; 403 for non-admins, whatever the paging they ask for.
pub async fn get(
    State(state): State<AppState>,
    Auth(Admin(_admin)): Auth<Admin>,
    Valid(Query(params)): Valid<Query<PageParams>>,
) -> Result<Json<UserPage>, ApiError> {
    let (page, limit) = (params.page(), params.limit());
    let (list, total) = users::list(state.db(), page, limit).await?;
    Ok(Json(UserPage {
        users: list,
        pagination: Pagination::new(page, limit, total),
    }))
}
