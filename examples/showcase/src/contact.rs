//! Contact-form messages: validated all at once and kept in the database.

use garde::Validate;
use serde::Deserialize;
use waypost::{database::Database, ApiError};

use crate::timestamp;

/// The contact form. Every field is optional at the parsing stage so that validation can name
/// every missing field in one answer, instead of serde stopping at the first.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize, Validate)]
pub struct ContactForm {
    /// Who writes, 1–100 characters.
    #[garde(
        required,
        length(chars, min = 1, max = 100),
        custom(crate::rules::not_blank),
        custom(crate::rules::no_nul)
    )]
    #[schemars(pattern(crate::rules::NOT_BLANK_NO_NUL_PATTERN))]
    pub name: Option<String>,
    /// Where to answer.
    #[garde(required, email)]
    pub email: Option<String>,
    /// The message, 1–5000 characters.
    #[garde(
        required,
        length(chars, min = 1, max = 5000),
        custom(crate::rules::not_blank),
        custom(crate::rules::no_nul)
    )]
    #[schemars(pattern(crate::rules::NOT_BLANK_NO_NUL_PATTERN))]
    pub message: Option<String>,
}

/// Stores a validated message; its id.
///
/// # Errors
/// 500/503 when the database fails.
pub async fn store(db: &Database, form: ContactForm) -> Result<String, ApiError> {
    let id = uuid::Uuid::now_v7().simple().to_string();
    sqlx::query(
        "INSERT INTO contact_messages (id, name, email, message, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(form.name.unwrap_or_default().trim())
    .bind(form.email.unwrap_or_default().trim())
    .bind(form.message.unwrap_or_default())
    .bind(timestamp::now())
    .execute(db)
    .await?;
    Ok(id)
}
