//! Users: the model as the API shows it (never with its password hash), registration rules, the
//! SQL that stores it, and how a signed-in identity becomes a `User`.

use garde::Validate;
use serde::{Deserialize, Serialize};
use sqlx::{any::AnyRow, Row};
use waypost::{
    database::Database,
    security::{AuthUser, Identity},
    ApiError,
};

use crate::{timestamp, AppState};

/// What a user may do.
#[derive(schemars::JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everyone.
    User,
    /// Addresses listed in `ADMIN_EMAILS`.
    Admin,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    fn parse(text: &str) -> Role {
        if text == "admin" {
            Role::Admin
        } else {
            Role::User
        }
    }
}

/// A user as the API shows it. There is no password field: a hash cannot leak through
/// serialization because it is never loaded into this type.
#[derive(schemars::JsonSchema, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Opaque id.
    pub id: String,
    /// As registered.
    pub email: String,
    /// Display name.
    pub name: String,
    /// `user` or `admin`.
    pub role: Role,
    /// Credits left for `/api/generate`.
    pub credits: i64,
    /// RFC 3339 UTC.
    pub created_at: String,
}

impl User {
    /// Whether this user is an admin.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// `{"user": …}`: how one user is answered.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct UserEnvelope {
    /// The user.
    pub user: User,
}

/// A page of users.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct UserPage {
    /// The users on this page, oldest first.
    pub users: Vec<User>,
    /// Where the page stands.
    pub pagination: crate::pagination::Pagination,
}

/// The registration body; every rule is checked at once.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize, Validate)]
pub struct Registration {
    /// Must look like an email.
    #[garde(required, email)]
    pub email: Option<String>,
    /// At least 8 characters (and at most 1024, to bound hashing work).
    #[garde(required, length(chars, min = 8, max = 1024))]
    pub password: Option<String>,
    /// 1–100 characters, not only spaces.
    #[garde(
        required,
        length(chars, min = 1, max = 100),
        custom(crate::rules::not_blank),
        custom(crate::rules::no_nul)
    )]
    #[schemars(pattern(crate::rules::NOT_BLANK_NO_NUL_PATTERN))]
    pub name: Option<String>,
}

/// The login body. Only a missing field is a malformed login (400); any email or password
/// sent — empty, or longer than any registration accepts — is simply wrong (401, like any
/// other, after the same hashing work). The route's body limit bounds what is hashed.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize, Validate)]
pub struct Credentials {
    /// The email registered with.
    #[garde(required)]
    pub email: Option<String>,
    /// The password.
    #[garde(required)]
    pub password: Option<String>,
}

const COLUMNS: &str = "id, email, name, role, credits, created_at";

fn from_row(row: &AnyRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        role: Role::parse(&row.try_get::<String, _>("role")?),
        credits: row.try_get("credits")?,
        created_at: row.try_get("created_at")?,
    })
}

/// The form an email is compared in.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Whether an account with `email` (compared case-insensitively) exists.
///
/// # Errors
/// 500/503 when the database fails.
pub async fn is_email_taken(db: &Database, email: &str) -> Result<bool, ApiError> {
    let row = sqlx::query("SELECT 1 FROM users WHERE email_normalized = $1")
        .bind(normalize_email(email))
        .fetch_optional(db)
        .await?;
    Ok(row.is_some())
}

/// The 409 for an address that has an account.
pub fn email_taken() -> ApiError {
    ApiError::conflict("An account with this email already exists.")
}

