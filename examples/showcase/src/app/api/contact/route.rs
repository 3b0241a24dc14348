//! `POST /api/contact`: a public contact form, validated all at once and stored.

use serde_json::{json, Value};
use waypost::{
    extract::{Json, State, Valid},
    ApiError,
};

use crate::{contact::ContactForm, AppState};

/// Stores the message; 400 `validation_failed` names every missing or bad field.
pub async fn post(
    State(state): State<AppState>,
    Valid(Json(form)): Valid<Json<ContactForm>>,
) -> Result<Json<Value>, ApiError> {
    let id = crate::contact::store(state.db(), form).await?;
    Ok(Json(json!({
        "message": "Thank you for your message. We will get back to you soon.",
        "id": id,
    })))
}
