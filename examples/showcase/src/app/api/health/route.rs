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
/// it does not. The 503 is the one error shape and a health document at once
/// (`"status": "error", "database": "down"`): a monitor reading either finds what it looks for.
pub async fn get(State(state): State<AppState>) -> Result<Json<Healthy>, ApiError> {
    if waypost::database::ping(state.db(), "_sqlx_migrations").await {
        Ok(Json(Healthy {
            status: "ok",
            database: "ok",
        }))
    } else {
        let mut health = serde_json::Map::new();
        health.insert("status".into(), "error".into());
        health.insert("database".into(), "down".into());
        Err(
            ApiError::unavailable("database_unavailable", "The database is unavailable.")
                .with_details(serde_json::json!({ "database": ["down"] }))
                .with_fields(health),
        )
    }
}
