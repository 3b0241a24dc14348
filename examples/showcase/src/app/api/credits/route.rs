//! `GET /api/credits`: the caller's credit balance.

use serde::Serialize;
use waypost::{
    extract::{Json, State},
    security::Auth,
    ApiError,
};

use crate::{
    users::{credit_ledger, User},
    AppState,
};

/// The caller's balance.
#[derive(Serialize, schemars::JsonSchema)]
pub struct Balance {
    /// Credits left.
    pub credits: i64,
}

/// 200 `{"credits": n}`.
pub async fn get(State(state): State<AppState>, Auth(user): Auth<User>) -> Result<Json<Balance>, ApiError> {
    let credits = credit_ledger()
        .balance(state.db(), &user.id)
        .await?
        .unwrap_or(0);
    Ok(Json(Balance { credits }))
}
