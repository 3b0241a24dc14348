//! `POST /api/contact`: a public contact form, validated all at once and stored.

use serde::Serialize;
use waypost::{
    extract::{Json, State, Valid},
    ApiError,
};

use crate::{contact::ContactForm, AppState};

/// A stored message.
#[derive(Serialize, schemars::JsonSchema)]
pub struct Received {
    /// A thank-you sentence.
    pub message: &'static str,
    /// The stored message's id.
    pub id: String,
}

/// Stores the message; 400 `validation_failed` names every missing or bad field.
pub async fn post(
    State(state): State<AppState>,
    Valid(Json(form)): Valid<Json<ContactForm>>,
) -> Result<Json<Received>, ApiError> {
    let id = crate::contact::store(state.db(), form).await?;
    Ok(Json(Received {
        message: "Thank you for your message. We will get back to you soon.",
        id,
    }))
}
