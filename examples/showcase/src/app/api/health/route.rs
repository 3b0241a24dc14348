//! `GET /api/health`: is the service up, and can it reach its database?

use serde::Serialize;
use serde_json::json;
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

/// 200 when the database answers, 503 `database_unavailable` when it does not.
pub async fn get(State(state): State<AppState>) -> Result<Json<Healthy>, ApiError> {
    if waypost::database::ping(state.db()).await {
        Ok(Json(Healthy {
            status: "ok",
            database: "ok",
        }))
    } else {
        let mut fields = serde_json::Map::new();
        fields.insert("status".into(), json!("error"));
        fields.insert("database".into(), json!("down"));
        Err(
            ApiError::unavailable("database_unavailable", "The database is unavailable.")
                .with_fields(fields),
        )
    }
}
