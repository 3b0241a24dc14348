//! `GET /api/credits`: the caller's credit balance.

use serde_json::{json, Value};
use waypost::{
    extract::{Json, State},
    security::Auth,
    ApiError,
};

use crate::{
    users::{credit_ledger, User},
    AppState,
};

/// 200 `{"credits": n}`.
pub async fn get(State(state): State<AppState>, Auth(user): Auth<User>) -> Result<Json<Value>, ApiError> {
    let credits = credit_ledger()
        .balance(state.db(), &user.id)
        .await?
        .unwrap_or(0);
    Ok(Json(json!({ "credits": credits })))
}
