//! `GET /api/health`: is the service up, and can it reach its database?

use serde::Serialize;
use waypost::{
    extract::{Json, State},
    ApiError,
};

use crate::AppState;

/// The service is up and its database answers.
#[derive(Serialize, schemars::JsonSchema)]
pub struct Healthy {
    /// Always `ok`.
    pub status: &'static str,
    /// Always `ok`.
    pub database: &'static str,
}

/// 200 when the database answers with the app's schema in it, 503 `database_unavailable` when
/// it does not.
pub async fn get(State(state): State<AppState>) -> Result<Json<Healthy>, ApiError> {
    if waypost::database::ping(state.db(), "_sqlx_migrations").await {
        Ok(Json(Healthy {
            status: "ok",
            database: "ok",
        }))
    } else {
        Err(
            ApiError::unavailable("database_unavailable", "The database is unavailable.")
                .with_details(serde_json::json!({ "database": ["down"] })),
        )
    }
}
