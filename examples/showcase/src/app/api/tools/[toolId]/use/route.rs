//! `POST /api/tools/{toolId}/use`: a daily usage quota per user (or client IP), per tool.

use serde::Serialize;
use serde_json::json;
use waypost::{
    axum::http::{header, HeaderValue, StatusCode},
    credits::DailyQuota,
    extract::{Json, State},
    security::{rate_limit::counted_address, ClientIp, MaybeAuth},
    ApiError,
};

use super::Params;
use crate::{users::User, AppState};

fn quota() -> DailyQuota {
    DailyQuota::new("tool_usage")
}

/// A use counted against the day's quota.
#[derive(Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolUse {
    /// Always `true` (a refused use is a 429 with the same fields).
    pub allowed: bool,
    /// Uses per day.
    pub limit: DailyLimit,
    /// Uses so far today, this one included.
    pub used: u64,
    /// When the count starts over (RFC 3339, UTC midnight).
    pub resets_at: String,
}

/// A daily limit: a number, or `"unlimited"` (admins).
#[derive(Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum DailyLimit {
    /// At most this many uses a day.
    Uses(u64),
    /// No limit: always the string `unlimited`.
    Unlimited(&'static str),
}

/// 200 `{"allowed": true, "limit", "used", "resetsAt"}`, or 429 `quota_exceeded` with the same
/// fields, `allowed: false` and `Retry-After` (seconds until `resetsAt`). Admins are unlimited.
pub async fn post(
    State(state): State<AppState>,
    MaybeAuth(user): MaybeAuth<User>,
    ClientIp(ip): ClientIp,
    params: Params,
) -> Result<Json<ToolUse>, ApiError> {
    // Any id names a tool (it is only ever a bound SQL value); the cap keeps keys small.
    let tool = params.toolId.as_str();
    if tool.chars().count() > 1024 {
        return Err(ApiError::invalid_field("toolId", "must be at most 1024 characters"));
    }
    let (subject, limit) = match &user {
        Some(user) if user.is_admin() => (format!("user:{}", user.id), None),
        Some(user) => (format!("user:{}", user.id), Some(state.config().tool_daily_limit)),
        // Counted as the rate limits count addresses: an IPv6 client by its /64.
        None => (
            format!("ip:{}", counted_address(ip)),
            Some(state.config().tool_daily_limit),
        ),
    };
    let usage = quota().try_use(state.db(), &subject, tool, limit).await?;
    let limit = usage
        .limit
        .map_or(DailyLimit::Unlimited("unlimited"), DailyLimit::Uses);
    if usage.allowed {
        return Ok(Json(ToolUse {
            allowed: true,
            limit,
            used: usage.used,
            resets_at: usage.resets_at,
        }));
    }
    let mut fields = serde_json::Map::new();
    fields.insert("allowed".into(), json!(false));
    fields.insert("limit".into(), json!(limit));
    fields.insert("used".into(), json!(usage.used));
    fields.insert("resetsAt".into(), json!(usage.resets_at));
    // Like every 429, it says when to come back: at the next UTC midnight.
    Err(ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "quota_exceeded",
        "The daily limit for this tool is reached.",
    )
    .with_fields(fields)
    .with_header(header::RETRY_AFTER, HeaderValue::from(usage.resets_in_secs)))
}
