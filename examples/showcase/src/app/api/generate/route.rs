//! `POST /api/generate`: spend one credit, run the generator, give the credit back if it fails.

use garde::Validate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use waypost::{
    extract::{Json, State, Valid},
    security::Auth,
    ApiError, RateLimit, RouteConfig,
};

use crate::{
    generate,
    users::{credit_ledger, User},
    AppState,
};

/// Ten generations a minute per user; a retry with the same `Idempotency-Key` gets the first
/// answer back instead of spending a second credit.
pub const CONFIG: RouteConfig = RouteConfig::new()
    .rate_limit(RateLimit::per_minute(10))
    .idempotent();

/// `{prompt, projectId?}`.
#[derive(schemars::JsonSchema, Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
pub struct GenerateInput {
    /// 1–4000 characters, not all whitespace (a blank prompt would spend a credit on nothing).
    #[garde(
        required,
        length(chars, min = 1, max = 4000),
        custom(crate::rules::not_blank)
    )]
    #[schemars(pattern(crate::rules::NOT_BLANK_PATTERN))]
    pub prompt: Option<String>,
    /// Optional project id.
    #[garde(length(chars, min = 1, max = 100))]
    pub project_id: Option<String>,
}

/// 200 `{"result", "credits"}`; 402 `no_credits`; 502 `upstream_failed` with the credit
/// refunded.
/// What one credit bought.
#[derive(Serialize, schemars::JsonSchema)]
pub struct Generated {
    /// The generator's answer, as it gave it.
    pub result: Value,
    /// Credits left after this one.
    pub credits: i64,
}

pub async fn post(
    State(state): State<AppState>,
    Auth(user): Auth<User>,
    Valid(Json(input)): Valid<Json<GenerateInput>>,
) -> Result<Json<Generated>, ApiError> {
    let prompt = input.prompt.unwrap_or_default();
    let (result, credits) = credit_ledger()
        .spend_for(state.db(), &user.id, 1, || {
            generate::run(&state, &prompt, input.project_id.as_deref())
        })
        .await?;
    Ok(Json(Generated { result, credits }))
}
