//! `POST /api/auth/register`: create an account (Argon2id-hashed password, role from
//! `ADMIN_EMAILS`, `SIGNUP_CREDITS` credits).

use waypost::{
    extract::{Json, State, Valid},
    response::{Created, CreatedAt},
    security::password,
    ApiError,
};

use crate::{
    users::{self, Registration, Role, UserEnvelope},
    AppState,
};

/// 201 `{"user": …}`; 400 `validation_failed`; 409 `conflict` when the email is taken.
pub async fn post(
    State(state): State<AppState>,
    Valid(Json(input)): Valid<Json<Registration>>,
) -> Result<CreatedAt<UserEnvelope>, ApiError> {
    let email = input.email.unwrap_or_default();
    // Refused before the password is hashed: a taken address must not buy a caller a second of
    // the hashing every login waits on (the 409 says no more than the insert's would). Two
    // registrations racing for a free address still meet the insert's unique index.
    if users::is_email_taken(state.db(), &email).await? {
        return Err(users::email_taken());
    }
    let hash = password::hash_password(&input.password.unwrap_or_default()).await?;
    let role = if state
        .config()
        .admin_emails
        .contains(&users::normalize_email(&email))
    {
        Role::Admin
    } else {
        Role::User
    };
    let user = users::create(
        state.db(),
        &email,
        &input.name.unwrap_or_default(),
        &hash,
        role,
        state.config().signup_credits,
    )
    .await?;
    let location = format!("/api/users/{}", user.id);
    Ok(Created(UserEnvelope { user }).at(location))
}
