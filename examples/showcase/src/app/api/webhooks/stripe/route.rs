//! `POST /api/webhooks/stripe`: verified Stripe events; `payment_intent.succeeded` adds credits,
//! exactly once per event id.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use waypost::{
    axum::{
        body::Bytes,
        http::{HeaderMap, StatusCode},
    },
    credits::claim_once,
    extract::{Json, State},
    webhook::StripeVerifier,
    ApiError, RouteConfig,
};

use crate::{users::credit_ledger, AppState};

/// Stripe signs its requests instead of carrying a CSRF token.
pub const CONFIG: RouteConfig = RouteConfig::new().skip_csrf();

#[derive(Deserialize)]
struct StripeEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Value,
}

/// The most credits one payment may add: far above any real purchase, far below what could
/// overflow a balance.
const MAX_CREDITS_PER_PAYMENT: i64 = 1_000_000;

/// The credits a payment adds (`None`: none). Stripe's metadata values are strings; numbers
/// are accepted too. More than [`MAX_CREDITS_PER_PAYMENT`] is refused, not added.
fn credits_of(metadata: &Value) -> Result<Option<i64>, ApiError> {
    let credits = match &metadata["credits"] {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse::<f64>().ok(),
        _ => None,
    };
    match credits {
        Some(credits) if credits > MAX_CREDITS_PER_PAYMENT as f64 => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_event",
            format!("A payment adds at most {MAX_CREDITS_PER_PAYMENT} credits."),
        )),
        Some(credits) if credits >= 1.0 && credits.fract() == 0.0 => Ok(Some(credits as i64)),
        _ => Ok(None),
    }
}

/// The answer Stripe expects.
#[derive(Serialize, schemars::JsonSchema)]
pub struct Acknowledged {
    /// Always `true`.
    pub received: bool,
}

/// 200 `{"received": true}`; 400 `invalid_signature` for a missing, wrong or stale signature.
pub async fn post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Acknowledged>, ApiError> {
    let Some(secret) = &state.config().stripe_webhook_secret else {
        return Err(ApiError::unavailable(
            "webhooks_unavailable",
            "Webhooks are not configured (STRIPE_WEBHOOK_SECRET).",
        ));
    };
    StripeVerifier::new(secret.as_bytes()).verify(&headers, &body)?;
    let event: StripeEvent = Json::from_bytes(&body)?.0;
    if event.kind == "payment_intent.succeeded" {
        let metadata = &event.data["object"]["metadata"];
        if let (Some(user_id), Some(credits)) = (metadata["userId"].as_str(), credits_of(metadata)?) {
            // The claim and the credit commit together: a replay finds the claim and adds
            // nothing, also when it arrives concurrently.
            let mut transaction = state.db().begin().await?;
            if claim_once(&mut *transaction, "processed_webhooks", &event.id).await? {
                if credit_ledger()
                    .grant(&mut *transaction, user_id, credits)
                    .await?
                    .is_none()
                {
                    tracing::warn!(event = %event.id, user = %user_id, "payment for an unknown user");
                }
            }
            transaction.commit().await?;
        }
    }
    Ok(Json(Acknowledged { received: true }))
}