/// Stores a new user with an already computed password hash.
///
/// # Errors
/// 409 `conflict` when the email (case-insensitively) is taken.
pub async fn create(
    db: &Database,
    email: &str,
    name: &str,
    password_hash: &str,
    role: Role,
    credits: i64,
) -> Result<User, ApiError> {
    let user = User {
        id: uuid::Uuid::new_v4().simple().to_string(),
        email: email.trim().to_owned(),
        name: name.trim().to_owned(),
        role,
        credits,
        created_at: timestamp::now(),
    };
    sqlx::query(
        "INSERT INTO users (id, email, email_normalized, name, password_hash, role, credits, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&user.id)
    .bind(&user.email)
    .bind(normalize_email(email))
    .bind(&user.name)
    .bind(password_hash)
    .bind(role.as_str())
    .bind(credits)
    .bind(&user.created_at)
    .execute(db)
    .await
    .map_err(|error| match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => email_taken(),
        _ => ApiError::from(error),
    })?;
    Ok(user)
}

/// The user with `id`.
///
/// # Errors
/// 500/503 when the database fails.
pub async fn find(db: &Database, id: &str) -> Result<Option<User>, ApiError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

/// The user registered with `email` and their password hash (for login only).
///
/// # Errors
/// 500/503 when the database fails.
pub async fn find_with_hash(
    db: &Database,
    email: &str,
) -> Result<Option<(User, String)>, ApiError> {
    if email.contains('\0') {
        // No registered address holds one (registration refuses it), and Postgres could not
        // even compare it: the same unknown address on every database.
        return Ok(None);
    }
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS}, password_hash FROM users WHERE email_normalized = $1"
    ))
    .bind(normalize_email(email))
    .fetch_optional(db)
    .await?;
    match row {
        None => Ok(None),
        Some(row) => Ok(Some((from_row(&row)?, row.try_get("password_hash")?))),
    }
}

/// A page of users, oldest first, and the total count.
///
/// # Errors
/// 500/503 when the database fails.
pub async fn list(db: &Database, page: u32, limit: u32) -> Result<(Vec<User>, u64), ApiError> {
    let offset = i64::from(page - 1) * i64::from(limit);
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM users ORDER BY created_at ASC, id ASC LIMIT $1 OFFSET $2"
    ))
    .bind(i64::from(limit))
    .bind(offset)
    .fetch_all(db)
    .await?;
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(db)
        .await?;
    let users = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    Ok((users, u64::try_from(total).unwrap_or(0)))
}

/// Credits live on the user row: spent and refunded with single conditional statements, each
/// paid spend held in `credit_holds` until its work is done.
pub fn credit_ledger() -> waypost::credits::CreditLedger {
    waypost::credits::CreditLedger::new("users", "id", "credits").with_holds("credit_holds")
}

/// How old a credit hold must be for the sweep to refund it: far past any generation — 15
/// minutes, or four times `GENERATE_TIMEOUT` when that is longer — so only spends whose process
/// stopped before it could refund them are swept, never one whose work still runs.
pub fn stale_hold_age(generate_timeout: std::time::Duration) -> std::time::Duration {
    std::time::Duration::from_secs(15 * 60).max(generate_timeout.saturating_mul(4))
}

impl AuthUser<AppState> for User {
    async fn load(identity: &Identity, state: &AppState) -> Result<Option<Self>, ApiError> {
        find(state.db(), &identity.user_id).await
    }
}

/// A signed-in admin: `Auth<Admin>` is 401 without a caller and 403 for anyone else, decided
/// before the handler's later arguments (a query to validate, say) are looked at.
#[derive(Clone, Debug)]
pub struct Admin(pub User);

impl AuthUser<AppState> for Admin {
    async fn load(identity: &Identity, state: &AppState) -> Result<Option<Self>, ApiError> {
        // Loaded as any caller is, then judged.
        match <User as AuthUser<AppState>>::load(identity, state).await? {
            Some(user) if user.is_admin() => Ok(Some(Admin(user))),
            Some(_) => Err(ApiError::forbidden("Only admins can do this.")),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn a_hold_is_stale_only_far_past_any_generation() {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        assert_eq!(super::stale_hold_age(Duration::from_secs(10)), minutes(15));
        assert_eq!(super::stale_hold_age(minutes(20)), minutes(80));
        assert_eq!(super::stale_hold_age(Duration::MAX), Duration::MAX);
    }
}
