//! `POST /api/webhooks/stripe`: verified Stripe events; `payment_intent.succeeded` adds credits,
//! exactly once per event id.

use serde::Serialize;
use serde_json::Value;
use waypost::{
    axum::http::{HeaderMap, StatusCode},
    credits::claim_once,
    extract::{Json, RawBody, State},
    webhook::StripeVerifier,
    ApiError, RouteConfig,
};

use crate::{users::credit_ledger, AppState};

/// Stripe signs its requests instead of carrying a CSRF token.
pub const CONFIG: RouteConfig = RouteConfig::new().skip_csrf();


/// The credits a payment adds (`None`: none — absent, or not a whole number of at least one).
/// Stripe's metadata values are strings: a string of digits, or a JSON integer; nothing else
/// (`"1e3"`, `2.5`, `"0x10"`) is read as an amount.
fn credits_of(metadata: &Value) -> Option<i64> {
    match &metadata["credits"] {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => {
            // `parse` alone would take a sign; an empty string parses as nothing.
            let text = text.trim();
            text.bytes()
                .all(|byte| byte.is_ascii_digit())
                .then(|| text.parse::<i64>().ok())
                .flatten()
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
    RawBody(body): RawBody,
) -> Result<Json<Acknowledged>, ApiError> {
    let Some(secret) = &state.config().stripe_webhook_secret else {
        return Err(ApiError::unavailable(
            "webhooks_unavailable",
            "Webhooks are not configured (STRIPE_WEBHOOK_SECRET).",
        ));
    };
    StripeVerifier::new(secret.as_bytes()).verify(&headers, &body)?;
    // Stripe's events are objects that always carry `id` and `type` as strings; a signed JSON
    // body without them (or not an object at all) is acknowledged like any event this route has
    // no use for. Only a body that is not JSON is refused.
    let event: Value = Json::from_bytes(&body)?.0;
    if event["type"].as_str() == Some("payment_intent.succeeded") {
        let metadata = &event["data"]["object"]["metadata"];
        let user_id = metadata["userId"].as_str();
        // Signed, so acknowledged — a refusal would only have Stripe resend it — but not
        // applied: without an id the payment cannot be applied exactly once, and text with a
        // NUL names no event or user here (Postgres cannot even store it).
        let event_id = event["id"].as_str().filter(|id| !id.is_empty());
        if event_id.is_none_or(|id| id.contains('\0'))
            || user_id.is_some_and(|id| id.contains('\0'))
        {
            tracing::warn!("a payment event without a usable id or user id: not applied");
        } else if let (Some(event_id), Some(user_id)) = (event_id, user_id) {
            match credits_of(metadata) {
                None => tracing::warn!(
                    event = %event_id,
                    "a payment event whose metadata.credits is not a whole number of at least 1: \
                     not applied"
                ),
                Some(credits) => grant_once(&state, event_id, user_id, credits).await?,
            }
        }
    }
    Ok(Json(Acknowledged { received: true }))
}

/// Adds `credits` to `user_id` for the event `event_id`, once: the claim and the credit commit
/// together, so a replay finds the claim and adds nothing, also when it arrives concurrently.
async fn grant_once(
    state: &AppState,
    event_id: &str,
    user_id: &str,
    credits: i64,
) -> Result<(), ApiError> {
    let mut transaction = state.db().begin().await?;
    if claim_once(&mut *transaction, "processed_webhooks", event_id).await? {
        if credit_ledger()
            .grant(&mut *transaction, user_id, credits)
            .await?
            .is_some()
        {
            transaction.commit().await?;
        } else {
            // Not recorded as processed (the transaction is dropped, its claim with it): once
            // the user exists, a replay from Stripe's dashboard still adds it.
            tracing::error!(
                event = %event_id,
                user = %user_id,
                credits,
                "payment for an unknown user, or more than the balance can hold: not added"
            );
        }
    }
    Ok(())
}
