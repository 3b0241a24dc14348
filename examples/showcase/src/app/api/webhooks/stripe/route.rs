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

/// The credits a payment adds (`None`: none — absent, not a whole number of at least one, or
/// past what a balance holds). Stripe's metadata values are strings; numbers are accepted too.
fn credits_of(metadata: &Value) -> Option<i64> {
    let whole = |number: f64| (number.fract() == 0.0 && number.abs() < i64::MAX as f64).then_some(number as i64);
    match &metadata["credits"] {
        Value::Number(number) => number.as_i64().or_else(|| number.as_f64().and_then(whole)),
        Value::String(text) => {
            let text = text.trim();
            text.parse::<i64>()
                .ok()
                .or_else(|| text.parse::<f64>().ok().and_then(whole))
        }
        _ => None,
    }
    .filter(|credits| *credits >= 1)
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
        let user_id = metadata["userId"].as_str();
        // Text with a NUL names no event or user here (Postgres cannot even store it): signed,
        // so acknowledged — a refusal would only have Stripe resend it — but not applied.
        if event.id.contains('\0') || user_id.is_some_and(|id| id.contains('\0')) {
            tracing::warn!("a payment event with a NUL character in its id or user id: not applied");
        } else if let (Some(user_id), Some(credits)) = (user_id, credits_of(metadata)) {
            // The claim and the credit commit together: a replay finds the claim and adds
            // nothing, also when it arrives concurrently.
            let mut transaction = state.db().begin().await?;
            if claim_once(&mut *transaction, "processed_webhooks", &event.id).await? {
                if credit_ledger()
                    .grant(&mut *transaction, user_id, credits)
                    .await?
                    .is_none()
                {
                    tracing::warn!(
                        event = %event.id,
                        user = %user_id,
                        credits,
                        "payment for an unknown user, or more than the balance can hold: not added"
                    );
                }
            }
            transaction.commit().await?;
        }
    }
    Ok(Json(Acknowledged { received: true }))
}
