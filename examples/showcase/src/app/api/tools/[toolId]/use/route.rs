//! `POST /api/tools/{toolId}/use`: a daily usage quota per user (or client IP), per tool.

use serde_json::{json, Value};
use waypost::{
    axum::http::StatusCode,
    credits::DailyQuota,
    extract::{Json, State},
    security::{ClientIp, MaybeAuth},
    ApiError,
};

use super::Params;
use crate::{users::User, AppState};

fn quota() -> DailyQuota {
    DailyQuota::new("tool_usage")
}

/// 200 `{"allowed": true, "limit", "used", "resetsAt"}`, or 429 `quota_exceeded` with the same
/// fields and `allowed: false`. Admins are unlimited.
pub async fn post(
    State(state): State<AppState>,
    MaybeAuth(user): MaybeAuth<User>,
    ClientIp(ip): ClientIp,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    // Any id names a tool (it is only ever a bound SQL value); the cap keeps keys small.
    let tool = params.toolId.as_str();
    if tool.chars().count() > 1024 {
        return Err(ApiError::invalid_field("toolId", "must be at most 1024 characters"));
    }
    let (subject, limit) = match &user {
        Some(user) if user.is_admin() => (format!("user:{}", user.id), None),
        Some(user) => (format!("user:{}", user.id), Some(state.config().tool_daily_limit)),
        None => (format!("ip:{ip}"), Some(state.config().tool_daily_limit)),
    };
    let usage = quota().try_use(state.db(), &subject, tool, limit).await?;
    let limit = usage.limit.map_or(json!("unlimited"), |limit| json!(limit));
    if usage.allowed {
        return Ok(Json(json!({
            "allowed": true,
            "limit": limit,
            "used": usage.used,
            "resetsAt": usage.resets_at,
        })));
    }
    let mut fields = serde_json::Map::new();
    fields.insert("allowed".into(), json!(false));
    fields.insert("limit".into(), limit);
    fields.insert("used".into(), json!(usage.used));
    fields.insert("resetsAt".into(), json!(usage.resets_at));
    Err(ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "quota_exceeded",
        "The daily limit for this tool is reached.",
    )
    .with_fields(fields))
}
